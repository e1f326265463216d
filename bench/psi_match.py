"""Private matching end to end through a running hub: wall time and bytes relayed.

    .venv/bin/python bench/psi_match.py [--sizes 10000x100000 100000x1000000] [--repeat 1]

For each size pair (asker's values × answerer's values) the asker and the answerer run the same code
as `tearline match request|serve|result` against a hub started with `tearline serve` on SQLite, on
loopback. Values are generated domains with a known overlap (10% of the asker's list), normalised like
real input. Printed per phase: normalising and dropping known-benign values (MISP warninglists), the
asker's blinding and upload, the answerer's download, PSI work and upload, the asker's download and
intersection; and the bytes that went through the hub. The PSI false-positive rate is the compact's
`matching.fpr` (1e-9 per request by default): it is the chance that one request reports any false
match at all.
"""

from __future__ import annotations

import argparse
import json
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
sys.path.insert(0, str(HERE.parent))

from tearline.matching import client as match  # noqa: E402
from tearline.matching import protocol  # noqa: E402

console = Console()


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_hub(workdir: Path) -> tuple[subprocess.Popen, str, dict[str, str]]:
    db = f"sqlite:///{workdir / 'hub.db'}"
    compact = workdir / "bench.yaml"
    compact.write_text(
        "name: bench\nscope:\n  actors:\n    - {name: Islamic State Khorasan Province}\n"
        "members:\n  - {name: asker, write: true, tlp_max: amber}\n  - {name: answerer, write: true, tlp_max: amber}\n"
        "matching:\n  max_items: 2000000\n  requests_per_day: 100\n"
        "  standing_consent:\n    - {answerer: answerer, asker: asker, types: [domain]}\n")
    tl = [sys.executable, "-m", "tearline"]
    tokens = json.loads(subprocess.run([*tl, "compact", "apply", str(compact), "--db", db, "--json"], check=True,
                                       capture_output=True, text=True).stdout)["tokens"]
    port = free_port()
    proc = subprocess.Popen([*tl, "serve", "--db", db, "--port", str(port)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + "/taxii2/").status_code in (200, 401):
                return proc, url, tokens
        except httpx.TransportError:
            time.sleep(0.2)
    raise RuntimeError("hub did not start")


def lists(workdir: Path, n_ask: int, n_answer: int) -> tuple[Path, Path, int]:
    overlap = n_ask // 10
    ask = [f"n{i}.asker-only.example" for i in range(n_ask - overlap)] + \
          [f"s{i}.shared.example" for i in range(overlap)]
    answer = [f"a{i}.answerer-only.example" for i in range(n_answer - overlap)] + \
             [f"S{i}.Shared.Example." for i in range(overlap)]  # the same domains, spelled differently
    a, b = workdir / f"ask-{n_ask}.txt", workdir / f"answer-{n_answer}.txt"
    a.write_text("\n".join(ask) + "\n")
    b.write_text("\n".join(answer) + "\n")
    return a, b, overlap


def run(url: str, tokens: dict[str, str], workdir: Path, n_ask: int, n_answer: int) -> dict[str, float]:
    ask_file, answer_file, overlap = lists(workdir, n_ask, n_answer)
    asker = match.Hub(url, "asker", tokens["asker"])
    answerer = match.Hub(url, "answerer", tokens["answerer"])
    t: dict[str, float] = {}
    start = time.perf_counter()
    mine = match.prepare(ask_file, "domain")
    theirs = match.prepare(answer_file, "domain")
    t["prepare"] = time.perf_counter() - start
    start = time.perf_counter()
    made = match.request(asker, match.state_dir(str(workdir / "state-ask")), mine, "answerer", both=False)
    t["request"] = time.perf_counter() - start
    start = time.perf_counter()
    served = match.answer(answerer, match.state_dir(str(workdir / "state-answer")), theirs, made["id"])
    t["answer"] = time.perf_counter() - start
    start = time.perf_counter()
    got = match.result(asker, match.state_dir(str(workdir / "state-ask")), made["id"])
    t["result"] = time.perf_counter() - start
    if len(got["matches"]) != overlap:
        raise SystemExit(f"wrong intersection: {len(got['matches'])} found, {overlap} expected")
    t["psi_total"] = t["request"] + t["answer"] + t["result"]
    t["bytes"] = made["bytes_sent"] + served["bytes_received"] + served["bytes_sent"] + got["bytes_received"]
    t["found"] = len(got["matches"])
    return t


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", nargs="+", default=["10000x100000", "100000x1000000"])
    parser.add_argument("--repeat", type=int, default=1, help="runs per size; medians are printed")
    args = parser.parse_args()
    table = Table(title=f"Private matching through the hub (OpenMined PSI, GCS, fpr {protocol.FPR:g} per request)")
    for col in ("asker × answerer", "normalise + warninglists", "asker: blind + upload", "answerer: PSI + upload",
                "asker: intersect", "PSI wall time", "bytes through the hub", "bytes / asker value", "matches"):
        table.add_column(col, justify="right")
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        proc, url, tokens = start_hub(workdir)
        try:
            for size in args.sizes:
                n_ask, n_answer = (int(v) for v in size.lower().split("x"))
                runs = []
                for r in range(args.repeat):
                    console.print(f"{n_ask:,} × {n_answer:,}: run {r + 1} of {args.repeat} …")
                    runs.append(run(url, tokens, workdir, n_ask, n_answer))
                med = {k: statistics.median(x[k] for x in runs) for k in runs[0]}
                table.add_row(f"{n_ask:,} × {n_answer:,}", f"{med['prepare']:.1f} s", f"{med['request']:.1f} s",
                              f"{med['answer']:.1f} s", f"{med['result']:.1f} s", f"{med['psi_total']:.1f} s",
                              f"{med['bytes'] / 1e6:.1f} MB", f"{med['bytes'] / n_ask:.0f}", f"{int(med['found']):,}")
        finally:
            proc.terminate()
            proc.wait(10)
    console.print(table)
    console.print("Bytes count each message once per hop (asker → hub → answerer → hub → asker). The hub stores "
                  "only these blinded messages; it never sees a value.")


if __name__ == "__main__":
    main()
