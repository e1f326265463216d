"""The append-only audit trail: every request and every admin action, hash-chained, with signed
checkpoints, verifiable by the hub operator and, for its own records, by each member offline.

Chain. Entry n's hash is SHA-256 over its content and entry n-1's hash, so changing, removing,
inserting or reordering an entry breaks every link after it. Anyone who can write the database could
recompute the whole chain, so the hub also signs checkpoints: every ``checkpoint_every`` entries (and
on demand, e.g. before an export), an Ed25519 signature over the Merkle root (RFC 6962 hashing) of the
range's entry hashes and the chain head. Rewriting history then needs the signing key; truncating it
leaves a checkpoint that points past the end. Entries after the last checkpoint are reported as not
yet signed.

Tree heads. The hub also seals the whole log (``seal``): a signed head over the Merkle tree hash of every
entry so far (tearline.merkle), every few seconds while entries arrive and when it stops, so a cut-off
tail shorter than a checkpoint's range is caught too. ``verify`` grows the tree as it walks the entries
and checks each head where it was signed.

Keys. The private key is a PKCS#8 PEM file, readable by its owner only, created on first use
(``--audit-key``/``TEARLINE_AUDIT_KEY``; by default next to a SQLite store, or in ~/.tearline for a
PostgreSQL one). Its public key is recorded
in the ``audit_keys`` table and printed by ``tearline audit key``: publish it, because a verifier
that reads keys only from the database trusts whoever can write it. ``tearline audit key --rotate``
seals the log with the old key, retires it and starts signing with a new one; old signatures stay
verifiable with the retired public key.

Member export. ``tearline audit export --member NAME`` seals the log, then writes the member's own
entries, each with a Merkle inclusion proof into its signed checkpoint, the checkpoints and the public
keys. ``tearline audit verify-export FILE --public-key HEX`` checks it with nothing but the file.
"""

from __future__ import annotations

import dataclasses
import getpass
import hashlib
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import Connection, and_, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from . import merkle
from .config import create_secret, secret_path
from .errors import BadRequest, ConfigError, TearlineError
from .store import Store, now_us
from .store.schema import audit, audit_checkpoints, audit_heads, audit_keys

GENESIS = "0" * 64
SIGNING_CONTEXT = b"tearline-audit-checkpoint/1"
HEAD_CONTEXT = b"tearline-audit-tree-head/1"
_BATCH = 50_000  # entries read at a time while sealing
MAX_IDS = 5000  # ids kept per entry; a page is at most page_size objects, so this is never reached by reads
MAX_TEXT = 512  # characters kept of one field (a path, a parameter); the rest is summed up by its hash
MAX_REASON = 2_000
MAX_PARAMS = 20  # query parameters kept per entry
MAX_VALUES = 5  # values kept of one repeated parameter
MAX_QUERY = 4_096  # characters of the recorded query string as a whole

FIELDS = ("seq", "at_us", "actor", "api_root", "method", "endpoint", "path", "query", "status", "reason", "ids",
          "count", "prev")


def entry_hash(entry: dict[str, Any]) -> str:
    """SHA-256 over the entry's fields in a fixed order (JSON), the previous hash included."""
    return hashlib.sha256(orjson.dumps([entry[f] for f in FIELDS])).hexdigest()


# --- Merkle trees over entry hashes (tearline.merkle: RFC 6962) -------------------------------------

def merkle_root(leaves: Sequence[bytes]) -> bytes:
    """The tree hash of a range of entries, each leaf an entry's hash."""
    return merkle.root(merkle.MemoryNodes(leaves), len(leaves))


def inclusion_proof(leaves: Sequence[bytes], index: int) -> list[str]:
    """The sibling hashes from leaf ``index`` up to the root (RFC 6962 audit path), hex."""
    return [p.hex() for p in merkle.inclusion_proof(merkle.MemoryNodes(leaves), index, len(leaves))]


def in_tree(leaf: bytes, index: int, size: int, proof: Sequence[str], root: str) -> bool:
    """Does the audit path ``proof`` put the entry hash ``leaf`` at ``index`` of the tree of ``size`` whose
    root is ``root`` (hex)?"""
    return merkle.verify_inclusion(leaf, index, size, [bytes.fromhex(p) for p in proof], bytes.fromhex(root))


# --- keys -----------------------------------------------------------------------------------------

def key_path(settings_key: str, db_url: str) -> Path:
    return secret_path(settings_key, db_url, "audit")


def key_id(public: bytes) -> str:
    return hashlib.sha256(public).hexdigest()[:16]


def public_bytes(private: Any) -> bytes:
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    return private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def load_or_create_key(path: Path) -> Any:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import (
        Encoding,
        NoEncryption,
        PrivateFormat,
        load_pem_private_key,
    )

    if path.exists():
        try:
            key = load_pem_private_key(path.read_bytes(), password=None)
        except (ValueError, TypeError) as exc:
            raise ConfigError(f"audit key {path}: not an unencrypted PEM private key ({exc})") from None
        if not isinstance(key, Ed25519PrivateKey):
            raise ConfigError(f"audit key {path}: not an Ed25519 key")
        return key
    key = Ed25519PrivateKey.generate()
    create_secret(path, key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()))
    return key


def verify_signature(public_hex: str, message: bytes, signature_hex: str) -> bool:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    try:
        Ed25519PublicKey.from_public_bytes(bytes.fromhex(public_hex)).verify(bytes.fromhex(signature_hex), message)
        return True
    except (InvalidSignature, ValueError):
        return False


def head_message(head: dict[str, Any]) -> bytes:
    """What a signed tree head's signature is over: its own context, then size, root, time and key."""
    return HEAD_CONTEXT + orjson.dumps([head["size"], head["root"], head["at_us"], head["key_id"]])


def checkpoint_message(cp: dict[str, Any]) -> bytes:
    return SIGNING_CONTEXT + orjson.dumps([cp["first_seq"], cp["seq"], cp["root"], cp["head"], cp["at_us"],
                                           cp["key_id"]])


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
        self._due = False

    def _signing_key(self) -> tuple[Any, str]:
        with self._key_lock:
            return self._load_key()

    def _load_key(self) -> tuple[Any, str]:
        if self._key is None:
            self._key = load_or_create_key(self.key_file)
            public = public_bytes(self._key)
            kid = key_id(public)
            with self.store.engine.begin() as conn:
                if conn.execute(select(audit_keys.c.key_id).where(audit_keys.c.key_id == kid)).first() is None:
                    conn.execute(insert(audit_keys).values(key_id=kid, public_key=public.hex(), created_us=now_us()))
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
                 "count": len(ids) if count is None else count}
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
                # and a writer committing in between would then fail the insert at once instead of waiting
                with self.store.engine.begin() as conn:
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
        """Sign everything since the last checkpoint; None when there is nothing new."""
        key, kid = self._signing_key()
        with self._lock, self.store.engine.begin() as conn:
            last = conn.execute(select(func.max(audit_checkpoints.c.seq))).scalar() or 0
            rows = conn.execute(select(audit.c.seq, audit.c.hash).where(audit.c.seq > last).order_by(audit.c.seq)).all()
            if not rows:
                return None
            cp = {"seq": rows[-1][0], "first_seq": last + 1,
                  "root": merkle_root([bytes.fromhex(h) for _, h in rows]).hex(),
                  "head": rows[-1][1], "at_us": now_us(), "key_id": kid}
            cp["signature"] = key.sign(checkpoint_message(cp)).hex()
            try:
                conn.execute(insert(audit_checkpoints).values(**cp))
            except IntegrityError:  # another process sealed the same range first
                return None
        return cp

    def seal(self) -> dict[str, Any] | None:
        """Sign a tree head over every entry so far; None when nothing came since the last one. Only the
        entries since that head are read and hashed (its frontier holds the rest). A head sealed over a
        base that does not hold together (its frontier not its signed root, entries missing below the
        newest, a head past the log's end) is refused loudly: signing on it would vouch for a forgery.
        Not under the append lock: the unique size settles two sealers, and requests keep being recorded."""
        key, kid = self._signing_key()
        with self.store.engine.begin() as conn:
            last = conn.execute(select(audit_heads).order_by(audit_heads.c.size.desc()).limit(1)).first()
            frontier = _frontier_of(conn, last)
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
            head = {"size": frontier.size, "root": frontier.root().hex(), "at_us": now_us(), "key_id": kid}
            head["signature"] = key.sign(head_message(head)).hex()
            try:
                conn.execute(insert(audit_heads).values(**head, frontier=orjson.dumps(frontier.dumps()).decode()))
            except IntegrityError:  # another process sealed the same size first
                return None
        return head

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


def admin_actor() -> str:
    try:
        return f"admin:{getpass.getuser()}"
    except (KeyError, OSError):
        return "admin:unknown"


# --- verification -----------------------------------------------------------------------------------

@dataclasses.dataclass
class Report:
    entries: int = 0
    checkpoints: int = 0
    unsigned_tail: int = 0
    heads: int = 0  # signed tree heads checked
    unsealed_tail: int = 0  # entries after the last signed tree head
    problems: list[str] = dataclasses.field(default_factory=list)

    @property
    def intact(self) -> bool:
        return not self.problems


def _rows(store: Store, batch: int = 50_000) -> Iterator[tuple[Any, ...]]:
    """(FIELDS..., hash) tuples in sequence order, streamed: a million entries do not sit in memory."""
    cols = ", ".join(f'"{f}"' for f in (*FIELDS, "hash"))
    with store.engine.connect() as conn:
        result = conn.execution_options(stream_results=True, yield_per=batch).exec_driver_sql(
            f"SELECT {cols} FROM audit ORDER BY seq")
        yield from result


def verify(store: Store, trusted_keys: Sequence[str] = (), max_problems: int = 50) -> Report:
    """Walk the whole chain and every checkpoint. With trusted_keys (hex public keys, as published),
    a checkpoint signed by any other key is a problem; without, the keys recorded in the database are
    used (and the report says so)."""
    report = Report()

    def problem(text: str) -> None:
        if len(report.problems) < max_problems:
            report.problems.append(text)

    with store.engine.connect() as conn:
        keys = {r.key_id: r.public_key for r in conn.execute(select(audit_keys))}
        checkpoints = [dict(r._mapping)
                       for r in conn.execute(select(audit_checkpoints).order_by(audit_checkpoints.c.seq))]
        heads = [dict(r._mapping) for r in conn.execute(select(audit_heads).order_by(audit_heads.c.size))]
    trusted = {key_id(bytes.fromhex(k)): k.lower() for k in trusted_keys}
    usable = trusted or keys
    sealed = _Sealed(heads, usable, bool(trusted), problem)
    cp_iter = iter(checkpoints)
    cp = next(cp_iter, None)
    cp_seq = cp["seq"] if cp else None
    expected_first = 1
    range_hashes: list[bytes] = []
    prev_hash, expected_seq = GENESIS, 1
    n_fields = len(FIELDS)
    sha256, dumps = hashlib.sha256, orjson.dumps
    for row in _rows(store):
        report.entries += 1
        seq, stored = row[0], row[n_fields]
        if seq != expected_seq:
            if seq > expected_seq:
                problem(f"entries {expected_seq}..{seq - 1} are missing (deleted)")
            else:
                problem(f"entry {seq} appears out of order after {expected_seq - 1}")
        if row[n_fields - 1] != prev_hash:
            problem(f"entry {seq}: its link to the previous entry is broken (an entry before it was changed, "
                    "removed, inserted or moved)")
        # the same bytes as entry_hash(): the fields in FIELDS order, as a JSON array
        if sha256(dumps(row[:n_fields])).hexdigest() != stored:
            problem(f"entry {seq}: its content does not match its hash (edited)")
        prev_hash, expected_seq = stored, seq + 1
        sealed.add(stored, report)
        while cp is not None and seq > cp_seq:
            problem(f"checkpoint at entry {cp_seq}: that entry is missing")
            cp = next(cp_iter, None)
            cp_seq = cp["seq"] if cp else None
        if cp is None:
            report.unsigned_tail += 1
            continue
        range_hashes.append(bytes.fromhex(stored))
        if seq == cp_seq:
            report.checkpoints += 1
            _check_checkpoint(cp, range_hashes, stored, expected_first, usable, bool(trusted), problem)
            expected_first, range_hashes = cp_seq + 1, []
            cp = next(cp_iter, None)
            cp_seq = cp["seq"] if cp else None
    if cp is not None:
        problem(f"checkpoint at entry {cp['seq']} is signed, but the log ends at entry {expected_seq - 1} "
                "(truncated)")
    sealed.end(report, expected_seq - 1)
    return report


def _frontier_of(conn: Connection, last: Any) -> merkle.Frontier:
    """The frontier kept with the newest head, once it is shown to be that head's: its subtrees cover the
    head's size, give its root, and the head's signature holds. The column itself is not signed."""
    if last is None:
        return merkle.Frontier()
    frontier = merkle.Frontier.loads(last.size, orjson.loads(last.frontier))
    public = conn.execute(select(audit_keys.c.public_key).where(audit_keys.c.key_id == last.key_id)).scalar()
    head = dict(last._mapping)
    if (sum(1 << level for level, _ in frontier.roots) != last.size or frontier.root().hex() != last.root
            or public is None or not verify_signature(public, head_message(head), last.signature)):
        raise TearlineError(f"audit log: the tree head at size {last.size} does not hold together (its frontier, root "
                            "or signature was changed); run `tearline audit verify`", code="audit_tampered")
    return frontier


class _Sealed:
    """The signed tree heads, checked as ``verify`` walks the entries: the tree grows with each entry, and
    where a head was signed its root must be the tree's."""

    def __init__(self, heads: list[dict[str, Any]], keys: dict[str, str], trusted: bool, problem: Any):
        self.heads, self.keys, self.trusted, self.problem = heads, keys, trusted, problem
        self.tree = merkle.Frontier()
        self.next = 0

    def add(self, stored: str, report: Report) -> None:
        self.tree.append(merkle.leaf_hash(bytes.fromhex(stored)))
        report.unsealed_tail += 1
        while self.next < len(self.heads) and self.heads[self.next]["size"] <= self.tree.size:
            head = self.heads[self.next]
            if head["size"] < self.tree.size:  # a size no tree of this log had (0, or below the first entry)
                self.problem(f"tree head at size {head['size']}: no such size in this log (forged)")
            else:
                self._check(head)
                report.heads += 1
                report.unsealed_tail = 0
            self.next += 1

    def _check(self, head: dict[str, Any]) -> None:
        where = f"tree head at size {head['size']}"
        if self.tree.root().hex() != head["root"]:
            self.problem(f"{where}: the first {head['size']} entries are not the ones that were signed "
                         "(history rewritten)")
        public = self.keys.get(head["key_id"])
        if public is None:
            self.problem(f"{where}: signed by key {head['key_id']}, which is not "
                         + ("among the trusted public keys" if self.trusted else "recorded in audit_keys"))
        elif not verify_signature(public, head_message(head), head["signature"]):
            self.problem(f"{where}: the signature does not verify (the head was altered or forged)")

    def end(self, report: Report, last_seq: int) -> None:
        for head in self.heads[self.next:]:
            public = self.keys.get(head["key_id"])
            if public is None or not verify_signature(public, head_message(head), head["signature"]):
                self.problem(f"tree head at size {head['size']}: past the log's end, and its signature does not "
                             "verify (forged)")
            else:
                self.problem(f"tree head at size {head['size']} is signed, but the log holds {self.tree.size} "
                             f"entries, the last numbered {last_seq} (truncated)")


def _check_checkpoint(cp: dict[str, Any], hashes: list[bytes], head: str, expected_first: int,
                      keys: dict[str, str], trusted: bool, problem: Any) -> None:
    where = f"checkpoint at entry {cp['seq']}"
    if cp["first_seq"] != expected_first:
        problem(f"{where}: covers from entry {cp['first_seq']}, "
                f"but the previous checkpoint ended at {expected_first - 1}")
    if cp["head"] != head:
        problem(f"{where}: the chain at entry {cp['seq']} is not the one that was signed (history rewritten)")
    if merkle_root(hashes).hex() != cp["root"]:
        problem(f"{where}: the entries {cp['first_seq']}..{cp['seq']} are not the ones that were signed")
    public = keys.get(cp["key_id"])
    if public is None:
        problem(f"{where}: signed by key {cp['key_id']}, which is not "
                + ("among the trusted public keys" if trusted else "recorded in audit_keys"))
    elif not verify_signature(public, checkpoint_message(cp), cp["signature"]):
        problem(f"{where}: the signature does not verify (the checkpoint was altered or forged)")


# --- member export ------------------------------------------------------------------------------------

def export(log: AuditLog, api_root: str, member: str) -> dict[str, Any]:
    """A member's own entries with inclusion proofs into signed checkpoints, verifiable offline."""
    log.checkpoint()  # seal the tail so every entry has a checkpoint
    store = log.store
    with store.engine.connect() as conn:
        mine = [dict(r._mapping) for r in conn.execute(select(audit).where(and_(
            audit.c.api_root == api_root, audit.c.actor == member)).order_by(audit.c.seq))]
        checkpoints = [dict(r._mapping)
                       for r in conn.execute(select(audit_checkpoints).order_by(audit_checkpoints.c.seq))]
        keys = [dict(r._mapping) for r in conn.execute(select(audit_keys))]
        used: dict[int, dict[str, Any]] = {}
        for entry in mine:
            cp = next(c for c in checkpoints if c["first_seq"] <= entry["seq"] <= c["seq"])
            used[cp["seq"]] = cp
            if "tree" not in cp:  # the checkpoint's tree, built once for all of the member's entries in it
                cp["tree"] = merkle.MemoryNodes([bytes.fromhex(h) for (h,) in conn.execute(
                    select(audit.c.hash).where(audit.c.seq.between(cp["first_seq"], cp["seq"])).order_by(audit.c.seq))])
            size, index = cp["seq"] - cp["first_seq"] + 1, entry["seq"] - cp["first_seq"]
            entry["proof"] = {"checkpoint": cp["seq"], "index": index, "size": size,
                              "path": [h.hex() for h in merkle.inclusion_proof(cp["tree"], index, size)]}
    return {
        "format": "tearline-audit-export/1", "api_root": api_root, "member": member,
        "entries": mine,
        "checkpoints": [{k: v for k, v in cp.items() if k != "tree"} for cp in used.values()],
        "public_keys": [{"key_id": k["key_id"], "public_key": k["public_key"]} for k in keys],
    }


def verify_export(doc: Any, trusted_keys: Sequence[str] = ()) -> Report:
    report = Report()
    if not isinstance(doc, dict) or doc.get("format") != "tearline-audit-export/1":
        raise BadRequest("not a Tearline audit export (format tearline-audit-export/1)")
    keys = {key_id(bytes.fromhex(k)): k for k in trusted_keys} or \
        {k["key_id"]: k["public_key"] for k in doc.get("public_keys", [])}
    if not trusted_keys:
        # a file that carries its own keys proves nothing about who signed it: whoever forged the entries
        # would sign them with a key of their own and put that key in the file
        report.problems.append("no trusted public key given: the signatures were checked only against the keys "
                               "inside the file, which whoever wrote it chose; check it against the hub's "
                               "published key (tearline audit key)")
    checkpoints = {cp["seq"]: cp for cp in doc.get("checkpoints", [])}
    for cp in checkpoints.values():
        report.checkpoints += 1
        public = keys.get(cp["key_id"])
        if public is None or not verify_signature(public, checkpoint_message(cp), cp["signature"]):
            report.problems.append(f"checkpoint at entry {cp['seq']}: the signature does not verify with "
                                   + ("the trusted key" if trusted_keys else "the keys in the file"))
    for entry in doc.get("entries", []):
        report.entries += 1
        seq = entry.get("seq")
        try:
            if entry_hash(entry) != entry["hash"]:
                report.problems.append(f"entry {seq}: its content does not match its hash (edited)")
                continue
            proof = entry["proof"]
            cp = checkpoints[proof["checkpoint"]]
            if proof["size"] != cp["seq"] - cp["first_seq"] + 1 or not in_tree(
                    bytes.fromhex(entry["hash"]), proof["index"], proof["size"], proof["path"], cp["root"]):
                report.problems.append(f"entry {seq}: not in the signed checkpoint at entry {cp['seq']}")
        except (KeyError, ValueError, TypeError) as exc:
            report.problems.append(f"entry {seq}: malformed ({exc})")
    return report
