"""Rate-limit buckets need no write-ahead log: a bucket lost to a crash is one that refills, and every
request takes from one, so on PostgreSQL the table is UNLOGGED (no WAL, emptied after a crash). SQLite has
no such thing and is left as it is.

Revision ID: 0017
Revises: 0016
"""

from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE rate_buckets SET UNLOGGED")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE rate_buckets SET LOGGED")
