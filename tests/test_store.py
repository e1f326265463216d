"""The store on its own: migrations match the tables, versions and flags, one-transaction writes."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import select

from tearline.release import Collection, Member
from tearline.store import Store
from tearline.store.schema import metadata, objects
from tests.stixgen import indicator


def test_alembic_migrations_build_exactly_the_declared_schema(store: Store) -> None:
    with store.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    assert diff == []


def test_migrate_twice_is_harmless(store: Store) -> None:
    store.migrate()
    store.migrate()


def _intel(store: Store) -> tuple[Collection, Member]:
    coll = store.collection("isis-k", "intel")
    assert coll is not None
    return coll, Member(id=1, api_root="isis-k", name="state-a", can_read=True, can_write=True, tlp_max="amber")


def test_first_and_last_flags_follow_versions_in_any_order(store: Store, tokens: dict[str, str]) -> None:
    coll, member = _intel(store)
    stamps = ["2024-01-03T00:00:00.000Z", "2024-01-01T00:00:00.000Z", "2024-01-05T00:00:00.000Z", "2024-01-02T00:00:00.000Z"]
    for stamp in stamps:
        store.add_objects(coll, member, [indicator(1, modified=stamp, created="2023-01-01T00:00:00.000Z")])
    with store.engine.connect() as conn:
        rows = conn.execute(select(objects.c.version, objects.c.is_first, objects.c.is_latest).where(
            objects.c.stix_id == indicator(1)["id"])).all()
    flags = {r.version: (r.is_first, r.is_latest) for r in rows}
    assert flags["2024-01-01T00:00:00.000Z"] == (True, False)
    assert flags["2024-01-05T00:00:00.000Z"] == (False, True)
    assert sum(f for f, _ in flags.values()) == 1 and sum(latest for _, latest in flags.values()) == 1


def test_date_added_is_unique_and_increasing_across_envelopes(store: Store, tokens: dict[str, str]) -> None:
    coll, member = _intel(store)
    for e in range(5):
        store.add_objects(coll, member, [indicator(100 * e + i) for i in range(50)])
    with store.engine.connect() as conn:
        added = list(conn.scalars(select(objects.c.added_us).order_by(objects.c.pk)))
    assert added == sorted(added) and len(set(added)) == len(added)


def test_an_envelope_that_fails_mid_write_leaves_nothing(store: Store, tokens: dict[str, str], monkeypatch) -> None:  # type: ignore[no-untyped-def]
    coll, member = _intel(store)
    before = store.count([objects.c.coll == coll.num])
    original = Store._write

    def failing(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        original(self, *args, **kwargs)
        raise RuntimeError("disk full")

    monkeypatch.setattr(Store, "_write", failing)
    try:
        store.add_objects(coll, member, [indicator(i) for i in range(300)])
    except RuntimeError:
        pass
    assert store.count([objects.c.coll == coll.num]) == before


def test_concurrent_envelopes_keep_ends_rank_exact(store: Store, tokens: dict[str, str]) -> None:
    """A relationship and the RED indicator at its end, written by two writers at the same time, in
    either order: the relationship's ends_rank must end up what the collection says, or the gate's
    shortcut would release it to members who may not see its end. (Each envelope claims the clock
    before reading what it depends on, so no other envelope lands between its read and its write.)"""
    import threading
    import uuid

    from tearline import markings
    from tearline.store import ENDS_RANK
    from tests.stixgen import ACTOR_ID, TS

    coll, member = _intel(store)
    red = [markings.TLP2["red"][0]]
    pairs = []
    for _ in range(30):
        ind = indicator(0, object_marking_refs=red, x_tearline_recipients=["state-a"]) | {"id": f"indicator--{uuid.uuid4()}"}
        rel = {"type": "relationship", "spec_version": "2.1", "id": f"relationship--{uuid.uuid4()}", "created": TS,
               "modified": TS, "relationship_type": "indicates", "source_ref": ind["id"], "target_ref": ACTOR_ID}
        pairs.append((ind, rel))
    start = threading.Barrier(2)

    def write(kind: int) -> None:
        start.wait()
        for pair in pairs:
            status = store.add_objects(coll, member, [pair[kind]], coll.rules)
            assert status["success_count"] == 1, status["failures"]

    threads = [threading.Thread(target=write, args=(k,)) for k in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with store.engine.connect() as conn:
        rows = conn.exec_driver_sql(
            f"SELECT stix_id, ends_rank, {ENDS_RANK} FROM objects WHERE type = 'relationship' AND coll = {coll.num}"
        ).all()
    ours = {rel["id"] for _, rel in pairs}
    checked = [(stix_id, kept, truth) for stix_id, kept, truth in rows if stix_id in ours]
    assert len(checked) == len(pairs)
    assert all(kept == truth == markings.rank("red") for _, kept, truth in checked), checked
