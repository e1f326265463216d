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
    from tearline.store import ENDS_RANK

    op.execute(f"UPDATE objects SET ends_rank = {ENDS_RANK}")


def downgrade() -> None:
    with op.batch_alter_table("objects") as batch:
        batch.drop_column("ends_rank")
