"""Unit-month panels of one actor's events, zeros included, from the events store.

A panel is what every model sees: counts and fatalities per unit (a country, or a province of a
country) and month, and the events themselves (for the self-exciting model and for the size of an
attack). Models receive ``panel.history(t)``, a copy cut at the end of month t, so a forecast made
at t cannot read anything later: the no-leakage rule is enforced by what a model is given, not by
each model's care.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

import duckdb
import numpy as np

from ..errors import BadRequest
from ..events import actors
from ..events.trend import PREFERENCE

# Rows whose date is only known to the year cannot be placed in a month.
MONTHLY_PRECISION = ("day", "week", "month")

# Provinces that no longer exist: (ISO3, name as datasets give it) → (first month without it, what
# became of it). A dataset may keep coding events to the old unit long after (UCDP GED 22.1 names the
# tribal areas up to 2021-12), and then the unit is forecast as the former province, saying so; where
# the dataset has stopped naming it, forecasting it would read a renaming as peace, so it is not.
RETIRED = {
    ("PAK", "Federally Administered Tribal Areas"): ((2018, 5), "merged into Khyber Pakhtunkhwa"),
}


def month_index(year: int, month: int) -> int:
    return year * 12 + (month - 1)


def month_label(index: int) -> str:
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


@dataclasses.dataclass(frozen=True)
class Panel:
    actor: str
    source: str
    level: str  # "country" or "province"
    units: tuple[tuple[str, str | None], ...]  # (ISO3, province or None)
    start: int  # month index of column 0
    counts: np.ndarray  # [units, months] events
    fatalities: np.ndarray  # [units, months] fatalities (best)
    # one row per event: unit index, time in months since `start` (fractional), fatalities
    event_unit: np.ndarray
    event_time: np.ndarray
    event_fatalities: np.ndarray
    notes: tuple[str, ...] = ()
    # units kept for their history but not forecast, each with the reason (see RETIRED)
    retired: tuple[tuple[int, str], ...] = ()

    @property
    def months(self) -> int:
        return self.counts.shape[1]

    @property
    def end(self) -> int:
        return self.start + self.months - 1

    def unit_label(self, u: int) -> str:
        iso, province = self.units[u]
        return iso if province is None else f"{iso}: {province}"

    def history(self, t: int) -> Panel:
        """The panel as known at the end of month index t (columns start..t, events up to t)."""
        if t < self.start:
            raise BadRequest(f"no data before {month_label(self.start)}; cannot cut at {month_label(t)}")
        cols = min(t, self.end) - self.start + 1
        keep = self.event_time < cols
        return dataclasses.replace(
            self, counts=self.counts[:, :cols].copy(), fatalities=self.fatalities[:, :cols].copy(),
            event_unit=self.event_unit[keep], event_time=self.event_time[keep],
            event_fatalities=self.event_fatalities[keep])

    def country_totals(self) -> np.ndarray:
        """[units, months]: the counts of every unit's whole country (the national trend)."""
        out = np.zeros_like(self.counts)
        for iso in {u[0] for u in self.units}:
            rows = [i for i, u in enumerate(self.units) if u[0] == iso]
            out[rows] = self.counts[rows].sum(axis=0)
        return out


# A dataset whose record of the actor spans fewer months than this cannot be learnt from (a UCDP Candidate
# release holds one month): without --source, a longer one is taken if there is any.
MIN_HISTORY_MONTHS = 24


def choose_source(con: duckdb.DuckDBPyConnection, where: str, params: list[Any], source: str | None) -> str:
    spans = {s: (hi.year * 12 + hi.month) - (lo.year * 12 + lo.month) + 1 for s, lo, hi in con.execute(
        f"SELECT source, min(event_date), max(event_date) FROM events WHERE {where} GROUP BY source", params
    ).fetchall()}
    have = set(spans)
    if source and source != "all":
        if source not in have:
            raise BadRequest(f"--source {source}: the events store has no events of this actor from it"
                             + (f" (it has: {', '.join(sorted(have))})" if have else ""))
        return source
    if not have:
        raise BadRequest("the events store has no events of this actor; ingest a dataset first")
    # datasets overlap, so one panel is built from one dataset, never a sum of several
    long_enough = {s for s in have if spans[s] >= MIN_HISTORY_MONTHS} or have
    return sorted(long_enough, key=lambda s: PREFERENCE.index(s) if s in PREFERENCE else 99)[0]


def build(con: duckdb.DuckDBPyConnection, actor_name: str, level: str = "province", country: str | None = None,
          source: str | None = None, catalogue: tuple[actors.Actor, ...] = actors.CATALOGUE) -> Panel:
    """Every unit-month from the actor's first event in the chosen dataset to the end of that dataset's
    coverage. Units are the countries where the actor acted (or --country), and at province level
    every province of those countries that the dataset names for any actor, so a province the actor
    has not struck yet is in the panel with zeros rather than missing."""
    if level not in ("country", "province"):
        raise BadRequest(f"--unit must be 'country' or 'province', not {level!r}")
    actor, where, params = actors.selection(actor_name, country, None, catalogue)
    chosen = choose_source(con, where, params, source)
    mine = f"{where} AND source = ?"
    mine_params = params + [chosen]
    first = con.execute(f"SELECT min(event_date) FROM events WHERE {mine}", mine_params).fetchone()[0]
    last = con.execute("SELECT max(coalesce(date_end, event_date)) FROM events WHERE source = ?",
                       [chosen]).fetchone()[0]
    countries = [c for (c,) in con.execute(
        f"SELECT DISTINCT country_iso3 FROM events WHERE {mine} AND country_iso3 IS NOT NULL ORDER BY 1",
        mine_params).fetchall()]
    notes: list[str] = []
    if level == "country":
        units: list[tuple[str, str | None]] = [(c, None) for c in countries]
    else:
        marks = ", ".join("?" for _ in countries)
        units = [(c, p) for c, p in con.execute(
            f"""SELECT DISTINCT country_iso3, province FROM events
                WHERE source = ? AND country_iso3 IN ({marks}) AND province IS NOT NULL ORDER BY 1, 2""",
            [chosen, *countries]).fetchall()]
    start = month_index(first.year, first.month)
    end = month_index(last.year, last.month)
    index = {u: i for i, u in enumerate(units)}
    rows = con.execute(
        f"""SELECT country_iso3, province, event_date, date_precision, fatalities_best
            FROM events WHERE {mine} ORDER BY event_date, event_id""", mine_params).fetchall()
    counts = np.zeros((len(units), end - start + 1))
    fatalities = np.zeros_like(counts)
    e_unit, e_time, e_fat = [], [], []
    imprecise = unplaced = 0
    for iso, province, day, precision, fat in rows:
        if precision not in MONTHLY_PRECISION:
            imprecise += 1
            continue
        key = (iso, None) if level == "country" else (iso, province)
        if key not in index:
            unplaced += 1
            continue
        u, m = index[key], month_index(day.year, day.month) - start
        counts[u, m] += 1
        fatalities[u, m] += fat
        e_unit.append(u)
        # the day's place within its month, so the self-exciting model sees spacing between events
        e_time.append(m + (day.day - 0.5) / _days_in_month(day))
        e_fat.append(fat)
    retired = _retired(con, chosen, units, end, notes)
    if imprecise:
        notes.append(f"{imprecise} events dated only to the year are left out (no month to put them in)")
    if unplaced:
        notes.append(f"{unplaced} events without a province count at country level only")
    return Panel(actor=actor.name, source=chosen, level=level, units=tuple(units), start=start,
                 counts=counts, fatalities=fatalities, event_unit=np.array(e_unit, dtype=int),
                 event_time=np.array(e_time, dtype=float), event_fatalities=np.array(e_fat, dtype=float),
                 notes=tuple(notes), retired=retired)


def _retired(con: duckdb.DuckDBPyConnection, source: str, units: list[tuple[str, str | None]], end: int,
             notes: list[str]) -> tuple[tuple[int, str], ...]:
    """The units of RETIRED in the panel: a note for those the dataset still names after they ceased
    to exist, and (index, reason) for those it does not, which are not forecast."""
    out = []
    for u, unit in enumerate(units):
        if unit not in RETIRED:
            continue
        (year, month), what = RETIRED[unit]
        if end < month_index(year, month):
            continue  # the data ends before the change: the unit still existed
        since = dt.date(year, month, 1)
        last = con.execute("SELECT max(event_date) FROM events WHERE source = ? AND country_iso3 = ? AND province = ?"
                           " AND event_date >= ?", [source, unit[0], unit[1], since]).fetchone()[0]
        change = f"{unit[0]}: {unit[1]} was {what} in {year:04d}-{month:02d}"
        if last is not None:
            notes.append(f"{change}; {source} still names it (up to {last:%Y-%m}), so it is forecast as the former "
                         "province")
        else:
            out.append((u, f"{change} and {source} names it for nothing since: not forecast"))
            notes.append(out[-1][1])
    return tuple(out)


def _days_in_month(day: dt.date) -> int:
    nxt = dt.date(day.year + (day.month == 12), day.month % 12 + 1, 1)
    return (nxt - dt.date(day.year, day.month, 1)).days
