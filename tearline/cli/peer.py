"""Peering with other hubs (federation): mirroring a compact another hub hosts, and what one hub's operator
gives the other."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import typer
from rich.progress import Progress

from .. import keys, peering, tls
from .context import DbOpt, emit, err, listing, out
from .context import open as open_ctx

app = typer.Typer(help="Peering with other hubs (federation).", no_args_is_help=True)


@app.command("fingerprint")
def fingerprint(certificate: Annotated[str, typer.Argument(help="a PEM certificate file")]) -> None:
    """Print a certificate's SHA-256 fingerprint, as a compact file pins it for a member of kind hub."""
    out.print(f"sha256:{tls.fingerprint_of_file(certificate)}", highlight=False)


@app.command("add")
def add(
    name: Annotated[str, typer.Argument(help="a name for the peer on this hub")],
    compact: Annotated[str, typer.Option(help="the local compact that mirrors the peer's")],
    url: Annotated[str, typer.Option(help="the peer's TAXII collection URL (…/taxii2/ROOT/collections/ID/)")],
    member: Annotated[str, typer.Option(help="this hub's member name in the peer's compact")],
    token: Annotated[str, typer.Option(help="this hub's member token there", envvar="TEARLINE_PEER_TOKEN")],
    cert: Annotated[str, typer.Option(help="the PEM client certificate this hub presents (pinned there)")] = "",
    key: Annotated[str, typer.Option(help="its private key")] = "",
    server_ca: Annotated[str, typer.Option(
        help="PEM certificate(s) trusted for the peer, and no others (its certificate or its CA)")] = "",
    db: DbOpt = None,
) -> None:
    """Record a peer hub whose compact this hub mirrors."""
    ctx = open_ctx(db=db)
    peering.add(ctx.store, name, compact, url, member, token, cert, key, server_ca)
    err.print(f"peer {name} recorded: `tearline peer sync {name}` pulls what it releases to {member}")


@app.command("sync")
def sync(
    name: Annotated[str | None, typer.Argument(help="the peer (default: every peer)")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="one JSON line per peer")] = False,
    db: DbOpt = None,
) -> None:
    """Pull what each peer releases to this hub since the last pull (resumes a pull cut short), then push what
    this hub's members wrote in the mirror since the last push."""
    ctx = open_ctx(db=db)
    names = [name] if name else [p["name"] for p in peering.listed(ctx.store)]
    hub_keys = keys.load(ctx.settings)
    for peer in names:
        with Progress(console=err, transient=True) as bar:
            task = bar.add_task(f"pulling from {peer}", total=None)
            done = peering.sync(ctx.store, hub_keys, ctx.audit_log, peer,
                                progress=lambda n, t=task: bar.advance(t, n))
        if as_json:
            emit(done)
        else:
            out.print(f"{peer}: {done['pulled']:,} versions mirrored in {done['pages']} pages"
                      + (f", {len(done['failures'])} could not be written" if done["failures"] else "")
                      + f"; {done['pushed']:,} of this hub's sent" + (f", {done['refused']:,} refused there"
                                                                        if done["refused"] else ""))


@app.command("status")
def status(as_json: Annotated[bool, typer.Option("--json")] = False, db: DbOpt = None) -> None:
    """Each peer: where it is, what has been pulled, when the last pull was tried and succeeded, its last error."""
    ctx = open_ctx(db=db)
    found = peering.listed(ctx.store)
    now = dt.datetime.now(dt.UTC).timestamp() * 1e6

    def ago(us: int | None) -> str:
        return "never" if us is None else f"{(now - us) / 1e6:,.0f} s ago"

    listing(found, as_json, "Peers", ("peer", "mirror", "url", "pulled", "pushed (refused)", "last try",
                                      "last success", "last error"),
            lambda p: (p["name"], p["api_root"], p["url"], f"{p['pulled']:,}",
                       f"{p['pushed']:,} ({p['push_refused']:,})", ago(p["last_try_us"]), ago(p["last_ok_us"]),
                       p["last_error"] or ""))
