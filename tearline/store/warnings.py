"""Warnings, their history and the outside parties they go to, as rows. The lifecycle's rules live in
tearline.warn; what a member is shown of a warning, in tearline.release."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

import orjson
from sqlalchemy import ColumnElement, Connection, insert, select, update

from . import now_us
from .schema import warn_parties, warning_events, warnings

FINAL = ("acknowledged", "waived", "expired")


def add(conn: Connection, **values: Any) -> None:
    conn.execute(insert(warnings).values(**values))


def add_event(conn: Connection, wid: str, by: str, action: str, before: str | None, after: str, note: str) -> None:
    conn.execute(insert(warning_events).values(warning_id=wid, at_us=now_us(), by=by, action=action,
                                               from_state=before, to_state=after, note=note))


def load(conn: Connection, wid: str) -> dict[str, Any] | None:
    """A warning's whole record (None when there is none)."""
    row = conn.execute(select(warnings).where(warnings.c.id == wid)).first()
    if row is None:
        return None
    events = [{"at": dt.datetime.fromtimestamp(e.at_us / 1e6, dt.UTC).isoformat(), "by": e.by,
               "action": e.action, "from": e.from_state, "to": e.to_state, "note": e.note}
              for e in conn.execute(select(warning_events).where(warning_events.c.warning_id == wid)
                                    .order_by(warning_events.c.id))]
    return {"id": row.id, "compact": row.api_root, "author": row.author, "author_member": row.author_member,
            "addressee": row.addressee, "outside": row.outside, "state": row.state, "window_end": row.window_end,
            "report": orjson.loads(row.report), "history": events, "source": row.source,
            "document": orjson.loads(row.document) if row.document else None}


def ids(conn: Connection, where: Sequence[ColumnElement[bool]] = ()) -> list[str]:
    """Warning ids inside ``where``, oldest first."""
    return list(conn.scalars(select(warnings.c.id).where(*where).order_by(warnings.c.created_us)))


def ids_by(conn: Connection, compact: str | None = None, state: str | None = None) -> list[str]:
    """Warning ids of a compact and in a state (either or both), oldest first."""
    return ids(conn, [*((warnings.c.api_root == compact,) if compact else ()),
                      *((warnings.c.state == state,) if state else ())])


def due_to_expire(conn: Connection, today: dt.date) -> list[tuple[str, str]]:
    return [(wid, state) for wid, state in conn.execute(select(warnings.c.id, warnings.c.state).where(
        warnings.c.state.notin_(FINAL), warnings.c.window_end < today.isoformat()))]


def set_state(conn: Connection, wid: str, before: str, after: str, document: dict[str, Any] | None = None) -> bool:
    """Move a warning from ``before`` to ``after``; False when it was no longer in ``before``."""
    values: dict[str, Any] = {"state": after}
    if document is not None:
        values["document"] = orjson.dumps(document).decode()
    return bool(conn.execute(update(warnings).where(warnings.c.id == wid, warnings.c.state == before)
                             .values(**values)).rowcount)


def party(conn: Connection, name: str) -> Any:
    return conn.execute(select(warn_parties).where(warn_parties.c.name == name)).first()


def save_party(conn: Connection, name: str, **values: Any) -> None:
    if party(conn, name) is None:
        conn.execute(insert(warn_parties).values(name=name, added_us=now_us(), **values))
    else:
        conn.execute(update(warn_parties).where(warn_parties.c.name == name).values(**values))


def parties(conn: Connection) -> list[Any]:
    return list(conn.execute(select(warn_parties).order_by(warn_parties.c.name)))
