"""People within members, each with a token of their own, so that a step needing two people needs two logins;
and the guard's notes on requests (how many ids a write named that are hidden from its writer), kept apart
from the audit entries members export.

Revision ID: 0012
Revises: 0011
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "people",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True, autoincrement=True),
        sa.Column("member", sa.BigInteger, sa.ForeignKey("members.id", ondelete="CASCADE"), nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
        sa.UniqueConstraint("member", "name", name="uq_people_name"),
    )


    op.create_table(
        "guard_notes",
        sa.Column("seq", sa.BigInteger, primary_key=True),
        sa.Column("hidden", sa.Integer, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("guard_notes")
    op.drop_table("people")
