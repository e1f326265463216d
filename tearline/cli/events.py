"""``tearline events``: conflict-event files into DuckDB, and what the analyst asks of them."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Annotated, Any

import typer

from .. import compact as compacts
from .. import events, keys, write
from ..errors import ConfigError
from ..events import actors, series, tostix, trend
from . import context
from .context import DbOpt, emit, err, out

app = typer.Typer(help="Conflict-event data: ingest UCDP/ACLED files, trends by actor.", no_args_is_help=True)

EventsDbOpt = Annotated[str | None, typer.Option("--events-db", help="DuckDB file (default: TEARLINE_EVENTS_DB, "
                                                    "else tearline-events.duckdb)")]


def _alpha3(value: str | None) -> str | None:
    if value is not None and (len(value) != 3 or not value.isalpha()):
        raise typer.BadParameter(f"{value!r} is not an ISO 3166 alpha-3 code (e.g. AFG)")
    return value.upper() if value else None


ActorOpt = Annotated[str, typer.Option(help="actor name or alias (catalogue), or a dataset's own actor name")]
CountryOpt = Annotated[str | None, typer.Option(help="ISO 3166 alpha-3 country", callback=_alpha3)]
SourceOpt = Annotated[str | None, typer.Option(help="one dataset (acled, ucdp-ged, ucdp-candidate, iskp-curated) "
                                                       "or 'all' side by side (default)")]
CompactFileOpt = Annotated[Path | None, typer.Option("--compact-file", help="a compact file whose actors (and "
                                                         "their dataset rules) extend the actor catalogue")]


def catalogue(compact_file: Path | None) -> Any:
    if compact_file is None:
        return actors.CATALOGUE
    return actors.with_compact(compacts.load(compact_file))


def connect(ctx: context.Ctx) -> Any:
    """The events store of the settings, which must already exist."""
    return events.connect(ctx.existing_events_db())


@app.command("ingest")
def events_ingest(
    files: Annotated[list[Path], typer.Argument(help="UCDP GED / Candidate, ACLED or curated ISKP CSV files")],
    events_db: EventsDbOpt = None,
) -> None:
    """Ingest event files (format from the header); each file goes in whole or not at all."""
    from rich.progress import Progress

    ctx = context.open(events_db=events_db)

    with Progress(console=err, transient=True) as progress:
        tasks = {path: progress.add_task(f"reading {path.name}", total=100) for path in files}

        def reading(path: Path, pct: float) -> None:
            progress.update(tasks[path], completed=pct)

        def done(path: Path, fmt: str, rows: int) -> None:
            progress.update(tasks[path], completed=100)
            out.print(f"{path}: {rows:,} {fmt} events")

        events.ingest(files, ctx.events_db, done, reading)


@app.command("trend")
def events_trend(
    actor: ActorOpt,
    start: Annotated[str, typer.Option("--from", help="first month, YYYY-MM")],
    end: Annotated[str, typer.Option("--to", help="second month, YYYY-MM")],
    country: CountryOpt = None,
    source: SourceOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="print one JSON object")] = False,
    compact_file: CompactFileOpt = None,
    events_db: EventsDbOpt = None,
) -> None:
    """Events and fatalities of an actor in two months, and the change between them."""
    ctx = context.open(events_db=events_db)
    first = events.month(start, "--from")
    second = events.month(end, "--to")
    result = trend.trend(connect(ctx), actor, country, first, second, source, catalogue(compact_file))
    if as_json:
        emit(result)
        return
    out.print(f"{result['actor']} in {result['country'] or 'all countries'} "
              f"({result['source'] or 'no source covers both months'})")
    for key in ("from", "to"):
        month = result[key]
        if month["events"] is None:
            out.print(f"  {month['month']}: not covered ({month['why']})")
        else:
            out.print(f"  {month['month']}: {month['events']} events, {month['fatalities']} fatalities")
    if result["source"]:
        change = {k: "n/a" if v is None else f"{v:+.1f}%" for k, v in result["change_pct"].items()}
        why = f" ({result['change_why']})" if "change_why" in result else ""
        out.print(f"  change: events {change['events']}, fatalities {change['fatalities']}{why}")
        caveats = result["caveats"]
        out.print(f"  [dim]{caveats['about']}[/dim]")
        out.print(f"  [dim]coverage: {caveats['coverage']}[/dim]")
    for kind in ("ambiguous", "associated"):
        if kind in result:
            out.print(f"  {kind} (not included): {result[kind]['from']['events']} → {result[kind]['to']['events']}")
    for src, block in result.get("by_source", {}).items():
        if src == result["source"]:
            continue
        figures = " → ".join("not covered" if block[k]["events"] is None else str(block[k]["events"])
                             for k in ("from", "to"))
        out.print(f"  {src}: {figures} events")
    for why in result["sources_absent"].values():
        out.print(f"  [yellow]{why}[/yellow]")
    if "note" in result:
        out.print(f"  [yellow]{result['note']}[/yellow]")


@app.command("series")
def events_series(
    actor: ActorOpt,
    country: CountryOpt = None,
    source: SourceOpt = None,
    by: Annotated[str | None, typer.Option(help="split by 'country' or 'province'")] = None,
    start: Annotated[str | None, typer.Option("--from", help="first month, YYYY-MM")] = None,
    end: Annotated[str | None, typer.Option("--to", help="last month, YYYY-MM")] = None,
    chart: Annotated[Path | None, typer.Option(help="also draw the series to this .png or .svg")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the rows as one JSON list")] = False,
    compact_file: CompactFileOpt = None,
    events_db: EventsDbOpt = None,
) -> None:
    """Monthly events and fatalities per source (zeros where it covers the month, gaps where not), optionally
    per country or province."""
    ctx = context.open(events_db=events_db)
    if by not in (None, "country", "province"):
        raise ConfigError(f"--by: {by!r} is not 'country' or 'province'")
    if chart is not None and chart.suffix.lower() not in (".png", ".svg"):
        raise ConfigError(f"--chart: {chart} must end in .png or .svg")
    first = events.month(start, "--from") if start else None
    last = events.month(end, "--to") if end else None
    result = series.report(connect(ctx), actor, country, source, by, first, last, catalogue(compact_file))
    rows = result["rows"]
    if chart is not None:
        series.chart(rows, f"{actor}{' in ' + country.upper() if country else ''}: monthly events", str(chart))
        err.print(f"chart written to {chart}")
    if as_json:
        emit(result)
        return
    if not rows:
        out.print(f"no events of {actor}{' in ' + country.upper() if country else ''} in the months asked")
    for r in rows:
        if r["events"] is None:
            out.print(f"{r['source']:15} {r['unit']:20} {r['month']}     — not covered")
        else:
            out.print(f"{r['source']:15} {r['unit']:20} {r['month']}  {r['events']:4} events  "
                      f"{r['fatalities']:5} fatalities")
    for src, about in result["sources"].items():
        out.print(f"[dim]{src}: {about['coverage']}[/dim]")
    out.print(f"[yellow]{result['note']}[/yellow]")


@app.command("places")
def events_places(
    actor: ActorOpt,
    country: CountryOpt = None,
    source: SourceOpt = None,
    top: Annotated[int, typer.Option(help="how many places")] = 10,
    as_json: Annotated[bool, typer.Option("--json", help="print one JSON list")] = False,
    compact_file: CompactFileOpt = None,
    events_db: EventsDbOpt = None,
) -> None:
    """The places with the most events of an actor, per source."""
    con = connect(context.open(events_db=events_db))
    result = series.places_report(con, actor, country, source, top, catalogue(compact_file))
    rows = result["rows"]
    if as_json:
        emit(result)
        return
    if not rows:
        out.print(f"no events of {actor}{' in ' + country.upper() if country else ''}")
    for r in rows:
        out.print(f"{r['source']:15} {r['country']} {r['province'] or '':25} {r['place'] or '':40} "
                  f"{r['events']:4} events {r['fatalities']:5} fatalities")


@app.command("to-stix")
def events_to_stix(
    actor: ActorOpt,
    compact_name: Annotated[str | None, typer.Option("--compact",
                                                     help="push into this compact's intel collection")] = None,
    out_file: Annotated[Path | None, typer.Option("--out", help="write a STIX 2.1 bundle here instead")] = None,
    country: CountryOpt = None,
    source: SourceOpt = None,
    db: DbOpt = None,
    compact_file: CompactFileOpt = None,
    events_db: EventsDbOpt = None,
) -> None:
    """Turn an actor's events into STIX incidents, locations and attributed-to relationships."""
    ctx = context.open(db=db, events_db=events_db)
    if (compact_name is None) == (out_file is None):
        raise ConfigError("give exactly one of --compact NAME (push to the hub) or --out FILE (write a bundle)")
    objs = tostix.actor_objects(connect(ctx), actor, country, source, catalogue(compact_file))
    if out_file is not None:
        out_file.write_text(json.dumps({"type": "bundle", "id": f"bundle--{uuid.uuid4()}", "objects": objs}, indent=1))
        out.print(f"{len(objs)} STIX objects written to {out_file}")
        return
    added = write.publish(ctx.store, compact_name, objs, keys.load(ctx.settings))
    out.print(f"{len(objs)} STIX objects for {actor} pushed to {compact_name}/intel ({added} new versions)")


@app.command("actors")
def events_actors(compact_file: CompactFileOpt = None) -> None:
    """The actor catalogue and how each dataset's rows are resolved to each actor."""
    for actor in catalogue(compact_file):
        out.print(f"[bold]{actor.name}[/bold]  aliases: {', '.join(actor.aliases)}")
        for rule in actor.rules:
            out.print(f"  {rule.source}: {rule.describe()}")
    out.print("Any other name matches a dataset's own actor string (actor1/actor2, side_a/side_b).")
