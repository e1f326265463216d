"""What the compact's policy costs, on the same store, in one run: every read with the member's gate and
the same read of the bare collection, and ingest with the scope check and without a compact's actors.

    .venv/bin/python bench/policy_cost.py --objects 1000000 [--db /tmp/policy.db] [--reads 2000]

The workload is hub_vs_medallion's (indicators, each with its `indicates` relationship to the actor,
half the collection relationships) in a compact of five members. Reads run in-process against the
store (no HTTP, no audit): paging with limit=100 from random points, match[type], and object by id,
as the compact's AMBER member and as a GREEN one, each timed with the gate and without. The printed
ratio is what the policy costs; medians and p99s, per-request.
"""

from __future__ import annotations

import argparse
import importlib.util
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from sqlalchemy import select  # noqa: E402

from tearline.store import Store  # noqa: E402  (before release: the store's import order)
from tearline import compact, release  # noqa: E402
from tearline.store.schema import members, objects  # noqa: E402
from tearline.taxii.query import TaxiiQuery  # noqa: E402

console = Console()
COMPACT = ("name: bench\nscope:\n  actors:\n    - {name: Islamic State Khorasan Province, aliases: [ISKP]}\n"
           "members:\n  - {name: analyst, write: true, tlp_max: amber}\n"
           + "".join(f"  - {{name: partner-{k}, write: true, tlp_max: green}}\n" for k in range(4)))


def workload() -> Any:
    spec = importlib.util.spec_from_file_location("hub_vs_medallion", HERE / "hub_vs_medallion.py")
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module.make_objects


def build(db: Path, n: int) -> float:
    store = Store(f"sqlite:///{db}")
    store.migrate()
    tokens = compact.apply(store, compact.parse(COMPACT))
    coll = store.collection("bench", "intel")
    member = store.authenticate(tokens["analyst"], "analyst")
    objs = workload()(n, 1)
    started = time.perf_counter()
    with Progress(TextColumn("ingest"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console) as bar:
        task = bar.add_task("", total=n)
        for i in range(0, n, 1000):
            status = store.add_objects(coll, member, objs[i:i + 1000], coll.rules)  # type: ignore[arg-type]
            assert status["success_count"] == len(objs[i:i + 1000]), status["failures"][:3]
            bar.advance(task, 1000)
    store.close()
    return n / (time.perf_counter() - started)


def percentiles(samples: list[float]) -> tuple[float, float]:
    samples = sorted(samples)
    return statistics.median(samples) * 1000, samples[int(len(samples) * 0.99) - 1] * 1000


def measure(store: Store, gates: dict[str, Any], reads: int, seed: int) -> dict[tuple[str, str], tuple[float, float]]:
    with store.engine.connect() as conn:
        rows = conn.execute(select(objects.c.stix_id, objects.c.added_us).where(objects.c.coll == 1)).all()
    rnd = random.Random(seed)
    shapes = {
        "page": lambda: TaxiiQuery(limit=100, after_us=rnd.choice(rows)[1]),
        "match[type]": lambda: TaxiiQuery(types=("indicator",), limit=100, after_us=rnd.choice(rows)[1]),
        "by id": lambda: TaxiiQuery(ids=(rnd.choice(rows)[0],), limit=100),
    }
    out: dict[tuple[str, str], list[float]] = {}
    with Progress(TextColumn("reads"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console) as bar:
        task = bar.add_task("", total=reads * len(shapes) * len(gates))
        for _ in range(reads):
            for shape, make in shapes.items():
                q = make()
                for name, gate in gates.items():  # interleaved, so machine noise falls on both alike
                    started = time.perf_counter()
                    store.page(gate, q)
                    out.setdefault((shape, name), []).append(time.perf_counter() - started)
                    bar.advance(task)
    return {key: percentiles(samples) for key, samples in out.items()}


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
    with store.engine.connect() as conn:
        for name in ("analyst", "partner-0"):
            row = conn.execute(select(members).where(members.c.api_root == "bench", members.c.name == name)).first()
            member = release.Member(row.id, "bench", name, True, True, row.tlp_max)
            gates[f"{name} ({row.tlp_max})"] = release.visible(member, coll)
    results = measure(store, gates, args.reads, 7)
    table = Table(title=f"policy cost at {store.count([objects.c.coll == coll.num]):,} objects (in-process, SQLite)")
    for col in ("read", "gate", "p50 ms", "p99 ms", "p50 vs bare"):
        table.add_column(col, justify="right" if col != "read" and col != "gate" else "left")
    for shape in ("page", "match[type]", "by id"):
        bare = results[(shape, "bare")][0]
        for name in gates:
            p50, p99 = results[(shape, name)]
            table.add_row(shape, name, f"{p50:.2f}", f"{p99:.2f}", "" if name == "bare" else f"+{(p50 / bare - 1) * 100:.0f}%")
    console.print(table)


if __name__ == "__main__":
    main()
