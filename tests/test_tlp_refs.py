"""References to the TLP definitions are not indexed (tearline.write; migration 0019 drops the old rows): a
version's TLP is its ``tlp`` and ``marked`` columns, a tear line's is in its body. Everything that worked with
markings still does: what each member receives at its ceiling, tear lines, withholding for want of a hidden
end, what refers to what (the dashboard's list, TLP definitions included), and what deleting frees."""

from __future__ import annotations

import datetime as dt
import uuid
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import func, select, text

from tearline import markings, release, stix, write
from tearline.keys import HubKeys
from tearline.model import Collection, Member
from tearline.store import Store
from tearline.store import objects as rows
from tearline.store.schema import refs, statuses, usage
from tests.stixgen import ACTOR_ID, TS, indicator

GREEN, AMBER = markings.TLP2["green"][0], markings.TLP2["amber"][0]
TLP_IDS = set(markings.RANK_OF_ID)


def _setup(store: Store) -> tuple[Collection, dict[str, Member]]:
    coll = store.collection("isis-k", "intel")
    assert coll is not None
    with store.engine.connect() as conn:
        return coll, {m.name: m for m in store.members_of(conn, "isis-k")}


def _feed() -> dict[str, dict[str, Any]]:
    ident = {"type": "identity", "spec_version": "2.1", "id": f"identity--{uuid.uuid4()}", "created": TS,
             "modified": TS, "name": "State A desk", "identity_class": "organization", "object_marking_refs": [GREEN]}
    amber = indicator(7001, object_marking_refs=[AMBER], created_by_ref=ident["id"])
    # GREEN, with a description below an AMBER tear line, and TLP 1.0's GREEN as well as 2.0's
    torn = indicator(7002, description="relay run from the Kunar cell",
                     object_marking_refs=[GREEN, "marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da"],
                     granular_markings=[{"marking_ref": AMBER, "selectors": ["description"]}])

    def rel(source: str) -> dict[str, Any]:
        return {"type": "relationship", "spec_version": "2.1", "id": f"relationship--{uuid.uuid4()}", "created": TS,
                "modified": TS, "relationship_type": "indicates", "source_ref": source, "target_ref": ACTOR_ID,
                "object_marking_refs": [GREEN]}

    return {"ident": ident, "amber": amber, "torn": torn, "rel_amber": rel(amber["id"]), "rel_torn": rel(torn["id"])}


def _usage(store: Store, member: Member) -> int:
    with store.engine.connect() as conn:
        return int(conn.execute(select(usage.c.stored).where(usage.c.member == member.id)).scalar() or 0)


def test_a_tlp_marking_reference_is_not_indexed_and_markings_still_work(store: Store, tokens: dict[str, str],
                                                                        keys: HubKeys) -> None:
    coll, people = _setup(store)
    feed = _feed()
    status = write.add_envelope(store, coll, people["state-a"], list(feed.values()), keys)
    assert status["failure_count"] == 0 and status["success_count"] == 5, status["failures"]
    with store.engine.connect() as conn:
        indexed = set(conn.execute(select(refs.c.prop, refs.c.target_id)))
    assert not {t for _, t in indexed} & TLP_IDS  # no marking reference to a TLP definition is a row
    # … while every other reference still is: authors, ends, the custom link to the actor
    assert ("created_by_ref", feed["ident"]["id"]) in indexed
    assert {("source_ref", feed["amber"]["id"]), ("source_ref", feed["torn"]["id"]),
            ("target_ref", ACTOR_ID), ("x_tearline_about_ref", ACTOR_ID)} <= indexed

    today = dt.date.today()

    def received(name: str) -> dict[str, dict[str, Any]]:
        return {o["id"]: o for o in release.released(store, people[name], coll, keys, today, mark=False)}

    ngo, state_b = received("ngo-c"), received("state-b")
    # the ceiling: GREEN's ngo-c gets neither the AMBER indicator nor the relationship that needs it
    assert feed["amber"]["id"] not in ngo and feed["rel_amber"]["id"] not in ngo
    assert feed["torn"]["id"] in ngo and feed["rel_torn"]["id"] in ngo
    # the tear line: its copy has lost the AMBER description, and keeps its markings as written
    assert "description" not in ngo[feed["torn"]["id"]] and "granular_markings" not in ngo[feed["torn"]["id"]]
    assert ngo[feed["torn"]["id"]]["object_marking_refs"] == feed["torn"]["object_marking_refs"]
    # AMBER's state-b gets all of it, the tear line's part too, the markings unchanged
    assert {feed[k]["id"] for k in ("amber", "torn", "rel_amber", "rel_torn")} <= set(state_b)
    assert state_b[feed["amber"]["id"]]["object_marking_refs"] == [AMBER]
    assert state_b[feed["torn"]["id"]]["description"] == feed["torn"]["description"]
    # every reader resolves the TLP definitions (asked for by id: listings leave them out)
    for name in ("ngo-c", "state-b"):
        assert {o["id"] for o in release.released(store, people[name], coll, keys, today, ids=[GREEN, AMBER],
                                                  mark=False)} == {GREEN, AMBER}

    # what refers to X (the dashboard's object page): through the index for an id, through tlp for a TLP
    # definition, each within what the member receives
    def referring(name: str, target: str) -> set[str]:
        return set(release.newest_ids(store, people[name], coll, today, 200, (), target))

    assert referring("state-b", AMBER) == {feed["amber"]["id"]}
    assert referring("ngo-c", AMBER) == set()
    # state-b's profile hides authors: it sees the identity's pseudonymous stand-in, marked as its original
    stand_in = keys.pseudonym("isis-k", feed["ident"]["id"])
    assert referring("state-b", GREEN) == {stand_in} | {feed[k]["id"] for k in ("torn", "rel_amber", "rel_torn")}
    assert referring("ngo-c", GREEN) == {feed[k]["id"] for k in ("ident", "torn", "rel_torn")}
    assert referring("state-b", feed["amber"]["id"]) == {feed["rel_amber"]["id"]}
    assert referring("state-a", feed["ident"]["id"]) == {feed["amber"]["id"]}

    # deleting frees exactly what was charged: afterwards the member's usage is its statuses' text alone
    for obj in feed.values():
        with store.engine.connect() as conn:
            added = [v.added_us for v in rows.held(conn, coll.num, [obj["id"]])[obj["id"]]]
        write.delete_versions(store, coll, people["state-a"], obj["id"], added, keys)
    with store.engine.connect() as conn:
        kept = conn.execute(select(func.sum(func.length(statuses.c.successes) + func.length(statuses.c.failures)))
                            .where(statuses.c.member_id == people["state-a"].id)).scalar()
    assert _usage(store, people["state-a"]) == kept


def test_migration_0019_drops_the_rows_a_store_already_holds_and_what_they_were_charged(
        store: Store, tokens: dict[str, str], keys: HubKeys) -> None:
    from alembic import command
    from alembic.config import Config

    import tearline.store as package

    coll, people = _setup(store)
    feed = _feed()
    assert write.add_envelope(store, coll, people["state-a"], list(feed.values()), keys)["failure_count"] == 0
    assert write.add_envelope(store, coll, people["state-b"], [indicator(7003, object_marking_refs=[AMBER])],
                              keys)["failure_count"] == 0
    before = {name: _usage(store, people[name]) for name in ("state-a", "state-b")}
    # the rows, and their charge, as a store written before 0019 holds them
    with store.engine.begin() as conn:
        found = list(conn.execute(text("SELECT added_us, author, body FROM objects WHERE coll = :c AND persona < 2"),
                                  {"c": coll.num}))
        old = []
        for added, author, body in found:
            for path, _prop, target in stix.refs_of(orjson.loads(body)):
                if target in TLP_IDS:
                    old.append({"added_us": added, "coll": coll.num, "prop": path, "target_id": target, "req": 0})
                    conn.execute(text("UPDATE usage SET stored = stored + :n WHERE member = :m"),
                                 {"n": len(path) + len(target), "m": author})
        conn.execute(refs.insert(), old)
    assert len(old) >= 7
    cfg = Config()
    cfg.set_main_option("script_location", str(Path(package.__file__).parent / "migrations"))
    with store.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0018")
    store.migrate()
    with store.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(refs).where(refs.c.target_id.in_(TLP_IDS))).scalar() == 0
        assert conn.execute(select(func.count()).select_from(refs)).scalar() > 0  # the others stay
    assert {name: _usage(store, people[name]) for name in ("state-a", "state-b")} == before
