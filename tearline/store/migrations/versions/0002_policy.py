"""Compact policy: each API root's scope; per object version its TLP rank, author and hop distance;
the named recipients of TLP:RED objects.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("api_roots", sa.Column("policy", sa.Text, nullable=False, server_default="{}"))
    op.add_column("objects", sa.Column("tlp", sa.SmallInteger, nullable=False, server_default="0"))
    op.add_column("objects", sa.Column("author", sa.BigInteger, nullable=True))
    op.add_column("objects", sa.Column("hop", sa.SmallInteger, nullable=False, server_default="0"))
    op.create_table(
        "recipients",
        sa.Column("added_us", sa.BigInteger, nullable=False),
        sa.Column("member", sa.String(128), nullable=False),
    )
    op.create_index("ix_recipients_added", "recipients", ["added_us", "member"])


def downgrade() -> None:
    op.drop_table("recipients")
    with op.batch_alter_table("objects") as batch:
        batch.drop_column("hop")
        batch.drop_column("author")
        batch.drop_column("tlp")
    with op.batch_alter_table("api_roots") as batch:
        batch.drop_column("policy")
