"""``tearline guard`` and ``tearline leak``: the operator's counter-intelligence, over the audit trail
(members probing for what they may not see) and over leaked copies (which member a copy came from)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from pathlib import Path
from typing import Annotated, Any

import typer

from .. import leak, probes
from ..errors import ConfigError
from . import context
from .context import DbOpt, emit, out

guard_app = typer.Typer(help="The counter-intelligence guard: probe alerts over the audit trail.", no_args_is_help=True)
leak_app = typer.Typer(help="Leak attribution: which member a leaked copy was released to.", no_args_is_help=True)


@guard_app.command("scan")
def guard_scan(db: DbOpt = None) -> None:
    """Read the audit entries since the last scan and raise alerts (the hub also does this itself)."""
    raised = probes.scan(context.open(db=db).store)
    out.print(f"{len(raised)} new alert(s)")
    for a in raised:
        out.print(f"  {a.member} ({a.api_root}): {a.rule}, {a.count} times — {a.explains}", soft_wrap=True)


def _when(at_us: int) -> str:
    return dt.datetime.fromtimestamp(at_us / 1e6, dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


@guard_app.command("alerts")
def guard_alerts(
    member: Annotated[str | None, typer.Option(help="only this member's")] = None,
    compact: Annotated[str | None, typer.Option(help="only this compact's")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the alerts as one JSON list")] = False,
    db: DbOpt = None,
) -> None:
    """Probe alerts, newest first, with the audit entries that are their evidence."""
    store = context.open(db=db).store
    probes.scan(store)
    context.listing(probes.stored_alerts(store, member, compact), as_json, "probe alerts",
                    ("when", "compact", "member", "rule", "count", "score", "why", "audit entries"),
                    lambda a: (_when(a["at_us"]), a["api_root"] or "", a["member"], a["rule"], str(a["count"]),
                               str(a["score"]), a["explains"], f"{a['first_seq']}..{a['last_seq']}"))


@leak_app.command("trace")
def leak_trace(
    file: Annotated[Path, typer.Argument(help="a leaked STIX bundle, envelope or object (JSON), or pasted text")],
    as_json: Annotated[bool, typer.Option("--json", help="print the verdict and every member's score as JSON")] = False,
    leak_key: Annotated[str | None, typer.Option(help="the hub's leak key file")] = None,
    db: DbOpt = None,
) -> None:
    """Name the member a leaked copy was released to, only if the copy leaves no reasonable doubt; every
    other member is listed as not matching."""
    ctx = context.open(db=db, leak_key=leak_key)
    path = leak.key_path(ctx.settings.leak_key, ctx.settings.db)
    if not path.exists():
        raise ConfigError(f"no leak key at {path}: trace with the key of the hub that released the copy (--leak-key)")
    try:
        raw = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{file}: cannot read it as UTF-8 text ({exc})") from None
    try:
        doc: Any = json.loads(raw)
    except ValueError:
        doc = raw  # pasted text, not JSON
    texts = leak.texts_of(doc)
    candidates = list(dict.fromkeys((m.api_root, m.name) for m in ctx.store.all_members()))
    ranked, verdict = leak.trace(leak.load_or_create_key(path), texts, candidates)
    rule = {"p_corrected_at_most": leak.NAME_P, "agreeing_share_at_least": leak.NAME_SHARE,
            "correction": "Šidák", "members_tested": len(candidates),
            "fewest_gaps_that_can_name": leak.min_gaps(len(candidates)) if candidates else None}
    if as_json:
        named = [{"api_root": m.api_root, "member": m.member} for m in ranked if m.verdict == leak.NAMED]
        emit({"verdict": verdict, "threshold": rule, "named": named,
              "ranking": [dataclasses.asdict(m) for m in ranked]})
        return
    out.print(verdict, soft_wrap=True)
    if not ranked:
        return
    out.print(f"  a member is named at a Šidák-corrected p ≤ {leak.NAME_P:.0e} over {len(candidates)} members "
              f"with ≥ {leak.NAME_SHARE:.0%} of the gaps agreeing", soft_wrap=True)
    for m in ranked:
        if m.verdict == leak.NAMED:
            out.print(f"  named: {m.member} ({m.api_root}), {m.agreeing}/{m.gaps} gaps agree, "
                      f"corrected p {leak.show_p(m.p_corrected)}", soft_wrap=True)
    # no numbers beside the others: an agreement figure next to a name reads as a degree of suspicion
    others = [f"{m.member} ({m.api_root})" for m in ranked if m.verdict != leak.NAMED]
    if others:
        out.print(f"  not matching: {', '.join(others)}", soft_wrap=True)
