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
    # bytes, as the write path counts them: each version's UTF-8 body and its references' paths and targets,
    # and the text of the member's status resources
    body = "octet_length(o.body)" if op.get_bind().dialect.name == "postgresql" else "LENGTH(CAST(o.body AS BLOB))"
    op.execute("INSERT INTO usage (member, stored) SELECT id, 0 FROM members")
    op.execute(f"UPDATE usage SET stored = COALESCE((SELECT SUM({body} + COALESCE((SELECT "
               "SUM(LENGTH(r.prop) + LENGTH(r.target_id)) FROM refs r WHERE r.added_us = o.added_us), 0)) "
               "FROM objects o WHERE o.author = usage.member), 0) + COALESCE((SELECT SUM(LENGTH(s.successes) + "
               "LENGTH(s.failures)) FROM statuses s WHERE s.member_id = usage.member), 0)")


def downgrade() -> None:
    op.drop_table("usage")
