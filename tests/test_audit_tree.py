"""The audit log's tree as members see it: proofs made from the stored nodes are the RFC's proofs and verify
against the signed heads, without reading the whole log; a log sealed before nodes were stored still gets
right proofs; `audit verify` checks the stored nodes; an entry's nonce makes its hash unguessable."""

from __future__ import annotations

import hashlib
import random
from pathlib import Path

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, func, insert, select, update

from tearline import audit, merkle
from tearline.audit import tree
from tearline.errors import BadRequest, NotFound
from tearline.store import Store
from tearline.store.schema import audit as audit_table
from tearline.store.schema import audit_heads, audit_nodes

SEALS = (100, 256, 300, 700, 1024, 1301)  # sizes sealed at, on and off the stored subtrees' boundaries


def _append(lg: audit.AuditLog, n: int, actor: str = "state-a") -> None:
    with lg.store.engine.begin() as conn:  # one transaction: a thousand entries in a second
        for i in range(n):
            lg.append(actor=actor, api_root="isis-k", method="GET", endpoint="/taxii2/", path="/taxii2/",
                      query={"n": str(i)}, conn=conn)


@pytest.fixture
def grown(store: Store, tmp_path: Path) -> tuple[audit.AuditLog, list[bytes]]:
    """A log sealed at each size in SEALS, and its entry hashes."""
    lg = audit.AuditLog(store, tmp_path / "audit.key", checkpoint_every=10**9)
    for size in SEALS:
        with store.engine.connect() as conn:
            have = conn.execute(select(func.count()).select_from(audit_table)).scalar_one()
        _append(lg, size - have, actor=("state-a", "state-b")[size % 2])
        assert lg.seal()["size"] == size
    with store.engine.connect() as conn:
        hashes = [bytes.fromhex(h) for (h,) in conn.execute(select(audit_table.c.hash).order_by(audit_table.c.seq))]
    return lg, hashes


def _roots(store: Store) -> dict[int, bytes]:
    with store.engine.connect() as conn:
        return {s: bytes.fromhex(r) for s, r in conn.execute(select(audit_heads.c.size, audit_heads.c.root))}


def test_sealing_stores_every_large_subtree_once_and_only_the_newest_frontier(grown: tuple[audit.AuditLog, list[bytes]]) -> None:
    lg, hashes = grown
    memory = merkle.MemoryNodes(hashes)
    with lg.store.engine.connect() as conn:
        stored = {(lv, i): h for lv, i, h in conn.execute(select(audit_nodes.c.level, audit_nodes.c.idx, audit_nodes.c.hash))}
        frontiers = [f for (f,) in conn.execute(select(audit_heads.c.frontier).order_by(audit_heads.c.size))]
    expected = {(lv, i) for lv in range(tree.NODE_LEVEL, 11) for i in range(1301 >> lv)}
    assert set(stored) == expected  # 256·5, 512·2, 1024·1 entries: 8 nodes for 1,301 entries
    assert all(bytes.fromhex(h) == memory(lv, i) for (lv, i), h in stored.items())
    assert frontiers[:-1] == [None] * (len(SEALS) - 1) and frontiers[-1] is not None


def test_proofs_from_stored_nodes_are_the_rfc_proofs_and_verify_against_signed_heads(
        grown: tuple[audit.AuditLog, list[bytes]]) -> None:
    lg, hashes = grown
    memory, roots = merkle.MemoryNodes(hashes), _roots(lg.store)
    pick = random.Random(5)
    with lg.store.engine.connect() as conn:
        for new in SEALS:
            for old in {1, 255, 256, 257, new, *(pick.randint(1, new) for _ in range(25))}:
                if old > new:
                    continue
                nodes = tree.StoredNodes(conn)
                proof = merkle.consistency_proof(nodes, old, new) if old < new else []
                assert proof == (merkle.consistency_proof(memory, old, new) if old < new else [])
                assert merkle.verify_consistency(old, new, merkle.root(memory, old), roots[new], proof)
                # a consistency proof reads stored nodes and at most the blocks at the two edges
                assert len(nodes._blocks) <= 2
            for index in {0, new - 1, *(pick.randrange(new) for _ in range(25))}:
                path = merkle.inclusion_proof(tree.StoredNodes(conn), index, new)
                assert merkle.verify_inclusion(hashes[index], index, new, path, roots[new])


def test_a_log_sealed_before_nodes_were_stored_still_gets_right_proofs(grown: tuple[audit.AuditLog, list[bytes]]) -> None:
    lg, hashes = grown
    with lg.store.engine.begin() as conn:
        conn.execute(delete(audit_nodes))
    roots = _roots(lg.store)
    with lg.store.engine.connect() as conn:
        proof = merkle.consistency_proof(tree.StoredNodes(conn), 300, 1301)
    assert merkle.verify_consistency(300, 1301, roots[300], roots[1301], proof)
    assert audit.verify(lg.store).intact  # nodes are optional; a wrong one is not (below)


def test_verify_names_a_stored_node_that_is_not_its_entries(grown: tuple[audit.AuditLog, list[bytes]]) -> None:
    lg, _hashes = grown
    with lg.store.engine.begin() as conn:
        conn.execute(update(audit_nodes).where(audit_nodes.c.level == 9, audit_nodes.c.idx == 1)
                     .values(hash="ab" * 32))
        conn.execute(insert(audit_nodes).values(level=8, idx=99, hash="cd" * 32))
    found = audit.verify(lg.store).problems
    assert "stored tree node at level 9, index 1 (entries 513..1024) is not the hash of those entries (altered)" in found
    assert any("level 8, index 99 covers entries up to 25600, past the log's end at 1301" in p for p in found)


def test_a_signed_consistency_proof_names_the_root_the_log_has_now(grown: tuple[audit.AuditLog, list[bytes]]) -> None:
    lg, _hashes = grown
    roots = _roots(lg.store)
    answer = tree.consistency(lg.store, lg.signer(), 300, 1024)
    statement = answer["consistency"]
    assert statement["first_root"] == roots[300].hex() and statement["second_root"] == roots[1024].hex()
    public = lg.public_keys()[0]["public_key"]
    assert audit.verify_signature(public, audit.consistency_message(statement), statement["signature"])
    # the statement's kind is part of what is signed: it cannot pass for a tree head, nor a head for it
    assert not audit.verify_signature(public, audit.head_message({
        "size": 300, "root": statement["first_root"], "at_us": statement["at_us"], "key_id": statement["key_id"]}),
        statement["signature"])
    with pytest.raises(NotFound, match="no signed tree head at size 1000"):
        tree.consistency(lg.store, lg.signer(), 3, 1000)
    with pytest.raises(BadRequest, match="first=1025"):
        tree.consistency(lg.store, lg.signer(), 1025, 1024)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(after=st.integers(0, 1400), size=st.sampled_from(SEALS))
def test_a_member_gets_only_its_own_entries_each_proven_in_the_head(
        grown: tuple[audit.AuditLog, list[bytes]], after: int, size: int) -> None:
    lg, _hashes = grown
    root = _roots(lg.store)[size]
    page = tree.own_entries(lg.store, "isis-k", "state-b", after=after, size=size, limit=20)
    assert page["head"]["size"] == size
    for entry in page["entries"]:
        assert entry["actor"] == "state-b" and after < entry["seq"] <= size
        assert audit.entry_hash(entry) == entry["hash"]
        assert merkle.verify_inclusion(bytes.fromhex(entry["hash"]), entry["proof"]["index"], size,
                                       [bytes.fromhex(p) for p in entry["proof"]["path"]], root)
    assert not tree.own_entries(lg.store, "isis-k", "nobody", size=size)["entries"]


def test_entries_carry_a_nonce_so_equal_requests_hash_apart_and_old_entries_still_verify(
        store: Store, tmp_path: Path) -> None:
    lg = audit.AuditLog(store, tmp_path / "audit.key")
    with store.engine.begin() as conn:  # an entry as written before nonces: hashed over FIELDS alone
        old = {"seq": 1, "at_us": 1, "actor": "state-a", "api_root": "isis-k", "method": "GET", "endpoint": "/taxii2/",
               "path": "/taxii2/", "query": "{}", "status": 200, "reason": "", "ids": "[]", "count": 0,
               "prev": audit.GENESIS}
        conn.execute(insert(audit_table).values(**old, hash=hashlib.sha256(
            orjson.dumps([old[f] for f in audit.FIELDS])).hexdigest()))
    for _ in range(2):
        lg.append(actor="state-a", api_root="isis-k", method="GET", endpoint="/taxii2/", path="/taxii2/")
    with store.engine.connect() as conn:
        rows = [dict(r._mapping) for r in conn.execute(select(audit_table).order_by(audit_table.c.seq))]
    assert rows[0]["nonce"] is None and len({r["nonce"] for r in rows[1:]}) == 2
    # the same request twice, at the same instant after the same entry, would still hash apart
    same = rows[1] | {"at_us": rows[2]["at_us"], "seq": rows[2]["seq"], "prev": rows[2]["prev"]}
    assert audit.entry_hash(same) != rows[2]["hash"]
    assert audit.verify(store).intact
    with store.engine.begin() as conn:
        conn.execute(update(audit_table).where(audit_table.c.seq == 2).values(nonce="0" * 32))
    assert "entry 2: its content does not match its hash (edited)" in audit.verify(store).problems


def test_sealers_racing_sign_heads_that_grow_in_size_and_time_together(store: Store, tmp_path: Path) -> None:
    import threading

    # requests seal through their checkpoints while the seal thread seals too: a smaller head signed after a
    # larger one would be (false) proof of a shrunk log
    lg = audit.AuditLog(store, tmp_path / "audit.key", checkpoint_every=7)

    def requests() -> None:
        for i in range(60):
            lg.append(actor="state-a", api_root="isis-k", method="GET", endpoint="/taxii2/", path="/taxii2/",
                      query={"i": str(i)})

    def sealer() -> None:
        for _ in range(60):
            lg.seal()

    threads = [threading.Thread(target=f) for f in (requests, requests, sealer, sealer)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    lg.seal()
    with store.engine.connect() as conn:
        heads = conn.execute(select(audit_heads.c.size, audit_heads.c.at_us).order_by(audit_heads.c.size)).all()
    assert len(heads) > 5 and heads[-1].size == 120
    assert all(a.at_us < b.at_us for a, b in zip(heads, heads[1:], strict=False))
    assert audit.verify(store).intact


def test_the_first_seal_after_the_upgrade_stores_the_old_history_s_nodes(
        grown: tuple[audit.AuditLog, list[bytes]]) -> None:
    lg, hashes = grown
    with lg.store.engine.begin() as conn:
        expected = conn.execute(select(func.count()).select_from(audit_nodes)).scalar_one()
        conn.execute(delete(audit_nodes))  # as a log sealed before nodes were stored has none
    _append(lg, 3)
    lg.seal()
    with lg.store.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(audit_nodes)).scalar_one() == expected
        nodes = tree.StoredNodes(conn)
        merkle.consistency_proof(nodes, 1, 1301)
        assert set(nodes._blocks) == {0, 5}  # the two edges; the rest is stored nodes, not the old entries


def test_a_proof_over_entries_cut_from_under_a_head_is_refused_as_a_broken_log(
        grown: tuple[audit.AuditLog, list[bytes]]) -> None:
    from tearline.errors import Unavailable

    lg, _hashes = grown
    with lg.store.engine.begin() as conn:
        conn.execute(delete(audit_table).where(audit_table.c.seq > 1290))
    with pytest.raises(Unavailable, match="does not hold together") as refused:
        tree.consistency(lg.store, lg.signer(), 1295, 1301)
    assert refused.value.status == 503 and refused.value.code == "audit_tampered"


def test_the_transparency_migration_goes_down_and_up_again(grown: tuple[audit.AuditLog, list[bytes]]) -> None:
    from pathlib import Path as _Path

    from alembic import command
    from alembic.config import Config

    import tearline.store as package

    lg, _hashes = grown
    cfg = Config()
    cfg.set_main_option("script_location", str(_Path(package.__file__).parent / "migrations"))
    with lg.store.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0013")
    lg.store.migrate()
    with lg.store.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(audit_heads)).scalar_one() == len(SEALS)
