"""The write path's invariant, over generated histories: a writer's answers (its status, and what it then
reads) are the same whether an object hidden from it exists or not. Two stores start alike; in one, alpha
shares an AMBER malware H (and a relationship to the compact's actor) that greeny, at GREEN, may not see; in
the other alpha shares the same amount of something else. Greeny then sends the same generated envelopes,
which name H's id in every way a write can (the same id and version, a later version, relationships,
sightings, reports, observed-data), and must be answered alike in both."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import uuid
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tearline import compact, markings, release, write
from tearline.errors import NotFound
from tearline.keys import HubKeys
from tearline.store import Store
from tearline.taxii.query import TaxiiQuery
from tests.stixgen import ACTOR_ID
from tests.test_release_findings import COMPACT, GREEN, TS, rel, sdo

KEYS = HubKeys(b"h" * 32)
H = "malware--0c3cbd6e-9a53-4bd7-8a55-0a6a3a0a5a11"
LATER = "2024-06-01T10:00:00.000Z"


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("hidden") / "template.db"
    store = Store(f"sqlite:///{path}")
    store.migrate()
    expires = (dt.date.today() + dt.timedelta(days=90)).isoformat()
    compact.apply(store, compact.parse(COMPACT.format(expires=expires, visible="false")))
    store.close()
    return path


def _world(template: Path, where: Path, with_hidden: bool) -> Store:
    shutil.copy(template, where)
    store = Store(f"sqlite:///{where}")
    coll = store.collection("rev", "intel")
    assert coll is not None
    alpha = _members(store)["alpha"]
    first = sdo("malware", "amber", description="alpha's own") | {"id": H if with_hidden else f"malware--{uuid.uuid4()}"}
    status = write.add_envelope(store, coll, alpha, [first, rel(ACTOR_ID, "uses", first["id"], "amber")], KEYS)
    assert status["failure_count"] == 0
    return store


def _members(store: Store) -> dict[str, Any]:
    with store.engine.connect() as conn:
        return {m.name: m for m in store.members_of(conn, "rev")}


def _uid(n: int) -> str:
    return str(uuid.UUID(int=n, version=4))


def _piece(kind: str, n: int) -> list[dict[str, Any]]:
    """One part of greeny's envelope (ids fixed by ``n`` so both worlds get the same bytes)."""
    fresh = f"indicator--{_uid(n + 1)}"
    green = [GREEN]
    if kind == "same":  # H's id and version: a collision
        return [sdo("malware", "green", description="greeny's") | {"id": H},
                rel(ACTOR_ID, "uses", H) | {"id": f"relationship--{_uid(n + 7)}"}]
    if kind == "later":
        return [sdo("malware", "green", description="greeny's later") | {"id": H, "modified": LATER},
                rel(ACTOR_ID, "uses", H) | {"id": f"relationship--{_uid(n + 8)}"}]
    if kind == "uses":
        return [rel(ACTOR_ID, "uses", H) | {"id": f"relationship--{_uid(n + 2)}"}]
    if kind == "indicates":  # needs H, and an indicator of its own in the same envelope
        return [sdo("indicator", "green") | {"id": fresh},
                rel(fresh, "indicates", H) | {"id": f"relationship--{_uid(n + 3)}"}]
    if kind == "sighting":
        return [sdo("sighting", "green", sighting_of_ref=H) | {"id": f"sighting--{_uid(n + 4)}"}]
    if kind == "report":
        return [sdo("report", "green", object_refs=[H, ACTOR_ID]) | {"id": f"report--{_uid(n + 5)}"}]
    if kind == "observed":
        return [sdo("observed-data", "green", first_observed=TS, last_observed=TS, number_observed=1,
                    object_refs=[H]) | {"id": f"observed-data--{_uid(n + 6)}"}]
    if kind == "about":  # an optional reference
        return [sdo("indicator", "green", x_tearline_about_ref=ACTOR_ID, external_references=[
            {"source_name": "h", "external_id": H}]) | {"id": fresh, "object_marking_refs": green}]
    return [sdo("indicator", "green", x_tearline_about_ref=ACTOR_ID) | {"id": fresh}]


def _answer(status: dict[str, Any]) -> Any:
    return (status["success_count"], status["failure_count"],
            sorted((s["id"], s["version"]) for s in status.get("successes", [])),
            sorted((f["id"], f["message"]) for f in status.get("failures", [])))


def _reads(store: Store, member: Any, ids: set[str]) -> dict[str, Any]:
    coll = store.collection("rev", "intel")
    assert coll is not None
    out: dict[str, Any] = {}
    for i in sorted(ids):
        try:
            body = release.object_page(store, member, coll, i, TaxiiQuery(versions=("all",), limit=1000), KEYS, dt.date.today()).body
            out[i] = [dict(o.items()) for o in orjson.loads(body)["objects"]]
        except NotFound:
            out[i] = None
    return out


KINDS = ("same", "later", "uses", "indicates", "sighting", "report", "observed", "about", "fresh")


@settings(max_examples=int(os.environ.get("TEARLINE_HIDDEN_EXAMPLES", "60")), deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(history=st.lists(st.lists(st.sampled_from(KINDS), min_size=1, max_size=4), min_size=1, max_size=3))
def test_a_writers_answers_are_the_same_whether_a_hidden_object_exists(
        template: Path, tmp_path_factory: pytest.TempPathFactory, history: list[list[str]]) -> None:
    where = tmp_path_factory.mktemp("pair")
    worlds = [_world(template, where / "with.db", True), _world(template, where / "without.db", False)]
    try:
        answers: list[list[Any]] = [[], []]
        sent: set[str] = set()
        for e, kinds in enumerate(history):
            envelope = [o for n, k in enumerate(kinds) for o in _piece(k, 100 * e + 10 * n)]
            sent |= {o["id"] for o in envelope}
            for w, store in enumerate(worlds):
                coll = store.collection("rev", "intel")
                assert coll is not None
                greeny = _members(store)["greeny"]
                received = release.received_copy(greeny, coll, KEYS, dt.date.today())  # as the TAXII edge passes it
                answers[w].append(_answer(write.add_envelope(store, coll, greeny, envelope, KEYS, received=received)))
        assert answers[0] == answers[1], history
        reads = [_reads(store, _members(store)["greeny"], sent | {H}) for store in worlds]
        assert reads[0] == reads[1], history
    finally:
        for store in worlds:
            store.close()


@settings(max_examples=int(os.environ.get("TEARLINE_HIDDEN_EXAMPLES", "60")), deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(secret=st.text(min_size=1, max_size=40), guess=st.text(min_size=1, max_size=40), right=st.booleans())
def test_sending_back_a_copy_confirms_nothing_it_leaves_out(
        template: Path, tmp_path_factory: pytest.TempPathFactory, secret: str, guess: str, right: bool) -> None:
    """TAXII 2.1 §5.5 makes an exact duplicate a success. Judged on the writer's copy, never the stored original:
    greeny (GREEN) re-posting alpha's indicator exactly as it received it (the AMBER description below the tear
    line cut) succeeds and stores nothing; re-posting it with a guessed description is refused with the same
    answer whether the guess is the hidden text or not."""
    store = _world(template, tmp_path_factory.mktemp("copy") / "w.db", False)
    try:
        coll = store.collection("rev", "intel")
        assert coll is not None
        members = _members(store)
        shared = sdo("indicator", "green", description=secret,
                     granular_markings=[{"marking_ref": markings.TLP2["amber"][0], "selectors": ["description"]}])
        assert write.add_envelope(store, coll, members["alpha"], [shared, rel(shared["id"], "indicates", ACTOR_ID)],
                                  KEYS)["failure_count"] == 0
        greeny = members["greeny"]
        [copy] = _reads(store, greeny, {shared["id"]})[shared["id"]]
        assert "description" not in copy
        received = release.received_copy(greeny, coll, KEYS, dt.date.today())
        held = store.version_count(coll.num)
        back = write.add_envelope(store, coll, greeny, [copy], KEYS, received=received)
        assert (back["success_count"], back["failure_count"]) == (1, 0)
        guessed = write.add_envelope(store, coll, greeny, [copy | {"description": secret if right else guess}], KEYS,
                                     received=received)
        assert _answer(guessed) == _answer(write.add_envelope(
            store, coll, greeny, [copy | {"description": secret + "?"}], KEYS, received=received))
        assert guessed["failure_count"] == 1
        assert store.version_count(coll.num) == held
    finally:
        store.close()
