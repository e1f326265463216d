"""Two hub processes on one PostgreSQL store against one: the same client, the same machine, in one run.

    python bench/cluster_scaleout.py --pg postgresql+psycopg://postgres@127.0.0.1:55433/postgres \\
        [--objects 20000] [--seconds 10] [--rounds 3]

Two `tearline serve` processes (ports A and B) run on a fresh database loaded with --objects indicators.
"one" sends every request to A; "two" alternates requests between A and B. Each round measures, in turn:
8 concurrent readers (objects by id, and every fifth request a page of 100 walked with `next`) and 4
concurrent writers (envelopes of 100 new indicators), for --seconds each; rounds interleave the two
set-ups, and the table gives medians over rounds with the ratio two/one. Errors (5xx, refused connections)
are counted; rate limits are set out of the way (the guard has its own tests).
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.progress import Progress
from rich.table import Table
from sqlalchemy import create_engine, text

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tearline import audit, compact, keys, markings  # noqa: E402
from tearline.config import Settings  # noqa: E402
from tearline.store import Store  # noqa: E402

ACTOR = compact.actor_object(compact.Actor("Islamic State Khorasan Province", ()))["id"]

TAXII = "application/taxii+json;version=2.1"
COMPACT = """
name: bench
scope:
  actors: [{name: Islamic State Khorasan Province}]
expires: 2099-12-31
rate_limits: {read: 1000000, meta: 1000000, write: 1000000}
members:
  - {name: writer, write: true, tlp_max: amber}
  - {name: reader, write: false, tlp_max: amber}
"""
console = Console()


def indicator(n: int) -> dict[str, Any]:
    return {"type": "indicator", "spec_version": "2.1", "id": f"indicator--{uuid.uuid4()}",
            "created": "2024-01-01T00:00:00.000Z", "modified": "2024-01-01T00:00:00.000Z",
            "name": f"bench indicator {n}", "pattern": f"[ipv4-addr:value = '10.{n // 65536 % 256}.{n // 256 % 256}"
            f".{n % 256}']", "pattern_type": "stix", "valid_from": "2024-01-01T00:00:00Z",
            "object_marking_refs": [markings.TLP2["green"][0]], "x_tearline_about_ref": ACTOR}


def start(db: str, secrets: Path, port: int) -> subprocess.Popen[bytes]:
    env = os.environ | {"TEARLINE_DB": db, "TEARLINE_AUDIT_KEY": str(secrets / "audit.key"),
                        "TEARLINE_LEAK_KEY": str(secrets / "leak.key"), "TEARLINE_WARN_OUTBOX": str(secrets / "out"),
                        "TEARLINE_ADDRESS_PER_MINUTE": "100000000", "TEARLINE_ANONYMOUS_PER_MINUTE": "100000000"}
    proc = subprocess.Popen([sys.executable, "-m", "tearline", "serve", "--port", str(port)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/tearline/health/", timeout=2).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.3)
    raise SystemExit(f"the hub on port {port} did not start")


def run_load(urls: list[str], workers: int, seconds: float, job: Any) -> tuple[int, int]:
    """``workers`` threads calling ``job(client)`` on clients spread over ``urls`` until the time is up;
    return (units done, errors)."""
    done, errors = [0] * workers, [0] * workers
    deadline = time.monotonic() + seconds

    def worker(i: int) -> None:
        clients = [httpx.Client(base_url=u, timeout=30, headers={"Accept": TAXII}) for u in urls]
        turn = i
        while time.monotonic() < deadline:
            c = clients[turn % len(clients)]
            turn += 1
            try:
                units = job(c)
            except httpx.HTTPError:
                errors[i] += 1
                continue
            if units < 0:
                errors[i] += 1
            else:
                done[i] += units
        for c in clients:
            c.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(done), sum(errors)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pg", default=os.environ.get("TEARLINE_TEST_PG"), help="a PostgreSQL server URL")
    parser.add_argument("--objects", type=int, default=20_000)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if not args.pg:
        raise SystemExit("--pg (or TEARLINE_TEST_PG): a PostgreSQL server URL is needed")

    name = f"tl_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(args.pg, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"CREATE DATABASE {name}"))
    db = args.pg.rsplit("/", 1)[0] + f"/{name}"
    secrets = Path(tempfile.mkdtemp(prefix="tearline-bench-"))
    procs: list[subprocess.Popen[bytes]] = []
    try:
        store = Store(db)
        store.migrate()
        tokens = compact.apply(store, compact.parse(COMPACT))
        settings = Settings(db=db, audit_key=str(secrets / "audit.key"), leak_key=str(secrets / "leak.key"))
        keys.load(settings)
        audit.AuditLog(store, Path(settings.audit_key)).signer()
        ports = [_free(), _free()]
        procs = [start(db, secrets, p) for p in ports]
        urls = [f"http://127.0.0.1:{p}" for p in ports]
        base = "/taxii2/bench/collections/intel/objects/"
        ids: list[str] = []
        with httpx.Client(base_url=urls[0], auth=("writer", tokens["writer"]), timeout=120,
                          headers={"Accept": TAXII, "Content-Type": TAXII}) as w, Progress(console=console) as bar:
            task = bar.add_task(f"loading {args.objects:,} indicators", total=args.objects)
            for start_at in range(0, args.objects, 1000):
                batch = [indicator(n) for n in range(start_at, min(args.objects, start_at + 1000))]
                r = w.post(base, json={"objects": batch})
                assert r.status_code == 202 and r.json()["success_count"] == len(batch), r.text[:300]
                ids += [o["id"] for o in batch]
                bar.update(task, advance=len(batch))
        auth_r = httpx.BasicAuth("reader", tokens["reader"])
        auth_w = httpx.BasicAuth("writer", tokens["writer"])
        counter = iter(range(args.objects, 10**9))
        cursors: dict[int, str | None] = {}

        def read(c: httpx.Client) -> int:
            key = id(c)
            if random.random() < 0.2:  # a page of the walk through the collection
                params = {"limit": "100"} | ({"next": cursors[key]} if cursors.get(key) else {})
                r = c.get(base, params=params, auth=auth_r)
                if r.status_code != 200:
                    return -1
                body = r.json()
                cursors[key] = body.get("next") if body.get("more") else None
                return 1
            r = c.get(f"{base}{random.choice(ids)}/", auth=auth_r)
            return 1 if r.status_code == 200 else -1

        def write(c: httpx.Client) -> int:
            batch = [indicator(next(counter)) for _ in range(100)]
            r = c.post(base, json={"objects": batch}, auth=auth_w, headers={"Content-Type": TAXII})
            return r.json()["success_count"] if r.status_code == 202 else -1

        results: dict[tuple[str, str], list[float]] = {}
        errors: dict[tuple[str, str], int] = {}
        with Progress(console=console) as bar:
            task = bar.add_task("measuring", total=args.rounds * 4)
            for _ in range(args.rounds):
                for setup, targets in (("one", urls[:1]), ("two", urls)):
                    for kind, workers, job in (("reads", 8, read), ("writes", 4, write)):
                        units, failed = run_load(targets, workers, args.seconds, job)
                        results.setdefault((setup, kind), []).append(units / args.seconds)
                        errors[(setup, kind)] = errors.get((setup, kind), 0) + failed
                        bar.advance(task, 1)
        table = Table(title=f"Tearline on PostgreSQL: two processes against one ({args.objects:,} objects, "
                            f"{args.rounds} rounds of {args.seconds:g} s, medians; {os.cpu_count()} cores)")
        for col in ("measure", "one process", "two processes", "two / one", "errors (one / two)"):
            table.add_column(col, justify="right" if col != "measure" else "left")
        for kind, label in (("reads", "8 concurrent readers: requests/s"),
                            ("writes", "4 concurrent writers (envelopes of 100): objects/s")):
            one = statistics.median(results[("one", kind)])
            two = statistics.median(results[("two", kind)])
            table.add_row(label, f"{one:,.0f}", f"{two:,.0f}", f"{two / one:.2f}×",
                          f"{errors[('one', kind)]} / {errors[('two', kind)]}")
        console.print(table)
    finally:
        for p in procs:
            p.terminate()
            p.wait(20)
        with admin.connect() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        admin.dispose()


def _free() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


if __name__ == "__main__":
    main()
