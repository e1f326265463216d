"""``tearline compact``: the operator applies compact files and looks after members and their tokens."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from .. import compact as compacts
from ..errors import ConfigError
from ..matching.mailbox import Rules
from ..model import Policy
from . import context
from .context import DbOpt, emit, out

app = typer.Typer(help="Create, inspect and change compacts.", no_args_is_help=True)


@app.command("apply")
def compact_apply(
    file: Annotated[Path, typer.Argument(help="the compact's YAML file")],
    db: DbOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="print {compact, tokens} as one JSON object")] = False,
) -> None:
    """Create or update a compact; print each new member's token once."""
    ctx = context.open(create=True, db=db)
    spec = compacts.load(file)
    tokens = compacts.apply(ctx.store, spec)
    ctx.admin("compact apply", spec.name, {"file": str(file), "new_members": sorted(tokens)})
    if as_json:
        emit({"compact": spec.name, "tokens": tokens})
        return
    out.print(f"compact {spec.name}: applied ({len(spec.members)} members, API root /taxii2/{spec.name}/)")
    for name, token in tokens.items():
        out.print(f"  new member {name}: token {token}  (shown once; store it now)")


@app.command("show")
def compact_show(name: str, db: DbOpt = None) -> None:
    """Show a compact's members and collections."""
    ctx = context.open(db=db)
    store = ctx.store
    row = store.api_root(name)
    if row is None:
        raise ConfigError(f"no compact named {name!r} in {ctx.settings.db}")
    out.print(f"[bold]{row.title}[/bold]  /taxii2/{name}/")
    table = Table(title="collections")
    for col in ("alias", "id", "objects (versions)"):
        table.add_column(col, overflow="fold")  # at 80 columns a cell wraps, never loses its end
    for c in store.collections(name):
        table.add_row(c.alias, c.id, str(store.version_count(c.num)))
    out.print(table)
    mt = Table(title="members")
    for col in ("member", "read", "write", "tlp_max"):
        mt.add_column(col, overflow="fold")
    for m in store.compact_members(name):
        mt.add_row(m.name, str(m.can_read), str(m.can_write), m.tlp_max)
    out.print(mt)
    rules = Rules.of(Policy.loads(row.policy))
    out.print(f"matching: results to {rules.results}; {rules.min_items:,} to {rules.max_items:,} values a request; "
              f"at most {rules.requests_per_day} a day per pair and type; fpr {rules.fpr:g}")
    for answerer, asker, types in rules.standing_consent:
        out.print(f"  standing consent: {answerer} answers {asker} about {', '.join(types)}")


@app.command("rotate-token")
def compact_rotate(name: str, member: Annotated[str, typer.Argument(help="a member, or member/person")],
                   db: DbOpt = None) -> None:
    """Give a member, or one of its people (member/person), a new token; the old one stops working at once."""
    ctx = context.open(db=db)
    who, _, person = member.partition("/")
    token = ctx.store.rotate_person_token(name, who, person) if person else ctx.store.rotate_token(name, who)
    ctx.admin("compact rotate-token", name, {"member": member})
    out.print(f"{'person' if person else 'member'} {member}: new token {token}  (shown once)")


@app.command("remove-member")
def compact_remove(name: str, member: str, db: DbOpt = None) -> None:
    """Remove a member; it loses access at once (the compact file should drop it too)."""
    ctx = context.open(db=db)
    ctx.store.remove_member(name, member)
    ctx.admin("compact remove-member", name, {"member": member})
    out.print(f"member {member} removed from {name}")
