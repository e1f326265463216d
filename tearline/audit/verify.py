"""Checking the whole audit trail: the chain, every checkpoint, every signed tree head and the stored nodes
of the tree, in one pass over the entries."""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Iterator, Sequence
from typing import Any

import orjson
from sqlalchemy import select

from .. import merkle
from ..store import Store
from ..store.schema import audit_checkpoints, audit_heads, audit_keys, audit_nodes
from .log import FIELDS, GENESIS
from .signing import checkpoint_message, head_message, key_id, verify_signature
from .tree import NODE_LEVEL, merkle_root


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
    """(FIELDS..., nonce, hash) tuples in sequence order, streamed: a million entries do not sit in memory."""
    cols = ", ".join(f'"{f}"' for f in (*FIELDS, "nonce", "hash"))
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
        nodes = {(r.level, r.idx): r.hash for r in conn.execute(select(audit_nodes))}
    trusted = {key_id(bytes.fromhex(k)): k.lower() for k in trusted_keys}
    usable = trusted or keys
    sealed = _Sealed(heads, nodes, usable, bool(trusted), problem)
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
        seq, nonce, stored = row[0], row[n_fields], row[n_fields + 1]
        if seq != expected_seq:
            if seq > expected_seq:
                problem(f"entries {expected_seq}..{seq - 1} are missing (deleted)")
            else:
                problem(f"entry {seq} appears out of order after {expected_seq - 1}")
        if row[n_fields - 1] != prev_hash:
            problem(f"entry {seq}: its link to the previous entry is broken (an entry before it was changed, "
                    "removed, inserted or moved)")
        # the same bytes as entry_hash(): the fields in FIELDS order, as a JSON array
        if sha256(dumps(row[:n_fields] if nonce is None else row[:n_fields + 1])).hexdigest() != stored:
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


class _Sealed:
    """The signed tree heads, checked as ``verify`` walks the entries: the tree grows with each entry, and
    where a head was signed its root must be the tree's."""

    def __init__(self, heads: list[dict[str, Any]], nodes: dict[tuple[int, int], str], keys: dict[str, str],
                 trusted: bool, problem: Any):
        self.heads, self.nodes, self.keys, self.trusted, self.problem = heads, nodes, keys, trusted, problem
        self.tree = merkle.Frontier(keep_from=NODE_LEVEL)
        self.next = 0

    def add(self, stored: str, report: Report) -> None:
        self.tree.append(merkle.leaf_hash(bytes.fromhex(stored)))
        report.unsealed_tail += 1
        if self.tree.completed:
            # a node members' proofs are made of must be the entries' (a changed one fails their proofs)
            for level, idx, digest in self.tree.completed:
                kept = self.nodes.pop((level, idx), None)
                if kept is not None and kept != digest.hex():
                    self.problem(f"stored tree node at level {level}, index {idx} (entries {(idx << level) + 1}.."
                                 f"{(idx + 1) << level}) is not the hash of those entries (altered)")
            self.tree.completed.clear()
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
        for level, idx in sorted(self.nodes):
            self.problem(f"stored tree node at level {level}, index {idx} covers entries up to {(idx + 1) << level}, "
                         f"past the log's end at {last_seq} (truncated or forged)")
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


