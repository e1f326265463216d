"""``tearline demo``: the hub with the demo ISIS-K compact, seeded with real events, on embedded SQLite."""

from __future__ import annotations

import dataclasses
import secrets
import shlex
import sys
from importlib import resources
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table
from sqlalchemy.engine import make_url

from .. import compact as compacts
from .. import demo as showcase
from .. import keys
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
    """Apply the demo ISIS-K compact, seed it so that every capability shows, print fresh demo tokens and
    commands to try, and run the hub."""
    ctx = context.open(create=True, db=db, host=host, port=port)
    free(ctx.settings.host, ctx.settings.port)  # before seeding, not after
    store = ctx.store
    text = resources.files("tearline.data").joinpath("demo-compact.yaml").read_text()
    spec = compacts.parse(text, "demo-compact.yaml")
    tokens = compacts.apply(store, spec)
    db_url = ctx.settings.db
    db_path = make_url(db_url).database if db_url.startswith("sqlite") else "tearline-demo.db"
    events_db = ctx.settings.events_db or str(Path(db_path or "tearline-demo.db").with_suffix("")) + "-events.duckdb"
    data = Path(str(resources.files("tearline.data").joinpath("events")))
    with err.status("seeding the demo compact") as status:
        seeded = showcase.seed(store, keys.load(ctx.settings), spec, events_db, data, ctx.audit_log,
                               lambda what: status.update(f"seeding the demo compact: {what}"))
    err.print(f"demo: {seeded.incidents} STIX objects from UCDP and the curated ISKP list, "
              f"{sum(seeded.shared.values())} shared by members, {len(seeded.warnings)} warning(s) and "
              f"{seeded.alerts} forecast alert(s) made ({seeded.added} new versions)", soft_wrap=True)
    # the dashboard shows the demo's forecasts, and its operator pages need an operator token
    settings = dataclasses.replace(ctx.settings, events_db=events_db,
                                   admin_token=ctx.settings.admin_token or secrets.token_urlsafe(24))
    for member in spec.members:
        # A demo is run again and again: hand out fresh tokens rather than lock people out.
        if member.name not in tokens:
            tokens[member.name] = store.rotate_token(spec.name, member.name)
        for person in member.people:
            if f"{member.name}/{person}" not in tokens:
                tokens[f"{member.name}/{person}"] = store.rotate_person_token(spec.name, member.name, person)
    table = Table(title=f"Compact {spec.name}: demo members and their people (tokens shown once)")
    table.add_column("sign in as", overflow="fold")
    table.add_column("may", overflow="fold")
    table.add_column("token", no_wrap=True, min_width=43)  # whole: it is copied from here
    for member in spec.members:
        table.add_row(member.name, f"{'write' if member.write else 'read'}, {member.tlp_max.upper()}",
                      tokens[member.name])
        for person in member.people:
            table.add_row(f"{member.name}/{person}", "warning steps", tokens[f"{member.name}/{person}"])
    err.print(table)
    err.print(f"Dashboard: http://{settings.host}:{settings.port}/ (sign in with a member and its token; "
              f"operator token {settings.admin_token})", soft_wrap=True)
    err.print("Next, in another terminal in this directory (each line pastes as it is):")
    for line in next_steps(spec.name, db_url, events_db, f"http://{settings.host}:{settings.port}", tokens):
        err.print(f"  {line}", soft_wrap=True, highlight=False, markup=False)
    store.close()
    run(context.Ctx(settings))


def next_steps(compact: str, db: str, events_db: str, hub: str, tokens: dict[str, str]) -> list[str]:
    """Commands that work against the demo's stores and hub when pasted, with the program as it was run."""
    prog = shlex.quote(sys.argv[0]) if Path(sys.argv[0]).name == "tearline" else \
        f"{shlex.quote(sys.executable)} -m tearline"
    return [
        f"export TEARLINE_DB={shlex.quote(db)} TEARLINE_EVENTS_DB={shlex.quote(events_db)}",
        f"{prog} compact show {compact}",
        f"{prog} warn list",
        f"{prog} forecast alerts",
        f"{prog} events trend --actor ISIS-K --country AFG --from 2023-01 --to 2023-06",
        f"{prog} audit verify",
        f"curl -s -u state-a:{tokens['state-a']} -H 'Accept: application/taxii+json;version=2.1' "
        f"'{hub}/taxii2/{compact}/collections/intel/manifest/?limit=5'",
        f"{prog} misp pull --compact {compact} --out misp-ngo-c --hub {hub} --member ngo-c --token {tokens['ngo-c']}",
    ]
