"""Tearline's hub and OASIS medallion (memory backend) side by side, on loopback, in one run.

    .venv/bin/python bench/hub_vs_medallion.py [--side-by-side 10000] [--alone 100000 1000000] [--ingest-runs 5]

Medallion is installed from PyPI into its own virtual environment (bench/.medallion-venv) the first
time. Both servers get the same objects and the same requests; the script prints medians and p99s per
workload and Tearline's ratio over medallion. Medallion's slow parts are bounded by a time budget
(it needed over ten minutes to page through 10k objects), so its rates come from the requests it
finished inside the budget. Then Tearline alone at larger sizes, on SQLite.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import orjson
import psutil
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
TAXII = "application/taxii+json;version=2.1"
MEDALLION_VENV = HERE / ".medallion-venv"
console = Console()


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


ACTOR_ID = "threat-actor--" + str(uuid.uuid5(uuid.UUID("6f1c8f7e-3a0b-4d8e-9a52-3b1f7f0c2d11"),
                                              "islamic state khorasan province"))


def make_objects(n: int, seed: int) -> list[dict[str, Any]]:
    """Indicators, each followed by its `indicates` relationship to the compact's actor: the shape of a
    real feed, all of it in scope (pairs never straddle an envelope, whose sizes are even)."""
    rnd = random.Random(seed)
    out: list[dict[str, Any]] = []
    i = 0
    green = ["marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb"]
    while len(out) < n:
        ts = f"20{15 + i % 10:02d}-{1 + i % 12:02d}-{1 + i % 28:02d}T{i % 24:02d}:00:00.000Z"

        def new_id(kind: str) -> str:
            return f"{kind}--{uuid.UUID(int=rnd.getrandbits(128), version=4)}"

        ind = new_id("indicator")
        out.append({"type": "indicator", "spec_version": "2.1", "id": ind, "created": ts, "modified": ts,
                    "name": f"ISKP relay {i}", "pattern": f"[domain-name:value = 'relay{i}.example.org']",
                    "pattern_type": "stix", "valid_from": ts, "labels": ["malicious-activity"],
                    "description": "Domain seen relaying ISKP propaganda " + "x" * (i % 200),
                    "object_marking_refs": green})
        out.append({"type": "relationship", "spec_version": "2.1", "id": new_id("relationship"), "created": ts,
                    "modified": ts, "relationship_type": "indicates", "source_ref": ind, "target_ref": ACTOR_ID,
                    "object_marking_refs": green})
        i += 1
    return out[:n]


class RssSampler(threading.Thread):
    def __init__(self, pid: int):
        super().__init__(daemon=True)
        self.proc = psutil.Process(pid)
        self.peak = 0
        self.running = True

    def run(self) -> None:
        while self.running:
            try:
                self.peak = max(self.peak, self.proc.memory_info().rss)
            except psutil.Error:
                return
            time.sleep(0.05)

    def stop(self) -> int:
        self.running = False
        self.join(1)
        return self.peak


class Server:
    name = ""

    def __init__(self) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None
        self.sampler: RssSampler | None = None
        self.loaded: list[bytes] = []  # every envelope posted, to reload after a restart
        self.peak = 0

    def launch(self) -> subprocess.Popen:
        raise NotImplementedError

    def start(self) -> None:
        self.proc = self.launch()
        self.wait()

    def reset(self) -> None:
        """Restart and reload: a request cut off by the budget leaves the server busy for minutes."""
        self.stop()
        self.start()
        with self.client() as c:
            for body in self.loaded:
                c.post(self.objects_path, content=body, headers={"Content-Type": TAXII})

    def client(self) -> httpx.Client:
        raise NotImplementedError

    objects_path = ""

    def wait(self) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                with self.client() as c:
                    if c.get(self.objects_path.rsplit("/collections/", 1)[0] + "/").status_code == 200:
                        self.sampler = RssSampler(self.proc.pid)  # type: ignore[union-attr]
                        self.sampler.start()
                        return
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"{self.name} did not start")

    def stop(self) -> int:
        self.peak = max(self.peak, self.sampler.stop() if self.sampler else 0)
        if self.proc:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.peak


class Tearline(Server):
    name = "tearline"

    def __init__(self, workdir: Path):
        super().__init__()
        db = f"sqlite:///{workdir / 'tearline.db'}"
        compact = workdir / "bench.yaml"
        compact.write_text(
            "name: bench\nscope:\n  actors:\n    - {name: Islamic State Khorasan Province, aliases: [ISKP]}\n"
            # the benchmark measures throughput, so the guard's rate limits are set out of its way
            "rate_limits: {read: 1000000, write: 1000000, meta: 1000000}\n"
            "members:\n  - {name: analyst, write: true, tlp_max: amber}\n"
            + "".join(f"  - {{name: partner-{k}, write: true, tlp_max: green}}\n" for k in range(4))
        )
        tearline = [sys.executable, "-m", "tearline"]
        out = subprocess.run([*tearline, "compact", "apply", str(compact), "--db", db, "--json"],
                             check=True, capture_output=True, text=True).stdout
        self.token = json.loads(out)["tokens"]["analyst"]
        self.command = [*tearline, "serve", "--db", db, "--port", str(self.port)]
        self.objects_path = "/taxii2/bench/collections/intel/objects/"
        self.start()

    def launch(self) -> subprocess.Popen:
        # one client address for every request, and envelopes past the defaults: the hub's per-address and
        # envelope limits (tearline.limits) are raised as for a trusted loader behind a proxy
        env = dict(os.environ, TEARLINE_MAX_CONTENT_LENGTH=str(64 * 1024 * 1024),
                   TEARLINE_ADDRESS_PER_MINUTE="10000000", TEARLINE_MAX_OBJECTS="100000")
        return subprocess.Popen(self.command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.base, auth=("analyst", self.token), headers={"Accept": TAXII}, timeout=600)


class Medallion(Server):
    name = "medallion"
    collection = "91a7b528-80eb-42ed-a74d-c6fbd5a26116"

    def __init__(self, workdir: Path):
        super().__init__()
        python = MEDALLION_VENV / "bin" / "python"
        if not python.exists():
            console.print("installing medallion 3.0.0 from PyPI into bench/.medallion-venv …")
            subprocess.run([sys.executable, "-m", "venv", str(MEDALLION_VENV)], check=True)
            subprocess.run([str(python), "-m", "pip", "install", "-q", "medallion==3.0.0"], check=True)
        data = {
            "/discovery": {"title": "bench", "default": f"{self.base}/bench/", "api_roots": [f"{self.base}/bench/"]},
            "bench": {
                "information": {"title": "bench", "versions": [TAXII], "max_content_length": 64 * 1024 * 1024},
                "status": [],
                "collections": [{"id": self.collection, "title": "intel", "can_read": True, "can_write": True,
                                 "media_types": ["application/stix+json;version=2.1"], "objects": [], "manifest": []}],
            },
        }
        (workdir / "medallion-data.json").write_text(json.dumps(data))
        config = {
            "backend": {"module": "medallion.backends.memory_backend", "module_class": "MemoryBackend",
                        "filename": str(workdir / "medallion-data.json")},
            "users": {"analyst": "secret"},
            "taxii": {"max_page_size": 1000},
        }
        (workdir / "medallion.json").write_text(json.dumps(config))
        self.command = [str(MEDALLION_VENV / "bin" / "medallion"), "--port", str(self.port), "--log-level", "ERROR",
                        str(workdir / "medallion.json")]
        self.objects_path = f"/bench/collections/{self.collection}/objects/"
        self.start()

    def launch(self) -> subprocess.Popen:
        return subprocess.Popen(self.command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.base, auth=("analyst", "secret"), headers={"Accept": TAXII}, timeout=600)


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


class Censored(Exception):
    """A request that did not finish inside the workload's time budget."""


def timed_get(c: httpx.Client, path: str, params: dict[str, str], deadline: float) -> tuple[float, Any]:
    left = deadline - time.monotonic()
    if left <= 0:
        raise Censored
    t = time.perf_counter()
    try:
        r = c.get(path, params=params, timeout=left)
    except httpx.TimeoutException:
        raise Censored from None
    assert r.status_code == 200, r.text[:200]
    return time.perf_counter() - t, r


def ingest(server: Server, objs: list[dict], size: int, progress: Progress, label: str) -> float:
    """One server's ingest rate: the interleaved measurement with nobody to interleave with."""
    return ingest_interleaved([server], objs, size, progress, f"{server.name}: {label}")[0]


def ingest_interleaved(servers: list[Server], objs: list[dict], size: int, progress: Progress,
                       label: str) -> list[float]:
    """Post the same envelopes to every server in turn, envelope by envelope, and time each server's
    own requests: on a shared, noisy machine a slow minute then hits both sides alike."""
    task = progress.add_task(label, total=len(objs) * len(servers))
    batches = [(len(objs[i : i + size]), orjson.dumps({"objects": objs[i : i + size]}))
               for i in range(0, len(objs), size)]
    spent = [0.0] * len(servers)
    clients = [server.client() for server in servers]
    try:
        for count, body in batches:
            for k, (server, c) in enumerate(zip(servers, clients, strict=True)):
                start = time.perf_counter()
                r = c.post(server.objects_path, content=body, headers={"Content-Type": TAXII})
                spent[k] += time.perf_counter() - start
                assert r.status_code == 202, r.text[:300]
                assert f'"success_count":{count},'.encode() in r.content.replace(b" ", b""), r.text[:300]
                progress.advance(task, count)
    finally:
        for c in clients:
            c.close()
    for server in servers:
        server.loaded += [body for _, body in batches]
    progress.remove_task(task)
    return [len(objs) / t for t in spent]


def page_through(server: Server, budget: float, progress: Progress, total: int) -> tuple[list[float], int, bool]:
    """Page with limit=100 until the end or until the budget runs out: per-page latencies, objects
    reached, and whether a request was cut off by the budget."""
    task = progress.add_task(f"{server.name}: paging limit=100", total=total)
    times: list[float] = []
    seen = 0
    params: dict[str, str] = {"limit": "100"}
    deadline = time.monotonic() + budget
    censored = False
    with server.client() as c:
        while True:
            try:
                took, r = timed_get(c, server.objects_path, params, deadline)
            except Censored:
                censored = True
                break
            times.append(took)
            body = r.json()
            seen += len(body.get("objects", []))
            progress.advance(task, len(body.get("objects", [])))
            if not body.get("more"):
                break
            params["next"] = body["next"]
    progress.remove_task(task)
    return times, seen, censored


def filtered(server: Server, ids: list[str], added_after: str, n: int, budget: float
             ) -> dict[str, tuple[list[float], bool]]:
    """n requests of each filtered GET, each kind inside its own time budget; (latencies, cut off)."""
    rnd = random.Random(7)
    kinds = {
        "match[type]": lambda: (server.objects_path, {"match[type]": "relationship", "limit": "100"}),
        "added_after": lambda: (server.objects_path, {"added_after": added_after, "limit": "100"}),
        "by id": lambda: (f"{server.objects_path}{rnd.choice(ids)}/", {}),
    }
    out: dict[str, tuple[list[float], bool]] = {}
    for key, make in kinds.items():
        times: list[float] = []
        censored = False
        deadline = time.monotonic() + budget
        with server.client() as c:
            for _ in range(n):
                try:
                    took, _r = timed_get(c, *make(), deadline)
                except Censored:
                    censored = True
                    break
                times.append(took)
        out[key] = (times, censored)
        if censored:
            server.reset()
    return out


def concurrent_readers(server: Server, ids: list[str], per_reader: int, budget: float
                       ) -> tuple[float, list[float], int]:
    """8 threads reading objects by id; requests/s of the successful ones, latencies, error count."""
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()
    deadline = time.monotonic() + budget

    def reader(seed: int) -> int:
        rnd = random.Random(seed)
        done = 0
        with server.client() as c:
            for _ in range(per_reader):
                if time.monotonic() > deadline:
                    break
                path = f"{server.objects_path}{rnd.choice(ids)}/"
                t = time.perf_counter()
                r = c.get(path)
                with lock:
                    latencies.append(time.perf_counter() - t)
                    if r.status_code != 200:
                        errors[0] += 1
                        continue
                done += 1
        return done

    start = time.perf_counter()
    with ThreadPoolExecutor(8) as pool:
        total = sum(pool.map(reader, range(8)))
    return total / (time.perf_counter() - start), latencies, errors[0]


def added_after_of(server: Server, ids: list[str]) -> str:
    """A date_added about the middle of the collection, as the server reports it (object by id is
    fast on both servers)."""
    with server.client() as c:
        r = c.get(f"{server.objects_path}{ids[len(ids) // 2]}/")
        return r.headers.get("X-TAXII-Date-Added-First") or r.headers.get("x-taxii-date-added-first")


Measure = tuple[float, str]  # value, and "" or ">" / "<" when the budget cut it off (a bound)


def _latencies(r: dict[str, Measure], key: str, times: list[float], censored: bool, budget: float) -> None:
    if not times:  # not one request finished inside the budget
        r[f"{key}: p50 ms"] = r[f"{key}: p99 ms"] = (1000 * budget, ">")
        return
    r[f"{key}: p50 ms"] = (1000 * statistics.median(times), "")
    r[f"{key}: p99 ms"] = (1000 * pct(times, 0.99), ">" if censored else "")


def _progress() -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    console=console, transient=True)


def side_by_side(n: int, budget: float) -> dict[str, dict[str, Measure]]:
    objs = make_objects(n, seed=1)
    extra = make_objects(2000, seed=2)
    ids = [o["id"] for o in objs]
    results: dict[str, dict[str, Measure]] = {}
    works = {cls.name: Path(tempfile.mkdtemp(prefix=f"bench-{cls.name}-")) for cls in (Tearline, Medallion)}
    servers: list[Server] = []
    try:
        servers += [Tearline(works["tearline"]), Medallion(works["medallion"])]
        with _progress() as progress:
            big = ingest_interleaved(servers, objs, 1000, progress, f"ingest {n} ×1000, both servers in turn")
            small = ingest_interleaved(servers, extra, 100, progress, "ingest 2000 ×100, both servers in turn")
    except BaseException:
        for server in servers:
            server.stop()
        raise
    for server, rate_big, rate_small in zip(servers, big, small, strict=True):
        work = works[server.name]
        r: dict[str, Measure] = {
            "ingest obj/s (envelopes of 1000)": (rate_big, ""),
            "ingest obj/s (envelopes of 100)": (rate_small, ""),
        }
        try:
            with _progress() as progress:
                times, seen, censored = page_through(server, budget, progress, n + len(extra))
            if censored:
                server.reset()
            pages_done = len(times)
            spent = sum(times) + (budget - sum(times) if censored else 0)
            r["paging limit=100: pages/s"] = (max(pages_done, 1) / spent, "<" if censored else "")
            _latencies(r, "paging limit=100", times, censored, budget)
            r["paging: objects reached in budget"] = (seen, "")
            added_after = added_after_of(server, ids)
            for key, (times, censored) in filtered(server, ids, added_after, 50, budget).items():
                _latencies(r, key, times, censored, budget)
            rate, lat, errors = concurrent_readers(server, ids, 50, budget)
            r["8 readers by id: requests/s"] = (rate, "")
            r["8 readers by id: p50 ms"] = (1000 * statistics.median(lat), "")
            r["8 readers by id: failed requests"] = (errors, "")
        finally:
            r["peak RSS MB"] = (server.stop() / 2**20, "")
            shutil.rmtree(work, ignore_errors=True)
        results[server.name] = r
        console.print(f"[green]{server.name} done[/green]")
    return results


def ingest_runs(n: int, runs: int) -> list[dict[str, float]]:
    """The ingest half of the side-by-side run, repeated on fresh servers: the ratio moves with the
    machine's load, so one run is not a figure. Each run posts n objects in envelopes of 1000, then
    2,000 in envelopes of 100, to both servers in turn."""
    objs, extra = make_objects(n, seed=1), make_objects(2000, seed=2)
    out: list[dict[str, float]] = []
    for run in range(runs):
        servers: list[Server] = []
        works = [Path(tempfile.mkdtemp(prefix="bench-ingest-")) for _ in range(2)]
        try:
            servers += [Tearline(works[0]), Medallion(works[1])]
            with _progress() as progress:
                big = ingest_interleaved(servers, objs, 1000, progress, f"run {run + 1}/{runs}: {n} ×1000")
                small = ingest_interleaved(servers, extra, 100, progress, f"run {run + 1}/{runs}: 2000 ×100")
        finally:
            for server in servers:
                server.stop()
            for work in works:
                shutil.rmtree(work, ignore_errors=True)
        out.append({"tearline ×1000": big[0], "medallion ×1000": big[1], "ratio ×1000": big[0] / big[1],
                    "tearline ×100": small[0], "medallion ×100": small[1], "ratio ×100": small[0] / small[1]})
        console.print(f"run {run + 1}: envelopes of 1000 {big[0]:,.0f} vs {big[1]:,.0f} obj/s "
                      f"= {big[0] / big[1]:.1f}×; "
                      f"of 100 {small[0]:,.0f} vs {small[1]:,.0f} = {small[0] / small[1]:.1f}×")
    return out


def alone(sizes: list[int]) -> dict[int, dict[str, Measure]]:
    results: dict[int, dict[str, Measure]] = {}
    for n in sizes:
        work = Path(tempfile.mkdtemp(prefix="bench-alone-"))
        server = Tearline(work)
        r: dict[str, Measure] = {}
        try:
            ids: list[str] = []
            ingest_time = 0.0
            with _progress() as progress:
                for start in range(0, n, 100_000):
                    chunk = make_objects(min(100_000, n - start), seed=1000 + start)
                    ids += [o["id"] for o in chunk[::50]]
                    rate = ingest(server, chunk, 1000, progress, f"ingest {start + len(chunk):,}/{n:,}")
                    ingest_time += len(chunk) / rate
                server.loaded.clear()  # never replayed; don't hold a million objects in the client
                r["ingest obj/s (envelopes of 1000)"] = (n / ingest_time, "")
                r["peak RSS MB during ingest"] = (server.sampler.peak / 2**20, "")  # type: ignore[union-attr]
                times, seen, _ = page_through(server, 3600, progress, n)
            assert seen >= n, f"paging reached {seen} of {n}"
            r["paging limit=100: pages/s"] = (len(times) / sum(times), "")
            _latencies(r, "paging limit=100", times, False, 0)
            for key, (times, _c) in filtered(server, ids, added_after_of(server, ids), 200, 600).items():
                _latencies(r, key, times, False, 0)
            rate, lat, errors = concurrent_readers(server, ids, 200, 600)
            r["8 readers by id: requests/s"] = (rate, "")
            r["8 readers by id: p50 ms"] = (1000 * statistics.median(lat), "")
            r["8 readers by id: failed requests"] = (errors, "")
            r["db size MB"] = (sum(p.stat().st_size for p in work.glob("tearline.db*")) / 2**20, "")
        finally:
            r["peak RSS MB"] = (server.stop() / 2**20, "")
            shutil.rmtree(work, ignore_errors=True)
        results[n] = r
        console.print(f"[green]tearline alone at {n:,} done[/green]")
    return results


def _fmt(m: Measure) -> str:
    value, bound = m
    return f"{bound} {value:,.1f}".strip()


def _ratio(key: str, t: Measure, m: Measure) -> str:
    if "reached" in key or "failed" in key or not t[0] or not m[0]:
        return ""
    lower_is_better = "ms" in key or "RSS" in key
    ratio = m[0] / t[0] if lower_is_better else t[0] / m[0]
    return f"{'≥ ' if m[1] else ''}{ratio:,.1f}×"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--side-by-side", type=int, default=10_000, help="objects for the side-by-side run (0: skip)")
    parser.add_argument("--alone", type=int, nargs="*", default=[100_000, 1_000_000], help="sizes for Tearline alone")
    parser.add_argument("--budget", type=float, default=90.0, help="seconds allowed per slow medallion workload")
    parser.add_argument("--ingest-runs", type=int, default=0,
                        help="also repeat the side-by-side ingest this many times on fresh servers "
                             "and print the median")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "hub_vs_medallion.json")
    args = parser.parse_args()
    report: dict[str, Any] = {"machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]}}
    if args.ingest_runs:
        runs = ingest_runs(args.side_by_side or 10_000, args.ingest_runs)
        report["ingest_runs"] = runs
        table = Table(title=f"Ingest, Tearline vs medallion, {len(runs)} runs on fresh servers: medians")
        for col in ("measure", "median", "runs"):
            table.add_column(col, justify="right")
        for key in runs[0]:
            values = [r[key] for r in runs]
            table.add_row(escape(key), f"{statistics.median(values):,.1f}", ", ".join(f"{v:,.1f}" for v in values))
        console.print(table)
    if args.side_by_side:
        sbs = side_by_side(args.side_by_side, args.budget)
        report["side_by_side"] = {"objects": args.side_by_side, **sbs}
        table = Table(title=f"Tearline vs medallion 3.0 (memory backend), {args.side_by_side:,} objects, loopback")
        for col in ("measure", "tearline", "medallion", "tearline's advantage"):
            table.add_column(col, justify="right")
        for key in sbs["tearline"]:
            t, m = sbs["tearline"][key], sbs["medallion"][key]
            table.add_row(escape(key), _fmt(t), _fmt(m), _ratio(key, t, m))
        console.print(table)
        console.print(f"'>' and '<': medallion did not finish inside the {args.budget:.0f} s budget, "
                      "so its figure is a bound and the ratio a lower bound.")
    if args.alone:
        al = alone(args.alone)
        report["alone"] = {str(k): v for k, v in al.items()}
        table = Table(title="Tearline alone on SQLite")
        table.add_column("measure")
        for n in args.alone:
            table.add_column(f"{n:,} objects", justify="right")
        for key in al[args.alone[0]]:
            table.add_row(escape(key), *(_fmt(al[n][key]) for n in args.alone))
        console.print(table)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    console.print(f"results written to {args.out}")


if __name__ == "__main__":
    main()
