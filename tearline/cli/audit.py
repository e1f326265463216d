"""``tearline audit``: the operator checks the trail and its signing key; a member checks its export offline."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from .. import audit
from ..errors import ConfigError
from . import context
from .context import DbOpt, err, out

app = typer.Typer(help="The audit trail: verify it, export a member's records, manage the signing key.",
                  no_args_is_help=True)

PublicKeyOpt = Annotated[list[str] | None, typer.Option("--public-key", help="a trusted (published) public key, hex; "
                                                         "repeat for retired keys. Default: the keys in the store")]
AuditKeyOpt = Annotated[str | None, typer.Option(help="signing key file")]


def _public_keys(values: list[str] | None) -> list[str]:
    keys = []
    for v in values or []:
        text = Path(v).read_text().strip() if Path(v).is_file() else v.strip()
        if len(text) != 64 or any(c not in "0123456789abcdefABCDEF" for c in text):
            raise ConfigError(f"--public-key {v!r}: expected 64 hex digits (a raw Ed25519 public key) "
                              "or a file of them")
        keys.append(text.lower())
    return keys


def _tampered(report: audit.Report) -> None:
    for text in report.problems:
        err.print(f"[red]tampered:[/red] {text}", soft_wrap=True)


@app.command("verify")
def audit_verify(db: DbOpt = None, public_key: PublicKeyOpt = None) -> None:
    """Check the whole chain and every signed checkpoint; exit 1 and say where on any tampering."""
    trusted = _public_keys(public_key)
    report = audit.verify(context.open(db=db).store, trusted)
    _tampered(report)
    summary = (f"{report.entries:,} entries, {report.checkpoints:,} signed checkpoints, "
               f"{report.unsigned_tail:,} entries after the last checkpoint, {report.heads:,} signed tree heads, "
               f"{report.unsealed_tail:,} entries after the last")
    if not report.intact:
        err.print(f"audit log NOT intact: {len(report.problems)} problem(s) found; {summary}")
        raise typer.Exit(1)
    out.print(f"audit log intact: {summary}" + ("" if trusted else " (signatures checked with the keys recorded in "
                                                                   "the store; pass --public-key to use the published "
                                                                   "one)"))


@app.command("checkpoint")
def audit_checkpoint(db: DbOpt = None, audit_key: AuditKeyOpt = None) -> None:
    """Sign the entries written since the last checkpoint now, and a tree head over the whole log."""
    log = context.open(db=db, audit_key=audit_key).audit_log
    cp, head = log.checkpoint(), log.seal()
    out.print(f"checkpoint at entry {cp['seq']} (from {cp['first_seq']}), key {cp['key_id']}" if cp
              else "nothing new to sign")
    if head:
        out.print(f"tree head at size {head['size']}: root {head['root']}")


@app.command("key")
def audit_key_cmd(
    rotate: Annotated[bool, typer.Option("--rotate",
                                         help="seal with the current key, retire it, make a new one")] = False,
    db: DbOpt = None, audit_key: AuditKeyOpt = None,
) -> None:
    """Print the hub's audit public keys (publish the current one); --rotate to change key."""
    ctx = context.open(db=db, audit_key=audit_key)
    if rotate:
        old, new = ctx.audit_log.rotate_key()
        ctx.admin("audit key rotate", None, {"retired": old, "new": new})
        out.print(f"retired key {old}; now signing with {new}")
    for k in ctx.audit_log.public_keys():
        state = "retired" if k["retired_us"] else "current"
        out.print(f"{k['key_id']}  {k['public_key']}  ({state})")


@app.command("export")
def audit_export(
    member: Annotated[str, typer.Option(help="the member whose records to export")],
    compact: Annotated[str, typer.Option(help="its compact")],
    out_file: Annotated[Path, typer.Option("--out", help="write the export here (JSON)")],
    db: DbOpt = None, audit_key: AuditKeyOpt = None,
) -> None:
    """A member's own audit records with proofs into signed checkpoints, verifiable offline."""
    ctx = context.open(db=db, audit_key=audit_key)
    ctx.admin("audit export", compact, {"member": member})
    doc = audit.export(ctx.audit_log, compact, member)
    out_file.write_text(json.dumps(doc, indent=1))
    out.print(f"{len(doc['entries'])} entries of {member} in {compact}, {len(doc['checkpoints'])} checkpoint(s) "
              f"→ {out_file}")


@app.command("verify-export")
def audit_verify_export(
    file: Annotated[Path, typer.Argument(help="a file written by `tearline audit export`")],
    public_key: PublicKeyOpt = None,
) -> None:
    """Check a member's export offline: every entry's hash, its proof, and the checkpoint signatures."""
    try:
        doc = json.loads(file.read_text())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{file}: cannot read it as JSON ({exc})") from None
    report = audit.verify_export(doc, _public_keys(public_key))
    _tampered(report)
    if not report.intact:
        raise typer.Exit(1)
    out.print(f"export intact: {report.entries} entries, {report.checkpoints} signed checkpoint(s)")
