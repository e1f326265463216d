"""Event ingest and trend query: Tearline (DuckDB) and the same work in pandas, side by side.

    .venv/bin/python bench/events_vs_pandas.py [--rows 1000000]

Generates a GED-shaped CSV (the real UCDP column set) of N rows, then times: ingest into the events
store vs pandas.read_csv with the same column types; the `events trend` query (one actor, one country,
two months) vs the equivalent pandas filter and sums. Medians of repeated runs; ratios printed.
"""

from __future__ import annotations

import argparse
import csv
import random
import statistics
import tempfile
import time
from pathlib import Path

import pandas as pd
from rich.console import Console
from rich.progress import track
from rich.table import Table

from tearline import events
from tearline.events import trend

HEADER = ["id", "relid", "year", "active_year", "code_status", "type_of_violence", "conflict_dset_id",
          "conflict_new_id", "conflict_name", "dyad_dset_id", "dyad_new_id", "dyad_name", "side_a_dset_id",
          "side_a_new_id", "side_a", "side_b_dset_id", "side_b_new_id", "side_b", "number_of_sources", "source_article",
          "source_office", "source_date", "source_headline", "source_original", "where_prec", "where_coordinates",
          "where_description", "adm_1", "adm_2", "latitude", "longitude", "geom_wkt", "priogrid_gid", "country", "iso3",
          "country_id", "region", "event_clarity", "date_prec", "date_start", "date_end", "deaths_a", "deaths_b",
          "deaths_civilians", "deaths_unknown", "best", "high", "low", "gwnoa", "gwnob"]
console = Console()


def generate(path: Path, rows: int) -> None:
    rnd = random.Random(11)
    sides = [("Government of Pakistan", "142"), ("TTP", "299"), ("IS", "234"), ("Civilians", "1")]
    countries = [("Pakistan", "PAK"), ("Afghanistan", "AFG"), ("Iran", "IRN")]
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(HEADER)
        for i in track(range(rows), description=f"writing {rows:,} GED-shaped rows", console=console):
            a, b = rnd.sample(sides, 2)
            country, iso = rnd.choice(countries)
            y, m, d = rnd.randint(2005, 2021), rnd.randint(1, 12), rnd.randint(1, 28)
            day = f"{y}-{m:02d}-{d:02d} 00:00:00.000"
            best = rnd.randint(0, 30)
            row = dict.fromkeys(HEADER, "") | {
                "id": str(i + 1), "relid": f"PAK-{y}-1-{i}", "year": str(y), "active_year": "1", "code_status": "Clear",
                "type_of_violence": "1", "side_a": a[0], "side_a_new_id": a[1], "side_b": b[0], "side_b_new_id": b[1],
                "where_prec": "1", "where_coordinates": "Peshawar town", "adm_1": "Khyber Pakhtunkhwa province",
                "latitude": "34.0", "longitude": "71.5", "country": country, "iso3": iso, "date_prec": "1",
                "date_start": day, "date_end": day, "best": str(best), "low": str(best), "high": str(best + 2),
                "source_headline": "generated"}
            w.writerow(row[h] for h in HEADER)


def timed(fn, repeat: int) -> list[float]:  # type: ignore[no-untyped-def]
    out = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-events-"))
    path = work / "ged_generated.csv"
    generate(path, args.rows)

    def tearline_ingest() -> None:
        (work / "e.duckdb").unlink(missing_ok=True)
        events.ingest([path], work / "e.duckdb")

    dtypes = {"date_prec": "Int64", "where_prec": "Int64", "best": "Int64", "low": "Int64", "high": "Int64",
              "latitude": "float64", "longitude": "float64"}
    frame: dict[str, pd.DataFrame] = {}

    def pandas_ingest() -> None:
        df = pd.read_csv(path, dtype={h: dtypes.get(h, "string") for h in HEADER},
                         keep_default_na=False, na_values=[""])
        df["date_start"] = pd.to_datetime(df["date_start"])
        frame["df"] = df

    ingest_t = timed(tearline_ingest, args.repeat)
    pandas_t = timed(pandas_ingest, args.repeat)
    con = events.connect(work / "e.duckdb")
    query_t = timed(lambda: trend.trend(con, "TTP", "PAK", (2012, 1), (2013, 1), "ucdp-ged"), 20)
    df = frame["df"]

    def pandas_query() -> None:
        mine = df[((df["side_a"] == "TTP") | (df["side_b"] == "TTP")) & (df["iso3"] == "PAK")]
        for y, m in ((2012, 1), (2013, 1)):
            rows = mine[(mine["date_start"].dt.year == y) & (mine["date_start"].dt.month == m)]
            _ = (len(rows), int(rows["best"].sum()))

    pquery_t = timed(pandas_query, 20)
    ti, pi = statistics.median(ingest_t), statistics.median(pandas_t)
    tq, pq = statistics.median(query_t), statistics.median(pquery_t)
    table = Table(title=f"Events: {args.rows:,} GED-shaped rows, medians")
    for col in ("measure", "tearline (DuckDB)", "pandas", "tearline's advantage"):
        table.add_column(col, justify="right")
    table.add_row("ingest, s", f"{ti:.2f}", f"{pi:.2f}", f"{pi / ti:.1f}×")
    table.add_row("ingest, rows/s", f"{args.rows / ti:,.0f}", f"{args.rows / pi:,.0f}", "")
    table.add_row("trend query, ms", f"{1000 * tq:.1f}", f"{1000 * pq:.1f}", f"{pq / tq:.1f}×")
    console.print(table)


if __name__ == "__main__":
    main()
