"""``tearline demo``: the hub with the demo ISIS-K compact, seeded with real events, on embedded SQLite."""

from __future__ import annotations

import dataclasses
import secrets
from importlib import resources
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from .. import compact as compacts
from .. import events, keys, write
from ..events import actors, tostix
from . import context
from .context import err
from .hub import free, run

app = typer.Typer(add_completion=False)


@app.command()
def demo(
    db: Annotated[str, typer.Option("--db", help="store URL")] = "sqlite:///tearline-demo.db",
    host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port")] = 6100,
) -> None:
    """Apply the demo ISIS-K compact, print fresh demo tokens, and run the hub."""
    ctx = context.open(create=True, db=db, host=host, port=port)
    free(ctx.settings.host, ctx.settings.port)  # before seeding, not after
    store = ctx.store
    text = resources.files("tearline.data").joinpath("demo-compact.yaml").read_text()
    spec = compacts.parse(text, "demo-compact.yaml")
    tokens = compacts.apply(store, spec)
    events_db = _seed_demo_events(ctx, spec)
    # the dashboard shows the demo's forecasts, and its operator pages need an operator token
    settings = dataclasses.replace(ctx.settings, events_db=ctx.settings.events_db or events_db,
                                   admin_token=ctx.settings.admin_token or secrets.token_urlsafe(24))
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
        table.add_row(member.name, f"{'write' if member.write else 'read'}, {member.tlp_max.upper()}",
                      tokens[member.name])
        for person in member.people:
            table.add_row(f"{member.name}/{person}", "warning steps", tokens[f"{member.name}/{person}"])
    err.print(table)
    err.print(f"Dashboard: http://{settings.host}:{settings.port}/ (sign in with a member and its token; "
              f"operator token {settings.admin_token})", soft_wrap=True)
    err.print(f"Try: curl -u state-a:<token> -H 'Accept: application/taxii+json;version=2.1' "
              f"http://{settings.host}:{settings.port}/taxii2/{spec.name}/collections/")
    store.close()
    run(context.Ctx(settings))


def _seed_demo_events(ctx: context.Ctx, spec: compacts.CompactSpec) -> str:
    """Load the bundled real event data and share ISIS-K's events in the demo compact."""
    data = resources.files("tearline.data").joinpath("events")
    files = [Path(str(data.joinpath(p))) for p in ("ucdp-ged-pakistan/conflict_data_pak.csv",
                                                   "ucdp-candidate-2023-10/GEDEvent_v23_0_10.csv",
                                                   "iskp-attacks/iskp_attacks.csv")]
    db = ctx.settings.db
    db_path = db.split("///", 1)[-1] if db.startswith("sqlite") else "tearline-demo.db"
    events_db = str(Path(db_path).with_suffix("")) + "-events.duckdb"
    events.ingest(files, events_db)
    con = events.connect(events_db)
    objs = tostix.actor_objects(con, spec.actors[0].name, None, None, actors.with_compact(spec))
    con.close()
    added = write.publish(ctx.store, spec.name, objs, keys.load(ctx.settings))
    err.print(f"demo: real events from UCDP and the curated ISKP list in {events_db}; "
              f"{len(objs)} STIX objects shared in {spec.name}/intel ({added} new)")
    return events_db
