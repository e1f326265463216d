"""The release invariant over every path: whatever members post — indicators, relationships, reports,
observed-data with their observables, identities that author what others post, at any TLP, to any RED
recipients, in several versions, some deleted — each member receives, on every endpoint (TAXII objects,
object by id, versions, manifest; the dashboard's reads; warnings drafted from what it may read), exactly
the objects an independent model of the rules entitles it to; every copy passes stix2-validator; every
reference in a copy resolves to something the member receives (or that the hub does not hold); authors
reach members that hide authorship only by pseudonyms that resolve; and a member's own objects come back
exactly as it sent them."""

from __future__ import annotations

import datetime as dt
import os
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from stix2validator import ValidationOptions, validate_instance

from tearline import compact, keys, markings, release
from tearline.config import Settings
from tearline.store import Store
from tests.conftest import TAXII, Hub, client, free_port
from tests.stixgen import ACTOR_ID

# name → (ceiling, hides authors)
MEMBERS = {"alpha": ("red", False), "bravo": ("amber", True), "charlie": ("amber+strict", False),
           "ngo": ("green", True)}
WRITERS = ("alpha", "bravo", "charlie")
RANK = {level: markings.rank(level) for level in markings.LEVELS}
COMPACT = f"""
name: paths
scope:
  actors: [{{name: Islamic State Khorasan Province}}]
  hops: 6
expires: {(dt.date.today() + dt.timedelta(days=365)).isoformat()}
rate_limits: {{read: 1000000, meta: 1000000, write: 1000000}}
members:
""" + "".join(f"  - {{name: {m}, write: {str(m in WRITERS).lower()}, tlp_max: {lvl}, people: [analyst]"
              f"{', redact: [created_by_ref]' if hides else ''}}}\n" for m, (lvl, hides) in MEMBERS.items())
TS = "2024-01-01T00:00:00.000Z"
OPTIONS = ValidationOptions(version="2.1")
KINDS = ("indicator", "relationship", "report", "observed", "identity", "new-version", "delete")


def tlp_allows(member: str, author: str, level: str, recipients: list[str]) -> bool:
    """The TLP rule for one version, written out independently of the SQL and Python that enforce it."""
    ceiling = MEMBERS[member][0]
    if member == author:
        return True
    if level == "amber+strict":
        return False
    if level == "red":
        return ceiling == "red" and member in recipients
    return RANK[level] <= min(RANK[ceiling], RANK["amber"])


@pytest.fixture
def paths_hub(store: Store, tmp_path: Any) -> Iterator[tuple[Hub, dict[str, httpx.Client], Store]]:
    tokens = compact.apply(store, compact.parse(COMPACT))
    settings = Settings(db=store.url, port=free_port(), audit_key=str(tmp_path / "audit.key"),
                        leak_key=str(tmp_path / "leak.key"))
    with Hub(store, settings) as hub:
        clients = {m: client(hub, m, t) for m, t in tokens.items()}  # members, and "member/analyst" for warnings
        yield hub, clients, store
        for c in clients.values():
            c.close()


ops = st.lists(st.tuples(st.sampled_from(WRITERS), st.sampled_from(KINDS), st.sampled_from(markings.LEVELS),
                         st.lists(st.sampled_from(list(MEMBERS)), max_size=2, unique=True),
                         st.lists(st.integers(0, 40), min_size=1, max_size=3)),
               min_size=3, max_size=14)


class Model:
    """What was stored, as the test sees it: per id its versions (author, level, recipients, object)."""

    def __init__(self) -> None:
        self.versions: dict[str, list[dict[str, Any]]] = {}

    def ids(self, kinds: tuple[str, ...] = ()) -> list[str]:
        return [i for i, vs in self.versions.items() if vs and (not kinds or i.split("--")[0] in kinds)]

    def authors(self) -> set[str]:
        return {v["obj"]["created_by_ref"] for vs in self.versions.values() for v in vs if "created_by_ref" in v["obj"]}

    def received(self, member: str) -> dict[str, set[str]]:
        """id → the versions (modified) the member should receive: the TLP rule, hidden authorship (a member
        that hides authors receives no identity but its own: it gets their stand-ins), then closure (a
        version whose required references all point at nothing in its sight is withheld, its own aside),
        to the greatest consistent set."""
        hides = MEMBERS[member][1]
        sight = {(i, v["stamp"]): v
                 for i, vs in self.versions.items() for v in vs
                 if tlp_allows(member, v["author"], v["level"], v["recipients"])}
        while True:
            seen_ids = {i for i, _ in sight}
            drop = [k for k, v in sight.items() if v["author"] != member and not all(
                any(t in seen_ids or t not in self.versions or not self.versions[t] for t in group)
                for group in _required(v["obj"]))]
            if not drop:
                break
            for k in drop:
                del sight[k]
        ok = {k: v for k, v in sight.items() if not (hides and k[0].startswith("identity--") and v["author"] != member)}
        out: dict[str, set[str]] = {}
        for i, stamp in ok:
            out.setdefault(i, set()).add(stamp)
        return out


def _required(obj: dict[str, Any]) -> list[list[str]]:
    kind = obj["type"]
    if kind == "relationship":
        return [[obj["source_ref"]], [obj["target_ref"]]]
    if kind in ("report", "observed-data"):
        return [obj["object_refs"]]
    return []


def _build(kind: str, level: str, recipients: list[str], picks: list[int], model: Model,
           author: str) -> list[dict[str, Any]]:
    """The objects one operation posts (the last is the one the model records; observed-data brings its
    observable first)."""
    mark = {"object_marking_refs": [markings.TLP2[level][0]]}
    if level == "red":
        mark["x_tearline_recipients"] = recipients or ["alpha"]
    known = model.ids()
    target = lambda p, kinds=(): (list(model.ids(kinds)) or [ACTOR_ID])[p % max(1, len(model.ids(kinds)) or 1)]  # noqa: E731
    base = {"spec_version": "2.1", "created": TS, "modified": TS}
    authors = model.ids(("identity",))
    author_ref = {"created_by_ref": authors[picks[0] % len(authors)]} if authors and picks[0] % 3 else {}
    if kind == "indicator":
        return [{"type": "indicator", "id": f"indicator--{uuid.uuid4()}", **base, **mark, **author_ref,
                 "pattern": "[domain-name:value = 'a.example']", "pattern_type": "stix", "valid_from": TS,
                 "description": "a relay used by the cell", "x_tearline_about_ref": ACTOR_ID}]
    if kind == "identity":
        return [{"type": "identity", "id": f"identity--{uuid.uuid4()}", **base, **mark, "name": f"org {picks[0]}",
                 "identity_class": "organization", "x_tearline_about_ref": ACTOR_ID}]
    if kind == "relationship":
        ends = [i for i in known if i.split("--")[0] in ("indicator", "identity", "report", "observed-data")]
        source = ends[picks[0] % len(ends)] if ends else ACTOR_ID
        return [{"type": "relationship", "id": f"relationship--{uuid.uuid4()}", **base, **mark, **author_ref,
                 "relationship_type": "related-to", "source_ref": source, "target_ref": ACTOR_ID}]
    if kind == "report":
        refs = sorted({target(p) for p in picks} | ({ACTOR_ID} if picks[0] % 2 else set()))
        return [{"type": "report", "id": f"report--{uuid.uuid4()}", **base, **mark, **author_ref, "name": "weekly",
                 "published": TS, "object_refs": refs, "description": "what the cell did this week"}]
    if kind == "observed":
        ip = {"type": "ipv4-addr", "spec_version": "2.1", "id": f"ipv4-addr--{uuid.uuid4()}",
              "value": f"198.51.100.{picks[0] % 250}", **mark}
        seen = {"type": "observed-data", "id": f"observed-data--{uuid.uuid4()}", **base, **mark, **author_ref,
                "first_observed": TS, "last_observed": TS, "number_observed": 1, "object_refs": [ip["id"]],
                "x_tearline_about_ref": ACTOR_ID}
        return [ip, seen]
    return []


# no shrinking: each example drives a live hub, and the falsifying example is printed as found
@settings(max_examples=int(os.environ.get("TEARLINE_PATHS_EXAMPLES", "10")), deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture],
          phases=[Phase.explicit, Phase.reuse, Phase.generate])
@given(history=ops)
def test_every_member_receives_exactly_its_entitlement_on_every_path(paths_hub, history) -> None:  # type: ignore[no-untyped-def]
    hub, clients, store = paths_hub
    model = Model()
    for author, kind, level, recipients, picks in history:
        c = clients[author]
        if kind == "delete" or kind == "new-version":
            own = [i for i in model.ids(("indicator", "report", "identity"))
                   if any(v["author"] == author for v in model.versions[i])]
            if not own:
                continue
            ident = own[picks[0] % len(own)]
            if kind == "delete":
                last = max(v["obj"]["modified"] for v in model.versions[ident] if v["author"] == author)
                r = c.delete(f"/taxii2/paths/collections/intel/objects/{ident}/", params={"match[version]": last})
                assert r.status_code == 200, r.text
                model.versions[ident] = [v for v in model.versions[ident] if v["obj"]["modified"] != last]
                continue
            previous = model.versions[ident][-1]["obj"]
            stamp = f"2024-0{min(9, len(model.versions[ident]) + 1)}-01T00:00:00.000Z"
            if any(v["obj"]["modified"] == stamp for v in model.versions[ident]):
                continue
            new = {k: v for k, v in previous.items() if k != "x_tearline_recipients"} | {
                "modified": stamp, "object_marking_refs": [markings.TLP2[level][0]]}
            if level == "red":
                new["x_tearline_recipients"] = recipients or ["alpha"]
            sent = [new]
        else:
            sent = _build(kind, level, recipients, picks, model, author)
        r = c.post("/taxii2/paths/collections/intel/objects/", json={"objects": sent}, headers={"Content-Type": TAXII})
        status = r.json()
        stored = {s["id"]: s["version"] for s in status.get("successes", [])}
        for obj in sent:
            if obj["id"] in stored:
                lvl = markings.tlp_of(obj) or "amber"
                model.versions.setdefault(obj["id"], []).append(
                    {"author": author, "level": lvl, "recipients": obj.get("x_tearline_recipients", []), "obj": obj,
                     "stamp": stored[obj["id"]]})
        # a refusal here can only be closure or scope: never a validation problem of the test's own making
        for failure in status.get("failures", []):
            assert "not in this collection" in failure["message"] or "was refused" in failure["message"], failure
    hub_keys = keys.load(hub.settings)
    for member in MEMBERS:
        _check_member(member, clients[member], store, model, hub_keys)
    _check_upkeep(store)
    _check_drafts(hub, clients, model, history)


def _check_drafts(hub: Hub, clients: dict[str, httpx.Client], model: Model, history: list[Any]) -> None:
    """A warning drafted from a report holds what its drafter receives of it, and only if the addressee
    may read that part; a report the drafter does not receive answers like one that does not exist."""
    reports = model.ids(("report",))
    if not reports:
        return
    window = [dt.date.today().isoformat(), (dt.date.today() + dt.timedelta(days=3)).isoformat()]
    for n, (drafter, _kind, _level, _recipients, picks) in enumerate(history[:4]):
        report = reports[(picks[0] + n) % len(reports)]
        addressee = list(MEMBERS)[picks[-1] % len(MEMBERS)]
        api = httpx.Client(base_url=hub.url + "/tearline/warnings", auth=clients[f"{drafter}/analyst"].auth,
                           timeout=30)
        r = api.post("/", json={"to": addressee, "target": {"country": "AFG"}, "window": window,
                                "confidence": 40, "ask": "take care", "from_report": report})
        api.close()
        received = model.received(drafter).get(report)
        if not received:
            assert r.status_code == 400 and "no such report" in r.text, r.text
            continue
        newest = max((v for v in model.versions[report] if v["stamp"] in received), key=lambda v: v["stamp"])["obj"]
        if newest["object_marking_refs"] == [markings.TLP2["red"][0]]:
            # members may not know each other here: a RED part is never passed on, to anyone
            assert r.status_code == 400 and "TLP:RED" in r.text, r.text
            continue
        # and whoever the addressee is, member or not, the answer is the same: the addressee's copy of the
        # warning holds the part only if it may read it
        assert r.status_code == 201, r.text
        assert r.json()["report"]["description"].replace("\u00a0", " ") == newest["description"]


def _check_upkeep(store: Store) -> None:
    """What the write path kept incrementally is what rebuilding it from nothing gives."""
    from sqlalchemy import select

    from tearline import visibility
    from tearline.store.schema import withheld

    coll = store.collection("paths", "intel")
    assert coll is not None
    with store.engine.connect() as conn:
        trans = conn.begin()
        kept = set(conn.execute(select(withheld.c.member, withheld.c.added_us)))
        for m in store.members_of(conn, "paths"):
            visibility.recompute(conn, coll.num, visibility.Reader.of(m), False)
        rebuilt = set(conn.execute(select(withheld.c.member, withheld.c.added_us)))
        trans.rollback()
    assert kept == rebuilt


def _walk(c: httpx.Client, path: str, params: dict[str, str]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    params = dict(params, limit="7")
    while True:
        r = c.get(path, params=params)
        assert r.status_code == 200, r.text
        body = r.json()
        out += body.get("objects", [])
        if not body["more"]:
            return out
        params["next"] = body["next"]


def _check_member(member: str, c: httpx.Client, store: Store, model: Model, hub_keys: keys.HubKeys) -> None:
    base = "/taxii2/paths/collections/intel"
    expected = model.received(member)
    every = _walk(c, f"{base}/objects/", {"match[version]": "all"})
    ours = set(model.versions)
    got: dict[str, set[str]] = {}
    manifest = _walk(c, f"{base}/manifest/", {"match[version]": "all"})
    assert [m["id"] for m in manifest] == [o["id"] for o in every]  # the same versions, in the same order
    for entry in manifest:
        if entry["id"] in ours:
            got.setdefault(entry["id"], set()).add(entry["version"])
    assert got == {i: v for i, v in expected.items() if i in ours}, member
    received = {o["id"] for o in every}
    latest = {o["id"]: o for o in _walk(c, f"{base}/objects/", {})}
    for ident in ours:
        one = c.get(f"{base}/objects/{ident}/")
        versions = c.get(f"{base}/objects/{ident}/versions/")
        if ident in expected:
            assert one.status_code == 200 and versions.status_code == 200
            assert set(versions.json()["versions"]) == expected[ident]
        else:  # answered exactly like an id that does not exist
            assert one.status_code == versions.status_code == 404
    # the dashboard reads through the same gate: the same objects, the same copies, the same counts
    with store.engine.connect() as conn:
        me = next(m for m in store.members_of(conn, "paths") if m.name == member)
    coll = store.collection("paths", "intel")
    assert coll is not None
    today = dt.date.today()
    dashboard = {o["id"]: o for o in release.released(store, me, coll, hub_keys, today)}
    assert dashboard == latest
    counts = release.type_counts(store, me, coll, today)
    assert counts == {t: sum(1 for i in latest if i.split("--")[0] == t) for t in {i.split("--")[0] for i in latest}}
    for obj in every:  # every version it receives, not only the newest, is a valid copy
        if obj["id"] in ours:
            assert not [str(e) for e in validate_instance(obj, OPTIONS).errors], (member, obj)
    held = {i for i, vs in model.versions.items() if vs}
    for obj in (o for i, o in latest.items() if i in ours):
        mine = [v["obj"] for v in model.versions.get(obj["id"], []) if v["author"] == member]
        if mine and obj.get("modified") in {o.get("modified") for o in mine}:
            assert obj in mine  # its own version, exactly as it sent it (with the references it chose)
            continue
        if obj["type"] != "marking-definition":
            assert markings.tlp_of(obj) is not None, obj  # every other copy says which TLP governs it
        for target in _references(obj):  # what this history holds and the member does not receive is never named
            assert target in received or target not in held, (member, obj["id"], target)
        identities = set(model.ids(("identity",)))
        own_identities = {i for i in identities if any(v["author"] == member for v in model.versions.get(i, []))}
        if MEMBERS[member][1]:
            # no identity but its own (their stand-ins instead), and every stand-in of a held identity resolves
            stand_ins = {hub_keys.pseudonym("paths", i) for i in identities & held}
            for target in _references(obj):
                if target.startswith("identity--"):
                    assert target not in identities - own_identities, (member, obj)
                    assert target in received or target not in stand_ins, (member, obj)
    if MEMBERS[member][1]:
        identities = set(model.ids(("identity",)))
        own_identities = {i for i in identities if any(v["author"] == member for v in model.versions.get(i, []))}
        assert not (identities & received - own_identities), member


def _references(obj: dict[str, Any]) -> list[str]:
    out = []
    for key, value in obj.items():
        if key.endswith("_ref") and isinstance(value, str):
            out.append(value)
        elif key.endswith("_refs") and isinstance(value, list):
            out += [v for v in value if isinstance(v, str)]
    return [r for r in out if not r.startswith("marking-definition--")]
