"""Monthly counts and period-over-period change for one actor (what `events trend --json` prints).

Datasets overlap (the same Peshawar bombing is in UCDP and in the curated list), so figures are
never summed across sources: the top-level figures come from one source, named in the output, and
every other source with data is listed beside it.
"""

from __future__ import annotations

from typing import Any

import duckdb

from . import actors

# When no --source is given, the figure comes from the first of these that has the actor's events.
PREFERENCE = ("acled", "ucdp-ged", "ucdp-candidate", "iskp-curated")


def _month_counts(con: duckdb.DuckDBPyConnection, where: str, params: list[Any], months: list[tuple[int, int]]
                  ) -> dict[str, dict[tuple[int, int], tuple[int, int]]]:
    rows = con.execute(
        f"""SELECT source, year(event_date), month(event_date), count(*), coalesce(sum(fatalities_best), 0)
            FROM events WHERE {where} AND (year(event_date), month(event_date)) IN
            ({', '.join('(?, ?)' for _ in months)})
            GROUP BY ALL""",
        params + [v for ym in months for v in ym],
    ).fetchall()
    out: dict[str, dict[tuple[int, int], tuple[int, int]]] = {}
    for source, y, m, n, f in rows:
        out.setdefault(source, {})[(y, m)] = (int(n), int(f))
    return out


def change_pct(before: int, after: int) -> float | None:
    return None if before == 0 else round(100.0 * (after - before) / before, 1)


def trend(con: duckdb.DuckDBPyConnection, actor_name: str, country: str | None, start: tuple[int, int],
          end: tuple[int, int], source: str | None = None,
          catalogue: tuple[actors.Actor, ...] = actors.CATALOGUE) -> dict[str, Any]:
    actors.require(con, actor_name, catalogue)
    actor = actors.resolve(actor_name, catalogue)
    where, params = actors.predicate(actor)
    amb_where, amb_params = actors.predicate(actor, ambiguous=True)
    scope, scope_params = actors.narrowing(country, source)
    months = [start, end]
    counts = _month_counts(con, where + scope, params + scope_params, months)
    ambiguous = _month_counts(con, amb_where + scope, amb_params + scope_params, months) if amb_where != "FALSE" else {}
    have = con.execute(f"SELECT DISTINCT source FROM events WHERE {where}{scope}", params + scope_params).fetchall()
    sources = sorted({s for (s,) in have}, key=lambda s: PREFERENCE.index(s) if s in PREFERENCE else 99)
    coverage = {s: (lo, hi) for s, lo, hi in con.execute(
        "SELECT source, min(event_date), max(event_date) FROM events GROUP BY source").fetchall()}

    def covers(src: str) -> bool:
        lo, hi = coverage[src]
        return (lo.year, lo.month) <= start and end <= (hi.year, hi.month)

    def block(src: str) -> dict[str, Any]:
        by_month = counts.get(src, {})
        a, b = by_month.get(start, (0, 0)), by_month.get(end, (0, 0))
        out: dict[str, Any] = {
            "from": {"month": f"{start[0]:04d}-{start[1]:02d}", "events": a[0], "fatalities": a[1]},
            "to": {"month": f"{end[0]:04d}-{end[1]:02d}", "events": b[0], "fatalities": b[1]},
            "change_pct": {"events": change_pct(a[0], b[0]), "fatalities": change_pct(a[1], b[1])},
        }
        amb = ambiguous.get(src, {})
        if amb:
            out["ambiguous"] = {
                "note": "rows whose attribution names the actor among others; not included above",
                "from": {"events": amb.get(start, (0, 0))[0], "fatalities": amb.get(start, (0, 0))[1]},
                "to": {"events": amb.get(end, (0, 0))[0], "fatalities": amb.get(end, (0, 0))[1]},
            }
        return out

    # A dataset whose period does not include both months would report a fall or rise that is only
    # the edge of its coverage; prefer one that spans them.
    spanning = [s for s in sources if covers(s)]
    chosen = source if source and source != "all" else ((spanning or sources or [None])[0])
    result: dict[str, Any] = {"actor": actor.name, "country": country.upper() if country else None,
                              "source": chosen}
    result |= block(chosen) if chosen else block("")
    if chosen in coverage:
        result["coverage"] = {"from": str(coverage[chosen][0]), "to": str(coverage[chosen][1]),
                              "spans_both_months": covers(chosen)}
    if (not source or source == "all") and len(sources) > 1:
        result["by_source"] = {s: block(s) | {"coverage": {"from": str(coverage[s][0]), "to": str(coverage[s][1]),
                                                        "spans_both_months": covers(s)}} for s in sources}
        result["note"] = (f"figures above are from {chosen}; sources overlap, so by_source lists each "
                          "dataset's own figures and they are never summed")
    return result
