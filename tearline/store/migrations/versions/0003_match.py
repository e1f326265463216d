"""Private matching: the PSI mailbox and its log.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "match_requests",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("api_root", sa.String(64), sa.ForeignKey("api_roots.name", ondelete="CASCADE"), nullable=False),
        sa.Column("asker", sa.String(128), nullable=False),
        sa.Column("answerer", sa.String(128), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("results", sa.String(8), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("consent", sa.String(16), nullable=False),
        sa.Column("created_us", sa.BigInteger, nullable=False),
        sa.Column("expires_us", sa.BigInteger, nullable=False),
        sa.Column("asked", sa.Integer, nullable=False),
        sa.Column("fpr", sa.Float, nullable=False),
        sa.Column("reverse_of", sa.String(36), nullable=True),
        sa.Column("request", sa.LargeBinary, nullable=True),
        sa.Column("reply", sa.LargeBinary, nullable=True),
    )
    op.create_index("ix_match_answerer", "match_requests", ["api_root", "answerer", "status"])
    op.create_index("ix_match_pair", "match_requests", ["api_root", "asker", "answerer", "created_us"])
    op.create_table(
        "match_log",
        sa.Column("seq", BigId, primary_key=True, autoincrement=True),
        sa.Column("at_us", sa.BigInteger, nullable=False),
        sa.Column("api_root", sa.String(64), nullable=False),
        sa.Column("member", sa.String(128), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("request_id", sa.String(36), nullable=True),
        sa.Column("detail", sa.Text, nullable=False, server_default="{}"),
    )


def downgrade() -> None:
    op.drop_table("match_log")
    op.drop_table("match_requests")
