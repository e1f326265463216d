"""What every command shares: the settings of one run, the store opened only when a command needs it,
and the one way things are written to the terminal.

Settings are read once per command (``open``), so a flag, its ``TEARLINE_*`` variable and its default
are resolved in tearline.config and nowhere else. The store is opened lazily: a command that fails on
its arguments should not first migrate a database.
"""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from .. import audit, config, keys, write
from ..errors import ConfigError, TearlineError
from ..store import Store

err = Console(stderr=True)
out = Console()

DbOpt = Annotated[str | None, typer.Option("--db", help="store URL (default: TEARLINE_DB, else sqlite:///tearline.db)")]


class Ctx:
    """The settings of one command, and the hub's store and audit log opened on first use. Only the commands
    that make a store (``create``: serve, demo, db upgrade, compact apply) create a SQLite file that is not
    there; every other one says where it looked."""

    def __init__(self, settings: config.Settings, create: bool = False):
        self.settings = settings
        self.create = create

    @functools.cached_property
    def store(self) -> Store:
        url = self.settings.db
        try:
            shown = make_url(url).render_as_string(hide_password=True)
        except (ArgumentError, ValueError):
            raise ConfigError(f"--db {url!r} is not a store URL (sqlite:///FILE or postgresql+psycopg://…)") from None
        file = make_url(url).database if url.startswith("sqlite") else None
        if url.startswith("sqlite") and not file:
            raise ConfigError(f"--db {url!r} names no file (sqlite:///FILE)")
        if not self.create and file and file != ":memory:" and not Path(file).exists():
            raise ConfigError(f"no store at {file} (--db or TEARLINE_DB; the demo's is sqlite:///tearline-demo.db): "
                              "`tearline compact apply FILE` or `tearline db upgrade` makes one")
        try:
            store = Store(url)
            store.migrate()
            if store.upkeep_due("release"):
                write.upkeep(store, keys.load(self.settings))
        except (SQLAlchemyError, OSError) as exc:
            reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
            raise ConfigError(f"cannot open the store {shown}: {reason}") from None
        return store

    @functools.cached_property
    def audit_log(self) -> audit.AuditLog:
        return audit.AuditLog(self.store, audit.key_path(self.settings.audit_key, self.settings.db),
                              self.settings.audit_checkpoint_every)

    def admin(self, action: str, compact: str | None, detail: dict[str, Any],
              refused: TearlineError | None = None) -> None:
        """Record an admin action in the audit trail, as the operating-system user who ran it; a refused
        one with its status and reason."""
        self.audit_log.append(actor=audit.admin_actor(), api_root=compact, method="ADMIN", endpoint=action,
                              path=f"tearline {action}", query=detail, status=refused.status if refused else 200,
                              reason=refused.description if refused else "")

    @property
    def events_db(self) -> str:
        return self.settings.events_db or config.DEFAULT_EVENTS_DB

    def existing_events_db(self) -> str:
        if not Path(self.events_db).exists():
            raise ConfigError(f"--events-db: {self.events_db} does not exist; run `tearline events ingest` first")
        return self.events_db


def open(create: bool = False, **flags: Any) -> Ctx:
    """The context of a command whose flags are ``flags`` (None: not given); ``create``: the command makes a
    store where there is none."""
    return Ctx(config.load(flags), create)


def report(exc: TearlineError) -> typer.Exit:
    """Say what went wrong in one line; the exit code is 2 for the caller's mistake, 1 for the hub's."""
    # the description is text, never markup: a "[bold]" in a file name prints as it is
    err.print(f"[red]error:[/red] {escape(exc.description)}", highlight=False, markup=True, soft_wrap=True)
    return typer.Exit(2 if isinstance(exc, ConfigError) or exc.status < 500 else 1)


def emit(value: Any) -> None:
    """One JSON line on stdout, for scripts."""
    sys.stdout.write(json.dumps(value) + "\n")


def listing(found: list[dict[str, Any]], as_json: bool, title: str, columns: tuple[str, ...],
            row: Callable[[dict[str, Any]], Iterable[str]]) -> None:
    """A list command's output: the records as one JSON line, or a table of ``row(record)`` cells."""
    if as_json:
        emit(found)
        return
    table = Table(title=title)
    for col in columns:
        table.add_column(col, overflow="fold")  # at 80 columns a cell wraps, never loses its end
    for item in found:
        table.add_row(*row(item))
    out.print(table)
