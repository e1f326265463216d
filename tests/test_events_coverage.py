"""Numbers that say what the data can support: coverage per source and month (a month a source does not
cover is null with the reason, never a zero), `trend` and `series` agreeing everywhere on the bundled data,
caveats travelling with every figure, and ACLED exports as they come (delimiters, BOM, CRLF, embedded
newlines, stray spaces, associated actors)."""

from __future__ import annotations

import csv
import io
import json
import random
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tearline import events
from tearline.errors import NotFound
from tearline.events import EventsError, actors, coverage, series, trend

from .test_events import ACLED_HEADER, CANDIDATE, GED_PAK, ISKP, _acled_rows

ALL = [GED_PAK, CANDIDATE, ISKP]


@pytest.fixture(scope="module")
def bundled(tmp_path_factory: pytest.TempPathFactory) -> Path:
    db = tmp_path_factory.mktemp("bundled") / "events.duckdb"
    events.ingest(ALL, db)
    return db


def test_a_candidate_release_covers_its_own_month_and_the_headline_is_a_source_covering_both(bundled: Path) -> None:
    con = events.connect(bundled)
    got = trend.trend(con, "ISIS-K", "AFG", (2023, 3), (2023, 10))
    # The October 2023 release holds 1 event in February and 1 in August: late additions, not coverage. March
    # is not "0 events" there; the curated list, which does cover March, gives the headline.
    assert got["source"] == "iskp-curated" and got["spans_both_months"] is True
    assert (got["from"]["events"], got["from"]["fatalities"]) == (2, 9)
    cand = got["by_source"]["ucdp-candidate"]
    assert cand["from"]["events"] is None and cand["from"]["covered"] is False
    assert "v23.0.10: covers 2023-10 only" in cand["from"]["why"]
    assert cand["to"]["events"] == 4 and cand["spans_both_months"] is False
    assert cand["change_pct"] == {"events": None, "fatalities": None} and "not covered" in cand["change_why"]
    # series says the same of the same months
    rows = {(r["source"], r["month"]): r for r in series.monthly(con, "ISIS-K", "AFG", start=(2023, 3), end=(2023, 10))}
    assert rows[("ucdp-candidate", "2023-03")]["events"] is None
    assert rows[("ucdp-candidate", "2023-10")]["events"] == 4
    assert rows[("iskp-curated", "2023-03")]["events"] == 2


def test_no_source_covering_both_months_gives_no_headline_and_says_why(bundled: Path) -> None:
    con = events.connect(bundled)
    got = trend.trend(con, "ISIS-K", "AFG", (2022, 1), (2024, 4))
    assert got["source"] is None
    assert got["from"]["events"] is None and "no single source covers both months in AFG" in got["from"]["why"]
    assert set(got["by_source"]) == {"iskp-curated", "ucdp-candidate"}
    assert got["by_source"]["iskp-curated"]["to"]["events"] == 1
    assert got["by_source"]["iskp-curated"]["from"]["events"] is None  # no attack listed: unknown, not zero
    assert "acled" in got["sources_absent"]


def test_a_source_asked_for_where_the_actor_did_nothing_is_zero_inside_its_coverage_and_null_outside(
    bundled: Path,
) -> None:
    con = events.connect(bundled)
    inside = trend.trend(con, "ISIS-K", "PAK", (2010, 1), (2010, 2), "ucdp-ged")
    assert inside["from"]["events"] == 0 and inside["from"]["covered"] is True
    outside = trend.trend(con, "ISIS-K", "PAK", (2021, 12), (2022, 1), "ucdp-ged")
    assert outside["from"]["events"] == 1 and outside["to"]["events"] is None
    assert "complete for 1989–2021" in outside["to"]["why"]


def _pairs(months: list[str]) -> list[tuple[str, str]]:
    return [(months[i], months[min(i + 1, len(months) - 1)]) for i in range(0, len(months), 2)]


def _places(db: Path) -> list[tuple[str, str | None]]:
    """Every (actor, country) of the bundled data worth asking: ISIS-K wherever it has an event, and anywhere;
    a dataset's own actor name (TTP) where it has its events."""
    con = events.connect(db)
    try:
        out: list[tuple[str, str | None]] = [("ISIS-K", None)]
        for name in ("ISIS-K", "TTP"):
            _actor, where, params = actors.selection(name, None, None)
            out += [(name, c) for (c,) in con.execute(
                f"SELECT DISTINCT country_iso3 FROM events WHERE {where} AND country_iso3 IS NOT NULL ORDER BY 1",
                params).fetchall()]
        return out
    finally:
        con.close()


def test_trend_and_series_agree_on_every_actor_country_and_month_of_the_bundled_data(bundled: Path) -> None:
    places = _places(bundled)
    assert len(places) >= 8
    for actor, country in places:
        _agree(bundled, actor, country)


def _agree(bundled: Path, actor: str, country: str | None) -> None:
    con = events.connect(bundled)
    rows = series.monthly(con, actor, country)
    assert rows
    by = {(r["source"], r["month"]): r for r in rows}
    months = sorted({r["month"] for r in rows})
    for first, second in _pairs(months):
        got = trend.trend(con, actor, country, events.month(first, "f"), events.month(second, "t"))
        blocks = got.get("by_source") or {got["source"]: got}
        assert set(blocks) == {s for s, m in by if m == first}
        for source, block in blocks.items():
            for key, month in (("from", first), ("to", second)):
                row = by[(source, month)]
                assert (block[key]["events"], block[key]["fatalities"], block[key]["covered"]) == (
                    row["events"], row["fatalities"], row["covered"]), (source, month)
                assert block[key].get("why") == row.get("why")


def test_every_figure_in_json_carries_its_sources_caveats(bundled: Path) -> None:
    tl = [sys.executable, "-m", "tearline", "events"]
    doc = json.loads(subprocess.run(
        [*tl, "trend", "--actor", "ISIS-K", "--country", "AFG", "--from", "2023-03", "--to", "2023-10", "--json",
         "--events-db", str(bundled)], check=True, capture_output=True, text=True).stdout)
    for block in [doc, *doc["by_source"].values()]:
        assert set(block["caveats"]) >= {"about", "coverage", "actor_coding", "precision"}
    assert "press-visible attacks only" in doc["caveats"]["about"]
    assert "geography stands in for ISKP" in doc["by_source"]["ucdp-candidate"]["caveats"]["actor_coding"]
    assert doc["by_source"]["ucdp-candidate"]["caveats"]["precision"]["date"] == {"day": 3, "week": 1}
    assert "acled" in doc["sources_absent"]
    listing = json.loads(subprocess.run(
        [*tl, "series", "--actor", "ISIS-K", "--country", "PAK", "--json", "--events-db", str(bundled)],
        check=True, capture_output=True, text=True).stdout)
    assert {r["source"] for r in listing["rows"]} == set(listing["sources"])
    assert all("UCDP GED" in listing["sources"]["ucdp-ged"][k] for k in ("about", "coverage"))
    assert all(r["events"] is None and r["why"] for r in listing["rows"] if not r["covered"])
    places = json.loads(subprocess.run(
        [*tl, "places", "--actor", "ISIS-K", "--top", "5", "--json", "--events-db", str(bundled)],
        check=True, capture_output=True, text=True).stdout)
    assert len(places["rows"]) == 5 and {r["source"] for r in places["rows"]} == set(places["sources"])
    assert all(set(c) >= {"about", "coverage", "actor_coding", "precision"} for c in places["sources"].values())
    text = subprocess.run([*tl, "trend", "--actor", "ISIS-K", "--country", "AFG", "--from", "2022-01", "--to",
                           "2024-04", "--events-db", str(bundled)], check=True, capture_output=True, text=True).stdout
    assert "no source covers both months" in text and "no acled file is in the events store" in text


def test_an_empty_store_and_an_unknown_actor_are_errors(tmp_path: Path, bundled: Path) -> None:
    empty = events.connect(tmp_path / "empty.duckdb")
    with pytest.raises(NotFound, match="holds no events: load"):
        trend.trend(empty, "ISIS-K", "AFG", (2022, 1), (2024, 4))
    with pytest.raises(NotFound, match="holds no events"):
        series.monthly(empty, "ISIS-K")
    with pytest.raises(NotFound, match="no event of 'Nobody'"):
        trend.trend(events.connect(bundled), "Nobody", None, (2022, 1), (2024, 4))
    empty.close()
    run = subprocess.run([sys.executable, "-m", "tearline", "events", "trend", "--actor", "ISIS-K", "--from",
                          "2022-01", "--to", "2024-04", "--events-db", str(tmp_path / "empty.duckdb")],
                         capture_output=True, text=True)
    assert run.returncode != 0 and "holds no events" in run.stderr and "Traceback" not in run.stderr


def test_a_store_made_before_releases_were_recorded_falls_back_to_observed_months(tmp_path: Path) -> None:
    db = tmp_path / "old.duckdb"
    events.ingest([CANDIDATE], db)
    con = events.connect(db)
    con.execute("DELETE FROM releases")
    spans = coverage.spans(con, "AFG")
    assert spans["ucdp-candidate"].covers((2023, 10)) and not spans["ucdp-candidate"].covers((2023, 3))


# ACLED exports as they come ------------------------------------------------------------------------------

def _plain(rows: list[dict[str, str]]) -> dict[str, object]:
    return {"rows": rows}


def _export(rows: list[dict[str, str]], *, delimiter: str = ",", bom: bool = False, crlf: bool = False,
            decimal_comma: bool = False, padded_header: bool = False) -> str:
    buffer = io.StringIO()
    header = [f" {h} " if padded_header else h for h in ACLED_HEADER]
    writer = csv.writer(buffer, delimiter=delimiter, lineterminator="\r\n" if crlf else "\n")
    writer.writerow(header)
    for r in rows:
        values = [r[h] for h in ACLED_HEADER]
        if decimal_comma:
            values = [v.replace(".", ",") if h in ("latitude", "longitude") else v
                      for h, v in zip(ACLED_HEADER, values, strict=True)]
        writer.writerow(values)
    return ("\ufeff" if bom else "") + buffer.getvalue()


def _figures(db: Path) -> tuple[object, ...]:
    con = events.connect(db)
    try:
        got = trend.trend(con, "ISIS-K", "AFG", (2022, 1), (2024, 4), "acled")
        lat = con.execute("SELECT round(sum(latitude), 3) FROM events").fetchone()[0]
        return got["from"]["events"], got["from"]["fatalities"], got["to"]["events"], got["ambiguous"], lat
    finally:
        con.close()


@settings(max_examples=24, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(delimiter=st.sampled_from([",", ";", "\t", "|"]), bom=st.booleans(), crlf=st.booleans(),
       newline_in_notes=st.booleans(), spaces=st.booleans(), padded_header=st.booleans(), seed=st.integers(0, 50))
def test_acled_export_variants_give_the_same_figures_as_the_plain_export(
    tmp_path_factory: pytest.TempPathFactory, delimiter: str, bom: bool, crlf: bool, newline_in_notes: bool,
    spaces: bool, padded_header: bool, seed: int,
) -> None:
    work = tmp_path_factory.mktemp("acled")
    rows = _acled_rows(random.Random(seed))
    plain = work / "plain.csv"
    plain.write_text(_export(rows), encoding="utf-8", newline="")
    variant_rows = [dict(r) for r in rows]
    for r in variant_rows:
        if newline_in_notes:
            r["notes"] = f"On {r['event_date']}, an attack;\nreported \"twice\",\r\nby two sources."
        if spaces:
            r["actor1"] = "  " + r["actor1"].replace(" ", "   ") + " "
            r["actor2"] = r["actor2"] + "\t"
    variant = work / "variant.csv"
    variant.write_text(_export(variant_rows, delimiter=delimiter, bom=bom, crlf=crlf,
                               decimal_comma=delimiter == ";", padded_header=padded_header),
                       encoding="utf-8", newline="")
    events.ingest([plain], work / "plain.duckdb")
    events.ingest([variant], work / "variant.duckdb")
    assert _figures(work / "variant.duckdb") == _figures(work / "plain.duckdb")


def test_iskp_named_only_among_associated_actors_is_reported_apart(tmp_path: Path) -> None:
    rows = _acled_rows(random.Random(7))
    base = len(rows)
    extra = dict(rows[0])
    for i, (actor1, assoc) in enumerate([
        ("Unidentified Armed Group (Afghanistan)", "Islamic State Khorasan Province (ISKP)"),
        ("Unidentified Armed Group (Afghanistan)", "Hazara Ethnic Group (Afghanistan);  islamic state khorasan "
                                                   "province (ISKP) "),
        ("Islamic State Khorasan Province (ISKP)", "Islamic State Khorasan Province (ISKP)"),  # already its own
    ]):
        rows.append(extra | {"event_id_cnty": f"AFG{base + i + 1}", "actor1": actor1, "assoc_actor_1": assoc,
                             "event_date": "2022-01-20"})
    path = tmp_path / "acled.csv"
    path.write_text(_export(rows), encoding="utf-8")
    db = tmp_path / "e.duckdb"
    events.ingest([path], db)
    con = events.connect(db)
    got = trend.trend(con, "ISIS-K", "AFG", (2022, 1), (2024, 4), "acled")
    assert got["associated"]["from"]["events"] == 2 and got["associated"]["to"]["events"] == 0
    plain = tmp_path / "plain.csv"
    plain.write_text(_export(rows[:base]), encoding="utf-8")
    events.ingest([plain], tmp_path / "p.duckdb")
    before = trend.trend(events.connect(tmp_path / "p.duckdb"), "ISIS-K", "AFG", (2022, 1), (2024, 4), "acled")
    assert got["from"]["events"] == before["from"]["events"] + 1  # only the row with ISKP as actor1 counts
    stored = con.execute("SELECT assoc_actors FROM events WHERE event_id = ?", [f"AFG{base + 2}"]).fetchone()[0]
    assert stored == "Hazara Ethnic Group (Afghanistan); islamic state khorasan province (ISKP)"


def test_a_file_of_no_known_format_names_the_delimiter_it_was_read_with(tmp_path: Path) -> None:
    path = tmp_path / "other.csv"
    path.write_text("when;who;where\n2022-01-01;x;y\n")
    with pytest.raises(EventsError) as info:
        events.ingest([path], tmp_path / "e.duckdb")
    message = str(info.value)
    assert "read as comma-separated" in message or "read as semicolon-separated" in message
    assert "comma, semicolon, tab and bar were each tried" in message
    assert not (tmp_path / "e.duckdb").exists()


def test_the_actor_name_asked_is_matched_with_its_spaces_normalised(tmp_path: Path) -> None:
    rows = _acled_rows(random.Random(9))
    path = tmp_path / "acled.csv"
    path.write_text(_export(rows), encoding="utf-8")
    events.ingest([path], tmp_path / "e.duckdb")
    con = events.connect(tmp_path / "e.duckdb")
    spaced = trend.trend(con, "  Islamic   State Khorasan Province (ISKP) ", "AFG", (2022, 1), (2024, 4), "acled")
    assert spaced["from"]["events"] == trend.trend(con, "Islamic State Khorasan Province (ISKP)", "AFG", (2022, 1),
                                                   (2024, 4), "acled")["from"]["events"] > 0
    assert actors.resolve(" isis-k ").name == "Islamic State Khorasan Province"
