"""The one outbound gate: what a member may see, compiled to SQL.

Every read path (objects, object by id, versions, manifest, the date headers, ``more``/``next``) asks
``visible`` for its WHERE clauses and never filters rows by hand afterwards, so paging, counts and
headers agree with what is released. Deny by default: without a readable membership of the
collection's API root there is no clause that lets a row through.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

import uuid
from collections.abc import Sequence

import orjson
from sqlalchemy import ColumnElement, Table, and_, bindparam, exists, false, or_, select

from . import granular, leak, markings
from .scope import Policy
from .store.schema import objects, recipients, refs

# A relationship or sighting whose end the member may not see is withheld whole: its mere existence
# would say that the hidden object exists.
ENDPOINTS = ("source_ref", "target_ref", "sighting_of_ref")
# The gate's self-joins, made once: building an alias copies every column, and did so on every read
# (it was most of the gate's cost, far more than the SQL it produces).
_HELD = objects.alias("held")
_SEEN = objects.alias("seen")
_OTHER = objects.alias("other")
_END = refs.alias("endpoint")
_PSEUDONYMS = uuid.UUID("2d0f8b7e-9c1a-4e55-b7a3-5c8e1f6a4d21")


@dataclasses.dataclass(frozen=True)
class Member:
    id: int
    api_root: str
    name: str
    can_read: bool
    can_write: bool
    tlp_max: str
    profile: dict[str, Any] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class Collection:
    id: str
    api_root: str
    alias: str
    title: str
    description: str
    member_writable: bool
    num: int  # the store's key of the collection
    policy: str = "{}"  # its compact's policy, as stored (read with the collection: one query, not two)

    @property
    def rules(self) -> "Policy":
        return Policy.loads(self.policy)


def can_read(member: Member, collection: Collection) -> bool:
    return member.api_root == collection.api_root and member.can_read


def can_write(member: Member, collection: Collection) -> bool:
    return member.api_root == collection.api_root and member.can_write and collection.member_writable


def _addressed(member: Member, table: Table) -> ColumnElement[bool]:
    """The version names the member among its recipients."""
    return exists(select(recipients.c.added_us).where(recipients.c.added_us == table.c.added_us,
                                                      recipients.c.member == member.name))


def _may_see(member: Member, table: Table, addressed_only: bool = False) -> ColumnElement[bool]:
    """The TLP rule for one version in ``table`` (objects or an alias of it). In the warnings
    collection the rule is the addressee's alone: a warning reaches the member it is addressed to,
    whatever that member's TLP ceiling, and nobody else (tearline.warn)."""
    if addressed_only:
        return or_(table.c.author == member.id, _addressed(member, table))
    ceiling = markings.rank(member.tlp_max)
    shared = min(ceiling, markings.rank("amber"))  # AMBER+STRICT never leaves its author's organisation
    may_see = [table.c.author == member.id, table.c.tlp <= shared]
    if ceiling >= markings.rank("red"):
        may_see.append(and_(table.c.tlp == markings.rank("red"), _addressed(member, table)))
    return or_(*may_see)


def _warnings(collection: Collection) -> bool:
    return collection.alias == "warnings" and not collection.member_writable


def _hidden(member: Member, collection: Collection, target: ColumnElement[str]) -> ColumnElement[bool]:
    """``target`` names an object the collection holds but none of whose versions the member may see."""
    held, seen = _HELD, _SEEN
    return and_(
        exists(select(held.c.pk).where(held.c.coll == collection.num, held.c.stix_id == target)),
        ~exists(select(seen.c.pk).where(seen.c.coll == collection.num, seen.c.stix_id == target,
                                        _may_see(member, seen, _warnings(collection)))),
    )


@dataclasses.dataclass(frozen=True)
class Gate:
    """The WHERE clauses of what one member may read in one collection (iterate it to use them), and
    the version rules that depend on them."""

    where: tuple[ColumnElement[bool], ...]
    member: Member
    collection: Collection

    def __iter__(self) -> Any:
        return iter(self.where)

    def edge(self, newest: bool) -> ColumnElement[bool]:
        """This version is the newest (or oldest) one the member may see: match[version]=last|first
        must not lose an object because a newer version is beyond the member's reach."""
        flag = objects.c.is_latest if newest else objects.c.is_first
        other = _OTHER
        beyond = other.c.version_us > objects.c.version_us if newest else other.c.version_us < objects.c.version_us
        return or_(flag.is_(True), ~exists(select(other.c.pk).where(
            other.c.coll == objects.c.coll, other.c.stix_id == objects.c.stix_id, beyond,
            _may_see(self.member, other, _warnings(self.collection)))))


def visible(member: Member, collection: Collection) -> Gate:
    """The gate selecting the object versions ``member`` may read in ``collection``. Made once per
    member and collection as they stand (building the expression on every read cost more than its SQL)."""
    return _visible(*_keys(member, collection))


def _keys(member: Member, collection: Collection) -> tuple["_Who", "_Where"]:
    return (_Who(member.id, member.api_root, member.name, member.can_read, member.tlp_max),
            _Where(collection.id, collection.api_root, collection.alias, collection.member_writable, collection.num))


@dataclasses.dataclass(frozen=True)
class _Who:
    """What the gate depends on of a member (its redaction profile does not enter the SQL)."""

    id: int
    api_root: str
    name: str
    can_read: bool
    tlp_max: str


@dataclasses.dataclass(frozen=True)
class _Where:
    id: str
    api_root: str
    alias: str
    member_writable: bool
    num: int


def _rebuilt(who: _Who, where: _Where) -> tuple[Member, Collection]:
    return (Member(who.id, who.api_root, who.name, who.can_read, False, who.tlp_max),
            Collection(where.id, where.api_root, where.alias, "", "", where.member_writable, where.num))


@functools.lru_cache(maxsize=4096)
def _visible(who: _Who, where: _Where) -> Gate:
    member, collection = _rebuilt(who, where)
    if not can_read(member, collection):
        return Gate((false(),), member, collection)
    end = _END
    hidden_end = exists(select(end.c.added_us).where(
        end.c.added_us == objects.c.added_us, end.c.prop.in_(ENDPOINTS), _hidden(member, collection, end.c.target_id)))
    ends_seen = ~hidden_end
    if not _warnings(collection):
        # fast path: every end has a version at or under the member's shared ceiling, so none is hidden
        # (ends_rank is kept by the store; NULL falls through to the full check)
        shared = min(markings.rank(member.tlp_max), markings.rank("amber"))
        ends_seen = or_(objects.c.ends_rank <= shared, ends_seen)
    return Gate((objects.c.coll == collection.num, _may_see(member, objects, _warnings(collection)), ends_seen),
                member, collection)


def gate_for(member: Member, collection: Collection, today: Any) -> Gate:
    """The gate of a read, after the checks every read makes first: the member may read this
    collection, and the compact is not closed. Raises Forbidden otherwise."""
    from .errors import Forbidden

    if not can_read(member, collection):
        raise Forbidden(f"member {member.name!r} may not read collection {collection.alias!r}")
    policy = collection.rules
    if policy.state(today) == "closed":
        raise Forbidden(f"compact {collection.api_root!r} closed after its expiry ({policy.expires}) and grace period")
    return visible(member, collection)


def released(store: Any, member: Member, collection: Collection, leak_key: bytes, today: Any,
             types: Sequence[str] = (), ids: Sequence[str] = (), batch: int = 1000) -> Any:
    """Every object the member may read in the collection, newest visible version, as the member's
    own copies — exactly what TAXII would send it, page after page (the dashboard reads through this)."""
    from .taxii.query import TaxiiQuery

    gate = gate_for(member, collection, today)
    mark = leak.member_key(leak_key, member.api_root, member.name)
    after = None
    while True:
        page = store.page(gate, TaxiiQuery(ids=tuple(ids), types=tuple(types), versions=("last",), limit=batch,
                                           after_us=after))
        if not page.rows:
            return
        hidden = store.grouped(*hidden_targets(member, collection, [r.added_us for r in page.rows]))
        for row in page.rows:
            own = row.author == member.id
            yield orjson.loads(release_body(member, row.body, hidden.get(row.added_us, set()), None if own else mark, own))
        if not page.more:
            return
        after = page.rows[-1].added_us


def hidden_targets(member: Member, collection: Collection, added: Sequence[int]) -> tuple[Any, dict[str, Any]]:
    """The statement (and its parameters) listing, per released version (by date_added), the ids it
    refers to that the member may not see: they are cut out of the copies it receives."""
    return _hidden_refs(*_keys(member, collection)), {"added": list(added)}


@functools.lru_cache(maxsize=4096)
def _hidden_refs(who: _Who, where: _Where) -> Any:
    member, collection = _rebuilt(who, where)
    # made once per member and collection, like the gate; a marking definition is never hidden (every
    # version of one is TLP rank 0), so its many references (every object's object_marking_refs) need no check
    return select(refs.c.added_us, refs.c.target_id).where(
        refs.c.added_us.in_(bindparam("added", expanding=True)), refs.c.prop.notin_(ENDPOINTS),
        ~refs.c.target_id.startswith("marking-definition--"), _hidden(member, collection, refs.c.target_id))


def redact(member: Member, obj: dict[str, Any], hidden: set[str], own: bool = False) -> dict[str, Any]:
    """The member's copy of one object: references to what it may not see removed, the parts granular
    markings keep from it cut (its tear line; not for its own objects), and its redaction profile
    applied (created_by_ref → a pseudonym per author, where_sighted_refs and custom x_ properties
    dropped, coordinates coarsened to the administrative area). One cut does it all, so the selectors
    of the markings that remain still name the right parts (tearline.granular)."""
    rules = set(member.profile.get("redact") or ())
    paths: list[granular.Path] = []
    for key, value in obj.items():
        if ((key in rules and key != "created_by_ref") or ("x_" in rules and key.startswith("x_"))
                or ("coordinates" in rules and key in ("latitude", "longitude", "precision"))):
            paths.append((key,))
        elif key.endswith("_refs") and isinstance(value, list):
            paths.extend((key, i) for i, v in enumerate(value) if v in hidden)
        elif key.endswith("_ref") and value in hidden:
            paths.append((key,))
    if not own:
        recipient = member.name in (obj.get("x_tearline_recipients") or ())
        paths.extend(granular.withheld(obj, granular.reader(member.tlp_max, recipient)))
    out = granular.cut(obj, paths)
    if "created_by_ref" in rules and "created_by_ref" in obj:
        # the same author always gets the same pseudonym within a compact, and no other author shares it
        out = dict(out, created_by_ref=f"identity--{uuid.uuid5(_PSEUDONYMS, member.api_root + '|' + obj['created_by_ref'])}")
    if "coordinates" in rules and obj.get("type") == "location" and not ({"region", "country"} & set(out)):
        out = dict(out, region="southern-asia")  # a location must keep something to stand on
    return out


def needs_copy(member: Member) -> bool:
    return bool(member.profile.get("redact"))


def release_body(member: Member, body: str, hidden: set[str], mark: bytes | None = None, own: bool = False) -> bytes:
    """Raw stored JSON when nothing is to change (``hidden``: what this object refers to that the member
    may not see; ``own``: the member wrote this version), else the member's redacted copy; with ``mark``
    (the member's leak key), its descriptions carry the member's fingerprint (tearline.leak)."""
    if not hidden and not needs_copy(member) and (own or '"granular_markings"' not in body):
        return (leak.mark_body(mark, body) if mark else body).encode()
    copy = redact(member, orjson.loads(body), hidden, own)
    return orjson.dumps(leak.mark_object(mark, copy) if mark else copy)
