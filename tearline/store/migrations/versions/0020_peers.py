"""Federation: the hubs this one mirrors compacts from, and each version's origin (0: this hub's own), which
a member of kind hub is never given.

Revision ID: 0020
Revises: 0019
"""

import sqlalchemy as sa
from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("objects") as batch:
        batch.add_column(sa.Column("origin", sa.Integer(), nullable=False, server_default="0"))
    op.create_table(
        "peers",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(200), nullable=False, unique=True),
        sa.Column("api_root", sa.String(200), sa.ForeignKey("api_roots.name", ondelete="CASCADE"), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("member", sa.String(200), nullable=False),
        sa.Column("token", sa.Text(), nullable=False),
        sa.Column("client_cert", sa.Text(), nullable=False, server_default=""),
        sa.Column("client_key", sa.Text(), nullable=False, server_default=""),
        sa.Column("server_ca", sa.Text(), nullable=False, server_default=""),
        sa.Column("added_after", sa.Text()),
        sa.Column("next", sa.Text()),
        sa.Column("pulled", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("pushed_us", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("pushed", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("push_refused", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("last_try_us", sa.BigInteger()),
        sa.Column("last_ok_us", sa.BigInteger()),
        sa.Column("last_error", sa.Text()),
    )


def downgrade() -> None:
    op.drop_table("peers")
    with op.batch_alter_table("objects") as batch:
        batch.drop_column("origin")
