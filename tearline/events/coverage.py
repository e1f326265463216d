"""Which months each source covers, per country: the difference between "0 events" and "this dataset says
nothing about that month".

A release that states its own period declares it, recorded per file at ingest (``releases``):
- UCDP GED is complete for the calendar years of its release, in the countries the file holds;
- a UCDP Candidate release covers the one month its file name gives (``GEDEvent_v23_0_10`` is October 2023);
  its rows from earlier months are late additions, not coverage of those months.
Files that declare nothing (ACLED exports, the curated list, stores made before releases were recorded)
cover the months in which the source holds an event of any actor in that country: a month with none is
unknown, never a zero. That rule is deliberately strict for a list of attacks (the curated list), where a
month without a listed attack is not a month without attacks.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from typing import Any

import duckdb

Month = tuple[int, int]

# Every dataset Tearline reads, in the order a headline figure prefers them.
SOURCES = ("acled", "ucdp-ged", "ucdp-candidate", "iskp-curated")

# What each dataset is, and the limit that most changes how its numbers read.
ABOUT = {
    "acled": "ACLED: political violence and demonstration events coded from news and local partners, fatal or "
             "not; fatalities are ACLED's conservative estimates and past events are revised between releases.",
    "ucdp-ged": "UCDP GED: events of organised violence with at least one death, coded from news; complete for "
                "the years of its release; figures are UCDP's best estimates (low and high kept).",
    "ucdp-candidate": "UCDP Candidate: a preliminary monthly release; events are recoded or dropped before they "
                      "enter GED.",
    "iskp-curated": "Curated ISKP list: press-visible attacks only, hand-compiled with one cited source each; "
                    "small incidents are missing, so it cannot show a quiet month or a fall in minor attacks.",
}

_CANDIDATE_FILE = re.compile(r"v(\d{2})_\d+_(\d{1,2})(?!\d)")


def name(ym: Month) -> str:
    return f"{ym[0]:04d}-{ym[1]:02d}"


def record(con: duckdb.DuckDBPyConnection, file: str) -> None:
    """What the just-written rows of ``file`` declare about their period, one row per source in it."""
    con.execute("DELETE FROM releases WHERE file = ?", [file])
    for source, first, last, latest in con.execute(
        "SELECT source, min(year(event_date)), max(year(coalesce(date_end, event_date))), max(event_date) "
        "FROM events WHERE file = ? GROUP BY source", [file]
    ).fetchall():
        lo = hi = None
        if source == "ucdp-ged":
            lo, hi = dt.date(first, 1, 1), dt.date(last, 12, 1)
            basis = f"UCDP GED release: complete for {first}–{last} in the countries the file holds"
        elif source == "ucdp-candidate":
            found = _CANDIDATE_FILE.search(file)
            if found and 1 <= int(found.group(2)) <= 12:
                lo = hi = dt.date(2000 + int(found.group(1)), int(found.group(2)), 1)
                basis = (f"UCDP Candidate release v{found.group(0)[1:].replace('_', '.')}: covers {lo:%Y-%m} only, "
                         "in the countries the file holds; its rows from earlier months are late additions")
            else:
                lo = hi = latest.replace(day=1)
                basis = (f"UCDP Candidate release whose file name gives no month: taken as its latest month, "
                         f"{lo:%Y-%m}")
        else:
            basis = "no declared period: the months in which it holds an event of any actor"
        con.execute("INSERT INTO releases VALUES (?, ?, ?, ?, ?)", [file, source, lo, hi, basis])


@dataclasses.dataclass
class Span:
    """One source's coverage in one place (a country, or anywhere)."""

    source: str
    place: str  # "AFG", or "anywhere"
    declared: list[tuple[Month, Month, str]] = dataclasses.field(default_factory=list)
    observed: set[Month] = dataclasses.field(default_factory=set)

    def covers(self, ym: Month) -> bool:
        return ym in self.observed or any(lo <= ym <= hi for lo, hi, _ in self.declared)

    def why_not(self, ym: Month) -> str:
        where = "" if self.place == "anywhere" else f" in {self.place}"
        if not self.declared and not self.observed:
            return f"{self.source} holds no event{where}"
        parts = [basis for _, _, basis in self.declared]
        if self.observed or not self.declared:
            parts.append(f"it holds no event of any actor{where} in {name(ym)}, so a quiet month cannot be told "
                         "from one it did not record")
        return f"{self.source} does not cover {name(ym)}{where}: " + "; ".join(parts)

    def describe(self) -> str:
        where = "" if self.place == "anywhere" else f" in {self.place}"
        parts = [f"{basis} ({name(lo)}" + (f" to {name(hi)})" if hi != lo else ")")
                 for lo, hi, basis in self.declared]
        if self.observed:
            parts.append(f"{len(self.observed)} month(s) between {name(min(self.observed))} and "
                         f"{name(max(self.observed))} in which it holds an event of any actor{where}; other "
                         "months are not covered")
        return "; ".join(parts) if parts else f"holds no event{where}"


def spans(con: duckdb.DuckDBPyConnection, country: str | None) -> dict[str, Span]:
    """Every source's coverage in ``country`` (ISO3), or anywhere when None."""
    place = country.upper() if country else "anywhere"
    where, params = ("AND e.country_iso3 = ?", [place]) if country else ("", [])
    out: dict[str, Span] = {}
    for source, lo, hi, basis in con.execute(
        f"""SELECT r.source, r.covers_from, r.covers_to, r.basis FROM releases r
            WHERE r.covers_from IS NOT NULL
              AND EXISTS (SELECT 1 FROM events e WHERE e.file = r.file AND e.source = r.source {where})
            ORDER BY r.covers_from, r.file""", params
    ).fetchall():
        span = out.setdefault(source, Span(source, place))
        entry = ((lo.year, lo.month), (hi.year, hi.month), basis)
        if entry not in span.declared:
            span.declared.append(entry)
    for source, y, m in con.execute(
        f"""SELECT e.source, year(e.event_date), month(e.event_date) FROM events e
            LEFT JOIN releases r ON r.file = e.file AND r.source = e.source
            WHERE r.covers_from IS NULL {where} GROUP BY ALL""", params
    ).fetchall():
        out.setdefault(source, Span(source, place)).observed.add((y, m))
    return out


def absent(con: duckdb.DuckDBPyConnection) -> dict[str, str]:
    """The datasets Tearline reads that the store holds nothing of, each with what that leaves out."""
    have = {s for (s,) in con.execute("SELECT DISTINCT source FROM events").fetchall()}
    return {s: f"no {s} file is in the events store; its figures are not part of this answer"
            for s in SOURCES if s not in have}


def precision(con: duckdb.DuckDBPyConnection, where: str, params: list[Any], months: list[Month]
              ) -> dict[str, dict[str, dict[str, int]]]:
    """Per source, how exactly the counted events are dated and placed (events known only to the week or
    month count in the month of their first day)."""
    if not months:
        return {}
    lo, hi = min(months), max(months)
    out: dict[str, dict[str, dict[str, int]]] = {}
    for source, y, m, date_p, geo_p, n in con.execute(
        f"""SELECT source, year(event_date), month(event_date), date_precision, coalesce(geo_precision, 'unknown'),
                   count(*) FROM events
            WHERE {where} AND event_date >= make_date(?, ?, 1) AND event_date < make_date(?, ?, 1) + INTERVAL 1 MONTH
            GROUP BY ALL""", params + [lo[0], lo[1], hi[0], hi[1]]
    ).fetchall():
        if (y, m) not in months:
            continue
        block = out.setdefault(source, {"date": {}, "place": {}})
        block["date"][date_p] = block["date"].get(date_p, 0) + int(n)
        block["place"][geo_p] = block["place"].get(geo_p, 0) + int(n)
    return out
