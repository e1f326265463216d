"""Appending to the audit trail, signing checkpoints and tree heads (see the package's docstring)."""

from __future__ import annotations

import getpass
import hashlib
import secrets
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import Connection, func, insert, select, text, update
from sqlalchemy.exc import IntegrityError

from .. import merkle
from ..errors import TearlineError
from ..store import Store, now_us
from ..store.schema import audit, audit_checkpoints, audit_heads, audit_keys
from . import tree
from .signing import checkpoint_message, head_message, key_id, load_or_create_key, public_bytes

GENESIS = "0" * 64
_BATCH = 50_000  # entries read at a time while sealing
SEAL_LOCK = 0x7EA41E5EA1  # PostgreSQL advisory lock held while sealing
HEAD_TTL = 1.0  # seconds a process serves the newest tree head it read before reading it again
MAX_IDS = 5000  # ids kept per entry; a page is at most page_size objects, so this is never reached by reads
MAX_TEXT = 512  # characters kept of one field (a path, a parameter); the rest is summed up by its hash
MAX_REASON = 2_000
MAX_PARAMS = 20  # query parameters kept per entry
MAX_VALUES = 5  # values kept of one repeated parameter
MAX_QUERY = 4_096  # characters of the recorded query string as a whole

FIELDS = ("seq", "at_us", "actor", "api_root", "method", "endpoint", "path", "query", "status", "reason", "ids",
          "count", "prev")


def entry_hash(entry: dict[str, Any]) -> str:
    """SHA-256 over the entry's fields in a fixed order (JSON), the previous hash included, and its nonce when
    it has one (entries written before nonces were added have none)."""
    fields = [entry[f] for f in FIELDS]
    if entry.get("nonce") is not None:
        fields.append(entry["nonce"])
    return hashlib.sha256(orjson.dumps(fields)).hexdigest()


# --- the log ----------------------------------------------------------------------------------------

def bounded(value: str | None, limit: int = MAX_TEXT) -> str | None:
    """A client's words as the record keeps them: at most ``limit`` characters (a longer value keeps its
    start and the SHA-256 of the whole, so the record still pins what was sent without storing it), and
    NUL written out (PostgreSQL text cannot hold it, and a request may carry one)."""
    if value is None:
        return None
    if len(value) > limit:
        digest = hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()
        value = f"{value[:limit - 100]}… [{len(value):,} characters, sha256 {digest}]"
    return value.replace("\x00", "\\x00")


def _bounded_query(query: dict[str, Any]) -> dict[str, Any]:
    """The query string as recorded: at most MAX_PARAMS parameters of at most MAX_VALUES values, each name and
    value bounded, and the whole at most MAX_QUERY characters (past that, its size and SHA-256 stand for it)."""
    out: dict[str, Any] = {}
    for n, (key, value) in enumerate(sorted(query.items())):
        if n == MAX_PARAMS:
            out["…"] = f"{len(query) - MAX_PARAMS} more parameters"
            break
        if isinstance(value, list):
            value = [bounded(str(v)) for v in value[:MAX_VALUES]] + (
                [f"… {len(value) - MAX_VALUES} more values"] if len(value) > MAX_VALUES else [])
        else:
            value = bounded(str(value))
        out[bounded(str(key), 200) or ""] = value
    whole = orjson.dumps(out, option=orjson.OPT_SORT_KEYS)
    if len(whole) > MAX_QUERY:
        full = orjson.dumps(query, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS, default=str)
        return {"…": f"{len(query)} parameters, {len(full):,} characters, sha256 {hashlib.sha256(full).hexdigest()}"}
    return out


class AuditLog:
    """Appends entries and signs checkpoints. Safe across threads and across hub processes sharing
    one database: the next sequence number is claimed by the insert itself (a primary key), and a
    process that loses the race reads the new head and tries again."""

    def __init__(self, store: Store, key_file: Path, checkpoint_every: int = 1000):
        self.store = store
        self.key_file = key_file
        self.checkpoint_every = checkpoint_every
        self._key: Any = None
        self._lock = threading.Lock()
        self._key_lock = threading.Lock()  # the seal thread and request threads may both load it first
        self._seal_lock = threading.Lock()
        self._due = False
        self._head: tuple[float, str | None] = (-1.0, None)  # (read at, monotonic; the header it makes)

    def _signing_key(self) -> tuple[Any, str]:
        with self._key_lock:
            return self._load_key()

    def _load_key(self) -> tuple[Any, str]:
        if self._key is None:
            self._key = load_or_create_key(self.key_file)
            public = public_bytes(self._key)
            kid = key_id(public)
            try:
                with self.store.engine.begin() as conn:
                    if conn.execute(select(audit_keys.c.key_id).where(audit_keys.c.key_id == kid)).first() is None:
                        conn.execute(insert(audit_keys).values(key_id=kid, public_key=public.hex(),
                                                               created_us=now_us()))
            except IntegrityError:  # another hub process on the store recorded the same key first
                pass
        return self._key, key_id(public_bytes(self._key))

    def append(self, actor: str | None, api_root: str | None, method: str, endpoint: str, path: str,
               query: dict[str, Any] | None = None, status: int = 200, reason: str = "",
               ids: Sequence[str] = (), count: int | None = None, conn: Connection | None = None) -> int:
        """Append one entry; with ``conn``, inside that transaction (a write and its record commit together,
        or neither does). Every field is bounded (``bounded``), so no request makes a large entry."""
        entry = {"at_us": now_us(), "actor": bounded(actor), "api_root": bounded(api_root), "method": bounded(method),
                 "endpoint": bounded(endpoint), "path": bounded(path),
                 "query": orjson.dumps(_bounded_query(query or {}), option=orjson.OPT_SORT_KEYS).decode(),
                 "status": status, "reason": bounded(reason, MAX_REASON),
                 "ids": orjson.dumps([bounded(i) for i in list(ids)[:MAX_IDS]]).decode(),
                 "count": len(ids) if count is None else count, "nonce": secrets.token_hex(16)}
        if conn is not None:
            # not under the lock: this thread holds the store's write lock, and another thread holding
            # ours could be waiting for it (the unique seq settles races between processes anyway)
            seq = self._insert(conn, entry)
        else:
            with self._lock:
                seq = self._insert_alone(entry)
        if seq % self.checkpoint_every == 0:
            if conn is None:
                self.checkpoint()
            else:  # the checkpoint reads the new entry, so it is signed once the write has committed
                self._due = True
        return seq

    def _insert_alone(self, entry: dict[str, Any]) -> int:
        for _attempt in range(50):
            try:
                # no savepoint here: on SQLite one would open the transaction before the read of the head,
                # and a writer committing in between would then fail the insert at once instead of waiting. On
                # PostgreSQL the read of the head and the insert each commit on their own: a transaction around
                # them would lock nothing more (the primary key settles the race) and cost two round trips
                with self.store.reading() as conn, conn.begin():
                    return self._claim(conn, entry)
            except IntegrityError:  # another hub process took this seq: read the new head
                continue
        raise RuntimeError("audit log: could not claim a sequence number")

    def _insert(self, conn: Connection, entry: dict[str, Any]) -> int:
        for _attempt in range(50):
            try:
                with conn.begin_nested():  # losing the race must not undo the caller's write
                    return self._claim(conn, entry)
            except IntegrityError:
                continue
        raise RuntimeError("audit log: could not claim a sequence number")

    @staticmethod
    def _claim(conn: Connection, entry: dict[str, Any]) -> int:
        head = conn.execute(select(audit.c.seq, audit.c.hash).order_by(audit.c.seq.desc()).limit(1)).first()
        seq, prev = (head[0] + 1, head[1]) if head else (1, GENESIS)
        row = entry | {"seq": seq, "prev": prev}
        row["hash"] = entry_hash(row)
        conn.execute(insert(audit).values(**row))
        return int(seq)

    def settle(self) -> None:
        """Sign the checkpoint an entry appended inside a write made due (call after that write commits)."""
        if self._due:
            self._due = False
            self.checkpoint()

    def checkpoint(self) -> dict[str, Any] | None:
        """Sign everything since the last checkpoint, and seal a tree head over the whole log; None when there
        is nothing new."""
        key, kid = self._signing_key()
        with self._lock, self.store.engine.begin() as conn:
            last = conn.execute(select(func.max(audit_checkpoints.c.seq))).scalar() or 0
            rows = conn.execute(select(audit.c.seq, audit.c.hash).where(audit.c.seq > last).order_by(audit.c.seq)).all()
            if not rows:
                return None
            cp = {"seq": rows[-1][0], "first_seq": last + 1,
                  "root": tree.merkle_root([bytes.fromhex(h) for _, h in rows]).hex(),
                  "head": rows[-1][1], "at_us": now_us(), "key_id": kid}
            cp["signature"] = key.sign(checkpoint_message(cp)).hex()
            try:
                conn.execute(insert(audit_checkpoints).values(**cp))
            except IntegrityError:  # another process sealed the same range first
                return None
        self.seal()  # every N entries a tree head too, not only every few seconds
        return cp

    def seal(self) -> dict[str, Any] | None:
        """Sign a tree head over every entry so far; None when nothing came since the last one. Only the
        entries since that head are read and hashed (its frontier holds the rest). A head sealed over a
        base that does not hold together (its frontier not its signed root, entries missing below the
        newest, a head past the log's end) is refused loudly: signing on it would vouch for a forgery.

        One sealer at a time (a lock in the process; on PostgreSQL, a transaction-scoped advisory lock across
        processes), and each head signed later than the one before: heads grow in size and time together, so
        a smaller head signed after a larger one is proof of a shrunk log (tearline.witness) and never
        something an honest hub does. Not under the append lock: requests keep being recorded."""
        key, kid = self._signing_key()
        with self._seal_lock, self.store.engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": SEAL_LOCK})
            last = conn.execute(select(audit_heads).order_by(audit_heads.c.size.desc()).limit(1)).first()
            frontier = tree.frontier_of(conn, last)
            tree.fill_nodes(conn, last)
            newest = conn.execute(select(func.max(audit.c.seq))).scalar() or 0
            if newest < frontier.size:
                raise TearlineError(f"audit log: a tree head is signed at size {frontier.size}, but the log ends at "
                                    f"entry {newest}; run `tearline audit verify`", code="audit_tampered")
            while frontier.size < newest:
                got = 0
                for seq, digest in conn.execute(select(audit.c.seq, audit.c.hash).where(audit.c.seq > frontier.size)
                                                .order_by(audit.c.seq).limit(_BATCH)):
                    if seq != frontier.size + 1:
                        break
                    frontier.append(merkle.leaf_hash(bytes.fromhex(digest)))
                    got += 1
                if frontier.size < newest and got < _BATCH:
                    # entries commit in seq order (each is claimed by its insert), so a gap below committed
                    # entries is not one still being written: it was deleted
                    raise TearlineError(f"audit log: entry {frontier.size + 1} is missing below entry {newest}; "
                                        "run `tearline audit verify`", code="audit_tampered")
            if frontier.size == (last.size if last else 0):
                return None
            head = {"size": frontier.size, "root": frontier.root().hex(),
                    "at_us": max(now_us(), last.at_us + 1 if last else 0), "key_id": kid}
            head["signature"] = key.sign(head_message(head)).hex()
            try:
                with conn.begin_nested():
                    conn.execute(insert(audit_heads).values(**head, frontier=orjson.dumps(frontier.dumps()).decode()))
            except IntegrityError:  # two processes on one SQLite file (no advisory lock there): the other won
                return None
            tree.store_nodes(conn, frontier.completed)
            if last is not None:  # only the newest head's frontier is ever read
                conn.execute(update(audit_heads).where(audit_heads.c.size == last.size).values(frontier=None))
        self._head = (-1.0, None)
        return head

    def signer(self) -> tuple[Any, str]:
        """The signing key and its id, for statements the hub makes about its log (tearline.audit.tree)."""
        return self._signing_key()

    def head_header(self) -> str | None:
        """The newest signed tree head as the ``Tearline-Tree-Head`` response header gives it to members (an
        RFC 8941 dictionary), read from the database at most once a second per process; None before the first
        seal."""
        read_at, header = self._head
        now = time.monotonic()
        if now - read_at > HEAD_TTL:
            head = tree.latest_head(self.store)
            header = None if head is None else (
                f'size={head["size"]}, root="{head["root"]}", timestamp={head["at_us"]}, '
                f'key="{head["key_id"]}", signature="{head["signature"]}"')
            self._head = (now, header)
        return header

    def rotate_key(self) -> tuple[str, str]:
        """Seal with the current key, retire it, and make a new one. Returns (old id, new id)."""
        _key, old = self._signing_key()
        self.checkpoint()
        retired = self.key_file.with_name(self.key_file.name + f".retired-{old}")
        self.key_file.rename(retired)
        with self.store.engine.begin() as conn:
            conn.execute(update(audit_keys).where(audit_keys.c.key_id == old).values(retired_us=now_us()))
        self._key = None
        _key, new = self._signing_key()
        return old, new

    def sign(self, message: bytes) -> dict[str, str]:
        """Sign something else the hub vouches for (a warning document) with the same published key;
        the caller prefixes its own context so no signature can pass for another kind."""
        key, kid = self._signing_key()
        return {"key_id": kid, "public_key": public_bytes(key).hex(), "signature": key.sign(message).hex()}

    def public_keys(self) -> list[dict[str, Any]]:
        self._signing_key()
        with self.store.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(select(audit_keys).order_by(audit_keys.c.created_us))]


def latest(store: Store, limit: int) -> list[dict[str, Any]]:
    """The newest entries, newest first (the operator's view; ids left out)."""
    cols = (audit.c.seq, audit.c.at_us, audit.c.actor, audit.c.api_root, audit.c.method, audit.c.path,
            audit.c.status, audit.c.reason, audit.c.count)
    with store.engine.connect() as conn:
        return [{str(k): v for k, v in r._mapping.items()}
                for r in conn.execute(select(*cols).order_by(audit.c.seq.desc()).limit(limit))]


def seal_lag(store: Store) -> tuple[int, float | None]:
    """How far the newest signed tree head is behind: entries appended since, and its age in seconds (None
    before the first seal)."""
    with store.engine.connect() as conn:
        last = conn.execute(select(func.max(audit.c.seq))).scalar() or 0
        head = conn.execute(select(audit_heads.c.size, audit_heads.c.at_us)
                            .order_by(audit_heads.c.size.desc()).limit(1)).first()
    if head is None:
        return int(last), None
    return int(last) - int(head.size), time.time() - head.at_us / 1e6


def admin_actor() -> str:
    try:
        return f"admin:{getpass.getuser()}"
    except (KeyError, OSError):
        return "admin:unknown"


