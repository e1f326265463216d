"""Probe detection, replayed: scripted probing sessions and honest analyst sessions against the
running hub, then the scan over the audit trail; the test prints the detection rate and the
false-alarm rate and holds them to the bar (at least 95% and at most 2%).

Then properties over generated sessions in a compact whose ids live in several places (intel, warnings, an
organisation's other member, another compact): honest readers working across the collections they may read
raise nothing, and a member naming ids held only where it is given nothing is still alerted, learning
nothing from its answers or from the alert. Last, what each rule counts, on audit entries written by hand."""

from __future__ import annotations

import datetime as dt
import json
import random
import re
import subprocess
import sys
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tearline import compact, markings, probes, warn, write
from tearline.config import Settings
from tearline.model import Collection
from tearline.store import Store
from tests.conftest import TAXII, Hub, free_port
from tests.stixgen import ACTOR_ID, TS, indicator

INTEL = "/taxii2/probe/collections/intel/objects/"
WARNINGS = "/taxii2/probe/collections/warnings/objects/"
MANIFEST = "/taxii2/probe/collections/intel/manifest/"
HONEST = 100
KINDS = ("id-scan", "tlp-ceiling", "repeated-paging", "manifest-harvest", "targeting", "denied", "off-scope")
PER_KIND = 6


def names() -> tuple[list[str], list[tuple[str, str]]]:
    honest = [f"analyst-{i:02d}" for i in range(HONEST)]
    probers = [(f"prober-{k}-{i}", k) for k in KINDS for i in range(PER_KIND)]
    return honest, probers


def spec_text() -> str:
    honest, probers = names()
    members = ["  - {name: seeder, write: true, tlp_max: red}"]
    members += [f"  - {{name: {m}, write: {str(i % 2 == 0).lower()}, tlp_max: amber}}" for i, m in enumerate(honest)]
    members += [f"  - {{name: {m}, write: {str(k == 'off-scope').lower()}, tlp_max: amber}}" for m, k in probers]
    return ("name: probe\nscope:\n  actors: [{name: Islamic State Khorasan Province}]\n"
            "rate_limits: {read: 1000000, write: 1000000, meta: 1000000}\nmembers:\n" + "\n".join(members) + "\n")


def seed() -> tuple[list[dict[str, Any]], list[str]]:
    objs = [indicator(n) for n in range(300)]
    for n in range(15):
        for kind, extra in (("identity", {"name": f"Ministry unit {n}", "identity_class": "organization"}),
                            ("location", {"name": f"Safe house {n}", "country": "PK"})):
            objs.append({"type": kind, "spec_version": "2.1", "id": f"{kind}--{uuid.uuid5(uuid.NAMESPACE_URL, f'{kind}{n}')}",
                         "created": TS, "modified": TS, "object_marking_refs": [markings.TLP2["green"][0]],
                         "x_tearline_about_ref": ACTOR_ID, **extra})
    red = [indicator(1000 + n, object_marking_refs=[markings.TLP2["red"][0]], x_tearline_recipients=["seeder"])
           for n in range(10)]
    return objs + red, [r["id"] for r in red]


def walk(c: httpx.Client, path: str) -> str | None:
    """A full walk from the start, page by page; returns the newest date_added seen."""
    params: dict[str, Any] = {"limit": 100}
    last = None
    while True:
        r = c.get(path, params=params)
        body = r.json()
        last = r.headers.get("X-TAXII-Date-Added-Last", last)
        if not body.get("more"):
            return last
        params = {"limit": 100, "next": body["next"]}


def honest_session(c: httpx.Client, rnd: random.Random, visible: list[str], writer: bool) -> None:
    last = walk(c, INTEL)
    for _ in range(rnd.randint(3, 8)):
        c.get(INTEL, params={"added_after": last} if last else {})
    for oid in rnd.sample(visible, rnd.randint(2, 5)):
        c.get(INTEL + oid + "/")
    for _ in range(rnd.randint(0, 2)):  # a mistyped id
        c.get(INTEL + f"indicator--{uuid.UUID(int=rnd.getrandbits(128))}/")
    if rnd.random() < 0.5:
        c.get(INTEL, params={"match[type]": "indicator", "limit": 50})
    if rnd.random() < 0.4:
        c.get(INTEL, params={"match[type]": rnd.choice(["identity", "location"])})  # a look at who shares
    if rnd.random() < 0.3:
        walk(c, MANIFEST)
    if rnd.random() < 0.3:
        c.get(INTEL + rnd.choice(visible) + "/versions/")
    if rnd.random() < 0.3:
        c.get("/taxii2/probe/collections/nope/")  # a wrong collection id, once
    if writer and rnd.random() < 0.5:
        c.post(INTEL, content=json.dumps({"objects": [indicator(5000 + rnd.randrange(10**6))]}))
    if writer and rnd.random() < 0.3:  # one object forgot its link to the actor
        stray = indicator(9000 + rnd.randrange(10**6))
        del stray["x_tearline_about_ref"]
        c.post(INTEL, content=json.dumps({"objects": [stray]}))


def probing_session(kind: str, c: httpx.Client, rnd: random.Random, visible: list[str], red: list[str],
                    identities: list[str]) -> None:
    c.get(INTEL, params={"limit": 100})  # looks like anyone else at first
    c.get(INTEL + rnd.choice(visible) + "/")
    if kind == "id-scan":
        for _ in range(rnd.randint(12, 20)):
            c.get(INTEL + f"indicator--{uuid.UUID(int=rnd.getrandbits(128))}/")
    elif kind == "tlp-ceiling":
        for oid in rnd.sample(red, rnd.randint(2, 4)):
            c.get(INTEL + oid + "/")
    elif kind == "repeated-paging":
        for _ in range(rnd.randint(3, 4)):
            walk(c, INTEL)
    elif kind == "manifest-harvest":
        for _ in range(rnd.randint(3, 4)):
            walk(c, MANIFEST)
    elif kind == "targeting":
        _targeting(c, rnd, identities)
    elif kind == "denied":
        _denied(c, rnd)
    elif kind == "off-scope":
        _off_scope(c, rnd)


def _targeting(c: httpx.Client, rnd: random.Random, identities: list[str]) -> None:
    # reads every person, place and system it is given again and again; the further pages of one read are
    # that read, and reading by id one it is given is reading, not targeting
    for _ in range(rnd.randint(4, 6)):
        kinds = rnd.choice(["identity", "location", "infrastructure", "identity,location"])
        body = c.get(INTEL, params={"match[type]": kinds, "limit": 10}).json()
        if body.get("more"):
            c.get(INTEL, params={"match[type]": kinds, "limit": 10, "next": body["next"]})
    c.get(INTEL, params={"match[id]": rnd.choice(identities)})


GUESSED_COMPACTS = ("iran", "taliban", "aqap", "al-shabaab", "hts", "wagner", "ttp", "jnim", "boko-haram", "isis")


def _denied(c: httpx.Client, rnd: random.Random) -> None:
    # knocks on doors it may not open, each once: asking the same refused thing again tells a member nothing,
    # so only distinct refusals count
    doors: list[Callable[[], Any]] = [lambda g=g: c.get(f"/taxii2/{g}/") for g in GUESSED_COMPACTS]
    doors += [lambda p=p: c.post(p, content=json.dumps({"objects": [indicator(7)]})) for p in (INTEL, WARNINGS)]
    doors += [lambda: c.get(f"/taxii2/probe/collections/{uuid.UUID(int=rnd.getrandbits(128))}/objects/")] * 10
    for door in rnd.sample(doors, rnd.randint(6, 9)):
        door()


def _off_scope(c: httpx.Client, rnd: random.Random) -> None:
    for _ in range(rnd.randint(3, 5)):
        stray = indicator(8000 + rnd.randrange(10**6))
        del stray["x_tearline_about_ref"]
        c.post(INTEL, content=json.dumps({"objects": [stray, indicator(8500 + rnd.randrange(10**6))]}))


@pytest.fixture(params=["sqlite"])
def db_url(request: pytest.FixtureRequest, tmp_path: Any) -> str:
    # the replay is about the rules, not the backend; the scan's SQL is exercised on both elsewhere
    return f"sqlite:///{tmp_path / 'hub.db'}"


def test_probing_is_flagged_and_honest_work_is_not(store: Store, tmp_path: Any) -> None:
    tokens = compact.apply(store, compact.parse(spec_text()))
    honest, probers = names()
    objs, red = seed()
    rnd = random.Random(2026)
    settings = Settings(db=store.url, port=free_port(), admin_token="operator-secret", guard_scan_seconds=3600)

    def member(name: str) -> httpx.Client:
        return httpx.Client(base_url=hub.url, auth=(name, tokens[name]), timeout=60,
                            headers={"Accept": TAXII, "Content-Type": TAXII})

    with Hub(store, settings) as hub:
        with member("seeder") as c:
            status = c.post(INTEL, content=json.dumps({"objects": objs})).json()
            assert status["success_count"] == len(objs), status["failures"][:3]
        visible = [o["id"] for o in objs if o["id"] not in red and o["type"] == "indicator"]
        identities = [o["id"] for o in objs if o["type"] == "identity"]
        sessions: list[tuple[str, Callable[[httpx.Client], None]]] = []
        for i, name in enumerate(honest):
            sessions.append((name, lambda c, w=i % 2 == 0: honest_session(c, rnd, visible, w)))
        for name, kind in probers:
            sessions.append((name, lambda c, k=kind: probing_session(k, c, rnd, visible, red, identities)))
        rnd.shuffle(sessions)
        for name, session in sessions:
            with member(name) as c:
                session(c)
        admin = httpx.get(hub.url + "/tearline/admin/alerts/", headers={"Authorization": "Bearer operator-secret"})
        assert admin.status_code == 200
        flagged = {a["member"] for a in admin.json()["alerts"]}
        assert httpx.get(hub.url + "/tearline/admin/alerts/",
                         headers={"Authorization": "Bearer wrong"}).status_code == 401
        with member("analyst-00") as c:  # a member gets no hint that an admin API exists
            assert c.get("/tearline/admin/alerts/").status_code == 401
    by_rule = {}
    for a in probes.stored_alerts(store):
        by_rule.setdefault(a["member"], set()).add(a["rule"])
    caught = [m for m, _ in probers if m in flagged]
    false_alarms = [m for m in honest if m in flagged]
    detection, false_rate = len(caught) / len(probers), len(false_alarms) / len(honest)
    print(f"\nprobe replay: {len(caught)}/{len(probers)} probing sessions flagged ({detection:.1%}); "
          f"{len(false_alarms)}/{len(honest)} honest sessions flagged ({false_rate:.1%})")
    for kind in KINDS:
        mine = [m for m, k in probers if k == kind]
        print(f"  {kind}: {sum(m in flagged for m in mine)}/{len(mine)} flagged, rules: "
              f"{sorted({r for m in mine for r in by_rule.get(m, ())})}")
    if false_alarms:
        print(f"  false alarms: {[(m, sorted(by_rule[m])) for m in false_alarms]}")
    assert detection >= 0.95 and false_rate <= 0.02


def test_admin_api_does_not_exist_without_a_token_and_cli_lists_alerts(store: Store, tmp_path: Any) -> None:
    tokens = compact.apply(store, compact.parse(spec_text()))
    with Hub(store, Settings(db=store.url, port=free_port())) as hub:
        missing = httpx.get(hub.url + "/tearline/admin/alerts/", headers={"Authorization": "Bearer x"})
        assert missing.status_code == 404
        with httpx.Client(base_url=hub.url, auth=("prober-id-scan-0", tokens["prober-id-scan-0"]),
                          headers={"Accept": TAXII}) as c:
            for _ in range(12):
                c.get(INTEL + f"indicator--{uuid.uuid4()}/")
    done = subprocess.run([sys.executable, "-m", "tearline", "guard", "alerts", "--json", "--db", store.url],
                          capture_output=True, text=True, check=True)
    alerts = json.loads(done.stdout)
    assert [(a["member"], a["rule"], a["count"]) for a in alerts] == [("prober-id-scan-0", "id-scan", 10)]
    assert len(alerts[0]["evidence"]) == 10
    again = subprocess.run([sys.executable, "-m", "tearline", "guard", "scan", "--db", store.url],
                           capture_output=True, text=True, check=True)
    assert "0 new alert(s)" in again.stdout  # a scan raises each alert once


# --- reading across collections ----------------------------------------------------------------------------
#
# A compact whose ids live in more than one place: intel, the warnings collection (written by the hub, each
# object for its addressees alone), an organisation's other member, and another compact. Readers are made as
# the examples need them, so each example is one member's whole record and nothing of another's.

CROSS = "/taxii2/cross/collections/{}/objects/"
CROSS_MANIFEST = "/taxii2/cross/collections/{}/manifest/"
RED, STRICT = markings.TLP2["red"][0], markings.TLP2["amber+strict"][0]
PLACES = ("intel", "warnings")


def _sdo(kind: str, n: str, marking: str = markings.TLP2["green"][0], **extra: Any) -> dict[str, Any]:
    oid = f"{kind}--{uuid.uuid5(uuid.NAMESPACE_URL, f'cross-{kind}-{n}')}"
    if kind == "indicator":
        return indicator(0, object_marking_refs=[marking], **extra) | {"id": oid, "name": f"Relay {n}"}
    if kind == "ipv4-addr":  # an observable: its id would be made from its value, and it has no dates
        return {"type": kind, "spec_version": "2.1", "id": oid, "value": f"10.0.{len(n)}.{ord(n[-1])}",
                "object_marking_refs": [marking], "x_tearline_about_ref": ACTOR_ID, **extra}
    shape = {"identity": {"name": f"Unit {n}", "identity_class": "organization"},
             "location": {"country": "AF", "name": f"Compound {n}"}}[kind]
    return {"type": kind, "spec_version": "2.1", "id": oid, "created": TS, "modified": TS,
            "object_marking_refs": [marking], "x_tearline_about_ref": ACTOR_ID, **shape, **extra}


class Cross:
    """The world the cross-collection properties run in, and its readers."""

    def __init__(self, store: Store, hub: Hub, tokens: dict[str, str]):
        self.store, self.hub, self.tokens = store, hub, tokens
        self.names: list[str] = []  # every reader made so far (the compact file lists them all)
        self.unused: list[str] = []
        self.known: dict[str, dict[str, set[str]]] = {}  # reader → id → the collections it is given it in
        self.hidden: dict[str, list[str]] = {}  # reader → ids held only where it is given nothing
        self.held_out_of_sight: set[str] = set()  # known to readers, but held in intel out of their own sight
        green = [_sdo("indicator", f"g{n}") for n in range(24)]
        green += [_sdo(k, f"g{n}") for k in ("identity", "location") for n in range(3)]
        self.green = [o["id"] for o in green]
        red_other = [_sdo("indicator", f"r{n}", RED, x_tearline_recipients=["other"]) for n in range(4)]
        sco = [_sdo("ipv4-addr", f"s{n}", RED, x_tearline_recipients=["other"]) for n in range(3)]
        # an observable is in scope through what it is related to
        links = [_relationship(r["id"], o["id"]) | {"object_marking_refs": [RED], "x_tearline_recipients": ["other"]}
                 for r, o in zip(red_other, sco, strict=False)]
        self.post("seeder", "intel", green + red_other + sco + links)
        self.red_other, self.sco = [o["id"] for o in red_other], [o["id"] for o in sco]
        self.strict_stranger = self.ids(self.post("stranger", "intel", [_sdo("indicator", f"x{n}", STRICT)
                                                                          for n in range(3)]))
        self.strict_sister = self.ids(self.post("sister", "intel", [_sdo("indicator", f"y{n}", STRICT)
                                                                      for n in range(3)]))
        # green intel objects that warnings also hold, for "other": hidden there, given in intel
        warn_other = [_sdo("location", f"w{n}", RED) for n in range(3)]
        self.hub_write("warnings", [o | {"object_marking_refs": [RED], "x_tearline_recipients": ["other"]}
                                    for o in green[:3] + warn_other])
        self.warn_other = self.ids(warn_other)
        self.elsewhere = self.ids(self.post("outsider", "intel", [_sdo("indicator", f"e{n}") for n in range(3)],
                                            root="elsewhere"))

    @staticmethod
    def ids(objs: list[dict[str, Any]]) -> list[str]:
        return [o["id"] for o in objs]

    def client(self, name: str) -> httpx.Client:
        return httpx.Client(base_url=self.hub.url, auth=(name, self.tokens[name]), timeout=60,
                            headers={"Accept": TAXII, "Content-Type": TAXII})

    def post(self, name: str, place: str, objs: list[dict[str, Any]], root: str = "cross") -> list[dict[str, Any]]:
        with self.client(name) as c:
            status = c.post(f"/taxii2/{root}/collections/{place}/objects/", content=json.dumps({"objects": objs})).json()
        assert status["success_count"] == len(objs), status.get("failures")
        return objs

    def hub_write(self, place: str, objs: list[dict[str, Any]]) -> None:
        with self.store.engine.begin() as conn:
            write.hub_write(self.store, conn, self.store.collection("cross", place, conn), objs, None)

    def reader(self, acme: bool) -> str:
        """A member no example has used yet: of organisation acme (as the sister is), or of none."""
        if not any(_acme(n) == acme for n in self.unused):
            self._batch()
        name = next(n for n in self.unused if _acme(n) == acme)
        self.unused.remove(name)
        return name

    def _batch(self) -> None:
        b = len(self.names) // 8
        names = [f"reader-{b}-{n}" for n in range(8)]
        self.names += names
        self.tokens |= compact.apply(self.store, compact.parse(cross_spec(self.names)))
        # held in intel out of their sight (RED for "other"), and delivered to them in warnings
        red_copy = [_sdo("indicator", f"c{b}-{n}", RED, x_tearline_recipients=["other"]) for n in range(2)]
        self.post("seeder", "intel", red_copy)
        # and a warning each, for it alone (which it may copy into intel: nobody else knows of it)
        mine = {name: _sdo("location", f"m-{name}", RED, x_tearline_recipients=[name]) for name in names}
        self.hub_write("warnings", [o | {"x_tearline_recipients": names} for o in red_copy] + list(mine.values()))
        self.held_out_of_sight |= set(self.ids(red_copy)) | set(self.strict_sister)
        for name in names:
            acme = _acme(name)
            self.known[name] = ({g: {"intel"} for g in self.green} | {o["id"]: {"warnings"} for o in red_copy}
                                | {mine[name]["id"]: {"warnings"}})
            if acme:  # given nowhere, but its organisation wrote them
                self.known[name] |= {s: set() for s in self.strict_sister}
            self.hidden[name] = (self.red_other + self.strict_stranger + self.warn_other + self.elsewhere
                                 + ([] if acme else self.strict_sister))
        self.unused = list(reversed(names))


def _relationship(source: str, target: str) -> dict[str, Any]:
    return {"type": "relationship", "spec_version": "2.1", "id": f"relationship--{uuid.uuid4()}", "created": TS,
            "modified": TS, "relationship_type": "related-to", "source_ref": source, "target_ref": target}


def _acme(reader: str) -> bool:
    return int(reader.rsplit("-", 1)[1]) % 2 == 0


def cross_spec(readers: list[str]) -> str:
    members = ["  - {name: seeder, write: true, tlp_max: red}", "  - {name: other, write: true, tlp_max: red}",
               "  - {name: stranger, write: true, tlp_max: amber}",
               "  - {name: sister, write: true, tlp_max: amber, organisation: acme}"]
    members += [f"  - {{name: {r}, write: true, tlp_max: amber{', organisation: acme' if _acme(r) else ''}}}"
                for r in readers]
    return ("name: cross\nscope:\n  actors: [{name: Islamic State Khorasan Province}]\n"
            "rate_limits: {read: 1000000, write: 1000000, meta: 1000000}\nmembers:\n" + "\n".join(members) + "\n")


ELSEWHERE = ("name: elsewhere\nscope:\n  actors: [{name: Islamic State Khorasan Province}]\n"
             "rate_limits: {read: 1000000, write: 1000000, meta: 1000000}\n"
             "members:\n  - {name: outsider, write: true, tlp_max: red}\n")


@pytest.fixture
def cross(store: Store) -> Any:
    tokens = compact.apply(store, compact.parse(cross_spec([])))
    tokens |= compact.apply(store, compact.parse(ELSEWHERE))
    with Hub(store, Settings(db=store.url, port=free_port(), guard_scan_seconds=3600)) as hub:
        yield Cross(store, hub, tokens)


def alerts_naming(store: Store, member: str) -> list[tuple[str, int]]:
    probes.scan(store)
    return [(a["rule"], a["count"]) for a in probes.stored_alerts(store, member=member)]


class Session:
    """One reader's honest work, as a TAXII client does it: every answer is checked against what the reader
    is given, so the property is about sessions that really read across the collections."""

    def __init__(self, world: Cross, name: str, c: httpx.Client, data: Any):
        self.world, self.name, self.c, self.data = world, name, c, data
        self.known = world.known[name]
        self.last: dict[str, str] = {}  # collection → the newest date_added it was shown
        self.budget = {"walk": 2, "full-read": 2, "typo": 2}  # below each rule's threshold, as in normal work

    def draw(self, strategy: Any) -> Any:
        return self.data.draw(strategy)

    def pages(self, url: str, params: dict[str, Any], place: str) -> set[str]:
        """Every id of an answer, page after page (``next``, as TAXII clients page)."""
        got: set[str] = set()
        while True:
            r = self.c.get(url, params=params)
            assert r.status_code == 200, r.text
            body = r.json()
            if "X-TAXII-Date-Added-Last" in r.headers:
                self.last[place] = r.headers["X-TAXII-Date-Added-Last"]
            got |= {o["id"] for o in body.get("objects", [])}
            if not body.get("more"):
                return got
            params = params | {"next": body["next"]}

    def given_in(self, place: str) -> set[str]:
        return {i for i, places in self.known.items() if place in places}

    def step(self, kind: str) -> None:
        getattr(self, "do_" + kind.replace("-", "_"))()

    def do_by_id(self) -> None:
        # asked in the collection it came from or in the other one (following a reference, or a mistake)
        oid, place = self.draw(st.sampled_from(list(self.known))), self.draw(st.sampled_from(PLACES))
        suffix = self.draw(st.sampled_from(["", "versions/"]))
        r = self.c.get(CROSS.format(place) + oid + "/" + suffix)
        assert r.status_code == (200 if place in self.known[oid] else 404), (oid, place, r.text)

    def do_match(self) -> None:
        asked = self.draw(st.lists(st.sampled_from(list(self.known)), min_size=1, max_size=6, unique=True))
        place = self.draw(st.sampled_from(PLACES))
        url = self.draw(st.sampled_from([CROSS, CROSS_MANIFEST])).format(place)
        params = {"match[id]": ",".join(asked), "limit": self.draw(st.sampled_from([1, 2, 50]))}
        if url.endswith("/objects/"):
            assert self.pages(url, params, place) == set(asked) & self.given_in(place)
        else:
            self.pages(url, params, place)

    def do_walk(self) -> None:
        place = self.draw(st.sampled_from(PLACES))
        url = self.draw(st.sampled_from([CROSS, CROSS_MANIFEST])).format(place)
        if place == "intel":  # a sync and one more, no more: repeated paging is what that rule is for
            if self.budget["walk"] == 0:
                return
            self.budget["walk"] -= 1
        self.pages(url, {"limit": self.draw(st.sampled_from([7, 100]))}, place)

    def do_poll(self) -> None:
        place = self.draw(st.sampled_from(PLACES))
        if place in self.last:
            self.pages(CROSS.format(place), {"added_after": self.last[place], "limit": 5}, place)

    def do_filter(self) -> None:
        place = self.draw(st.sampled_from(PLACES))
        kind = self.draw(st.sampled_from(["identity", "location", "indicator"]))
        params: dict[str, Any] = {"match[type]": kind, "limit": 2}
        if place in self.last and self.draw(st.booleans()):
            params["added_after"] = self.last[place]  # polling its filter: one question however often
        elif place == "intel" and kind != "indicator":
            if self.budget["full-read"] == 0:
                return
            self.budget["full-read"] -= 1
        self.pages(CROSS.format(place), params, place)

    def do_write(self) -> None:
        """An indicator related to something the writer may read, in intel or in warnings (where it must send
        its copy along, or be told the target is not in the collection)."""
        # writes naming ids held in intel out of the writer's own sight are counted by tearline.write, which
        # judges the collection written alone: test_a_write_naming_an_id_given_in_another_collection
        targets = [i for i in self.known if i not in self.world.held_out_of_sight]
        target = self.draw(st.sampled_from(targets))
        n = self.draw(st.integers(0, 10**9))
        ind = _sdo("indicator", f"{self.name}-{n}")
        objs = [ind, _relationship(ind["id"], target)]
        if "intel" not in self.known[target] and self.draw(st.booleans()):
            objs.append(self.c.get(CROSS.format("warnings") + target + "/").json()["objects"][0])
        status = self.c.post(CROSS.format("intel"), content=json.dumps({"objects": objs})).json()
        for done in status.get("successes", []):
            self.known[done["id"]] = self.known.get(done["id"], set()) | {"intel"}

    def do_typo(self) -> None:
        if self.budget["typo"]:
            self.budget["typo"] -= 1
            assert self.c.get(CROSS.format("intel") + f"indicator--{uuid.uuid4()}/").status_code == 404

    def do_wrong_url(self) -> None:
        # a client set up with a collection that is not there, polling it as it was told to
        assert self.c.get(CROSS.format("nope"), params={"limit": 5}).status_code == 404


HONEST_STEPS = ("by-id", "match", "walk", "poll", "filter", "write", "typo", "wrong-url")


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_honest_sessions_reading_across_collections_raise_nothing(cross: Cross, data: Any) -> None:
    name = cross.reader(data.draw(st.booleans(), label="of organisation acme"))
    with cross.client(name) as c:
        session = Session(cross, name, c, data)
        for kind in data.draw(st.lists(st.sampled_from(HONEST_STEPS), min_size=4, max_size=24)):
            session.step(kind)
    assert alerts_naming(cross.store, name) == []


def _ask(c: httpx.Client, way: str, oid: str, cover: list[str]) -> httpx.Response:
    """Ask for ``oid`` one way or another, with ids it is given alongside where a way takes several."""
    if way in ("intel", "warnings"):
        return c.get(CROSS.format(way) + oid + "/")
    if way == "versions":
        return c.get(CROSS.format("intel") + oid + "/versions/")
    if way == "another-compact":
        return c.get(f"/taxii2/elsewhere/collections/intel/objects/{oid}/")
    url = (CROSS if way.startswith("match-objects") else CROSS_MANIFEST).format(way.rsplit("-", 1)[1])
    return c.get(url, params={"match[id]": ",".join([*cover, oid]), "limit": 100})


WAYS = ("intel", "warnings", "versions", "another-compact", "match-objects-intel", "match-objects-warnings",
        "match-manifest-intel")


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_a_member_naming_ids_hidden_from_it_is_still_alerted(cross: Cross, data: Any) -> None:
    name = cross.reader(data.draw(st.booleans(), label="of organisation acme"))
    with cross.client(name) as c:
        session = Session(cross, name, c, data)
        for kind in data.draw(st.lists(st.sampled_from(HONEST_STEPS), max_size=6)):
            session.step(kind)
        targets = data.draw(st.lists(st.sampled_from(cross.hidden[name]), min_size=2, max_size=4, unique=True))
        for oid in targets:
            way = data.draw(st.sampled_from(WAYS))
            cover = data.draw(st.lists(st.sampled_from(list(session.known)), max_size=3, unique=True))
            probe = _ask(c, way, oid, cover)
            # answered exactly as an id nobody holds: the member learns nothing from the answer ...
            nothing = f"{oid.split('--')[0]}--{uuid.uuid4()}"
            assert probe.status_code == (absent := _ask(c, way, nothing, cover)).status_code
            assert probe.text.replace(oid, "ID") == absent.text.replace(nothing, "ID")
        before = c.get(CROSS.format("intel") + targets[0] + "/")
        raised = alerts_naming(cross.store, name)
        # ... nor from the alert, which changes nothing it is answered
        after = c.get(CROSS.format("intel") + targets[0] + "/")
        assert (before.status_code, before.text) == (after.status_code, after.text)
    assert ("hidden-objects", 2) in raised, raised


def test_hidden_observables_count_as_unknown_ids_not_as_hidden_objects(cross: Cross) -> None:
    """An observable's id is made from its value: naming one shows that the member knows the value, which
    anyone who saw the address may, not that it learned an id it should not have."""
    name = cross.reader(acme=False)
    with cross.client(name) as c:
        for oid in cross.sco:
            assert c.get(CROSS.format("intel") + oid + "/").status_code == 404
    assert alerts_naming(cross.store, name) == []
    with cross.client("stranger") as c:  # and enough of them are an id scan, as any unknown ids are
        for _ in range(3):
            for oid in cross.sco:
                c.get(CROSS.format("intel") + oid + "/")
            for _ in range(3):
                c.get(CROSS.format("intel") + f"ipv4-addr--{uuid.uuid4()}/")
    assert [r for r, _ in alerts_naming(cross.store, "stranger")] == ["id-scan"]


def test_the_author_of_a_warning_asking_for_it_where_only_its_addressee_reads_it(cross: Cross) -> None:
    """The warnings API shows a warning's drafter its report and place; asking the warnings collection for them
    (delivered to the addressee alone) is checking on its own warning, and a member of its organisation may."""
    drafter = cross.reader(acme=True)
    member = next(m for m in cross.store.compact_members("cross") if m.name == drafter)
    soon = (dt.date.today() + dt.timedelta(days=10)).isoformat()
    w = warn.draft(cross.store, "cross", drafter, "other", False, {"country": "AFG", "city": "Kabul"},
                   (dt.date.today().isoformat(), soon), 70, "raise security", "An attack is being prepared.",
                   author_member=member)
    warn.move(cross.store, w["id"], "approve", "operator")
    warn.move(cross.store, w["id"], "deliver", "operator-2")
    ids = [w["report"]["id"], w["report"]["object_refs"][0]]
    colleague = next(n for n in cross.names if n != drafter and _acme(n))
    for name in (drafter, colleague):
        with cross.client(name) as c:
            for oid in ids:
                for place in PLACES:
                    assert c.get(CROSS.format(place) + oid + "/").status_code == 404
        assert alerts_naming(cross.store, name) == []
    outsider = cross.reader(acme=False)  # while another member naming them knows what it should not
    with cross.client(outsider) as c:
        for oid in ids:
            c.get(CROSS.format("warnings") + oid + "/")
    assert [r for r, _ in alerts_naming(cross.store, outsider)] == ["hidden-objects"]


def test_an_id_is_judged_as_things_stood_when_it_was_asked(cross: Cross) -> None:
    """A partner says it will share report X; the reader polls for X until it comes. Shared out of the reader's
    sight, X is hidden from then on, but the polls before were for an id nobody held."""
    name = cross.reader(acme=False)
    later = _sdo("indicator", f"{name}-later", RED, x_tearline_recipients=["other"])
    with cross.client(name) as c:
        for _ in range(3):
            assert c.get(CROSS.format("intel") + later["id"] + "/").status_code == 404
        assert alerts_naming(cross.store, name) == []
        cross.post("seeder", "intel", [later])
        c.get(CROSS.format("intel") + later["id"] + "/")
    assert alerts_naming(cross.store, name) == []  # one hidden id, once: not two
    with cross.client(name) as c:
        c.get(CROSS.format("intel") + cross.red_other[0] + "/")
    assert alerts_naming(cross.store, name) == [("hidden-objects", 2)]


def test_a_writer_told_its_target_is_not_in_the_collection_is_not_testing_the_scope(cross: Cross) -> None:
    name = cross.reader(acme=False)
    target = next(i for i, places in cross.known[name].items()
                  if places == {"warnings"} and i not in cross.held_out_of_sight)
    with cross.client(name) as c:
        for n in range(4):  # a relationship to what it reads in warnings, without sending it along
            ind = _sdo("indicator", f"{name}-t{n}")
            status = c.post(CROSS.format("intel"), content=json.dumps({"objects": [ind, _relationship(ind["id"], target)]}))
            assert "not in this collection" in status.json()["failures"][0]["message"]
    assert alerts_naming(cross.store, name) == []
    with cross.client(name) as c:
        for n in range(3):  # objects that lie outside the compact's scope, a new one each time
            stray = _sdo("indicator", f"{name}-s{n}")
            del stray["x_tearline_about_ref"]
            c.post(CROSS.format("intel"), content=json.dumps({"objects": [stray]}))
    assert [r for r, _ in alerts_naming(cross.store, name)] == ["off-scope-writes"]


def test_a_write_naming_an_id_given_in_another_collection(cross: Cross) -> None:
    name = cross.reader(acme=False)
    given_in_warnings = next(i for i, places in cross.known[name].items()
                             if places == {"warnings"} and i in cross.held_out_of_sight)
    with cross.client(name) as c:
        for n in range(2):
            ind = _sdo("indicator", f"{name}-w{n}")
            c.post(CROSS.format("intel"), content=json.dumps({"objects": [ind, _relationship(ind["id"], given_in_warnings)]}))
    assert alerts_naming(cross.store, name) == []


# --- what each rule counts, on entries written by hand ------------------------------------------------------

INTEL_COLL = Collection("11111111-1111-4111-8111-111111111111", "c", "intel", "", "", True, 1)
WARN_COLL = Collection("22222222-2222-4222-8222-222222222222", "c", "warnings", "", "", False, 2)


class Look:
    """Lookups for entries written by hand: ids stand as ``standing`` says (absent otherwise)."""

    def __init__(self, standing: dict[str, str] | None = None, refusals: dict[int, list[tuple[str, str]]] | None = None):
        self._standing, self._refusals = standing or {}, refusals or {}

    def standing(self, api_root: str | None, member: str, object_id: str) -> str | None:
        return self._standing.get(object_id, "absent")

    def collection(self, api_root: str | None, key: str) -> Collection | None:
        return {"intel": INTEL_COLL, "warnings": WARN_COLL}.get(key) if api_root == "c" else None

    def refusals(self, entry: dict[str, Any]) -> list[tuple[str, str]] | None:
        return self._refusals.get(entry["seq"])


class Trail:
    """Audit entries of one member, in order, fed to a Detector as the scan feeds them."""

    def __init__(self, look: Look | None = None):
        self.look, self.detector, self.seq, self.alerts = look or Look(), probes.Detector(), 0, []

    def __call__(self, at_s: float, path: str, query: dict[str, Any] | None = None, status: int = 200,
                 method: str = "GET", reason: str = "", ids: tuple[str, ...] = (), endpoint: str | None = None) -> int:
        self.seq += 1
        if endpoint is None:
            endpoint = next(e for e, shape in ((probes.VERSIONS, r"/objects/[^/]+/versions/$"),
                                               (probes.OBJECT, r"/objects/[^/]+/$"), (probes.OBJECTS, r"/objects/$"),
                                               (probes.MANIFEST, r"/manifest/$"), (path, "")) if re.search(shape, path))
        self.alerts += self.detector.feed({
            "seq": self.seq, "at_us": int(at_s * 1e6), "actor": "m", "api_root": "c", "method": method,
            "endpoint": endpoint, "path": path, "query": json.dumps(query or {}), "status": status, "reason": reason,
            "ids": json.dumps(list(ids)), "count": len(ids), "hidden": None}, self.look)
        return self.seq

    def rules(self) -> list[str]:
        return [a.rule for a in self.alerts]


OBJS, MAN = "/taxii2/c/collections/intel/objects/", "/taxii2/c/collections/intel/manifest/"
LIMITED = "member 'm' is over its limit of 60 read requests a minute; retry in {} s"


def test_paging_polling_and_retrying_are_one_question() -> None:
    t = Trail()
    for n in range(50):  # a client that pages, polls and retries all day
        t(n * 60, OBJS, {"added_after": "2024-01-01T00:00:00Z"})
        t(n * 60 + 1, OBJS, {"added_after": "2024-01-01T00:00:00Z", "next": f"p{n}"})
        t(n * 60 + 2, OBJS, {"match[type]": "location", "added_after": "2024-01-01T00:00:00Z"})
        t(n * 60 + 3, OBJS, {"match[type]": "identity,location", "next": f"q{n}"})
        t(n * 60 + 4, "/taxii2/c/collections/nope/objects/", {"added_after": f"2024-01-{n % 28 + 1:02d}"}, status=404)
        t(n * 60 + 5, OBJS, method="POST", status=403, endpoint=probes.OBJECTS)
        t(n * 60 + 6, OBJS + "indicator--7c1a4f4e-1d37-4b55-9b8a-6f0c8a6a0001/", status=404)  # deleted since
        t(n * 60 + 7, "/taxii2/c/collections/warnings/objects/")  # its own warnings, walked each time
    assert t.rules() == []


def test_asking_again_differently_still_counts() -> None:
    t = Trail()
    for n in range(4):  # reading every person and place again and again
        t(n * 60, OBJS, {"match[type]": "identity"})
    for n in range(6):  # knocking on six different doors
        t(300 + n, f"/taxii2/other-{n}/", status=404, endpoint="/taxii2/{api_root}/")
    for n in range(3):  # full walks, each finished, minutes apart
        t(600 + n * 900, OBJS)
    assert sorted(t.rules()) == ["denied", "repeated-paging", "targeting"]


def test_a_walk_cut_by_a_429_and_started_again_is_the_same_walk_once() -> None:
    t = Trail()
    t(0, MAN)
    t(1, MAN, {"next": "a"}, status=429, reason=LIMITED.format(1))
    t(3, MAN)  # resumed: the same walk
    t(4, MAN, {"next": "b"}, status=429, reason=LIMITED.format(1))
    t(6, MAN)  # resumed again: a client that restarts each time it is refused is walking again
    assert t.rules() == []
    t(8, MAN)
    assert t.rules() == ["manifest-harvest"]
    u = Trail()
    for n in range(3):  # back to back, nothing cut: three walks
        u(n, MAN)
    assert u.rules() == ["manifest-harvest"]


@settings(max_examples=200, deadline=None)
@given(clients=st.lists(st.lists(st.tuples(st.integers(1, 5), st.floats(0, 3)), min_size=1, max_size=30),
                        min_size=1, max_size=probes.CONCURRENT),
       start=st.lists(st.floats(0, 5), min_size=probes.CONCURRENT, max_size=probes.CONCURRENT))
def test_clients_that_wait_as_429_tells_them_are_never_counted(clients: list[list[tuple[int, float]]],
                                                                start: list[float]) -> None:
    """However many 429s, at whatever Retry-After: each of up to CONCURRENT clients of one member waits at least
    what it was told before it asks again."""
    refused = []
    for c, schedule in enumerate(clients):
        at = start[c]
        for retry, extra in schedule:
            refused.append((at, retry))
            at += retry + extra
    t = Trail()
    for at, retry in sorted(refused):
        t(at, OBJS, {"next": "x"}, status=429, reason=LIMITED.format(retry))
    assert t.rules() == []


def test_a_member_that_ignores_retry_after_is_counted() -> None:
    t = Trail()
    for n in range(probes.CONCURRENT + 6):
        t(n * 0.05, OBJS, status=429, reason=LIMITED.format(1))
    assert t.rules() == ["denied"] and t.alerts[0].count == 6


def test_match_id_values_are_judged_one_by_one() -> None:
    hidden = [f"indicator--7c1a4f4e-1d37-4b55-9b8a-6f0c8a6a00{n:02d}" for n in range(4)]
    seen = "indicator--7c1a4f4e-1d37-4b55-9b8a-6f0c8a6a0099"
    look = Look(dict.fromkeys(hidden, "hidden") | {seen: "seen"})
    t = Trail(look)
    # one id it is given (returned), one given elsewhere (not returned here), and two hidden ones: the ids it
    # is given do not cover for the hidden ones, nor the hidden ones taint them
    t(0, OBJS, {"match[id]": f"{hidden[0]},{seen}"}, ids=())
    t(1, "/taxii2/c/collections/warnings/manifest/", {"match[id]": [seen, hidden[1]]}, ids=(seen,))
    assert t.rules() == ["hidden-objects"] and t.alerts[0].count == 2
    u = Trail(look)
    for n in range(12):  # the same ids it is given, asked in the other collection all day
        u(n, "/taxii2/c/collections/warnings/objects/", {"match[id]": seen})
        u(n, "/taxii2/c/collections/warnings/objects/" + seen + "/", status=404)
    # a value the audit trail cut short (a long match[id]) is not an id the member named
    u(20, OBJS, {"match[id]": ",".join([seen] * 9) + ",indicator--7c1a4f4e-1d… [1,000 characters, sha256 ab]"})
    assert u.rules() == []


def test_only_scope_refusals_count_and_a_feed_pushed_again_counts_once() -> None:
    scope = "{} is not connected to the compact's actors within 2 hops (not connected to it at all); send it ..."
    missing = "target_ref: {} is not in this collection; send it in the same envelope"
    ids = [f"indicator--7c1a4f4e-1d37-4b55-9b8a-6f0c8a6a01{n:02d}" for n in range(5)]
    refusals = {n: [(ids[0], scope.format(ids[0])), (ids[1], missing.format(ids[4]))] for n in range(1, 11)}
    refusals |= {11: [(ids[2], scope.format(ids[2]))], 12: [(ids[3], scope.format(ids[3]))],
                 13: [(ids[1], missing.format(ids[4]))]}
    t = Trail(Look(refusals=refusals))
    for n in range(13):  # a connector pushing the same feed ten times, then two new off-scope objects
        t(n, OBJS, method="POST", status=202, reason="2 of 3 objects refused", endpoint=probes.OBJECTS)
    assert t.rules() == ["off-scope-writes"] and t.alerts[0].count == 3
    u = Trail(Look(refusals={n: [(ids[1], missing.format(ids[4]))] for n in range(1, 11)}))
    for n in range(10):  # a writer whose relationship points at what is not in the collection
        u(n, OBJS, method="POST", status=202, reason="1 of 2 objects refused", endpoint=probes.OBJECTS)
    assert u.rules() == []
