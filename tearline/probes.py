"""Probe detection: rules over the audit stream that notice a member using the compact to gather
intelligence on its partners or on what it may not see.

Each audit entry is classified (below), and each member's recent signals are counted in a sliding window.
A rule fires when its count in the window reaches its threshold; the alert names the member, the rule, the
count and the audit entries that are its evidence, and the rule's window starts afresh for that member.

An alert names a member only for behaviour that is really probing. So no rule counts what TAXII clients do
in honest work — the next page of an answer, a poll with added_after, the same request again after a refusal
or a 429 — and the id rules judge an id by what the member knows across its whole compact, never by the
collection it happened to ask. The rules, and what each leaves out on purpose:

- **hidden-objects** (signal hidden-id): the member named an id (a GET of an object or its versions answered
  404, or a ``match[id]`` value a 200 answer did not return) that the hub holds somewhere while the member
  receives nothing of it. This is judged over the member's whole compact and the whole hub, never in the
  collection asked (tearline.release.sight): an id it is given in any collection it may read — asked in
  another collection, by a reader following a reference from intel to warnings or asking the wrong one — and
  one it or a member of its own organisation (the compact file's ``organisation``) wrote, or that names a
  warning one of them drafted, is honest knowledge; an id held only at a stricter TLP, on another member's
  chain, in a warning to someone else or in another compact is one it can know only from elsewhere.
  Observables (SCOs) are the exception: their ids are made from their values (STIX 2.1 §2.9), so naming a
  hidden one shows only that the member knows the value, and it counts as an unknown id. Each distinct id
  counts once per window.
- **id-scan** (unknown-id): an id named as above that the hub holds nowhere. An id the member knows never
  counts, and the same id asked again (a client re-polling an object that was deleted) counts once.
- **repeated-paging** / **manifest-harvest** (walk-start / manifest-walk): the first page of an objects or
  manifest read that narrows nothing (no next, added_after, match[id] or match[type]; match[version] and
  match[spec_version] do not make a walk smaller), counted per collection. The warnings collection holds
  only the member's own warnings and is not counted. A walk one of whose pages was refused (429) or failed
  (5xx), started again within RESTART_S, is that walk resumed (once), not another.
- **targeting** (targeting): a filter for identities, locations or infrastructure (match[type]) outside the
  warnings collection. Reading them all again counts each time, the further pages of one read do not, and
  polling a filter for what is new (added_after) is one question however often it is asked. Ids of those
  types named by id that the member is not given count too; ones it is given are reading, not targeting.
- **denied** (denied): 401 and 403, and 404 for a place (a compact it is not in, a collection that does not
  exist), once per distinct method and path: a client polling a wrong URL, or retrying a write it may not
  make, asks nothing new. A 429 counts only when the member ignores Retry-After: beyond CONCURRENT refusals
  inside one Retry-After of the same limit (each of a member's clients may be refused once, and wait).
- **off-scope-writes** (refused-write): a write whose stored status shows objects refused for the compact's
  scope (type, region, time window, distance from the actors). Mistakes (a reference to what is not in the
  collection, invalid STIX, another member's object) are not testing the scope, and an envelope that tries
  only objects already refused in the window (a connector pushing its feed again) counts once.
- **hidden-writes** (hidden-write): a write that named ids the collection holds out of the writer's sight
  and that are hidden from it across its compact, as things stood before the write, once per write. The write
  path only keeps the ids (``note``); the scan judges them, so the write costs the same either way.

A member cannot learn anything from this: alerts, and the notes the write path leaves for them, are kept in
tables only the operator reads (the admin API, the CLI, the operator's pages), and nothing a member is
answered depends on them.

The thresholds sit above what an analyst does in normal work (one full sync, then incremental reads
with added_after; a mistyped id or two; the odd refusal) and were checked against the scripted honest
and probing sessions in tests/test_probes.py, whose detection and false-alarm rates that test prints.
"""

from __future__ import annotations

import dataclasses
import re
import threading
import weakref
from collections import defaultdict, deque
from collections.abc import Hashable, Iterable
from typing import Any, Protocol

import orjson
from sqlalchemy import Connection, and_, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from . import stix
from .model import Collection
from .release import sight
from .store import Store
from .store.schema import audit, guard_alerts, guard_cursor, guard_notes, statuses
from .write import Unseen

OBJECT = "/taxii2/{api_root}/collections/{collection_id}/objects/{object_id}/"
VERSIONS = "/taxii2/{api_root}/collections/{collection_id}/objects/{object_id}/versions/"
OBJECTS = "/taxii2/{api_root}/collections/{collection_id}/objects/"
MANIFEST = "/taxii2/{api_root}/collections/{collection_id}/manifest/"
TARGET_TYPES = ("identity", "location", "infrastructure")
RESTART_S = 600
CONCURRENT = 4
_OBJECT_ID = re.compile(r"/objects/([^/]+)/(?:versions/)?$")
_COLLECTION = re.compile(r"/collections/([^/]+)/")
_ROOT = re.compile(r"^/taxii2/([^/]+)/")
_STIX_ID = re.compile(r"[a-z0-9][a-z0-9-]*--[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.I)
_RETRY = re.compile(r"(?:retry|try again) in (\d+) s")
_LIMIT = re.compile(r"(\w+) requests a (minute|day)")
_REFUSED = re.compile(r"(\d+) of (\d+) objects refused")
# tearline.scope.refusal's reasons: the refusals that say an object lies outside the compact's scope
_SCOPE = ("is not shared in this compact", "outside the compact's region", "outside the compact's time window",
          "is not connected to")
# a page narrowed by these is not a walk through everything
_NARROWING = ("next", "added_after", "match[id]", "match[type]")

Signal = tuple[str, Hashable]  # (signal, what it is about: an id, a collection, a path …)


class Lookups(Protocol):
    """What the classification needs beyond the entry itself (the scan's are read from the store)."""

    def standing(self, api_root: str | None, member: str, object_id: str,
                 before_us: int | None = None) -> str | None:
        """tearline.release.sight.standing: "seen", "hidden", "absent", or None (nothing can be said)."""

    def collection(self, api_root: str | None, key: str) -> Collection | None:
        """The member's compact's collection by id or alias."""

    def refusals(self, entry: dict[str, Any]) -> list[tuple[str, str]] | None:
        """(id, message) of each object a write's status says was refused; None when the status is gone."""


@dataclasses.dataclass(frozen=True)
class Rule:
    name: str
    signal: str
    threshold: int
    window_s: int
    weight: int
    explains: str
    walks: bool = False  # counted per collection, restarts aside, rather than once per distinct subject


RULES = (
    Rule("hidden-objects", "hidden-id", 2, 3600, 5,
         "asked by id for objects that exist but that this member may not see (it knows ids it should not)"),
    Rule("id-scan", "unknown-id", 10, 900, 3, "asked for many ids that do not exist (enumeration)"),
    Rule("repeated-paging", "walk-start", 3, 3600, 2, "walked the whole collection from the start again and again",
         walks=True),
    Rule("manifest-harvest", "manifest-walk", 3, 3600, 2, "walked the whole manifest again and again", walks=True),
    Rule("targeting", "targeting", 4, 3600, 3,
         "filtered for identities, locations or infrastructure (other members' people, places, systems)"),
    Rule("denied", "denied", 6, 900, 2, "was refused again and again (no right, wrong compact, over a limit)"),
    Rule("off-scope-writes", "refused-write", 3, 3600, 2, "posted objects the compact refused (testing its scope)"),
    Rule("hidden-writes", "hidden-write", 2, 3600, 5,
         "wrote objects under, or referring to, ids that exist but that this member may not see (it knows ids it "
         "should not, and is testing whether they exist)"),
)


@dataclasses.dataclass
class Alert:
    api_root: str | None
    member: str
    rule: str
    score: int
    count: int
    first_seq: int
    last_seq: int
    at_us: int
    explains: str
    evidence: list[int]


# --- what one entry says -----------------------------------------------------------------------------------

def signals(entry: dict[str, Any], look: Lookups) -> list[Signal]:
    """What an audit entry says about its author's intent (usually nothing). A 429 comes out as "limited",
    which the Detector turns into "denied" only when the member is not waiting as it was told."""
    out: list[Signal] = []
    status, endpoint, method, path = entry["status"], entry["endpoint"], entry["method"], entry["path"]
    root = entry["api_root"]
    asked_root = m.group(1) if (m := _ROOT.match(path)) else None
    key = m.group(1) if (m := _COLLECTION.search(path)) else ""
    # the hub answers a compact the member is not in as one that does not exist: the path's collection is not
    # the member's, whatever its name
    coll = look.collection(root, key) if key and asked_root == root else None
    about_object = method == "GET" and endpoint in (OBJECT, VERSIONS)
    if status in (401, 403) or (status == 404 and not (about_object and coll is not None)):
        out.append(("denied", (method, path)))
    if status == 429:
        out.append(("limited", _limit(entry["reason"] or "", endpoint)))
    if about_object and status == 404:
        found = _OBJECT_ID.search(path)
        named = [found.group(1)] if found else []
        # asked in a place it may not ask, the id is judged only for what it betrays (the refusal counts apart)
        out += _named(entry, named, look, unknown=coll is not None,
                      targeting=coll is not None and not coll.addressed_only)
    if method == "GET" and endpoint in (OBJECTS, MANIFEST) and coll is not None:
        if status == 200:
            out += _read(entry, coll, look)
        elif (status == 429 or status >= 500) and "next" in _query(entry):
            out.append(("walk-cut", ("walk-start" if endpoint == OBJECTS else "manifest-walk", coll.num)))
    if method == "POST" and endpoint == OBJECTS and status == 202 and "refused" in (entry["reason"] or ""):
        tried = frozenset(i for i, message in look.refusals(entry) or () if any(s in message for s in _SCOPE))
        if tried:
            out.append(("refused-write", tried))
    if entry.get("hidden") and hidden_written(entry, look):
        out.append(("hidden-write", entry["seq"]))
    return out


def _read(entry: dict[str, Any], coll: Collection, look: Lookups) -> list[Signal]:
    out: list[Signal] = []
    query = _query(entry)
    given = set(_json_list(entry.get("ids")))
    # a value the audit trail had to cut short is not an id the member named whole
    asked = [i for i in _values(query.get("match[id]")) if _STIX_ID.fullmatch(i) and i not in given]
    # the warnings collection holds only what is addressed to the member: its own warnings' people and places
    mine_only = coll.addressed_only
    out += _named(entry, asked, look, unknown=True, targeting=not mine_only)
    types = tuple(sorted({t for t in _values(query.get("match[type]")) if t in TARGET_TYPES}))
    if types and not mine_only and "next" not in query:
        # a poll for what is new is one question however often it is asked; reading them all again is another
        again = (coll.num, types) if "added_after" in query else ("read", entry["seq"])
        out.append(("targeting", again))
    if not mine_only and not any(k in _NARROWING for k in query):
        out.append(("walk-start" if entry["endpoint"] == OBJECTS else "manifest-walk", coll.num))
    return out


def _named(entry: dict[str, Any], ids: Iterable[str], look: Lookups, unknown: bool, targeting: bool) -> list[Signal]:
    """Signals for ids the member named and was not given."""
    out: list[Signal] = []
    for object_id in dict.fromkeys(i for i in ids if i):
        where = look.standing(entry["api_root"], entry["actor"], object_id)
        if where in (None, "seen"):
            continue
        if where == "hidden" and object_id.split("--")[0] not in stix.SCO_TYPES:
            out.append(("hidden-id", object_id))
        elif unknown:
            out.append(("unknown-id", object_id))
        if targeting and object_id.split("--")[0] in TARGET_TYPES:
            out.append(("targeting", object_id))
    return out


def _limit(reason: str, endpoint: str) -> tuple[str, int]:
    """Which of the member's limits refused it (its class, else the endpoint) and the Retry-After it was given."""
    klass = m.group(0) if (m := _LIMIT.search(reason)) else endpoint
    return klass, int(m.group(1)) if (m := _RETRY.search(reason)) else 1


def _query(entry: dict[str, Any]) -> dict[str, Any]:
    raw = entry["query"]
    return orjson.loads(raw or "{}") if isinstance(raw, str) else (raw or {})


def _json_list(raw: Any) -> list[str]:
    found = orjson.loads(raw) if isinstance(raw, str) and raw else (raw or [])
    return [str(i) for i in found] if isinstance(found, list) else []


def _values(raw: Any) -> list[str]:
    if raw is None:
        return []
    items = raw if isinstance(raw, list) else [raw]
    return [v.strip() for item in items for v in str(item).split(",") if v.strip()]


# --- counting ------------------------------------------------------------------------------------------

class Detector:
    """Keeps each member's recent signals; feed it audit entries in order, collect alerts."""

    def __init__(self, rules: Iterable[Rule] = RULES):
        self.rules = tuple(rules)
        self.recent: dict[tuple[Any, ...], deque[tuple[int, int, Hashable]]] = defaultdict(deque)
        self.limited: dict[tuple[Any, ...], tuple[int, int]] = {}  # → (its Retry-After ends, 429s inside it)
        self.walked: dict[tuple[Any, ...], _Walk] = {}  # → the last walk counted

    def feed(self, entry: dict[str, Any], look: Lookups, found: Iterable[Signal] | None = None) -> list[Alert]:
        """Count what ``entry`` says (``found``: its signals, judged already)."""
        if not _by_a_member(entry):
            return []
        alerts = []
        for name, subject in signals(entry, look) if found is None else found:
            if name == "walk-cut":
                self._cut(entry, subject)
                continue
            if name == "limited":
                if not self._ignores_retry(entry, subject):
                    continue
                name, subject = "denied", ("429", entry["seq"])
            for rule in self.rules:
                if rule.signal == name:
                    alerts.extend(self._count(rule, entry, subject))
        return alerts

    def _ignores_retry(self, entry: dict[str, Any], limit: Any) -> bool:
        klass, retry_s = limit
        key = (entry["api_root"], entry["actor"], klass)
        at, ends, inside = entry["at_us"], *self.limited.get(key, (0, 0))
        if at >= ends:
            self.limited[key] = (at + retry_s * 1_000_000, 1)
            return False
        # the window ends with the shortest Retry-After given in it, so a client that waits as it was told
        # is refused at most once inside it, whatever the others were told
        self.limited[key] = (min(ends, at + retry_s * 1_000_000), inside + 1)
        return inside + 1 > CONCURRENT

    def _cut(self, entry: dict[str, Any], walk: Any) -> None:
        signal, coll = walk
        for rule in self.rules:
            last = self.walked.get((entry["api_root"], entry["actor"], rule.name, coll))
            if rule.signal == signal and last is not None:
                last.cut = True

    def _count(self, rule: Rule, entry: dict[str, Any], subject: Hashable) -> list[Alert]:
        at, actor = entry["at_us"], entry["actor"]
        key = (entry["api_root"], actor, rule.name, subject if rule.walks else None)
        seen = self.recent[key]
        while seen and seen[0][0] < at - rule.window_s * 1_000_000:
            seen.popleft()
        if rule.walks:
            last = self.walked.get(key)
            # a walk cut short by a refusal and started again soon after is that walk resumed, once
            if last is not None and last.cut and not last.resumed and at - last.at_us < RESTART_S * 1_000_000:
                last.cut, last.resumed = False, True
                return []
            self.walked[key] = _Walk(at)
        elif _asked_before(subject, seen):
            return []
        seen.append((at, entry["seq"], subject))
        if len(seen) < rule.threshold:
            return []
        evidence = list(dict.fromkeys(s for _, s, _ in seen))
        alert = Alert(entry["api_root"], actor, rule.name, rule.weight * len(seen), len(seen), seen[0][1],
                      seen[-1][1], at, rule.explains, evidence)
        seen.clear()
        return [alert]


def _by_a_member(entry: dict[str, Any]) -> bool:
    return bool(entry["actor"]) and not entry["actor"].startswith("admin:")


@dataclasses.dataclass
class _Walk:
    at_us: int
    cut: bool = False  # a page of it was refused (429) or failed (5xx)
    resumed: bool = False


def _asked_before(subject: Hashable, seen: Iterable[tuple[int, int, Hashable]]) -> bool:
    if isinstance(subject, frozenset):  # a write: new only if it tries an object not refused already
        tried: set[Hashable] = set()
        for _, _, s in seen:
            tried |= s if isinstance(s, frozenset) else set()
        return subject <= tried
    return any(s == subject for _, _, s in seen)


# --- scanning the stored audit trail -------------------------------------------------------------------

LOOKBACK_US = max(r.window_s for r in RULES) * 1_000_000


# At most this many of one write's ids are kept and judged one by one; the rest count as hidden, so that a write
# cannot bury its hidden ids behind ids it may see that sort first.
SIGHT_LOOKUPS = 50


def note(conn: Any, seq: int, unseen: Unseen) -> None:
    """Keep, for the guard alone, what the write recorded as audit entry ``seq`` named out of its writer's sight
    (the writer was answered as if it did not exist). Nothing is judged here, in the write's transaction: the
    scan judges the ids later (tearline.release.sight), so a write naming a hidden id takes as long as one
    naming an id that does not exist."""
    conn.execute(insert(guard_notes).values(seq=seq, hidden=len(unseen.hidden), before_us=unseen.before_us,
                                            named=orjson.dumps(unseen.hidden[:SIGHT_LOOKUPS]).decode()))


def hidden_written(entry: dict[str, Any], look: Lookups) -> int:
    """How many of the ids a write named out of its writer's sight in the collection written are hidden from the
    writer everywhere in its compact, as things stood before the write: an id it receives in another
    collection, wrote, or that its organisation wrote is an honest reference, not a probe."""
    hidden = int(entry.get("hidden") or 0)
    if not hidden or entry.get("named") is None:  # a note from before the ids were kept
        return hidden
    named = _json_list(entry["named"])
    found = sum(1 for i in named if look.standing(entry["api_root"], entry["actor"], i, entry["before_us"]) == "hidden")
    return found + hidden - len(named)


class StoreLookups:
    """The scan's lookups, each read once per scan."""

    def __init__(self, store: Store, conn: Connection):
        self.store, self.conn = store, conn
        self._standing: dict[tuple[str | None, str, str, int | None], str | None] = {}
        self._collections: dict[tuple[str | None, str], Collection | None] = {}

    def standing(self, api_root: str | None, member: str, object_id: str,
                 before_us: int | None = None) -> str | None:
        key = (api_root, member, object_id, before_us)
        if key not in self._standing:
            self._standing[key] = sight.standing(self.store, self.conn, api_root, member, object_id, before_us)
        return self._standing[key]

    def collection(self, api_root: str | None, key: str) -> Collection | None:
        if (api_root, key) not in self._collections:
            self._collections[(api_root, key)] = (
                self.store.collection(api_root, key, self.conn) if api_root is not None else None)
        return self._collections[(api_root, key)]

    def refusals(self, entry: dict[str, Any]) -> list[tuple[str, str]] | None:
        found = _REFUSED.search(entry["reason"] or "")
        where = _COLLECTION.search(entry["path"])
        coll = self.collection(entry["api_root"], where.group(1)) if where else None
        member = next((w for w in self.store.members_of(self.conn, entry["api_root"])
                       if w.name == entry["actor"]), None) if coll is not None else None
        if found is None or coll is None or member is None:
            return None
        # the status is saved in the write's transaction, before its audit entry: the newest of the member's
        # with the same counts is this write's
        failures = self.conn.scalar(
            select(statuses.c.failures).where(
                statuses.c.api_root == coll.api_root, statuses.c.collection_id == coll.id,
                statuses.c.member_id == member.id, statuses.c.request_us <= entry["at_us"],
                statuses.c.failure_count == int(found.group(1)), statuses.c.total_count == int(found.group(2)))
            .order_by(statuses.c.request_us.desc()).limit(1))
        if failures is None:
            return None
        return [(str(f.get("id")), str(f.get("message", ""))) for f in orjson.loads(failures) if isinstance(f, dict)]


class _Judged:
    """What each entry said when a scan in this process first read it. An entry is judged as things stood then
    (within guard_scan_seconds of the request: an id asked before a partner shared it is not hidden for having
    been shared since), and rebuilding the windows from the entries before the cursor costs no lookups. Kept
    by sequence number, not as a range: on PostgreSQL an entry may commit after one numbered above it."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.found: dict[int, tuple[Signal, ...]] = {}

    def signals(self, entry: dict[str, Any], look: Lookups) -> tuple[Signal, ...]:
        found = self.found.get(entry["seq"])
        if found is None:
            found = self.found[entry["seq"]] = tuple(signals(entry, look))
        return found

    def forget(self, start: int) -> None:
        """Entries before ``start`` are in no window any more."""
        self.found = {k: v for k, v in self.found.items() if k >= start}


_JUDGED: weakref.WeakKeyDictionary[Store, _Judged] = weakref.WeakKeyDictionary()


def scan(store: Store) -> list[Alert]:
    """Read the audit entries written since the last scan, raise and store alerts. The windows are
    rebuilt from the entries of the longest window before them, so a scan finds what one continuous
    reading would have found."""
    with store.engine.begin() as conn:
        cursor = conn.execute(select(guard_cursor.c.seq).where(guard_cursor.c.id == 1)).scalar()
        if cursor is None:
            conn.execute(insert(guard_cursor).values(id=1, seq=0))
            cursor = 0
        top = conn.execute(select(func.max(audit.c.seq))).scalar() or 0
        if top <= cursor:
            return []
        since = conn.execute(select(audit.c.at_us).where(audit.c.seq == cursor)).scalar()
        start = 1 if since is None else (conn.execute(
            select(func.min(audit.c.seq)).where(audit.c.at_us >= since - LOOKBACK_US)).scalar() or 1)
        cols = ("seq", "at_us", "actor", "api_root", "method", "endpoint", "path", "query", "status", "reason", "ids",
                "count")
        rows = [dict(zip((*cols, "hidden", "named", "before_us"), r, strict=True)) for r in conn.execute(
            select(*(audit.c[c] for c in cols), guard_notes.c.hidden, guard_notes.c.named, guard_notes.c.before_us)
            .select_from(audit.outerjoin(guard_notes, guard_notes.c.seq == audit.c.seq))
            .where(and_(audit.c.seq >= start, audit.c.seq <= top)).order_by(audit.c.seq))]
        look = StoreLookups(store, conn)
        detector = Detector()
        raised = []
        judged = _JUDGED.setdefault(store, _Judged())
        with judged.lock:
            for row in rows:
                found = judged.signals(row, look) if _by_a_member(row) else ()
                raised += [a for a in detector.feed(row, look, found) if a.last_seq > cursor]
            judged.forget(start)
        for a in raised:
            try:
                with conn.begin_nested():
                    conn.execute(insert(guard_alerts).values(
                        at_us=a.at_us, api_root=a.api_root, member=a.member, rule=a.rule, score=a.score,
                        count=a.count, first_seq=a.first_seq, last_seq=a.last_seq, explains=a.explains,
                        evidence=orjson.dumps(a.evidence).decode(), status="open"))
            except IntegrityError:  # raised by an earlier scan already
                pass
        conn.execute(update(guard_cursor).where(guard_cursor.c.id == 1).values(seq=top))
    return raised


def stored_alerts(store: Any, member: str | None = None, api_root: str | None = None,
                  status: str | None = None) -> list[dict[str, Any]]:
    q = select(guard_alerts).order_by(guard_alerts.c.at_us.desc(), guard_alerts.c.id.desc())
    for col, value in ((guard_alerts.c.member, member), (guard_alerts.c.api_root, api_root),
                       (guard_alerts.c.status, status)):
        if value is not None:
            q = q.where(col == value)
    with store.engine.connect() as conn:
        # str(): SQLAlchemy's column names are a str subclass, which orjson will not take as keys
        return [{str(k): v for k, v in r._mapping.items()} | {"evidence": orjson.loads(r.evidence)}
                for r in conn.execute(q)]
