"""What several hub processes on one PostgreSQL store share, so that N processes behind a load balancer (or
``serve --workers N``) behave as one hub.

- Rate limits: each token bucket is a row of ``rate_buckets``, taken from in one statement (an upsert that
  refills from the database's clock and takes, or refuses, atomically). Two processes serving one member
  draw on one bucket, so the member's limit holds whatever process a request reaches.
- Background jobs (the probe scan, warning escalation, pruning): one process at a time, the holder of a
  session-level advisory lock on a connection of its own. If that process dies its connection closes, the lock
  is released, and the next process to try takes over within one scan interval.
- Dashboard sessions: a row of ``ui_sessions`` per signed-in browser, keyed by the hash of its random id (the
  database never holds a usable cookie) and holding the hash the member's token had at sign-in (never the
  token), so a session made through one process works in every other, survives a restart, and ends when the
  token is rotated or the member removed.
- Audit entries need nothing here: each claims the next sequence number under a unique key and retries on a
  collision (tearline.audit.log), so entries from every process form one chain. Members, tokens and
  compacts are read from the store on every request, so a change made through one process is seen by every
  other on its next request.

On SQLite the hub is one process (``serve --workers`` refuses more), the buckets stay in that process's
memory and it is always the leader.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import math
import secrets
import threading
import time
from typing import Any

import orjson
from sqlalchemy import Connection, delete, func, insert, select, text

from .guard import BURST_SECONDS
from .store import Store, token_hash
from .store.schema import ui_sessions

# Advisory lock keys (64-bit) of the hub's background jobs; the audit seal has its own (tearline.audit.log).
JOBS_LOCK = 0x7EA41E10B5
# A bucket idle this long has refilled whatever its rate (a bucket holds at most a minute's worth at the lowest
# rate a compact allows, one a minute): its row can go, and would be recreated full.
IDLE_SECONDS = 120

_NOW = "CAST(extract(epoch FROM clock_timestamp()) AS DOUBLE PRECISION)"
_FILL = "LEAST(:cap, b.tokens + (EXCLUDED.at - b.at) * :rate)"
_TAKE = text(f"""
    INSERT INTO rate_buckets AS b (bucket, tokens, at, granted)
    VALUES (:k, CASE WHEN :cap >= :charge OR :debt THEN :cap - :charge ELSE :cap END, {_NOW},
            :cap >= :charge OR :debt)
    ON CONFLICT (bucket) DO UPDATE SET
        tokens = CASE WHEN {_FILL} >= :charge OR :debt THEN {_FILL} - :charge ELSE {_FILL} END,
        granted = {_FILL} >= :charge OR :debt,
        at = EXCLUDED.at
    RETURNING tokens, granted""")
_PEEK = text(f"SELECT LEAST(:cap, tokens + ({_NOW} - at) * :rate) FROM rate_buckets WHERE bucket = :k")


def shared(store: Store) -> bool:
    """Whether the store can be shared by several hub processes."""
    return store.engine.dialect.name == "postgresql"


def _key(key: Any) -> str:
    # JSON of the parts: no part (a client address is a stranger's choice) can end one and begin another
    flat = orjson.dumps([str(part) for part in (key if isinstance(key, tuple) else (key,))]).decode()
    # a long one is hashed, never cut (two must not share a bucket)
    return flat if len(flat) <= 120 else "sha256:" + hashlib.sha256(flat.encode()).hexdigest()


class SharedBuckets:
    """tearline.guard.Buckets with the buckets in the store, for every process on it."""

    def __init__(self, store: Store):
        self.store = store

    def take(self, key: Any, per_minute: int, charge: float = 1.0, debt: bool = False) -> int:
        rate = per_minute / 60.0
        # one statement, committed on its own; the table is UNLOGGED (a bucket lost to a crash refills anyway), so
        # the commit waits for no disk
        with self.store.reading() as conn:
            tokens, granted = conn.execute(_TAKE, {"k": _key(key), "cap": max(1.0, rate * BURST_SECONDS),
                                                   "rate": rate, "charge": float(charge), "debt": debt}).one()
        return 0 if granted else max(1, math.ceil((charge - tokens) / rate))

    def empty(self, key: Any, per_minute: int) -> bool:
        rate = per_minute / 60.0
        with self.store.reading() as conn:
            tokens = conn.execute(_PEEK, {"k": _key(key), "cap": max(1.0, rate * BURST_SECONDS),
                                          "rate": rate}).scalar()
        return tokens is not None and tokens < 1.0

    def empty_any(self, pairs: list[tuple[Any, int]]) -> bool:
        """``empty`` of several buckets in one round trip (the doorman asks two on every request)."""
        values = ", ".join(f"(:k{i}, CAST(:c{i} AS DOUBLE PRECISION), CAST(:r{i} AS DOUBLE PRECISION))"
                           for i in range(len(pairs)))
        params: dict[str, Any] = {}
        for i, (key, per_minute) in enumerate(pairs):
            rate = per_minute / 60.0
            params |= {f"k{i}": _key(key), f"c{i}": max(1.0, rate * BURST_SECONDS), f"r{i}": rate}
        with self.store.reading() as conn:
            return bool(conn.execute(text(
                f"SELECT coalesce(bool_or(LEAST(v.cap, b.tokens + ({_NOW} - b.at) * v.rate) < 1.0), false) "
                f"FROM (VALUES {values}) AS v(k, cap, rate) JOIN rate_buckets b ON b.bucket = v.k"), params).scalar())

    def prune(self) -> int:
        with self.store.engine.begin() as conn:
            return conn.execute(text(f"DELETE FROM rate_buckets WHERE at < {_NOW} - :idle"),
                                {"idle": IDLE_SECONDS}).rowcount or 0


class Leader:
    """Whether this process runs the background jobs now. ``held()`` takes the lead when nobody has it."""

    def __init__(self, store: Store, key: int = JOBS_LOCK):
        self.store = store
        self.key = key
        self._conn: Connection | None = None
        self._lock = threading.Lock()

    def held(self) -> bool:
        if not shared(self.store):
            return True
        with self._lock:
            if self._conn is not None:
                try:
                    self._conn.execute(text("SELECT 1"))
                    return True
                except Exception:  # the connection (and with it the lock) is gone: try again below
                    logging.getLogger("tearline.cluster").warning("lost the background jobs' lock; retrying")
                    self._drop()
            # autocommit: the lock is the session's, and the connection must not sit idle inside a transaction
            conn = self.store.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
            try:
                # a leader whose machine vanishes without closing its connection must lose the lock in seconds,
                # not after the kernel's two hours: the server probes the connection this often and drops it, and
                # the lock with it, when the probes go unanswered
                conn.execute(text("SET tcp_keepalives_idle = 10; SET tcp_keepalives_interval = 5; "
                                  "SET tcp_keepalives_count = 3"))
                got = conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": self.key}).scalar()
            except Exception:
                conn.close()
                raise
            if got:
                self._conn = conn
                return True
            conn.close()
            return False

    def release(self) -> None:
        with self._lock:
            if self._conn is not None:
                with contextlib.suppress(Exception):  # closing the connection releases it anyway
                    self._conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": self.key})
                self._drop()

    def _drop(self) -> None:
        try:
            if self._conn is not None:
                self._conn.close()
        finally:
            self._conn = None

    @property
    def leading(self) -> bool:
        """Whether this process held the lead at its last check (no database call)."""
        return self._conn is not None or not shared(self.store)


class Sessions:
    """Signed-in dashboard browsers: a random id (the cookie) → who, until when, in the store."""

    MAX = 100_000  # in all: sign-ins need a working token, and each is charged to its member's meta limit
    PER_NAME = 20  # one member (or person) signing in in a loop replaces its own oldest sessions, nobody else's

    def __init__(self, store: Store, seconds: int):
        self.store = store
        self.seconds = seconds

    def open(self, kind: str, name: str, credential: str, api_root: str | None = None) -> str:
        sid = secrets.token_urlsafe(32)
        now = time.time()
        with self.store.engine.begin() as conn:
            conn.execute(delete(ui_sessions).where(ui_sessions.c.until < now))
            conn.execute(insert(ui_sessions).values(id_hash=token_hash(sid), kind=kind, name=name, api_root=api_root,
                                                    credential=credential, csrf=secrets.token_urlsafe(24),
                                                    until=now + self.seconds))
            mine = (ui_sessions.c.kind == kind) & (ui_sessions.c.name == name) & (ui_sessions.c.api_root == api_root) \
                if api_root is not None else (ui_sessions.c.kind == kind) & (ui_sessions.c.name == name)
            for bound, where in ((self.PER_NAME, mine), (self.MAX, None)):
                counted = select(func.count()).select_from(ui_sessions)
                extra = (conn.execute(counted.where(where) if where is not None else counted).scalar() or 0) - bound
                if extra > 0:
                    oldest = select(ui_sessions.c.id_hash).order_by(ui_sessions.c.until).limit(extra)
                    oldest = oldest.where(where) if where is not None else oldest
                    conn.execute(delete(ui_sessions).where(ui_sessions.c.id_hash.in_(oldest.scalar_subquery())))
        return sid

    def get(self, sid: str | None) -> dict[str, Any] | None:
        if not sid:
            return None
        with self.store.engine.connect() as conn:
            row = conn.execute(select(ui_sessions).where(ui_sessions.c.id_hash == token_hash(sid))).first()
        if row is None or row.until < time.time():
            return None
        return {"kind": row.kind, "name": row.name, "api_root": row.api_root, "credential": row.credential,
                "csrf": row.csrf}

    def valid(self, sid: str | None, admin_token: str = "") -> bool:
        """A session whose credential still works: the member's token unchanged and the member still in its
        compact, or the operator's token unchanged."""
        found = self.get(sid)
        if found is None:
            return False
        if found["kind"] == "operator":
            return bool(admin_token) and secrets.compare_digest(found["credential"], token_hash(admin_token))
        return self.store.authenticate_digest(found["credential"], found["name"]) is not None

    def close(self, sid: str | None) -> None:
        if sid:
            with self.store.engine.begin() as conn:
                conn.execute(delete(ui_sessions).where(ui_sessions.c.id_hash == token_hash(sid)))
