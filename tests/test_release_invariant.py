"""The gate's invariant over generated histories: whatever members post (any TLP level, any RED
recipients, several versions), every member reads exactly what the rules entitle it to — through
objects, manifest, object by id and versions — and nothing else, not even a hint of existence."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tearline import compact, markings
from tearline.config import Settings
from tearline.store import Store
from tests.conftest import TAXII, Hub, client, free_port
from tests.stixgen import ACTOR_ID

MEMBERS = {"alpha": "red", "bravo": "amber", "charlie": "amber+strict", "ngo": "green"}
WRITERS = ("alpha", "bravo", "charlie")
RANK = {level: markings.rank(level) for level in markings.LEVELS}
COMPACT = f"""
name: inv
scope:
  actors: [{{name: Islamic State Khorasan Province}}]
expires: {(dt.date.today() + dt.timedelta(days=365)).isoformat()}
# hypothesis sends hundreds of requests a second; the guard's limits are tested in test_guard
rate_limits: {{read: 1000000, meta: 1000000, write: 1000000}}
members:
""" + "".join(f"  - {{name: {m}, write: {str(m in WRITERS).lower()}, tlp_max: {lvl}}}\n" for m, lvl in MEMBERS.items())


def entitled(member: str, author: str, level: str, recipients: list[str]) -> bool:
    """The rule, written out independently of the SQL that enforces it."""
    if member == author:
        return True
    if level == "amber+strict":
        return False
    if level == "red":
        return MEMBERS[member] == "red" and member in recipients
    return RANK[level] <= min(RANK[MEMBERS[member]], RANK["amber"])


post_ops = st.lists(
    st.tuples(st.sampled_from(WRITERS), st.sampled_from(markings.LEVELS),
              st.lists(st.sampled_from(list(MEMBERS)), max_size=2, unique=True), st.integers(0, 2)),
    min_size=1, max_size=12,
)


@pytest.fixture
def inv(store: Store):  # type: ignore[no-untyped-def]
    tokens = compact.apply(store, compact.parse(COMPACT))
    with Hub(store, Settings(db=store.url, port=free_port())) as hub:
        made = {m: client(hub, m, t) for m, t in tokens.items()}
        yield made
        for c in made.values():
            c.close()


def read_all(c, path: str, versions: str = "all") -> set[tuple[str, str]]:  # type: ignore[no-untyped-def]
    out: set[tuple[str, str]] = set()
    params = {"match[type]": "indicator", "match[version]": versions, "limit": "4"}
    while True:
        body = c.get(f"/taxii2/inv/collections/intel/{path}/", params=params).json()
        for o in body.get("objects", []):
            out.add((o["id"], o.get("modified") or o.get("version")))
        if not body["more"]:
            return out
        params["next"] = body["next"]


def marked_indicator(ident: str, stamp: str, level: str, recipients: list[str]) -> dict[str, Any]:
    """A version of an indicator at ``level`` (RED for ``recipients`` alone, when named)."""
    obj = {"type": "indicator", "spec_version": "2.1", "id": ident, "created": "2024-01-01T00:00:00.000Z",
           "modified": stamp, "pattern": "[ipv4-addr:value = '10.0.0.1']", "pattern_type": "stix",
           "valid_from": "2024-01-01T00:00:00Z", "object_marking_refs": [markings.TLP2[level][0]],
           "x_tearline_about_ref": ACTOR_ID}
    if level == "red" and recipients:
        obj["x_tearline_recipients"] = recipients
    return obj


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=post_ops)
def test_every_member_reads_exactly_what_it_is_entitled_to(inv, ops) -> None:  # type: ignore[no-untyped-def]
    expected: dict[str, set[tuple[str, str]]] = {m: set() for m in MEMBERS}
    posted: list[tuple[str, str]] = []
    for author, level, recipients, versions in ops:
        ident = f"indicator--{uuid.uuid4()}"
        recipients = [r for r in recipients if r in MEMBERS]
        for v in range(versions + 1):
            stamp = f"2024-0{v + 1}-01T00:00:00.000Z"
            obj = marked_indicator(ident, stamp, level, recipients)
            r = inv[author].post("/taxii2/inv/collections/intel/objects/", json={"objects": [obj]},
                                 headers={"Content-Type": TAXII})
            assert r.json()["success_count"] == 1, r.text
            posted.append((ident, stamp))
            for m in MEMBERS:
                if entitled(m, author, level, recipients):
                    expected[m].add((ident, stamp))
    mine = set(posted)
    for member, c in inv.items():
        assert read_all(c, "objects") & mine == expected[member]
        assert read_all(c, "manifest") & mine == expected[member]
        # without match[version], each object once, at the newest version this member may see
        newest: dict[str, str] = {}
        for ident, stamp in expected[member]:
            newest[ident] = max(stamp, newest.get(ident, stamp))
        latest = read_all(c, "objects", versions="last")
        assert {p for p in latest if p[0] in {i for i, _ in posted}} == set(newest.items())
        for ident in {i for i, _ in posted}:
            visible = {s for i, s in expected[member] if i == ident}
            r = c.get(f"/taxii2/inv/collections/intel/objects/{ident}/versions/")
            if visible:
                assert set(r.json()["versions"]) == visible
            else:
                assert r.status_code == 404


graph_ops = st.lists(
    st.tuples(st.sampled_from(WRITERS), st.sampled_from(markings.LEVELS),
              st.sampled_from(["indicator", "relationship", "report"]), st.lists(st.integers(0, 30), max_size=3)),
    min_size=2, max_size=14,
)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=graph_ops)
def test_no_copy_mentions_an_object_its_reader_may_not_see(inv, ops) -> None:  # type: ignore[no-untyped-def]
    """Random graphs of indicators, relationships and reports under random TLP levels, references to
    objects posted before or after: every reference in every object a member receives points to
    something it may see (or that the hub does not hold)."""
    held: dict[str, tuple[str, str]] = {}  # id → (author, level)
    order: list[str] = []
    # ids are drawn up front, so a reference may point at an object that only arrives later (the gate's
    # precomputed view of a relationship's ends must follow)
    planned = [f"{kind}--{uuid.uuid4()}" for _author, _level, kind, _picks in ops]
    for (author, level, kind, picks), ident in zip(ops, planned, strict=True):
        base = {"type": kind, "spec_version": "2.1", "id": ident, "created": "2024-01-01T00:00:00.000Z",
                "modified": "2024-01-01T00:00:00.000Z", "object_marking_refs": [markings.TLP2[level][0]]}
        targets = [planned[p % len(planned)] for p in picks if planned[p % len(planned)] != ident]
        if kind == "indicator":
            base |= {"pattern": "[ipv4-addr:value = '10.0.0.2']", "pattern_type": "stix",
                     "valid_from": "2024-01-01T00:00:00Z", "x_tearline_about_ref": ACTOR_ID}
        elif kind == "relationship":
            base |= {"relationship_type": "related-to", "source_ref": targets[0] if targets else ACTOR_ID,
                     "target_ref": ACTOR_ID}
        else:
            base |= {"name": "r", "published": "2024-01-01T00:00:00.000Z", "object_refs": [ACTOR_ID, *targets]}
        if level == "red":
            base["x_tearline_recipients"] = ["alpha"]
        r = inv[author].post("/taxii2/inv/collections/intel/objects/", json={"objects": [base]},
                             headers={"Content-Type": TAXII}).json()
        if r["success_count"]:
            held[ident] = (author, level)
            order.append(ident)
    for member, c in inv.items():
        may = {i for i, (a, lvl) in held.items() if entitled(member, a, lvl, ["alpha"])}
        params = {"limit": "5"}
        while True:
            body = c.get("/taxii2/inv/collections/intel/objects/", params=params).json()
            for obj in body.get("objects", []):
                if obj["id"] in held:
                    assert obj["id"] in may
                for value in (v for k, v in obj.items() if k.endswith("_ref")):
                    assert value not in held or value in may, (member, obj)
                for value in (x for k, v in obj.items() if k.endswith("_refs") for x in v):
                    assert value not in held or value in may, (member, obj)
            if not body["more"]:
                break
            params["next"] = body["next"]


@pytest.fixture
def inv_store(store: Store):  # type: ignore[no-untyped-def]
    tokens = compact.apply(store, compact.parse(COMPACT))
    with Hub(store, Settings(db=store.url, port=free_port())) as hub:
        made = {m: client(hub, m, t) for m, t in tokens.items()}
        yield store, made
        for c in made.values():
            c.close()


warning_ops = st.lists(st.tuples(st.sampled_from(list(MEMBERS)), st.sampled_from(["draft", "approved", "delivered"])),
                       min_size=1, max_size=6)


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=warning_ops)
def test_a_warning_reaches_its_addressee_and_no_other_member(inv_store, ops) -> None:  # type: ignore[no-untyped-def]
    """Whatever their TLP ceilings, each member reads in the warnings collection exactly the delivered
    warnings addressed to it, on every endpoint (TAXII and the warnings API); drafts and approved
    warnings reach nobody."""
    from tearline import warn

    store, clients = inv_store
    window = (dt.date.today().isoformat(), (dt.date.today() + dt.timedelta(days=5)).isoformat())
    expected: dict[str, set[str]] = {m: set() for m in MEMBERS}
    made: set[str] = set()
    ids_of: dict[str, str] = {}
    for addressee, state in ops:
        w = warn.draft(store, "inv", "author-1", addressee, False, {"country": "AFG"}, window, 50, "take care",
                       "An attack on the ministry is being prepared for next week.")
        if state in ("approved", "delivered"):
            warn.move(store, w["id"], "approve", "author-2")
        if state == "delivered":
            warn.move(store, w["id"], "deliver", "author-1")
            expected[addressee] |= {w["report"]["id"], w["report"]["object_refs"][0]}
        made |= {w["report"]["id"], w["report"]["object_refs"][0]}
        ids_of[w["id"]] = w["report"]["id"]
    base = "/taxii2/inv/collections/warnings"
    for member, c in clients.items():
        for path in ("objects", "manifest"):
            got = {o["id"] for o in c.get(f"{base}/{path}/").json().get("objects", [])}
            assert got & made == expected[member], (member, path)
        for ident in made:
            seen = c.get(f"{base}/objects/{ident}/")
            versions = c.get(f"{base}/objects/{ident}/versions/")
            if ident in expected[member]:
                assert seen.status_code == 200 and versions.status_code == 200
            else:  # the same answer as for an id that does not exist
                assert seen.status_code == versions.status_code == 404
        # the warnings API (and the dashboard's inbox on it) agrees with TAXII
        inbox = {w["report"]["id"] for w in c.get("/tearline/warnings/").json()["warnings"]} & made
        assert inbox == {i for i in expected[member] if i.startswith("report--")}, member
        for wid, rid in ids_of.items():
            got = c.get(f"/tearline/warnings/{wid}/")
            assert got.status_code == (200 if rid in expected[member] else 404), (member, wid)
