"""Federation, the pull: hub B mirrors a compact hub A hosts. A runs as `tearline serve` over HTTPS and knows B
as a member of kind hub with a pinned client certificate; B is another store, on which `tearline peer add` and
`tearline peer sync` run as an operator runs them. What crosses is what A's gate releases to B; at B, B's own
gate decides who receives it, and a member of kind hub on B (a third hub) never does."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tearline import compact, keys, markings, release, tls
from tearline.config import Settings
from tearline.store import Store
from tests.stixgen import ACTOR_ID
from tests.test_tls import Certs, serve

A_COMPACT = """
name: fed
scope:
  actors: [{{name: Islamic State Khorasan Province}}]
expires: 2099-12-31
members:
  - {{name: analyst, write: true, tlp_max: red}}
  - {{name: other, write: true, tlp_max: red}}
  - {{name: hub-b, kind: hub, write: true, tlp_max: amber, certificate: "{pin}"}}
"""
B_COMPACT = """
name: mirror
scope:
  actors: [{{name: Islamic State Khorasan Province}}]
expires: 2099-12-31
members:
  - {{name: b-analyst, write: true, tlp_max: amber}}
  - {{name: b-ngo, tlp_max: green}}
  - {{name: hub-c, kind: hub, tlp_max: amber, certificate: "{pin}"}}
"""
TAXII = "application/taxii+json;version=2.1"


def indicator(level: str, n: int, **extra: Any) -> dict[str, Any]:
    return {"type": "indicator", "spec_version": "2.1", "id": f"indicator--{uuid.uuid4()}",
            "created": "2024-01-01T00:00:00.000Z", "modified": f"2024-01-01T00:00:{n % 60:02d}.000Z",
            "name": f"{level} {n}", "pattern": "[ipv4-addr:value = '10.0.0.1']", "pattern_type": "stix",
            "valid_from": "2024-01-01T00:00:00Z", "object_marking_refs": [markings.TLP2[level][0]],
            "x_tearline_about_ref": ACTOR_ID} | extra


def cli(*args: str, db: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "tearline", *args, "--db", db], capture_output=True, text=True,
                          timeout=120, env=os.environ | env)


@pytest.fixture
def federation(tmp_path: Path) -> Iterator[dict[str, Any]]:
    certs = Certs(tmp_path)
    a_db, b_db = f"sqlite:///{tmp_path / 'a.db'}", f"sqlite:///{tmp_path / 'b.db'}"
    a = Store(a_db)
    a.migrate()
    a_tokens = compact.apply(a, compact.parse(A_COMPACT.format(pin=tls.fingerprint_of_file(certs.hub_b[0]))))
    b = Store(b_db)
    b.migrate()
    b_tokens = compact.apply(b, compact.parse(B_COMPACT.format(pin=tls.fingerprint_of_file(certs.hub_c[0]))))
    (tmp_path / "a").mkdir()
    proc, port = serve(tmp_path / "a", a_db, certs)
    b_env = {"TEARLINE_AUDIT_KEY": str(tmp_path / "b-audit.key"), "TEARLINE_LEAK_KEY": str(tmp_path / "b-leak.key")}
    url = f"https://127.0.0.1:{port}/taxii2/fed/collections/intel/"
    from tearline import peering

    peering.add(b, "a", "mirror", url, "hub-b", a_tokens["hub-b"], str(certs.hub_b[0]), str(certs.hub_b[1]),
                str(certs.server_ca_file))
    try:
        yield {"certs": certs, "port": port, "a": a, "b": b, "a_tokens": a_tokens, "b_tokens": b_tokens,
               "b_db": b_db, "b_env": b_env, "tmp": tmp_path, "url": url}
    finally:
        proc.terminate()
        proc.wait(20)
        a.close()
        b.close()


def post(f: dict[str, Any], who: str, objs: list[dict[str, Any]]) -> None:
    with f["certs"].client(f["port"], None, (who, f["a_tokens"][who])) as c:
        r = c.post("/taxii2/fed/collections/intel/objects/", json={"objects": objs}, headers={"Content-Type": TAXII})
        assert r.status_code == 202 and r.json()["failure_count"] == 0, r.text


def given(f: dict[str, Any], member: str) -> set[str]:
    store: Store = f["b"]
    with store.engine.connect() as conn:
        who = next(m for m in store.members_of(conn, "mirror") if m.name == member)
    coll = store.collection("mirror", "intel")
    assert coll is not None
    hub_keys = keys.load(Settings(db=f["b_db"], leak_key=f["b_env"]["TEARLINE_LEAK_KEY"]))
    return {o["id"] for o in release.released(store, who, coll, hub_keys, dt.date.today())
            if o["type"] == "indicator"}


def sync(f: dict[str, Any], by_cli: bool = False) -> dict[str, Any]:
    """`tearline peer sync` as the operator runs it, or the same function in this process (faster)."""
    if by_cli:
        done = cli("peer", "sync", "a", "--json", db=f["b_db"], env=f["b_env"])
        assert done.returncode == 0, done.stderr
        return dict(json.loads(done.stdout.strip().splitlines()[-1]))
    from tearline import audit, peering

    settings = Settings(db=f["b_db"], audit_key=f["b_env"]["TEARLINE_AUDIT_KEY"],
                        leak_key=f["b_env"]["TEARLINE_LEAK_KEY"])
    return peering.sync(f["b"], keys.load(settings), audit.AuditLog(f["b"], Path(settings.audit_key)), "a")


def test_b_mirrors_what_a_releases_to_it_and_its_own_gate_decides_who_reads_it(federation: dict[str, Any]) -> None:
    f = federation
    green, amber = indicator("green", 1), indicator("amber", 2)
    strict = indicator("amber+strict", 3)  # the analyst's alone
    red_other = indicator("red", 4, x_tearline_recipients=["other"])  # RED for another member of A
    post(f, "analyst", [green, amber, strict, red_other])
    # the operator's commands: a second peer of the same name is refused with the reason
    again = cli("peer", "add", "a", "--compact", "mirror", "--url", f["url"], "--member", "hub-b", "--token", "t",
                db=f["b_db"], env=f["b_env"])
    assert again.returncode == 2 and "a peer named 'a' exists already" in again.stderr
    first = sync(f, by_cli=True)
    assert first["pulled"] >= 2 and first["failures"] == []
    assert given(f, "b-analyst") == {green["id"], amber["id"]}  # what A released to hub-b, and no more
    assert given(f, "b-ngo") == {green["id"]}  # B's own gate: its GREEN member gets the GREEN one
    assert given(f, "hub-c") == set()  # a third hub never receives what B mirrors
    # a second pull brings only what is new, and nothing twice
    newer = indicator("green", 5)
    post(f, "analyst", [newer])
    second = sync(f)
    assert second["pulled"] == 1
    assert given(f, "b-analyst") == {green["id"], amber["id"], newer["id"]}
    assert sync(f)["pulled"] == 0


def a_reads(f: dict[str, Any], who: str) -> set[str]:
    with f["certs"].client(f["port"], None, (who, f["a_tokens"][who])) as c:
        body = c.get("/taxii2/fed/collections/intel/objects/", params={"match[type]": "indicator"}).json()
    return {o["id"] for o in body.get("objects", [])}


def test_b_pushes_what_its_members_share_as_a_whole_and_nothing_loops(federation: dict[str, Any]) -> None:
    from tearline import write

    f = federation
    from_a = indicator("green", 1)
    post(f, "analyst", [from_a])
    sync(f)
    store: Store = f["b"]
    with store.engine.connect() as conn:
        b_analyst = next(m for m in store.members_of(conn, "mirror") if m.name == "b-analyst")
    coll = store.collection("mirror", "intel")
    assert coll is not None
    hub_keys = keys.load(Settings(db=f["b_db"], leak_key=f["b_env"]["TEARLINE_LEAK_KEY"]))
    shared, strict = indicator("green", 2), indicator("amber+strict", 3)
    cut = indicator("green", 4, description="below the line",
                    granular_markings=[{"marking_ref": markings.TLP2["amber+strict"][0], "selectors": ["description"]}])
    status = write.add_envelope(store, coll, b_analyst, [shared, strict, cut], hub_keys)
    assert status["failure_count"] == 0, status
    done = sync(f)
    assert done["pushed"] == 2 and done["refused"] == 0
    seen_at_a = a_reads(f, "analyst")
    assert {shared["id"], cut["id"]} <= seen_at_a and strict["id"] not in seen_at_a
    with f["certs"].client(f["port"], None, ("analyst", f["a_tokens"]["analyst"])) as c:
        copy = c.get(f"/taxii2/fed/collections/intel/objects/{cut['id']}/").json()["objects"][0]
    assert "description" not in copy  # the part its author kept to itself stayed on B
    # what went to A comes back in the next pull as B's own, and is not written again; A's is not sent back
    again = sync(f)
    assert again["pulled"] == 0 and again["pushed"] == 0
    # a peer cannot add versions to what B holds from elsewhere: an id of B's own, shared at A as A's
    forged = strict | {"modified": "2025-01-01T00:00:00.000Z", "name": "words put in b-analyst's mouth",
                       "object_marking_refs": [markings.TLP2["green"][0]]}
    post(f, "analyst", [forged])
    third = sync(f)
    assert third["pulled"] == 0 and [x["id"] for x in third["failures"]] == [strict["id"]]
    assert "held on this hub from elsewhere" in third["failures"][0]["message"]
    with store.engine.connect() as conn:
        b_ngo = next(m for m in store.members_of(conn, "mirror") if m.name == "b-ngo")
    assert not list(release.released(store, b_ngo, coll, hub_keys, dt.date.today(), ids=[strict["id"]]))
    (own,) = release.released(store, b_analyst, coll, hub_keys, dt.date.today(), ids=[strict["id"]])
    assert own["name"] == strict["name"]


def test_a_pull_spans_pages_and_resumes_where_it_stopped(federation: dict[str, Any]) -> None:
    from tearline import audit, peering

    f = federation
    sent = [indicator("green", n) for n in range(25)]
    post(f, "analyst", sent)
    store: Store = f["b"]
    settings = Settings(db=f["b_db"], audit_key=f["b_env"]["TEARLINE_AUDIT_KEY"],
                        leak_key=f["b_env"]["TEARLINE_LEAK_KEY"])
    log = audit.AuditLog(store, Path(settings.audit_key))
    hub_keys = keys.load(settings)
    calls = {"n": 0}

    def flaky(peer: peering.Peer) -> httpx.Client:
        client = peering.client(peer)

        def cut(request: httpx.Request) -> None:
            calls["n"] += 1
            if calls["n"] == 3:  # the third page never comes back
                raise httpx.ReadError("connection reset", request=request)
        client.event_hooks["request"].append(cut)
        return client

    with pytest.raises(Exception, match="connection reset"):
        peering.pull(store, hub_keys, log, "a", page=5, connect=flaky)
    part = len(given(f, "b-analyst") & {o["id"] for o in sent})
    assert part < 25  # two pages of five committed, with the position to resume from
    (state,) = peering.listed(store)
    assert state["next"] and "connection reset" in state["last_error"]
    peering.pull(store, hub_keys, log, "a", page=5)
    assert given(f, "b-analyst") >= {o["id"] for o in sent}
    (state,) = peering.listed(store)
    assert state["next"] is None and state["last_error"] is None and state["added_after"]
    assert state["pulled"] == 25  # A's own objects (TLP definitions, the actor) B holds already
    # every page is on record on B, as the peer's, and no version was written twice
    from sqlalchemy import select

    from tearline.store.schema import audit as audit_table
    with store.engine.connect() as conn:
        pulls = conn.execute(select(audit_table.c.ids).where(audit_table.c.actor == "peer:a")).all()
    mirrored = [i for (ids,) in pulls for i in json.loads(ids)]
    assert sorted(mirrored) == sorted(o["id"] for o in sent)


def test_what_a_no_longer_releases_to_b_goes_from_b_on_the_next_sync(federation: dict[str, Any]) -> None:
    f = federation
    kept, deleted, amber = indicator("green", 1), indicator("green", 2), indicator("amber", 3)
    post(f, "analyst", [kept, deleted, amber])
    sync(f)
    assert given(f, "b-analyst") == {kept["id"], deleted["id"], amber["id"]}
    # deleted on A
    with f["certs"].client(f["port"], None, ("analyst", f["a_tokens"]["analyst"])) as c:
        assert c.delete(f"/taxii2/fed/collections/intel/objects/{deleted['id']}/").status_code == 200
    assert sync(f)["removed"] == 1
    assert given(f, "b-analyst") == {kept["id"], amber["id"]}
    # B's membership narrowed on A: AMBER no longer crosses, and what crossed goes
    narrowed = A_COMPACT.replace("kind: hub, write: true, tlp_max: amber", "kind: hub, write: true, tlp_max: green")
    compact.apply(f["a"], compact.parse(narrowed.format(pin=tls.fingerprint_of_file(f["certs"].hub_b[0]))))
    assert sync(f)["removed"] == 1
    assert given(f, "b-analyst") == {kept["id"]}
    # and ended: the next sync says so, and nothing mirrored from A stays
    ended = "\n".join(line for line in A_COMPACT.splitlines() if "hub-b" not in line)
    compact.apply(f["a"], compact.parse(ended.format(pin="")))
    done = cli("peer", "sync", "a", db=f["b_db"], env=f["b_env"])
    assert done.returncode == 1 and "refused this hub (401" in done.stderr and "are removed" in done.stderr
    assert given(f, "b-analyst") == set()
    status = cli("peer", "status", "--json", db=f["b_db"], env=f["b_env"])
    (peer,) = json.loads(status.stdout)
    assert "refused this hub" in peer["last_error"]


def test_the_hub_syncs_its_peers_by_itself(federation: dict[str, Any]) -> None:
    import time

    from tests.conftest import Hub, free_port

    f = federation
    shared = indicator("green", 1)
    post(f, "analyst", [shared])
    settings = Settings(db=f["b_db"], port=free_port(), audit_key=f["b_env"]["TEARLINE_AUDIT_KEY"],
                        leak_key=f["b_env"]["TEARLINE_LEAK_KEY"], peer_sync_seconds=1, admin_token="ops-token")
    with Hub(f["b"], settings) as hub:
        deadline = time.monotonic() + 30
        while shared["id"] not in given(f, "b-analyst"):
            assert time.monotonic() < deadline, "the hub did not pull from its peer"
            time.sleep(0.5)
        # the operator's page says so
        with httpx.Client(base_url=hub.url, follow_redirects=True, timeout=30) as ops:
            assert ops.get("/ui/operator/peers/").status_code in (401, 303, 200)  # not without signing in
            assert "Peer hubs" not in ops.get("/ui/operator/peers/").text
            ops.post("/signin/operator/", data={"token": "ops-token"})
            shown = ops.get("/ui/operator/peers/")
        assert shown.status_code == 200 and "Peer hubs" in shown.text
        assert ">a<" in shown.text and f["url"] in shown.text and ">never<" not in shown.text
