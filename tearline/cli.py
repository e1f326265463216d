"""The ``tearline`` command: parse → call → print. Errors become messages and exit codes here only."""

from __future__ import annotations

import dataclasses
import json
import os
import secrets
import sys
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Optional

import orjson
import typer
from rich.console import Console
from rich.table import Table

from . import compact as compacts
from . import config
from .errors import BadRequest, ConfigError, TearlineError
from .store import Store

app = typer.Typer(help="Tearline: a scoped intelligence exchange (TAXII 2.1 hub).", no_args_is_help=True,
                  pretty_exceptions_enable=False)
compact_app = typer.Typer(help="Create, inspect and change compacts.", no_args_is_help=True)
db_app = typer.Typer(help="The hub's database.", no_args_is_help=True)
app.add_typer(compact_app, name="compact")
app.add_typer(db_app, name="db")
events_app = typer.Typer(help="Conflict-event data: ingest UCDP/ACLED files, trends by actor.", no_args_is_help=True)
app.add_typer(events_app, name="events")
forecast_app = typer.Typer(help="Early-warning forecasts: rolling-origin backtest, current forecasts, alerts.",
                           no_args_is_help=True)
app.add_typer(forecast_app, name="forecast")
audit_app = typer.Typer(help="The audit trail: verify it, export a member's records, manage the signing key.",
                        no_args_is_help=True)
app.add_typer(audit_app, name="audit")
guard_app = typer.Typer(help="The counter-intelligence guard: probe alerts over the audit trail.", no_args_is_help=True)
app.add_typer(guard_app, name="guard")
leak_app = typer.Typer(help="Leak attribution: which member a leaked copy was released to.", no_args_is_help=True)
app.add_typer(leak_app, name="leak")
warn_app = typer.Typer(help="Duty to warn: draft, approve (or waive), deliver and follow warnings.", no_args_is_help=True)
app.add_typer(warn_app, name="warn")
party_app = typer.Typer(help="Outside parties warnings can be addressed to.", no_args_is_help=True)
warn_app.add_typer(party_app, name="party")
match_app = typer.Typer(help="Private matching of indicator lists with another member (PSI through the hub).",
                        no_args_is_help=True)
app.add_typer(match_app, name="match")

err = Console(stderr=True)
out = Console()

DbOpt = Annotated[Optional[str], typer.Option("--db", help="store URL (default: TEARLINE_DB, else sqlite:///tearline.db)")]


def _fail(exc: TearlineError) -> None:
    err.print(f"[red]error:[/red] {exc.description}", highlight=False, markup=True, soft_wrap=True)
    raise typer.Exit(2 if isinstance(exc, ConfigError) or exc.status < 500 else 1)


def _store(settings: config.Settings) -> Store:
    from . import keys, write

    store = Store(settings.db)
    store.migrate()
    if store.upkeep_due("release"):
        write.upkeep(store, keys.load(settings))
    return store


def _audit_log(settings: config.Settings, store: Store) -> Any:
    from . import audit

    return audit.AuditLog(store, audit.key_path(settings.audit_key, settings.db), settings.audit_checkpoint_every)


def _admin(settings: config.Settings, store: Store, action: str, compact: str | None, detail: dict[str, Any],
           refused: TearlineError | None = None) -> None:
    """Record an admin action in the audit trail, as the operating-system user who ran it; a refused
    one with its status and reason."""
    from . import audit

    _audit_log(settings, store).append(actor=audit.admin_actor(), api_root=compact, method="ADMIN", endpoint=action,
                                       path=f"tearline {action}", query=detail,
                                       status=refused.status if refused else 200,
                                       reason=refused.description if refused else "")


def _run(fn: Any, *args: Any) -> Any:
    try:
        return fn(*args)
    except TearlineError as exc:
        _fail(exc)


def _listing(found: list[dict[str, Any]], as_json: bool, title: str, columns: tuple[str, ...], row: Any) -> None:
    """A list command's output: the records as one JSON line, or a table of ``row(record)`` cells."""
    if as_json:
        sys.stdout.write(json.dumps(found) + "\n")
        return
    table = Table(title=title)
    for col in columns:
        table.add_column(col)
    for item in found:
        table.add_row(*row(item))
    out.print(table)


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
    import gc

    import uvicorn

    from .web.app import create_app

    store = _run(_store, settings)
    application = create_app(settings, store)
    # What is alive now (modules, the app, the engine) lives as long as the hub: frozen, the cyclic
    # collector stops walking it on every pass. A higher first threshold lets an envelope's thousand
    # freshly parsed objects be freed by reference counting before a collection looks at them. On the
    # benchmark's feed the collector's time per object written fell from 13-21 µs to nothing.
    gc.freeze()
    gc.set_threshold(20_000, 20, 20)
    err.print(f"Tearline hub on http://{settings.host}:{settings.port}/taxii2/  (store: {settings.db})")
    uvicorn.run(application, host=settings.host, port=settings.port, log_level="warning")


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
    events_db = _seed_demo_events(store, spec, settings)
    # the dashboard shows the demo's forecasts, and its operator pages need an operator token
    settings = dataclasses.replace(settings, events_db=settings.events_db or events_db,
                                   admin_token=settings.admin_token or secrets.token_urlsafe(24))
    for member in spec.members:
        # A demo is run again and again: hand out fresh tokens rather than lock people out.
        if member.name not in tokens:
            tokens[member.name] = store.rotate_token(spec.name, member.name)
        for person in member.people:
            if f"{member.name}/{person}" not in tokens:
                tokens[f"{member.name}/{person}"] = store.rotate_person_token(spec.name, member.name, person)
    table = Table(title=f"Compact {spec.name}: demo members and their people (tokens shown once)")
    table.add_column("sign in as")
    table.add_column("may")
    table.add_column("token", no_wrap=True, min_width=43)  # whole: it is copied from here
    for member in spec.members:
        table.add_row(member.name, f"{'write' if member.write else 'read'}, {member.tlp_max.upper()}", tokens[member.name])
        for person in member.people:
            table.add_row(f"{member.name}/{person}", "warning steps", tokens[f"{member.name}/{person}"])
    err.print(table)
    err.print(f"Dashboard: http://{settings.host}:{settings.port}/ (sign in with a member and its token; "
              f"operator token {settings.admin_token})", soft_wrap=True)
    err.print(f"Try: curl -u state-a:<token> -H 'Accept: application/taxii+json;version=2.1' "
              f"http://{settings.host}:{settings.port}/taxii2/{spec.name}/collections/")
    store.close()
    _serve(settings)


def _seed_demo_events(store: Store, spec: compacts.CompactSpec, settings: config.Settings) -> str:
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
    added = _run(_push, store, spec.name, objs, settings)
    err.print(f"demo: real events from UCDP and the curated ISKP list in {events_db}; "
              f"{len(objs)} STIX objects shared in {spec.name}/intel ({added} new)")
    return events_db


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
    _admin(settings, store, "compact apply", spec.name, {"file": str(file), "new_members": sorted(tokens)})
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
    for c in colls:
        table.add_row(c.alias, c.id, str(store.version_count(c.num)))
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
    from .matching.mailbox import Rules
    from .model import Policy

    rules = Rules.of(Policy.loads(row.policy))
    out.print(f"matching: results to {rules.results}; {rules.min_items:,} to {rules.max_items:,} values a request; "
              f"at most {rules.requests_per_day} a day per pair and type; fpr {rules.fpr:g}")
    for answerer, asker, types in rules.standing_consent:
        out.print(f"  standing consent: {answerer} answers {asker} about {', '.join(types)}")


@compact_app.command("rotate-token")
def compact_rotate(name: str, member: Annotated[str, typer.Argument(help="a member, or member/person")],
                   db: DbOpt = None) -> None:
    """Give a member, or one of its people (member/person), a new token; the old one stops working at once."""
    settings = _run(config.load, {"db": db})
    store = _run(_store, settings)
    who, _, person = member.partition("/")
    token = _run(store.rotate_person_token, name, who, person) if person else _run(store.rotate_token, name, who)
    _admin(settings, store, "compact rotate-token", name, {"member": member})
    out.print(f"{'person' if person else 'member'} {member}: new token {token}  (shown once)")


@compact_app.command("remove-member")
def compact_remove(name: str, member: str, db: DbOpt = None) -> None:
    """Remove a member; it loses access at once (the compact file should drop it too)."""
    settings = _run(config.load, {"db": db})
    store = _run(_store, settings)
    _run(store.remove_member, name, member)
    _admin(settings, store, "compact remove-member", name, {"member": member})
    out.print(f"member {member} removed from {name}")


@db_app.command("upgrade")
def db_upgrade(db: DbOpt = None) -> None:
    """Create or migrate the store's schema to the newest revision."""
    settings = _run(config.load, {"db": db})
    store = _run(_store, settings)
    _admin(settings, store, "db upgrade", None, {})
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
    added = _run(_push, store, compact_name, objs, settings)
    out.print(f"{len(objs)} STIX objects for {actor} pushed to {compact_name}/intel ({added} new versions)")


def _events_objects(con: Any, actor: str, country: str | None, source: str | None,
                    catalogue: Any = None) -> list[dict[str, Any]]:
    from .events import actors, tostix

    catalogue = catalogue or actors.CATALOGUE
    resolved = actors.resolve(actor, catalogue)
    rows = tostix.actor_events(con, actor, country, source, catalogue)
    return tostix.bundle_objects(rows, compacts.Actor(resolved.name, resolved.aliases))


def _push(store: Store, compact_name: str, objs: list[dict[str, Any]], settings: config.Settings) -> int:
    from . import keys, write

    intel = store.collection(compact_name, "intel")
    if intel is None:
        raise ConfigError(f"--compact: no compact named {compact_name!r}")
    before = store.version_count(intel.num)
    with store.engine.begin() as conn:
        write.hub_write(store, conn, intel, objs, keys.load(settings))
    return store.version_count(intel.num) - before


@events_app.command("actors")
def events_actors(compact_file: CompactFileOpt = None) -> None:
    """The actor catalogue and how each dataset's rows are resolved to each actor."""
    for actor in _catalogue(compact_file):
        out.print(f"[bold]{actor.name}[/bold]  aliases: {', '.join(actor.aliases)}")
        for rule in actor.rules:
            out.print(f"  {rule.source}: {rule.describe()}")
    out.print("Any other name matches a dataset's own actor string (actor1/actor2, side_a/side_b).")


UnitOpt = Annotated[str, typer.Option("--unit", help="'province', 'country' or 'both'")]


def _levels(unit: str) -> list[str]:
    if unit not in ("province", "country", "both"):
        _fail(ConfigError(f"--unit must be 'province', 'country' or 'both', not {unit!r}"))
    return ["country", "province"] if unit == "both" else [unit]


@forecast_app.command("backtest")
def forecast_backtest(
    actor: ActorOpt,
    country: CountryOpt = None,
    source: SourceOpt = None,
    unit: UnitOpt = "both",
    start: Annotated[str, typer.Option("--from", help="first month forecast, YYYY-MM")] = "2012-01",
    end: Annotated[str, typer.Option("--to", help="last month forecast, YYYY-MM")] = "2021-12",
    horizons: Annotated[str, typer.Option(help="months ahead: a range like 1-6 or a list like 1,3")] = "1-6",
    refit_every: Annotated[int, typer.Option(help="refit the fitted models every N months of origins")] = 6,
    seed: Annotated[int, typer.Option(help="seed of every random draw (the run is reproducible)")] = 0,
    charts: Annotated[Optional[Path], typer.Option(help="draw reliability and skill-by-horizon PNGs into this directory")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the rows as one JSON list")] = False,
    compact_file: CompactFileOpt = None,
    events_db: EventsDbOpt = None,
) -> None:
    """Rolling-origin backtest: every model and baseline forecasts each month from the data before it."""
    from rich.progress import Progress

    from . import events, forecast

    first = _run(events.month, start, "--from")
    last = _run(events.month, end, "--to")
    wanted = _run(forecast.parse_horizons, horizons)
    if refit_every < 1:
        _fail(ConfigError(f"--refit-every must be at least 1, got {refit_every}"))
    levels = _levels(unit)
    con = _run(events.connect, _existing_events_db(events_db))
    with Progress(console=err, transient=True) as progress:
        tasks = {lv: progress.add_task(f"backtest {actor}, {lv}-month", total=None) for lv in levels}

        def step(level: str, done: int, total: int) -> None:
            progress.update(tasks[level], completed=done, total=total)

        rows, raw = _run(forecast.evaluate, con, actor, levels, first, last, country, source, wanted, refit_every,
                         seed, _catalogue(compact_file), step)
    if charts is not None:
        _forecast_charts(charts, rows, raw, wanted)
    if as_json:
        sys.stdout.write(json.dumps(rows) + "\n")
        return
    for level in levels:
        panel = raw[level][0]
        table = Table(title=f"{panel.actor}, {level}-month, {panel.source}: {rows[0]['period']['from']} to "
                            f"{rows[0]['period']['to']} (skill vs the best baseline)")
        for col in ("model", "h", "Brier", "skill", "95% interval", "log loss", "AP", "CRPS", "CRPS skill",
                    "CRPS fatalities"):
            table.add_column(col, justify="left" if col == "model" else "right")
        for r in (r for r in rows if r["unit"] == level):
            table.add_row(r["model"] + (" (baseline)" if r["kind"] == "baseline" else ""), str(r["horizon"]),
                          f"{r['brier']:.4f}", f"{r['brier_skill']:+.3f}", "{:+.3f} … {:+.3f}".format(*r["brier_skill_ci"]),
                          f"{r['log_loss']:.3f}", "" if r["average_precision"] is None else f"{r['average_precision']:.3f}",
                          f"{r['crps']:.3f}", f"{r['crps_skill']:+.3f}", f"{r['crps_fatalities']:.2f}")
        out.print(table)
        for note in panel.notes:
            out.print(f"  [yellow]{note}[/yellow]")


def _forecast_charts(directory: Path, rows: list[dict[str, Any]], raw: dict[str, Any], horizons: list[int]) -> None:
    from .forecast import charts

    directory.mkdir(parents=True, exist_ok=True)
    for level, (panel, scores) in raw.items():
        slug = f"{panel.actor.lower().replace(' ', '-')}-{level}"
        near = [h for h in horizons if h <= 3] or horizons
        charts.reliability(scores, near, f"{panel.actor}, {level}-month ({panel.source}): reliability, "
                           f"horizons {near[0]}-{near[-1]}", str(directory / f"{slug}-reliability.png"))
        charts.skill_by_horizon([r for r in rows if r["unit"] == level],
                                f"{panel.actor}, {level}-month ({panel.source}): skill by horizon",
                                str(directory / f"{slug}-skill.png"))
        err.print(f"charts: {directory / slug}-reliability.png, {directory / slug}-skill.png")


@forecast_app.command("run")
def forecast_run(
    actor: ActorOpt,
    country: CountryOpt = None,
    source: SourceOpt = None,
    unit: Annotated[str, typer.Option("--unit", help="'province' or 'country'")] = "province",
    model: Annotated[str, typer.Option(help="which model forecasts")] = "boosting",
    threshold: Annotated[float, typer.Option(help="raise an alert at this probability of an attack")] = 0.5,
    map_file: Annotated[Optional[Path], typer.Option("--map", help="draw next month's probabilities to this PNG")] = None,
    seed: Annotated[int, typer.Option(help="seed of the predictive samples")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="print the forecasts and alerts as JSON")] = False,
    compact_file: CompactFileOpt = None,
    events_db: EventsDbOpt = None,
) -> None:
    """Forecast horizons 1-6 from all the data, store them, and raise alerts above the threshold."""
    from . import events
    from .forecast import charts, current
    from .forecast import panel as panels

    if unit not in ("province", "country"):
        _fail(ConfigError(f"--unit must be 'province' or 'country', not {unit!r}"))
    chosen = _run(current.model_named, model, seed)
    con = _run(events.connect, _existing_events_db(events_db))
    panel = _run(panels.build, con, actor, unit, country, source, _catalogue(compact_file))
    rows = current.forecast(panel, chosen, seed)
    run_id, raised = _run(current.record, con, panel, model, rows, threshold)
    if map_file is not None:
        first = [r for r in rows if r["horizon"] == 1]
        missing = charts.forecast_map(panel.units, [r["probability"] for r in first],
                                      f"{panel.actor}: probability of at least one attack in {first[0]['target']} "
                                      f"({model}, data to {first[0]['origin']}, {panel.source})", str(map_file))
        err.print(f"map: {map_file}" + (f" (no boundary for {', '.join(missing)})" if missing else ""))
    if as_json:
        sys.stdout.write(json.dumps({"run_id": run_id, "actor": panel.actor, "source": panel.source, "model": model,
                                     "forecasts": rows, "alerts": raised}) + "\n")
        return
    table = Table(title=f"{panel.actor}: forecasts from data to {panels.month_label(panel.end)} ({model}, {panel.source})")
    for col in ("unit", *(f"+{h}" for h in range(1, 7))):
        table.add_column(col, justify="left" if col == "unit" else "right")
    for u, label in enumerate(panel.unit_label(i) for i in range(len(panel.units))):
        cells = [r for r in rows if (r["country"], r["province"]) == panel.units[u]]
        table.add_row(label, *(f"{r['probability']:.0%}" for r in sorted(cells, key=lambda r: r["horizon"])))
    out.print(table)
    out.print(f"run {run_id}: {len(raised)} alert(s) at or above {threshold:.0%}; `tearline forecast alerts` lists them")


@forecast_app.command("alerts")
def forecast_alerts(
    status: Annotated[Optional[str], typer.Option(help="only 'open' or 'drafted' alerts")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the alerts as one JSON list")] = False,
    events_db: EventsDbOpt = None,
) -> None:
    """Alerts raised by forecasts that crossed their threshold."""
    from . import events
    from .forecast import current

    if status not in (None, "open", "drafted"):
        _fail(ConfigError(f"--status must be 'open' or 'drafted', not {status!r}"))
    con = _run(events.connect, _existing_events_db(events_db))
    _listing(current.alerts(con, status), as_json, "forecast alerts",
             ("alert", "status", "actor", "where", "month", "h", "probability", "model"),
             lambda a: (a["alert_id"], a["status"], a["actor"], a["province"] or a["country"], a["target"],
                        str(a["horizon"]), f"{a['probability']:.0%}", a["model"]))


@forecast_app.command("draft-warning")
def forecast_draft_warning(
    alert_id: Annotated[str, typer.Argument(help="an alert id from `tearline forecast alerts`")],
    events_db: EventsDbOpt = None,
) -> None:
    """Turn an alert into the fields of a draft duty-to-warn warning (printed as JSON)."""
    from . import events
    from .forecast import current

    con = _run(events.connect, _existing_events_db(events_db))
    sys.stdout.write(json.dumps(_run(current.draft_warning, con, alert_id), indent=1) + "\n")


HubOpt = Annotated[Optional[str], typer.Option("--hub", help="hub URL (TEARLINE_HUB, else http://127.0.0.1:6100)")]
MemberOpt = Annotated[Optional[str], typer.Option("--member", help="your member name (TEARLINE_MEMBER)")]
TokenOpt = Annotated[Optional[str], typer.Option("--token", help="your token (TEARLINE_TOKEN)")]
StateOpt = Annotated[Optional[str], typer.Option("--state", help="where your keys and values stay (TEARLINE_MATCH_STATE, "
                                                                 "else ~/.tearline/match)")]
TypeOpt = Annotated[str, typer.Option("--type", help="phone, domain, wallet, hash, ip or email")]
RegionOpt = Annotated[str, typer.Option(help="country assumed for phone numbers written without +code (ISO alpha-2)")]


def _hub(url: str | None, member: str | None, token: str | None) -> Any:
    from .matching.client import Hub

    member = member or os.environ.get("TEARLINE_MEMBER")
    token = token or os.environ.get("TEARLINE_TOKEN")
    if not member or not token:
        _fail(ConfigError("--member and --token (or TEARLINE_MEMBER and TEARLINE_TOKEN) are required"))
    return Hub(url or os.environ.get("TEARLINE_HUB") or "http://127.0.0.1:6100", member, token)


def _prepare(file: Path, kind: str, region: str) -> Any:
    from .matching import client

    prepared = _run(client.prepare, file, kind, region)
    if prepared.dropped:
        err.print(f"{len(prepared.dropped)} known-benign value(s) left out (MISP warninglists), e.g. "
                  + ", ".join(f"{v} ({name})" for v, name in list(prepared.dropped.items())[:3]))
    return prepared


@match_app.command("request")
def match_request(
    file: Annotated[Path, typer.Argument(help="your values, one per line")],
    kind: TypeOpt,
    to: Annotated[str, typer.Option("--with", help="the member to match with")],
    both: Annotated[bool, typer.Option("--both", help="ask for both sides to learn the intersection")] = False,
    region: RegionOpt = "PK",
    hub: HubOpt = None, member: MemberOpt = None, token: TokenOpt = None, state: StateOpt = None,
) -> None:
    """Ask another member which of your values it also holds; it sees only blinded values."""
    from .matching import client

    prepared = _prepare(file, kind, region)
    made = _run(client.request, _hub(hub, member, token), client.state_dir(state), prepared, to, both)
    out.print(f"request {made['id']}: {made['asked']} {kind} values sent blinded to {to} "
              f"({made['bytes_sent']:,} bytes); `tearline match result {made['id']}` once answered", soft_wrap=True)


@match_app.command("inbox")
def match_inbox(hub: HubOpt = None, member: MemberOpt = None, token: TokenOpt = None,
                as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Requests waiting for your answer."""
    from .matching import client

    pending = _run(client.inbox, _hub(hub, member, token))
    if as_json:
        sys.stdout.write(json.dumps(pending) + "\n")
        return
    table = Table(title="match requests waiting for you")
    for col in ("id", "from", "type", "values", "results", "consent"):
        table.add_column(col)
    for r in pending:
        table.add_row(r["id"], r["asker"], r["kind"], str(r["asked"]), r["results"],
                      "standing (compact file)" if r["consent"] == "standing" else "yours to give")
    out.print(table)


@match_app.command("serve")
def match_serve(
    file: Annotated[Path, typer.Argument(help="your values, one per line")],
    kind: TypeOpt,
    request_id: Annotated[Optional[str], typer.Option("--id", help="answer only this request")] = None,
    yes: Annotated[bool, typer.Option("--yes", help="consent to the request given with --id")] = False,
    refuse: Annotated[bool, typer.Option("--decline", help="decline the request given with --id")] = False,
    region: RegionOpt = "PK",
    hub: HubOpt = None, member: MemberOpt = None, token: TokenOpt = None, state: StateOpt = None,
) -> None:
    """Answer requests: those your compact's standing consent covers, and the one you consent to."""
    from .matching import client

    if (yes or refuse) and not request_id:
        _fail(ConfigError("--yes and --decline apply to one request: give its --id"))
    where = _hub(hub, member, token)
    if refuse:
        _run(client.decline, where, request_id)
        out.print(f"request {request_id} declined")
        return
    pending = [r for r in _run(client.inbox, where) if r["kind"] == kind and (request_id in (None, r["id"]))]
    if request_id and not pending:
        _fail(ConfigError(f"--id {request_id}: no pending {kind} request with that id is waiting for you"))
    prepared = None
    for r in pending:
        consented = r["consent"] == "standing" or yes
        if not consented and sys.stdin.isatty():
            consented = typer.confirm(f"{r['asker']} asks which of its {r['asked']} {kind} values you hold; answer?")
        if not consented:
            err.print(f"request {r['id']} from {r['asker']} needs your consent: "
                      f"`tearline match serve FILE --type {kind} --id {r['id']} --yes` (or --decline)", soft_wrap=True)
            continue
        prepared = prepared or _prepare(file, kind, region)
        done = _run(client.answer, where, client.state_dir(state), prepared, r["id"])
        out.print(f"answered {r['id']} from {r['asker']} ({r['asked']} values asked; {done['bytes_sent']:,} bytes sent)"
                  + (f"; asked back as {done['asked_back']}: `tearline match result {done['asked_back']}`"
                     if "asked_back" in done else ""), soft_wrap=True)
    if not pending:
        out.print(f"no pending {kind} requests")


@match_app.command("result")
def match_result(
    request_id: Annotated[str, typer.Argument(help="the id `match request` printed")],
    as_json: Annotated[bool, typer.Option("--json")] = False,
    hub: HubOpt = None, member: MemberOpt = None, token: TokenOpt = None, state: StateOpt = None,
) -> None:
    """The values you and the other member both hold, once it has answered."""
    from .matching import client

    got = _run(client.result, _hub(hub, member, token), client.state_dir(state), request_id)
    if as_json:
        sys.stdout.write(json.dumps(got) + "\n")
        return
    if got["matches"] is None:
        out.print(f"request {request_id} is {got['status']}")
        return
    out.print(f"{len(got['matches'])} of your {got['asked']} {got['kind']} values are also held by the other member:")
    for value in got["matches"]:
        out.print(f"  {value}")
    if "answered_ask_back" in got:
        out.print(f"(answered their ask-back {got['answered_ask_back']}, so they learn the same intersection)")


PublicKeyOpt = Annotated[Optional[list[str]], typer.Option("--public-key", help="a trusted (published) public key, "
                                                         "hex; repeat for retired keys. Default: the keys in the store")]


def _public_keys(values: list[str] | None) -> list[str]:
    keys = []
    for v in values or []:
        text = Path(v).read_text().strip() if Path(v).is_file() else v.strip()
        if len(text) != 64 or any(c not in "0123456789abcdefABCDEF" for c in text):
            _fail(ConfigError(f"--public-key {v!r}: expected 64 hex digits (a raw Ed25519 public key) or a file of them"))
        keys.append(text.lower())
    return keys


@audit_app.command("verify")
def audit_verify(db: DbOpt = None, public_key: PublicKeyOpt = None) -> None:
    """Check the whole chain and every signed checkpoint; exit 1 and say where on any tampering."""
    from . import audit

    trusted = _public_keys(public_key)
    settings = _run(config.load, {"db": db})
    store = _run(_store, settings)
    report = audit.verify(store, trusted)
    for text in report.problems:
        err.print(f"[red]tampered:[/red] {text}", soft_wrap=True)
    summary = (f"{report.entries:,} entries, {report.checkpoints:,} signed checkpoints, "
               f"{report.unsigned_tail:,} entries after the last checkpoint")
    if not report.intact:
        err.print(f"audit log NOT intact: {len(report.problems)} problem(s) found; {summary}")
        raise typer.Exit(1)
    out.print(f"audit log intact: {summary}" + ("" if trusted else " (signatures checked with the keys recorded in "
                                                                   "the store; pass --public-key to use the published one)"))


@audit_app.command("checkpoint")
def audit_checkpoint(db: DbOpt = None, audit_key: Annotated[Optional[str], typer.Option(help="signing key file")] = None
                     ) -> None:
    """Sign the entries written since the last checkpoint now."""
    settings = _run(config.load, {"db": db, "audit_key": audit_key})
    cp = _run(_audit_log(settings, _run(_store, settings)).checkpoint)
    out.print(f"checkpoint at entry {cp['seq']} (from {cp['first_seq']}), key {cp['key_id']}" if cp else "nothing new to sign")


@audit_app.command("key")
def audit_key_cmd(
    rotate: Annotated[bool, typer.Option("--rotate", help="seal with the current key, retire it, make a new one")] = False,
    db: DbOpt = None, audit_key: Annotated[Optional[str], typer.Option(help="signing key file")] = None,
) -> None:
    """Print the hub's audit public keys (publish the current one); --rotate to change key."""
    settings = _run(config.load, {"db": db, "audit_key": audit_key})
    store = _run(_store, settings)
    log = _audit_log(settings, store)
    if rotate:
        old, new = _run(log.rotate_key)
        _admin(settings, store, "audit key rotate", None, {"retired": old, "new": new})
        out.print(f"retired key {old}; now signing with {new}")
    for k in _run(log.public_keys):
        state = "retired" if k["retired_us"] else "current"
        out.print(f"{k['key_id']}  {k['public_key']}  ({state})")


@audit_app.command("export")
def audit_export(
    member: Annotated[str, typer.Option(help="the member whose records to export")],
    compact: Annotated[str, typer.Option(help="its compact")],
    out_file: Annotated[Path, typer.Option("--out", help="write the export here (JSON)")],
    db: DbOpt = None, audit_key: Annotated[Optional[str], typer.Option(help="signing key file")] = None,
) -> None:
    """A member's own audit records with proofs into signed checkpoints, verifiable offline."""
    from . import audit

    settings = _run(config.load, {"db": db, "audit_key": audit_key})
    store = _run(_store, settings)
    log = _audit_log(settings, store)
    _admin(settings, store, "audit export", compact, {"member": member})
    doc = _run(audit.export, log, compact, member)
    out_file.write_text(json.dumps(doc, indent=1))
    out.print(f"{len(doc['entries'])} entries of {member} in {compact}, {len(doc['checkpoints'])} checkpoint(s) → {out_file}")


@audit_app.command("verify-export")
def audit_verify_export(
    file: Annotated[Path, typer.Argument(help="a file written by `tearline audit export`")],
    public_key: PublicKeyOpt = None,
) -> None:
    """Check a member's export offline: every entry's hash, its proof, and the checkpoint signatures."""
    from . import audit

    try:
        doc = json.loads(file.read_text())
    except (OSError, ValueError) as exc:
        _fail(ConfigError(f"{file}: cannot read it as JSON ({exc})"))
    report = _run(audit.verify_export, doc, _public_keys(public_key))
    for text in report.problems:
        err.print(f"[red]tampered:[/red] {text}", soft_wrap=True)
    if not report.intact:
        raise typer.Exit(1)
    out.print(f"export intact: {report.entries} entries, {report.checkpoints} signed checkpoint(s)")


@guard_app.command("scan")
def guard_scan(db: DbOpt = None) -> None:
    """Read the audit entries since the last scan and raise alerts (the hub also does this itself)."""
    from . import probes

    settings = _run(config.load, {"db": db})
    raised = _run(probes.scan, _run(_store, settings))
    out.print(f"{len(raised)} new alert(s)")
    for a in raised:
        out.print(f"  {a.member} ({a.api_root}): {a.rule}, {a.count} times — {a.explains}", soft_wrap=True)


@guard_app.command("alerts")
def guard_alerts(
    member: Annotated[Optional[str], typer.Option(help="only this member's")] = None,
    compact: Annotated[Optional[str], typer.Option(help="only this compact's")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the alerts as one JSON list")] = False,
    db: DbOpt = None,
) -> None:
    """Probe alerts, newest first, with the audit entries that are their evidence."""
    from . import probes

    settings = _run(config.load, {"db": db})
    store = _run(_store, settings)
    _run(probes.scan, store)
    import datetime as dt

    def when(at_us: int) -> str:
        return dt.datetime.fromtimestamp(at_us / 1e6, dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S")

    _listing(probes.stored_alerts(store, member, compact), as_json, "probe alerts",
             ("when", "compact", "member", "rule", "count", "score", "why", "audit entries"),
             lambda a: (when(a["at_us"]), a["api_root"] or "", a["member"], a["rule"], str(a["count"]),
                        str(a["score"]), a["explains"], f"{a['first_seq']}..{a['last_seq']}"))


@leak_app.command("trace")
def leak_trace(
    file: Annotated[Path, typer.Argument(help="a leaked STIX bundle, envelope or object (JSON), or pasted text")],
    as_json: Annotated[bool, typer.Option("--json", help="print the verdict and every member's score as JSON")] = False,
    leak_key: Annotated[Optional[str], typer.Option(help="the hub's leak key file")] = None,
    db: DbOpt = None,
) -> None:
    """Name the member a leaked copy was released to, with a confidence."""
    from sqlalchemy import select

    from . import leak
    from .store.schema import members

    settings = _run(config.load, {"db": db, "leak_key": leak_key})
    path = leak.key_path(settings.leak_key, settings.db)
    if not path.exists():
        _fail(ConfigError(f"no leak key at {path}: trace with the key of the hub that released the copy (--leak-key)"))
    try:
        raw = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        _fail(ConfigError(f"{file}: cannot read it as UTF-8 text ({exc})"))
    try:
        doc: Any = json.loads(raw)
    except ValueError:
        doc = raw  # pasted text, not JSON
    texts = leak.texts_of(doc)
    store = _run(_store, settings)
    with store.engine.connect() as conn:
        candidates = [(r.api_root, r.name) for r in conn.execute(select(members.c.api_root, members.c.name))]
    ranked, verdict = leak.trace(leak.load_or_create_key(path), texts, candidates)
    if as_json:
        sys.stdout.write(json.dumps({"verdict": verdict, "ranking": [m.__dict__ for m in ranked]}) + "\n")
        return
    out.print(verdict, soft_wrap=True)
    for m in ranked[:3]:
        out.print(f"  {m.member} ({m.api_root}): {m.agree}/{m.gaps} gaps agree, confidence {m.confidence:.6f}")


ByOpt = Annotated[str, typer.Option("--by", help="the person taking this step (recorded; approval needs a second person)")]


def _warn_out(w: dict[str, Any], as_json: bool) -> None:
    if as_json:
        sys.stdout.write(json.dumps(w) + "\n")
        return
    ext = next(iter(w["report"]["extensions"].values()))
    out.print(f"warning {w['id']} to {w['addressee']}{' (outside party)' if w['outside'] else ''}: [bold]{w['state']}[/bold]",
              soft_wrap=True)
    out.print(f"  target {ext['target']}, window {ext['window_start']} to {ext['window_end']}, "
              f"confidence {w['report']['confidence']}", soft_wrap=True)
    for e in w["history"]:
        out.print(f"  {e['at'][:19]} {e['by']}: {e['action']} ({e['from'] or '-'} → {e['to']}) {e['note']}", soft_wrap=True)


def _warn_step(settings: config.Settings, store: Store, action: str, compact: str | None, detail: dict[str, Any],
               fn: Any, *args: Any) -> Any:
    """One duty-to-warn step, audited whether it is taken or refused."""
    try:
        done = fn(*args)
    except TearlineError as exc:
        _admin(settings, store, f"warn {action}", compact, detail, refused=exc)
        _fail(exc)
    _admin(settings, store, f"warn {action}", compact or (done.get("compact") if isinstance(done, dict) else None), detail)
    return done


@warn_app.command("draft")
def warn_draft(
    compact: Annotated[str, typer.Option(help="the compact the warning belongs to")],
    to: Annotated[str, typer.Option("--to", help="the threatened party: a member, or an outside party with --outside")],
    country: Annotated[str, typer.Option(help="target country, ISO 3166 alpha-3")],
    window_start: Annotated[str, typer.Option("--from", help="threat window start, YYYY-MM-DD")],
    window_end: Annotated[str, typer.Option("--until", help="threat window end, YYYY-MM-DD")],
    confidence: Annotated[int, typer.Option(help="0-100")],
    ask: Annotated[str, typer.Option(help="what is asked of the recipient")],
    by: ByOpt,
    text: Annotated[str, typer.Option(help="the releasable text (tear-line level: no sources or methods)")] = "",
    from_report: Annotated[Optional[str], typer.Option(
        "--from-report", help="take the text from this report's description, at the addressee's tear line")] = None,
    outside: Annotated[bool, typer.Option("--outside", help="the threatened party is not a member")] = False,
    province: Annotated[Optional[str], typer.Option()] = None,
    city: Annotated[Optional[str], typer.Option()] = None,
    place_type: Annotated[Optional[str], typer.Option(help="e.g. religious gathering, concert hall")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
    db: DbOpt = None,
) -> None:
    """Draft a warning (it still needs a second person's approval)."""
    from . import warn

    settings = _run(config.load, {"db": db})
    store = _run(_store, settings)
    w = _warn_step(settings, store, "draft", compact, {"by": by, "to": to, "source": from_report}, warn.draft, store,
                   compact, by, to, outside, {"country": country, "province": province, "city": city,
                                              "place_type": place_type},
                   (window_start, window_end), confidence, ask, text, from_report)
    _warn_out(w, as_json)


def _warn_move(action: str, warning: str, by: str, note: str, as_json: bool, db: str | None,
               out_dir: Path | None = None) -> None:
    from . import warn

    settings = _run(config.load, {"db": db})
    store = _run(_store, settings)
    w = _warn_step(settings, store, action, None, {"warning": warning, "by": by, "note": note}, warn.move, store,
                   warning, action, by, note, None, _audit_log(settings, store))
    if w["document"]:
        _write_document(w["document"], out_dir or Path("."))
    _warn_out(w, as_json)


def _write_document(doc: dict[str, Any], out_dir: Path) -> None:
    from . import warn

    out_dir.mkdir(parents=True, exist_ok=True)
    stem = out_dir / f"warning-{doc['warning']['id']}"
    stem.with_suffix(".json").write_bytes(orjson.dumps(doc, option=orjson.OPT_INDENT_2))
    stem.with_suffix(".html").write_text(warn.render_html(doc), encoding="utf-8")
    err.print(f"signed document for {doc['warning']['to']}: {stem}.json and {stem}.html "
              f"(hub key {doc['signature']['key_id']}; they verify it with `tearline warn verify`)", soft_wrap=True)


WarningArg = Annotated[str, typer.Argument(help="the warning's id")]
OutDirOpt = Annotated[Optional[Path], typer.Option("--out", help="where an outside party's signed document is written "
                                                                 "(JSON and HTML; default: the current directory)")]


@warn_app.command("approve")
def warn_approve(warning: WarningArg, by: ByOpt, as_json: Annotated[bool, typer.Option("--json")] = False,
                 db: DbOpt = None) -> None:
    """Approve a draft (not by its author)."""
    _warn_move("approve", warning, by, "", as_json, db)


@warn_app.command("waive")
def warn_waive(warning: WarningArg, by: ByOpt,
               reason: Annotated[str, typer.Option(help="sources-and-methods, violent-actor, armed-conflict, "
                                                        "already-knows or no-way-to-warn")],
               why: Annotated[str, typer.Option(help="the justification, for the record and for review")],
               as_json: Annotated[bool, typer.Option("--json")] = False, db: DbOpt = None) -> None:
    """Decide not to warn, with a reason code and a justification (not by the author)."""
    _warn_move("waive", warning, by, f"{reason}: {why}", as_json, db)


@warn_app.command("review")
def warn_review(warning: WarningArg, by: ByOpt,
                decision: Annotated[str, typer.Option(help="uphold (it stays waived) or overturn (a draft again)")],
                why: Annotated[str, typer.Option(help="the reason, for the record")],
                as_json: Annotated[bool, typer.Option("--json")] = False, db: DbOpt = None) -> None:
    """Review a waiver: by someone who neither wrote the warning nor waived it."""
    if decision not in ("uphold", "overturn"):
        _fail(BadRequest(f"--decision: uphold or overturn, got {decision!r}"))
    _warn_move(decision, warning, by, why, as_json, db)


@warn_app.command("deliver")
def warn_deliver(warning: WarningArg, by: ByOpt, out_dir: OutDirOpt = None,
                 as_json: Annotated[bool, typer.Option("--json")] = False, db: DbOpt = None) -> None:
    """Deliver an approved warning: to a member, into the compact's warnings collection for it alone;
    to an outside party, as a signed document (JSON and HTML) to hand over."""
    _warn_move("deliver", warning, by, "", as_json, db, out_dir)


@warn_app.command("acknowledge")
def warn_acknowledge(warning: WarningArg, by: ByOpt, as_json: Annotated[bool, typer.Option("--json")] = False,
                     db: DbOpt = None) -> None:
    """Record a member addressee's acknowledgement (an outside party's comes as a signed reply: `warn ack`)."""
    _warn_move("acknowledge", warning, by, "", as_json, db)


@warn_app.command("export")
def warn_export(warning: WarningArg, out_dir: OutDirOpt = None, db: DbOpt = None) -> None:
    """Write again the signed document delivered to an outside party (the same bytes it received)."""
    from . import warn

    settings = _run(config.load, {"db": db})
    w = _run(warn.show, _run(_store, settings), warning)
    if not w["document"]:
        _fail(BadRequest(f"warning {warning} has no signed document: it is {w['state']}"
                         f"{'' if w['outside'] else ' and addressed to a member'}"))
    _write_document(w["document"], out_dir or Path("."))


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        _fail(BadRequest(f"{path}: cannot read it ({exc.strerror})"))
        raise


@warn_app.command("verify")
def warn_verify(
    file: Annotated[Path, typer.Argument(help="the warning document, .json or .html")],
    public_key: Annotated[list[str], typer.Option("--public-key", help="the hub's published public key (hex), as "
                                                                      "`tearline audit key` prints it; repeatable")],
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Check, offline, that a warning document comes from the hub whose key you hold and is unchanged."""
    from . import warn

    facts = _run(warn.verify_document, _run(warn.read_document, _read(file), str(file)), public_key)
    if as_json:
        sys.stdout.write(json.dumps(facts) + "\n")
        return
    out.print(f"[green]authentic[/green]: warning {facts['id']} to {facts['to']}, issued {facts['issued']}, "
              f"signed by hub key {facts['key_id']}", soft_wrap=True)


@warn_app.command("keygen")
def warn_keygen(out_file: Annotated[Path, typer.Option("--out", help="where to write the private key (PEM)")]) -> None:
    """Make an outside party's signing key; give the printed public key to the hub operator."""
    from . import warn

    pem, public = warn.new_party_key()
    try:
        config.create_secret(out_file, pem)
    except FileExistsError:
        _fail(BadRequest(f"{out_file} exists; a key is never overwritten"))
    sys.stdout.write(public + "\n")


@warn_app.command("reply")
def warn_reply(
    file: Annotated[Path, typer.Argument(help="the warning document you received, .json or .html")],
    key: Annotated[Path, typer.Option(help="your private key (from `tearline warn keygen`)")],
    by: Annotated[str, typer.Option(help="who acknowledges")],
    out_file: Annotated[Path, typer.Option("--out", help="the reply file to return to the hub")],
    note: Annotated[str, typer.Option(help="anything to add, e.g. measures taken")] = "",
    public_key: Annotated[Optional[list[str]], typer.Option(
        "--public-key", help="the hub's public key: the document is verified before you sign for it")] = None,
) -> None:
    """(For an outside party.) Acknowledge a warning with a reply signed by your key."""
    from . import warn

    doc = _run(warn.read_document, _read(file), str(file))
    if public_key:
        _run(warn.verify_document, doc, public_key)
    reply = _run(warn.make_reply, doc, _read(key), by, note)
    out_file.write_bytes(orjson.dumps(reply, option=orjson.OPT_INDENT_2))
    out.print(f"reply for warning {reply['warning']} written to {out_file}", soft_wrap=True)


@warn_app.command("ack")
def warn_ack(file: Annotated[Path, typer.Argument(help="the outside party's signed reply")],
             as_json: Annotated[bool, typer.Option("--json")] = False, db: DbOpt = None) -> None:
    """Record an outside party's signed acknowledgement."""
    from . import warn

    settings = _run(config.load, {"db": db})
    store = _run(_store, settings)
    reply = _run(warn.read_document, _read(file), str(file))
    w = _warn_step(settings, store, "ack", None, {"warning": reply.get("warning"), "file": str(file)},
                   warn.record_reply, store, reply)
    _warn_out(w, as_json)


@warn_app.command("escalate")
def warn_escalate(db: DbOpt = None, as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Send unacknowledged warnings to the addressee's next contact (the hub also does this by itself)."""
    from . import warn

    settings = _run(config.load, {"db": db})
    store = _run(_store, settings)
    sent = _run(warn.escalate, store, config.hub_path(settings.warn_outbox, settings.db, "outbox"))
    for item in sent:
        _admin(settings, store, "warn escalate", None, item)
    if as_json:
        sys.stdout.write(json.dumps(sent) + "\n")
        return
    for item in sent:
        out.print(f"warning {item['warning']}: sent to {item['contact']} ({item['file']})", soft_wrap=True)
    if not sent:
        out.print("nothing to escalate")


@party_app.command("add")
def warn_party_add(
    name: Annotated[str, typer.Argument(help="the outside party, e.g. 'Ministry of Interior of X'")],
    public_key: Annotated[str, typer.Option(help="its Ed25519 public key, hex (from `tearline warn keygen`)")],
    tlp_max: Annotated[str, typer.Option(help="parts of a report marked above this stay below its tear line")] = "amber",
    contact: Annotated[Optional[list[str]], typer.Option(help="whom to tell, in order, when it does not acknowledge; "
                                                               "repeatable")] = None,
    db: DbOpt = None,
) -> None:
    """Register (or update) an outside party that warnings can be addressed to."""
    from . import warn

    settings = _run(config.load, {"db": db})
    store = _run(_store, settings)
    party = _warn_step(settings, store, "party add", None, {"party": name}, warn.add_party, store, name, public_key,
                       tlp_max.lower(), tuple(contact or ()))
    out.print(f"outside party {party['name']}: key {party['public_key'][:16]}…, TLP up to {party['tlp_max']}, "
              f"{len(party['contacts'])} contact(s)", soft_wrap=True)


@party_app.command("list")
def warn_party_list(db: DbOpt = None, as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """The registered outside parties."""
    from . import warn

    settings = _run(config.load, {"db": db})
    _listing(_run(warn.parties, _run(_store, settings)), as_json, "outside parties",
             ("name", "public key", "TLP up to", "contacts"),
             lambda p: (p["name"], p["public_key"], p["tlp_max"], "; ".join(p["contacts"])))


@warn_app.command("status")
def warn_status(warning: WarningArg, as_json: Annotated[bool, typer.Option("--json")] = False, db: DbOpt = None) -> None:
    """A warning's state and its whole history."""
    from . import warn

    settings = _run(config.load, {"db": db})
    _warn_out(_run(warn.show, _run(_store, settings), warning), as_json)


@warn_app.command("list")
def warn_list(compact: Annotated[Optional[str], typer.Option()] = None,
              state: Annotated[Optional[str], typer.Option(help="only warnings in this state (e.g. waived, to review)")] = None,
              as_json: Annotated[bool, typer.Option("--json")] = False, db: DbOpt = None) -> None:
    """Every warning, oldest first."""
    from . import warn

    settings = _run(config.load, {"db": db})
    _listing(_run(warn.list_, _run(_store, settings), compact, state), as_json, "warnings",
             ("id", "compact", "to", "state", "window ends", "author"),
             lambda w: (w["id"], w["compact"], w["addressee"], w["state"], w["window_end"], w["author"]))


def main() -> None:
    app()
