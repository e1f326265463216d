"""The audit trail: requests to the running hub are on record; an intact log verifies; every kind of
tampering is found and located, by the CLI too; key rotation and members' offline exports."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import delete, func, insert, select, update

from tearline import audit, merkle
from tearline.store import Store
from tearline.store.schema import audit as audit_table
from tearline.store.schema import audit_checkpoints

TL = [sys.executable, "-m", "tearline"]
INTEL = "/taxii2/isis-k/collections/intel/objects/"


@pytest.fixture
def log(store: Store, tmp_path: Path) -> audit.AuditLog:
    lg = audit.AuditLog(store, tmp_path / "audit.key", checkpoint_every=10)
    for i in range(45):
        lg.append(actor=("state-a", "state-b", None)[i % 3], api_root="isis-k", method="GET",
                  endpoint="/taxii2/{api_root}/collections/{collection_id}/objects/", path=INTEL,
                  query={"match[type]": "indicator", "limit": str(i)}, status=200 if i % 3 else 403,
                  reason="" if i % 3 else "member may not read", ids=[f"indicator--{i:08d}-0000-4000-8000-000000000000"])
    return lg


def problems(store: Store, keys: list[str] | None = None) -> list[str]:
    report = audit.verify(store, keys or ())
    return report.problems


def test_an_intact_log_verifies(log: audit.AuditLog) -> None:
    report = audit.verify(log.store)
    assert report.intact and report.entries == 45 and report.checkpoints == 4 and report.unsigned_tail == 5


def test_an_edited_entry_is_found(log: audit.AuditLog) -> None:
    with log.store.engine.begin() as conn:
        conn.execute(update(audit_table).where(audit_table.c.seq == 17).values(count=0, ids="[]"))
    found = problems(log.store)
    assert any("entry 17: its content does not match its hash (edited)" in p for p in found)


def test_a_deleted_entry_is_found(log: audit.AuditLog) -> None:
    with log.store.engine.begin() as conn:
        conn.execute(delete(audit_table).where(audit_table.c.seq == 23))
    found = problems(log.store)
    assert any("entries 23..23 are missing (deleted)" in p for p in found)
    assert any("checkpoint at entry 30" in p and "not the ones that were signed" in p for p in found)


def _rows(store: Store) -> list[dict[str, Any]]:
    with store.engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(select(audit_table).order_by(audit_table.c.seq))]


def _rewrite(store: Store, rows: list[dict[str, Any]]) -> None:
    """Replace the whole log with these rows, renumbered and re-hashed: what an intruder with write
    access to the database (but not the signing key) can do at best."""
    prev = audit.GENESIS
    for seq, row in enumerate(rows, 1):
        row.update(seq=seq, prev=prev)
        row["hash"] = prev = audit.entry_hash(row)
    with store.engine.begin() as conn:
        conn.execute(delete(audit_table))
        conn.execute(insert(audit_table), rows)


def test_an_inserted_entry_is_found_even_when_the_chain_is_rebuilt(log: audit.AuditLog) -> None:
    rows = _rows(log.store)
    forged = dict(rows[11], actor="state-c", ids='["indicator--forged"]')
    naive = [dict(r) for r in rows]
    naive.insert(12, forged | {"seq": 13})  # inserted without fixing anything
    with log.store.engine.begin() as conn:
        conn.execute(delete(audit_table))
        conn.execute(insert(audit_table), [dict(r, seq=i) for i, r in enumerate(naive, 1)])
    assert any("entry 13" in p for p in problems(log.store))
    _rewrite(log.store, rows[:12] + [forged] + rows[12:])
    found = problems(log.store)
    assert any("checkpoint at entry 20" in p and ("not the ones that were signed" in p or "not the one" in p)
               for p in found)


def test_reordered_entries_are_found(log: audit.AuditLog) -> None:
    rows = _rows(log.store)
    swapped = {k: v for k, v in rows[4].items() if k != "seq"}, {k: v for k, v in rows[5].items() if k != "seq"}
    with log.store.engine.begin() as conn:
        conn.execute(update(audit_table).where(audit_table.c.seq == 5).values(**swapped[1]))
        conn.execute(update(audit_table).where(audit_table.c.seq == 6).values(**swapped[0]))
    found = problems(log.store)
    assert any("entry 5" in p for p in found) and any("entry 6" in p for p in found)
    # moved and re-chained: only the signature can tell
    rows[4], rows[5] = rows[5], rows[4]
    _rewrite(log.store, rows)
    assert any("checkpoint at entry 10" in p for p in problems(log.store))


def test_a_truncated_log_is_found(log: audit.AuditLog) -> None:
    with log.store.engine.begin() as conn:
        conn.execute(delete(audit_table).where(audit_table.c.seq > 33))
    found = problems(log.store)
    assert any("checkpoint at entry 40 is signed, but the log ends at entry 33 (truncated)" in p for p in found)


def test_a_forged_checkpoint_or_an_untrusted_key_is_found(log: audit.AuditLog, tmp_path: Path) -> None:
    published = log.public_keys()[0]["public_key"]
    assert audit.verify(log.store, [published]).intact
    other = audit.AuditLog(log.store, tmp_path / "someone-else.key")
    assert any("not among the trusted public keys" in p
               for p in problems(log.store, [other.public_keys()[-1]["public_key"]]))
    with log.store.engine.begin() as conn:
        conn.execute(update(audit_checkpoints).where(audit_checkpoints.c.seq == 20).values(at_us=1))
    assert any("checkpoint at entry 20: the signature does not verify" in p for p in problems(log.store, [published]))


def test_key_rotation_keeps_old_signatures_verifiable(log: audit.AuditLog) -> None:
    first = log.public_keys()[0]["public_key"]
    old, new = log.rotate_key()
    assert old != new and (log.key_file.parent / f"audit.key.retired-{old}").exists()
    for _ in range(12):
        log.append(actor="state-a", api_root="isis-k", method="GET", endpoint="/x", path="/x")
    keys = log.public_keys()
    assert [k["retired_us"] is not None for k in keys] == [True, False]
    assert audit.verify(log.store, [first, keys[1]["public_key"]]).intact
    assert any("not among the trusted" in p for p in problems(log.store, [first]))


def test_a_member_export_verifies_offline_and_shows_tampering(log: audit.AuditLog, tmp_path: Path) -> None:
    doc = audit.export(log, "isis-k", "state-b")
    assert {e["actor"] for e in doc["entries"]} == {"state-b"} and len(doc["entries"]) == 15
    published = log.public_keys()[0]["public_key"]
    assert audit.verify_export(json.loads(json.dumps(doc)), [published]).intact
    alone = audit.verify_export(json.loads(json.dumps(doc)))  # without the published key it proves nothing
    assert not alone.intact and "no trusted public key" in alone.problems[0]
    doc["entries"][3]["count"] = 99
    assert any(f"entry {doc['entries'][3]['seq']}: its content" in p for p in audit.verify_export(doc).problems)
    doc["entries"][3]["count"] = 1
    doc["entries"][4]["proof"]["path"][0] = "00" * 32
    assert any("not in the signed checkpoint" in p for p in audit.verify_export(doc).problems)


def test_merkle_proofs_hold_for_every_tree_size() -> None:
    for size in range(1, 40):
        leaves = [bytes([i]) * 32 for i in range(size)]
        root = audit.merkle_root(leaves).hex()
        for i in range(size):
            assert audit.in_tree(leaves[i], i, size, audit.inclusion_proof(leaves, i), root)
            assert not audit.in_tree(leaves[i], (i + 1) % size, size, audit.inclusion_proof(leaves, i), root) \
                or leaves[i] == leaves[(i + 1) % size]


def test_requests_to_the_hub_are_on_record(hub: Any, tokens: dict[str, str], store: Store) -> None:
    with httpx.Client(base_url=hub.url, auth=("state-a", tokens["state-a"]),
                      headers={"Accept": "application/taxii+json;version=2.1"}) as alice:
        page = alice.get(INTEL, params={"match[type]": "threat-actor"}).json()
        alice.get("/taxii2/isis-k/collections/intel/objects/indicator--00000000-0000-4000-8000-000000000000/")
    anonymous = httpx.get(hub.url + "/taxii2/")
    assert anonymous.status_code == 401
    with httpx.Client(base_url=hub.url, auth=("ngo-c", tokens["ngo-c"]),
                      headers={"Accept": "application/taxii+json;version=2.1",
                               "Content-Type": "application/taxii+json;version=2.1"}) as ngo:
        assert ngo.post(INTEL, content=b'{"objects": []}').status_code == 403
    rows = _rows(store)
    read = next(r for r in rows if r["actor"] == "state-a" and r["query"] == '{"match[type]":"threat-actor"}')
    assert read["endpoint"] == "/taxii2/{api_root}/collections/{collection_id}/objects/" and read["status"] == 200
    assert json.loads(read["ids"]) == [o["id"] for o in page["objects"]] and read["count"] == len(page["objects"])
    missing = next(r for r in rows if r["actor"] == "state-a" and r["status"] == 404)
    assert "no object" in missing["reason"]
    anon = next(r for r in rows if r["status"] == 401)
    assert anon["actor"] is None and "credentials" in anon["reason"]
    denied = next(r for r in rows if r["actor"] == "ngo-c")
    assert denied["status"] == 403 and "may not write" in denied["reason"] and denied["method"] == "POST"
    assert audit.verify(store).intact


def test_cli_verify_exits_non_zero_and_says_where(log: audit.AuditLog, tmp_path: Path) -> None:
    url = log.store.url
    ok = subprocess.run([*TL, "audit", "verify", "--db", url], capture_output=True, text=True)
    assert ok.returncode == 0 and "intact" in ok.stdout
    with log.store.engine.begin() as conn:
        conn.execute(update(audit_table).where(audit_table.c.seq == 8).values(reason="nothing to see"))
    bad = subprocess.run([*TL, "audit", "verify", "--db", url], capture_output=True, text=True)
    assert bad.returncode == 1 and "entry 8: its content does not match its hash" in bad.stderr
    assert "Traceback" not in bad.stderr
    junk = subprocess.run([*TL, "audit", "verify", "--db", url, "--public-key", "xyz"], capture_output=True, text=True)
    assert junk.returncode == 2 and "--public-key" in junk.stderr


def test_admin_actions_are_on_record(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'hub.db'}"
    demo = Path(__file__).resolve().parent.parent / "tearline" / "data" / "demo-compact.yaml"
    subprocess.run([*TL, "compact", "apply", str(demo), "--db", db], check=True, capture_output=True)
    subprocess.run([*TL, "compact", "rotate-token", "isis-k", "ngo-c", "--db", db], check=True, capture_output=True)
    store = Store(db)
    try:
        rows = _rows(store)
        assert [r["endpoint"] for r in rows] == ["compact apply", "compact rotate-token"]
        assert all(r["actor"].startswith("admin:") and r["method"] == "ADMIN" for r in rows)
        assert json.loads(rows[1]["query"]) == {"member": "ngo-c"}
    finally:
        store.close()


# --- sealing: signed tree heads over the whole log --------------------------------------------------------

def _served(tmp_path: Path, requests: int, seal_seconds: int = 3600,
            while_running: Any = None) -> tuple[Store, int]:
    """A hub run as `tearline serve` in its own process, asked ``requests`` times, stopped as an operator
    stops it (SIGINT); the store it leaves and how many entries it wrote."""
    import signal
    import time

    from tests.conftest import free_port

    db, port = f"sqlite:///{tmp_path / 'hub.db'}", free_port()
    # strangers' requests (401) are what it is asked; the per-address limits would otherwise refuse most
    env = {**os.environ, "TEARLINE_AUDIT_KEY": str(tmp_path / "audit.key"), "TEARLINE_LEAK_KEY": str(tmp_path / "leak.key"),
           "TEARLINE_ANONYMOUS_PER_MINUTE": "100000", "TEARLINE_ADDRESS_PER_MINUTE": "100000"}
    proc = subprocess.Popen([*TL, "serve", "--db", db, "--port", str(port), "--audit-seal-seconds", str(seal_seconds)],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(f"http://127.0.0.1:{port}/taxii2/", timeout=2)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline and proc.poll() is None, proc.stderr.read()  # type: ignore[union-attr]
                time.sleep(0.2)
        for i in range(requests - 1):
            httpx.get(f"http://127.0.0.1:{port}/taxii2/", params={"n": str(i)}, timeout=5)
        if while_running is not None:
            while_running(Store(db))
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(30)
    store = Store(db)
    with store.engine.connect() as conn:
        entries = conn.execute(select(audit_table.c.seq).order_by(audit_table.c.seq.desc()).limit(1)).scalar_one()
    return store, int(entries)


def test_a_stopped_hub_has_sealed_every_entry_and_any_cut_tail_is_found(tmp_path: Path) -> None:
    store, entries = _served(tmp_path, 36)
    assert entries >= 36
    report = audit.verify(store)
    # far fewer than a checkpoint's thousand entries, yet every one is under a signed tree head
    assert report.intact and report.checkpoints == 0 and report.heads >= 1 and report.unsealed_tail == 0
    with store.engine.begin() as conn:
        conn.execute(delete(audit_table).where(audit_table.c.seq > entries - 3))
    found = audit.verify(store).problems
    assert any(f"the log holds {entries - 3} entries, the last numbered {entries - 3} (truncated)" in p
               for p in found), found


@pytest.fixture(scope="module")
def served_once(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int]:
    """The store a hub left after a normal start, a few dozen requests and a stop (served once per module)."""
    where = tmp_path_factory.mktemp("served")
    store, entries = _served(where, 40)
    store.close()
    return where, entries


@pytest.mark.parametrize("tamper", ["truncate", "delete", "edit", "reorder", "insert"])
def test_after_a_normal_serve_cycle_every_kind_of_tampering_is_found(served_once: tuple[Path, int], tmp_path: Path,
                                                                     tamper: str) -> None:
    import shutil

    where, entries = served_once
    for name in ("hub.db", "audit.key"):
        shutil.copy(where / name, tmp_path / name)
    store = Store(f"sqlite:///{tmp_path / 'hub.db'}")
    key = audit.AuditLog(store, tmp_path / "audit.key").public_keys()[0]["public_key"]
    assert audit.verify(store, [key]).intact
    with store.engine.begin() as conn:
        rows = {r.seq: dict(r._mapping) for r in conn.execute(select(audit_table))}
        if tamper == "truncate":
            conn.execute(delete(audit_table).where(audit_table.c.seq > entries - 2))
        elif tamper == "delete":
            conn.execute(delete(audit_table).where(audit_table.c.seq == 17))
        elif tamper == "edit":
            conn.execute(update(audit_table).where(audit_table.c.seq == 17).values(status=200, reason=""))
        elif tamper == "reorder":
            conn.execute(delete(audit_table).where(audit_table.c.seq.in_([8, 9])))
            conn.execute(insert(audit_table), [rows[8] | {"seq": 9}, rows[9] | {"seq": 8}])
        else:  # a made-up entry in the middle, the entries after it moved up one
            conn.execute(delete(audit_table).where(audit_table.c.seq >= 12))
            conn.execute(insert(audit_table), [rows[12] | {"actor": "state-b"}] +
                         [rows[s] | {"seq": s + 1} for s in range(12, entries + 1)])
    report = audit.verify(store, [key])
    store.close()
    assert not report.intact, tamper


@pytest.mark.parametrize("tamper", ["edit", "delete", "reorder", "insert"])
def test_every_kind_of_tampering_under_a_tree_head_is_found(store: Store, tmp_path: Path, tamper: str) -> None:
    lg = audit.AuditLog(store, tmp_path / "audit.key", checkpoint_every=1000)
    for i in range(30):
        lg.append(actor="state-a", api_root="isis-k", method="GET", endpoint="/taxii2/", path="/taxii2/",
                  query={"n": str(i)})
    assert lg.seal() is not None and lg.seal() is None  # nothing new: no second head
    assert audit.verify(store).intact
    with store.engine.begin() as conn:
        if tamper == "edit":
            conn.execute(update(audit_table).where(audit_table.c.seq == 12).values(status=500))
        elif tamper == "delete":
            conn.execute(delete(audit_table).where(audit_table.c.seq == 12))
        elif tamper == "reorder":
            a, b = (dict(conn.execute(select(audit_table).where(audit_table.c.seq == s)).one()._mapping) for s in (5, 6))
            conn.execute(delete(audit_table).where(audit_table.c.seq.in_([5, 6])))
            conn.execute(insert(audit_table), [a | {"seq": 6}, b | {"seq": 5}])
        else:
            row = dict(conn.execute(select(audit_table).where(audit_table.c.seq == 30)).one()._mapping)
            conn.execute(insert(audit_table).values(**(row | {"seq": 31})))
    report = audit.verify(store)
    assert not report.intact
    if tamper == "edit":  # the entry no longer matches its hash; the head covers the hash it had
        assert "entry 12: its content does not match its hash (edited)" in report.problems
    elif tamper == "insert":  # past the head: the unsealed tail, which the chain and its link vouch for alone
        assert report.unsealed_tail == 1
    else:
        assert any("tree head at size 30" in p for p in report.problems), report.problems


def test_a_rewritten_and_rehashed_log_breaks_its_signed_tree_head(store: Store, tmp_path: Path) -> None:
    # whoever can write the database recomputes every hash after an edit; only the signature stops them
    lg = audit.AuditLog(store, tmp_path / "audit.key", checkpoint_every=1000)
    for i in range(20):
        lg.append(actor="state-a", api_root="isis-k", method="GET", endpoint="/taxii2/", path="/taxii2/",
                  query={"n": str(i)})
    lg.seal()
    with store.engine.begin() as conn:
        rows = [dict(r._mapping) for r in conn.execute(select(audit_table).order_by(audit_table.c.seq))]
        prev = audit.GENESIS
        for row in rows:
            row["status"] = 200 if row["seq"] != 7 else 204
            row["prev"] = prev
            row["hash"] = prev = audit.entry_hash(row)
            conn.execute(update(audit_table).where(audit_table.c.seq == row["seq"])
                         .values(status=row["status"], prev=row["prev"], hash=row["hash"]))
    found = audit.verify(store).problems
    assert found == ["tree head at size 20: the first 20 entries are not the ones that were signed "
                     "(history rewritten)"]


def test_a_running_hub_seals_within_its_seal_interval(tmp_path: Path) -> None:
    import time

    from tearline.store.schema import audit_heads

    seen: list[int] = []

    def look(store: Store) -> None:  # the hub is still serving: only its seal thread can have sealed
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with store.engine.connect() as conn:
                size = conn.execute(select(func.max(audit_heads.c.size))).scalar()
            if size and size >= 12:
                seen.append(int(size))
                return
            time.sleep(0.25)

    _served(tmp_path, 12, seal_seconds=1, while_running=look)
    assert seen and seen[0] >= 12


def _sealed_log(store: Store, tmp_path: Path, n: int = 20) -> audit.AuditLog:
    lg = audit.AuditLog(store, tmp_path / "audit.key", checkpoint_every=1000)
    for i in range(n):
        lg.append(actor="state-a", api_root="isis-k", method="GET", endpoint="/taxii2/", path="/taxii2/",
                  query={"n": str(i)})
    assert lg.seal() is not None
    return lg


def test_the_hub_refuses_to_seal_on_a_base_that_does_not_hold_together(store: Store, tmp_path: Path) -> None:
    from tearline.errors import TearlineError
    from tearline.store.schema import audit_heads

    lg = _sealed_log(store, tmp_path)
    lg.append(actor="state-a", api_root="isis-k", method="GET", endpoint="/taxii2/", path="/taxii2/")
    # the frontier column is not signed: one that gives another root must not become the next head's base
    fake = merkle.Frontier()
    for i in range(20):
        fake.append(merkle.leaf_hash(bytes([i]) * 32))
    with store.engine.begin() as conn:
        real = conn.execute(select(audit_heads.c.frontier)).scalar_one()
        conn.execute(update(audit_heads).values(frontier=json.dumps(fake.dumps())))
    with pytest.raises(TearlineError, match="does not hold together"):
        lg.seal()
    with store.engine.begin() as conn:
        conn.execute(update(audit_heads).values(frontier=real))
        conn.execute(delete(audit_table).where(audit_table.c.seq == 21))
        for i in range(3):
            lg.append(actor="state-a", api_root="isis-k", method="GET", endpoint="/taxii2/", path="/taxii2/",
                      query={"again": str(i)}, conn=conn)
        conn.execute(delete(audit_table).where(audit_table.c.seq == 22))  # a hole below the newest entry
    with pytest.raises(TearlineError, match="entry 22 is missing below entry 23"):
        lg.seal()


def test_forged_or_impossible_tree_heads_are_named(store: Store, tmp_path: Path) -> None:
    from tearline.store.schema import audit_heads

    lg = _sealed_log(store, tmp_path)
    with store.engine.begin() as conn:
        real = dict(conn.execute(select(audit_heads)).one()._mapping)
        conn.execute(insert(audit_heads), [real | {"size": 0}, real | {"size": 10**12}])
    found = audit.verify(store).problems
    assert "tree head at size 0: no such size in this log (forged)" in found
    assert "tree head at size 1000000000000: past the log's end, and its signature does not verify (forged)" in found
    assert len(found) == 2  # the real head at 20 still checks out
    from tearline.errors import TearlineError

    with pytest.raises(TearlineError, match="tree head at size 1000000000000 does not hold together"):
        lg.seal()
