"""Duty to warn, second part: outside parties, signed documents, the authoring member.

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "warn_parties",
        sa.Column("name", sa.String(160), primary_key=True),
        sa.Column("public_key", sa.String(64), nullable=False),
        sa.Column("tlp_max", sa.String(16), nullable=False),
        sa.Column("contacts", sa.Text, nullable=False),
        sa.Column("added_us", sa.BigInteger, nullable=False),
    )
    with op.batch_alter_table("warnings") as batch:
        batch.add_column(sa.Column("author_member", sa.String(64), nullable=True))
        batch.add_column(sa.Column("document", sa.Text, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("warnings") as batch:
        batch.drop_column("document")
        batch.drop_column("author_member")
    op.drop_table("warn_parties")
