"""``tearline warn``: the duty to warn, step by step, and ``warn party``, the outside parties it can reach.

Every step the operator takes is audited, and so is every step refused (a second approval by the
author, say): the refusal is as much part of the record as the step. An outside party's commands
(``verify``, ``keygen``, ``reply``) run on its own machine and need no hub.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer

from .. import config, warn
from ..errors import BadRequest, TearlineError
from . import context
from .context import DbOpt, emit, err, out

app = typer.Typer(help="Duty to warn: draft, approve (or waive), deliver and follow warnings.", no_args_is_help=True)
party_app = typer.Typer(help="Outside parties warnings can be addressed to.", no_args_is_help=True)
app.add_typer(party_app, name="party")

ByOpt = Annotated[str, typer.Option("--by", help="the person taking this step (recorded; approval needs a second "
                                                 "person)")]
JsonOpt = Annotated[bool, typer.Option("--json")]
WarningArg = Annotated[str, typer.Argument(help="the warning's id")]
OutDirOpt = Annotated[Path | None, typer.Option("--out", help="where an outside party's signed document is written "
                                                                 "(JSON and HTML; default: the current directory)")]


def _show(w: dict[str, Any], as_json: bool) -> None:
    if as_json:
        emit(w)
        return
    ext = next(iter(w["report"]["extensions"].values()))
    out.print(f"warning {w['id']} to {w['addressee']}{' (outside party)' if w['outside'] else ''}: "
              f"[bold]{w['state']}[/bold]", soft_wrap=True)
    out.print(f"  target {ext['target']}, window {ext['window_start']} to {ext['window_end']}, "
              f"confidence {w['report']['confidence']}", soft_wrap=True)
    for e in w["history"]:
        out.print(f"  {e['at'][:19]} {e['by']}: {e['action']} ({e['from'] or '-'} → {e['to']}) {e['note']}",
                  soft_wrap=True)


def _step(ctx: context.Ctx, action: str, compact: str | None, detail: dict[str, Any],
          fn: Callable[..., Any], *args: Any) -> Any:
    """One duty-to-warn step, audited whether it is taken or refused."""
    try:
        done = fn(*args)
    except TearlineError as exc:
        ctx.admin(f"warn {action}", compact, detail, refused=exc)
        raise
    ctx.admin(f"warn {action}", compact or (done.get("compact") if isinstance(done, dict) else None), detail)
    return done


@app.command("draft")
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
    from_report: Annotated[str | None, typer.Option(
        "--from-report", help="take the text from this report's description, at the addressee's tear line")] = None,
    outside: Annotated[bool, typer.Option("--outside", help="the threatened party is not a member")] = False,
    province: Annotated[str | None, typer.Option()] = None,
    city: Annotated[str | None, typer.Option()] = None,
    place_type: Annotated[str | None, typer.Option(help="e.g. religious gathering, concert hall")] = None,
    as_json: JsonOpt = False,
    db: DbOpt = None,
) -> None:
    """Draft a warning (it still needs a second person's approval)."""
    ctx = context.open(db=db)
    target = {"country": country, "province": province, "city": city, "place_type": place_type}
    w = _step(ctx, "draft", compact, {"by": by, "to": to, "source": from_report}, warn.draft, ctx.store,
              compact, by, to, outside, target, (window_start, window_end), confidence, ask, text, from_report)
    _show(w, as_json)


def _move(action: str, warning: str, by: str, note: str, as_json: bool, db: str | None,
          out_dir: Path | None = None) -> None:
    ctx = context.open(db=db)
    w = _step(ctx, action, None, {"warning": warning, "by": by, "note": note}, warn.move, ctx.store,
              warning, action, by, note, None, ctx.audit_log)
    if w["document"]:
        _write_document(w["document"], out_dir or Path("."))
    _show(w, as_json)


def _write_document(doc: dict[str, Any], out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = out_dir / f"warning-{doc['warning']['id']}"
    stem.with_suffix(".json").write_bytes(orjson.dumps(doc, option=orjson.OPT_INDENT_2))
    stem.with_suffix(".html").write_text(warn.render_html(doc), encoding="utf-8")
    err.print(f"signed document for {doc['warning']['to']}: {stem}.json and {stem}.html "
              f"(hub key {doc['signature']['key_id']}; they verify it with `tearline warn verify`)", soft_wrap=True)


@app.command("approve")
def warn_approve(warning: WarningArg, by: ByOpt, as_json: JsonOpt = False, db: DbOpt = None) -> None:
    """Approve a draft (not by its author)."""
    _move("approve", warning, by, "", as_json, db)


@app.command("waive")
def warn_waive(warning: WarningArg, by: ByOpt,
               reason: Annotated[str, typer.Option(help="sources-and-methods, violent-actor, armed-conflict, "
                                                        "already-knows or no-way-to-warn")],
               why: Annotated[str, typer.Option(help="the justification, for the record and for review")],
               as_json: JsonOpt = False, db: DbOpt = None) -> None:
    """Decide not to warn, with a reason code and a justification (not by the author)."""
    _move("waive", warning, by, f"{reason}: {why}", as_json, db)


@app.command("review")
def warn_review(warning: WarningArg, by: ByOpt,
                decision: Annotated[str, typer.Option(help="uphold (it stays waived) or overturn (a draft again)")],
                why: Annotated[str, typer.Option(help="the reason, for the record")],
                as_json: JsonOpt = False, db: DbOpt = None) -> None:
    """Review a waiver: by someone who neither wrote the warning nor waived it."""
    if decision not in ("uphold", "overturn"):
        raise BadRequest(f"--decision: uphold or overturn, got {decision!r}")
    _move(decision, warning, by, why, as_json, db)


@app.command("deliver")
def warn_deliver(warning: WarningArg, by: ByOpt, out_dir: OutDirOpt = None,
                 as_json: JsonOpt = False, db: DbOpt = None) -> None:
    """Deliver an approved warning: to a member, into the compact's warnings collection for it alone;
    to an outside party, as a signed document (JSON and HTML) to hand over."""
    _move("deliver", warning, by, "", as_json, db, out_dir)


@app.command("acknowledge")
def warn_acknowledge(warning: WarningArg, by: ByOpt, as_json: JsonOpt = False, db: DbOpt = None) -> None:
    """Record a member addressee's acknowledgement (an outside party's comes as a signed reply: `warn ack`)."""
    _move("acknowledge", warning, by, "", as_json, db)


@app.command("export")
def warn_export(warning: WarningArg, out_dir: OutDirOpt = None, db: DbOpt = None) -> None:
    """Write again the signed document delivered to an outside party (the same bytes it received)."""
    w = warn.show(context.open(db=db).store, warning)
    if not w["document"]:
        raise BadRequest(f"warning {warning} has no signed document: it is {w['state']}"
                         f"{'' if w['outside'] else ' and addressed to a member'}")
    _write_document(w["document"], out_dir or Path("."))


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise BadRequest(f"{path}: cannot read it ({exc.strerror})") from None


@app.command("verify")
def warn_verify(
    file: Annotated[Path, typer.Argument(help="the warning document, .json or .html")],
    public_key: Annotated[list[str], typer.Option("--public-key", help="the hub's published public key (hex), as "
                                                                      "`tearline audit key` prints it; repeatable")],
    as_json: JsonOpt = False,
) -> None:
    """Check, offline, that a warning document comes from the hub whose key you hold and is unchanged."""
    facts = warn.verify_document(warn.read_document(_read(file), str(file)), public_key)
    if as_json:
        emit(facts)
        return
    out.print(f"[green]authentic[/green]: warning {facts['id']} to {facts['to']}, issued {facts['issued']}, "
              f"signed by hub key {facts['key_id']}", soft_wrap=True)


@app.command("keygen")
def warn_keygen(out_file: Annotated[Path, typer.Option("--out", help="where to write the private key (PEM)")]) -> None:
    """Make an outside party's signing key; give the printed public key to the hub operator."""
    pem, public = warn.new_party_key()
    try:
        config.create_secret(out_file, pem)
    except FileExistsError:
        raise BadRequest(f"{out_file} exists; a key is never overwritten") from None
    sys.stdout.write(public + "\n")


@app.command("reply")
def warn_reply(
    file: Annotated[Path, typer.Argument(help="the warning document you received, .json or .html")],
    key: Annotated[Path, typer.Option(help="your private key (from `tearline warn keygen`)")],
    by: Annotated[str, typer.Option(help="who acknowledges")],
    out_file: Annotated[Path, typer.Option("--out", help="the reply file to return to the hub")],
    note: Annotated[str, typer.Option(help="anything to add, e.g. measures taken")] = "",
    public_key: Annotated[list[str] | None, typer.Option(
        "--public-key", help="the hub's public key: the document is verified before you sign for it")] = None,
) -> None:
    """(For an outside party.) Acknowledge a warning with a reply signed by your key."""
    doc = warn.read_document(_read(file), str(file))
    if public_key:
        warn.verify_document(doc, public_key)
    reply = warn.make_reply(doc, _read(key), by, note)
    out_file.write_bytes(orjson.dumps(reply, option=orjson.OPT_INDENT_2))
    out.print(f"reply for warning {reply['warning']} written to {out_file}", soft_wrap=True)


@app.command("ack")
def warn_ack(file: Annotated[Path, typer.Argument(help="the outside party's signed reply")],
             as_json: JsonOpt = False, db: DbOpt = None) -> None:
    """Record an outside party's signed acknowledgement."""
    ctx = context.open(db=db)
    store = ctx.store
    reply = warn.read_document(_read(file), str(file))
    w = _step(ctx, "ack", None, {"warning": reply.get("warning"), "file": str(file)}, warn.record_reply, store, reply)
    _show(w, as_json)


@app.command("escalate")
def warn_escalate(db: DbOpt = None, as_json: JsonOpt = False) -> None:
    """Send unacknowledged warnings to the addressee's next contact (the hub also does this by itself)."""
    ctx = context.open(db=db)
    sent = warn.escalate(ctx.store, config.hub_path(ctx.settings.warn_outbox, ctx.settings.db, "outbox"))
    for item in sent:
        ctx.admin("warn escalate", None, item)
    if as_json:
        emit(sent)
        return
    for item in sent:
        out.print(f"warning {item['warning']}: sent to {item['contact']} ({item['file']})", soft_wrap=True)
    if not sent:
        out.print("nothing to escalate")


@party_app.command("add")
def warn_party_add(
    name: Annotated[str, typer.Argument(help="the outside party, e.g. 'Ministry of Interior of X'")],
    public_key: Annotated[str, typer.Option(help="its Ed25519 public key, hex (from `tearline warn keygen`)")],
    tlp_max: Annotated[str, typer.Option(
        help="parts of a report marked above this stay below its tear line")] = "amber",
    contact: Annotated[list[str] | None, typer.Option(help="whom to tell, in order, when it does not acknowledge; "
                                                               "repeatable")] = None,
    db: DbOpt = None,
) -> None:
    """Register (or update) an outside party that warnings can be addressed to."""
    ctx = context.open(db=db)
    party = _step(ctx, "party add", None, {"party": name}, warn.add_party, ctx.store, name, public_key,
                  tlp_max.lower(), tuple(contact or ()))
    out.print(f"outside party {party['name']}: key {party['public_key'][:16]}…, TLP up to {party['tlp_max']}, "
              f"{len(party['contacts'])} contact(s)", soft_wrap=True)


@party_app.command("list")
def warn_party_list(db: DbOpt = None, as_json: JsonOpt = False) -> None:
    """The registered outside parties."""
    context.listing(warn.parties(context.open(db=db).store), as_json, "outside parties",
                    ("name", "public key", "TLP up to", "contacts"),
                    lambda p: (p["name"], p["public_key"], p["tlp_max"], "; ".join(p["contacts"])))


@app.command("status")
def warn_status(warning: WarningArg, as_json: JsonOpt = False, db: DbOpt = None) -> None:
    """A warning's state and its whole history."""
    _show(warn.show(context.open(db=db).store, warning), as_json)


@app.command("list")
def warn_list(compact: Annotated[str | None, typer.Option()] = None,
              state: Annotated[str | None, typer.Option(
                  help="only warnings in this state (e.g. waived, to review)")] = None,
              as_json: JsonOpt = False, db: DbOpt = None) -> None:
    """Every warning, oldest first."""
    context.listing(warn.list_(context.open(db=db).store, compact, state), as_json, "warnings",
                    ("id", "compact", "to", "state", "window ends", "author"),
                    lambda w: (w["id"], w["compact"], w["addressee"], w["state"], w["window_end"], w["author"]))
