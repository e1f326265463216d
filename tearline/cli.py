"""The ``tearline`` command: parse → call → print. Errors become messages and exit codes here only."""

from __future__ import annotations

import json
import os
import sys
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.console import Console
from rich.table import Table

from . import compact as compacts
from . import config
from .errors import ConfigError, TearlineError
from .store import Store

app = typer.Typer(help="Tearline: a scoped intelligence exchange (TAXII 2.1 hub).", no_args_is_help=True,
                  pretty_exceptions_enable=False)
compact_app = typer.Typer(help="Create, inspect and change compacts.", no_args_is_help=True)
db_app = typer.Typer(help="The hub's database.", no_args_is_help=True)
app.add_typer(compact_app, name="compact")
app.add_typer(db_app, name="db")
events_app = typer.Typer(help="Conflict-event data: ingest UCDP/ACLED files, trends by actor.", no_args_is_help=True)
app.add_typer(events_app, name="events")

err = Console(stderr=True)
out = Console()

DbOpt = Annotated[Optional[str], typer.Option("--db", help="store URL (default: TEARLINE_DB, else sqlite:///tearline.db)")]


def _fail(exc: TearlineError) -> None:
    err.print(f"[red]error:[/red] {exc.description}", highlight=False, markup=True, soft_wrap=True)
    raise typer.Exit(2 if isinstance(exc, ConfigError) or exc.status < 500 else 1)


def _store(settings: config.Settings) -> Store:
    store = Store(settings.db)
    store.migrate()
    return store


def _run(fn: Any, *args: Any) -> Any:
    try:
        return fn(*args)
    except TearlineError as exc:
        _fail(exc)


@app.command()
def serve(
    db: DbOpt = None,
    host: Annotated[Optional[str], typer.Option(help="address to listen on (TEARLINE_HOST, 127.0.0.1)")] = None,
    port: Annotated[Optional[int], typer.Option(help="port (TEARLINE_PORT, 6100)")] = None,
    max_content_length: Annotated[Optional[int], typer.Option(help="largest request body in bytes")] = None,
) -> None:
    """Run the hub (TAXII 2.1 under /taxii2/)."""
    settings = _run(config.load, {"db": db, "host": host, "port": port, "max_content_length": max_content_length})
    _serve(settings)


def _serve(settings: config.Settings) -> None:
    import uvicorn

    from .web.app import create_app

    store = _run(_store, settings)
    err.print(f"Tearline hub on http://{settings.host}:{settings.port}/taxii2/  (store: {settings.db})")
    uvicorn.run(create_app(settings, store), host=settings.host, port=settings.port, log_level="warning")


@app.command()
def demo(
    db: Annotated[str, typer.Option("--db", help="store URL")] = "sqlite:///tearline-demo.db",
    host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port")] = 6100,
) -> None:
    """Apply the demo ISIS-K compact, print fresh demo tokens, and run the hub."""
    settings = _run(config.load, {"db": db, "host": host, "port": port})
    store = _run(_store, settings)
    spec = compacts.parse(resources.files("tearline.data").joinpath("demo-compact.yaml").read_text(), "demo-compact.yaml")
    tokens = _run(compacts.apply, store, spec)
    _seed_demo_events(store, spec, settings)
    for member in spec.members:
        if member.name not in tokens:
            # A demo is run again and again: hand out fresh tokens rather than lock people out.
            tokens[member.name] = store.rotate_token(spec.name, member.name)
    table = Table(title=f"Compact {spec.name}: demo members (tokens shown once)")
    for col in ("member", "write", "tlp_max", "token"):
        table.add_column(col)
    for member in spec.members:
        table.add_row(member.name, str(member.write), member.tlp_max, tokens[member.name])
    err.print(table)
    err.print(f"Try: curl -u state-a:<token> -H 'Accept: application/taxii+json;version=2.1' "
              f"http://{settings.host}:{settings.port}/taxii2/{spec.name}/collections/")
    store.close()
    _serve(settings)


def _seed_demo_events(store: Store, spec: compacts.CompactSpec, settings: config.Settings) -> None:
    """Load the bundled real event data and share ISIS-K's events in the demo compact."""
    from . import events
    from .events import actors

    data = resources.files("tearline.data").joinpath("events")
    files = [Path(str(data.joinpath(p))) for p in ("ucdp-ged-pakistan/conflict_data_pak.csv",
                                                   "ucdp-candidate-2023-10/GEDEvent_v23_0_10.csv",
                                                   "iskp-attacks/iskp_attacks.csv")]
    db_path = settings.db.split("///", 1)[-1] if settings.db.startswith("sqlite") else "tearline-demo.db"
    events_db = str(Path(db_path).with_suffix("")) + "-events.duckdb"
    _run(events.ingest, files, events_db)
    con = events.connect(events_db)
    objs = _events_objects(con, spec.actors[0].name, None, None, actors.with_compact(spec))
    con.close()
    added = _run(_push, store, spec.name, objs)
    err.print(f"demo: real events from UCDP and the curated ISKP list in {events_db}; "
              f"{len(objs)} STIX objects shared in {spec.name}/intel ({added} new)")


@compact_app.command("apply")
def compact_apply(
    file: Annotated[Path, typer.Argument(help="the compact's YAML file")],
    db: DbOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="print {compact, tokens} as one JSON object")] = False,
) -> None:
    """Create or update a compact; print each new member's token once."""
    settings = _run(config.load, {"db": db})
    spec = _run(compacts.load, file)
    store = _run(_store, settings)
    tokens = _run(compacts.apply, store, spec)
    if as_json:
        sys.stdout.write(json.dumps({"compact": spec.name, "tokens": tokens}) + "\n")
        return
    out.print(f"compact {spec.name}: applied ({len(spec.members)} members, API root /taxii2/{spec.name}/)")
    for name, token in tokens.items():
        out.print(f"  new member {name}: token {token}  (shown once; store it now)")


@compact_app.command("show")
def compact_show(name: str, db: DbOpt = None) -> None:
    """Show a compact's members and collections."""
    settings = _run(config.load, {"db": db})
    store = _run(_store, settings)
    row = store.api_root(name)
    if row is None:
        _fail(ConfigError(f"no compact named {name!r} in {settings.db}"))
    out.print(f"[bold]{row.title}[/bold]  /taxii2/{name}/")
    colls = store.collections(name)
    table = Table(title="collections")
    for col in ("alias", "id", "objects (versions)"):
        table.add_column(col)
    from .store.schema import objects

    for c in colls:
        table.add_row(c.alias, c.id, str(store.count([objects.c.coll == c.num])))
    out.print(table)
    with store.engine.connect() as conn:
        from sqlalchemy import select

        from .store.schema import members

        mt = Table(title="members")
        for col in ("member", "read", "write", "tlp_max"):
            mt.add_column(col)
        for m in conn.execute(select(members).where(members.c.api_root == name).order_by(members.c.name)):
            mt.add_row(m.name, str(m.can_read), str(m.can_write), m.tlp_max)
    out.print(mt)


@compact_app.command("rotate-token")
def compact_rotate(name: str, member: str, db: DbOpt = None) -> None:
    """Give a member a new token; the old one stops working at once."""
    settings = _run(config.load, {"db": db})
    store = _run(_store, settings)
    token = _run(store.rotate_token, name, member)
    out.print(f"member {member}: new token {token}  (shown once)")


@compact_app.command("remove-member")
def compact_remove(name: str, member: str, db: DbOpt = None) -> None:
    """Remove a member; it loses access at once (the compact file should drop it too)."""
    settings = _run(config.load, {"db": db})
    store = _run(_store, settings)
    _run(store.remove_member, name, member)
    out.print(f"member {member} removed from {name}")


@db_app.command("upgrade")
def db_upgrade(db: DbOpt = None) -> None:
    """Create or migrate the store's schema to the newest revision."""
    settings = _run(config.load, {"db": db})
    _run(_store, settings)
    out.print(f"store {settings.db}: schema up to date")


EventsDbOpt = Annotated[Optional[str], typer.Option("--events-db", help="DuckDB file (default: TEARLINE_EVENTS_DB, "
                                                    "else tearline-events.duckdb)")]


def _alpha3(value: str | None) -> str | None:
    if value is not None and (len(value) != 3 or not value.isalpha()):
        raise typer.BadParameter(f"{value!r} is not an ISO 3166 alpha-3 code (e.g. AFG)")
    return value.upper() if value else None


ActorOpt = Annotated[str, typer.Option(help="actor name or alias (catalogue), or a dataset's own actor name")]
CountryOpt = Annotated[Optional[str], typer.Option(help="ISO 3166 alpha-3 country", callback=_alpha3)]
SourceOpt = Annotated[Optional[str], typer.Option(help="one dataset (acled, ucdp-ged, ucdp-candidate, iskp-curated) "
                                                       "or 'all' side by side (default)")]
CompactFileOpt = Annotated[Optional[Path], typer.Option("--compact-file", help="a compact file whose actors (and "
                                                         "their dataset rules) extend the actor catalogue")]


def _catalogue(compact_file: Path | None) -> Any:
    from .events import actors

    if compact_file is None:
        return actors.CATALOGUE
    return actors.with_compact(_run(compacts.load, compact_file))


def _events_db(flag: str | None) -> str:
    return flag or os.environ.get("TEARLINE_EVENTS_DB") or "tearline-events.duckdb"


@events_app.command("ingest")
def events_ingest(
    files: Annotated[list[Path], typer.Argument(help="UCDP GED / Candidate, ACLED or curated ISKP CSV files")],
    events_db: EventsDbOpt = None,
) -> None:
    """Ingest event files (format from the header); each file goes in whole or not at all."""
    from rich.progress import Progress

    from . import events

    with Progress(console=err, transient=True) as progress:
        tasks = {path: progress.add_task(f"reading {path.name}", total=100) for path in files}

        def reading(path: Path, pct: float) -> None:
            progress.update(tasks[path], completed=pct)

        def done(path: Path, fmt: str, rows: int) -> None:
            progress.update(tasks[path], completed=100)
            out.print(f"{path}: {rows:,} {fmt} events")

        _run(events.ingest, files, _events_db(events_db), done, reading)


@events_app.command("trend")
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
    from . import events
    from .events import trend

    first = _run(events.month, start, "--from")
    second = _run(events.month, end, "--to")
    con = _run(events.connect, _existing_events_db(events_db))
    result = trend.trend(con, actor, country, first, second, source, _catalogue(compact_file))
    if as_json:
        sys.stdout.write(json.dumps(result) + "\n")
        return
    out.print(f"{result['actor']} in {result['country'] or 'all countries'} ({result['source'] or 'no data'})")
    for key in ("from", "to"):
        out.print(f"  {result[key]['month']}: {result[key]['events']} events, {result[key]['fatalities']} fatalities")
    out.print(f"  change: events {result['change_pct']['events']}%, fatalities {result['change_pct']['fatalities']}%")
    if "note" in result:
        out.print(f"  [yellow]{result['note']}[/yellow]")


@events_app.command("series")
def events_series(
    actor: ActorOpt,
    country: CountryOpt = None,
    source: SourceOpt = None,
    by: Annotated[Optional[str], typer.Option(help="split by 'country' or 'province'")] = None,
    start: Annotated[Optional[str], typer.Option("--from", help="first month, YYYY-MM")] = None,
    end: Annotated[Optional[str], typer.Option("--to", help="last month, YYYY-MM")] = None,
    chart: Annotated[Optional[Path], typer.Option(help="also draw the series to this .png or .svg")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the rows as one JSON list")] = False,
    compact_file: CompactFileOpt = None,
    events_db: EventsDbOpt = None,
) -> None:
    """Monthly events and fatalities (zeros included), per source, optionally per country or province."""
    from . import events
    from .events import series

    if by not in (None, "country", "province"):
        _fail(ConfigError(f"--by: {by!r} is not 'country' or 'province'"))
    if chart is not None and chart.suffix.lower() not in (".png", ".svg"):
        _fail(ConfigError(f"--chart: {chart} must end in .png or .svg"))
    first = _run(events.month, start, "--from") if start else None
    last = _run(events.month, end, "--to") if end else None
    con = _run(events.connect, _existing_events_db(events_db))
    rows = series.monthly(con, actor, country, source, by, first, last, _catalogue(compact_file))
    if chart is not None:
        series.chart(rows, f"{actor}{' in ' + country.upper() if country else ''}: monthly events", str(chart))
        err.print(f"chart written to {chart}")
    if as_json:
        sys.stdout.write(json.dumps(rows) + "\n")
    else:
        for r in rows:
            out.print(f"{r['source']:15} {r['unit']:20} {r['month']}  {r['events']:4} events  {r['fatalities']:5} fatalities")


@events_app.command("places")
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
    from . import events
    from .events import series

    con = _run(events.connect, _existing_events_db(events_db))
    rows = series.top_places(con, actor, country, source, top, _catalogue(compact_file))
    if as_json:
        sys.stdout.write(json.dumps(rows) + "\n")
        return
    for r in rows:
        out.print(f"{r['source']:15} {r['country']} {r['province'] or '':25} {r['place'] or '':40} "
                  f"{r['events']:4} events {r['fatalities']:5} fatalities")


def _existing_events_db(flag: str | None) -> str:
    path = _events_db(flag)
    if not Path(path).exists():
        _fail(ConfigError(f"--events-db: {path} does not exist; run `tearline events ingest` first"))
    return path


@events_app.command("to-stix")
def events_to_stix(
    actor: ActorOpt,
    compact_name: Annotated[Optional[str], typer.Option("--compact", help="push into this compact's intel collection")] = None,
    out_file: Annotated[Optional[Path], typer.Option("--out", help="write a STIX 2.1 bundle here instead")] = None,
    country: CountryOpt = None,
    source: SourceOpt = None,
    db: DbOpt = None,
    compact_file: CompactFileOpt = None,
    events_db: EventsDbOpt = None,
) -> None:
    """Turn an actor's events into STIX incidents, locations and attributed-to relationships."""
    from . import events

    if (compact_name is None) == (out_file is None):
        _fail(ConfigError("give exactly one of --compact NAME (push to the hub) or --out FILE (write a bundle)"))
    con = _run(events.connect, _existing_events_db(events_db))
    objs = _events_objects(con, actor, country, source, _catalogue(compact_file))
    if out_file is not None:
        import uuid as _uuid

        out_file.write_text(json.dumps({"type": "bundle", "id": f"bundle--{_uuid.uuid4()}", "objects": objs}, indent=1))
        out.print(f"{len(objs)} STIX objects written to {out_file}")
        return
    settings = _run(config.load, {"db": db})
    store = _run(_store, settings)
    added = _run(_push, store, compact_name, objs)
    out.print(f"{len(objs)} STIX objects for {actor} pushed to {compact_name}/intel ({added} new versions)")


def _events_objects(con: Any, actor: str, country: str | None, source: str | None,
                    catalogue: Any = None) -> list[dict[str, Any]]:
    from .events import actors, tostix

    catalogue = catalogue or actors.CATALOGUE
    resolved = actors.resolve(actor, catalogue)
    rows = tostix.actor_events(con, actor, country, source, catalogue)
    return tostix.bundle_objects(rows, compacts.Actor(resolved.name, resolved.aliases))


def _push(store: Store, compact_name: str, objs: list[dict[str, Any]]) -> int:
    from .store.schema import objects

    intel = store.collection(compact_name, "intel")
    if intel is None:
        raise ConfigError(f"--compact: no compact named {compact_name!r}")
    before = store.count([objects.c.coll == intel.num])
    with store.engine.begin() as conn:
        store.write_objects(conn, intel.num, objs, intel.rules)
    return store.count([objects.c.coll == intel.num]) - before


@events_app.command("actors")
def events_actors(compact_file: CompactFileOpt = None) -> None:
    """The actor catalogue and how each dataset's rows are resolved to each actor."""
    for actor in _catalogue(compact_file):
        out.print(f"[bold]{actor.name}[/bold]  aliases: {', '.join(actor.aliases)}")
        for rule in actor.rules:
            out.print(f"  {rule.source}: {rule.describe()}")
    out.print("Any other name matches a dataset's own actor string (actor1/actor2, side_a/side_b).")


def main() -> None:
    app()
