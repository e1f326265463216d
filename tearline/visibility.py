"""Who may see which stored version, and what a member may not receive for want of what it refers to.

The rule for one version, written twice side by side so the two cannot drift: as SQL (compiled into every
read by tearline.release) and in Python (for the write path's upkeep below).

- TLP 2.0: a member reads CLEAR, GREEN and AMBER up to its ceiling; AMBER+STRICT only what it wrote; RED
  only when its ceiling is RED and the version names it among ``x_tearline_recipients``. Its own versions
  always. In the warnings collection only the addressee (and the author) reads a version.
- Chains: an object's versions are its first sharer's (``chain`` 0); versions a member wrote of an id hidden
  from it form a chain of its own (``chain`` = its id) that only it reads (tearline.write).
- Authors: a member whose profile hides authors reads no identity but its own; each reaches it as its
  pseudonymous stand-in (``persona`` 2), which nobody else reads.

Two questions are asked of this rule. *Receives*: which rows a member is given (the gate of every read).
*In sight*: is an id there for the member at all — does it receive a version of the object's own chain,
or, for an identity hidden behind its stand-in, would it but for that. References are judged by sight: a
reference to what is out of a member's sight is cut from its copy, and a version that needs a reference
(a relationship's ends, a report's object_refs: tearline.stix.REQUIRED_REFS) all of whose targets are out
of sight is *withheld* from it whole, since its copy would point at nothing and its existence would betray
what it points at. A member's own versions are never withheld from it. Sight of a target depends in turn
on that target's references, so the ``withheld`` table holds, per member, the versions so withheld: the
greatest set of versions that can be shown consistently (mutually referring reports stay visible). The
write path keeps it exact incrementally (``snapshot`` before a change, ``settle`` after it); ``recompute``
rebuilds a member's rows from nothing in SQL when the member itself changes. tests/test_release_paths.py
holds the two to each other over generated histories.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import ColumnElement, Connection, Table, and_, delete, exists, insert, literal, or_, select, true

from . import markings
from .model import Member
from .store import rows_for_ids
from .store.schema import objects, recipients, refs, withheld

_AMBER = markings.rank("amber")
_RED = markings.rank("red")


@dataclasses.dataclass(frozen=True)
class Reader:
    """What visibility depends on of a member (its other settings do not change what it may see)."""

    id: int
    name: str
    tlp_max: str
    hides_authors: bool = False
    # a peer hub (compact member of kind hub): never given what this hub mirrors from another, so that nothing
    # a partner released to this hub travels on to a third (tearline.peering)
    hub: bool = False

    @classmethod
    def of(cls, member: Member) -> Reader:
        return cls(member.id, member.name, member.tlp_max, member.hides_authors, member.profile.get("kind") == "hub")

    @property
    def shared(self) -> int:
        """The highest rank it reads of others' versions: AMBER+STRICT never leaves its author."""
        return min(markings.rank(self.tlp_max), _AMBER)


@dataclasses.dataclass(frozen=True)
class Version:
    added_us: int
    stix_id: str
    tlp: int
    author: int | None
    persona: int
    chain: int = 0
    hop: int = 0
    recipients: frozenset[str] = frozenset()
    origin: int = 0  # the peer it was mirrored from (tearline.peering); 0: this hub's own


# --- the rule ------------------------------------------------------------------------------------------

def _addressed(reader: Reader, table: Table) -> ColumnElement[bool]:
    return exists(select(recipients.c.added_us).where(recipients.c.added_us == table.c.added_us,
                                                      recipients.c.member == reader.name))


def _tlp_sql(reader: Reader, table: Table, addressed_only: bool) -> ColumnElement[bool]:
    if addressed_only:
        return or_(table.c.author == reader.id, _addressed(reader, table))
    allowed = [table.c.author == reader.id, table.c.tlp <= reader.shared]
    if markings.rank(reader.tlp_max) >= _RED:
        allowed.append(and_(table.c.tlp == _RED, _addressed(reader, table)))
    return or_(*allowed)


def _tlp(reader: Reader, v: Version, addressed_only: bool) -> bool:
    own = v.author is not None and v.author == reader.id
    if addressed_only:
        return own or reader.name in v.recipients
    return own or v.tlp <= reader.shared or (
        v.tlp == _RED and markings.rank(reader.tlp_max) >= _RED and reader.name in v.recipients)


def _persona_sql(reader: Reader, table: Table) -> ColumnElement[bool]:
    if not reader.hides_authors:
        return table.c.persona < 2
    own = and_(table.c.author.is_not(None), table.c.author == reader.id)
    return or_(table.c.persona == 0, and_(table.c.persona == 2, ~own), and_(table.c.persona == 1, own))


def _persona(reader: Reader, v: Version) -> bool:
    if not reader.hides_authors:
        return v.persona < 2
    own = v.author is not None and v.author == reader.id
    return v.persona == 0 or (v.persona == 2 and not own) or (v.persona == 1 and own)


def _origin_sql(reader: Reader, table: Table) -> ColumnElement[bool]:
    return table.c.origin == 0 if reader.hub else true()


def may_see_sql(reader: Reader, table: Table, addressed_only: bool) -> ColumnElement[bool]:
    """Which rows of ``table`` (objects or an alias of it) the reader is given, withheld aside."""
    return and_(_tlp_sql(reader, table, addressed_only), _persona_sql(reader, table),
                or_(table.c.chain == 0, table.c.chain == reader.id), _origin_sql(reader, table))


def may_see(reader: Reader, v: Version, addressed_only: bool) -> bool:
    """The same rule in Python."""
    return (_tlp(reader, v, addressed_only) and _persona(reader, v) and v.chain in (0, reader.id)
            and not (reader.hub and v.origin))


def _sight_sql(reader: Reader, table: Table, addressed_only: bool) -> ColumnElement[bool]:
    """A version that puts its id in the reader's sight: of the object's own chain, and given to the reader
    (an identity behind its stand-in counts for a member that hides authors; stand-ins count for nobody else)."""
    persona = table.c.persona >= 0 if reader.hides_authors else table.c.persona < 2
    return and_(table.c.chain == 0, _tlp_sql(reader, table, addressed_only), persona, _origin_sql(reader, table))


def _sight(reader: Reader, v: Version, addressed_only: bool) -> bool:
    return (v.chain == 0 and _tlp(reader, v, addressed_only) and (reader.hides_authors or v.persona < 2)
            and not (reader.hub and v.origin))


def not_withheld_sql(reader: Reader, table: Table) -> ColumnElement[bool]:
    return ~exists(select(withheld.c.added_us).where(withheld.c.member == reader.id,
                                                     withheld.c.added_us == table.c.added_us))


def receives_sql(reader: Reader, table: Table, addressed_only: bool) -> ColumnElement[bool]:
    """A version the reader is given: the rule, and not withheld."""
    return and_(may_see_sql(reader, table, addressed_only), not_withheld_sql(reader, table))


def hidden_sql(reader: Reader, coll: int, target: ColumnElement[str], addressed_only: bool) -> ColumnElement[bool]:
    """``target`` names an object the collection holds that is out of the reader's sight."""
    held, seen = objects.alias(), objects.alias()
    return and_(
        exists(select(held.c.pk).where(held.c.coll == coll, held.c.stix_id == target, held.c.chain == 0)),
        ~exists(select(seen.c.pk).where(seen.c.coll == coll, seen.c.stix_id == target,
                                        _sight_sql(reader, seen, addressed_only), not_withheld_sql(reader, seen))),
    )


# --- what the store holds around a change -----------------------------------------------------------------

class _Around:
    """Versions, required references and withheld rows around a change, read once and cached."""

    def __init__(self, conn: Connection, coll: int):
        self.conn, self.coll = conn, coll
        self._versions: dict[str, list[Version]] = {}
        self._groups: dict[int, list[list[str]]] = {}
        self._ids: dict[int, str] = {}
        self._withheld: dict[tuple[int, int], bool] = {}

    def versions(self, ids: Iterable[str]) -> dict[str, list[Version]]:
        ids = list(ids)
        missing = sorted({i for i in ids if i not in self._versions})
        if missing:
            found: dict[str, list[tuple[Any, ...]]] = {i: [] for i in missing}
            for stix_id, added, tlp, author, persona, chain, hop, origin in rows_for_ids(
                    self.conn, "SELECT stix_id, added_us, tlp, author, persona, chain, hop, origin FROM objects "
                               "WHERE coll = {coll} AND stix_id IN ({ids})", self.coll, missing):
                found[stix_id].append((int(added), int(tlp), author, int(persona), int(chain), int(hop),
                                       int(origin)))
            red = [row[0] for rows in found.values() for row in rows if row[1] == _RED]
            names: dict[int, set[str]] = {}
            for added, member in self._rows("SELECT added_us, member FROM recipients WHERE added_us IN ({ids})", red):
                names.setdefault(int(added), set()).add(member)
            for stix_id, rows in found.items():
                self._versions[stix_id] = [Version(a, stix_id, tlp, author, persona, chain, hop,
                                                   frozenset(names.get(a, ())), origin)
                                           for a, tlp, author, persona, chain, hop, origin in rows]
                for a, *_ in rows:
                    self._ids[a] = stix_id
        return {i: self._versions[i] for i in ids}

    def versions_of(self, stix_id: str) -> list[Version]:
        found = self._versions.get(stix_id)
        return found if found is not None else self.versions([stix_id])[stix_id]

    def version(self, added: int) -> Version | None:
        stix_id = self._ids.get(added)
        return next((v for v in self._versions.get(stix_id, ()) if v.added_us == added), None) if stix_id else None

    def groups(self, added: Iterable[int]) -> dict[int, list[list[str]]]:
        """Per version, its required references as groups of targets (one of each group is needed)."""
        added = list(added)
        missing = sorted({a for a in added if a not in self._groups})
        if missing:
            by: dict[int, dict[str, list[str]]] = {a: {} for a in missing}
            for a, prop, req, target in self._rows(
                    "SELECT added_us, prop, req, target_id FROM refs WHERE req > 0 AND added_us IN ({ids})", missing):
                by[int(a)].setdefault(prop if req == 1 else "*", []).append(target)
            for a, groups in by.items():
                self._groups[a] = list(groups.values())
        return {a: self._groups[a] for a in added}

    def referred(self, ids: Sequence[str]) -> list[str]:
        """Those of ``ids`` some stored version has a required reference to."""
        return [t for (t,) in rows_for_ids(
            self.conn, "SELECT DISTINCT target_id FROM refs WHERE coll = {coll} AND req > 0 AND target_id IN ({ids})",
            self.coll, sorted(set(ids)))]

    def referrers(self, ids: Iterable[str], withheld_for: Reader | None = None) -> list[tuple[int, str]]:
        """(added_us, stix_id) of the versions with a required reference to one of ``ids`` (only those
        withheld from ``withheld_for`` when given)."""
        ids = sorted(set(ids))
        if not ids:
            return []
        # o.coll in the join: objects are indexed by (coll, added_us), and without it SQLite scans refs and
        # builds a throw-away index over every object on each call (0.4 s at 700k objects, not 6 ms)
        sql = ("SELECT DISTINCT r.added_us, o.stix_id FROM refs r JOIN objects o ON o.coll = r.coll "
               "AND o.added_us = r.added_us "
               + ("JOIN withheld w ON w.added_us = r.added_us AND w.member = {member} " if withheld_for else "")
               + "WHERE r.coll = {coll} AND r.req > 0 AND r.target_id IN ({ids})")
        sql = sql.replace("{member}", str(int(withheld_for.id))) if withheld_for else sql
        out = [(int(a), s) for a, s in rows_for_ids(self.conn, sql, self.coll, ids)]
        for a, s in out:
            self._ids.setdefault(a, s)
        return out

    def is_withheld(self, reader: Reader, added: int) -> bool:
        found = self._withheld.get((reader.id, added))
        if found is None:  # callers load what they will ask about in bulk; this is the exception
            self.load_withheld([reader], [added])
            found = self._withheld[(reader.id, added)]
        return found

    def load_withheld(self, readers: Sequence[Reader], added: Iterable[int]) -> None:
        todo = sorted({a for a in added for r in readers if (r.id, a) not in self._withheld})
        if not todo:
            return
        for r in readers:
            for a in todo:
                self._withheld.setdefault((r.id, a), False)
        ids = {r.id for r in readers}
        for member, a in self._rows("SELECT member, added_us FROM withheld WHERE added_us IN ({ids})", todo):
            if int(member) in ids:
                self._withheld[(int(member), int(a))] = True

    def set_withheld(self, reader: Reader, added: int, value: bool) -> None:
        self._withheld[(reader.id, added)] = value

    def _rows(self, sql: str, values: Sequence[Any]) -> Iterable[Any]:
        mark = "?" if self.conn.dialect.paramstyle == "qmark" else "%s"
        for start in range(0, len(values), 500):
            chunk = values[start:start + 500]
            yield from self.conn.exec_driver_sql(sql.format(ids=", ".join(mark for _ in chunk)), tuple(chunk))


def _in_sight(around: _Around, reader: Reader, stix_id: str, addressed_only: bool,
              override: dict[int, bool] | None = None) -> bool:
    """Is ``stix_id`` in the reader's sight: its own chain not held at all, or a version of it in sight."""
    versions = [v for v in around.versions_of(stix_id) if v.chain == 0]
    if not versions:
        return True
    for v in versions:
        blocked = override[v.added_us] if override is not None and v.added_us in override \
            else around.is_withheld(reader, v.added_us)
        if not blocked and _sight(reader, v, addressed_only):
            return True
    return False


def received(conn: Connection, coll: int, reader: Reader | None, ids: Iterable[str],
             addressed_only: bool) -> dict[str, list[Version]]:
    """For each of ``ids``, the versions the reader is given (all of them for ``None``, the hub itself)."""
    around = _Around(conn, coll)
    found = around.versions(list(ids))
    if reader is None:
        return {i: vs for i, vs in found.items() if vs}
    around.load_withheld([reader], [v.added_us for vs in found.values() for v in vs])
    out = {}
    for stix_id, versions in found.items():
        given = [v for v in versions
                 if may_see(reader, v, addressed_only) and not around.is_withheld(reader, v.added_us)]
        if given:
            out[stix_id] = given
    return out


def snapshot(conn: Connection, coll: int, readers: Sequence[Reader], ids: Iterable[str],
             addressed_only: bool) -> dict[int, dict[str, bool]]:
    """Per reader, whether each of ``ids`` is in its sight now (call before changing them). Only ids that
    something needs are asked: a change in the sight of any other moves nothing."""
    around = _Around(conn, coll)
    referred = sorted(set(around.referred(list(ids))))
    found = around.versions(referred)
    around.load_withheld(readers, [v.added_us for vs in found.values() for v in vs])
    return {r.id: {i: _in_sight(around, r, i, addressed_only) for i in referred} for r in readers}


def settle(conn: Connection, coll: int, readers: Sequence[Reader], ids: Iterable[str], new: Sequence[int],
           before: dict[int, dict[str, bool]], addressed_only: bool) -> None:
    """After versions of ``ids`` were written (``new``: their added_us) or deleted: work out, for each
    reader, which versions it is withheld now. The region recomputed grows from the new versions upward —
    through versions withheld from the reader that may now come into sight, and through every version that
    needs an id whose sight the reader lost — and is recomputed as a whole each time it grows, so cycles
    of mutually referring versions settle on the greatest consistent view."""
    around = _Around(conn, coll)
    fresh = set(new)
    watched = sorted({i for b in before.values() for i in b})
    found = around.versions([*ids, *watched])
    around.load_withheld(readers, [v.added_us for vs in found.values() for v in vs])
    for reader in readers:
        region = set(fresh)
        status: dict[int, bool] = {}
        grow_from = {around._ids.get(a) or "" for a in fresh} | set(ids)
        lost: set[str] = set()
        expanded: set[str] = set()
        while True:
            added = {a for a, _ in around.referrers(grow_from, withheld_for=reader)} - region
            added |= {a for a, _ in around.referrers(lost - expanded)} - region
            expanded |= lost
            region |= added
            grow_from = {around._ids[a] for a in added if a in around._ids}
            around.versions(grow_from)
            status = _fix(around, reader, region, addressed_only)
            now_lost = {i for i in watched if before[reader.id].get(i, True)
                        and not _in_sight(around, reader, i, addressed_only, status)}
            now_lost |= {around._ids[a] for a, held in status.items()
                         if held and not around.is_withheld(reader, a) and a in around._ids}
            lost |= now_lost
            if not added and not (lost - expanded):
                break
        _write(around, reader, status)


def _fix(around: _Around, reader: Reader, region: set[int], addressed_only: bool) -> dict[int, bool]:
    """Which versions of ``region`` the reader is withheld, everything else as stored: start from none and
    withhold what must be until nothing changes (the greatest consistent view). A member's own versions
    are never withheld from it."""
    if not region:
        return {}
    groups = around.groups(region)
    found = around.versions({t for gs in groups.values() for g in gs for t in g})
    around.load_withheld([reader], [*region, *(v.added_us for vs in found.values() for v in vs)])
    held = dict.fromkeys(region, False)
    targets = {t for gs in groups.values() for g in gs for t in g}
    # targets with a version in the region may come into or go out of sight as it is worked out; the rest
    # are fixed for this computation, so their answer is kept
    inside = {t for t in targets if any(v.added_us in region for v in around.versions_of(t))}
    fixed: dict[str, bool] = {}

    def sees(t: str) -> bool:
        if t in inside:
            return _in_sight(around, reader, t, addressed_only, held)
        answer = fixed.get(t)
        if answer is None:
            answer = fixed[t] = _in_sight(around, reader, t, addressed_only)
        return answer

    own = {a for a in region if (v := around.version(a)) is not None and v.author == reader.id}
    changed = True
    while changed:
        changed = False
        for a in region:
            if held[a] or a in own:
                continue
            if not all(any(sees(t) for t in g) for g in groups[a]):
                held[a] = changed = True
    return held


def _write(around: _Around, reader: Reader, status: dict[int, bool]) -> None:
    gone = [a for a, held in status.items() if around.is_withheld(reader, a) and not held]
    came = [a for a, held in status.items() if held and not around.is_withheld(reader, a)]
    for start in range(0, len(gone), 500):
        around.conn.execute(delete(withheld).where(withheld.c.member == reader.id,
                                                   withheld.c.added_us.in_(gone[start:start + 500])))
    if came:
        around.conn.execute(insert(withheld), [{"member": reader.id, "added_us": a} for a in came])
    for a, held in status.items():
        around.set_withheld(reader, a, held)


def recompute(conn: Connection, coll: int, reader: Reader, addressed_only: bool) -> None:
    """Rebuild the reader's withheld rows in one collection from nothing, in SQL: withhold what must be
    withheld given what is withheld so far, until a pass withholds nothing more."""
    conn.execute(delete(withheld).where(withheld.c.member == reader.id, withheld.c.added_us.in_(
        select(objects.c.added_us).where(objects.c.coll == coll))))
    o, r = objects.alias("o"), refs.alias("r")

    def ref_of(req: int) -> Any:
        return select(r.c.added_us).where(r.c.added_us == o.c.added_us, r.c.req == req)

    hidden = hidden_sql(reader, coll, r.c.target_id, addressed_only)
    must = and_(
        o.c.coll == coll,
        or_(o.c.author.is_(None), o.c.author != reader.id),
        exists(select(r.c.added_us).where(r.c.added_us == o.c.added_us, r.c.req > 0)),
        not_withheld_sql(reader, o),
        or_(exists(ref_of(1).where(hidden)),
            and_(exists(ref_of(2)), ~exists(ref_of(2).where(~hidden)))),
    )
    # RETURNING, because the driver's rowcount of an INSERT … SELECT is -1 on PostgreSQL
    stmt = insert(withheld).from_select(["member", "added_us"], select(literal(reader.id), o.c.added_us).where(must)
                                        ).returning(withheld.c.added_us)
    while conn.execute(stmt).first() is not None:
        pass


def forget(conn: Connection, added: Sequence[int]) -> None:
    """Versions deleted: their withheld rows go with them."""
    for start in range(0, len(added), 500):
        conn.execute(delete(withheld).where(withheld.c.added_us.in_(added[start:start + 500])))
