"""How long `tearline audit verify` takes on a large log.

    .venv/bin/python bench/audit_verify.py [--entries 1000000] [--repeat 3]

Builds an audit log of N entries shaped like real ones (a member reading a page of 50 objects, with its
filters and the ids returned) on a SQLite file, chained and checkpointed exactly as the hub does (a
signed checkpoint every 1,000 entries), then times `tearline audit verify` on it as a subprocess and
prints the median. The log is written in bulk rather than request by request, which only changes how
long the set-up takes.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.progress import Progress

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from sqlalchemy import insert  # noqa: E402

from tearline import audit  # noqa: E402
from tearline.store import Store  # noqa: E402
from tearline.store.schema import audit as audit_table  # noqa: E402
from tearline.store.schema import audit_checkpoints, audit_keys  # noqa: E402

console = Console()
EVERY = 1000


def build(store: Store, key_file: Path, n: int) -> None:
    key = audit.load_or_create_key(key_file)
    public = audit.public_bytes(key)
    kid = audit.key_id(public)
    with store.engine.begin() as conn:
        conn.execute(insert(audit_keys).values(key_id=kid, public_key=public.hex(), created_us=1))
    prev, at = audit.GENESIS, 1_790_000_000_000_000
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task(f"writing {n:,} entries", total=n)
        for start in range(1, n + 1, EVERY):
            rows = []
            for seq in range(start, min(start + EVERY, n + 1)):
                ids = [f"indicator--{seq:08x}-{k:04x}-4000-8000-000000000000" for k in range(50)]
                row = {"seq": seq, "at_us": at + seq * 1000, "actor": f"member-{seq % 7}", "api_root": "isis-k",
                       "method": "GET", "endpoint": "/taxii2/{api_root}/collections/{collection_id}/objects/",
                       "path": "/taxii2/isis-k/collections/intel/objects/",
                       "query": '{"limit":"50","match[type]":"indicator"}', "status": 200, "reason": "",
                       "ids": "[" + ",".join(f'"{i}"' for i in ids) + "]", "count": 50, "prev": prev}
                row["hash"] = prev = audit.entry_hash(row)
                rows.append(row)
            cp = {"seq": rows[-1]["seq"], "first_seq": start,
                  "root": audit.merkle_root([bytes.fromhex(r["hash"]) for r in rows]).hex(), "head": prev,
                  "at_us": rows[-1]["at_us"], "key_id": kid}
            cp["signature"] = key.sign(audit.checkpoint_message(cp)).hex()
            with store.engine.begin() as conn:
                conn.execute(insert(audit_table), rows)
                conn.execute(insert(audit_checkpoints).values(**cp))
            progress.advance(task, len(rows))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        db = f"sqlite:///{Path(tmp) / 'audit.db'}"
        store = Store(db)
        store.migrate()
        started = time.perf_counter()
        build(store, Path(tmp) / "audit.key", args.entries)
        console.print(f"built {args.entries:,} entries in {time.perf_counter() - started:.0f} s "
                      f"({Path(tmp, 'audit.db').stat().st_size / 1e6:.0f} MB)")
        times = []
        for r in range(args.repeat):
            started = time.perf_counter()
            done = subprocess.run([sys.executable, "-m", "tearline", "audit", "verify", "--db", db],
                                  capture_output=True, text=True, cwd=HERE.parent)
            times.append(time.perf_counter() - started)
            if done.returncode != 0:
                raise SystemExit(f"verify failed: {done.stderr}")
            console.print(f"run {r + 1}: {times[-1]:.1f} s — {done.stdout.strip()}")
        console.print(f"[bold]tearline audit verify, {args.entries:,} entries: median {statistics.median(times):.1f} s "
                      f"(bar: under 30 s)[/bold]")


if __name__ == "__main__":
    main()
