"""The audit log as a transparency log: stored inner nodes of its Merkle tree (proofs for members without
hashing the whole log), a random nonce in each new entry (a neighbour's hash reveals nothing guessable), and
the frontier kept on the newest tree head only.

Revision ID: 0014
Revises: 0013
"""

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "audit_nodes",
        sa.Column("level", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("idx", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("hash", sa.String(64), nullable=False),
    )
    op.add_column("audit", sa.Column("nonce", sa.String(32), nullable=True))
    with op.batch_alter_table("audit_heads") as batch:
        batch.alter_column("frontier", existing_type=sa.Text, nullable=True)


def downgrade() -> None:
    # lossy: entries written since the upgrade are hashed with their nonce, which 0013's code does not know
    # 0013 keeps a frontier on every head; those dropped here are only needed for the newest, which has its own
    op.execute("UPDATE audit_heads SET frontier = '[]' WHERE frontier IS NULL")
    with op.batch_alter_table("audit_heads") as batch:
        batch.alter_column("frontier", existing_type=sa.Text, nullable=False)
    with op.batch_alter_table("audit") as batch:
        batch.drop_column("nonce")
    op.drop_table("audit_nodes")
