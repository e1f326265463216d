"""Events: ingest of the real bundled files and of ACLED-shaped exports, trends checked against an
independent pandas computation on the same rows, and bad files refused with the store untouched."""

from __future__ import annotations

import csv
import json
import random
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from tearline import events
from tearline.errors import NotFound
from tearline.events import EventsError, trend

DATA = Path(__file__).resolve().parent.parent / "tearline" / "data" / "events"
GED_PAK = DATA / "ucdp-ged-pakistan" / "conflict_data_pak.csv"
CANDIDATE = DATA / "ucdp-candidate-2023-10" / "GEDEvent_v23_0_10.csv"
ISKP = DATA / "iskp-attacks" / "iskp_attacks.csv"
ACLED_HEADER = ["event_id_cnty", "event_date", "year", "time_precision", "disorder_type", "event_type", "sub_event_type",
                "actor1", "assoc_actor_1", "inter1", "actor2", "assoc_actor_2", "inter2", "interaction",
                "civilian_targeting", "iso", "region", "country", "admin1", "admin2", "admin3", "location", "latitude",
                "longitude", "geo_precision", "source", "source_scale", "notes", "fatalities", "tags", "timestamp"]


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "events.duckdb"


def count(db: Path) -> dict[str, int]:
    con = events.connect(db)
    try:
        return dict(con.execute("SELECT source, count(*) FROM events GROUP BY 1").fetchall())
    finally:
        con.close()


def test_bundled_files_ingest_every_row_and_reingest_is_idempotent(db: Path) -> None:
    events.ingest([GED_PAK, CANDIDATE, ISKP], db)
    # HDX's second header row of HXL tags is not an event; the file has 6,416 events.
    assert count(db) == {"ucdp-ged": 6416, "ucdp-candidate": 2391, "iskp-curated": 142}
    events.ingest([GED_PAK, ISKP], db)
    assert count(db) == {"ucdp-ged": 6416, "ucdp-candidate": 2391, "iskp-curated": 142}


def _pandas_month(frame: pd.DataFrame, month: str) -> tuple[int, int]:
    rows = frame[frame["date_start"].str[:7] == month]
    return len(rows), int(rows["best"].sum())


@pytest.mark.parametrize(("actor", "mask"), [
    ("TTP", lambda f: (f["side_a"] == "TTP") | (f["side_b"] == "TTP")),
    ("ISIS-K", lambda f: (f["side_a_new_id"] == "234") | (f["side_b_new_id"] == "234")),
])
@pytest.mark.parametrize(("start", "end"), [("2012-01", "2013-01"), ("2017-02", "2018-07"), ("2009-10", "2014-06")])
def test_ucdp_trend_matches_an_independent_pandas_count(db: Path, actor: str, mask, start: str, end: str) -> None:  # type: ignore[no-untyped-def]
    events.ingest([GED_PAK], db)
    frame = pd.read_csv(GED_PAK, dtype=str, skiprows=[1], keep_default_na=False)
    frame["best"] = frame["best"].astype(int)
    mine = frame[mask(frame) & (frame["iso3"] == "PAK")]
    con = events.connect(db)
    got = trend.trend(con, actor, "PAK", events.month(start, "f"), events.month(end, "t"), "ucdp-ged")
    assert (got["from"]["events"], got["from"]["fatalities"]) == _pandas_month(mine, start)
    assert (got["to"]["events"], got["to"]["fatalities"]) == _pandas_month(mine, end)


def _acled_rows(rng: random.Random) -> list[dict[str, str]]:
    """An ACLED-shaped export: ISKP attacks in Afghanistan falling from 50 (Jan 2022) to 3 (Apr 2024),
    with ambiguous Taliban-and/or-ISKP rows, ISKP as actor2, other actors, and month-edge dates."""
    rows = []

    def add(day: str, actor1: str, actor2: str = "Civilians (Afghanistan)", fat: int = 1, country: str = "Afghanistan",
            fmt: str = "iso") -> None:
        n = len(rows) + 1
        y, m, d = day.split("-")
        shown = day if fmt == "iso" else f"{int(d)} {['January','February','March','April','May','June','July','August','September','October','November','December'][int(m)-1]} {y}"
        rows.append(dict.fromkeys(ACLED_HEADER, "") | {
            "event_id_cnty": f"AFG{n}", "event_date": shown, "year": y, "time_precision": "1",
            "event_type": "Explosions/Remote violence", "sub_event_type": "Suicide bomb", "actor1": actor1,
            "actor2": actor2, "iso": "4", "country": country, "admin1": "Kabul", "location": "Kabul",
            "latitude": "34.5", "longitude": "69.2", "geo_precision": "1", "fatalities": str(fat),
            "notes": "generated", "timestamp": "1700000000"})

    for i in range(48):
        add(f"2022-01-{1 + i % 28:02d}", "Islamic State Khorasan Province (ISKP)", fat=rng.randint(0, 20))
    add("2022-01-31", "Taliban", "Islamic State Khorasan Province (ISKP)", fat=2)  # ISKP as actor2
    add("2022-01-31", "Islamic State (Afghanistan)", fat=3)  # the older ACLED name
    add("2022-02-01", "Islamic State Khorasan Province (ISKP)", fat=9)  # next month: must not count
    add("2021-12-31", "Islamic State Khorasan Province (ISKP)", fat=9)  # previous month
    for i in range(5):
        add(f"2022-01-{10 + i:02d}", "Taliban and/or ISKP", fat=1)  # ambiguous
    for i in range(30):
        add(f"2022-01-{1 + i % 28:02d}", "Taliban", "Military Forces of Afghanistan (2004-2021)", fat=1)
    add("2022-01-05", "Islamic State Khorasan Province (ISKP)", country="Pakistan", fat=4)
    for i in range(3):
        add(f"2024-04-{3 + i:02d}", "Islamic State Khorasan Province (ISKP)", fat=2)
    add("2024-04-30", "Taliban and/or ISKP", fat=1)
    return rows


def write_acled(path: Path, rows: list[dict[str, str]]) -> Path:
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=ACLED_HEADER)
        writer.writeheader()
        writer.writerows(rows)
    return path


@pytest.mark.parametrize("date_style", ["iso", "long"])
def test_acled_export_reproduces_the_94_percent_fall(db: Path, tmp_path: Path, date_style: str) -> None:
    rows = _acled_rows(random.Random(3))
    if date_style == "long":
        import datetime as dt
        for r in rows:
            r["event_date"] = dt.date.fromisoformat(r["event_date"]).strftime("%-d %B %Y")
    events.ingest([write_acled(tmp_path / "acled.csv", rows)], db)
    con = events.connect(db)
    got = trend.trend(con, "ISIS-K", "AFG", (2022, 1), (2024, 4))
    # independent count over the same rows
    frame = pd.DataFrame(rows)
    iskp = frame["actor1"].isin(["Islamic State Khorasan Province (ISKP)", "Islamic State (Afghanistan)"]) | (
        frame["actor2"] == "Islamic State Khorasan Province (ISKP)")
    afg = frame["country"] == "Afghanistan"
    dates = pd.to_datetime(frame["event_date"], format="mixed")
    jan = frame[iskp & afg & (dates.dt.strftime("%Y-%m") == "2022-01")]
    apr = frame[iskp & afg & (dates.dt.strftime("%Y-%m") == "2024-04")]
    assert got["source"] == "acled"
    assert got["from"] == {"month": "2022-01", "events": len(jan), "fatalities": int(jan["fatalities"].astype(int).sum()),
                           "covered": True}
    assert got["to"]["events"] == len(apr) == 3
    assert got["change_pct"]["events"] == -94.0
    assert got["ambiguous"]["from"]["events"] == 5 and got["ambiguous"]["to"]["events"] == 1


@pytest.mark.parametrize(("damage", "says"), [
    (lambda t: t.replace("event_date", "when", 1), "missing columns: event_date"),
    (lambda t: t.replace("2022-01-05", "2022-13-45", 1), 'bad.csv:6: column event_date: Error when converting column "event_date"'),
    (lambda t: t.replace(",generated,2,", ",generated,two,", 1), 'Could not convert string "two" to \'INTEGER\''),
    (lambda t: t[: len(t) // 2].rsplit(",", 3)[0], "bad.csv:45: column fatalities: missing columns (a truncated"),
])
def test_malformed_files_are_refused_with_the_line_and_leave_the_store_as_it_was(
    db: Path, tmp_path: Path, damage, says: str  # type: ignore[no-untyped-def]
) -> None:
    events.ingest([ISKP], db)
    before = count(db)
    good = write_acled(tmp_path / "good.csv", _acled_rows(random.Random(1)))
    bad = tmp_path / "bad.csv"
    bad.write_text(damage(good.read_text()))
    with pytest.raises(EventsError) as info:
        events.ingest([bad], db)
    assert "bad.csv" in str(info.value) and says in str(info.value)
    assert count(db) == before


def test_bad_numbers_name_their_line(db: Path, tmp_path: Path) -> None:
    rows = _acled_rows(random.Random(2))
    rows[9]["fatalities"] = "many"
    with pytest.raises(EventsError) as info:
        events.ingest([write_acled(tmp_path / "acled.csv", rows)], db)
    assert "acled.csv:11:" in str(info.value) and "fatalities" in str(info.value)


def test_cli_trend_json_contract(tmp_path: Path) -> None:
    db = tmp_path / "e.duckdb"
    tl = [sys.executable, "-m", "tearline"]
    subprocess.run([*tl, "events", "ingest", str(GED_PAK), str(ISKP), "--events-db", str(db)], check=True,
                   capture_output=True)
    out = subprocess.run([*tl, "events", "trend", "--actor", "TTP", "--country", "PAK", "--from", "2012-01", "--to",
                          "2013-01", "--json", "--events-db", str(db)], check=True, capture_output=True, text=True).stdout
    doc = json.loads(out)
    for key in ("from", "to"):
        assert set(doc[key]) >= {"events", "fatalities"}
    assert set(doc["change_pct"]) == {"events", "fatalities"}
    bad = subprocess.run([*tl, "events", "trend", "--actor", "TTP", "--from", "2012-13", "--to", "2013-01",
                          "--events-db", str(db)], capture_output=True, text=True)
    assert bad.returncode == 2 and "--from" in bad.stderr and "Traceback" not in bad.stderr


def test_monthly_series_counts_zeros_only_inside_each_sources_coverage(db: Path) -> None:
    from tearline.events import series

    events.ingest([GED_PAK, ISKP], db)
    con = events.connect(db)
    rows = series.monthly(con, "ISIS-K", "PAK")
    ged = [r for r in rows if r["source"] == "ucdp-ged"]
    months = [r["month"] for r in ged]
    assert months == sorted(months) and len(months) == len(set(months))
    covered = [r for r in ged if r["covered"]]
    assert max(r["month"] for r in covered) == "2021-12"  # GED ends in 2021: no invented zeros after it
    after = [r for r in ged if r["month"] > "2021-12"]
    assert after and all(r["events"] is None and r["fatalities"] is None for r in after)
    assert "UCDP GED release: complete for 1989–2021" in after[0]["why"]
    frame = pd.read_csv(GED_PAK, dtype=str, skiprows=[1], keep_default_na=False)
    is_pak = frame[((frame["side_a_new_id"] == "234") | (frame["side_b_new_id"] == "234")) & (frame["iso3"] == "PAK")]
    assert sum(r["events"] for r in covered) == len(is_pak)
    assert sum(r["fatalities"] for r in covered) == is_pak["best"].astype(int).sum()
    assert any(r["events"] == 0 for r in covered)
    # the curated list declares no period: a month without a listed attack there is unknown, never a zero
    curated = [r for r in rows if r["source"] == "iskp-curated"]
    assert curated and all(r["events"] is None or r["events"] > 0 for r in curated)
    assert any(r["events"] is None and "cannot be told from one it did not record" in r["why"] for r in curated)


def test_series_chart_is_written_as_png_and_svg(db: Path, tmp_path: Path) -> None:
    from tearline.events import series

    events.ingest([ISKP], db)
    rows = series.monthly(events.connect(db), "ISKP", "AFG")
    for name in ("chart.png", "chart.svg"):
        series.chart(rows, "ISKP in AFG", str(tmp_path / name))
    assert (tmp_path / "chart.png").read_bytes()[:4] == b"\x89PNG"
    assert b"<svg" in (tmp_path / "chart.svg").read_bytes()[:400]


def test_compact_file_dataset_rules_replace_the_builtin_resolution(db: Path, tmp_path: Path) -> None:
    from tearline import compact
    from tearline.events import actors

    events.ingest([GED_PAK], db)
    con = events.connect(db)
    spec = compact.parse("""
name: t
scope:
  actors:
    - name: Islamic State Khorasan Province
      aliases: [ISKP]
      datasets:
        ucdp-ged: {names: [IS], ids: ["234"], countries: [AFG]}
    - name: Tehrik-i-Taliban Pakistan
      aliases: [TTP, Pakistani Taliban]
members:
  - {name: a, write: true, tlp_max: amber}
""")
    catalogue = actors.with_compact(spec)
    # the compact's rule limits ISKP in UCDP to Afghanistan: the Pakistan file then has none at all
    with pytest.raises(NotFound, match="no event of 'ISKP'"):
        trend.trend(con, "ISKP", "PAK", (2018, 7), (2019, 7), "ucdp-ged", catalogue)
    assert trend.trend(con, "ISKP", "PAK", (2018, 7), (2019, 7), "ucdp-ged")["from"]["events"] == 3
    # an actor the catalogue does not know resolves by its name and aliases
    by_alias = trend.trend(con, "Pakistani Taliban", "PAK", (2012, 1), (2013, 1), "ucdp-ged", catalogue)
    assert by_alias["from"]["events"] == trend.trend(con, "TTP", "PAK", (2012, 1), (2013, 1), "ucdp-ged")["from"]["events"] > 0


def test_bad_dataset_rules_in_a_compact_file_name_line_and_field() -> None:
    from tearline import compact
    from tearline.errors import ConfigError

    text = """name: t
scope:
  actors:
    - name: X
      datasets:
        gdelt: {names: [x]}
        ucdp-ged: {countries: [pak], colour: red}
members:
  - {name: a}
"""
    with pytest.raises(ConfigError) as info:
        compact.parse(text, "c.yaml")
    message = str(info.value)
    assert "c.yaml:6: scope.actors[0].datasets.gdelt: unknown dataset" in message
    assert "scope.actors[0].datasets.ucdp-ged.countries: not ISO 3166 alpha-3 codes: pak" in message
    assert "scope.actors[0].datasets.ucdp-ged.colour: unknown rule field" in message


def test_month_precision_events_count_in_the_month_of_their_first_day(db: Path, tmp_path: Path) -> None:
    rows = _acled_rows(random.Random(5))
    rows[0]["time_precision"] = "3"  # known only to the month: ACLED dates it to the month's start
    rows[0]["event_date"] = "2022-01-01"
    events.ingest([write_acled(tmp_path / "acled.csv", rows)], db)
    con = events.connect(db)
    precision = con.execute("SELECT date_precision FROM events WHERE event_id = 'AFG1'").fetchone()[0]
    assert precision == "month"
    got = trend.trend(con, "ISKP", "AFG", (2022, 1), (2024, 4), "acled")
    assert got["from"]["events"] == 50


@pytest.mark.parametrize("column", ["event_id_cnty", "event_date", "fatalities"])
def test_a_row_missing_its_id_date_or_fatalities_is_an_error_not_a_skip(db: Path, tmp_path: Path, column: str) -> None:
    rows = _acled_rows(random.Random(4))
    rows[6][column] = ""
    with pytest.raises(EventsError) as info:
        events.ingest([write_acled(tmp_path / "acled.csv", rows)], db)
    assert f"record 7 (about line 8): column {column} is empty" in str(info.value)
    assert count(db) == {}


def test_an_actor_with_no_event_is_an_error_not_a_trend_of_zeros(tmp_path: Path) -> None:
    from tearline.events import series

    db = tmp_path / "e.duckdb"
    events.ingest([DATA / "iskp-attacks" / "iskp_attacks.csv"], db)
    con = events.connect(db)
    for call in (lambda: trend.trend(con, "Nobody", None, (2023, 1), (2023, 2)),
                 lambda: series.monthly(con, "Nobody"), lambda: series.top_places(con, "Nobody")):
        with pytest.raises(NotFound, match="tearline events actors"):
            call()
    assert series.top_places(con, "ISKP", "FRA") == []  # a known actor where it did nothing: none, no error


def test_a_broken_quote_is_named_by_its_line_and_a_bad_row_counts_once(tmp_path: Path) -> None:
    import csv

    rows = list(csv.reader((DATA / "iskp-attacks" / "iskp_attacks.csv").open(newline="")))[:6]
    header = rows[0]
    broken = tmp_path / "broken.csv"
    text = [",".join(f'"{c}"' if "," in c else c for c in r) for r in rows]
    text[3] = text[3].replace(",", ',"', 1)  # a quote opened in the record on line 4 and never closed
    broken.write_text("\n".join(text) + "\n")
    with pytest.raises(EventsError, match=r"broken.csv:4: the record starting on this line has a quote"):
        events.ingest([broken], tmp_path / "e.duckdb")
    bad = tmp_path / "bad.csv"
    rows[2][header.index("latitude")], rows[2][header.index("fatalities_best")] = "north", "many"
    with bad.open("w", newline="") as fh:
        csv.writer(fh).writerows(rows)
    with pytest.raises(EventsError, match=r"1 row\(s\) cannot be read") as refused:
        events.ingest([bad], tmp_path / "e.duckdb")
    assert "bad.csv:3: column latitude" in refused.value.description
    assert "bad.csv:3: column fatalities_best" in refused.value.description
