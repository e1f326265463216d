"""Who may see which stored version, and what a member may not receive for want of what it refers to.

The rule for one version, written twice side by side so the two cannot drift: as SQL (``may_see_sql``,
compiled into every read by tearline.release) and in Python (``may_see``, for the upkeep below).

- TLP 2.0: a member reads CLEAR, GREEN and AMBER up to its ceiling; AMBER+STRICT only what it wrote;
  RED only when its ceiling is RED and the version names it among ``x_tearline_recipients``. Its own
  versions always. In the warnings collection only the addressee (and the author) reads a version.
- Authorship: a member whose profile hides authors never sees an identity some object names as its
  author; it sees that identity's pseudonymous stand-in instead (``persona``, tearline.write).

Structure. A version that needs a reference (a relationship's ends, a report's object_refs: see
tearline.stix.REQUIRED_REFS) is *withheld* from a member when every target of one such reference is out
of its sight: its copy would point at nothing, and its existence would betray what it points at. Whether
a target is in sight depends in turn on that target's own references, so the ``withheld`` table holds,
per member, the versions so withheld: the greatest set of versions that can be shown consistently
(mutually referring reports stay visible). The write path keeps it exact incrementally (``snapshot``
before a change, ``settle`` after it); ``recompute`` rebuilds a member's rows from scratch in SQL when the
member itself changes. tests/test_visibility.py holds the two to each other over generated histories.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import ColumnElement, Connection, Table, and_, delete, exists, false, insert, literal, or_, select

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

    @classmethod
    def of(cls, member: Member) -> "Reader":
        return cls(member.id, member.name, member.tlp_max, member.hides_authors)

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
    hop: int = 0
    recipients: frozenset[str] = frozenset()


# --- the rule ------------------------------------------------------------------------------------------

def _addressed(reader: Reader, table: Table) -> ColumnElement[bool]:
    return exists(select(recipients.c.added_us).where(recipients.c.added_us == table.c.added_us,
                                                      recipients.c.member == reader.name))


def _persona_sql(reader: Reader, table: Table) -> ColumnElement[bool]:
    if not reader.hides_authors:
        return table.c.persona < 2
    return or_(table.c.persona == 0, and_(table.c.persona == 2, or_(table.c.author.is_(None), table.c.author != reader.id)),
               and_(table.c.persona == 1, table.c.author == reader.id))


def may_see_sql(reader: Reader, table: Table, addressed_only: bool) -> ColumnElement[bool]:
    """The rule for one version in ``table`` (objects or an alias of it), as SQL."""
    if addressed_only:
        tlp = or_(table.c.author == reader.id, _addressed(reader, table))
    else:
        allowed = [table.c.author == reader.id, table.c.tlp <= reader.shared]
        if markings.rank(reader.tlp_max) >= _RED:
            allowed.append(and_(table.c.tlp == _RED, _addressed(reader, table)))
        tlp = or_(*allowed)
    return and_(tlp, _persona_sql(reader, table))


def may_see(reader: Reader, v: Version, addressed_only: bool) -> bool:
    """The same rule in Python."""
    own = v.author is not None and v.author == reader.id
    if addressed_only:
        tlp_ok = own or reader.name in v.recipients
    else:
        tlp_ok = own or v.tlp <= reader.shared or (
            v.tlp == _RED and markings.rank(reader.tlp_max) >= _RED and reader.name in v.recipients)
    if not tlp_ok:
        return False
    if not reader.hides_authors:
        return v.persona < 2
    return v.persona == 0 or (v.persona == 2 and not own) or (v.persona == 1 and own)


def not_withheld_sql(reader: Reader, table: Table) -> ColumnElement[bool]:
    return ~exists(select(withheld.c.added_us).where(withheld.c.member == reader.id,
                                                     withheld.c.added_us == table.c.added_us))


def receives_sql(reader: Reader, table: Table, addressed_only: bool) -> ColumnElement[bool]:
    """A version the reader receives: the rule, and not withheld."""
    return and_(may_see_sql(reader, table, addressed_only), not_withheld_sql(reader, table))


def hidden_sql(reader: Reader, coll: int, target: ColumnElement[str], addressed_only: bool) -> ColumnElement[bool]:
    """``target`` names an object the collection holds but of which the reader receives no version."""
    held, seen = objects.alias(), objects.alias()
    return and_(
        exists(select(held.c.pk).where(held.c.coll == coll, held.c.stix_id == target)),
        ~exists(select(seen.c.pk).where(seen.c.coll == coll, seen.c.stix_id == target,
                                        receives_sql(reader, seen, addressed_only))),
    )


# --- what the store holds around a change -----------------------------------------------------------------

class _Around:
    """Versions, required references and withheld rows around a change, read once and cached."""

    def __init__(self, conn: Connection, coll: int):
        self.conn, self.coll = conn, coll
        self._versions: dict[str, list[Version]] = {}
        self._groups: dict[int, list[list[str]]] = {}
        self._withheld: dict[tuple[int, int], bool] = {}

    def versions(self, ids: Iterable[str]) -> dict[str, list[Version]]:
        missing = sorted({i for i in ids if i not in self._versions})
        if missing:
            found: dict[str, list[tuple[int, int, Any, int, int]]] = {i: [] for i in missing}
            for stix_id, added, tlp, author, persona, hop in rows_for_ids(
                    self.conn, "SELECT stix_id, added_us, tlp, author, persona, hop FROM objects "
                               "WHERE coll = {coll} AND stix_id IN ({ids})", self.coll, missing):
                found[stix_id].append((int(added), int(tlp), author, int(persona), int(hop)))
            red = [a for rows in found.values() for a, tlp, _, _, _ in rows if tlp == _RED]
            names: dict[int, set[str]] = {}
            for added, member in self._rows("SELECT added_us, member FROM recipients WHERE added_us IN ({ids})", red):
                names.setdefault(int(added), set()).add(member)
            for stix_id, rows in found.items():
                self._versions[stix_id] = [Version(a, stix_id, tlp, author, persona, hop, frozenset(names.get(a, ())))
                                           for a, tlp, author, persona, hop in rows]
        return {i: self._versions[i] for i in ids}

    def versions_of(self, stix_id: str) -> list[Version]:
        found = self._versions.get(stix_id)
        return found if found is not None else self.versions([stix_id])[stix_id]

    def groups(self, added: Iterable[int]) -> dict[int, list[list[str]]]:
        """Per version, its required references as groups of targets (one of each group is needed)."""
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

    def referrers(self, ids: Sequence[str]) -> list[tuple[int, str]]:
        """(added_us, stix_id) of the versions with a required reference to one of ``ids``."""
        return [(int(a), s) for a, s in rows_for_ids(
            self.conn, "SELECT DISTINCT r.added_us, o.stix_id FROM refs r JOIN objects o ON o.added_us = r.added_us "
                       "WHERE r.coll = {coll} AND r.req > 0 AND r.target_id IN ({ids})", self.coll, sorted(ids))]

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
                self._withheld[(r.id, a)] = False
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


def _visible(around: _Around, reader: Reader, stix_id: str, addressed_only: bool,
             override: dict[int, bool] | None = None) -> bool:
    """Is ``stix_id`` in the reader's sight: not held at all, or some version received."""
    versions = around.versions_of(stix_id)
    if not versions:
        return True
    for v in versions:
        blocked = override[v.added_us] if override is not None and v.added_us in override \
            else around.is_withheld(reader, v.added_us)
        if not blocked and may_see(reader, v, addressed_only):
            return True
    return False


def seen_hops(conn: Connection, coll: int, reader: Reader | None, ids: Iterable[str],
              addressed_only: bool) -> dict[str, int]:
    """For each of ``ids`` of which the reader receives some version, the lowest hop among those versions
    (a write is judged on what its writer may see; ``None`` is the hub, which sees everything)."""
    around = _Around(conn, coll)
    out: dict[str, int] = {}
    found = around.versions(list(ids))
    if reader is not None:
        around.load_withheld([reader], [v.added_us for vs in found.values() for v in vs])
    for stix_id, versions in found.items():
        if reader is not None:
            versions = [v for v in versions if not around.is_withheld(reader, v.added_us)
                        and may_see(reader, v, addressed_only)]
        if versions:
            out[stix_id] = min(v.hop for v in versions)
    return out


def snapshot(conn: Connection, coll: int, readers: Sequence[Reader], ids: Iterable[str],
             addressed_only: bool) -> dict[int, dict[str, bool]]:
    """Per reader, whether each of ``ids`` is in its sight now (call before changing them). Ids nothing
    refers to need no answer: a change of their sight moves nothing else (``settle`` knows them by
    their absence)."""
    around = _Around(conn, coll)
    referred = sorted({s for s in _referred(around, list(ids))})
    found = around.versions(referred)
    around.load_withheld(readers, [v.added_us for vs in found.values() for v in vs])
    return {r.id: {i: _visible(around, r, i, addressed_only) for i in referred} for r in readers}


def _referred(around: _Around, ids: list[str]) -> set[str]:
    """Those of ``ids`` that some stored version needs (a required reference points at them)."""
    return set(around.referred(ids))


def settle(conn: Connection, coll: int, readers: Sequence[Reader], ids: Iterable[str], new: Sequence[int],
           before: dict[int, dict[str, bool]], addressed_only: bool) -> None:
    """After versions of ``ids`` were written (``new``: their added_us), deleted, or changed persona:
    work out which new versions each reader is withheld, and follow every change of sight upward
    through what refers to it (only ids something needs can move anything: ``snapshot`` took those)."""
    around = _Around(conn, coll)
    fresh = set(new)
    watched = sorted({i for b in before.values() for i in b})
    found = around.versions(watched)
    around.load_withheld(readers, [v.added_us for vs in found.values() for v in vs])
    for reader in readers:
        _fix(around, reader, fresh, addressed_only)
        frontier = {i for i in watched if _visible(around, reader, i, addressed_only) != before[reader.id].get(i, True)}
        region: set[int] = set()
        while frontier:
            found = [(a, s) for a, s in around.referrers(sorted(frontier)) if a not in region and a not in fresh]
            region |= {a for a, _ in found}
            frontier = {s for _, s in found}
        if region:
            _fix(around, reader, region, addressed_only)


def _fix(around: _Around, reader: Reader, region: set[int], addressed_only: bool) -> None:
    """Recompute which versions of ``region`` the reader is withheld, everything else held fixed: start
    from none and withhold what must be until nothing changes (the greatest consistent view), then write
    the difference."""
    if not region:
        return
    groups = around.groups(region)
    found = around.versions({t for gs in groups.values() for g in gs for t in g})
    around.load_withheld([reader], [*region, *(v.added_us for vs in found.values() for v in vs)])
    held = {a: False for a in region}
    targets = {t for gs in groups.values() for g in gs for t in g}
    # targets with a version in the region may come in or go out of sight as it is worked out; the rest
    # are fixed for this computation, so their answer is kept
    inside = {t for t in targets if any(v.added_us in region for v in around.versions_of(t))}
    fixed: dict[str, bool] = {}

    def sees(t: str) -> bool:
        if t in inside:
            return _visible(around, reader, t, addressed_only, held)
        found = fixed.get(t)
        if found is None:
            found = fixed[t] = _visible(around, reader, t, addressed_only)
        return found

    changed = True
    while changed:
        changed = False
        for a in region:
            if held[a]:
                continue
            if not all(any(sees(t) for t in g) for g in groups[a]):
                held[a] = changed = True
    gone = [a for a in region if around.is_withheld(reader, a) and not held[a]]
    came = [a for a in region if held[a] and not around.is_withheld(reader, a)]
    if gone:
        for start in range(0, len(gone), 500):
            around.conn.execute(delete(withheld).where(withheld.c.member == reader.id,
                                                       withheld.c.added_us.in_(gone[start:start + 500])))
    if came:
        around.conn.execute(insert(withheld), [{"member": reader.id, "added_us": a} for a in came])
    for a in region:
        around.set_withheld(reader, a, held[a])


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


NOBODY = false()
