"""``tearline audit``: the operator checks the trail and its signing key; a member checks its export offline."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import httpx
import typer

from .. import audit, witness
from ..audit import tree
from ..errors import ConfigError, TearlineError
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
    cp = log.checkpoint()
    log.seal()
    out.print(f"checkpoint at entry {cp['seq']} (from {cp['first_seq']}), key {cp['key_id']}" if cp
              else "nothing new to sign")
    head = tree.latest_head(log.store)
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


def _hub_fetch(client: httpx.Client) -> witness.Fetch:
    def fetch(path: str, query: dict[str, object]) -> object:
        try:
            response = client.get(path, params=query)
        except httpx.HTTPError as exc:
            raise TearlineError(f"could not reach the hub at {client.base_url}: {exc}", code="witness_unreachable") \
                from None
        if response.status_code == 404 and "no_tree_head" in response.text:
            raise witness.Missing(path)
        if response.status_code != 200:
            try:
                said = response.json().get("description", "")
            except ValueError:
                said = response.text[:200]
            raise TearlineError(f"the hub answered {response.status_code} to {path}: {said}", code="witness_refused")
        try:
            return response.json()
        except ValueError:
            raise TearlineError(f"the hub's answer to {path} is not JSON", code="witness_refused") from None
    return fetch


@app.command("witness")
def audit_witness(
    hub: Annotated[str, typer.Option(help="the hub's base URL, e.g. https://hub.example:8443")],
    member: Annotated[str, typer.Option(help="your member name on the hub")],
    token: Annotated[str, typer.Option(help="your member token", envvar="TEARLINE_TOKEN")],
    state: Annotated[Path, typer.Option(help="directory where the witness keeps the heads it has seen")],
    public_key: Annotated[list[str] | None, typer.Option(
        "--public-key", help="the hub's published audit key, hex (repeat after a rotation); without one, the "
                             "first run trusts the key the hub names")] = None,
    grace_seconds: Annotated[float, typer.Option(
        min=1, help="a log that has not grown since a run this long ago is a frozen view (keep it above the hub's "
                    "--audit-seal-seconds)")] = 60.0,
) -> None:
    """Check the hub's newest signed tree head against the last one kept; exit 1 with evidence when the hub's
    log is not consistent with what it showed before (run it on a schedule)."""
    with httpx.Client(base_url=hub.rstrip("/"), auth=(member, token), timeout=60) as client:
        outcome = witness.witness(_hub_fetch(client), witness.State(state), hub, member, _public_keys(public_key),
                                  grace_seconds)
    for line in outcome.lines:
        (out if outcome.ok else err).print(line, soft_wrap=True)
    if not outcome.ok:
        err.print("check the evidence offline with `tearline audit prove-fork FILE --public-key KEY`")
        raise typer.Exit(1)


@app.command("prove-fork")
def audit_prove_fork(
    files: Annotated[list[Path], typer.Argument(
        help="an evidence file written by `tearline audit witness`; or several, and witnesses' heads.jsonl, pooled")],
    public_key: Annotated[list[str] | None, typer.Option(
        "--public-key", help="the hub's published audit key, hex (repeat for retired keys)")] = None,
) -> None:
    """Check a witness's evidence offline: exit 0 when the hub's own signatures show its log forked, shrank or
    was rewritten; 1 when they do not. Several members' heads.jsonl pooled catch a hub that showed them
    different logs."""
    pooled: dict[str, list[object]] = {"heads": [], "consistency": []}
    for file in files:
        try:
            text = file.read_text()
            docs = ([json.loads(line) for line in text.splitlines() if line.strip()] if file.suffix == ".jsonl"
                    else [json.loads(text)])
        except (OSError, ValueError) as exc:
            raise ConfigError(f"{file}: cannot read it as JSON ({exc})") from None
        for doc in docs:
            if file.suffix == ".jsonl":
                pooled["heads"].append(doc)
                continue
            if not isinstance(doc, dict) or doc.get("format") != witness.EVIDENCE_FORMAT:
                raise ConfigError(f"{file}: not a witness's evidence (format {witness.EVIDENCE_FORMAT}) nor its "
                                  "heads.jsonl")
            pooled["heads"] += doc.get("heads") or []
            said = doc.get("consistency")
            pooled["consistency"] += said if isinstance(said, list) else [] if said is None else [said]
    verdict = witness.prove_fork({"format": witness.EVIDENCE_FORMAT, **pooled}, _public_keys(public_key))
    for line in verdict.lines:
        out.print(line, soft_wrap=True)
    if not verdict.proven:
        raise typer.Exit(1)
