"""The STIX 2.1 object store behind the hub (SQLAlchemy 2 Core on SQLite or PostgreSQL).

``add_objects`` writes one envelope in one transaction — the objects, their references and the
status resource together — so a crash leaves either all of an envelope's successes or none of them.
Reads return pages of raw JSON bodies ordered by date_added; callers pass the outbound gate's
clauses (``tearline.release.visible``) and never see rows outside them.
"""

from __future__ import annotations

import dataclasses
import hashlib
import secrets
import time
import uuid
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import orjson
from sqlalchemy import (
    ColumnElement,
    Connection,
    Engine,
    and_,
    create_engine,
    delete,
    event,
    func,
    insert,
    or_,
    select,
    text,
    update,
)

from .. import markings, stix
from ..errors import ConfigError, NotFound
from ..release import ENDPOINTS, Collection, Gate, Member
from ..taxii.query import TaxiiQuery
from .schema import api_roots, collections, hub_clock, members, objects, recipients, refs, statuses

Edges = list[tuple[str, str, Any]]
class Held(NamedTuple):
    """One stored version of an id an envelope names."""
    version_us: int
    is_first: bool
    is_latest: bool
    hop: int
    tlp: int


@dataclasses.dataclass
class Around:
    """What the collection holds around an envelope, read once inside the envelope's transaction and
    shared by the scope's distances, the write's versioning and the upkeep of ends_rank.

    ``held``: per id the envelope names (its objects and every id they refer to), its stored versions.
    ``linked``: per envelope id that stored objects
    link to, the lowest hop among them (a relationship that arrived before its indicator).
    ``ended``: the envelope ids that stored versions have at an end (a relationship's source or
    target, a sighting's sighting_of_ref), whose ends_rank a new version may change."""
    held: dict[str, list[Held]]
    linked: dict[str, int]
    ended: set[str]


@dataclasses.dataclass
class Admitted:
    """A valid object on its way into the store, with what the policy decided about it."""
    obj: dict[str, Any]
    edges: Edges
    tlp: int = 0
    hop: int = 0
    recipients: tuple[str, ...] = ()

_CHUNK = 500
_OBJECT_COLUMNS = ("coll", "stix_id", "type", "spec_version", "version", "version_us", "added_us",
                   "created_by_ref", "tlp", "author", "hop", "is_first", "is_latest", "body", "ends_rank")
_ENDPOINT_PROPS = ", ".join(f"'{p}'" for p in ENDPOINTS)
# objects.ends_rank recomputed from what the collection holds, in SQL (migration 0008 and _refresh_ends)
ENDS_RANK = (
    "COALESCE((SELECT MAX(COALESCE((SELECT MIN(t.tlp) FROM objects t WHERE t.coll = objects.coll "
    "AND t.stix_id = r.target_id), -1)) FROM refs r WHERE r.added_us = objects.added_us "
    f"AND r.prop IN ({_ENDPOINT_PROPS})), -1)"
)
_REF_COLUMNS = ("added_us", "coll", "prop", "target_id")


def rows_for_ids(conn: Connection, sql: str, coll: int, ids: Sequence[str]) -> Iterator[Any]:
    """Run ``sql`` for a collection and a long list of ids, in chunks, straight at the driver.

    ``sql`` holds ``{coll}`` and ``{ids}`` where the placeholders go. On bulk envelopes SQLAlchemy's
    expansion of IN lists cost more than the index lookups themselves."""
    mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    for start in range(0, len(ids), _CHUNK):
        chunk = ids[start : start + _CHUNK]
        yield from conn.exec_driver_sql(sql.format(coll=mark, ids=", ".join(mark for _ in chunk)), (coll, *chunk))


# references that only carry a distance (tearline.scope) and so do not link a stored object to a new one;
# '%%' is one '%' to psycopg and the same pattern as '%' to SQLite's LIKE
_LINKING = (" AND ".join(f"r.prop <> '{p}'" for p in ("created_by_ref", "object_marking_refs", "marking_ref"))
            + " AND r.prop NOT LIKE '%%.marking_ref'")


def around(conn: Connection, coll: int, envelope: Sequence[tuple[dict[str, Any], Edges]]) -> Around:
    """Read what the collection holds around an envelope (see ``Around``)."""
    ids = {obj["id"] for obj, _ in envelope}
    named = ids | {t for _, edges in envelope for _, _, t in edges if isinstance(t, str)}
    held: dict[str, list[Held]] = {}
    for stix_id, version_us, is_first, is_latest, hop, tlp in rows_for_ids(
        conn, "SELECT stix_id, version_us, is_first, is_latest, hop, tlp FROM objects "
              "WHERE coll = {coll} AND stix_id IN ({ids})", coll, sorted(named),
    ):
        held.setdefault(stix_id, []).append(Held(int(version_us), bool(is_first), bool(is_latest), int(hop), int(tlp)))
    linked: dict[str, int] = {}
    ended: set[str] = set()
    for target, hop, at_end in rows_for_ids(
        conn,
        f"SELECT r.target_id, MIN(o.hop), MAX(CASE WHEN r.prop IN ({_ENDPOINT_PROPS}) THEN 1 ELSE 0 END) "
        "FROM refs r JOIN objects o ON o.coll = r.coll AND o.added_us = r.added_us "
        f"WHERE r.coll = {{coll}} AND r.target_id IN ({{ids}}) AND {_LINKING} GROUP BY r.target_id",
        coll, sorted(ids),
    ):
        linked[target] = int(hop)
        if at_end:
            ended.add(target)
    return Around(held, linked, ended)


def _bulk_insert(conn: Connection, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """Insert many rows through the driver's executemany, inside ``conn``'s transaction. On bulk
    envelopes SQLAlchemy's per-row parameter handling cost more than the inserts themselves."""
    mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    cursor = conn.connection.cursor()
    try:
        cursor.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join(mark for _ in columns)})", rows)
    finally:
        cursor.close()


def token_hash(token: str) -> str:
    # Tokens are 256-bit random strings, so a plain SHA-256 is enough: there is nothing to brute-force.
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    return secrets.token_urlsafe(32)


def now_us() -> int:
    return time.time_ns() // 1000


@dataclasses.dataclass
class Page:
    rows: list[Any]
    more: bool

    @property
    def first_added(self) -> int | None:
        return self.rows[0].added_us if self.rows else None

    @property
    def last_added(self) -> int | None:
        return self.rows[-1].added_us if self.rows else None


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    # WAL: readers never block the writer. synchronous=NORMAL in WAL keeps every committed
    # transaction across a process crash (kill -9); only a power loss may drop the last ones.
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA wal_autocheckpoint=100000")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.execute("PRAGMA cache_size=-16384")  # per connection; the pool holds several
    cur.close()


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            parent = Path(path).expanduser().resolve().parent
            if not parent.is_dir():
                raise ConfigError(f"--db: directory {parent} does not exist", details={"setting": "db"})
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    if url.startswith("postgresql"):
        return create_engine(url, pool_size=10, max_overflow=10, pool_pre_ping=True)
    raise ConfigError(f"--db: {url!r} is not a sqlite:/// or postgresql:// URL", details={"setting": "db"})


class Store:
    def __init__(self, url: str):
        self.url = url
        self.engine = make_engine(url)

    def close(self) -> None:
        self.engine.dispose()

    # -- schema -------------------------------------------------------------------------------

    def migrate(self) -> None:
        """Bring the schema to the newest Alembic revision."""
        from alembic import command
        from alembic.config import Config

        cfg = Config()
        cfg.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
        with self.engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")

    # -- API roots, collections, members ------------------------------------------------------

    def ensure_api_root(self, conn: Connection, name: str, title: str, description: str = "", policy: str = "{}") -> None:
        exists = conn.execute(select(api_roots.c.name).where(api_roots.c.name == name)).first()
        values = {"title": title, "description": description, "policy": policy}
        if exists:
            conn.execute(update(api_roots).where(api_roots.c.name == name).values(**values))
        else:
            conn.execute(insert(api_roots).values(name=name, created_us=now_us(), **values))

    def ensure_collection(
        self, conn: Connection, api_root: str, alias: str, title: str, description: str = "", member_writable: bool = True
    ) -> int:
        """Create or update a collection; return its store key."""
        row = conn.execute(
            select(collections.c.num).where(collections.c.api_root == api_root, collections.c.alias == alias)
        ).first()
        if row:
            conn.execute(
                update(collections).where(collections.c.num == row.num).values(
                    title=title, description=description, member_writable=member_writable
                )
            )
            return int(row.num)
        num = conn.execute(
            insert(collections).values(
                id=str(uuid.uuid4()), api_root=api_root, alias=alias, title=title, description=description,
                member_writable=member_writable,
            )
        ).inserted_primary_key[0]
        # Clients resolving object_marking_refs find the TLP 2.0 definitions in every collection.
        self.write_objects(conn, num, markings.definitions())
        return int(num)

    def write_objects(self, conn: Connection, coll: int, objs: list[dict[str, Any]], policy: Any = None) -> None:
        """Write objects the hub itself vouches for (TLP definitions, compact actors, public events):
        they must be valid STIX, and are not judged for scope."""
        from .. import scope

        policy = policy or scope.Policy()
        checked = [(obj, *stix.inspect(obj)) for obj in objs]
        bad = [f"{obj.get('id')}: {'; '.join(problems)}" for obj, problems, _ in checked if problems]
        if bad:
            raise ValueError(f"the hub built invalid STIX: {bad}")
        envelope = [(obj, edges) for obj, _, edges in checked]
        base = self._claim_clock(conn, len(envelope))
        near = around(conn, coll, envelope)
        hops = scope.distances(policy, envelope, near)
        self._write(conn, coll, [
            Admitted(obj, edges, scope.tlp_rank(obj, policy), min(hops[obj["id"]], scope.UNREACHED),
                     tuple(obj.get("x_tearline_recipients") or ()))
            for obj, edges in envelope], author=None, base=base, near=near)

    def add_member(
        self, conn: Connection, api_root: str, name: str, *, can_read: bool = True, can_write: bool = False,
        tlp_max: str = "clear", profile: dict[str, Any] | None = None,
    ) -> str:
        """Create a member and return its token — the only time the token exists in clear."""
        token = new_token()
        conn.execute(
            insert(members).values(
                api_root=api_root, name=name, token_hash=token_hash(token), can_read=can_read, can_write=can_write,
                tlp_max=tlp_max, profile=orjson.dumps(profile or {}).decode(),
            )
        )
        return token

    def update_member(self, conn: Connection, api_root: str, name: str, **values: Any) -> None:
        if "profile" in values:
            values["profile"] = orjson.dumps(values["profile"]).decode()
        conn.execute(update(members).where(members.c.api_root == api_root, members.c.name == name).values(**values))

    def rotate_token(self, api_root: str, name: str) -> str:
        token = new_token()
        with self.engine.begin() as conn:
            done = conn.execute(
                update(members).where(members.c.api_root == api_root, members.c.name == name).values(token_hash=token_hash(token))
            )
            if done.rowcount != 1:
                raise NotFound(f"no member {name!r} in compact {api_root!r}", details={"member": name})
        return token

    def remove_member(self, api_root: str, name: str) -> None:
        with self.engine.begin() as conn:
            if not self.drop_member(conn, api_root, name):
                raise NotFound(f"no member {name!r} in compact {api_root!r}", details={"member": name})

    def drop_member(self, conn: Connection, api_root: str, name: str) -> bool:
        done = conn.execute(delete(members).where(members.c.api_root == api_root, members.c.name == name))
        return done.rowcount == 1

    def member_names(self, conn: Connection, api_root: str) -> list[str]:
        return list(conn.scalars(select(members.c.name).where(members.c.api_root == api_root).order_by(members.c.name)))

    def authenticate(self, token: str, name: str | None = None) -> Member | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(members).where(members.c.token_hash == token_hash(token))).first()
        if row is None or (name is not None and not secrets.compare_digest(row.name.encode(), name.encode())):
            return None
        return Member(
            id=row.id, api_root=row.api_root, name=row.name, can_read=row.can_read, can_write=row.can_write,
            tlp_max=row.tlp_max, profile=orjson.loads(row.profile),
        )

    def api_root(self, name: str) -> Any:
        with self.engine.connect() as conn:
            return conn.execute(select(api_roots).where(api_roots.c.name == name)).first()

    def collections(self, api_root: str) -> list[Collection]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(collections).where(collections.c.api_root == api_root).order_by(collections.c.alias))
            return [Collection(r.id, r.api_root, r.alias, r.title, r.description, r.member_writable, r.num) for r in rows]

    def collection(self, api_root: str, key: str) -> Collection | None:
        """A collection of an API root by id or by alias."""
        with self.engine.connect() as conn:
            r = conn.execute(
                select(collections, api_roots.c.policy)
                .join(api_roots, api_roots.c.name == collections.c.api_root)
                .where(collections.c.api_root == api_root, or_(collections.c.id == key, collections.c.alias == key))
            ).first()
        return Collection(r.id, r.api_root, r.alias, r.title, r.description, r.member_writable, r.num, r.policy) if r else None

    # -- writing ------------------------------------------------------------------------------

    def add_objects(self, collection: Collection, member: Member, envelope_objects: Sequence[Any],
                    policy: Any = None) -> dict[str, Any]:
        """Validate an envelope's objects, judge them against the compact's policy as a whole, and
        store the admitted ones with the status in one transaction."""
        from .. import scope

        policy = policy or scope.Policy(actor_names=())
        request_us = now_us()
        failures: list[dict[str, Any]] = []
        valid: list[tuple[dict[str, Any], Edges]] = []

        def fail(index: int, obj: Any, message: str) -> None:
            ident = obj.get("id") if isinstance(obj, dict) and isinstance(obj.get("id"), str) else f"objects[{index}]"
            entry: dict[str, Any] = {"id": ident, "message": message}
            version = stix.version_of(obj) if isinstance(obj, dict) else None
            if version:
                entry["version"] = version
            failures.append(entry)

        names: set[str] | None = None
        for index, obj in enumerate(envelope_objects):
            problems, edges = stix.inspect(obj)
            wanted = obj.get("x_tearline_recipients") if isinstance(obj, dict) else None
            if wanted is not None:
                if not isinstance(wanted, list) or not all(isinstance(n, str) for n in wanted):
                    problems.append("x_tearline_recipients: must be a list of member names")
                elif policy.members_visible:
                    # Only where the compact lets members know each other may the hub say who is not one;
                    # otherwise an unknown name is kept and matches nobody, so probing names learns nothing.
                    if names is None:
                        with self.engine.connect() as conn:
                            names = set(self.member_names(conn, collection.api_root))
                    unknown = sorted(set(wanted) - names)
                    if unknown:
                        problems.append(f"x_tearline_recipients: not members of this compact: {', '.join(unknown)}")
            if problems:
                fail(index, obj, "; ".join(problems))
            else:
                valid.append((obj, edges))
        status_id = str(uuid.uuid4())
        with self.engine.begin() as conn:
            # The clock first: its UPDATE serialises writers, so what is read below is what the
            # write will land on (no other envelope can slip in between on either database).
            base = self._claim_clock(conn, len(valid)) if valid else 0
            near = around(conn, collection.num, valid) if valid else Around({}, {}, set())
            hops = scope.distances(policy, valid, near) if valid else {}
            admitted: list[Admitted] = []
            for obj, edges in valid:
                reason = scope.refusal(obj, hops[obj["id"]], policy) if policy.actor_names else None
                if reason:
                    fail(-1, obj, reason)
                    continue
                admitted.append(Admitted(obj, edges, scope.tlp_rank(obj, policy), min(hops[obj["id"]], scope.UNREACHED),
                                         tuple(obj.get("x_tearline_recipients") or ())))
            successes = self._write(conn, collection.num, admitted, author=member.id, base=base, near=near)
            status = {
                "id": status_id, "api_root": collection.api_root, "collection_id": collection.id, "member_id": member.id,
                "request_us": request_us, "total_count": len(envelope_objects), "success_count": len(successes),
                "failure_count": len(failures), "pending_count": 0,
                "successes": orjson.dumps(successes).decode(), "failures": orjson.dumps(failures).decode(), "pendings": "[]",
            }
            conn.execute(insert(statuses).values(**status))
        # the lists as built, not read back from the JSON just written
        return status_resource(status | {"successes": successes, "failures": failures, "pendings": []})

    def _claim_clock(self, conn: Connection, count: int) -> int:
        """Reserve ``count`` consecutive date_added microseconds (some may go unused: a gap in
        date_added is harmless); the UPDATE serialises writers."""
        now = now_us()
        conn.execute(
            update(hub_clock).where(hub_clock.c.id == 1).values(
                last_us=func.greatest(hub_clock.c.last_us + count, now + count - 1)
                if conn.dialect.name == "postgresql"
                else func.max(hub_clock.c.last_us + count, now + count - 1)
            )
        )
        last = conn.execute(select(hub_clock.c.last_us).where(hub_clock.c.id == 1)).scalar_one()
        return int(last) - count + 1

    def _write(self, conn: Connection, coll: int, valid: list[Admitted], author: int | None,
               base: int, near: Around) -> list[dict[str, Any]]:
        """Insert admitted objects (with their references) as new versions; return the success records.
        ``base`` is the first of the date_added values claimed for them; ``near`` what ``around``
        read in the same transaction."""
        if not valid:
            return []
        # This loop runs once per object written; it is kept free of per-object helper calls.
        entries: dict[tuple[str, int], tuple[Admitted, str | None]] = {}
        successes: list[dict[str, Any]] = []
        to_us, parse = stix.to_us, stix.parse_timestamp
        for item in valid:
            obj = item.obj
            stix_id = obj["id"]
            version = stix.version_of(obj)
            if version:
                successes.append({"id": stix_id, "version": version})
                entries[(stix_id, to_us(parse(version)))] = (item, version)
            else:
                successes.append({"id": stix_id})
                entries[(stix_id, -1)] = (item, None)  # the same version twice in one envelope is stored once
        held = near.held
        existing = {stix_id: held[stix_id] for stix_id, _ in entries if stix_id in held}
        new_rows: list[list[Any]] = []
        new_refs: list[tuple[Any, ...]] = []
        new_recipients: list[tuple[int, str]] = []
        new_ends: list[tuple[str, ...]] = []  # per new row, the ids at its ends
        span: dict[str, tuple[int, int]] = {}  # stix id → (first, last) version over old and new
        for stix_id, versions in existing.items():
            span[stix_id] = (min(v.version_us for v in versions), max(v.version_us for v in versions))
        dumps, spec_default, no_ends = orjson.dumps, stix.SPEC_VERSION, ()
        for offset, ((stix_id, version_us), (item, version)) in enumerate(entries.items()):
            obj, edges = item.obj, item.edges
            added = base + offset
            if version_us == -1:
                # No modified or created (SCOs): TAXII versions such objects by date_added.
                version_us = added
            old = existing.get(stix_id)
            if old is not None and any(v.version_us == version_us for v in old):
                continue  # already held: a success, nothing to write
            lo_hi = span.get(stix_id)
            span[stix_id] = (version_us, version_us) if lo_hi is None else \
                (min(lo_hi[0], version_us), max(lo_hi[1], version_us))
            new_rows.append([
                coll, stix_id, obj["type"], obj.get("spec_version", spec_default),
                version or stix.format_us(added), version_us, added, obj.get("created_by_ref"),
                item.tlp, author, item.hop, None, None, dumps(obj).decode(), None,
            ])
            if edges:
                new_refs.extend([(added, coll, path, target) for path, _prop, target in edges])
                new_ends.append(tuple([target for path, _prop, target in edges if path in ENDPOINTS]))
            else:
                new_ends.append(no_ends)
            if item.recipients:
                new_recipients.extend((added, name) for name in item.recipients)
        for stix_id, versions in existing.items():
            lo, hi = span[stix_id]
            for v, was_first, was_latest, _hop, _tlp in versions:
                if was_first != (v == lo) or was_latest != (v == hi):
                    conn.execute(update(objects).where(
                        objects.c.coll == coll, objects.c.stix_id == stix_id, objects.c.version_us == v
                    ).values(is_first=v == lo, is_latest=v == hi))
        if new_rows:
            for row, rank in zip(new_rows, self._ends_ranks(held, new_rows, new_ends)):
                lo, hi = span[row[1]]
                row[11], row[12], row[14] = lo == row[5], hi == row[5], rank
            _bulk_insert(conn, "objects", _OBJECT_COLUMNS, new_rows)
        if new_refs:
            _bulk_insert(conn, "refs", _REF_COLUMNS, new_refs)
        if new_recipients:
            _bulk_insert(conn, "recipients", ("added_us", "member"), new_recipients)
        if new_rows:
            # versions already held whose ends were just written (an end arriving late, a new version of
            # an end) may see their ends_rank change
            ended = sorted({row[1] for row in new_rows} & near.ended)
            if ended:
                self._refresh_ends(conn, coll, ended, before=base)
        return successes

    @staticmethod
    def _ends_ranks(held: dict[str, list[Held]], new_rows: list[list[Any]], new_ends: list[tuple[str, ...]]) -> list[int]:
        """ends_rank of each new row, from the versions held and the ones being written."""
        targets = {t for ends in new_ends for t in ends}
        lowest: dict[str, int] = {t: min(v.tlp for v in held[t]) for t in targets if t in held}
        if targets:
            for row in new_rows:
                if row[1] in targets:
                    lowest[row[1]] = min(lowest.get(row[1], row[8]), row[8])
        return [max((lowest.get(t, -1) for t in ends), default=-1) for ends in new_ends]

    @staticmethod
    def _refresh_ends(conn: Connection, coll: int, ids: Sequence[str], before: int | None = None) -> None:
        """Recompute ends_rank for the versions that have one of ``ids`` at an end."""
        mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
        for start in range(0, len(ids), _CHUNK):
            chunk = ids[start:start + _CHUNK]
            conn.exec_driver_sql(
                f"UPDATE objects SET ends_rank = {ENDS_RANK} WHERE coll = {mark} AND added_us IN "
                f"(SELECT r2.added_us FROM refs r2 WHERE r2.coll = {mark} AND r2.target_id IN "
                f"({', '.join(mark for _ in chunk)}) AND r2.prop IN ({_ENDPOINT_PROPS})"
                + (f" AND r2.added_us < {mark})" if before is not None else ")"),
                (coll, coll, *chunk, *((before,) if before is not None else ())))

    # -- reading ------------------------------------------------------------------------------

    @staticmethod
    def _filters(q: TaxiiQuery, gate: Any = None) -> list[ColumnElement[bool]]:
        clauses: list[ColumnElement[bool]] = []
        if q.ids:
            clauses.append(objects.c.stix_id.in_(q.ids))
        if q.types:
            clauses.append(objects.c.type.in_(q.types))
        if "all" not in q.versions:
            pick: list[ColumnElement[bool]] = []
            # through a gate, first and last mean the first and last version the member may see
            if "last" in q.versions:
                pick.append(gate.edge(newest=True) if isinstance(gate, Gate) else objects.c.is_latest.is_(True))
            if "first" in q.versions:
                pick.append(gate.edge(newest=False) if isinstance(gate, Gate) else objects.c.is_first.is_(True))
            if q.version_us:
                pick.append(objects.c.version_us.in_(q.version_us))
            clauses.append(or_(*pick))
        if q.spec_versions:
            clauses.append(objects.c.spec_version.in_(q.spec_versions))
        if q.added_after_us is not None:
            clauses.append(objects.c.added_us > q.added_after_us)
        if q.after_us is not None:
            clauses.append(objects.c.added_us > q.after_us)
        return clauses

    def page(self, gate: Iterable[ColumnElement[bool]], q: TaxiiQuery, columns: Sequence[Any] | None = None) -> Page:
        """One page of object versions inside the gate, ordered by date_added."""
        cols = columns or (objects.c.stix_id, objects.c.version, objects.c.body, objects.c.author)
        # With match[id], the (coll, stix_id) index must drive the query; ordering by a bare added_us
        # would tempt SQLite to walk the date_added index over the whole collection instead.
        order = objects.c.added_us + 0 if q.ids else objects.c.added_us
        stmt = (
            select(*cols, objects.c.added_us.label("added_us"))
            .where(and_(*gate, *self._filters(q, gate)))
            .order_by(order)
            .limit(q.limit + 1)
        )
        with self.engine.connect() as conn:
            rows = list(conn.execute(stmt))
        more = len(rows) > q.limit
        return Page(rows[: q.limit], more)

    def delete_versions(self, gate: Iterable[ColumnElement[bool]], coll: int, stix_id: str, q: TaxiiQuery) -> int:
        """Delete the versions of one object that match; keep first/last flags right on the rest."""
        where = and_(*gate, objects.c.stix_id == stix_id, *self._filters(q, gate))
        with self.engine.begin() as conn:
            doomed = list(conn.scalars(select(objects.c.added_us).where(where)))
            if not doomed:
                return 0
            conn.execute(delete(objects).where(objects.c.coll == coll, objects.c.added_us.in_(doomed)))
            conn.execute(delete(refs).where(refs.c.added_us.in_(doomed)))
            conn.execute(delete(recipients).where(recipients.c.added_us.in_(doomed)))
            base = and_(objects.c.coll == coll, objects.c.stix_id == stix_id)
            left = sorted(conn.scalars(select(objects.c.version_us).where(base)))
            if left:
                conn.execute(update(objects).where(base).values(
                    is_first=objects.c.version_us == left[0], is_latest=objects.c.version_us == left[-1]))
            self._refresh_ends(conn, coll, [stix_id])  # what pointed at it may now point at something hidden
        return len(doomed)

    def status(self, api_root: str, status_id: str, member: Member) -> dict[str, Any]:
        with self.engine.connect() as conn:
            row = conn.execute(select(statuses).where(
                statuses.c.id == status_id, statuses.c.api_root == api_root, statuses.c.member_id == member.id)).first()
        if row is None:
            # Other members' statuses answer exactly like ids that do not exist.
            raise NotFound(f"no status {status_id!r} in this API root", details={"status_id": status_id})
        return status_resource(row._asdict())

    def grouped(self, stmt: Any, params: dict[str, Any] | None = None) -> dict[Any, set[Any]]:
        """A two-column statement's rows as {first: {second, …}} (what the outbound gate asks about)."""
        out: dict[Any, set[Any]] = {}
        with self.engine.connect() as conn:
            for key, value in conn.execute(stmt, params or {}):
                out.setdefault(key, set()).add(value)
        return out

    def count(self, gate: Iterable[ColumnElement[bool]]) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(objects).where(and_(*gate))).scalar_one())

    def type_counts(self, gate: Gate) -> dict[str, int]:
        """Objects per type inside the gate, each once (at the newest version the member may see)."""
        stmt = (select(objects.c.type, func.count()).where(and_(*gate, gate.edge(newest=True)))
                .group_by(objects.c.type))
        with self.engine.connect() as conn:
            return {str(t): int(n) for t, n in conn.execute(stmt)}

    def newest_ids(self, gate: Gate, limit: int, exclude_types: Sequence[str] = (),
                   referring_to: str | None = None) -> list[str]:
        """Ids inside the gate, most recently added first; with ``referring_to``, only objects that
        refer to that id."""
        where = [*gate, gate.edge(newest=True)]
        if exclude_types:
            where.append(objects.c.type.notin_(exclude_types))
        if referring_to is not None:
            where.append(objects.c.added_us.in_(select(refs.c.added_us).where(
                refs.c.coll == objects.c.coll, refs.c.target_id == referring_to)))
        stmt = select(objects.c.stix_id).where(and_(*where)).order_by(objects.c.added_us.desc()).limit(limit)
        with self.engine.connect() as conn:
            return [str(i) for i in conn.scalars(stmt)]

    def ping(self) -> None:
        with self.engine.connect() as conn:
            conn.execute(text("SELECT 1"))


def status_resource(row: dict[str, Any]) -> dict[str, Any]:
    """The TAXII 2.1 status resource (§4.3.1) from a stored status row."""
    def load(value: Any) -> Any:
        return orjson.loads(value) if isinstance(value, str) else value

    return {
        "id": row["id"],
        "status": "complete" if row["pending_count"] == 0 else "pending",
        "request_timestamp": stix.format_us(row["request_us"]),
        "total_count": row["total_count"],
        "success_count": row["success_count"],
        "successes": load(row["successes"]),
        "failure_count": row["failure_count"],
        "failures": load(row["failures"]),
        "pending_count": row["pending_count"],
        "pendings": load(row["pendings"]),
    }
