"""Merkle trees: the published RFC 6962 test vectors (Certificate Transparency's reference test data),
and agreement with an independent implementation (pymerkle) on trees of every size up to 70."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pymerkle import InmemoryTree

from tearline import merkle

# The inputs and roots of Certificate Transparency's reference tests (RFC 6962 §2.1): leaf i of the tree
# of size n+1 is LEAVES[i], and ROOTS[n] is that tree's hash.
LEAVES = [bytes.fromhex(h) for h in ("", "00", "10", "2021", "3031", "40414243", "5051525354555657",
                                     "606162636465666768696a6b6c6d6e6f")]
ROOTS = ["6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
         "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
         "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
         "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
         "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
         "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
         "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
         "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"]
# (old size, new size, proof) from the same test data
CONSISTENCY = [
    (1, 8, ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"]),
    (6, 8, ["0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
    (2, 5, ["5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"]),
]
INCLUSION = [
    (0, 8, ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"]),
    (5, 8, ["bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
]


def test_the_empty_tree_is_the_hash_of_nothing() -> None:
    assert merkle.root(merkle.MemoryNodes([]), 0) == hashlib.sha256(b"").digest()


@pytest.mark.parametrize("size", range(1, 9))
def test_roots_are_the_published_ones(size: int) -> None:
    assert merkle.root(merkle.MemoryNodes(LEAVES[:size]), size).hex() == ROOTS[size - 1]


@pytest.mark.parametrize(("old", "new", "expected"), CONSISTENCY)
def test_consistency_proofs_are_the_published_ones_and_verify(old: int, new: int, expected: list[str]) -> None:
    proof = merkle.consistency_proof(merkle.MemoryNodes(LEAVES), old, new)
    assert [p.hex() for p in proof] == expected
    old_root, new_root = bytes.fromhex(ROOTS[old - 1]), bytes.fromhex(ROOTS[new - 1])
    assert merkle.verify_consistency(old, new, old_root, new_root, proof)
    assert not merkle.verify_consistency(old, new, old_root, new_root, proof[:-1])  # too short
    flipped = bytes([new_root[0] ^ 1]) + new_root[1:]
    assert not merkle.verify_consistency(old, new, old_root, flipped, proof)
    assert not merkle.verify_consistency(new, old, new_root, old_root, proof)  # a tree that shrank


@pytest.mark.parametrize(("index", "size", "expected"), INCLUSION)
def test_inclusion_proofs_are_the_published_ones_and_verify(index: int, size: int, expected: list[str]) -> None:
    proof = merkle.inclusion_proof(merkle.MemoryNodes(LEAVES), index, size)
    assert [p.hex() for p in proof] == expected
    assert merkle.verify_inclusion(LEAVES[index], index, size, proof, bytes.fromhex(ROOTS[size - 1]))
    assert not merkle.verify_inclusion(LEAVES[index], index + 1, size, proof, bytes.fromhex(ROOTS[size - 1]))


def test_an_inclusion_proof_from_a_real_log_verifies() -> None:
    # Certificate Transparency's reference test: entry 848,049 of a log of 3,630,887 (leaf given by hash)
    path = ["1a208aeebcd1b39fe2de247ee8db9454e1e93a312d206b87f6ca9cc6ec6f1ddd",
            "0a1b78b383f580856f433c01a5741e160d451c185910027f6cc9f828687a40c4",
            "3d1745789bc63f2da15850de1c12a5bf46ed81e1cc90f086148b1662e79aab3d",
            "9095b61e14d8990acf390905621e62b1714fb8e399fbb71de5510e0aef45affe",
            "0a332b91b8fab564e6afd1dd452449e04619b18accc0ff9aa8393cd4928451f2",
            "2336f0181d264aed6d8f3a6507ca14a8d3b3c3a23791ac263e845d208c1ee330",
            "b4ce56e300590500360c146c6452edbede25d4ed83919278749ee5dbe178e048",
            "933f6ddc848ea562e4f9c5cfb5f176941301dad0c6fdb9d1fbbe34fac1be6966",
            "b95a6222958a86f74c030be27c44f57dbe313e5e7c7f4ffb98bcbd3a03bb52f2",
            "daeeb3ce5923defd0faeb8e0c210b753b85b809445d7d3d3cd537a9aabaa9c45",
            "7fadd0a13e9138a2aa6c3fdec4e2275af233b94812784f66bcca9aa8e989f2bc",
            "1864e6ba3e32878610546539734fb5eeae2529991f130c575c73a7e25a2a7c56",
            "12842d1202b1dc6828a17ab253c02e7ce9409b5192430feba44189f39cc02d66",
            "29af64b16fa3053c13d02ac63aa75b23aa468506e44c3a2315edc85d2dc22b11",
            "b527b99934a0bd9edd154e449b0502e2c499bba783f3bc3dfe23364b6b532009",
            "4584db8ae8e351ace08e01f306378a92bfd43611714814f3d834a2842d69faa8",
            "86a9a41573b0d6e4292f01e93243d6cc65b30f06606fc6fa57390e7e90ed580f",
            "a88b98fbe84d4c6aae8db9d1605dfac059d9f03fe0fcb0d5dff1295dacba09e6",
            "06326dc617a6d1f7021dc536026dbfd5fffc6f7c5531d48ef6ccd1ed1569f2a1",
            "f41fe8fdc3a2e4e8345e30216e7ebecffee26ff266eeced208a6c2a3cf08f960",
            "40cf5bde8abb76983f3e98ba97aa36240402975674e120f234b3448911090f8d",
            "b3222dc8658538079883d980d7fdc2bef9285344ea34338968f736b04aeb387a"]
    leaf = bytes.fromhex("7a395c866d5ecdb0cccb623e011dbc392cd348d1d1d72776174e127a24b09c78")
    root = bytes.fromhex("78316a05c9bcf14a3a4548f5b854a9adfcd46a4c034401b3ce7eb7ac2f1d0ecb")
    steps = [bytes.fromhex(p) for p in path]
    assert merkle.verify_inclusion_hash(leaf, 848049, 3630887, steps, root)
    assert not merkle.verify_inclusion_hash(leaf, 848050, 3630887, steps, root)


def _pymerkle(entries: list[bytes]) -> InmemoryTree:
    tree = InmemoryTree(algorithm="sha256")
    for e in entries:
        tree.append_entry(e)
    return tree


@given(st.lists(st.binary(max_size=40), min_size=1, max_size=70))
def test_roots_agree_with_an_independent_implementation_and_proofs_verify_against_them(entries: list[bytes]) -> None:
    # pymerkle's proofs are in its own format; what is compared is the tree hash of every size, and our
    # proofs are checked against pymerkle's roots
    theirs = _pymerkle(entries)
    ours = merkle.MemoryNodes(entries)
    n = len(entries)
    for size in range(1, n + 1):
        assert merkle.root(ours, size) == theirs.get_root(size)
    for old in range(1, n + 1):
        proof = merkle.consistency_proof(ours, old, n)
        assert merkle.verify_consistency(old, n, theirs.get_root(old), theirs.get_root(n), proof)
    for index in range(n):
        proof = merkle.inclusion_proof(ours, index, n)
        assert merkle.verify_inclusion(entries[index], index, n, proof, theirs.get_root(n))
        assert not merkle.verify_inclusion(entries[index] + b"x", index, n, proof, theirs.get_root(n))


@given(st.lists(st.binary(max_size=8), max_size=70))
def test_a_frontier_grows_to_the_same_root(entries: list[bytes]) -> None:
    frontier = merkle.Frontier()
    ours = merkle.MemoryNodes(entries)
    for n, entry in enumerate(entries, 1):
        frontier.append(merkle.leaf_hash(entry))
        again = merkle.Frontier.loads(frontier.size, frontier.dumps())
        assert frontier.root() == again.root() == merkle.root(ours, n)
        assert len(frontier.roots) == bin(n).count("1")


def test_the_edges_of_proofs() -> None:
    nodes = merkle.MemoryNodes(LEAVES)
    r5, r8 = merkle.root(nodes, 5), merkle.root(nodes, 8)
    assert merkle.verify_consistency(8, 8, r8, r8, []) and not merkle.verify_consistency(8, 8, r8, r5, [])
    assert not merkle.verify_consistency(8, 8, r8, r8, [r8])  # equal sizes take no proof
    assert merkle.verify_consistency(0, 8, merkle.EMPTY, r8, []) and not merkle.verify_consistency(0, 8, r8, r8, [r8])
    long = merkle.consistency_proof(nodes, 5, 8) + [r8]
    assert not merkle.verify_consistency(5, 8, r5, r8, long)
    path = merkle.inclusion_proof(nodes, 3, 8)
    assert not merkle.verify_inclusion(LEAVES[3], 3, 8, [*path, r8], r8)
    assert not merkle.verify_inclusion(LEAVES[3], 8, 8, path, r8) and not merkle.verify_inclusion(LEAVES[3], -1, 8, path, r8)
    for bad in ((0, 8), (9, 8), (-1, 8)):
        with pytest.raises(ValueError):
            merkle.consistency_proof(nodes, *bad)
    with pytest.raises(ValueError):
        merkle.inclusion_proof(nodes, 8, 8)
