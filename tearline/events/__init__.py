"""Conflict events in an embedded DuckDB store: one canonical table for UCDP GED, UCDP Candidate,
ACLED and the curated ISKP attack list.

A file is ingested whole or not at all: its format is recognised from the header, every row is
read and checked by DuckDB (rows it cannot read are reported with their line and reason), and the
normalised rows replace that file's earlier rows in one transaction, so re-ingesting is idempotent.
"""

from __future__ import annotations

import csv
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import duckdb

from ..errors import BadRequest, ConfigError
from . import acled, coverage, curated, ucdp
from .format import Format

SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    source          VARCHAR NOT NULL,   -- dataset: ucdp-ged, ucdp-candidate, acled, iskp-curated
    event_id        VARCHAR NOT NULL,   -- the dataset's own id
    event_date      DATE    NOT NULL,   -- start date (UCDP date_start, ACLED event_date)
    date_end        DATE,
    date_precision  VARCHAR NOT NULL,   -- day, week, month or year (how sure the date is)
    country_iso3    VARCHAR,
    province        VARCHAR,            -- first-level administrative unit, without 'province'
    place           VARCHAR,
    latitude        DOUBLE,
    longitude       DOUBLE,
    geo_precision   VARCHAR,
    actor1          VARCHAR,
    actor2          VARCHAR,
    actor1_id       VARCHAR,            -- UCDP side ids (IS is 234); NULL elsewhere
    actor2_id       VARCHAR,
    event_type      VARCHAR,
    fatalities_best INTEGER NOT NULL,
    fatalities_low  INTEGER,
    fatalities_high INTEGER,
    notes           VARCHAR,
    file            VARCHAR NOT NULL,   -- the file it came from (re-ingest replaces by file)
    assoc_actors    VARCHAR             -- ACLED's associated actors, '; '-separated; counted apart, never as the actor
);
-- Stores made before associated actors were kept gain the column (NULL: re-ingest the file to fill it).
ALTER TABLE events ADD COLUMN IF NOT EXISTS assoc_actors VARCHAR;
-- What each file says about its own period (see coverage.py): a declared range, or NULLs where the file
-- declares none and coverage is the months it holds events in.
CREATE TABLE IF NOT EXISTS releases (
    file        VARCHAR NOT NULL,
    source      VARCHAR NOT NULL,
    covers_from DATE,
    covers_to   DATE,
    basis       VARCHAR NOT NULL,
    PRIMARY KEY (file, source)
);
"""

COLUMNS = ("source", "event_id", "event_date", "date_end", "date_precision", "country_iso3", "province", "place",
           "latitude", "longitude", "geo_precision", "actor1", "actor2", "actor1_id", "actor2_id", "event_type",
           "fatalities_best", "fatalities_low", "fatalities_high", "notes", "file", "assoc_actors")


class EventsError(ConfigError):
    """An input file that cannot be ingested; ``details['problems']`` lists each problem."""


def formats() -> list[Format]:
    return [ucdp.GED, acled.ACLED, curated.ISKP]


# ACLED's own exports are comma-separated; the same files saved by a spreadsheet in many locales use
# semicolons (and then decimal commas), some tools tabs or bars.
DELIMITERS = (",", ";", "\t", "|")
_DELIMITER_NAMES = {",": "comma", ";": "semicolon", "\t": "tab", "|": "bar"}


def detect(header: Sequence[str], delimiter: str = ",") -> Format:
    cols = {c.strip().lower() for c in header}
    for fmt in formats():
        if fmt.required <= cols:
            return fmt
    closest = max(formats(), key=lambda f: len(f.required & cols))
    missing = sorted(closest.required - cols)
    raise EventsError(
        f"unrecognised event file: the header, read as {_DELIMITER_NAMES.get(delimiter, repr(delimiter))}-separated "
        f"({len(header)} column{'s' if len(header) != 1 else ''}; comma, semicolon, tab and bar were each tried), "
        f"matches no known format (closest: {closest.name}, "
        f"missing columns: {', '.join(missing[:12])}{' …' if len(missing) > 12 else ''})",
        details={"missing": missing, "delimiter": delimiter},
    )


def _dialect(first_line: str) -> tuple[list[str], str]:
    """The header's columns and the delimiter that makes them a known format (else the one giving most columns
    of the closest format, so the refusal names what was tried)."""
    def score(delimiter: str) -> tuple[int, int]:
        cols = next(csv.reader([first_line], delimiter=delimiter), [])
        names = {c.strip().lower() for c in cols}
        return max(len(f.required & names) - (0 if f.required <= names else 1000) for f in formats()), len(cols)

    best = max(DELIMITERS, key=score)
    return next(csv.reader([first_line], delimiter=best), []), best


def connect(path: str | Path) -> duckdb.DuckDBPyConnection:
    path = Path(path)
    if not path.parent.is_dir():
        raise ConfigError(f"--events-db: directory {path.parent} does not exist")
    try:
        con = duckdb.connect(str(path))
        con.execute(SCHEMA)
    except duckdb.Error as exc:
        reason = str(exc).splitlines()[0]
        raise ConfigError(f"--events-db {path}: cannot open it as a DuckDB events store ({reason})") from None
    return con


def _header(path: Path) -> tuple[list[str], str]:
    """The header's columns and the file's delimiter."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as fh:
            first = fh.readline()
    except OSError as exc:
        raise EventsError(f"{path}: cannot read: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise EventsError(f"{path}: not a UTF-8 text file") from None
    if not first.strip():
        raise EventsError(f"{path}: the file is empty" if not first else f"{path}:1: the header line is empty")
    return _dialect(first.rstrip("\r\n"))


def _watched(con: duckdb.DuckDBPyConnection, sql: str, params: list[Any],
             progress: Callable[[float], Any] | None) -> None:
    """Run one long statement, reporting DuckDB's own progress (0-100) while it runs."""
    if progress is None:
        con.execute(sql, params)
        return
    errors: list[BaseException] = []

    def run() -> None:
        try:
            con.execute(sql, params)
        except BaseException as exc:  # re-raised in the caller's thread
            errors.append(exc)

    # DuckDB tracks progress only with its progress bar on; ours is drawn by Rich, so its own stays silent.
    con.execute("SET enable_progress_bar = true")
    con.execute("SET enable_progress_bar_print = false")
    worker = threading.Thread(target=run)
    worker.start()
    while worker.is_alive():
        worker.join(0.1)
        try:
            done = con.query_progress()
        except duckdb.Error:
            done = -1
        if done >= 0:
            progress(done)
    progress(100.0)
    if errors:
        raise errors[0]


def ingest_file(con: duckdb.DuckDBPyConnection, path: Path, progress: Callable[[float], Any] | None = None
                ) -> tuple[str, int]:
    """Ingest one file in one transaction; return (format name, rows written). ``progress`` gets the
    percentage of the file read, while it is read."""
    header, delimiter = _header(path)
    try:
        fmt = detect(header, delimiter)
    except EventsError as exc:
        raise EventsError(f"{path}: {exc.description}", details=exc.details) from None
    if len({c.strip().lower() for c in header}) != len(header):
        raise EventsError(f"{path}:1: the header names a column twice: "
                          + ", ".join(sorted({c.strip() for c in header if [h.strip().lower() for h in header]
                                              .count(c.strip().lower()) > 1})))
    types = {col: fmt.types.get(col.strip().lower(), "VARCHAR") for col in header}
    dateformat = _sniff_dateformat(path, header, fmt.date_column, delimiter) if fmt.date_column else None
    decimal = _sniff_decimal(path, header, fmt, delimiter)
    con.execute("BEGIN")
    try:
        con.execute("DROP TABLE IF EXISTS raw")
        wanted = fmt.required | set(fmt.optional)
        # Only the columns the format uses are kept: UCDP's long source texts are parsed, not stored.
        # (a header cell with stray spaces or capitals is still its column)
        keep = ", ".join(f'"{c}" AS "{c.strip().lower()}"' for c in header if c.strip().lower() in wanted)
        try:
            _watched(
                con,
                f"CREATE TEMP TABLE raw AS SELECT {keep} FROM read_csv(?, header = true, columns = ?, delim = ?, "
                "decimal_separator = ?, store_rejects = true, rejects_limit = 1000, null_padding = false, "
                "quote = '\"', escape = '\"'" + (", dateformat = ?" if dateformat else "") + ")",
                [str(path), types, delimiter, decimal] + ([dateformat] if dateformat else []),
                progress,
            )
        except duckdb.Error as exc:
            raise EventsError(_unquoted(path, delimiter) or f"{path}: {str(exc).splitlines()[0]}") from None
        rejects = con.execute(
            "SELECT line, column_name, error_type, error_message, csv_line FROM reject_errors ORDER BY line"
        ).fetchall()
        problems = [
            f"{path}:{line}: {f'column {col}: ' if col else ''}{_reason(etype, msg)}"
            for line, col, etype, msg, csv_line in rejects
            if not _is_hxl(csv_line)
        ]
        if problems:
            lines = len({line for line, *_ in rejects})  # a row with several bad cells is one row
            raise EventsError(f"{path}: {lines} row(s) cannot be read:\n" + "\n".join(problems[:50]),
                              details={"problems": problems})
        empty = []
        for col in fmt.must_have:
            # rowid counts the rows read, so the file line is rowid + 2 (the header, and 1-based lines)
            # unless rows before it were rejected or spanned lines
            for (rowid,) in con.execute(f'SELECT rowid - (SELECT min(rowid) FROM raw) FROM raw WHERE "{col}" IS NULL '
                                        "ORDER BY rowid LIMIT 20").fetchall():
                empty.append(f"{path}: record {rowid + 1} (about line {rowid + 2}): column {col} is empty")
        if empty:
            raise EventsError(f"{path}: {len(empty)} row(s) lack a required value:\n" + "\n".join(empty),
                              details={"problems": empty})
        present = {c.strip().lower() for c in header}
        for col in fmt.optional:
            if col not in present:
                con.execute(f"ALTER TABLE raw ADD COLUMN {col} VARCHAR")
        _country_table(con, "country" in present)
        rows = con.execute(f"SELECT count(*) FROM ({fmt.select})").fetchone()[0]
        cols = ", ".join(c for c in COLUMNS if c != "file")
        con.execute(f"CREATE TEMP TABLE fresh AS {fmt.select}")
        dupes = con.execute("SELECT source, event_id, count(*) FROM fresh "
                            "GROUP BY ALL HAVING count(*) > 1 LIMIT 5").fetchall()
        if dupes:
            raise EventsError(f"{path}: event ids appear more than once: "
                              + ", ".join(f"{s} {e} ({n}×)" for s, e, n in dupes))
        # Re-ingest replaces: this file's earlier rows, and any row with the same dataset and event id
        # (a newer release of the same events in a file of another name).
        con.execute("DELETE FROM events WHERE file = ?", [path.name])
        con.execute("DELETE FROM events USING fresh "
                    "WHERE events.source = fresh.source AND events.event_id = fresh.event_id")
        con.execute(f"INSERT INTO events ({cols}, file) SELECT {cols}, ? FROM fresh", [path.name])
        coverage.record(con, path.name)
        con.execute("DROP TABLE fresh")
        con.execute("DROP TABLE raw")
        written = con.execute("SELECT string_agg(DISTINCT source, ', ') FROM events WHERE file = ?",
                              [path.name]).fetchone()
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    return (written[0] or fmt.name), int(rows)


def _unquoted(path: Path, delimiter: str = ",") -> str | None:
    """Where a file's quoting breaks (a quote never closed swallows the rest of the file): DuckDB only says it
    could not sniff the file."""
    with path.open(newline="", encoding="utf-8-sig", errors="replace") as fh:
        reader = csv.reader(fh, strict=True, delimiter=delimiter)
        start = 1
        try:
            for _ in reader:
                start = reader.line_num + 1
        except csv.Error as exc:
            return f"{path}:{start}: the record starting on this line has a quote that is never closed ({exc})"
    return None


def _sniff_decimal(path: Path, header: list[str], fmt: Format, delimiter: str) -> str:
    """',' when the file's decimal columns are written with decimal commas (a semicolon-separated file saved
    in a locale that writes 34,5), else '.'."""
    if delimiter == ",":
        return "."
    names = [c.strip().lower() for c in header]
    decimals = [names.index(c) for c, t in fmt.types.items() if t == "DOUBLE" and c in names]
    with path.open(newline="", encoding="utf-8-sig") as fh:
        reader = csv.reader(fh, delimiter=delimiter)
        next(reader)
        for _, row in zip(range(200), reader, strict=False):
            for i in decimals:
                value = row[i].strip() if len(row) > i else ""
                if "," in value:
                    return ","
                if "." in value:
                    return "."
    return "."


def _sniff_dateformat(path: Path, header: list[str], column: str, delimiter: str = ",") -> str:
    index = [c.strip().lower() for c in header].index(column)
    with path.open(newline="", encoding="utf-8-sig") as fh:
        reader = csv.reader(fh, delimiter=delimiter)
        next(reader)
        for row in reader:
            if len(row) > index and row[index].strip():
                value = row[index].strip()
                if len(value) == 10 and value[4] == "-":
                    return "%Y-%m-%d"
                if value.count(" ") == 2:
                    return "%d %B %Y"
                if value.count("/") == 2:
                    return "%d/%m/%Y"
                raise EventsError(f"{path}:2: column {column}: unrecognised date {value!r}")
    return "%Y-%m-%d"


def _country_table(con: duckdb.DuckDBPyConnection, has_country: bool) -> None:
    """country_iso(name, iso3) for the country names of the raw file (datasets spell them their way)."""
    import pycountry

    con.execute("CREATE OR REPLACE TEMP TABLE country_iso (name VARCHAR, iso3 VARCHAR)")
    if not has_country:
        return
    names = [r[0] for r in con.execute("SELECT DISTINCT country FROM raw WHERE country IS NOT NULL").fetchall()]
    pairs = []
    for name in names:
        plain = name.split("(")[0].strip()
        plain = _COUNTRY_ALIASES.get(plain, plain)
        try:
            pairs.append((name, pycountry.countries.lookup(plain).alpha_3))
        except LookupError:
            try:
                pairs.append((name, pycountry.countries.search_fuzzy(plain)[0].alpha_3))
            except LookupError:
                pairs.append((name, None))
    if pairs:
        con.executemany("INSERT INTO country_iso VALUES (?, ?)", pairs)


# Names in UCDP/ACLED that pycountry does not resolve exactly.
_COUNTRY_ALIASES = {"DR Congo": "Congo, The Democratic Republic of the", "Russia": "Russian Federation",
                    "Iran": "Iran, Islamic Republic of", "Syria": "Syrian Arab Republic", "Turkey": "Türkiye",
                    "Ivory Coast": "Côte d'Ivoire", "Kosovo": "XKX", "Bolivia": "Bolivia, Plurinational State of"}


def _is_hxl(csv_line: str | None) -> bool:
    # HDX files carry a second header row of HXL hashtags (#date+year, #geo+lat …): not data.
    return bool(csv_line) and "#" in csv_line and all(not c or c.startswith("#") for c in next(csv.reader([csv_line])))


def _reason(error_type: str, message: str) -> str:
    if error_type == "CAST":
        return message.split("\n")[0]
    if error_type in ("MISSING COLUMNS", "TOO MANY COLUMNS"):
        return f"{error_type.lower()} (a truncated or damaged line?)"
    return f"{error_type.lower()}: {message.splitlines()[0]}"


def ingest(paths: Sequence[Path], events_db: str | Path, on_file: Callable[[Path, str, int], Any] | None = None,
           progress: Callable[[Path, float], Any] | None = None) -> list[tuple[Path, str, int]]:
    """Ingest several files (each one whole or not at all); stop at the first bad file. Each file's format is
    recognised before the store is opened, so a wrong file leaves no new store behind."""
    for path in paths:
        try:
            detect(*_header(Path(path)))
        except EventsError as exc:
            raise EventsError(exc.description if str(path) in exc.description else f"{path}: {exc.description}",
                              details=exc.details) from None
    con = connect(events_db)
    done = []
    try:
        for path in paths:
            report = (lambda pct, p=Path(path): progress(p, pct)) if progress else None
            name, rows = ingest_file(con, Path(path), report)
            done.append((Path(path), name, rows))
            if on_file:
                on_file(Path(path), name, rows)
    finally:
        con.close()
    return done


def month(value: str, flag: str) -> tuple[int, int]:
    try:
        year, mon = value.split("-")
        y, m = int(year), int(mon)
        if not 1 <= m <= 12 or len(year) != 4:
            raise ValueError
        return y, m
    except ValueError:
        raise BadRequest(f"{flag}: {value!r} is not a month YYYY-MM") from None
