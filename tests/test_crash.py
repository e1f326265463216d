"""kill -9 in the middle of large POSTs: after a restart every reported success is stored, each
envelope is either wholly there or wholly absent, and each stored one is on record in the audit trail
(the write and its entry commit together)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid

import httpx
import orjson
from sqlalchemy import select

from tearline.store import Store
from tearline.store.schema import audit
from tests.conftest import TAXII, free_port, stored_ids
from tests.stixgen import indicator

OBJECTS = "/taxii2/isis-k/collections/intel/objects/"


def _start(db_url: str, port: int) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-m", "tearline", "serve", "--db", db_url, "--port", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            httpx.get(f"http://127.0.0.1:{port}/taxii2/", timeout=1)
            return proc
        except httpx.TransportError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("hub did not start")


def test_kill_9_during_large_posts_loses_no_success_leaves_no_half_envelope_and_no_write_off_the_record(
    store: Store, tokens: dict[str, str], db_url: str
) -> None:
    port = free_port()
    proc = _start(db_url, port)
    envelopes = {}
    for e in range(40):
        run = uuid.uuid4().hex[:8]
        envelopes[e] = [indicator(0, name=f"env {e}", x_run=run) | {"id": f"indicator--{uuid.uuid4()}"} for _ in range(1500)]
    reported: dict[int, set[str]] = {}
    stop = threading.Event()

    def writer(worker: int) -> None:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", auth=("state-a", tokens["state-a"]),
                          headers={"Accept": TAXII, "Content-Type": TAXII}, timeout=60) as c:
            for e in range(worker, 40, 2):
                if stop.is_set():
                    return
                try:
                    r = c.post(OBJECTS, json={"objects": envelopes[e]})
                except httpx.TransportError:
                    return
                if r.status_code == 202:
                    reported[e] = {s["id"] for s in r.json().get("successes", [])}

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(2)]
    for t in threads:
        t.start()
    while len(reported) < 3:
        time.sleep(0.01)
    time.sleep(0.15)  # land the kill inside a later envelope's write
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    stop.set()
    for t in threads:
        t.join()

    proc = _start(db_url, port)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", auth=("state-a", tokens["state-a"]),
                          headers={"Accept": TAXII}, timeout=60) as c:
            stored = stored_ids(c, OBJECTS, {"match[type]": "indicator", "limit": "1000"})
    finally:
        proc.kill()
        proc.wait()
    for e, ids in reported.items():
        assert ids <= stored, f"envelope {e}: reported successes missing after the crash"
    for e, objs in envelopes.items():
        present = {o["id"] for o in objs} & stored
        assert present in (set(), {o["id"] for o in objs}), f"envelope {e} is half-written ({len(present)} of 1500)"
    assert len(reported) < 40, "the kill came after every envelope was written; the test proved nothing"
    with store.engine.connect() as conn:
        audited = {i for (ids,) in conn.execute(select(audit.c.ids).where(audit.c.method == "POST", audit.c.status == 202))
                   for i in orjson.loads(ids)}
    for e, objs in envelopes.items():
        if {o["id"] for o in objs} <= stored:
            assert {o["id"] for o in objs} <= audited, f"envelope {e} is stored but not on record in the audit trail"
