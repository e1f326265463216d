"""Duty to warn: warnings and their lifecycle events.

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "warnings",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("api_root", sa.String(64), sa.ForeignKey("api_roots.name", ondelete="CASCADE"), nullable=False),
        sa.Column("author", sa.String(160), nullable=False),
        sa.Column("addressee", sa.String(160), nullable=False),
        sa.Column("outside", sa.Boolean, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("created_us", sa.BigInteger, nullable=False),
        sa.Column("window_end", sa.String(10), nullable=False),
        sa.Column("report", sa.Text, nullable=False),
    )
    op.create_table(
        "warning_events",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("warning_id", sa.String(36), sa.ForeignKey("warnings.id", ondelete="CASCADE"), nullable=False),
        sa.Column("at_us", sa.BigInteger, nullable=False),
        sa.Column("by", sa.String(160), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("from_state", sa.String(16), nullable=True),
        sa.Column("to_state", sa.String(16), nullable=False),
        sa.Column("note", sa.Text, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("warning_events")
    op.drop_table("warnings")
