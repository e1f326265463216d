"""Several hub processes on one PostgreSQL store behave as one hub: two live `tearline serve` processes (and
one `serve --workers 2`) on 127.0.0.1, each request sent to one or the other. Rate limits, dashboard sessions,
member removal, the audit chain, the background jobs' leader and the gate's release invariant are checked
across them."""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tearline import audit, compact, keys, markings
from tearline.config import Settings
from tearline.store import Store
from tests.conftest import PG_URL, TAXII, free_port
from tests.test_release_invariant import COMPACT, MEMBERS, WRITERS, entitled, marked_indicator, read_all

pytestmark = pytest.mark.skipif(PG_URL is None, reason="no PostgreSQL (TEARLINE_TEST_PG unset)")

ADMIN = "operator-" + uuid.uuid4().hex
LIMITED = """
  - {name: limited, write: false, tlp_max: green, rate_limits: {read: 60, meta: 60}}
  - {name: leaving, write: false, tlp_max: green}
"""


class Process:
    """One `tearline serve` on a port of its own, sharing the store and the hub's key files."""

    def __init__(self, db: str, secrets: Path, *args: str):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = os.environ | {"TEARLINE_DB": db, "TEARLINE_AUDIT_KEY": str(secrets / "audit.key"),
                            "TEARLINE_LEAK_KEY": str(secrets / "leak.key"),
                            "TEARLINE_WARN_OUTBOX": str(secrets / "outbox"), "TEARLINE_ADMIN_TOKEN": ADMIN,
                            "TEARLINE_GUARD_SCAN_SECONDS": "1"}
        self.log = (secrets / f"serve-{self.port}.log").open("w")
        self.proc = subprocess.Popen([sys.executable, "-m", "tearline", "serve", "--port", str(self.port), *args],
                                     env=env, stdout=self.log, stderr=subprocess.STDOUT)

    def wait(self, timeout: float = 90) -> Process:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"hub on {self.port} exited: {Path(self.log.name).read_text()}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.url}/tearline/health/", timeout=2).status_code == 200:
                    return self
            time.sleep(0.2)
        raise RuntimeError(f"hub on {self.port} did not start: {Path(self.log.name).read_text()}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.log.close()

    def metrics(self) -> dict[str, float]:
        text = httpx.get(f"{self.url}/tearline/admin/metrics/", headers={"Authorization": f"Bearer {ADMIN}"}).text
        out: dict[str, float] = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                name, _, value = line.rpartition(" ")
                out[name] = float(value)
        return out


def client(proc: Process, member: str, token: str) -> httpx.Client:
    return httpx.Client(base_url=proc.url, auth=(member, token), headers={"Accept": TAXII}, timeout=30)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    from sqlalchemy import create_engine, text

    assert PG_URL is not None
    name = f"tl_cluster_{uuid.uuid4().hex[:8]}"
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"CREATE DATABASE {name}"))
    db = PG_URL.rsplit("/", 1)[0] + f"/{name}"
    secrets = tmp_path_factory.mktemp("cluster")
    store = Store(db)
    store.migrate()
    tokens = compact.apply(store, compact.parse(COMPACT + LIMITED))
    # the hub's keys exist before its processes start, as an operator copies them to every machine
    hub_settings = Settings(db=db, audit_key=str(secrets / "audit.key"), leak_key=str(secrets / "leak.key"))
    keys.load(hub_settings)
    audit.AuditLog(store, Path(hub_settings.audit_key)).signer()
    procs = [Process(db, secrets), Process(db, secrets)]
    try:
        for p in procs:
            p.wait()
        yield {"db": db, "store": store, "tokens": tokens, "a": procs[0], "b": procs[1], "secrets": secrets}
    finally:
        for p in procs:
            p.stop()
        store.close()
        with admin.connect() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        admin.dispose()


def test_a_members_rate_limit_holds_across_both_processes(cluster: dict[str, Any]) -> None:
    # 60 reads a minute: a bucket of 10, refilled at one a second. Two processes with a bucket each would let
    # 20 through at once; one shared bucket lets 10, plus what refills while the requests run.
    token = cluster["tokens"]["limited"]
    clients = [client(cluster["a"], "limited", token), client(cluster["b"], "limited", token)]
    started = time.monotonic()
    codes = [clients[i % 2].get("/taxii2/inv/collections/intel/objects/").status_code for i in range(40)]
    elapsed = time.monotonic() - started
    granted = codes.count(200)
    assert set(codes) == {200, 429}
    assert 10 <= granted <= 10 + int(elapsed) + 1, (granted, elapsed)
    assert 429 in codes[0::2] and 429 in codes[1::2]  # both processes refuse once the one bucket is empty


def test_a_dashboard_session_made_on_one_process_works_on_the_other(cluster: dict[str, Any]) -> None:
    a, b = cluster["a"], cluster["b"]
    with httpx.Client(base_url=a.url, timeout=30) as on_a, httpx.Client(base_url=b.url, timeout=30) as on_b:
        signed = on_a.post("/signin/", data={"member": "bravo", "token": cluster["tokens"]["bravo"]})
        assert signed.status_code == 303
        cookie = signed.cookies["tearline_session"]
        on_b.cookies.set("tearline_session", cookie)
        page = on_b.get("/ui/")
        assert page.status_code == 200 and "bravo" in page.text
        # the store holds the id's hash, never the cookie itself
        from sqlalchemy import text
        with cluster["store"].engine.connect() as conn:
            held = [r[0] for r in conn.execute(text("SELECT id_hash FROM ui_sessions"))]
        assert cookie not in held and held
        assert on_b.post("/signout/").status_code == 303
        assert on_a.get("/ui/").status_code == 303  # signed out everywhere: back to sign-in


def test_a_member_removed_or_its_token_rotated_is_refused_by_every_process_at_once(cluster: dict[str, Any]) -> None:
    a, b = cluster["a"], cluster["b"]
    token = cluster["tokens"]["leaving"]
    for proc in (a, b):  # each process has served the member: anything it kept would now be stale
        assert client(proc, "leaving", token).get("/taxii2/inv/collections/").status_code == 200
    # the compact file without the member, applied by the operator from another process
    spec = cluster["secrets"] / "narrowed.yaml"
    spec.write_text(COMPACT + LIMITED.replace("  - {name: leaving, write: false, tlp_max: green}\n", ""))
    done = subprocess.run([sys.executable, "-m", "tearline", "compact", "apply", str(spec)],
                          env=os.environ | {"TEARLINE_DB": cluster["db"]}, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    for proc in (b, a):
        assert client(proc, "leaving", token).get("/taxii2/inv/collections/").status_code == 401


def test_the_audit_chain_verifies_after_concurrent_requests_to_both(cluster: dict[str, Any]) -> None:
    tokens = cluster["tokens"]
    errors: list[str] = []

    def work(proc: Process, member: str, n: int) -> None:
        with client(proc, member, tokens[member]) as c:
            for i in range(n):
                if member in WRITERS and i % 3 == 0:
                    obj = marked_indicator(f"indicator--{uuid.uuid4()}", "2024-01-01T00:00:00.000Z", "green", [])
                    r = c.post("/taxii2/inv/collections/intel/objects/", json={"objects": [obj]},
                               headers={"Content-Type": TAXII})
                else:
                    r = c.get("/taxii2/inv/collections/intel/objects/", params={"limit": "5"})
                if r.status_code >= 500:
                    errors.append(r.text)

    threads = [threading.Thread(target=work, args=(cluster["a" if i % 2 else "b"], m, 15))
               for i, m in enumerate([*MEMBERS, *MEMBERS])]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    verified = subprocess.run([sys.executable, "-m", "tearline", "audit", "verify", "--db", cluster["db"]],
                              env=os.environ | {"TEARLINE_AUDIT_KEY": str(cluster["secrets"] / "audit.key")},
                              capture_output=True, text=True)
    assert verified.returncode == 0, verified.stdout + verified.stderr


def _post(c: httpx.Client, obj: dict[str, Any]) -> None:
    r = c.post("/taxii2/inv/collections/intel/objects/", json={"objects": [obj]}, headers={"Content-Type": TAXII})
    assert r.status_code == 202 and r.json()["success_count"] == 1, r.text


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=st.lists(st.tuples(st.sampled_from(WRITERS), st.sampled_from(markings.LEVELS),
                              st.lists(st.sampled_from(list(MEMBERS)), max_size=2, unique=True), st.booleans()),
                    min_size=1, max_size=8))
def test_the_release_invariant_holds_with_requests_spread_over_both(cluster: dict[str, Any], ops: Any) -> None:
    tokens = cluster["tokens"]
    procs = (cluster["a"], cluster["b"])
    expected: dict[str, set[tuple[str, str]]] = {m: set() for m in MEMBERS}
    posted: set[tuple[str, str]] = set()
    for author, level, recipients, through_b in ops:
        ident, stamp = f"indicator--{uuid.uuid4()}", "2024-02-01T00:00:00.000Z"
        with client(procs[through_b], author, tokens[author]) as c:
            _post(c, marked_indicator(ident, stamp, level, recipients))
        posted.add((ident, stamp))
        for m in MEMBERS:
            if entitled(m, author, level, recipients):
                expected[m].add((ident, stamp))
    for member in MEMBERS:
        for proc in procs:
            with client(proc, member, tokens[member]) as c:
                assert read_all(c, "objects") & posted == expected[member]
                assert read_all(c, "manifest") & posted == expected[member]


def test_one_process_at_a_time_runs_the_background_jobs_and_another_takes_over(
    tmp_path: Path, cluster: dict[str, Any],
) -> None:
    a, b = cluster["a"], cluster["b"]
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        leading = [p.metrics().get("tearline_background_leader", 0.0) for p in (a, b)]
        if sum(leading) == 1:
            break
        time.sleep(0.5)
    assert sorted(leading) == [0.0, 1.0]
    # a third process joins and dies: whoever leads, one leader remains, and a dead leader is replaced
    third = Process(cluster["db"], cluster["secrets"]).wait()
    try:
        time.sleep(2.5)
        assert sum(p.metrics().get("tearline_background_leader", 0.0) for p in (a, b, third)) == 1
        leader = next(p for p in (a, b, third) if p.metrics().get("tearline_background_leader") == 1)
        if leader is not third:  # kill the leader without a goodbye: its lock goes with its connection
            survivors = [p for p in (a, b, third) if p is not leader]
            third.proc.kill()
            third.proc.wait()
            survivors.remove(third)
            leader.proc.kill()
            leader.proc.wait()
            replacement = [Process(cluster["db"], cluster["secrets"]).wait()]
            cluster["a" if leader is a else "b"] = replacement[0]
            survivors += replacement
        else:
            third.proc.kill()
            third.proc.wait()
            survivors = [a, b]
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if sum(p.metrics().get("tearline_background_leader", 0.0) for p in survivors) == 1:
                break
            time.sleep(0.5)
        assert sum(p.metrics().get("tearline_background_leader", 0.0) for p in survivors) == 1
    finally:
        third.stop()


def test_serve_with_two_workers_answers_as_one_hub_and_adds_up_its_metrics(cluster: dict[str, Any]) -> None:
    hub = Process(cluster["db"], cluster["secrets"], "--workers", "2").wait()
    try:
        with client(hub, "bravo", cluster["tokens"]["bravo"]) as c:
            for _ in range(30):
                assert c.get("/taxii2/inv/collections/").status_code == 200
        seen = hub.metrics()
        assert seen['tearline_requests_total{endpoint_class="meta",status="200"}'] >= 30
        assert seen["tearline_background_leader"] in (0.0, 1.0)  # at most one of its workers leads
        children = subprocess.run(["pgrep", "-P", str(hub.proc.pid), "-f", "multiprocessing"],
                                  capture_output=True, text=True).stdout.split()
        assert len([c for c in children if c]) >= 2
    finally:
        hub.stop()


def test_workers_on_sqlite_are_refused_with_the_reason(tmp_path: Path) -> None:
    run = subprocess.run([sys.executable, "-m", "tearline", "serve", "--workers", "2", "--db",
                          f"sqlite:///{tmp_path / 'hub.db'}", "--port", str(free_port())],
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 2
    assert re.search(r"--workers 2: several hub processes need a PostgreSQL store", run.stderr)
