"""Merkle trees as RFC 6962 and RFC 9162 define them: the tree hash of a list of entries, inclusion proofs
(an entry is in the tree of size n) and consistency proofs (the tree of size n extends the tree of size m
and changed none of its entries), and their verification.

The hashes of the tree's inner nodes come from a ``Nodes`` source, so that a proof over a log of millions
of entries reads O(log² n) stored nodes instead of hashing every entry: a perfect subtree (2^level
entries starting at a multiple of 2^level) is looked up; any other range is split as the RFCs split it.
``MemoryNodes`` computes them from a list of leaves (tests, small exports); tearline.audit keeps them in
the database.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence

EMPTY = hashlib.sha256(b"").digest()


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two smaller than n (n > 1)."""
    return 1 << ((n - 1).bit_length() - 1)


# A perfect subtree's hash: (level, index) → the hash of leaves [index·2^level, (index+1)·2^level)
Nodes = Callable[[int, int], bytes]


class MemoryNodes:
    """The nodes of the tree over ``leaves`` (the entries themselves, hashed here as leaves)."""

    def __init__(self, leaves: Sequence[bytes]):
        self.levels = [[leaf_hash(x) for x in leaves]]
        while len(self.levels[-1]) > 1:
            below = self.levels[-1]
            self.levels.append([node_hash(below[i], below[i + 1]) for i in range(0, len(below) - 1, 2)])

    def __call__(self, level: int, index: int) -> bytes:
        return self.levels[level][index]


def range_hash(nodes: Nodes, start: int, end: int) -> bytes:
    """MTH of the leaves [start, end), where start is a multiple of the largest power of two below the
    range's size (true of every range the RFCs' recursion visits)."""
    size = end - start
    if size == 0:
        return EMPTY
    if size & (size - 1) == 0:
        level = size.bit_length() - 1
        return nodes(level, start >> level)
    k = _split(size)
    return node_hash(range_hash(nodes, start, start + k), range_hash(nodes, start + k, end))


def root(nodes: Nodes, size: int) -> bytes:
    return range_hash(nodes, 0, size)


def inclusion_proof(nodes: Nodes, index: int, size: int) -> list[bytes]:
    """RFC 6962 §2.1.1 PATH(index, D[size]): the sibling hashes from the leaf up to the root."""
    if not 0 <= index < size:
        raise ValueError(f"leaf {index} is not in a tree of {size}")
    proof: list[bytes] = []
    start, end = 0, size
    while end - start > 1:
        k = _split(end - start)
        if index < start + k:
            proof.append(range_hash(nodes, start + k, end))
            end = start + k
        else:
            proof.append(range_hash(nodes, start, start + k))
            start += k
    return proof[::-1]


def consistency_proof(nodes: Nodes, old: int, new: int) -> list[bytes]:
    """RFC 6962 §2.1.2 PROOF(old, D[new]): what shows the tree of size ``new`` extends that of size ``old``."""
    if not 0 < old <= new:
        raise ValueError(f"no consistency proof from a tree of {old} to one of {new}")
    proof: list[bytes] = []
    start, end, m, whole = 0, new, old, True
    while True:
        if m == end - start:
            if not whole:
                proof.append(range_hash(nodes, start, end))
            break
        k = _split(end - start)
        if m <= k:
            proof.append(range_hash(nodes, start + k, end))
            end = start + k
        else:
            proof.append(range_hash(nodes, start, start + k))
            start, m, whole = start + k, m - k, False
    return proof[::-1]


def verify_inclusion(leaf: bytes, index: int, size: int, proof: Sequence[bytes], expected: bytes) -> bool:
    """RFC 9162 §2.1.3.2: does ``proof`` put the entry ``leaf`` (not yet hashed) at ``index`` of the tree of
    ``size`` whose root is ``expected``?"""
    return verify_inclusion_hash(leaf_hash(leaf), index, size, proof, expected)


def verify_inclusion_hash(hashed: bytes, index: int, size: int, proof: Sequence[bytes], expected: bytes) -> bool:
    """``verify_inclusion`` for a leaf given by its leaf hash."""
    if not 0 <= index < size:
        return False
    fn, sn, r = index, size - 1, hashed
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = node_hash(r, p)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and r == expected


def verify_consistency(old: int, new: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]) -> bool:
    """RFC 9162 §2.1.4.2: does ``proof`` show the tree (new, new_root) extends the tree (old, old_root)?"""
    if old > new or old < 0:
        return False
    if old == new:
        return old_root == new_root and not proof
    if old == 0:
        return not proof  # every tree extends the empty one
    steps = list(proof)
    if old & (old - 1) == 0:  # the old tree is a perfect subtree of the new one: its root is the first step
        steps.insert(0, old_root)
    if not steps:
        return False
    fn, sn = old - 1, new - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = steps[0]
    for c in steps[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr, sr = node_hash(c, fr), node_hash(c, sr)
            while not fn & 1 and fn:
                fn, sn = fn >> 1, sn >> 1
        else:
            sr = node_hash(sr, c)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and fr == old_root and sr == new_root


class Frontier:
    """The roots of the perfect subtrees that together cover a tree's leaves, largest first (at most one per
    level): enough to append leaves and to compute the tree hash without the leaves before them, so that a
    log of millions of entries is sealed by hashing only what came since the last seal."""

    def __init__(self, size: int = 0, roots: Sequence[tuple[int, bytes]] = (), keep_from: int | None = None):
        self.size = size
        self.roots = list(roots)
        # the perfect subtrees of 2^keep_from leaves or more completed by appends, as (level, index, hash),
        # for whoever stores them (None: keep none)
        self.keep_from = keep_from
        self.completed: list[tuple[int, int, bytes]] = []

    def append(self, hashed: bytes) -> None:
        """Add a leaf given by its leaf hash."""
        self.size += 1
        level, h = 0, hashed
        while self.roots and self.roots[-1][0] == level:
            _, left = self.roots.pop()
            level, h = level + 1, node_hash(left, h)
            if self.keep_from is not None and level >= self.keep_from:
                self.completed.append((level, (self.size >> level) - 1, h))
        self.roots.append((level, h))

    def root(self) -> bytes:
        if not self.roots:
            return EMPTY
        r = self.roots[-1][1]
        for _, h in reversed(self.roots[:-1]):
            r = node_hash(h, r)
        return r

    def dumps(self) -> list[list[int | str]]:
        return [[level, h.hex()] for level, h in self.roots]

    @classmethod
    def loads(cls, size: int, data: Sequence[Sequence[int | str]], keep_from: int | None = None) -> Frontier:
        return cls(size, [(int(level), bytes.fromhex(str(h))) for level, h in data], keep_from)
