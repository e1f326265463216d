"""The hub's tables behind SQLAlchemy 2 Core, on SQLite or PostgreSQL: rows in, rows out.

``Store`` opens the database, keeps its schema current and handles compacts, collections and members.
Object versions are rows in tearline.store.objects; deciding what may be written (tearline.write) and
what a member may read (tearline.release) happens above, never here.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import secrets
import time
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import (
    Connection,
    Engine,
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

from ..errors import ConfigError, NotFound
from ..model import Collection, Member
from . import schema
from .schema import api_roots, collections, members, people, upkeep

_CHUNK = 500


def rows_for_ids(conn: Connection, sql: str, coll: int, ids: Sequence[str]) -> Iterator[Any]:
    """Run ``sql`` for a collection and a long list of ids, in chunks, straight at the driver.

    ``sql`` holds ``{coll}`` and ``{ids}`` where the placeholders go. On bulk envelopes SQLAlchemy's
    expansion of IN lists cost more than the index lookups themselves."""
    mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    for start in range(0, len(ids), _CHUNK):
        chunk = ids[start : start + _CHUNK]
        yield from conn.exec_driver_sql(sql.format(coll=mark, ids=", ".join(mark for _ in chunk)), (coll, *chunk))


def bulk_insert(conn: Connection, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """Insert many rows through the driver's executemany, inside ``conn``'s transaction. On bulk
    envelopes SQLAlchemy's per-row parameter handling cost more than the inserts themselves."""
    mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    cursor = conn.connection.cursor()
    try:
        marks = ", ".join(mark for _ in columns)
        cursor.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})", rows)
    finally:
        cursor.close()


def token_hash(token: str) -> str:
    # Tokens are 256-bit random strings, so a plain SHA-256 is enough: there is nothing to brute-force.
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    return secrets.token_urlsafe(32)


def now_us() -> int:
    return time.time_ns() // 1000


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
        # more than the requests one process serves at once (8 clients and the background jobs took 11): a pool
        # that overflows opens and closes a connection per request, which cut reads from ~110 to ~25 a second
        return create_engine(url, pool_size=20, max_overflow=20, pool_pre_ping=True)
    raise ConfigError(f"--db: {url!r} is not a sqlite:/// or postgresql:// URL", details={"setting": "db"})


def _member(row: Any) -> Member:
    return Member(id=row.id, api_root=row.api_root, name=row.name, can_read=row.can_read, can_write=row.can_write,
                  tlp_max=row.tlp_max, profile=orjson.loads(row.profile))


class Store:
    def __init__(self, url: str):
        self.url = url
        self.engine = make_engine(url)
        self._server = self.engine.dialect.name == "postgresql"

    def close(self) -> None:
        self.engine.dispose()

    @contextlib.contextmanager
    def reading(self) -> Iterator[Connection]:
        """A connection for reads. On PostgreSQL it runs outside a transaction: at READ COMMITTED each statement
        sees its own snapshot inside one anyway, and the BEGIN and ROLLBACK around it were two of the round
        trips a read makes. Anything that writes, or must see one snapshot across statements, uses
        ``engine.begin()``."""
        with self.engine.connect() as conn:
            yield conn.execution_options(isolation_level="AUTOCOMMIT") if self._server else conn

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

    def ensure_api_root(self, conn: Connection, name: str, title: str, description: str = "",
                        policy: str = "{}") -> None:
        exists = conn.execute(select(api_roots.c.name).where(api_roots.c.name == name)).first()
        values = {"title": title, "description": description, "policy": policy}
        if exists:
            conn.execute(update(api_roots).where(api_roots.c.name == name).values(**values))
        else:
            conn.execute(insert(api_roots).values(name=name, created_us=now_us(), **values))

    def ensure_collection(
        self, conn: Connection, api_root: str, alias: str, title: str, description: str = "",
        member_writable: bool = True,
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
        return int(num)

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
                update(members).where(members.c.api_root == api_root, members.c.name == name)
                .values(token_hash=token_hash(token))
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

    def members_of(self, conn: Connection, api_root: str) -> list[Member]:
        return [_member(r) for r in conn.execute(select(members).where(members.c.api_root == api_root)
                                                 .order_by(members.c.name))]

    def compact_members(self, api_root: str) -> list[Member]:
        """A compact's members by name, for the operator."""
        with self.engine.connect() as conn:
            return self.members_of(conn, api_root)

    def all_members(self) -> list[Member]:
        """Every member of every compact, in the order they were added."""
        with self.engine.connect() as conn:
            return [_member(r) for r in conn.execute(select(members).order_by(members.c.id))]

    def member_names(self, conn: Connection, api_root: str) -> list[str]:
        return list(conn.scalars(select(members.c.name).where(members.c.api_root == api_root).order_by(members.c.name)))

    def authenticate(self, token: str, name: str | None = None) -> Member | None:
        """The member of a token, or of one of its people (Basic user ``member/person``), as that person."""
        return self.authenticate_digest(token_hash(token), name)

    def authenticate_digest(self, digest: str, name: str | None = None) -> Member | None:
        """``authenticate`` by the token's hash (a dashboard session keeps the hash, never the token)."""
        with self.reading() as conn:
            row = conn.execute(select(members).where(members.c.token_hash == digest)).first()
            person = None
            if row is None:
                found = conn.execute(select(members, people.c.name.label("person")).join(
                    people, people.c.member == members.c.id).where(people.c.token_hash == digest)).first()
                if found is None:
                    return None
                row, person = found, found.person
        if name is not None:
            said = f"{row.name}/{person}" if person is not None else row.name
            if not secrets.compare_digest(said.encode(), name.encode()):
                return None
        return dataclasses.replace(_member(row), person=person)

    def people_of(self, conn: Connection, member_id: int) -> list[str]:
        return list(conn.scalars(select(people.c.name).where(people.c.member == member_id).order_by(people.c.name)))

    def add_person(self, conn: Connection, member_id: int, name: str) -> str:
        """Add a person to a member and return their token — the only time it exists in clear."""
        token = new_token()
        conn.execute(insert(people).values(member=member_id, name=name, token_hash=token_hash(token)))
        return token

    def drop_person(self, conn: Connection, member_id: int, name: str) -> None:
        conn.execute(delete(people).where(people.c.member == member_id, people.c.name == name))

    def rotate_person_token(self, api_root: str, member: str, person: str) -> str:
        token = new_token()
        with self.engine.begin() as conn:
            mid = conn.execute(select(members.c.id)
                               .where(members.c.api_root == api_root, members.c.name == member)).scalar()
            done = conn.execute(update(people).where(people.c.member == mid, people.c.name == person)
                                .values(token_hash=token_hash(token))) if mid is not None else None
            if done is None or done.rowcount != 1:
                raise NotFound(f"no person {person!r} of member {member!r} in compact {api_root!r}",
                               details={"member": member, "person": person})
        return token

    def api_root(self, name: str) -> Any:
        with self.reading() as conn:
            return conn.execute(select(api_roots).where(api_roots.c.name == name)).first()

    def collections(self, api_root: str, conn: Connection | None = None) -> list[Collection]:
        stmt = (select(collections, api_roots.c.policy).join(api_roots, api_roots.c.name == collections.c.api_root)
                .where(collections.c.api_root == api_root).order_by(collections.c.alias))
        if conn is None:
            with self.reading() as own:
                found = list(own.execute(stmt))
        else:
            found = list(conn.execute(stmt))
        return [Collection(r.id, r.api_root, r.alias, r.title, r.description, r.member_writable, r.num, r.policy)
                for r in found]

    def collection(self, api_root: str, key: str, conn: Connection | None = None) -> Collection | None:
        """A collection of an API root by id or by alias (inside ``conn``'s transaction when given)."""
        stmt = (select(collections, api_roots.c.policy).join(api_roots, api_roots.c.name == collections.c.api_root)
                .where(collections.c.api_root == api_root, or_(collections.c.id == key, collections.c.alias == key)))
        if conn is None:
            with self.reading() as own:
                r = own.execute(stmt).first()
        else:
            r = conn.execute(stmt).first()
        if r is None:
            return None
        return Collection(r.id, r.api_root, r.alias, r.title, r.description, r.member_writable, r.num, r.policy)

    def version_count(self, coll: int) -> int:
        """How many object versions a collection holds (for the operator: no member reads this)."""
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(schema.objects)
                                    .where(schema.objects.c.coll == coll)).scalar_one())

    def upkeep_due(self, name: str) -> bool:
        with self.engine.connect() as conn:
            return conn.execute(select(upkeep.c.value).where(upkeep.c.name == name)).scalar() == "stale"

    def upkeep_done(self, conn: Connection, name: str) -> None:
        conn.execute(delete(upkeep).where(upkeep.c.name == name))

    def ping(self) -> None:
        with self.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
