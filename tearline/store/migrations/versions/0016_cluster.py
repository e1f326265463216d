"""State that several hub processes share through the store: the rate-limit buckets (so N processes hold a
member to one limit, not N) and the dashboard's sessions (hashed ids, valid in every process, surviving a
restart).

Revision ID: 0016
Revises: 0015
"""

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "rate_buckets",
        sa.Column("bucket", sa.String(200), primary_key=True),
        sa.Column("tokens", sa.Float, nullable=False),
        sa.Column("at", sa.Float, nullable=False),
        sa.Column("granted", sa.Boolean, nullable=False),
    )
    op.create_table(
        "ui_sessions",
        sa.Column("id_hash", sa.String(64), primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("name", sa.String(300), nullable=False),
        sa.Column("api_root", sa.String(64), nullable=True),
        sa.Column("credential", sa.String(64), nullable=False),
        sa.Column("csrf", sa.String(64), nullable=False),
        sa.Column("until", sa.Float, nullable=False),
    )
    op.create_index("ix_ui_sessions_until", "ui_sessions", ["until"])


def downgrade() -> None:
    op.drop_index("ix_ui_sessions_until", "ui_sessions")
    op.drop_table("ui_sessions")
    op.drop_table("rate_buckets")
