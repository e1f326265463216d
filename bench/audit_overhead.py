"""What the audit trail costs a request: the hub at a commit before the audit trail (or before a part of
it, e.g. --before 1ce4c6b for the signed tree heads) and the hub now, side by side in one run, on the same
data and the same requests.

    .venv/bin/python bench/audit_overhead.py [--before 1f975b7] [--objects 10000] [--requests 300]

Both hubs run as `tearline serve` on SQLite on loopback, each loaded with the same indicator and
relationship pairs through TAXII. Then, alternating between the two so that machine noise falls on
both, the same requests: a page of 100 objects, a filtered page, an object by id, and a POST of 10
objects. Prints median and p90 latency per request kind and the ratio now/before.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from rich.console import Console
from rich.table import Table

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

from hub_vs_medallion import TAXII, free_port, make_objects  # noqa: E402

console = Console()
COMPACT = ("name: bench\nscope:\n  actors:\n    - {name: Islamic State Khorasan Province, aliases: [ISKP]}\n"
           "members:\n  - {name: analyst, write: true, tlp_max: amber}\n"
           + "".join(f"  - {{name: partner-{k}, write: true, tlp_max: green}}\n" for k in range(4)))
INTEL = "/taxii2/bench/collections/intel/objects/"


class Hub:
    def __init__(self, label: str, source: Path, workdir: Path):
        self.label = label
        env = dict(os.environ, PYTHONPATH=str(source), TEARLINE_MAX_CONTENT_LENGTH=str(64 * 1024 * 1024),
                   TEARLINE_AUDIT_KEY=str(workdir / "audit.key"), TEARLINE_ADDRESS_PER_MINUTE="10000000")
        db = f"sqlite:///{workdir / 'hub.db'}"
        # rate limits (newer than the audit trail) are set out of the way where the hub knows them
        limits = "rate_limits: {read: 1000000, write: 1000000, meta: 1000000}\n"
        known = (source / "tearline" / "guard.py").exists()
        (workdir / "bench.yaml").write_text(COMPACT + (limits if known else ""))
        tl = [sys.executable, "-m", "tearline"]
        out = subprocess.run([*tl, "compact", "apply", str(workdir / "bench.yaml"), "--db", db, "--json"], env=env,
                             check=True, capture_output=True, text=True, cwd=workdir).stdout
        tokens = json.loads(out)["tokens"]
        self.token = tokens["analyst"]
        self.port = free_port()
        self.proc = subprocess.Popen([*tl, "serve", "--db", db, "--port", str(self.port)], env=env, cwd=workdir,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.http = httpx.Client(base_url=f"http://127.0.0.1:{self.port}", auth=("analyst", self.token),
                                 headers={"Accept": TAXII, "Content-Type": TAXII}, timeout=120)
        # another member loads the data, so the analyst reads partners' objects (which carry its
        # fingerprint) rather than its own
        self.loader = httpx.Client(base_url=f"http://127.0.0.1:{self.port}", auth=("partner-0", tokens["partner-0"]),
                                   headers={"Accept": TAXII, "Content-Type": TAXII}, timeout=120)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if self.http.get("/taxii2/").status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.2)
        raise RuntimeError(f"{label} hub did not start")

    def stop(self) -> None:
        self.http.close()
        self.loader.close()
        self.proc.terminate()
        self.proc.wait(10)


def timed(hub: Hub, method: str, path: str, **kw: object) -> float:
    start = time.perf_counter()
    response = hub.http.request(method, path, **kw)
    elapsed = time.perf_counter() - start
    if response.status_code >= 300:
        raise RuntimeError(f"{hub.label}: {method} {path} answered {response.status_code}: {response.text[:200]}")
    return elapsed * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--before", default="1f975b7", help="a commit before the audit trail")
    parser.add_argument("--objects", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=300, help="requests of each kind to each hub")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        before_src = base / "before-src"
        subprocess.run(["git", "worktree", "add", "--detach", str(before_src), args.before], cwd=ROOT, check=True,
                       capture_output=True)
        hubs = []
        try:
            for label, src in (("before", before_src), ("now", ROOT)):
                (base / label).mkdir()
                hubs.append(Hub(label, src, base / label))
            objs = make_objects(args.objects, seed=7)
            ids = [o["id"] for o in objs if o["type"] == "indicator"]
            for hub in hubs:
                for i in range(0, len(objs), 1000):
                    loaded = hub.loader.post(INTEL, content=json.dumps({"objects": objs[i:i + 1000]}))
                    assert loaded.status_code == 202, loaded.text[:200]
            rnd = random.Random(3)
            extra = make_objects(args.requests * 10, seed=11)
            kinds = {
                "page of 100": lambda h, k: timed(h, "GET", INTEL, params={"limit": 100}),
                "filtered page": lambda h, k: timed(h, "GET", INTEL,
                                                    params={"match[type]": "relationship", "limit": 100}),
                "object by id": lambda h, k: timed(h, "GET", INTEL + rnd.choice(ids) + "/"),
                "POST 10 objects": lambda h, k: timed(h, "POST", INTEL, content=json.dumps(
                    {"objects": extra[k * 10:(k + 1) * 10]})),
            }
            results: dict[tuple[str, str], list[float]] = {}
            for name, run in kinds.items():
                console.print(f"{name}: {args.requests} requests to each hub, alternating …")
                for k in range(args.requests):
                    for hub in (hubs if k % 2 else hubs[::-1]):
                        results.setdefault((name, hub.label), []).append(run(hub, k))
        finally:
            for hub in hubs:
                hub.stop()
            subprocess.run(["git", "worktree", "remove", "--force", str(before_src)], cwd=ROOT, capture_output=True)
    table = Table(title=f"Request latency now and at {args.before} (the audit trail came after 1f975b7, its "
                        f"tree heads after 1ce4c6b), {args.objects:,} objects, {args.requests} requests each")
    for col in ("request", "before p50", "now p50", "before p90", "now p90", "now / before (p50)"):
        table.add_column(col, justify="right")
    for name in kinds:
        b, n = results[(name, "before")], results[(name, "now")]
        p90 = lambda xs: statistics.quantiles(xs, n=10)[-1]  # noqa: E731
        table.add_row(name, f"{statistics.median(b):.2f} ms", f"{statistics.median(n):.2f} ms", f"{p90(b):.2f} ms",
                      f"{p90(n):.2f} ms", f"{statistics.median(n) / statistics.median(b):.2f}")
    console.print(table)


if __name__ == "__main__":
    main()
