"""``tearline misp``: a member's MISP events into a compact, and what the member may read back out as MISP
events. It runs on the member's machine and talks TAXII to the hub, so its settings are the member's."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated

import typer

from .. import compact, misp
from ..errors import BadRequest, ConfigError
from ..taxii.client import Collection
from . import context
from .context import emit, err, out

app = typer.Typer(help="MISP events in and out of a compact (misp-stix, MISP's own converter).",
                  no_args_is_help=True)

CompactOpt = Annotated[str, typer.Option("--compact", help="the compact (its TAXII API root)")]
HubOpt = Annotated[str | None, typer.Option("--hub", help="hub URL (TEARLINE_HUB, else http://127.0.0.1:6100)")]
MemberOpt = Annotated[str | None, typer.Option("--member", help="your member name (TEARLINE_MEMBER)")]
TokenOpt = Annotated[str | None, typer.Option("--token", help="your token (TEARLINE_TOKEN)")]


def _intel(name: str, hub: str | None, member: str | None, token: str | None) -> Collection:
    settings = context.open(hub=hub, member=member, token=token).settings
    if not settings.member or not settings.token:
        raise ConfigError("--member and --token (or TEARLINE_MEMBER and TEARLINE_TOKEN) are required")
    return Collection(settings.hub, name, "intel", settings.member, settings.token)


@app.command("push")
def misp_push(
    files: Annotated[list[Path], typer.Argument(help="MISP event JSON as MISP exports it (one event or several)")],
    compact_name: CompactOpt,
    hub: HubOpt = None, member: MemberOpt = None, token: TokenOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="one JSON line per event")] = False,
) -> None:
    """Convert MISP events to STIX and post them to the compact's intel collection. Every event is checked
    first; when one cannot go, none is posted."""
    where = _intel(compact_name, hub, member, token)
    events = [(f, e) for f in files for e in misp.read_events(f)]
    with where.client() as http:
        actors = [o for o in where.objects(http, {"match[type]": "threat-actor"}) if compact.is_actor_object(o)]
        if not actors:
            raise ConfigError(f"compact {compact_name!r} shows you no actor of its own: is it the right compact?")
        converted, problems = [], []
        for file, event in events:
            try:
                converted.append(misp.to_stix(event, compact_name, actors))
            except BadRequest as exc:
                problems.append(f"{file}: {exc.description}")
        if problems:
            raise BadRequest(f"nothing posted; {len(problems)} of {len(events)} event(s) cannot go: "
                             + " | ".join(problems), code="misp_refused")
        refused = 0
        for c in converted:
            status = where.post(http, c.objects)
            failures = status.get("failures") or []
            refused += len(failures)
            if as_json:
                emit({"event": c.event, "linked_by": c.linked_by, "tlp": c.level, "objects": len(c.objects),
                      "status": status, "notes": c.notes})
                continue
            tlp = c.level.upper() if c.level else "none (the compact's default governs)"
            out.print(f"{c.event}: linked by its {c.linked_by}; TLP {tlp}; {status.get('success_count', 0)} of "
                      f"{len(c.objects)} objects accepted", soft_wrap=True, highlight=False)
            for f in failures:
                err.print(f"  refused {f.get('id')}: {f.get('message')}", soft_wrap=True, highlight=False)
            for note in c.notes[:10]:
                err.print(f"  {note}", soft_wrap=True, highlight=False)
            if len(c.notes) > 10:
                err.print(f"  … and {len(c.notes) - 10} more (--json lists them all)", highlight=False)
    if refused:
        raise typer.Exit(1)


@app.command("pull")
def misp_pull(
    compact_name: CompactOpt,
    out_dir: Annotated[Path, typer.Option("--out", help="directory for the MISP event files (made if missing)")],
    hub: HubOpt = None, member: MemberOpt = None, token: TokenOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="the counts as one JSON line")] = False,
) -> None:
    """Write what you may read in the compact's intel collection as MISP event JSON that MISP imports: the
    events that came from MISP as they were, the rest as one event, with the TLP of your copy."""
    where = _intel(compact_name, hub, member, token)
    if out_dir.exists() and not out_dir.is_dir():
        raise ConfigError(f"--out {out_dir}: not a directory")
    with where.client() as http:
        objs = list(where.objects(http))
        held = {o["id"] for o in objs}
        # the TLP definitions a page names are fetched by id when not on it
        for ref in sorted({r for o in objs for r in misp.marking_refs(o)} - held):
            found = where.fetch(http, ref)
            if found is not None:
                objs.append(found)
    pulled = misp.to_misp(objs, f"Tearline {compact_name}/intel as {where.member} receives it",
                          misp.event_uuid(where.hub, compact_name, where.member))
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        written = []
        for event in pulled.events:
            file = out_dir / f"{event['Event']['uuid']}.json"
            tmp = file.with_suffix(".json.part")
            tmp.write_text(json.dumps(event, indent=1))
            os.replace(tmp, file)
            written.append(str(file))
    except OSError as exc:
        raise ConfigError(f"--out {out_dir}: cannot write there ({exc.strerror or exc})") from None
    if as_json:
        emit({**pulled.counts, "files": written, "notes": pulled.notes})
        return
    out.print(f"{pulled.counts['objects']} objects read as {where.member}: {len(written)} MISP event(s) in "
              f"{out_dir} ({pulled.counts['misp_events']} that came from MISP, "
              f"{pulled.counts['incidents']} incidents as MISP incident objects)", soft_wrap=True, highlight=False)
    for note in pulled.notes[:10]:
        err.print(f"  not carried over: {note}", soft_wrap=True, highlight=False)
    if len(pulled.notes) > 10:
        err.print(f"  … and {len(pulled.notes) - 10} more (--json lists them all)", highlight=False)
