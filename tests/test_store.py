"""The store on its own: migrations match the tables, versions and flags, one-transaction writes, and the
withheld rows the write path keeps exact even when writers race."""

from __future__ import annotations

import contextlib
import threading
import uuid

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import select

from tearline import markings, visibility, write
from tearline.keys import HubKeys
from tearline.model import Collection, Member
from tearline.store import Store
from tearline.store.schema import metadata, objects, withheld
from tests.stixgen import ACTOR_ID, TS, indicator


def _declared(obj: object, name: str | None, kind: str, reflected: bool, compare_to: object) -> bool:
    """The full-text index (migration 0015) is SQL the declared schema cannot state: SQLite's FTS5 tables,
    PostgreSQL's index over an expression. Everything else is compared."""
    return not (kind == "table" and str(name).startswith("objects_fts")) and not (kind == "index" and name == "objects_words")


def test_alembic_migrations_build_exactly_the_declared_schema(store: Store) -> None:
    with store.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"include_object": _declared}), metadata)
    assert diff == []


def test_the_full_text_index_follows_every_write_and_deletion(store: Store, tokens: dict[str, str]) -> None:
    from sqlalchemy import text

    from tearline.release import search as finding

    coll, member = _intel(store)
    found = indicator(8101, name="Darunta training site")
    assert write.add_envelope(store, coll, member, [found], HubKeys(b"k" * 32))["failure_count"] == 0
    today = __import__("datetime").date.today()
    assert [o["id"] for o in finding.search(store, member, coll, HubKeys(b"k" * 32), today, "darunta")] == [found["id"]]
    with store.engine.begin() as conn:
        conn.execute(text("DELETE FROM objects WHERE stix_id = :i").bindparams(i=found["id"]))  # noqa: S608
    assert finding.search(store, member, coll, HubKeys(b"k" * 32), today, "darunta") == []


def test_migrate_twice_is_harmless(store: Store) -> None:
    store.migrate()
    store.migrate()


def _intel(store: Store, name: str = "state-a") -> tuple[Collection, Member]:
    coll = store.collection("isis-k", "intel")
    assert coll is not None
    with store.engine.connect() as conn:
        member = next(m for m in store.members_of(conn, "isis-k") if m.name == name)
    return coll, member


def test_first_and_last_flags_follow_versions_in_any_order(store: Store, tokens: dict[str, str], keys: HubKeys) -> None:
    coll, member = _intel(store)
    stamps = ["2024-01-03T00:00:00.000Z", "2024-01-01T00:00:00.000Z", "2024-01-05T00:00:00.000Z", "2024-01-02T00:00:00.000Z"]
    for stamp in stamps:
        write.add_envelope(store, coll, member, [indicator(1, modified=stamp, created="2023-01-01T00:00:00.000Z")], keys)
    with store.engine.connect() as conn:
        rows = conn.execute(select(objects.c.version, objects.c.is_first, objects.c.is_latest).where(
            objects.c.stix_id == indicator(1)["id"])).all()
    flags = {r.version: (r.is_first, r.is_latest) for r in rows}
    assert flags["2024-01-01T00:00:00.000Z"] == (True, False)
    assert flags["2024-01-05T00:00:00.000Z"] == (False, True)
    assert sum(f for f, _ in flags.values()) == 1 and sum(latest for _, latest in flags.values()) == 1


def test_an_envelope_shares_one_date_added_and_envelopes_follow_each_other(store: Store, tokens: dict[str, str],
                                                                           keys: HubKeys) -> None:
    coll, member = _intel(store)
    for e in range(5):
        write.add_envelope(store, coll, member, [indicator(100 * e + i) for i in range(50)], keys)
    with store.engine.connect() as conn:
        rows = conn.execute(select(objects.c.added_us, objects.c.date_added_us).where(
            objects.c.coll == coll.num, objects.c.type == "indicator").order_by(objects.c.added_us)).all()
    added = [r.added_us for r in rows]
    assert added == sorted(added) and len(set(added)) == len(added)  # the internal order: unique, increasing
    shown = [r.date_added_us for r in rows]
    assert shown == sorted(shown) and len(set(shown)) == 5  # one date_added an envelope, strictly after the last
    assert all(r.added_us >= r.date_added_us for r in rows)


def test_an_envelope_that_fails_mid_write_leaves_nothing(store: Store, tokens: dict[str, str], keys: HubKeys,
                                                         monkeypatch) -> None:  # type: ignore[no-untyped-def]
    coll, member = _intel(store)
    before = store.version_count(coll.num)

    def failing(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise RuntimeError("disk full")

    monkeypatch.setattr(visibility, "settle", failing)  # after every row is inserted
    with contextlib.suppress(RuntimeError):
        write.add_envelope(store, coll, member, [indicator(i) for i in range(300)], keys)
    assert store.version_count(coll.num) == before


def test_concurrent_writers_keep_what_each_member_may_not_receive_exact(store: Store, tokens: dict[str, str],
                                                                        keys: HubKeys) -> None:
    """Relationships to RED indicators, and GREEN versions of those indicators, written by two writers at
    the same time: afterwards the withheld rows are exactly what rebuilding them from nothing gives (each
    write claims the clock before reading what it depends on, so nothing lands between its read and its
    write)."""
    coll, member = _intel(store)
    red, green = markings.TLP2["red"][0], markings.TLP2["green"][0]
    inds = [indicator(0, object_marking_refs=[red], x_tearline_recipients=["state-a"]) | {"id": f"indicator--{uuid.uuid4()}"}
            for _ in range(30)]
    assert write.add_envelope(store, coll, member, inds, keys)["success_count"] == 30
    rels = [{"type": "relationship", "spec_version": "2.1", "id": f"relationship--{uuid.uuid4()}", "created": TS,
             "modified": TS, "relationship_type": "indicates", "source_ref": i["id"], "target_ref": ACTOR_ID,
             "object_marking_refs": [green]} for i in inds]
    greener = [i | {"modified": "2024-04-01T00:00:00.000Z", "object_marking_refs": [green]} for i in inds]
    greener = [{k: v for k, v in g.items() if k != "x_tearline_recipients"} for g in greener]
    start = threading.Barrier(2)

    def post(batch: list[dict]) -> None:
        start.wait()
        for obj in batch:
            status = write.add_envelope(store, coll, member, [obj], keys)
            assert status["success_count"] == 1, status["failures"]

    threads = [threading.Thread(target=post, args=(batch,)) for batch in (rels, greener)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with store.engine.begin() as conn:
        kept = set(conn.execute(select(withheld.c.member, withheld.c.added_us)))
        for m in store.members_of(conn, "isis-k"):
            visibility.recompute(conn, coll.num, visibility.Reader.of(m), False)
        rebuilt = set(conn.execute(select(withheld.c.member, withheld.c.added_us)))
    assert kept == rebuilt == set()  # every indicator has a GREEN version now: nobody is withheld a relationship


def test_the_usage_a_migration_works_out_is_the_usage_writes_keep(store: Store, tokens: dict[str, str],
                                                                     keys: HubKeys) -> None:
    """Migration 0011 computes each member's usage from what is stored (bytes of UTF-8 bodies, reference paths
    and targets, statuses); the write path keeps it as it goes. Downgraded and upgraded again, a store holds
    the same figures."""
    from pathlib import Path

    from alembic import command
    from alembic.config import Config

    import tearline.store as package
    from tearline.store.schema import usage

    coll = store.collection("isis-k", "intel")
    assert coll is not None
    with store.engine.connect() as conn:
        members = {m.name: m for m in store.members_of(conn, "isis-k")}
    write.add_envelope(store, coll, members["state-a"], [indicator(i, description="é ü " * 40) for i in range(12)]
                       + [{"type": "malware", "spec_version": "2.1", "id": f"malware--{uuid.uuid4()}", "created": TS,
                           "modified": TS, "name": "x", "is_family": "yes"}], keys)
    write.add_envelope(store, coll, members["state-b"], [indicator(100 + i) for i in range(5)], keys)

    def figures() -> dict[int, int]:
        with store.engine.connect() as conn:
            return {m: s for m, s in conn.execute(select(usage.c.member, usage.c.stored)) if s}

    kept = figures()
    assert len(kept) == 2
    cfg = Config()
    cfg.set_main_option("script_location", str(Path(package.__file__).parent / "migrations"))
    with store.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0010")
    store.migrate()
    assert figures() == kept
