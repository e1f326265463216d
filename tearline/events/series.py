"""Monthly series (zeros included) and top places for one actor, per source — never summed across
sources, since the datasets overlap."""

from __future__ import annotations

import datetime as dt
from typing import Any

import duckdb

from . import actors


def monthly(con: duckdb.DuckDBPyConnection, actor_name: str, country: str | None = None, source: str | None = None,
            by: str | None = None, start: tuple[int, int] | None = None, end: tuple[int, int] | None = None,
            catalogue: tuple[actors.Actor, ...] = actors.CATALOGUE) -> list[dict[str, Any]]:
    """Rows {source, unit, month, events, fatalities} for every month from start to end (default: the
    actor's first and last event) that the source covers, with zero rows where nothing happened."""
    actors.require(con, actor_name, catalogue)
    _actor, where, params = actors.selection(actor_name, country, source, catalogue)
    unit = {"country": "country_iso3", "province": "coalesce(province, '(unknown)')"}.get(by or "", "'all'")
    bounds = con.execute(f"SELECT min(event_date), max(event_date) FROM events WHERE {where}", params).fetchone()
    if bounds[0] is None:
        return []
    lo = start or (bounds[0].year, bounds[0].month)
    hi = end or (bounds[1].year, bounds[1].month)
    rows = con.execute(
        f"""
        WITH mine AS (SELECT * FROM events WHERE {where}),
             months AS (SELECT unnest(generate_series(make_date(?, ?, 1), make_date(?, ?, 1),
                                                      INTERVAL 1 MONTH))::DATE AS m),
             units AS (SELECT DISTINCT source, {unit} AS unit FROM mine),
             -- a dataset says nothing outside its own period: no zeros there, only absence
             cover AS (SELECT source, date_trunc('month', min(event_date))::DATE AS lo,
                              date_trunc('month', max(event_date))::DATE AS hi FROM events GROUP BY source),
             counts AS (SELECT source, {unit} AS unit, date_trunc('month', event_date)::DATE AS m,
                               count(*) AS n, sum(fatalities_best) AS f FROM mine GROUP BY ALL)
        SELECT u.source, u.unit, strftime(months.m, '%Y-%m'), coalesce(c.n, 0), coalesce(c.f, 0)
        FROM units u CROSS JOIN months JOIN cover ON cover.source = u.source AND months.m BETWEEN cover.lo AND cover.hi
        LEFT JOIN counts c ON c.source = u.source AND c.unit = u.unit AND c.m = months.m
        ORDER BY u.source, u.unit, months.m
        """,
        params + [lo[0], lo[1], hi[0], hi[1]],
    ).fetchall()
    return [{"source": s, "unit": u, "month": m, "events": int(n), "fatalities": int(f)} for s, u, m, n, f in rows]


def top_places(con: duckdb.DuckDBPyConnection, actor_name: str, country: str | None = None, source: str | None = None,
               limit: int = 10, catalogue: tuple[actors.Actor, ...] = actors.CATALOGUE) -> list[dict[str, Any]]:
    actors.require(con, actor_name, catalogue)
    _actor, where, params = actors.selection(actor_name, country, source, catalogue)
    rows = con.execute(
        f"""SELECT source, country_iso3, province, place, count(*) AS n, sum(fatalities_best) AS f
            FROM events WHERE {where} GROUP BY ALL ORDER BY n DESC, f DESC, place LIMIT ?""",
        params + [limit],
    ).fetchall()
    return [{"source": s, "country": c, "province": p, "place": pl, "events": int(n), "fatalities": int(f)}
            for s, c, p, pl, n, f in rows]


def chart(rows: list[dict[str, Any]], title: str, path: str) -> None:
    """Monthly events and fatalities, one line per source (and unit), as PNG or SVG by the suffix."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt

    fig, (top, bottom) = plt.subplots(2, 1, figsize=(11, 6.5), sharex=True)
    series: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in rows:
        series.setdefault((r["source"], r["unit"]), []).append(r)
    for (source, unit), points in sorted(series.items()):
        label = source if unit == "all" else f"{source}: {unit}"
        x = [dt.date(int(p["month"][:4]), int(p["month"][5:7]), 1) for p in points]
        top.plot(x, [p["events"] for p in points], label=label, linewidth=1.4)
        bottom.plot(x, [p["fatalities"] for p in points], label=label, linewidth=1.4)
    top.set_ylabel("events per month")
    bottom.set_ylabel("fatalities (best) per month")
    top.set_title(title)
    top.legend(fontsize=8, loc="upper left")
    bottom.xaxis.set_major_formatter(mdates.DateFormatter("%Y-%m"))
    bottom.tick_params(axis="x", rotation=45, labelsize=8)
    fig.text(0.01, 0.005, "Sources are drawn separately: they overlap and are never added together.", fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
