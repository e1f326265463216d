"""What the compact's policy costs, on the same store, in one run: every read with the member's gate and
the same read without it.

    .venv/bin/python bench/policy_cost.py --objects 1000000 [--db /tmp/policy.db] [--reads 2000]

The workload is hub_vs_medallion's (indicators, each with its `indicates` relationship to the actor,
half the collection relationships) in a compact of five members. Two measurements:

1. In-process against the store (no HTTP, no audit): paging with limit=100 from random points,
   match[type], and object by id, as the compact's AMBER member and as a GREEN one, each timed with
   the gate and with only the collection's clause. This is the policy's SQL alone.
2. Over HTTP, two hubs on the same database side by side: `tearline serve` as shipped, and the same
   server started by this script with the gate replaced by the bare collection (a benchmark-only
   patch; the product has no such switch). Requests alternate between them, so the difference is
   what members' reads lose to the policy in the served figures.
"""

from __future__ import annotations

import argparse
import importlib.util
import random
import statistics
import sys
import tempfile
import time
from dataclasses import replace as dataclasses_replace
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from sqlalchemy import select  # noqa: E402

from tearline import compact, leak, release, write  # noqa: E402
from tearline.keys import HubKeys  # noqa: E402
from tearline.store import Store  # noqa: E402
from tearline.store import objects as rows_of  # noqa: E402
from tearline.store.schema import objects  # noqa: E402
from tearline.taxii.query import TaxiiQuery  # noqa: E402

console = Console()
COMPACT = ("name: bench\nscope:\n  actors:\n    - {name: Islamic State Khorasan Province, aliases: [ISKP]}\n"
           # the benchmark measures throughput, so the guard's rate limits are set out of its way
           "rate_limits: {read: 1000000, write: 1000000, meta: 1000000}\n"
           "members:\n  - {name: analyst, write: true, tlp_max: amber}\n"
           + "".join(f"  - {{name: partner-{k}, write: true, tlp_max: green}}\n" for k in range(4)))


def workload() -> Any:
    spec = importlib.util.spec_from_file_location("hub_vs_medallion", HERE / "hub_vs_medallion.py")
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module.make_objects


def hub_keys(db: Path) -> HubKeys:
    """The keys of the hubs this script serves (TEARLINE_LEAK_KEY below): paging tokens are theirs."""
    return HubKeys(leak.load_or_create_key(Path(str(db) + ".leak-key")))


def build(db: Path, n: int) -> float:
    store = Store(f"sqlite:///{db}")
    store.migrate()
    tokens = compact.apply(store, compact.parse(COMPACT))
    coll = store.collection("bench", "intel")
    member = store.authenticate(tokens["analyst"], "analyst")
    keys = hub_keys(db)
    objs = workload()(n, 1)
    started = time.perf_counter()
    with Progress(TextColumn("ingest"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console) as bar:
        task = bar.add_task("", total=n)
        for i in range(0, n, 1000):
            status = write.add_envelope(store, coll, member, objs[i:i + 1000], keys)  # type: ignore[arg-type]
            assert status["success_count"] == len(objs[i:i + 1000]), status["failures"][:3]
            bar.advance(task, 1000)
    store.close()
    return n / (time.perf_counter() - started)


def percentiles(samples: list[float]) -> tuple[float, float]:
    samples = sorted(samples)
    return statistics.median(samples) * 1000, samples[int(len(samples) * 0.99) - 1] * 1000


def measure(store: Store, gates: dict[str, Any], reads: int, seed: int) -> dict[tuple[str, str], tuple[float, float]]:
    """Each gate is a release.Gate, or a bare collection clause; the filters are release's own."""
    with store.engine.connect() as conn:
        rows = conn.execute(select(objects.c.stix_id, objects.c.added_us).where(objects.c.coll == 1)).all()
    rnd = random.Random(seed)
    shapes = {
        "page": lambda: (TaxiiQuery(limit=100), rnd.choice(rows)[1]),
        "match[type]": lambda: (TaxiiQuery(types=("indicator",), limit=100), rnd.choice(rows)[1]),
        "by id": lambda: (TaxiiQuery(ids=(rnd.choice(rows)[0],), limit=100), None),
    }
    bare = release.Gate((), release.Reader(0, "nobody", "clear"), 1, False)

    def where(gate: Any, q: TaxiiQuery, after: int | None) -> list[Any]:
        if isinstance(gate, release.Gate):
            return release._filters(gate, q, after)
        clauses = list(release._filters(bare, dataclasses_replace(q, versions=("all",)), after))
        return [*gate, *clauses, objects.c.is_latest.is_(True)]
    out: dict[tuple[str, str], list[float]] = {}
    with Progress(TextColumn("reads"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console) as bar:
        task = bar.add_task("", total=reads * len(shapes) * len(gates))
        for _ in range(reads):
            for shape, make in shapes.items():
                q, after = make()
                for name, gate in gates.items():  # interleaved, so machine noise falls on both alike
                    started = time.perf_counter()
                    with store.engine.connect() as conn:
                        rows_of.page(conn, (objects.c.stix_id, objects.c.version, objects.c.body, objects.c.author),
                                     where(gate, q, after), q.limit, bool(q.ids))
                    out.setdefault((shape, name), []).append(time.perf_counter() - started)
                    bar.advance(task)
    return {key: percentiles(samples) for key, samples in out.items()}


# The policy-free hub: the same app with the gate reduced to the collection (benchmark only).
_BARE_HUB = """
import datetime, sys
from sqlalchemy import bindparam, false, select
import uvicorn
from tearline.store import Store
from tearline import release
from tearline.config import load
from tearline.store.schema import objects, refs
from tearline.web.app import create_app

class Bare(release.Gate):
    def edge(self, newest):
        return (objects.c.is_latest if newest else objects.c.is_first).is_(True)

release.gate_for = lambda member, coll, today: Bare((objects.c.coll == coll.num,), release.Reader.of(member),
                                                     coll.num, False)
release._hidden_refs = lambda gate, skip: select(refs.c.added_us, refs.c.target_id).where(
    refs.c.added_us.in_(bindparam("added", expanding=True)), false())
settings = load({"db": sys.argv[1], "port": int(sys.argv[2]), "audit_key": sys.argv[3], "leak_key": sys.argv[4]})
uvicorn.run(create_app(settings, Store(settings.db)), host="127.0.0.1", port=settings.port, log_level="warning")
"""


def served(db: Path, reads: int) -> dict[tuple[str, str], tuple[float, float]]:
    """Paging, match[type] and by-id p50/p99 over HTTP, with the policy and without, alternating."""
    import os
    import socket
    import subprocess

    import httpx

    def port() -> int:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            return int(s.getsockname()[1])

    url = f"sqlite:///{db}"
    store = Store(url)
    compact.apply(store, compact.parse(COMPACT))  # (again: a store built before the limits were lifted)
    token = store.rotate_token("bench", "analyst")
    with store.engine.connect() as conn:
        rows = conn.execute(select(objects.c.stix_id, objects.c.added_us).where(objects.c.coll == 1)).all()
    store.close()
    paging = hub_keys(db)
    keys = (str(db) + ".audit-key", str(db) + ".leak-key")
    env = dict(os.environ, TEARLINE_AUDIT_KEY=keys[0], TEARLINE_LEAK_KEY=keys[1],
               TEARLINE_ADDRESS_PER_MINUTE="10000000")
    ports = {"policy": port(), "no policy": port()}
    procs = [subprocess.Popen([sys.executable, "-m", "tearline", "serve", "--db", url, "--port", str(ports["policy"])],
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL),
             subprocess.Popen([sys.executable, "-c", _BARE_HUB, url, str(ports["no policy"]), *keys],
                              env=dict(env, PYTHONPATH=str(HERE.parent)), stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)]
    clients = {k: httpx.Client(base_url=f"http://127.0.0.1:{p}", auth=("analyst", token), timeout=60,
                               headers={"Accept": "application/taxii+json;version=2.1"}) for k, p in ports.items()}
    try:
        for c in clients.values():
            for _ in range(300):
                try:
                    c.get("/taxii2/")
                    break
                except httpx.HTTPError:
                    time.sleep(0.1)
        rnd = random.Random(11)
        path = "/taxii2/bench/collections/intel/objects/"
        shapes = {
            "page": lambda: (path, {"limit": "100", "next": paging.next_token(1, rnd.choice(rows)[1])}),
            "match[type]": lambda: (path, {"limit": "100", "match[type]": "indicator",
                                           "next": paging.next_token(1, rnd.choice(rows)[1])}),
            "by id": lambda: (f"{path}{rnd.choice(rows)[0]}/", {}),
        }
        out: dict[tuple[str, str], list[float]] = {}
        with Progress(TextColumn("HTTP reads"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                      console=console) as bar:
            task = bar.add_task("", total=reads * len(shapes) * 2)
            for _ in range(reads):
                for shape, make in shapes.items():
                    where, params = make()
                    for name, c in clients.items():
                        started = time.perf_counter()
                        r = c.get(where, params=params)
                        out.setdefault((shape, name), []).append(time.perf_counter() - started)
                        assert r.status_code == 200, (name, r.status_code, r.text[:200])
                        bar.advance(task)
        return {key: percentiles(samples) for key, samples in out.items()}
    finally:
        for c in clients.values():
            c.close()
        for p in procs:
            p.terminate()
            p.wait(20)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--objects", type=int, default=100_000)
    parser.add_argument("--db", type=Path, help="reuse (or create) this store")
    parser.add_argument("--reads", type=int, default=2000, help="requests per shape and gate")
    args = parser.parse_args()
    db = args.db or Path(tempfile.mkdtemp()) / "policy.db"
    if not db.exists():
        rate = build(db, args.objects)
        console.print(f"ingest with the scope check: {rate:,.0f} objects/s")
    store = Store(f"sqlite:///{db}")
    coll = store.collection("bench", "intel")
    assert coll is not None
    gates: dict[str, Any] = {"bare": (objects.c.coll == coll.num,)}
    import datetime

    with store.engine.connect() as conn:
        for member in store.members_of(conn, "bench"):
            if member.name in ("analyst", "partner-0"):
                gates[f"{member.name} ({member.tlp_max})"] = release.gate_for(member, coll, datetime.date.today())
    results = measure(store, gates, args.reads, 7)
    table = Table(title=f"policy cost at {store.version_count(coll.num):,} objects (in-process, SQLite)")
    for col in ("read", "gate", "p50 ms", "p99 ms", "p50 vs bare"):
        table.add_column(col, justify="right" if col != "read" and col != "gate" else "left")
    for shape in ("page", "match[type]", "by id"):
        bare = results[(shape, "bare")][0]
        for name in gates:
            p50, p99 = results[(shape, name)]
            table.add_row(escape(shape), name, f"{p50:.2f}", f"{p99:.2f}",
                          "" if name == "bare" else f"+{(p50 / bare - 1) * 100:.0f}%")
    console.print(table)
    store.close()
    http = served(db, max(200, args.reads // 3))
    table = Table(title="over HTTP: tearline serve, with the policy and without (same store, alternating)")
    for col in ("read", "hub", "p50 ms", "p99 ms", "p50 lost to the policy"):
        table.add_column(col, justify="left" if col in ("read", "hub") else "right")
    for shape in ("page", "match[type]", "by id"):
        free = http[(shape, "no policy")][0]
        for name in ("no policy", "policy"):
            p50, p99 = http[(shape, name)]
            table.add_row(escape(shape), name, f"{p50:.2f}", f"{p99:.2f}",
                          "" if name == "no policy" else f"{(p50 / free - 1) * 100:+.0f}%")
    console.print(table)


if __name__ == "__main__":
    main()
