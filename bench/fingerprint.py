"""What the leak fingerprint costs per KB of description, now and with the regex it replaced, side by side.

    .venv/bin/python bench/fingerprint.py [--sizes 1 10 100] [--runs 7] [--old-budget 20]

For each size, three shapes of text: prose (words of 3-9 letters), the shape that froze the hub ("a b"
then one long word: the old regex looked ahead for the next word from every position) and a text of
single letters (the most gaps a text can have). Each is marked for one recipient (``leak.mark_text``,
what every read of a description does) ``--runs`` times; the script prints the median µs per KB for the
current code and for the old regex (skipped at sizes where one run would pass ``--old-budget`` seconds),
and whether µs per KB stays flat from the smallest size to the largest (linear) or grows (quadratic).
"""

from __future__ import annotations

import argparse
import hashlib
import random
import re
import statistics
import sys
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tearline import leak  # noqa: E402

KEY = hashlib.sha256(b"bench").digest()
# the regex of the hub before the fix, kept here only to measure against
_OLD_GAP = re.compile(r"(\S+)([ \u00a0])(?=(\S+))")


def old_mark(mkey: bytes, text: str) -> str:
    seen: dict[tuple[str, str], int] = {}
    chars = list(text)
    for m in _OLD_GAP.finditer(text):
        pair = (m.group(1).casefold(), m.group(3).casefold())
        n = seen.get(pair, 0)
        seen[pair] = n + 1
        bit = hashlib.blake2b(f"{pair[0]}\x00{pair[1]}\x00{n}".encode(), key=mkey, digest_size=1).digest()[0] & 1
        chars[m.start(2)] = leak.NBSP if bit else " "
    return "".join(chars)


def texts(kb: int, rnd: random.Random) -> dict[str, str]:
    size = kb * 1024
    words = []
    while sum(len(w) + 1 for w in words) < size:
        words.append("".join(rnd.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rnd.randint(3, 9))))
    return {"prose": " ".join(words)[:size], "a b + one long word": ("a b" + "x" * size)[:size],
            "single letters": ("a " * size)[:size]}


def timed(fn, mkey: bytes, text: str, runs: int) -> float:  # type: ignore[no-untyped-def]
    out = []
    for _ in range(runs):
        started = time.perf_counter()
        fn(mkey, text)
        out.append(time.perf_counter() - started)
    return statistics.median(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 10, 100], help="KB of description")
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--old-budget", type=float, default=20.0, help="seconds one run of the old regex may take")
    args = parser.parse_args()
    console = Console()
    rnd = random.Random(7)
    mkey = leak.member_key(KEY, "bench", "partner")
    table = Table(title="leak fingerprint: median µs per KB of description")
    for col in ("shape", "KB", "now µs/KB", "old regex µs/KB", "old / now"):
        table.add_column(col, justify="right" if col != "shape" else "left")
    per_kb: dict[str, list[float]] = {}
    prev_kb = args.sizes[0]
    old_out: dict[str, float] = {}
    for kb in args.sizes:
        for shape, text in texts(kb, rnd).items():
            now = timed(leak.mark_text, mkey, text, args.runs) * 1e6 / kb
            per_kb.setdefault(shape, []).append(now)
            old_txt, ratio = "skipped (over budget)", ""
            # quadratic shapes grow with the square: estimate from the last measured size before running
            guess = old_out.get(shape, 0.0) * (kb / prev_kb) ** 2 if shape in old_out else 0.0
            if guess <= args.old_budget:
                single = timed(old_mark, mkey, text, 1 if kb >= 100 else args.runs)
                old_out[shape] = single
                if old_mark(mkey, text) != leak.mark_text(mkey, text):
                    console.print(f"[red]{shape} at {kb} KB: the two mark different gaps[/red]")
                old_txt, ratio = f"{single * 1e6 / kb:,.1f}", f"{single * 1e6 / kb / now:,.1f}×"
            table.add_row(shape, str(kb), f"{now:,.1f}", old_txt, ratio)
        prev_kb = kb
    console.print(table)
    for shape, costs in per_kb.items():
        growth = costs[-1] / costs[0]
        console.print(f"{shape}: µs per KB at {args.sizes[-1]} KB is {growth:.2f}× that at {args.sizes[0]} KB "
                      f"({'flat: linear' if growth < 2 else 'growing: not linear'})")


if __name__ == "__main__":
    main()
