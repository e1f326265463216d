"""Members keep the hub honest: every response carries the newest signed tree head; members read heads,
signed consistency proofs and proofs of their own entries; a member's witness catches a hub that rewrote,
forked or shrank its log even when it re-signed it with its own key, and `prove-fork` checks the evidence
offline. Evidence from an honest log never proves a fork."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, select, update
from typer.testing import CliRunner

from tearline import audit, merkle, witness
from tearline.audit import tree
from tearline.cli import app
from tearline.store import Store
from tearline.store.schema import audit as audit_table
from tearline.store.schema import audit_checkpoints, audit_heads, audit_nodes
from tests.conftest import Hub

QUIET = [{"audit_seal_seconds": 3600}]  # the tests seal when they choose; the hub's own thread stays out of it


def _log(hub: Hub, store: Store) -> audit.AuditLog:
    """The hub's log as its operator (or an attacker holding its key file) reaches it."""
    return audit.AuditLog(store, Path(hub.settings.audit_key))


def _requests(c: httpx.Client, n: int) -> None:
    for _ in range(n):
        assert c.get("/taxii2/isis-k/collections/").status_code == 200


def _public(hub: Hub, store: Store) -> str:
    key: str = _log(hub, store).public_keys()[-1]["public_key"]
    return key


def _witness(hub: Hub, token: str, state: Path, *keys: str) -> Any:
    args = ["audit", "witness", "--hub", hub.url, "--member", "state-a", "--token", token, "--state", str(state)]
    for k in keys:
        args += ["--public-key", k]
    return CliRunner().invoke(app, args)


def _rewrite(store: Store, log: audit.AuditLog, seq: int) -> None:
    """What an operator with the database and the signing key can do: change entry ``seq``, rebuild the chain
    after it, throw away every head, checkpoint and node, and sign the new log afresh."""
    with store.engine.begin() as conn:
        rows = [dict(r._mapping) for r in conn.execute(select(audit_table).where(audit_table.c.seq >= seq)
                                                       .order_by(audit_table.c.seq))]
        prev = rows[0]["prev"]
        for row in rows:
            if row["seq"] == seq:
                row["status"], row["reason"] = 404, "no such collection"
            row["prev"] = prev
            row["hash"] = prev = audit.entry_hash(row)
            conn.execute(update(audit_table).where(audit_table.c.seq == row["seq"])
                         .values(status=row["status"], reason=row["reason"], prev=row["prev"], hash=row["hash"]))
        for table in (audit_heads, audit_checkpoints, audit_nodes):
            conn.execute(delete(table))
    log.seal()


@pytest.mark.parametrize("hub", QUIET, indirect=True)
def test_every_response_to_a_member_carries_the_newest_signed_head(hub: Hub, store: Store, alice: httpx.Client) -> None:
    assert "tearline-tree-head" not in alice.get("/taxii2/").headers  # nothing sealed yet
    _requests(alice, 3)
    sealed = _log(hub, store).seal()
    time.sleep(1.1)  # a hub process reads the newest head at most once a second
    for response in (alice.get("/taxii2/"), alice.get("/taxii2/isis-k/collections/nope/")):
        fields = dict(re.findall(r'(\w+)="?([0-9a-f]+)"?', response.headers["tearline-tree-head"]))
        head = {"size": int(fields["size"]), "root": fields["root"], "at_us": int(fields["timestamp"]),
                "key_id": fields["key"]}
        assert head["size"] == sealed["size"] and head["root"] == sealed["root"]
        assert audit.verify_signature(_public(hub, store), audit.head_message(head), fields["signature"])
    assert "tearline-tree-head" not in httpx.get(f"{hub.url}/taxii2/").headers  # a stranger gets no head


@pytest.mark.parametrize("hub", QUIET, indirect=True)
def test_members_read_heads_proofs_and_only_their_own_entries(hub: Hub, store: Store, alice: httpx.Client,
                                                              ngo: httpx.Client) -> None:
    assert alice.get("/tearline/audit/heads/latest/").json()["error_code"] == "no_tree_head"
    _requests(alice, 5)
    _requests(ngo, 5)
    log = _log(hub, store)
    first = log.seal()
    _requests(alice, 300)  # past the first stored subtree of 256 entries
    second = log.seal()
    assert alice.get("/tearline/audit/heads/").json() == {"heads": [first, second], "more": False}
    assert alice.get(f"/tearline/audit/heads/{first['size']}/").json() == first
    missing = alice.get("/tearline/audit/heads/2/")
    assert missing.status_code == 404 and missing.json()["error_code"] == "no_tree_head"
    proof = alice.get("/tearline/audit/consistency/", params={"first": first["size"]}).json()["consistency"]
    assert (proof["first"], proof["second"]) == (first["size"], second["size"])
    assert merkle.verify_consistency(first["size"], second["size"], bytes.fromhex(first["root"]),
                                     bytes.fromhex(second["root"]), [bytes.fromhex(p) for p in proof["proof"]])
    mine = ngo.get("/tearline/audit/entries/").json()
    assert mine["head"] == second and len(mine["entries"]) == 5  # its five requests
    assert {e["actor"] for e in mine["entries"]} == {"ngo-c"}
    for entry in mine["entries"]:
        assert merkle.verify_inclusion(bytes.fromhex(entry["hash"]), entry["proof"]["index"], second["size"],
                                       [bytes.fromhex(p) for p in entry["proof"]["path"]], bytes.fromhex(second["root"]))
    paged = alice.get("/tearline/audit/entries/", params={"limit": 100}).json()
    assert len(paged["entries"]) == 100 and paged["more"]


@pytest.mark.parametrize("hub", QUIET, indirect=True)
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(path=st.sampled_from(["/tearline/audit/heads/", "/tearline/audit/consistency/", "/tearline/audit/entries/"]),
       query=st.dictionaries(st.sampled_from(["first", "second", "after", "size", "limit"]),
                             st.one_of(st.integers(-2**70, 2**70).map(str), st.text(max_size=12)), max_size=4))
def test_no_query_makes_the_audit_endpoints_fail(hub: Hub, alice: httpx.Client, path: str,
                                                 query: dict[str, str]) -> None:
    response = alice.get(path, params=query)
    assert response.status_code in (200, 400, 404), response.text
    if response.status_code != 200:
        assert response.json()["description"]


@pytest.mark.parametrize("hub", QUIET, indirect=True)
def test_a_witness_catches_a_rewrite_signed_with_the_hubs_own_key(hub: Hub, store: Store, tokens: dict[str, str],
                                                                  alice: httpx.Client, tmp_path: Path) -> None:
    log, state = _log(hub, store), tmp_path / "witness"
    _requests(alice, 10)
    log.seal()
    key = _public(hub, store)
    done = _witness(hub, tokens["state-a"], state, key)
    assert done.exit_code == 0 and "first tree head kept" in done.output, done.output
    _requests(alice, 10)
    log.seal()
    done = _witness(hub, tokens["state-a"], state, key)
    assert done.exit_code == 0 and "extends what it was" in done.output, done.output
    assert "of this member's own entries are in the signed log" in done.output

    honest = CliRunner().invoke(app, ["audit", "prove-fork", str(state / "heads.jsonl"), "--public-key", key])
    assert honest.exit_code == 1 and "not proof of a fork" in honest.output, honest.output

    _rewrite(store, log, 4)
    assert audit.verify(store, [key]).intact  # re-signed: the operator's own check cannot see it
    done = _witness(hub, tokens["state-a"], state, key)
    assert done.exit_code == 1 and "the hub's log was rewritten" in done.output, done.output
    evidence = next(state.glob("evidence-*.json"))
    proved = CliRunner().invoke(app, ["audit", "prove-fork", str(evidence), "--public-key", key])
    assert proved.exit_code == 0 and "FORK" in proved.output, proved.output
    pooled = CliRunner().invoke(app, ["audit", "prove-fork", str(state / "heads.jsonl"), str(evidence),
                                      "--public-key", key])
    assert pooled.exit_code == 0 and "FORK" in pooled.output, pooled.output
    # the evidence holds only against the hub's key, and the witness keeps saying so until someone looks
    other = audit.public_bytes(audit.load_or_create_key(tmp_path / "other.key")).hex()
    assert CliRunner().invoke(app, ["audit", "prove-fork", str(evidence), "--public-key", other]).exit_code == 1
    assert _witness(hub, tokens["state-a"], state).exit_code == 1
    heads = [json.loads(line) for line in (state / "heads.jsonl").read_text().splitlines()]
    assert len(heads) == 4  # every head it was shown, the rewritten one too
    kept = [json.loads(line) for line in (state / "entries.jsonl").read_text().splitlines()]
    assert kept and {e["actor"] for e in kept} == {"state-a"}  # its own copy of what the hub recorded of it


@pytest.mark.parametrize("hub", QUIET, indirect=True)
def test_a_witness_catches_a_log_cut_back_and_resealed(hub: Hub, store: Store, tokens: dict[str, str],
                                                       alice: httpx.Client, tmp_path: Path) -> None:
    log = _log(hub, store)
    _requests(alice, 5)
    log.seal()
    _requests(alice, 30)
    kept = log.seal()
    key = _public(hub, store)
    state = witness.State(tmp_path / "w")
    with httpx.Client(base_url=hub.url, auth=("state-a", tokens["state-a"]), timeout=30) as c:
        from tearline.cli.audit import _hub_fetch

        fetch = _hub_fetch(c)
        assert witness.witness(fetch, state, hub.url, "state-a", [key]).ok
        with store.engine.begin() as conn:  # cut the log back to its first head and drop the newer heads
            first = conn.execute(select(audit_heads.c.size).order_by(audit_heads.c.size)).scalars().first()
            conn.execute(delete(audit_table).where(audit_table.c.seq > first))
            conn.execute(delete(audit_heads).where(audit_heads.c.size > first))
            conn.execute(delete(audit_nodes))
        time.sleep(1.1)
        stale = witness.witness(fetch, state, hub.url, "state-a", [key])  # the old head is shown as the newest
        assert not stale.ok and "no longer has the tree head it signed at size" in " ".join(stale.lines)
        assert not witness.prove_fork(json.loads(stale.evidence.read_text()), [key]).proven  # type: ignore[union-attr]
        with store.engine.begin() as conn:  # the cut-back log gets new heads of its own
            rebuilt = merkle.Frontier()
            for (h,) in conn.execute(select(audit_table.c.hash).where(audit_table.c.seq <= first)
                                     .order_by(audit_table.c.seq)):
                rebuilt.append(merkle.leaf_hash(bytes.fromhex(h)))
            conn.execute(update(audit_heads).values(frontier=json.dumps(rebuilt.dumps())))
        log.seal()
        shrank = witness.witness(fetch, state, hub.url, "state-a", [key])
    assert not shrank.ok and shrank.head is not None and shrank.head["size"] < kept["size"]
    verdict = witness.prove_fork(json.loads(shrank.evidence.read_text()), [key])  # type: ignore[union-attr]
    assert verdict.proven and any(line.startswith("SHRANK") for line in verdict.lines), verdict.lines


@pytest.mark.parametrize("hub", QUIET, indirect=True)
def test_a_witness_refuses_heads_not_signed_by_the_key_it_was_given(hub: Hub, store: Store, tokens: dict[str, str],
                                                                    alice: httpx.Client, tmp_path: Path) -> None:
    _requests(alice, 3)
    _log(hub, store).seal()
    other = audit.public_bytes(audit.load_or_create_key(tmp_path / "other.key")).hex()
    done = _witness(hub, tokens["state-a"], tmp_path / "w", other)
    assert done.exit_code != 0 and "not signed by a trusted key" in done.output, done.output
    first_use = _witness(hub, tokens["state-a"], tmp_path / "w2")
    assert first_use.exit_code == 0 and "on first use" in first_use.output
    unreachable = CliRunner().invoke(app, ["audit", "witness", "--hub", "http://127.0.0.1:9", "--member", "state-a",
                                           "--token", "x", "--state", str(tmp_path / "w3"), "--public-key", other])
    assert unreachable.exit_code != 0 and "could not reach the hub" in unreachable.output
    assert "Traceback" not in unreachable.output


@pytest.fixture
def honest(store: Store, tmp_path: Path) -> tuple[audit.AuditLog, list[dict[str, Any]]]:
    lg = audit.AuditLog(store, tmp_path / "audit.key", checkpoint_every=10**9)
    heads = []
    for n in (3, 7, 40, 256, 300):
        for i in range(n):
            lg.append(actor="state-a", api_root="isis-k", method="GET", endpoint="/taxii2/", path="/taxii2/",
                      query={"i": str(i)})
        heads.append(lg.seal())
    return lg, heads


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_evidence_from_an_honest_log_never_proves_a_fork(honest: tuple[audit.AuditLog, list[dict[str, Any]]],
                                                         data: st.DataObject) -> None:
    lg, heads = honest
    key = lg.public_keys()[0]["public_key"]
    picked = data.draw(st.lists(st.sampled_from(heads), min_size=1, max_size=3))
    small, large = sorted(data.draw(st.lists(st.sampled_from(heads), min_size=2, max_size=2)), key=lambda h: h["size"])
    statement = tree.consistency(lg.store, lg.signer(), small["size"], large["size"])["consistency"]
    doc = {"format": witness.EVIDENCE_FORMAT, "heads": picked, "consistency": statement}
    assert not witness.prove_fork(doc, [key]).proven
    # and no field of a signed statement can be changed to make one
    field = data.draw(st.sampled_from(["first", "first_root", "second", "second_root", "at_us"]))
    forged = statement | {field: statement[field] + 1 if isinstance(statement[field], int) else "00" * 32}
    verdict = witness.prove_fork(doc | {"consistency": forged}, [key])
    assert not verdict.proven and "not signed by the given key" in verdict.lines[0]


def _fetching(hub: Hub, token: str) -> tuple[httpx.Client, witness.Fetch]:
    from tearline.cli.audit import _hub_fetch

    c = httpx.Client(base_url=hub.url, auth=("state-a", token), timeout=30)
    return c, _hub_fetch(c)


@pytest.mark.parametrize("hub", QUIET, indirect=True)
def test_a_hub_that_will_not_prove_or_stops_sealing_is_reported_with_its_signed_heads_kept(
        hub: Hub, store: Store, tokens: dict[str, str], alice: httpx.Client, tmp_path: Path) -> None:
    from tearline.errors import TearlineError

    log = _log(hub, store)
    _requests(alice, 4)
    log.seal()
    key = _public(hub, store)
    c, fetch = _fetching(hub, tokens["state-a"])
    with c:
        state = witness.State(tmp_path / "w")
        clock = [time.time()]
        assert witness.witness(fetch, state, hub.url, "state-a", [key], now=lambda: clock[0]).ok
        # a frozen view: an hour later the hub still shows the same head, though the witness's own requests of
        # an hour ago are on its record (an honest hub seals them within seconds)
        clock[0] += 3600
        frozen = witness.witness(fetch, state, hub.url, "state-a", [key], now=lambda: clock[0])
        assert not frozen.ok and "a frozen view" in " ".join(frozen.lines)
        log.seal()

        def refusing(path: str, query: dict[str, Any]) -> Any:
            if "consistency" in path:
                raise TearlineError("the hub answered 500 to /tearline/audit/consistency/", code="witness_refused")
            return fetch(path, query)

        refused = witness.witness(refusing, state, hub.url, "state-a", [key], now=lambda: clock[0])
        assert not refused.ok and "gave no consistency proof" in " ".join(refused.lines)
        evidence = json.loads(refused.evidence.read_text())  # type: ignore[union-attr]
        assert evidence["provable"] is False and evidence["heads"][1]["size"] > evidence["heads"][0]["size"]
        assert any(json.loads(line) == refused.head for line in (state.path / "heads.jsonl").read_text().splitlines())

        def moving(path: str, query: dict[str, Any]) -> Any:  # the member's entry shown at another place
            answer = fetch(path, query)
            if "entries" in path and answer["entries"]:
                answer["entries"][0]["proof"]["index"] += 1
            return answer

        with pytest.raises(TearlineError, match="not its own, not in order, or not in the signed tree head"):
            witness.witness(moving, witness.State(tmp_path / "w2"), hub.url, "state-a", [key])


def test_malformed_evidence_is_refused_clearly(tmp_path: Path) -> None:
    key = audit.public_bytes(audit.load_or_create_key(tmp_path / "k.key")).hex()
    for doc in ({"format": witness.EVIDENCE_FORMAT, "heads": ["x", 3]},
                {"format": witness.EVIDENCE_FORMAT, "consistency": {"first": "a"}}):
        assert not witness.prove_fork(doc, [key]).proven
    (tmp_path / "e.json").write_text("{not json")
    done = CliRunner().invoke(app, ["audit", "prove-fork", str(tmp_path / "e.json"), "--public-key", key])
    assert done.exit_code == 2 and "cannot read it as JSON" in done.output and "Traceback" not in done.output
    (tmp_path / "e.json").write_text(json.dumps({"format": witness.EVIDENCE_FORMAT, "heads": []}))
    done = CliRunner().invoke(app, ["audit", "prove-fork", str(tmp_path / "e.json")])
    assert done.exit_code == 2 and "--public-key is needed" in done.output
