"""What a member's proofs cost the hub as its audit log grows, side by side with pymerkle's SQLite tree.

    .venv/bin/python bench/audit_proofs.py [--sizes 10000,100000,1000000] [--proofs 200]

For each size N: an audit log of N entries written in bulk on a SQLite file and sealed as the hub seals it
(which stores the tree's inner nodes), and the same N entry hashes appended to pymerkle's SqliteTree, an
independent RFC 6962 implementation on SQLite. Then, for the same random sizes, a consistency proof from
an older size to N and an inclusion proof of a random entry, from each, every proof checked against the
signed root. Prints the median and p90 per proof and the ratio Tearline / pymerkle, and Tearline's cost
as N grows (a proof should cost about the same at a million entries as at ten thousand).
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.progress import Progress
from rich.table import Table

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from pymerkle import SqliteTree  # noqa: E402
from sqlalchemy import insert  # noqa: E402

from tearline import audit, merkle  # noqa: E402
from tearline.audit import tree  # noqa: E402
from tearline.store import Store  # noqa: E402
from tearline.store.schema import audit as audit_table  # noqa: E402

console = Console()
BATCH = 10_000


def build(store: Store, n: int) -> list[bytes]:
    """N entries chained as the hub chains them; their hashes."""
    hashes: list[bytes] = []
    prev, at = audit.GENESIS, 1_790_000_000_000_000
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task(f"writing {n:,} entries", total=n)
        for start in range(1, n + 1, BATCH):
            rows = []
            for seq in range(start, min(start + BATCH, n + 1)):
                row = {"seq": seq, "at_us": at + seq, "actor": f"member-{seq % 7}", "api_root": "isis-k",
                       "method": "GET", "endpoint": "/taxii2/{api_root}/collections/{collection_id}/objects/",
                       "path": "/taxii2/isis-k/collections/intel/objects/", "query": "{}", "status": 200,
                       "reason": "", "ids": "[]", "count": 0, "prev": prev, "nonce": f"{seq:032x}"}
                row["hash"] = prev = audit.entry_hash(row)
                hashes.append(bytes.fromhex(prev))
                rows.append(row)
            with store.engine.begin() as conn:
                conn.execute(insert(audit_table), rows)
            progress.advance(task, len(rows))
    return hashes


def timed(fn: object, *args: object) -> tuple[float, object]:
    start = time.perf_counter()
    out = fn(*args)  # type: ignore[operator]
    return (time.perf_counter() - start) * 1000, out


def one_size(n: int, proofs: int, workdir: Path) -> dict[str, list[float]]:
    store = Store(f"sqlite:///{workdir / f'hub-{n}.db'}")
    store.migrate()
    hashes = build(store, n)
    log = audit.AuditLog(store, workdir / "audit.key")
    seal_ms, head = timed(log.seal)
    console.print(f"{n:,} entries sealed in {seal_ms / 1000:.1f} s (every leaf hashed once, inner nodes stored)")
    root = bytes.fromhex(head["root"])  # type: ignore[index]
    peer = SqliteTree(str(workdir / f"pymerkle-{n}.db"))
    with console.status(f"appending {n:,} entries to pymerkle's SqliteTree"):
        peer.append_entries(hashes)
    assert peer.get_root(n) == root, "pymerkle and Tearline disagree on the tree"
    rnd = random.Random(n)
    out: dict[str, list[float]] = {k: [] for k in ("tl consistency", "peer consistency", "tl inclusion",
                                                   "peer inclusion")}
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task(f"{proofs} proofs of each kind from each", total=proofs)
        for _ in range(proofs):
            old = rnd.randint(1, n - 1)
            ms, answer = timed(tree.consistency, store, log.signer(), old, n)
            statement = answer["consistency"]  # type: ignore[index]
            assert merkle.verify_consistency(old, n, bytes.fromhex(statement["first_root"]), root,
                                             [bytes.fromhex(p) for p in statement["proof"]])
            out["tl consistency"].append(ms)
            ms, _proof = timed(peer.prove_consistency, old, n)
            out["peer consistency"].append(ms)
            index = rnd.randrange(n)

            def inclusion(index: int = index) -> list[bytes]:
                with store.engine.connect() as conn:
                    return merkle.inclusion_proof(tree.StoredNodes(conn), index, n)

            ms, path = timed(inclusion)
            assert merkle.verify_inclusion(hashes[index], index, n, path, root)  # type: ignore[arg-type]
            out["tl inclusion"].append(ms)
            ms, _proof = timed(peer.prove_inclusion, index + 1, n)  # pymerkle counts leaves from 1
            out["peer inclusion"].append(ms)
            progress.advance(task)
    peer.close()
    store.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--proofs", type=int, default=200)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    table = Table(title=f"Proof cost by log size, {args.proofs} proofs each, ms (median / p90)")
    for col in ("entries", "Tearline consistency", "pymerkle consistency", "ratio", "Tearline inclusion",
                "pymerkle inclusion", "ratio"):
        table.add_column(col, justify="right")
    with tempfile.TemporaryDirectory() as tmp:
        for n in sizes:
            found = one_size(n, args.proofs, Path(tmp))
            med = {k: statistics.median(v) for k, v in found.items()}
            p90 = {k: statistics.quantiles(v, n=10)[-1] for k, v in found.items()}
            table.add_row(f"{n:,}", *(
                cell for kind in ("consistency", "inclusion") for cell in (
                    f"{med['tl ' + kind]:.2f} / {p90['tl ' + kind]:.2f}",
                    f"{med['peer ' + kind]:.2f} / {p90['peer ' + kind]:.2f}",
                    f"{med['tl ' + kind] / med['peer ' + kind]:.2f}")))
    console.print(table)
    console.print("Tearline's consistency proof is also signed (Ed25519), as members receive it")


if __name__ == "__main__":
    main()
