"""Full-text search over stored versions. On SQLite an FTS5 index kept by triggers, over the words people search
for (names, descriptions, values, patterns, aliases, a note's content, an opinion's explanation): ids, keys and
timestamps are not indexed, which keeps the write path's cost down. On PostgreSQL a GIN index over the body's
words. What a member finds is then judged on its own copy (tearline.release.search): the index only
proposes candidates.

Revision ID: 0015
Revises: 0014
"""

from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

FIELDS = ("name", "description", "value", "pattern", "aliases", "content", "abstract", "explanation")
# tearline.release.search builds the same expressions: the index serves a query only when they match
SQLITE_WORDS = " || ' ' || ".join(f"coalesce(json_extract({{row}}.body, '$.{f}'), '')" for f in FIELDS)
# PostgreSQL indexes the body's text as it is: casting it to jsonb to pick fields fails on what JSON may hold and
# jsonb may not (an escaped NUL), and an index expression that fails refuses the write
PG_WORDS = "to_tsvector('simple', body)"


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"CREATE INDEX objects_words ON objects USING gin ({PG_WORDS})")
        return
    new, old = SQLITE_WORDS.format(row="new"), SQLITE_WORDS.format(row="old")
    op.execute("CREATE VIRTUAL TABLE objects_fts USING fts5(words, content='')")
    op.execute(f"CREATE TRIGGER objects_fts_insert AFTER INSERT ON objects BEGIN "
               f"INSERT INTO objects_fts(rowid, words) VALUES (new.pk, {new}); END")
    op.execute(f"CREATE TRIGGER objects_fts_delete AFTER DELETE ON objects BEGIN "
               f"INSERT INTO objects_fts(objects_fts, rowid, words) VALUES ('delete', old.pk, {old}); END")
    op.execute(f"CREATE TRIGGER objects_fts_update AFTER UPDATE OF body ON objects BEGIN "
               f"INSERT INTO objects_fts(objects_fts, rowid, words) VALUES ('delete', old.pk, {old}); "
               f"INSERT INTO objects_fts(rowid, words) VALUES (new.pk, {new}); END")
    op.execute(f"INSERT INTO objects_fts(rowid, words) SELECT pk, {SQLITE_WORDS.format(row='objects')} FROM objects")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP INDEX IF EXISTS objects_words")
        return
    for trigger in ("insert", "delete", "update"):
        op.execute(f"DROP TRIGGER IF EXISTS objects_fts_{trigger}")
    op.execute("DROP TABLE IF EXISTS objects_fts")
