"""The ids a write named out of its writer's sight are kept for the guard's scan to judge, rather than judged
inside the write's transaction, where the time they took told the writer that an id it named was held.

Revision ID: 0018
Revises: 0017
"""

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("guard_notes") as batch:
        batch.add_column(sa.Column("named", sa.Text(), nullable=True))
        batch.add_column(sa.Column("before_us", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("guard_notes") as batch:
        batch.drop_column("before_us")
        batch.drop_column("named")
