"""The hub: API roots, collections, members, object versions, references, statuses, clock.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "api_roots",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("created_us", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "collections",
        sa.Column("num", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("id", sa.String(36), nullable=False, unique=True),
        sa.Column("api_root", sa.String(64), sa.ForeignKey("api_roots.name", ondelete="CASCADE"), nullable=False),
        sa.Column("alias", sa.String(64), nullable=False),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("member_writable", sa.Boolean, nullable=False),
        sa.UniqueConstraint("api_root", "alias", name="uq_collections_alias"),
    )
    op.create_table(
        "members",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("api_root", sa.String(64), sa.ForeignKey("api_roots.name", ondelete="CASCADE"), nullable=False),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("can_read", sa.Boolean, nullable=False),
        sa.Column("can_write", sa.Boolean, nullable=False),
        sa.Column("tlp_max", sa.String(16), nullable=False),
        sa.Column("profile", sa.Text, nullable=False),
        sa.UniqueConstraint("api_root", "name", name="uq_members_name"),
    )
    op.create_table(
        "objects",
        sa.Column("pk", BigId, primary_key=True, autoincrement=True),
        sa.Column("coll", sa.Integer, sa.ForeignKey("collections.num", ondelete="CASCADE"), nullable=False),
        sa.Column("stix_id", sa.String(300), nullable=False),
        sa.Column("type", sa.String(250), nullable=False),
        sa.Column("spec_version", sa.String(8), nullable=False),
        sa.Column("version", sa.String(40), nullable=False),
        sa.Column("version_us", sa.BigInteger, nullable=False),
        sa.Column("added_us", sa.BigInteger, nullable=False),
        sa.Column("created_by_ref", sa.String(300)),
        sa.Column("is_latest", sa.Boolean, nullable=False),
        sa.Column("is_first", sa.Boolean, nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.UniqueConstraint("coll", "stix_id", "version_us", name="uq_objects_version"),
    )
    op.create_index("ix_objects_added", "objects", ["coll", "added_us"])
    op.create_index("ix_objects_type_added", "objects", ["coll", "type", "added_us"])
    op.create_table(
        "refs",
        sa.Column("added_us", sa.BigInteger, nullable=False),
        sa.Column("coll", sa.Integer, nullable=False),
        sa.Column("prop", sa.String(300), nullable=False),
        sa.Column("target_id", sa.String(300), nullable=False),
    )
    op.create_index("ix_refs_added", "refs", ["added_us"])
    op.create_index("ix_refs_target", "refs", ["coll", "target_id"])
    op.create_table(
        "statuses",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("api_root", sa.String(64), nullable=False),
        sa.Column("collection_id", sa.String(36), nullable=False),
        sa.Column("member_id", sa.BigInteger, nullable=False),
        sa.Column("request_us", sa.BigInteger, nullable=False),
        sa.Column("total_count", sa.Integer, nullable=False),
        sa.Column("success_count", sa.Integer, nullable=False),
        sa.Column("failure_count", sa.Integer, nullable=False),
        sa.Column("pending_count", sa.Integer, nullable=False),
        sa.Column("successes", sa.Text, nullable=False),
        sa.Column("failures", sa.Text, nullable=False),
        sa.Column("pendings", sa.Text, nullable=False),
    )
    hub_clock = op.create_table(
        "hub_clock",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("last_us", sa.BigInteger, nullable=False),
    )
    op.bulk_insert(hub_clock, [{"id": 1, "last_us": 0}])


def downgrade() -> None:
    for table in ("hub_clock", "statuses", "refs", "objects", "members", "collections", "api_roots"):
        op.drop_table(table)
