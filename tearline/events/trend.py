"""Events and fatalities of one actor in two months and the change between them (`events trend --json`).

Datasets overlap (the same Peshawar bombing is in UCDP and in the curated list), so figures are never summed
across sources: the headline comes from one source that covers both months where asked (or `--source`), is
named in the output, and every other source with the actor's events is listed beside it. The counts are
`series.counted`'s, so `trend` and `series` agree month for month; a month a source does not cover is null
with the reason, and every figure carries its source's caveats.
"""

from __future__ import annotations

from typing import Any

import duckdb

from . import actors, coverage, series
from .coverage import Month

# When no --source is given, the figure comes from the first of these that covers both months.
PREFERENCE = coverage.SOURCES


def change_pct(before: int | None, after: int | None) -> float | None:
    return None if before is None or after is None or before == 0 else round(100.0 * (after - before) / before, 1)


def _apart(con: duckdb.DuckDBPyConnection, where: str, params: list[Any], months: list[Month]
           ) -> dict[str, dict[Month, tuple[int, int]]]:
    """Counts per source of the two months asked, for rows counted apart (series.tally's counting)."""
    out: dict[str, dict[Month, tuple[int, int]]] = {}
    for (src, _, ym), counts in series.tally(con, where, params, months).items():
        if ym in months:
            out.setdefault(src, {})[ym] = counts
    return out


def trend(con: duckdb.DuckDBPyConnection, actor_name: str, country: str | None, start: Month, end: Month,
          source: str | None = None, catalogue: tuple[actors.Actor, ...] = actors.CATALOGUE) -> dict[str, Any]:
    actors.require(con, actor_name, catalogue)
    actor = actors.resolve(actor_name, catalogue)
    only = source if source and source != "all" else None
    months = [start, end]
    rows = series.counted(con, actor, country, only, None, months)
    by_month = {(r["source"], r["month"]): r for r in rows}
    sources = sorted({r["source"] for r in rows}, key=lambda s: PREFERENCE.index(s) if s in PREFERENCE else 99)
    if only and only not in sources:
        # the actor has no event in this source where asked: a zero where it covers the months, else null
        spans = coverage.spans(con, country)
        cover = spans.get(only) or coverage.Span(only, country.upper() if country else "anywhere")
        for ym in months:
            by_month[(only, coverage.name(ym))] = (
                {"events": 0, "fatalities": 0, "covered": True} if cover.covers(ym)
                else {"events": None, "fatalities": None, "covered": False, "why": cover.why_not(ym)})
        sources = [only]
    scope, scope_params = actors.narrowing(country, only)
    apart = {}
    for kind, (where, params) in (("ambiguous", actors.predicate(actor, ambiguous=True)),
                                  ("associated", actors.associated(actor))):
        # an actor with no such rows to count (no ambiguous names, or none outside ACLED's associated actors)
        apart[kind] = _apart(con, where + scope, params + scope_params, months) if where != "FALSE" else {}
    notes = {"ambiguous": "rows whose attribution names the actor among others (e.g. 'Taliban and/or ISKP'); "
                          "not included above",
             "associated": "rows naming the actor only among ACLED's associated actors; not included above"}

    def spans_both(src: str) -> bool:
        return all(by_month[(src, coverage.name(ym))]["covered"] for ym in months)

    def block(src: str | None) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, ym in (("from", start), ("to", end)):
            row = by_month.get((src, coverage.name(ym))) if src else None
            if row is None:
                row = {"events": None, "fatalities": None, "covered": False,
                       "why": "no single source covers both months" + (f" in {country.upper()}" if country else "")}
            out[key] = {"month": coverage.name(ym), "events": row["events"], "fatalities": row["fatalities"],
                        "covered": row["covered"]} | ({"why": row["why"]} if "why" in row else {})
        out["change_pct"] = {k: change_pct(out["from"][k], out["to"][k]) for k in ("events", "fatalities")}
        if out["from"]["events"] is None or out["to"]["events"] is None:
            out["change_why"] = "undefined: a month is not covered"
        elif out["from"]["events"] == 0:
            out["change_why"] = "undefined: the first month has no events"
        for kind, counts in apart.items():
            got = counts.get(src or "", {})
            if got:
                out[kind] = {"note": notes[kind]} | {
                    key: {"events": got.get(ym, (0, 0))[0], "fatalities": got.get(ym, (0, 0))[1]}
                    for key, ym in (("from", start), ("to", end))}
        return out

    spanning = [s for s in sources if spans_both(s)]
    chosen = only or (spanning[0] if spanning else None)
    notes_about = series.caveats(con, actor, country, sources, months)
    result: dict[str, Any] = {"actor": actor.name, "country": country.upper() if country else None,
                              "source": chosen}
    result |= block(chosen)
    if chosen:
        result["spans_both_months"] = spans_both(chosen)
        result["caveats"] = notes_about[chosen]
    if not only and (len(sources) > 1 or not chosen):
        result["by_source"] = {s: block(s) | {"spans_both_months": spans_both(s), "caveats": notes_about[s]}
                               for s in sources}
        result["note"] = (f"figures above are from {chosen}; " if chosen else
                          "no source covers both months, so there is no headline figure; ") + (
            "sources overlap, so by_source lists each dataset's own figures and they are never summed")
    result["sources_absent"] = coverage.absent(con)
    return result
