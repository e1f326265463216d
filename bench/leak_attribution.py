"""How often leak attribution names an innocent member, and how often it names the leaker, by length.

    .venv/bin/python bench/leak_attribution.py [--trials 100000] [--longest 400] [--members 12] [--seed 21]

Runs tests/test_leak.py's simulation with more trials, longer texts and more members than the test's:
each trial a random hub key, 2 to ``--members`` members over one or two compacts, a text of 2 to
``--longest`` words (log-uniform) from a vocabulary of 4, 60 or 2,000 words, the copy released to one
member through ``leak.mark_text``, half the time cut to a fragment, sometimes with a share of its spaces
swapped by the leaker, sometimes in a bundle that quotes part of it again, then traced with
``leak.trace``. A false attribution is a trial naming anyone but the recipient. It prints the count of
those, how the innocent members' p-values fall, the leaker's detection rate by distinct gaps and share
of spaces swapped, the shortest text that named the leaker, and the fewest gaps that can name anyone
for a given number of members (even when every gap agrees).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=100_000)
    parser.add_argument("--longest", type=int, default=400, help="words in the longest text")
    parser.add_argument("--members", type=int, default=12, help="most members in a trial")
    parser.add_argument("--seed", type=int, default=21)
    args = parser.parse_args()
    from tearline import leak
    from tests import test_leak  # the simulation, as the test runs it

    console = Console(width=150)  # the table whole, even when printed to a file
    tally = test_leak.simulate(args.trials, args.seed, args.longest, args.members)
    console.print(f"false attributions: {tally.false_attributions} of {tally.trials:,} trials, naming at a "
                  f"Šidák-corrected p ≤ {leak.NAME_P:.0e} with ≥ {leak.NAME_SHARE:.0%} of gaps agreeing "
                  f"({tally.seconds:.0f} s)")
    console.print(f"innocent members traced: {tally.innocent_tests:,}; the smallest corrected p among them "
                  f"{tally.nearest_innocent:.1e}; share with raw p ≤ t: " +
                  ", ".join(f"t={t}: {n / tally.innocent_tests:.4f}" for t, n in tally.innocent_p_at_most.items()))
    console.print(f"shortest text that named the leaker: {tally.shortest_named} gaps")
    flips = sorted(set(test_leak.FLIPS))
    table = Table(title="leaker named, by distinct gaps traced and share of spaces the leaker swapped")
    table.add_column("gaps")
    for flip in flips:
        table.add_column(f"{flip:.0%} swapped", justify="right")
    for bucket in test_leak.LENGTHS:
        cells = []
        for flip in flips:
            hit, n = tally.rate(bucket, flip)
            cells.append(f"{hit / n:.1%} ({hit}/{n})" if n else "-")
        table.add_row(f"{bucket[0]}-{bucket[1]}", *cells)
    console.print(table)
    hit, n = tally.repeats_cut
    console.print(f"untouched fragments of 33+ gaps cut from a text of four words repeated: named in {hit}/{n}")
    fewest = Table(title="fewest gaps that can name anyone")
    fewest.add_column("members")
    fewest.add_column("gaps", justify="right")
    for members in (2, 3, 5, 10, 20, 50, 100, 1000):
        fewest.add_row(str(members), str(leak.min_gaps(members)))
    console.print(fewest)


if __name__ == "__main__":
    main()
