"""The gate's fast path: each version's ends_rank, the most restrictive of its endpoints' least
restrictive TLP (tearline.release).

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("objects") as batch:
        batch.add_column(sa.Column("ends_rank", sa.SmallInteger, nullable=True))
    # written out here rather than imported: a migration must keep meaning what it meant when written
    op.execute("UPDATE objects SET ends_rank = COALESCE((SELECT MAX(COALESCE((SELECT MIN(t.tlp) FROM objects t "
               "WHERE t.coll = objects.coll AND t.stix_id = r.target_id), -1)) FROM refs r "
               "WHERE r.added_us = objects.added_us AND r.prop IN ('source_ref', 'target_ref', 'sighting_of_ref')), -1)")


def downgrade() -> None:
    with op.batch_alter_table("objects") as batch:
        batch.drop_column("ends_rank")
