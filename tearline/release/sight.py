"""For the guard alone (tearline.probes): how an id a member named stands to that member, judged over the whole
hub and never per collection. Nothing here reaches a member's answer: a member is answered by the gate, which
says the same of a hidden object and of one that does not exist.

A member knows an id honestly when its compact gives it a version of the object in any collection it may read
(following a reference from intel to warnings, or asking the wrong collection, is no probe), when it or a
member of its own organisation in that compact wrote a version of it, or when it names a warning one of them
drafted (the warnings API shows its author the warning's report and place). An id the hub holds only where all
of them receive nothing (a stricter TLP, another member's chain, a warning to someone else, another compact)
is one it can know only from elsewhere.
"""

from __future__ import annotations

from typing import Literal

from sqlalchemy import ColumnElement, Connection, and_, exists, literal, or_, select

from ..store import Store
from ..store.schema import collections, objects, warnings
from ..visibility import Reader, hidden_sql, receives_sql

Standing = Literal["seen", "hidden", "absent"]


def standing(store: Store, conn: Connection, api_root: str | None, member_name: str,
             object_id: str, before_us: int | None = None) -> Standing | None:
    """"seen" when ``object_id`` is known to the member through its compact (see above), "hidden" when the hub
    holds a version of it anywhere and none of that is theirs, "absent" when the hub holds none; None when the
    member is not (or no longer) in ``api_root``, so nothing can be said of what it knows. ``before_us``: only
    versions added before it count (a write is judged as things stood before it, not by what it wrote)."""
    if api_root is None:
        return None
    members = store.members_of(conn, api_root)
    me = next((m for m in members if m.name == member_name), None)
    if me is None:
        return None
    org = str(me.profile.get("organisation") or "")
    # the compact file says these members are one organisation: what one of them knows, all of them may
    ours = [m for m in members if m.id == me.id or (org and m.profile.get("organisation") == org)]
    known: list[ColumnElement[bool]] = [exists(select(warnings.c.id).where(
        warnings.c.api_root == api_root, warnings.c.author_member.in_([m.name for m in ours]),
        warnings.c.report.contains(object_id, autoescape=True)))]
    before = objects.c.added_us < before_us if before_us is not None else literal(True)
    held_anywhere = conn.scalar(select(exists(select(objects.c.pk).where(
        objects.c.coll.in_(select(collections.c.num)), objects.c.stix_id == object_id, before))))
    if held_anywhere:
        for coll in store.collections(api_root, conn):
            held = select(objects.c.pk).where(objects.c.coll == coll.num, objects.c.stix_id == object_id, before)
            for m in ours:
                known.append(exists(held.where(objects.c.author == m.id)))
                if m.can_read:
                    # received, or in sight (an identity that a member hiding authors knows by its stand-in)
                    reader = Reader.of(m)
                    known += [exists(held.where(receives_sql(reader, objects, coll.addressed_only))),
                              and_(exists(held.where(objects.c.chain == 0)),
                                   ~hidden_sql(reader, coll.num, literal(object_id), coll.addressed_only))]
    if conn.scalar(select(or_(*known))):
        return "seen"
    return "hidden" if held_anywhere else "absent"
