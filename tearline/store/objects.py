"""Object versions as rows: handed in, written; asked for by clauses, read. No policy here: what may be
written is decided by tearline.write, what a member reads by tearline.release (the only modules that
import this one; tests/test_architecture.py holds the rest of the package to that)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import ColumnElement, Connection, and_, delete, func, insert, select, update

from . import bulk_insert, rows_for_ids
from .schema import hub_clock, objects, recipients, refs, statuses

OBJECT_COLUMNS = ("coll", "stix_id", "type", "spec_version", "version", "version_us", "added_us", "date_added_us",
                  "created_by_ref", "tlp", "author", "hop", "is_first", "is_latest", "body", "persona", "marked")
REF_COLUMNS = ("added_us", "coll", "prop", "target_id", "req")


@dataclasses.dataclass(frozen=True)
class Held:
    """One stored version of an id, as the write path needs to know it."""

    stix_id: str
    version_us: int
    added_us: int
    is_first: bool
    is_latest: bool
    hop: int
    tlp: int
    author: int | None
    persona: int


@dataclasses.dataclass
class Page:
    rows: list[Any]
    more: bool


def claim_clock(conn: Connection, count: int, now: int) -> tuple[int, int]:
    """Reserve ``count`` consecutive added_us values and one date_added for an envelope; return (the first
    added_us, the date_added). The UPDATE serialises writers, so what a write reads afterwards is what it
    lands on. date_added is the wall clock, strictly after the last one shown and never after the
    envelope's own added_us values; unlike those it does not move with how many objects came before."""
    greatest = func.greatest if conn.dialect.name == "postgresql" else func.max
    conn.execute(update(hub_clock).where(hub_clock.c.id == 1).values(
        exposed_us=greatest(hub_clock.c.exposed_us + 1, now),
        last_us=greatest(hub_clock.c.last_us + max(count, 1), greatest(hub_clock.c.exposed_us + 1, now) + max(count, 1) - 1),
    ))
    last, exposed = conn.execute(select(hub_clock.c.last_us, hub_clock.c.exposed_us).where(hub_clock.c.id == 1)).one()
    return int(last) - max(count, 1) + 1, int(exposed)


def held(conn: Connection, coll: int, ids: Sequence[str]) -> dict[str, list[Held]]:
    """Every stored version of each of ``ids`` (whoever may see it)."""
    out: dict[str, list[Held]] = {}
    for row in rows_for_ids(conn, "SELECT stix_id, version_us, added_us, is_first, is_latest, hop, tlp, author, persona "
                                  "FROM objects WHERE coll = {coll} AND stix_id IN ({ids})", coll, sorted(set(ids))):
        stix_id, version_us, added_us, is_first, is_latest, hop, tlp, author, persona = row
        out.setdefault(stix_id, []).append(Held(stix_id, int(version_us), int(added_us), bool(is_first),
                                                bool(is_latest), int(hop), int(tlp), author, int(persona)))
    return out


def authors_named(conn: Connection, coll: int, ids: Sequence[str]) -> set[str]:
    """Those of ``ids`` that some stored version names as its author (created_by_ref)."""
    return {t for (t,) in rows_for_ids(conn, "SELECT DISTINCT target_id FROM refs WHERE coll = {coll} AND "
                                             "prop = 'created_by_ref' AND target_id IN ({ids})", coll, sorted(set(ids)))}


def min_hop_of_linking(conn: Connection, coll: int, ids: Sequence[str], visible: ColumnElement[bool] | None,
                       table: Any) -> dict[str, int]:
    """Per id, the lowest hop among stored versions (inside ``visible``, a clause over ``table``, an alias
    of objects) that link to it with a reference that carries distance both ways."""
    r = refs.alias("linking")
    carry_only = ("created_by_ref", "object_marking_refs", "marking_ref")
    out: dict[str, int] = {}
    for start in range(0, len(ids), 500):
        chunk = list(ids[start:start + 500])
        stmt = (select(r.c.target_id, func.min(table.c.hop))
                .join(table, and_(table.c.added_us == r.c.added_us, table.c.coll == r.c.coll))
                .where(r.c.coll == coll, r.c.target_id.in_(chunk), r.c.prop.notin_(carry_only),
                       ~r.c.prop.like("%.marking_ref"), *(() if visible is None else (visible,)))
                .group_by(r.c.target_id))
        out.update({t: int(h) for t, h in conn.execute(stmt)})
    return out


def insert_versions(conn: Connection, rows: Sequence[Sequence[Any]], edges: Sequence[Sequence[Any]],
                    named: Sequence[tuple[int, str]]) -> None:
    """Versions (OBJECT_COLUMNS), their references (REF_COLUMNS) and RED recipients, as given."""
    if rows:
        bulk_insert(conn, "objects", OBJECT_COLUMNS, rows)
    if edges:
        bulk_insert(conn, "refs", REF_COLUMNS, edges)
    if named:
        bulk_insert(conn, "recipients", ("added_us", "member"), named)


def set_flags(conn: Connection, coll: int, changes: Iterable[tuple[str, int, bool, bool]]) -> None:
    """(stix_id, version_us, is_first, is_latest) for versions whose flags changed."""
    for stix_id, version_us, first, latest in changes:
        conn.execute(update(objects).where(objects.c.coll == coll, objects.c.stix_id == stix_id,
                                           objects.c.version_us == version_us).values(is_first=first, is_latest=latest))


def set_persona(conn: Connection, coll: int, stix_ids: Sequence[str], before: int, after: int) -> None:
    for start in range(0, len(stix_ids), 500):
        conn.execute(update(objects).where(objects.c.coll == coll, objects.c.stix_id.in_(stix_ids[start:start + 500]),
                                           objects.c.persona == before).values(persona=after))


def select_rows(conn: Connection, columns: Sequence[Any], where: Sequence[ColumnElement[bool]], order: Any,
                limit: int | None) -> list[Any]:
    stmt = select(*columns).where(and_(*where)).order_by(order)
    if limit is not None:
        stmt = stmt.limit(limit)
    return list(conn.execute(stmt))


def page(conn: Connection, columns: Sequence[Any], where: Sequence[ColumnElement[bool]], limit: int,
         by_id: bool) -> Page:
    """One page of versions inside ``where``, ordered by added_us, and whether more follow."""
    # With match[id], the (coll, stix_id) index must drive the query; ordering by a bare added_us
    # would tempt SQLite to walk the date_added index over the whole collection instead.
    order = objects.c.added_us + 0 if by_id else objects.c.added_us
    rows = select_rows(conn, (*columns, objects.c.added_us.label("added_us"),
                              objects.c.date_added_us.label("date_added_us")), where, order, limit + 1)
    return Page(rows[:limit], len(rows) > limit)


def delete_versions(conn: Connection, coll: int, added: Sequence[int]) -> None:
    for start in range(0, len(added), 500):
        chunk = list(added[start:start + 500])
        conn.execute(delete(objects).where(objects.c.coll == coll, objects.c.added_us.in_(chunk)))
        conn.execute(delete(refs).where(refs.c.added_us.in_(chunk)))
        conn.execute(delete(recipients).where(recipients.c.added_us.in_(chunk)))


def reflag(conn: Connection, coll: int, stix_id: str) -> None:
    """is_first and is_latest of an id's remaining versions, after some were deleted."""
    base = and_(objects.c.coll == coll, objects.c.stix_id == stix_id)
    left = sorted(conn.scalars(select(objects.c.version_us).where(base)))
    if left:
        conn.execute(update(objects).where(base).values(is_first=objects.c.version_us == left[0],
                                                        is_latest=objects.c.version_us == left[-1]))


def save_status(conn: Connection, status: dict[str, Any]) -> None:
    conn.execute(insert(statuses).values(**status))


def status_row(conn: Connection, api_root: str, status_id: str, member_id: int) -> Any:
    return conn.execute(select(statuses).where(statuses.c.id == status_id, statuses.c.api_root == api_root,
                                               statuses.c.member_id == member_id)).first()
