"""Monthly series and top places for one actor, per source — never summed across sources, since the
datasets overlap. A month counts (zero included) only where the source covers it (coverage.py); elsewhere it
is null with the reason."""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

import duckdb

from ..errors import BadRequest
from . import actors, coverage
from .coverage import Month


def months_between(lo: Month, hi: Month) -> list[Month]:
    out, (y, m) = [], lo
    while (y, m) <= hi:
        out.append((y, m))
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    return out


def tally(con: duckdb.DuckDBPyConnection, where: str, params: list[Any], months: list[Month],
          unit: str = "'all'") -> dict[tuple[str, str, Month], tuple[int, int]]:
    """(events, fatalities) per (source, unit, month) of the rows ``where`` selects, from the first of
    ``months`` to the last; a month with none is absent (whether that is a zero is coverage's to say)."""
    lo, hi = min(months), max(months)
    return {(s, u, (y, m)): (int(n), int(f)) for s, u, y, m, n, f in con.execute(
        f"""SELECT source, {unit}, year(event_date), month(event_date), count(*), coalesce(sum(fatalities_best), 0)
            FROM events WHERE {where} AND event_date >= make_date(?, ?, 1)
              AND event_date < make_date(?, ?, 1) + INTERVAL 1 MONTH GROUP BY ALL""",
        params + [lo[0], lo[1], hi[0], hi[1]]).fetchall()}


def counted(con: duckdb.DuckDBPyConnection, actor: actors.Actor, country: str | None, source: str | None,
            by: str | None, months: list[Month]) -> list[dict[str, Any]]:
    """Rows {source, unit, month, events, fatalities, covered[, why]} for each (source, unit) holding the
    actor's events and each month asked: a count (zero included) where the source covers the month in that
    place, null with the reason where it does not. `trend` and `series` both count here, so they agree."""
    where, params = actors.predicate(actor)
    scope, scope_params = actors.narrowing(country, source)
    where, params = where + scope, params + scope_params
    unit = {"country": "coalesce(country_iso3, '(unknown)')",
            "province": "coalesce(province, '(unknown)')"}.get(by or "", "'all'")
    units = con.execute(f"SELECT DISTINCT source, {unit} FROM events WHERE {where}", params).fetchall()
    counts = tally(con, where, params, months, unit)
    places: dict[str | None, dict[str, coverage.Span]] = {}

    def span(src: str, u: str) -> coverage.Span:
        # split by country, each country's coverage is its own; otherwise the place asked (or anywhere)
        place = u if by == "country" and u != "(unknown)" else country
        if place not in places:
            places[place] = coverage.spans(con, place)
        return places[place].get(src) or coverage.Span(src, place.upper() if place else "anywhere")

    rows = []
    for src, u in sorted(units):
        cover = span(src, u)
        for ym in months:
            row: dict[str, Any] = {"source": src, "unit": u, "month": coverage.name(ym)}
            if cover.covers(ym):
                n, f = counts.get((src, u, ym), (0, 0))
                row |= {"events": n, "fatalities": f, "covered": True}
            else:
                row |= {"events": None, "fatalities": None, "covered": False, "why": cover.why_not(ym)}
            rows.append(row)
    return rows


def monthly(con: duckdb.DuckDBPyConnection, actor_name: str, country: str | None = None, source: str | None = None,
            by: str | None = None, start: Month | None = None, end: Month | None = None,
            catalogue: tuple[actors.Actor, ...] = actors.CATALOGUE) -> list[dict[str, Any]]:
    """Every month from start to end (default: the actor's first and last event where asked), per source
    (and unit): counts where the source covers the month, null with the reason where it does not."""
    actors.require(con, actor_name, catalogue)
    actor, where, params = actors.selection(actor_name, country, source, catalogue)
    bounds = con.execute(f"SELECT min(event_date), max(event_date) FROM events WHERE {where}", params).fetchone()
    if bounds[0] is None and (start is None or end is None):
        return []
    lo = start or (bounds[0].year, bounds[0].month)
    hi = end or (bounds[1].year, bounds[1].month)
    if lo > hi:
        raise BadRequest(f"--from {coverage.name(lo)} is after --to {coverage.name(hi)}")
    return counted(con, actor, country, source, by, months_between(lo, hi))


def caveats(con: duckdb.DuckDBPyConnection, actor: actors.Actor, country: str | None, sources: list[str],
            months: list[Month]) -> dict[str, dict[str, Any]]:
    """Per source, what its figures can and cannot say: what the dataset is, its coverage where asked, how
    the actor is coded in it, and how precisely the counted events are dated and placed."""
    where, params = actors.predicate(actor)
    scope, scope_params = actors.narrowing(country, None)
    exact = coverage.precision(con, where + scope, params + scope_params, months)
    spans = coverage.spans(con, country)
    place = country.upper() if country else "anywhere"
    return {src: {
        "about": coverage.ABOUT.get(src, f"{src}: a dataset Tearline does not describe"),
        "coverage": (spans.get(src) or coverage.Span(src, place)).describe(),
        "actor_coding": actors.coding(actor, src),
        "precision": exact.get(src, {"date": {}, "place": {}}) | {
            "note": "counts of the events counted here by how exactly they are dated and placed; an event known "
                    "only to the week or month counts in the month of its first day"},
    } for src in sources}


def report(con: duckdb.DuckDBPyConnection, actor_name: str, country: str | None = None, source: str | None = None,
           by: str | None = None, start: Month | None = None, end: Month | None = None,
           catalogue: tuple[actors.Actor, ...] = actors.CATALOGUE) -> dict[str, Any]:
    """`events series --json`: the rows of `monthly`, with each source's caveats beside them."""
    rows = monthly(con, actor_name, country, source, by, start, end, catalogue)
    actor = actors.resolve(actor_name, catalogue)
    sources = sorted({r["source"] for r in rows})
    months = sorted({(int(r["month"][:4]), int(r["month"][5:])) for r in rows})
    return {"actor": actor.name, "country": country.upper() if country else None,
            "from": rows[0]["month"] if rows else None, "to": max(r["month"] for r in rows) if rows else None,
            "rows": rows, "sources": caveats(con, actor, country, sources, months),
            "sources_absent": coverage.absent(con),
            "note": "sources overlap and are never summed; a null month is one the source does not cover there "
                    "(see each row's why), not a month without events"}


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


def places_report(con: duckdb.DuckDBPyConnection, actor_name: str, country: str | None = None,
                  source: str | None = None, limit: int = 10,
                  catalogue: tuple[actors.Actor, ...] = actors.CATALOGUE) -> dict[str, Any]:
    """`events places --json`: the top places, with each source's caveats beside them."""
    rows = top_places(con, actor_name, country, source, limit, catalogue)
    actor = actors.resolve(actor_name, catalogue)
    _actor, where, params = actors.selection(actor_name, country, source, catalogue)
    bounds = con.execute(f"SELECT min(event_date), max(event_date) FROM events WHERE {where}", params).fetchone()
    months = months_between((bounds[0].year, bounds[0].month), (bounds[1].year, bounds[1].month)) if bounds[0] else []
    return {"actor": actor.name, "country": country.upper() if country else None, "rows": rows,
            "sources": caveats(con, actor, country, sorted({r["source"] for r in rows}), months),
            "sources_absent": coverage.absent(con),
            "note": "counts over each source's whole holding of the actor; sources overlap and are never summed"}


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
        # a month the source does not cover is a gap in its line, never a zero
        top.plot(x, [math.nan if p["events"] is None else p["events"] for p in points], label=label, linewidth=1.4)
        bottom.plot(x, [math.nan if p["fatalities"] is None else p["fatalities"] for p in points], label=label,
                    linewidth=1.4)
    top.set_ylabel("events per month")
    bottom.set_ylabel("fatalities (best) per month")
    top.set_title(title)
    top.legend(fontsize=8, loc="upper left")
    bottom.xaxis.set_major_formatter(mdates.DateFormatter("%Y-%m"))
    bottom.tick_params(axis="x", rotation=45, labelsize=8)
    fig.text(0.01, 0.005, "Sources are drawn separately: they overlap and are never added together. A gap is a month "
             "the source does not cover.", fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
