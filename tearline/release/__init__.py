"""The one outbound gate: every copy of anything a member receives is made here, and nowhere else.

Reads. Each read (TAXII objects, object, versions, manifest, status; the dashboard's pages and counts;
the warnings API and inbox; a warning drafted from a shared report) selects rows through ``gate_for`` —
the rules of tearline.visibility compiled to SQL, deny by default — so paging, ``more``/``next``, the
date headers, counts and 404s agree with what is released: an object a member may not see answers
exactly like one that does not exist. No other module reads member-facing rows
(tests/test_architecture.py).

Copies. ``Copier.copy`` makes every member's copy of a stored version: the author gets it back exactly;
anyone else gets it with the references to what it may not see cut, the parts below its tear line cut
(tearline.granular), its redaction profile applied, authors named by pseudonym where its profile hides
them, the compact's default TLP marking added where the version carries none, and its leak fingerprint
(tearline.leak). Every copy stays valid STIX: what a copy cannot lose is either refused on the way in
(tearline.stix.selectors) or withholds the whole version (tearline.visibility).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import orjson
from sqlalchemy import ColumnElement, Connection, and_, bindparam, exists, false, func, or_, select

from .. import boundaries, granular, leak, markings, stix
from ..errors import BadRequest, Forbidden, NotFound
from ..keys import HubKeys
from ..model import Collection, Member, can_read, can_write
from ..store import Store
from ..store import objects as rows
from ..store import warnings as stored_warnings
from ..store.schema import objects, refs, warning_events, warnings
from ..taxii.query import TaxiiQuery
from ..visibility import Reader, hidden_sql, receives_sql

_OTHER = objects.alias("other")
_TLP_IDS = sorted(markings.LEVEL_OF_ID)
_PAGE_COLUMNS = (objects.c.stix_id, objects.c.version, objects.c.body, objects.c.author, objects.c.marked)


# --- the gate ----------------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Gate:
    """The WHERE clauses of what one member may read in one collection, and the version rules that
    depend on them."""

    where: tuple[ColumnElement[bool], ...]
    reader: Reader
    coll: int
    addressed_only: bool

    def edge(self, newest: bool) -> ColumnElement[bool]:
        """This version is the newest (or oldest) one the member receives: match[version]=last|first must
        not lose an object because a newer version is beyond the member's reach."""
        flag = objects.c.is_latest if newest else objects.c.is_first
        other = _OTHER
        beyond = other.c.version_us > objects.c.version_us if newest else other.c.version_us < objects.c.version_us
        return or_(flag.is_(True), ~exists(select(other.c.pk).where(
            other.c.coll == objects.c.coll, other.c.stix_id == objects.c.stix_id, beyond,
            receives_sql(self.reader, other, self.addressed_only))))


@functools.lru_cache(maxsize=4096)
def _gate(reader: Reader, coll: int, addressed_only: bool) -> Gate:
    # made once per reader and collection as they stand: building the expression cost more than its SQL
    return Gate((objects.c.coll == coll, receives_sql(reader, objects, addressed_only)), reader, coll, addressed_only)


def gate_for(member: Member, collection: Collection, today: dt.date) -> Gate:
    """The gate of a read, after the checks every read makes first: the member may read this collection,
    and the compact is not closed. Raises Forbidden otherwise."""
    if not can_read(member, collection):
        raise Forbidden(f"member {member.name!r} may not read collection {collection.alias!r}")
    policy = collection.rules
    if policy.state(today) == "closed":
        raise Forbidden(f"compact {collection.api_root!r} closed after its expiry ({policy.expires}) and grace period")
    return _gate(Reader.of(member), collection.num, collection.addressed_only)


def _filters(gate: Gate, q: TaxiiQuery, after_us: int | None) -> list[ColumnElement[bool]]:
    clauses: list[ColumnElement[bool]] = list(gate.where)
    if q.ids:
        clauses.append(objects.c.stix_id.in_(q.ids))
    else:
        # a listing carries no TLP definition: each is fetched by its published id, so a copy names only the
        # levels its objects carry (MISP's importer tags an event with every level a bundle holds)
        clauses.append(objects.c.stix_id.notin_(_TLP_IDS))
    if q.types:
        clauses.append(objects.c.type.in_(q.types))
    if "all" not in q.versions:
        pick: list[ColumnElement[bool]] = []
        if "last" in q.versions:
            pick.append(gate.edge(newest=True))
        if "first" in q.versions:
            pick.append(gate.edge(newest=False))
        if q.version_us:
            pick.append(objects.c.version_us.in_(q.version_us))
        clauses.append(or_(*pick) if pick else false())
    if q.spec_versions:
        clauses.append(objects.c.spec_version.in_(q.spec_versions))
    if q.added_after_us is not None:
        # added_us is at or after date_added_us: the first clause lets the index find the start
        clauses.extend((objects.c.added_us > q.added_after_us, objects.c.date_added_us > q.added_after_us))
    if after_us is not None:
        clauses.append(objects.c.added_us > after_us)
    return clauses


# --- copies ------------------------------------------------------------------------------------------

class Copier:
    """Makes one member's copies of the versions of one page (what they refer to that is out of its sight,
    and, for a member that hides authors, the identities they name, read once for the page)."""

    def __init__(self, conn: Connection | None, gate: Gate | None, member: Member, collection: Collection,
                 keys: HubKeys, page: Sequence[Any], mark: bool = True, recipient: bool = False):
        self.member, self.collection, self.keys = member, collection, keys
        self.mark = leak.member_key(keys.leak, member.api_root, member.name) if mark else None
        self.profile = member.redactions
        self.members_visible = collection.rules.members_visible
        self.default_marking = markings.TLP2[collection.rules.default_tlp][0]
        self.recipient = recipient  # the reader is the object's addressee (a warning's), whatever it names
        others = [r for r in page if r.author != member.id]
        self.hidden: dict[int, set[str]] = {}
        self.named: dict[int, set[str]] = {}  # per version, the identities it names (for a member hiding authors)
        self.identities: dict[str, str | None] = {}  # identity → what this member is shown in its place
        if not others or conn is None or gate is None:
            return
        added = [r.added_us for r in others]
        for row_added, target in conn.execute(_hidden_refs(gate), {"added": added}):
            self.hidden.setdefault(int(row_added), set()).add(target)
        if member.hides_authors:
            for row_added, target in conn.execute(_identity_refs(), {"added": added}):
                self.named.setdefault(int(row_added), set()).add(target)
            self.identities = _stand_ins(conn, gate, member, collection.api_root, keys,
                                         sorted({t for ts in self.named.values() for t in ts}))

    def copy(self, row: Any) -> bytes:
        """The member's copy of one stored version (``row``: stix_id, body, author, marked, added_us …), as
        JSON."""
        body: str = row.body
        if row.author is not None and row.author == self.member.id:
            return body.encode()  # its own, exactly as it sent it: it cannot leak its own objects from the hub
        hidden = self.hidden.get(row.added_us)
        if not (hidden or self.profile or not row.marked or row.added_us in self.named
                or '"granular_markings"' in body or '"x_tearline_recipients"' in body):
            return (leak.mark_body(self.mark, body) if self.mark else body).encode()
        return self.copy_object(orjson.loads(body), hidden or set())

    def copy_object(self, obj: dict[str, Any], hidden: set[str] | None = None) -> bytes:
        """The member's copy of an object that is not its own (a warning delivered to it, say)."""
        out = self.shape(obj, hidden or set())
        return orjson.dumps(leak.mark_object(self.mark, out) if self.mark else out)

    def shape(self, obj: dict[str, Any], hidden: set[str]) -> dict[str, Any]:
        """One cut does it all, so the selectors of the markings that remain still name the right parts."""
        kind = str(obj.get("type"))
        # a member that hides authors is shown no identity but its own: each other is named by its stand-in,
        # and one the hub does not hold is not named at all
        unnamed = {i for i, shown in self.identities.items() if shown is None}
        paths: list[granular.Path] = list(_paths_to(obj, hidden | unnamed)) if hidden or unnamed else []
        dropped = {key for key in obj if key != "created_by_ref" and (
            key in self.profile or ("x_" in self.profile and key.startswith("x_"))
            or ("coordinates" in self.profile and key in ("latitude", "longitude", "precision"))
            or (key == "x_tearline_recipients" and not self.members_visible))}
        if dropped:
            needed = stix.required_properties(kind)
            for group in stix.one_of_groups(kind):
                # a member of an "at least one of" group may go while another stays (a redacted location's
                # coordinates give way to the place they lie in: _coarse_place)
                if not any(g in obj and g not in dropped for g in group) and not (
                        kind == "location" and "coordinates" in self.profile):
                    needed = needed | set(group)
                else:
                    needed = needed - set(group)
            paths.extend((key,) for key in dropped if key not in needed)
        recipient = self.recipient or self.member.name in (obj.get("x_tearline_recipients") or ())
        paths.extend(granular.withheld(obj, granular.reader(self.member.tlp_max, recipient)))
        out = granular.cut(obj, paths)
        if self.identities:
            out = _renamed(out, {i: shown for i, shown in self.identities.items() if shown is not None})
        if kind == "location" and "coordinates" in self.profile and not ({"region", "country"} & set(out)):
            out = dict(out, **_coarse_place(obj))
        if out.get("id") not in markings.RANK_OF_ID and markings.tlp_rank_of(out) is None:
            out = dict(out, object_marking_refs=[*(out.get("object_marking_refs") or ()), self.default_marking])
        return out


def _renamed(obj: Any, names: dict[str, str]) -> Any:
    """``obj`` with every reference to a key of ``names`` replaced by its value."""
    if isinstance(obj, dict):
        out = {}
        for key, value in obj.items():
            if key.endswith("_ref") and isinstance(value, str):
                out[key] = names.get(value, value)
            elif key.endswith("_refs") and isinstance(value, list):
                out[key] = [names.get(v, v) if isinstance(v, str) else v for v in value]
            else:
                out[key] = _renamed(value, names) if isinstance(value, (dict, list)) else value
        return out
    return [_renamed(v, names) if isinstance(v, (dict, list)) else v for v in obj]


def _paths_to(obj: Any, hidden: set[str], at: granular.Path = ()) -> Iterator[granular.Path]:
    """Every reference, at any depth, to one of ``hidden``."""
    if isinstance(obj, dict):
        for key, value in obj.items():
            if key.endswith("_ref") and value in hidden:
                yield (*at, key)
            elif key.endswith("_refs") and isinstance(value, list):
                yield from ((*at, key, i) for i, v in enumerate(value) if isinstance(v, str) and v in hidden)
            elif isinstance(value, (dict, list)):
                yield from _paths_to(value, hidden, (*at, key))
    elif isinstance(obj, list):
        for i, value in enumerate(obj):
            if isinstance(value, (dict, list)):
                yield from _paths_to(value, hidden, (*at, i))


def _coarse_place(obj: dict[str, Any]) -> dict[str, Any]:
    """What a location keeps when its coordinates are redacted and it had nothing else to stand on: the
    province and country its point lies in, else the point to the whole degree (about 111 km)."""
    lat, lon = obj.get("latitude"), obj.get("longitude")
    found = (boundaries.locate(float(lat), float(lon))
             if isinstance(lat, (int, float)) and isinstance(lon, (int, float)) else None)
    if found:
        import pycountry

        country = pycountry.countries.get(alpha_3=found[0])
        return {"country": country.alpha_2 if country else found[0], "administrative_area": found[1]}
    return {"latitude": float(round(float(lat or 0))), "longitude": float(round(float(lon or 0))),
            "precision": 111_000.0}


@functools.lru_cache(maxsize=4096)
def _hidden_refs(gate: Gate) -> Any:
    """Per version (by added_us), the ids it refers to that are out of the member's sight. Made once per gate;
    the TLP definitions are never hidden (every member must resolve them), so their references need no check."""
    return select(refs.c.added_us, refs.c.target_id).where(
        refs.c.added_us.in_(bindparam("added", expanding=True)), refs.c.target_id.notin_(sorted(markings.RANK_OF_ID)),
        hidden_sql(gate.reader, gate.coll, refs.c.target_id, gate.addressed_only))


@functools.cache
def _identity_refs() -> Any:
    return select(refs.c.added_us, refs.c.target_id).where(
        refs.c.added_us.in_(bindparam("added", expanding=True)), refs.c.target_id.startswith("identity--"))


def _stand_ins(conn: Connection, gate: Gate, member: Member, api_root: str, keys: HubKeys,
               named: Sequence[str]) -> dict[str, str | None]:
    """For a member that hides authors: each identity named → itself where it is the member's own, else its
    pseudonymous stand-in (a reference out of the member's sight is cut before this; one to an identity the
    hub does not hold names a stand-in the hub does not hold either, as the real id named nothing held)."""
    if not named:
        return {}
    own = set(conn.scalars(select(objects.c.stix_id).distinct().where(
        objects.c.coll == gate.coll, objects.c.chain == 0, objects.c.author == member.id,
        objects.c.stix_id.in_(named))))
    return {i: i if i in own else keys.pseudonym(api_root, i) for i in named}


# --- TAXII reads -------------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Released:
    """A TAXII resource as released to one member: its JSON, the date_added of its first and last rows
    (the X-TAXII-Date-Added headers) and the ids it holds (for the audit trail)."""

    body: bytes
    first: int | None
    last: int | None
    ids: list[str]


def _page(store: Store, gate: Gate, q: TaxiiQuery, keys: HubKeys, columns: Sequence[Any] = _PAGE_COLUMNS) -> rows.Page:
    after = keys.read_token(gate.coll, q.next) if q.next else None
    with store.reading() as conn:
        return rows.page(conn, columns, _filters(gate, q, after), q.limit, by_id=bool(q.ids))


def _more(page: rows.Page, gate: Gate, keys: HubKeys) -> bytes:
    if page.more:
        return b'"more":true,"next":' + orjson.dumps(keys.next_token(gate.coll, page.rows[-1].added_us))
    return b'"more":false'


def _released(page: rows.Page, body: bytes, ids: list[str]) -> Released:
    first = page.rows[0].date_added_us if page.rows else None
    last = page.rows[-1].date_added_us if page.rows else None
    return Released(body, first, last, ids)


def _envelope(store: Store, gate: Gate, member: Member, collection: Collection, keys: HubKeys,
              page: rows.Page) -> Released:
    if not page.rows:
        return _released(page, b"{" + _more(page, gate, keys) + b"}", [])
    with store.reading() as conn:
        copier = Copier(conn, gate, member, collection, keys, page.rows)
    bodies = b",".join(copier.copy(r) for r in page.rows)
    return _released(page, b"{" + _more(page, gate, keys) + b',"objects":[' + bodies + b"]}",
                     [r.stix_id for r in page.rows])


def objects_page(store: Store, member: Member, collection: Collection, q: TaxiiQuery, keys: HubKeys,
                 today: dt.date) -> Released:
    """GET …/objects/ (TAXII 2.1 §5.3): an envelope of the member's copies."""
    gate = gate_for(member, collection, today)
    return _envelope(store, gate, member, collection, keys, _page(store, gate, q, keys))


def object_page(store: Store, member: Member, collection: Collection, object_id: str, q: TaxiiQuery,
                keys: HubKeys, today: dt.date) -> Released:
    """GET …/objects/{id}/ (§5.5); 404, as for an object that does not exist, when the member receives no
    version of it."""
    gate = gate_for(member, collection, today)
    page = _page(store, gate, dataclasses.replace(q, ids=(object_id,)), keys)
    if not page.rows and q.next is None and not _received(store, gate, object_id, keys):
        raise NotFound(f"no object {object_id!r} in this collection", details={"object_id": object_id})
    return _envelope(store, gate, member, collection, keys, page)  # filtered to nothing: empty (§5.5)


def _received(store: Store, gate: Gate, object_id: str, keys: HubKeys) -> bool:
    """Does the member receive any version of ``object_id``, whatever a request's filters?"""
    return bool(_page(store, gate, TaxiiQuery(ids=(object_id,), versions=("all",), limit=1), keys).rows)


def manifest_page(store: Store, member: Member, collection: Collection, q: TaxiiQuery, keys: HubKeys,
                  today: dt.date) -> Released:
    """GET …/manifest/ (§5.6)."""
    gate = gate_for(member, collection, today)
    page = _page(store, gate, q, keys, (objects.c.stix_id, objects.c.version, objects.c.spec_version))
    records = [{"id": r.stix_id, "date_added": stix.format_us(r.date_added_us), "version": r.version,
                "media_type": f"application/stix+json;version={r.spec_version}"} for r in page.rows]
    body = b"{" + _more(page, gate, keys) + (b',"objects":' + orjson.dumps(records) if records else b"") + b"}"
    return _released(page, body, [r.stix_id for r in page.rows])


def versions_page(store: Store, member: Member, collection: Collection, object_id: str, q: TaxiiQuery,
                  keys: HubKeys, today: dt.date) -> Released:
    """GET …/objects/{id}/versions/ (§5.8)."""
    gate = gate_for(member, collection, today)
    page = _page(store, gate, _any_version(object_id, q), keys, (objects.c.stix_id, objects.c.version))
    if not page.rows and q.next is None and not _received(store, gate, object_id, keys):
        raise NotFound(f"no object {object_id!r} in this collection", details={"object_id": object_id})
    listed = [r.version for r in page.rows]  # §5.8.1: no versions on the page, no "versions" list
    body = b"{" + _more(page, gate, keys) + (b',"versions":' + orjson.dumps(listed) if listed else b"") + b"}"
    return _released(page, body, [object_id] * len(page.rows))


def _any_version(object_id: str, q: TaxiiQuery) -> TaxiiQuery:
    return TaxiiQuery(ids=(object_id,), versions=("all",), spec_versions=q.spec_versions,
                      added_after_us=q.added_after_us, next=q.next, limit=q.limit)


def deletable(store: Store, member: Member, collection: Collection, object_id: str, q: TaxiiQuery,
              keys: HubKeys, today: dt.date, peers: set[int] | None = None) -> list[int]:
    """The versions of ``object_id`` a DELETE by ``member`` removes (§5.7): those matching the filters that
    it wrote (or its ``peers``: tearline.write.peers_of). 404 when it receives none of them (as for an
    object that does not exist); 403 when it receives some but wrote none."""
    if not can_write(member, collection):  # §5.7: 404 to a member with no rights at all, else 403
        if not can_read(member, collection):
            raise NotFound(f"no object {object_id!r} in this collection", details={"object_id": object_id})
        raise Forbidden(f"member {member.name!r} may not write to collection {collection.alias!r}")
    gate = gate_for(member, collection, today)
    seen = _page(store, gate, dataclasses.replace(q, ids=(object_id,), limit=100_000, next=None), keys,
                 (objects.c.stix_id, objects.c.author))
    if not seen.rows:
        raise NotFound(f"no object {object_id!r} (matching the filters) in this collection",
                       details={"object_id": object_id})
    mine = peers if peers is not None else {member.id}
    own = [r.added_us for r in seen.rows if r.author in mine]
    if not own:
        raise Forbidden(f"{object_id} was shared by another member; only it can delete it",
                        details={"object_id": object_id})
    return own


def status(store: Store, member: Member, api_root: str, status_id: str) -> dict[str, Any]:
    """GET …/status/{id}/ (§4.3): only the member that posted sees a status; others' answer as missing."""
    with store.reading() as conn:
        row = rows.status_row(conn, api_root, status_id, member.id)
    if row is None:
        raise NotFound(f"no status {status_id!r} in this API root", details={"status_id": status_id})
    return status_resource(row._asdict())


def status_resource(row: dict[str, Any]) -> dict[str, Any]:
    """The TAXII 2.1 status resource (§4.3.1) from a stored status row."""
    def load(value: Any) -> Any:
        return orjson.loads(value) if isinstance(value, str) else value

    # §4.3.1: every entry has a version; one that failed before it had one (an observable without created or
    # modified, a malformed object) is given the request's time, the same for all of them
    failures = [f if f.get("version") else f | {"version": stix.format_us(row["request_us"])}
                for f in load(row["failures"])]
    out = {
        "id": row["id"],
        "status": "complete" if row["pending_count"] == 0 else "pending",
        "request_timestamp": stix.format_us(row["request_us"]),
        "total_count": row["total_count"],
        "success_count": row["success_count"],
        "failure_count": row["failure_count"],
        "pending_count": row["pending_count"],
    }
    # §4.3.1: the lists are optional and, when present, never empty
    for name, listed in (("successes", load(row["successes"])), ("failures", failures),
                         ("pendings", load(row["pendings"]))):
        if listed:
            out[name] = listed
    return out


def received_copy(member: Member, collection: Collection, keys: HubKeys,
                  today: dt.date) -> Callable[[Connection, dict[str, Any]], bool]:
    """Whether an object is, exactly, the member's copy of a version it receives (what tearline.write takes
    back as a duplicate): judged on the copy, never the stored original."""
    gate = gate_for(member, collection, today)

    def same(conn: Connection, obj: dict[str, Any]) -> bool:
        version = stix.version_of(obj)
        if not version:
            return False
        row = conn.execute(select(*_PAGE_COLUMNS, objects.c.added_us, objects.c.date_added_us).where(
            *gate.where, objects.c.stix_id == obj["id"],
            objects.c.version_us == stix.to_us(stix.parse_timestamp(version)))).first()
        if row is None:
            return False
        return bool(orjson.loads(Copier(conn, gate, member, collection, keys, [row]).copy(row)) == obj)
    return same


# --- the dashboard's reads -------------------------------------------------------------------------------

def released(store: Store, member: Member, collection: Collection, keys: HubKeys, today: dt.date,
             types: Sequence[str] = (), ids: Sequence[str] = (), batch: int = 1000,
             mark: bool = True) -> Iterator[dict[str, Any]]:
    """Every object the member may read in the collection, newest version it receives, as its own copies:
    exactly what TAXII would send it, page after page (without its fingerprint when ``mark`` is false: a
    warning's draft takes its text this way, and is fingerprinted for its addressee when delivered)."""
    gate = gate_for(member, collection, today)
    after = None
    while True:
        q = TaxiiQuery(ids=tuple(ids), types=tuple(types), versions=("last",), limit=batch)
        with store.reading() as conn:
            page = rows.page(conn, _PAGE_COLUMNS, _filters(gate, q, after), batch, by_id=bool(ids))
            copier = Copier(conn, gate, member, collection, keys, page.rows, mark)
        for row in page.rows:
            yield orjson.loads(copier.copy(row))
        if not page.more:
            return
        after = page.rows[-1].added_us


def type_counts(store: Store, member: Member, collection: Collection, today: dt.date) -> dict[str, int]:
    """Objects per type the member receives, each once (as listings count them: no TLP definition)."""
    gate = gate_for(member, collection, today)
    stmt = (select(objects.c.type, func.count())
            .where(*gate.where, gate.edge(newest=True), objects.c.stix_id.notin_(_TLP_IDS)).group_by(objects.c.type))
    with store.reading() as conn:
        return {str(t): int(n) for t, n in conn.execute(stmt)}


def newest_ids(store: Store, member: Member, collection: Collection, today: dt.date, limit: int,
               exclude_types: Sequence[str] = (), referring_to: str | None = None) -> list[str]:
    """Ids the member receives, most recently added first; with ``referring_to``, only objects that refer
    to that id."""
    gate = gate_for(member, collection, today)
    where = [*gate.where, gate.edge(newest=True)]
    if exclude_types:
        where.append(objects.c.type.notin_(exclude_types))
    rank = markings.RANK_OF_ID.get(referring_to) if referring_to is not None else None
    if rank is not None:
        # references to a TLP definition are not indexed (tearline.write): what a version is marked with is
        # its ``tlp`` (the strictest of its TLP markings) where it is ``marked``
        where += [objects.c.marked.is_(True), objects.c.tlp == rank, objects.c.stix_id.notin_(_TLP_IDS)]
    elif referring_to is not None:
        where.append(objects.c.added_us.in_(select(refs.c.added_us).where(
            refs.c.coll == objects.c.coll, refs.c.target_id == referring_to)))
    with store.reading() as conn:
        found = rows.select_rows(conn, (objects.c.stix_id,), where, objects.c.added_us.desc(), limit)
    return [str(r.stix_id) for r in found]


# --- warnings ----------------------------------------------------------------------------------------

def _warnings_gate(member: Member) -> list[ColumnElement[bool]]:
    """The warnings a member may read, as SQL: those it drafted, and those delivered to it (an outside
    party's are never a member's)."""
    delivered = exists(select(warning_events.c.id).where(warning_events.c.warning_id == warnings.c.id,
                                                        warning_events.c.action == "deliver"))
    return [warnings.c.api_root == member.api_root,
            or_(warnings.c.author_member == member.name,
                and_(warnings.c.addressee == member.name, warnings.c.outside.is_(False), delivered))]


# what an addressee is shown of a warning's history
_ADDRESSEE_STEPS = ("deliver", "acknowledge", "escalate", "expire")


def _warning_view(member: Member, record: dict[str, Any], copier: Copier) -> dict[str, Any]:
    """Its own draft in full to the member that drafted it (a text taken from a report carries its
    fingerprint, as every copy of that report it receives does); a delivered warning to its addressee as its
    copy, without its author: the steps it did not take say only when, and by the sender or the hub."""
    if record["author_member"] == member.name:
        if record.get("source") and copier.mark:
            report = dict(record["report"], description=leak.mark_text(copier.mark, record["report"]["description"]))
            return dict(record, report=report)
        return record
    history = []
    for e in record["history"]:
        if e["action"] not in _ADDRESSEE_STEPS:
            continue
        mine = e["by"] == member.name or e["by"].startswith(f"{member.name}:")
        by = e["by"] if mine else ("hub" if e["by"] == "hub" else "the sender")
        history.append(dict(e, by=by, note=e["note"] if mine or e["by"] == "hub" and e["action"] == "expire" else ""))
    return {"id": record["id"], "compact": record["compact"], "addressee": member.name, "outside": False,
            "state": record["state"], "window_end": record["window_end"],
            "report": orjson.loads(copier.copy_object(record["report"])), "history": history}


def warnings_for(store: Store, member: Member, keys: HubKeys) -> list[dict[str, Any]]:
    """The member's warnings: its drafts in full, and those delivered to it as its copy (its redaction
    profile and its fingerprint, like every copy), without their author."""
    collection = store.collection(member.api_root, "warnings")
    with store.reading() as conn:
        records = [stored_warnings.load(conn, wid) for wid in stored_warnings.ids(conn, _warnings_gate(member))]
    copier = Copier(None, None, member, collection, keys, [], recipient=True) if collection else None
    return [_warning_view(member, r, copier) for r in records if r is not None and copier is not None]


def warning_for(store: Store, member: Member, wid: str, keys: HubKeys) -> dict[str, Any]:
    """One warning as the member may read it; 404, as for one that does not exist, otherwise."""
    collection = store.collection(member.api_root, "warnings")
    with store.reading() as conn:
        found = stored_warnings.ids(conn, [*_warnings_gate(member), warnings.c.id == wid])
        record = stored_warnings.load(conn, wid) if found else None
    if record is None or collection is None:
        raise NotFound(f"no warning {wid!r}")
    return _warning_view(member, record, Copier(None, None, member, collection, keys, [], recipient=True))


def draft_text(store: Store, compact: str, source: str, author: Member | None, keys: HubKeys | None,
               today: dt.date) -> tuple[str, str, tuple[str, ...]]:
    """The description of report ``source`` that a warning may carry, as the drafting member receives it
    (``author``; the hub's own record when an operator drafts), and the TLP level of that part (its own
    granular TLP marking when it has one, else the report's, else the compact's default), and the report's
    RED recipients. Whether the addressee may read it is the warning's own tear line (tearline.warn)."""
    coll = store.collection(compact, "intel")
    if coll is None:
        raise NotFound(f"no compact named {compact!r}")
    if author is not None:
        if keys is None:
            raise ValueError("a member's release needs the hub's keys")
        found = list(released(store, author, coll, keys, today, ids=[source], mark=False))
        obj = found[0] if found else None
    else:
        with store.reading() as conn:
            body = conn.scalar(select(objects.c.body).where(objects.c.coll == coll.num, objects.c.stix_id == source,
                                                            objects.c.chain == 0, objects.c.is_latest.is_(True)))
        obj = orjson.loads(body) if body else None
    if obj is None or obj.get("type") != "report":
        raise NotFound(f"source {source!r}: no such report in {compact}'s intel collection")
    if not obj.get("description"):
        # the same answer whether the report has none or the drafter's tear line cut it
        raise BadRequest(f"source {source}: it has no description you may release; write the text with --text")
    return (str(obj["description"]), granular.part_level(obj, "description", coll.rules.default_tlp),
            tuple(obj.get("x_tearline_recipients") or ()))



# --- what a mirror sends back to the hub it mirrors (tearline.peering) ---------------------------------------

def outbound(store: Store, collection: Collection, after_us: int, limit: int) -> list[tuple[int, dict[str, Any]]]:
    """(added_us, object) of the versions this hub's own members wrote in ``collection`` after ``after_us``, that
    the compact shares as a whole: CLEAR, GREEN and AMBER, on the object's own chain, not a stand-in, not
    mirrored from a peer (nothing goes back where it came from, or on to a third hub). AMBER+STRICT stays with
    its author and RED with its named recipients, all of them on this hub, and so do the parts of an object
    marked so (its tear lines are cut as for a reader at AMBER)."""
    amber = markings.rank("amber")
    with store.reading() as conn:
        found = conn.execute(
            select(objects.c.added_us, objects.c.body).where(
                objects.c.coll == collection.num, objects.c.added_us > after_us, objects.c.author.is_not(None),
                objects.c.origin == 0, objects.c.chain == 0, objects.c.persona == 0, objects.c.tlp <= amber)
            .order_by(objects.c.added_us).limit(limit)).all()
    shared = granular.reader("amber", False)
    out = []
    for added, body in found:
        obj = orjson.loads(body)
        out.append((int(added), granular.cut(obj, granular.withheld(obj, shared)) if "granular_markings" in obj
                    else obj))
    return out
