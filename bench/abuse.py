"""Honest members' latency while a hostile member does its worst, against their latency alone.

    .venv/bin/python bench/abuse.py [--runs 3] [--seconds 8]

Runs tests/test_abuse.py's scenario (the hub as `tearline serve` in its own process; three honest members
reading and writing, first alone, then while a hostile member sends envelopes at max_objects of invalid
objects, descriptions at max_string, objects nested past the depth limit, writes to ids hidden from it, and a
stranger on the same address floods with long query strings) `--runs` times, and prints the honest members'
p50 and p99 alone and under attack, and the p99 ratio per run and its median. The hardening bar is a p99
ratio of at most 2×.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path

from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=8.0, help="seconds of each phase (alone, under attack)")
    args = parser.parse_args()
    os.environ["TEARLINE_ABUSE_SECONDS"] = str(args.seconds)
    from tearline.store import Store
    from tests import test_abuse  # the scenario, as the test runs it

    console = Console()
    table = Table(title=f"Honest members alone and under attack, {args.seconds:g} s each, ms")
    for col in ("run", "requests alone", "requests attacked", "p50 alone", "p50 attacked", "p99 alone",
                "p99 attacked", "p99 ratio"):
        table.add_column(col, justify="right")
    ratios = []
    for n in range(1, args.runs + 1):
        with tempfile.TemporaryDirectory() as tmp, console.status(f"run {n} of {args.runs}"):
            store = Store(f"sqlite:///{Path(tmp) / 'hub.db'}")
            store.migrate()
            run = test_abuse.scenario(store, Path(tmp))
            store.close()
        p99 = (test_abuse._p99(run.calm), test_abuse._p99(run.rough))
        ratios.append(p99[1] / p99[0])
        table.add_row(str(n), str(len(run.calm)), str(len(run.rough)), f"{statistics.median(run.calm) * 1000:.1f}",
                      f"{statistics.median(run.rough) * 1000:.1f}", f"{p99[0] * 1000:.1f}", f"{p99[1] * 1000:.1f}",
                      f"{ratios[-1]:.2f}")
    console.print(table)
    console.print(f"median p99 ratio {statistics.median(ratios):.2f} (bar: 2.00)")


if __name__ == "__main__":
    main()
