"""Object versions as rows: handed in, written; asked for by clauses, read. No policy here: what may be
written is decided by tearline.write, what a member reads by tearline.release (the only modules that
import this one; tests/test_architecture.py holds the rest of the package to that)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import ColumnElement, Connection, LargeBinary, and_, cast, delete, func, insert, select, update

from . import bulk_insert, rows_for_ids
from .schema import hub_clock, objects, recipients, refs, statuses, usage

OBJECT_COLUMNS = ("coll", "stix_id", "type", "spec_version", "version", "version_us", "added_us", "date_added_us",
                  "created_by_ref", "tlp", "author", "hop", "is_first", "is_latest", "body", "persona", "marked",
                  "chain")
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
    chain: int


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
        last_us=greatest(hub_clock.c.last_us + max(count, 1),
                         greatest(hub_clock.c.exposed_us + 1, now) + max(count, 1) - 1),
    ))
    last, exposed = conn.execute(select(hub_clock.c.last_us, hub_clock.c.exposed_us).where(hub_clock.c.id == 1)).one()
    return int(last) - max(count, 1) + 1, int(exposed)


def held(conn: Connection, coll: int, ids: Sequence[str]) -> dict[str, list[Held]]:
    """Every stored version of each of ``ids`` (whoever may see it)."""
    out: dict[str, list[Held]] = {}
    for row in rows_for_ids(conn, "SELECT stix_id, version_us, added_us, is_first, is_latest, hop, tlp, author, "
                                  "persona, chain FROM objects WHERE coll = {coll} AND stix_id IN ({ids})",
                            coll, sorted(set(ids))):
        stix_id, version_us, added_us, is_first, is_latest, hop, tlp, author, persona, chain = row
        out.setdefault(stix_id, []).append(Held(stix_id, int(version_us), int(added_us), bool(is_first),
                                                bool(is_latest), int(hop), int(tlp), author, int(persona), int(chain)))
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


def set_flags(conn: Connection, coll: int, changes: Iterable[tuple[str, int, int, bool, bool]]) -> None:
    """(stix_id, chain, version_us, is_first, is_latest) for versions whose flags changed."""
    for stix_id, chain, version_us, first, latest in changes:
        conn.execute(update(objects).where(objects.c.coll == coll, objects.c.stix_id == stix_id,
                                           objects.c.chain == chain, objects.c.version_us == version_us)
                     .values(is_first=first, is_latest=latest))


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
    """Delete the versions, their references and recipients, and take their size off their authors' usage."""
    freed: dict[int, int] = {}
    # bytes, as the write path charged them: the body's UTF-8, and each reference's path and target (ASCII)
    body_bytes = (func.octet_length(objects.c.body) if conn.dialect.name == "postgresql"
                  else func.length(cast(objects.c.body, LargeBinary)))
    ref_bytes = (select(func.coalesce(func.sum(func.length(refs.c.prop) + func.length(refs.c.target_id)), 0))
                 .where(refs.c.added_us == objects.c.added_us).scalar_subquery())
    for start in range(0, len(added), 500):
        chunk = list(added[start:start + 500])
        for author, size in conn.execute(select(objects.c.author, func.sum(body_bytes + ref_bytes)).where(
                objects.c.coll == coll, objects.c.added_us.in_(chunk), objects.c.author.is_not(None))
                .group_by(objects.c.author)):
            freed[author] = freed.get(author, 0) + int(size)
    for author, size in freed.items():
        conn.execute(update(usage).where(usage.c.member == author).values(stored=usage.c.stored - size))
    for start in range(0, len(added), 500):
        chunk = list(added[start:start + 500])
        conn.execute(delete(objects).where(objects.c.coll == coll, objects.c.added_us.in_(chunk)))
        conn.execute(delete(refs).where(refs.c.added_us.in_(chunk)))
        conn.execute(delete(recipients).where(recipients.c.added_us.in_(chunk)))


def reflag(conn: Connection, coll: int, stix_id: str) -> None:
    """After versions of an id were deleted: when its own chain is gone, the oldest chain a member wrote of it
    while it was hidden from that member takes its place (its writer shared it with the compact); then
    is_first and is_latest of each chain's remaining versions."""
    base = and_(objects.c.coll == coll, objects.c.stix_id == stix_id)
    left = list(conn.execute(select(objects.c.chain, objects.c.version_us, objects.c.added_us).where(base)))
    if left and not any(r.chain == 0 for r in left):
        heir = min(left, key=lambda r: r.added_us).chain
        conn.execute(update(objects).where(base, objects.c.chain == heir).values(chain=0))
        left = [(0 if r.chain == heir else r.chain, r.version_us, r.added_us) for r in left]
    for chain in {r[0] for r in left}:
        versions = sorted(r[1] for r in left if r[0] == chain)
        conn.execute(update(objects).where(base, objects.c.chain == chain).values(
            is_first=objects.c.version_us == versions[0], is_latest=objects.c.version_us == versions[-1]))


def stored(conn: Connection, member: int) -> int:
    """Characters of object versions ``member`` has stored (its usage against its quota)."""
    return int(conn.execute(select(usage.c.stored).where(usage.c.member == member)).scalar() or 0)


def add_usage(conn: Connection, member: int, size: int) -> None:
    if conn.execute(update(usage).where(usage.c.member == member).values(stored=usage.c.stored + size)).rowcount == 0:
        conn.execute(insert(usage).values(member=member, stored=size))


def prune_statuses(conn: Connection, before_us: int) -> int:
    """Delete the status resources of requests older than ``before_us`` and take their size off their
    members' usage (as add_envelope charged it: the successes' and failures' text); return how many went."""
    old = statuses.c.request_us < before_us
    for member, size in conn.execute(select(statuses.c.member_id, func.sum(
            func.length(statuses.c.successes) + func.length(statuses.c.failures))).where(old)
            .group_by(statuses.c.member_id)):
        conn.execute(update(usage).where(usage.c.member == member).values(stored=usage.c.stored - int(size)))
    return int(conn.execute(delete(statuses).where(old)).rowcount or 0)


def save_status(conn: Connection, status: dict[str, Any]) -> None:
    conn.execute(insert(statuses).values(**status))


def status_row(conn: Connection, api_root: str, status_id: str, member_id: int) -> Any:
    return conn.execute(select(statuses).where(statuses.c.id == status_id, statuses.c.api_root == api_root,
                                               statuses.c.member_id == member_id)).first()
