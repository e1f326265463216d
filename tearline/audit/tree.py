"""The audit log's Merkle tree as members see it: the signed tree heads, a consistency proof between two of
the hub's trees (signed, so that a hub which rewrote its history contradicts, under its own key, a head it
signed before), and inclusion proofs of a member's own entries.

Proofs read stored nodes (``audit_nodes``: every perfect subtree of 2^NODE_LEVEL entries or more, stored as
sealing completes it) and hash at most a few blocks of 2^NODE_LEVEL entries, so a proof over millions of
entries costs a few dozen reads, not a pass over the log.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson
from sqlalchemy import Connection, select
from sqlalchemy.dialects import postgresql, sqlite

from .. import merkle
from ..errors import BadRequest, NotFound, TearlineError, Unavailable
from ..store import Store, now_us
from ..store.schema import audit, audit_heads, audit_keys, audit_nodes
from .signing import consistency_message, head_message, verify_signature

NODE_LEVEL = 8  # subtrees of 256 entries and up are stored: about one row per 128 entries
HEAD_FIELDS = ("size", "root", "at_us", "key_id", "signature")
PAGE = 100  # a member's entries per page of inclusion proofs


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


class StoredNodes:
    """``merkle.Nodes`` from the database: a stored node when the subtree is large, else hashed from its block
    of entries (read once per block). A node not stored (history sealed before nodes were kept, until the next
    seal fills it in: ``fill_nodes``) is made from its halves, so proofs stay right, only slower."""

    def __init__(self, conn: Connection):
        self.conn = conn
        self._blocks: dict[int, merkle.MemoryNodes] = {}
        self._nodes: dict[tuple[int, int], bytes] = {}

    def __call__(self, level: int, index: int) -> bytes:
        if level < NODE_LEVEL:
            first = index << level
            block = first >> NODE_LEVEL
            try:
                return self._block(block)(level, (first - (block << NODE_LEVEL)) >> level)
            except IndexError:  # the block ends before entries a signed head covers: they were cut off
                raise _broken(f"entries up to {(index + 1) << level} are signed but missing") from None
        found = self._nodes.get((level, index))
        if found is None:
            stored = self.conn.execute(select(audit_nodes.c.hash).where(
                audit_nodes.c.level == level, audit_nodes.c.idx == index)).scalar()
            if stored is not None:
                found = bytes.fromhex(stored)
            elif level == NODE_LEVEL:
                found = self._block(index)(NODE_LEVEL, 0)
            else:
                found = merkle.node_hash(self(level - 1, 2 * index), self(level - 1, 2 * index + 1))
            self._nodes[(level, index)] = found
        return found

    def _block(self, block: int) -> merkle.MemoryNodes:
        if block not in self._blocks:
            first = (block << NODE_LEVEL) + 1  # entries are numbered from 1; leaves from 0
            rows = self.conn.execute(select(audit.c.seq, audit.c.hash).where(
                audit.c.seq.between(first, first + (1 << NODE_LEVEL) - 1)).order_by(audit.c.seq)).all()
            if any(seq != first + i for i, (seq, _h) in enumerate(rows)):
                raise _broken(f"entries are missing between {first} and {first + len(rows)}")
            self._blocks[block] = merkle.MemoryNodes([bytes.fromhex(h) for _seq, h in rows])
        return self._blocks[block]


def _broken(what: str) -> Unavailable:
    """The log does not hold together where a member's proof needs it: the member is told, and no proof is made
    (the operator's `tearline audit verify` says what happened)."""
    return Unavailable(f"the hub's audit log does not hold together ({what}); its operator must run "
                       "`tearline audit verify`", code="audit_tampered")


def fill_nodes(conn: Connection, last: Any) -> None:
    """Store the nodes of history sealed before nodes were kept (a log from before this was added): once, on
    the first seal after the upgrade, in batches, checked against the newest head's signed root, so that no
    member's proof has to hash the old log. Entries that do not give that root store nothing."""
    if last is None or last.size < (1 << NODE_LEVEL):
        return
    probe = (last.size >> NODE_LEVEL) - 1  # the last full block under the head: stored once the rest are
    if conn.execute(select(audit_nodes.c.idx).where(audit_nodes.c.level == NODE_LEVEL,
                                                    audit_nodes.c.idx == probe)).first() is not None:
        return
    rebuilt = merkle.Frontier(keep_from=NODE_LEVEL)
    while rebuilt.size < last.size:
        batch = conn.execute(select(audit.c.seq, audit.c.hash).where(audit.c.seq > rebuilt.size,
                                                                     audit.c.seq <= last.size)
                             .order_by(audit.c.seq).limit(50_000)).all()
        for seq, digest in batch:
            if seq != rebuilt.size + 1:
                raise _broken(f"entry {rebuilt.size + 1} is missing")
            rebuilt.append(merkle.leaf_hash(bytes.fromhex(digest)))
        if not batch:
            raise _broken(f"the log ends at entry {rebuilt.size}, below its head at {last.size}")
        store_nodes(conn, rebuilt.completed)
    if rebuilt.root().hex() != last.root:
        raise TearlineError(f"audit log: the first {last.size} entries are not the ones the head at that size signed; "
                            "run `tearline audit verify`", code="audit_tampered")


def store_nodes(conn: Connection, completed: list[tuple[int, int, bytes]]) -> None:
    """Keep the nodes a seal completed. Two processes sealing at once store some of the same nodes (the same
    entries make the same hashes), so a node already there is left as it is."""
    if not completed:
        return
    rows = [{"level": level, "idx": idx, "hash": h.hex()} for level, idx, h in completed]
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    conn.execute(dialect.insert(audit_nodes).on_conflict_do_nothing(), rows)
    completed.clear()


def frontier_of(conn: Connection, last: Any) -> merkle.Frontier:
    """The frontier kept with the newest head, once it is shown to be that head's: its subtrees cover the
    head's size, give its root, and the head's signature holds. The column itself is not signed."""
    if last is None:
        return merkle.Frontier(keep_from=NODE_LEVEL)
    public = conn.execute(select(audit_keys.c.public_key).where(audit_keys.c.key_id == last.key_id)).scalar()
    head = dict(last._mapping)
    try:
        frontier = merkle.Frontier.loads(last.size, orjson.loads(last.frontier or "null"), NODE_LEVEL)
    except (TypeError, ValueError, orjson.JSONDecodeError):
        frontier = None
    if (frontier is None or sum(1 << level for level, _ in frontier.roots) != last.size
            or frontier.root().hex() != last.root or public is None
            or not verify_signature(public, head_message(head), last.signature)):
        raise TearlineError(f"audit log: the tree head at size {last.size} does not hold together (its frontier, root "
                            "or signature was changed); run `tearline audit verify`", code="audit_tampered")
    return frontier


def _head(row: Any) -> dict[str, Any]:
    return {f: getattr(row, f) for f in HEAD_FIELDS}


def latest_head(store: Store) -> dict[str, Any] | None:
    with store.engine.connect() as conn:
        row = conn.execute(select(*(audit_heads.c[f] for f in HEAD_FIELDS))
                           .order_by(audit_heads.c.size.desc()).limit(1)).first()
    return _head(row) if row else None


def head_at(conn: Connection, size: int | None) -> dict[str, Any]:
    """The signed head at ``size`` (None: the newest); NotFound when the hub signed none there."""
    query = select(*(audit_heads.c[f] for f in HEAD_FIELDS))
    query = (query.order_by(audit_heads.c.size.desc()).limit(1) if size is None
             else query.where(audit_heads.c.size == size))
    row = conn.execute(query).first()
    if row is None:
        raise NotFound("the audit log has no signed tree head yet" if size is None
                       else f"no signed tree head at size {size}", code="no_tree_head")
    return _head(row)


def signed_head(store: Store, size: int | None) -> dict[str, Any]:
    with store.engine.connect() as conn:
        return head_at(conn, size)


def heads(store: Store, after: int = 0, limit: int = PAGE) -> list[dict[str, Any]]:
    """Signed heads above size ``after``, smallest first."""
    with store.engine.connect() as conn:
        return [_head(r) for r in conn.execute(select(*(audit_heads.c[f] for f in HEAD_FIELDS))
                                               .where(audit_heads.c.size > after)
                                               .order_by(audit_heads.c.size).limit(limit))]


def consistency(store: Store, signer: Any, first: int, second: int | None = None) -> dict[str, Any]:
    """The hub's signed word that its tree at ``second`` (a signed head; None: the newest) extends its tree of
    ``first`` entries, with the RFC 6962 proof. ``first_root`` is the root of the first ``first`` entries as
    the log holds them now: if history was rewritten it differs from the root signed back then, and the two
    signatures are the evidence. ``signer`` is the hub's (key, key id)."""
    with store.engine.connect() as conn:
        head = head_at(conn, second)
        if not 1 <= first <= head["size"]:
            raise BadRequest(f"first={first}: a consistency proof runs from a size of 1 or more up to the second "
                             f"tree's {head['size']}", details={"first": first, "second": head["size"]})
        nodes = StoredNodes(conn)
        proof = merkle.consistency_proof(nodes, first, head["size"]) if first < head["size"] else []
        first_root = merkle.root(nodes, first)
    key, kid = signer
    statement = {"first": first, "first_root": first_root.hex(), "second": head["size"], "second_root": head["root"],
                 "proof": [p.hex() for p in proof], "at_us": now_us(), "key_id": kid}
    statement["signature"] = key.sign(consistency_message(statement)).hex()
    return {"head": head, "consistency": statement}


def own_entries(store: Store, api_root: str, member: str, after: int = 0, size: int | None = None,
                limit: int = PAGE) -> dict[str, Any]:
    """A member's own entries after ``after``, each with an inclusion proof into the signed head at ``size``
    (None: the newest). Entries after that head are left for a later head."""
    with store.engine.connect() as conn:
        head = head_at(conn, size)
        rows = conn.execute(select(audit).where(audit.c.api_root == api_root, audit.c.actor == member,
                                                audit.c.seq > after, audit.c.seq <= head["size"])
                            .order_by(audit.c.seq).limit(limit + 1)).all()
        nodes = StoredNodes(conn)
        entries = []
        for row in rows[:limit]:
            entry = {str(k): v for k, v in row._mapping.items()}  # orjson takes exact str keys only
            entry["proof"] = {"size": head["size"], "index": entry["seq"] - 1,
                              "path": [h.hex() for h in merkle.inclusion_proof(nodes, entry["seq"] - 1, head["size"])]}
            entries.append(entry)
    return {"head": head, "entries": entries, "more": len(rows) > limit}
