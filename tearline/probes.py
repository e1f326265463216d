"""Probe detection: rules over the audit stream that notice a member using the compact to gather
intelligence on its partners or on what it may not see.

Each audit entry is classified (a refusal, a request for an id that does not exist, a request for an
id that exists but is hidden from this member, the start of a full walk through a collection or its
manifest, a filter aimed at identities, locations or infrastructure, a write with refused objects),
and each member's recent classified entries are counted in a sliding window. A rule fires when its
count in the window reaches its threshold; the alert names the member, the rule, the count and the
audit entries that are its evidence, and the rule's window starts afresh for that member.

The thresholds sit above what an analyst does in normal work (one full sync, then incremental reads
with added_after; a mistyped id or two; the odd refusal) and were checked against the scripted honest
and probing sessions in tests/test_probes.py, whose detection and false-alarm rates that test prints.
"""

from __future__ import annotations

import dataclasses
import re
from collections import defaultdict, deque
from collections.abc import Callable, Iterable
from typing import Any

import orjson
from sqlalchemy import and_, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from . import release
from .store import Store
from .store.schema import audit, guard_alerts, guard_cursor, guard_notes

OBJECT = "/taxii2/{api_root}/collections/{collection_id}/objects/{object_id}/"
VERSIONS = "/taxii2/{api_root}/collections/{collection_id}/objects/{object_id}/versions/"
OBJECTS = "/taxii2/{api_root}/collections/{collection_id}/objects/"
MANIFEST = "/taxii2/{api_root}/collections/{collection_id}/manifest/"
TARGET_TYPES = ("identity", "location", "infrastructure")
_OBJECT_ID = re.compile(r"/objects/([^/]+)/(?:versions/)?$")
_COLLECTION = re.compile(r"/collections/([^/]+)/")

# (api root, member, collection in the path, object id) → does the collection hold the object while the member
# receives no version of it (tearline.release.hidden_from)
HiddenFrom = Callable[[str | None, str, str, str], bool]


@dataclasses.dataclass(frozen=True)
class Rule:
    name: str
    signal: str
    threshold: int
    window_s: int
    weight: int
    explains: str


RULES = (
    Rule("hidden-objects", "hidden-id", 2, 3600, 5,
         "asked by id for objects that exist but that this member may not see (it knows ids it should not)"),
    Rule("id-scan", "unknown-id", 10, 900, 3, "asked for many ids that do not exist (enumeration)"),
    Rule("repeated-paging", "walk-start", 3, 3600, 2, "walked the whole collection from the start again and again"),
    Rule("manifest-harvest", "manifest-walk", 3, 3600, 2, "walked the whole manifest again and again"),
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


def signals(entry: dict[str, Any], hidden_exists: HiddenFrom) -> list[str]:
    """What an audit entry says about its author's intent (usually nothing)."""
    out = []
    status, endpoint, method = entry["status"], entry["endpoint"], entry["method"]
    query = orjson.loads(entry["query"] or "{}") if isinstance(entry["query"], str) else (entry["query"] or {})
    if status in (401, 403, 429) or (status == 404 and endpoint not in (OBJECT, VERSIONS)):
        out.append("denied")
    where = _COLLECTION.search(entry["path"])
    collection = where.group(1) if where else ""

    def hidden(object_id: str) -> bool:
        # in the collection asked and out of this member's sight: an id it may know only from elsewhere
        return bool(object_id and collection
                    and hidden_exists(entry["api_root"], entry["actor"], collection, object_id))

    if method == "GET" and endpoint in (OBJECT, VERSIONS) and status == 404:
        found = _OBJECT_ID.search(entry["path"])
        object_id = found.group(1) if found else ""
        out.append("hidden-id" if hidden(object_id) else "unknown-id")
    if method == "GET" and endpoint in (OBJECTS, MANIFEST) and status == 200:
        asked_ids = _values(query.get("match[id]"))
        if asked_ids and entry["count"] == 0:
            out.append("hidden-id" if any(hidden(i) for i in asked_ids) else "unknown-id")
        # the first page of an unfiltered read from the beginning: the start of a walk through everything
        fresh = not any(k in ("next", "added_after") or k.startswith("match[") for k in query)
        if fresh:
            out.append("walk-start" if endpoint == OBJECTS else "manifest-walk")
        types = _values(query.get("match[type]"))
        if any(t in TARGET_TYPES for t in types) or any(i.split("--")[0] in TARGET_TYPES for i in asked_ids):
            out.append("targeting")
    if method == "POST" and endpoint == OBJECTS and status == 202 and "refused" in (entry["reason"] or ""):
        out.append("refused-write")
    if entry.get("hidden"):
        out.append("hidden-write")
    return out


def _values(raw: Any) -> list[str]:
    if raw is None:
        return []
    items = raw if isinstance(raw, list) else [raw]
    return [v.strip() for item in items for v in str(item).split(",") if v.strip()]


class Detector:
    """Keeps each member's recent signals; feed it audit entries in order, collect alerts."""

    def __init__(self, rules: Iterable[Rule] = RULES):
        self.rules = tuple(rules)
        self.recent: dict[tuple[str | None, str, str], deque[tuple[int, int]]] = defaultdict(deque)

    def feed(self, entry: dict[str, Any], hidden_exists: HiddenFrom) -> list[Alert]:
        actor = entry["actor"]
        if not actor or actor.startswith("admin:"):
            return []
        alerts = []
        found = signals(entry, hidden_exists)
        for rule in self.rules:
            if rule.signal not in found:
                continue
            seen = self.recent[(entry["api_root"], actor, rule.name)]
            seen.append((entry["at_us"], entry["seq"]))
            while seen and seen[0][0] < entry["at_us"] - rule.window_s * 1_000_000:
                seen.popleft()
            if len(seen) >= rule.threshold:
                alerts.append(Alert(entry["api_root"], actor, rule.name, rule.weight * len(seen), len(seen),
                                    seen[0][1], seen[-1][1], entry["at_us"], rule.explains, [s for _, s in seen]))
                seen.clear()
        return alerts


# --- scanning the stored audit trail -------------------------------------------------------------------

LOOKBACK_US = max(r.window_s for r in RULES) * 1_000_000


def note(conn: Any, seq: int, hidden: int) -> None:
    """Keep, for the guard alone, that the write recorded as audit entry ``seq`` named ``hidden`` ids the
    collection holds out of its writer's sight (the writer was answered as if they did not exist)."""
    conn.execute(insert(guard_notes).values(seq=seq, hidden=hidden))


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
        cols = ("seq", "at_us", "actor", "api_root", "method", "endpoint", "path", "query", "status", "reason", "count")
        rows = [dict(zip((*cols, "hidden"), r, strict=True)) for r in conn.execute(
            select(*(audit.c[c] for c in cols), guard_notes.c.hidden)
            .select_from(audit.outerjoin(guard_notes, guard_notes.c.seq == audit.c.seq))
            .where(and_(audit.c.seq >= start, audit.c.seq <= top)).order_by(audit.c.seq))]
        known: dict[tuple[str | None, str, str, str], bool] = {}

        def hidden_exists(api_root: str | None, member: str, collection: str, object_id: str) -> bool:
            key = (api_root, member, collection, object_id)
            if key not in known:
                known[key] = release.hidden_from(store, conn, api_root, member, collection, object_id)
            return known[key]

        detector = Detector()
        raised = [a for row in rows for a in detector.feed(row, hidden_exists) if a.last_seq > cursor]
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
