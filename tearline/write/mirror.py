"""The write path for what peer hubs release to this one (tearline.peering): the hub vouches for it as for its
own writes, marks it with the peer it came from, never lets a peer add versions to what it holds from
elsewhere, and removes it when the peer no longer releases it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, select, update

from .. import stix
from ..keys import HubKeys
from ..model import Collection
from ..store import Store, now_us
from ..store import objects as rows
from ..store.schema import hub_clock
from ..store.schema import objects as objects_table
from . import _Candidate, _failure, _remove, _store


def write(store: Store, conn: Connection, collection: Collection, objs: Sequence[Any], keys: HubKeys | None,
           origin: int) -> tuple[list[str], list[dict[str, Any]]]:
    """Write, inside ``conn``'s transaction, what a peer hub released to this one (tearline.peering), marked with
    the peer as its ``origin``: the hub vouches for it as it does for its own writes (valid STIX, closed; the
    peer's compact judged its scope). Versions already held are skipped, so a pull repeated after an
    interruption writes nothing twice. Returns the ids of the versions written and the failures (invalid STIX,
    or a reference to what has not arrived yet)."""
    failures: list[dict[str, Any]] = []
    valid: list[_Candidate] = []
    for index, obj in enumerate(objs):
        problems, refs = stix.inspect(obj) if isinstance(obj, dict) else (["not a JSON object"], [])
        if problems:
            failures.append(_failure(index, obj, "; ".join(problems)))
        else:
            valid.append(_Candidate(index, obj, refs))
    # claimed first, so that the clock is this transaction's until it commits: what it finds held stays so, and
    # the versions (and identities' stand-ins) written after it are this write's and nobody else's
    rows.claim_clock(conn, 1, now_us())
    before = conn.scalar(select(hub_clock.c.last_us).where(hub_clock.c.id == 1)) or 0
    held = rows.held(conn, collection.num, [c.id for c in valid])
    have = {(h.stix_id, h.version_us) for versions in held.values() for h in versions if h.chain == 0}
    # an object this hub holds from elsewhere (its own members', its own, another peer's) is not the peer's to
    # add versions to: a peer could otherwise put words in a local member's mouth
    others = set(conn.scalars(select(objects_table.c.stix_id).where(
        objects_table.c.coll == collection.num, objects_table.c.stix_id.in_(sorted(held)),
        objects_table.c.chain == 0, objects_table.c.origin != origin))) if held else set()
    fresh, seen = [], set()
    for c in valid:
        version = stix.version_of(c.obj)
        # an object without a version (an observable) is held once, whenever it came
        key = (c.id, stix.to_us(stix.parse_timestamp(version)) if version else 0)
        if key in have or key in seen or (version is None and c.id in held):
            continue
        if c.id in others:
            failures.append(_failure(c.index, c.obj, f"{c.id} is held on this hub from elsewhere: a peer does not "
                                                     "add versions to it"))
            continue
        seen.add(key)
        fresh.append(c)
    if not fresh:
        return [], failures
    successes, _ = _store(store, conn, collection, fresh, keys, None, None, failures, judged=False)
    conn.execute(update(objects_table).where(objects_table.c.coll == collection.num, objects_table.c.added_us > before)
                 .values(origin=origin))
    failed = {f["id"] for f in failures}
    return [s["id"] for s in successes if s["id"] not in failed], failures


def remove(store: Store, conn: Connection, collection: Collection, keys: HubKeys, origin: int,
             released: set[tuple[str, int]] | None) -> list[str]:
    """Delete, inside ``conn``'s transaction, the versions mirrored from peer ``origin`` that it no longer releases
    to this hub: those not in ``released`` ((id, version_us) of its manifest now), or all of them when None
    (this hub's membership there ended). Returns the ids of the versions deleted."""
    rows.claim_clock(conn, 1, now_us())  # serialises with every other write
    mirrored = conn.execute(select(objects_table.c.stix_id, objects_table.c.version_us).where(
        objects_table.c.coll == collection.num, objects_table.c.origin == origin, objects_table.c.persona != 2)).all()
    stale = {(i, int(v)) for i, v in mirrored if released is None or (i, int(v)) not in released}
    if not stale:
        return []
    held = rows.held(conn, collection.num, sorted({i for i, _ in stale}))
    # a mirrored version is on the object's own chain, one per (id, version): none of this hub's goes with it
    doomed = {i: [v for v in vs if v.chain == 0 and (i, v.version_us) in stale] for i, vs in held.items()}
    doomed = {i: vs for i, vs in doomed.items() if vs}
    _remove(store, conn, collection, keys, doomed)
    return [i for i, vs in doomed.items() for _ in vs]
