"""``tearline match``: a member's side of private matching. It runs on the member's machine and talks to
the hub over HTTP, so its settings are the member's (hub URL, name, token, state directory), not the hub's."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from ..errors import ConfigError
from ..matching import client
from . import context
from .context import emit, err, out

app = typer.Typer(help="Private matching of indicator lists with another member (PSI through the hub).",
                  no_args_is_help=True)

HubOpt = Annotated[str | None, typer.Option("--hub", help="hub URL (TEARLINE_HUB, else http://127.0.0.1:6100)")]
MemberOpt = Annotated[str | None, typer.Option("--member", help="your member name (TEARLINE_MEMBER)")]
TokenOpt = Annotated[str | None, typer.Option("--token", help="your token (TEARLINE_TOKEN)")]
StateOpt = Annotated[str | None, typer.Option("--state", help="where your keys and values stay (TEARLINE_MATCH_STATE, "
                                                                 "else ~/.tearline/match)")]
TypeOpt = Annotated[str, typer.Option("--type", help="phone, domain, wallet, hash, ip or email")]
RegionOpt = Annotated[str, typer.Option(help="country assumed for phone numbers written without +code (ISO alpha-2)")]


def _open(hub: str | None, member: str | None, token: str | None, state: str | None = None) -> context.Ctx:
    return context.open(hub=hub, member=member, token=token, match_state=state)


def _hub(ctx: context.Ctx) -> client.Hub:
    settings = ctx.settings
    if not settings.member or not settings.token:
        raise ConfigError("--member and --token (or TEARLINE_MEMBER and TEARLINE_TOKEN) are required")
    return client.Hub(settings.hub, settings.member, settings.token)


def _prepare(file: Path, kind: str, region: str) -> client.Prepared:
    prepared = client.prepare(file, kind, region)
    if prepared.dropped:
        err.print(f"{len(prepared.dropped)} known-benign value(s) left out (MISP warninglists), e.g. "
                  + ", ".join(f"{v} ({name})" for v, name in list(prepared.dropped.items())[:3]))
    return prepared


@app.command("request")
def match_request(
    file: Annotated[Path, typer.Argument(help="your values, one per line")],
    kind: TypeOpt,
    to: Annotated[str, typer.Option("--with", help="the member to match with")],
    both: Annotated[bool, typer.Option("--both", help="ask for both sides to learn the intersection")] = False,
    region: RegionOpt = "PK",
    hub: HubOpt = None, member: MemberOpt = None, token: TokenOpt = None, state: StateOpt = None,
) -> None:
    """Ask another member which of your values it also holds; it sees only blinded values."""
    ctx = _open(hub, member, token, state)
    prepared = _prepare(file, kind, region)
    made = client.request(_hub(ctx), client.state_dir(ctx.settings.match_state), prepared, to, both)
    out.print(f"request {made['id']}: {made['asked']} {kind} values sent blinded to {to} "
              f"({made['bytes_sent']:,} bytes); `tearline match result {made['id']}` once answered", soft_wrap=True)


@app.command("inbox")
def match_inbox(hub: HubOpt = None, member: MemberOpt = None, token: TokenOpt = None,
                as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Requests waiting for your answer."""
    pending = client.inbox(_hub(_open(hub, member, token)))
    if as_json:
        emit(pending)
        return
    table = Table(title="match requests waiting for you")
    for col in ("id", "from", "type", "values", "results", "consent"):
        table.add_column(col, overflow="fold")  # at 80 columns a cell wraps, never loses its end
    for r in pending:
        table.add_row(r["id"], r["asker"], r["kind"], str(r["asked"]), r["results"],
                      "standing (compact file)" if r["consent"] == "standing" else "yours to give")
    out.print(table)


@app.command("serve")
def match_serve(
    file: Annotated[Path, typer.Argument(help="your values, one per line")],
    kind: TypeOpt,
    request_id: Annotated[str | None, typer.Option("--id", help="answer only this request")] = None,
    yes: Annotated[bool, typer.Option("--yes", help="consent to the request given with --id")] = False,
    refuse: Annotated[bool, typer.Option("--decline", help="decline the request given with --id")] = False,
    region: RegionOpt = "PK",
    hub: HubOpt = None, member: MemberOpt = None, token: TokenOpt = None, state: StateOpt = None,
) -> None:
    """Answer requests: those your compact's standing consent covers, and the one you consent to."""
    ctx = _open(hub, member, token, state)
    if (yes or refuse) and not request_id:
        raise ConfigError("--yes and --decline apply to one request: give its --id")
    where = _hub(ctx)
    if refuse:
        client.decline(where, request_id)
        out.print(f"request {request_id} declined")
        return
    pending = [r for r in client.inbox(where) if r["kind"] == kind and (request_id in (None, r["id"]))]
    if request_id and not pending:
        raise ConfigError(f"--id {request_id}: no pending {kind} request with that id is waiting for you")
    prepared = None
    for r in pending:
        if not _consents(r, kind, yes):
            continue
        prepared = prepared or _prepare(file, kind, region)
        done = client.answer(where, client.state_dir(ctx.settings.match_state), prepared, r["id"])
        out.print(f"answered {r['id']} from {r['asker']} ({r['asked']} values asked; {done['bytes_sent']:,} bytes sent)"
                  + (f"; asked back as {done['asked_back']}: `tearline match result {done['asked_back']}`"
                     if "asked_back" in done else ""), soft_wrap=True)
    if not pending:
        out.print(f"no pending {kind} requests")


def _consents(r: dict[str, Any], kind: str, yes: bool) -> bool:
    """Whether a request may be answered: standing consent, --yes, or the member saying so at the terminal."""
    consented = r["consent"] == "standing" or yes
    if not consented and sys.stdin.isatty():
        consented = typer.confirm(f"{r['asker']} asks which of its {r['asked']} {kind} values you hold; answer?")
    if not consented:
        err.print(f"request {r['id']} from {r['asker']} needs your consent: "
                  f"`tearline match serve FILE --type {kind} --id {r['id']} --yes` (or --decline)", soft_wrap=True)
    return consented


@app.command("result")
def match_result(
    request_id: Annotated[str, typer.Argument(help="the id `match request` printed")],
    as_json: Annotated[bool, typer.Option("--json")] = False,
    hub: HubOpt = None, member: MemberOpt = None, token: TokenOpt = None, state: StateOpt = None,
) -> None:
    """The values you and the other member both hold, once it has answered."""
    ctx = _open(hub, member, token, state)
    got = client.result(_hub(ctx), client.state_dir(ctx.settings.match_state), request_id)
    if as_json:
        emit(got)
        return
    if got["matches"] is None:
        out.print(f"request {request_id} is {got['status']}")
        return
    out.print(f"{len(got['matches'])} of your {got['asked']} {got['kind']} values are also held by the other member:")
    for value in got["matches"]:
        out.print(f"  {value}")
    if "answered_ask_back" in got:
        out.print(f"(answered their ask-back {got['answered_ask_back']}, so they learn the same intersection)")
