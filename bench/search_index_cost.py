"""What the full-text index costs the write path, in one run: the same envelopes (100 indicators with a
description and their `indicates` relationships) written by a member into two SQLite stores side by side, one
with the FTS5 index of migration 0015 kept by its triggers and one with the triggers dropped.

    .venv/bin/python bench/search_index_cost.py [--envelopes 20] [--rounds 5]

Prints, per round, the median time of an envelope in each store and their ratio, then the median ratio.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import uuid
from importlib import resources
from pathlib import Path

from sqlalchemy import text

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tearline import compact, write  # noqa: E402
from tearline.keys import HubKeys  # noqa: E402
from tearline.store import Store  # noqa: E402
from tests.stixgen import ACTOR_ID, TS, indicator  # noqa: E402


def _store(indexed: bool) -> tuple[Store, object, object]:
    spec = compact.parse(resources.files("tearline.data").joinpath("demo-compact.yaml").read_text(), "demo")
    store = Store(f"sqlite:///{Path(tempfile.mkdtemp()) / 'hub.db'}")
    store.migrate()
    compact.apply(store, spec)
    if not indexed:
        with store.engine.begin() as conn:
            for trigger in ("insert", "delete", "update"):
                conn.execute(text(f"DROP TRIGGER objects_fts_{trigger}"))
    with store.engine.connect() as conn:
        author = {m.name: m for m in store.members_of(conn, "isis-k")}["state-a"]
    return store, store.collection("isis-k", "intel"), author


def _envelope(n: int) -> list[dict[str, object]]:
    out: list[dict[str, object]] = []
    for i in range(100):
        ind = indicator(n * 1000 + i, description=f"relay {uuid.uuid4().hex} seen near the market in Kunar")
        out += [ind, {"type": "relationship", "spec_version": "2.1", "id": f"relationship--{uuid.uuid4()}",
                      "created": TS, "modified": TS, "relationship_type": "indicates", "source_ref": ind["id"],
                      "target_ref": ACTOR_ID}]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--envelopes", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    keys = HubKeys(b"k" * 32)
    ratios = []
    for r in range(args.rounds):
        stores = {name: _store(name == "indexed") for name in ("indexed", "plain")}
        times: dict[str, list[float]] = {name: [] for name in stores}
        for n in range(args.envelopes):
            envelope = _envelope(r * 100 + n)
            for name, (store, intel, author) in stores.items():  # alternate, so noise falls on both
                start = time.perf_counter()
                status = write.add_envelope(store, intel, author, envelope, keys)  # type: ignore[arg-type]
                times[name].append(time.perf_counter() - start)
                assert status["failure_count"] == 0
        with_index, without = statistics.median(times["indexed"]), statistics.median(times["plain"])
        ratios.append(with_index / without)
        print(f"round {r + 1}: envelope of 200 objects, median {with_index * 1000:.1f} ms indexed, "
              f"{without * 1000:.1f} ms without the index: ratio {ratios[-1]:.2f}")
        for store, _, _ in stores.values():
            store.close()
    print(f"median ratio over {args.rounds} rounds: {statistics.median(ratios):.2f}")


if __name__ == "__main__":
    main()
