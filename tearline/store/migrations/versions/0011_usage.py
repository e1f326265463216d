"""What each member has stored (``usage``), so a quota is checked without adding up a member's objects.

Revision ID: 0011
Revises: 0010
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "usage",
        sa.Column("member", sa.BigInteger, sa.ForeignKey("members.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("stored", sa.BigInteger, nullable=False, server_default="0"),
    )
    op.execute("INSERT INTO usage (member, stored) SELECT author, SUM(LENGTH(body)) FROM objects "
               "WHERE author IS NOT NULL AND author IN (SELECT id FROM members) GROUP BY author")


def downgrade() -> None:
    op.drop_table("usage")
