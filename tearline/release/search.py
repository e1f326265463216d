"""Full-text search over what a member may read. The index (FTS5 on SQLite, a GIN index over the body's words
on PostgreSQL: migration 0015) only proposes candidates, and only among the versions the gate gives the member;
each is kept only if the member's own copy holds every word. Text a copy leaves out (below its tear line,
redacted, an author named only by pseudonym) therefore finds nothing: a search cannot confirm a guess at it.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import orjson
from sqlalchemy import ColumnElement, select, text

from ..errors import BadRequest
from ..keys import HubKeys
from ..model import Collection, Member
from ..store import Store
from ..store.schema import objects
from . import _PAGE_COLUMNS, _TLP_IDS, Copier, gate_for

_WORDS = re.compile(r"\w{2,}")
_CANDIDATES = 500  # index hits read per search; a word in many objects shows the newest


def words(query: str) -> list[str]:
    found = list(dict.fromkeys(w.casefold() for w in _WORDS.findall(query)))[:8]
    if not found:
        raise BadRequest("search for at least one word of two letters or more", details={"q": query[:100]})
    return found


# the expression migration 0015 indexes on PostgreSQL (the same, so the index serves the query)
_PG_WORDS = "to_tsvector('simple', body)"


def _matching(dialect: str, wanted: list[str]) -> ColumnElement[bool]:
    if dialect == "postgresql":
        return text(f"{_PG_WORDS} @@ plainto_tsquery('simple', :wanted)").bindparams(wanted=" ".join(wanted))
    phrase = " AND ".join(f'"{w}"' for w in wanted)  # \w only: nothing to escape
    return objects.c.pk.in_(select(text("rowid")).select_from(text("objects_fts")).where(
        text("objects_fts MATCH :phrase").bindparams(phrase=phrase)))


def _texts(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [t for v in value.values() for t in _texts(v)]
    if isinstance(value, list):
        return [t for v in value for t in _texts(v)]
    return []


def _holds(copy: dict[str, Any], wanted: list[str]) -> bool:
    said = {w.casefold() for t in _texts(copy) for w in _WORDS.findall(t)}
    return all(w in said for w in wanted)


def search(store: Store, member: Member, collection: Collection, keys: HubKeys, today: dt.date, query: str,
           limit: int = 50) -> list[dict[str, Any]]:
    """The member's copies (newest version it receives, most recently added first) that hold every word of
    ``query``, at most ``limit``."""
    wanted = words(query)
    gate = gate_for(member, collection, today)
    stmt = (select(*_PAGE_COLUMNS, objects.c.added_us, objects.c.date_added_us)
            .where(*gate.where, gate.edge(newest=True), objects.c.stix_id.notin_(_TLP_IDS),
                   _matching(store.engine.dialect.name, wanted))
            .order_by(objects.c.added_us.desc()).limit(_CANDIDATES))
    found = []
    with store.engine.connect() as conn:
        rows = conn.execute(stmt).all()
        copier = Copier(conn, gate, member, collection, keys, rows)
        for row in rows:
            copy = orjson.loads(copier.copy(row))
            if _holds(copy, wanted):
                found.append(copy)
                if len(found) == limit:
                    break
    return found
