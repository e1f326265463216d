"""Owners and stand-ins: each object's versions form its sharer's chain (``chain`` 0); a member that writes an
id hidden from it gets a chain of its own that only it reads (``chain`` = its member id), so its answer is
the same whether the hidden object exists or not, and nobody can add versions to another member's object.
Every identity now has its stand-in for members that hide authors (``persona`` 1 for the identity, 2 for the
stand-in), whether or not something names it as an author yet. A reference's path and a version may be long (``refs.prop``
and ``objects.version`` are text). A warning remembers the report its text came from (``source``).

Revision ID: 0010
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("objects") as batch:
        batch.add_column(sa.Column("chain", sa.BigInteger, nullable=False, server_default="0"))
        batch.alter_column("version", existing_type=sa.String(40), type_=sa.Text, existing_nullable=False)
        batch.drop_constraint("uq_objects_version", type_="unique")
        batch.create_unique_constraint("uq_objects_version", ["coll", "stix_id", "chain", "version_us"])
    op.execute("UPDATE objects SET persona = 1 WHERE type = 'identity' AND persona = 0")
    op.execute("UPDATE objects SET persona = 2 WHERE persona = 3")
    with op.batch_alter_table("refs") as batch:
        batch.alter_column("prop", existing_type=sa.String(300), type_=sa.Text, existing_nullable=False)
    with op.batch_alter_table("warnings") as batch:
        batch.add_column(sa.Column("source", sa.Text, nullable=True))
    # identities stored before this revision may lack stand-ins: the hub makes them with its keys
    op.execute("INSERT INTO upkeep (name, value) SELECT 'release', 'stale' WHERE EXISTS (SELECT 1 FROM objects) "
               "AND NOT EXISTS (SELECT 1 FROM upkeep WHERE name = 'release')")


def downgrade() -> None:
    with op.batch_alter_table("warnings") as batch:
        batch.drop_column("source")
    with op.batch_alter_table("refs") as batch:
        batch.alter_column("prop", existing_type=sa.Text, type_=sa.String(300), existing_nullable=False)
    with op.batch_alter_table("objects") as batch:
        batch.drop_constraint("uq_objects_version", type_="unique")
        batch.create_unique_constraint("uq_objects_version", ["coll", "stix_id", "version_us"])
        batch.alter_column("version", existing_type=sa.Text, type_=sa.String(40), existing_nullable=False)
        batch.drop_column("chain")
