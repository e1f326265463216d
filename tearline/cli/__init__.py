"""The ``tearline`` command: parse → call → print.

Commands only call the package and print what comes back; they never catch its errors. A
``TearlineError`` raised anywhere below the root group (a command, a sub-group's command, an option's
callback) becomes one line on stderr and an exit code in ``_Commands.invoke`` (the root group), so every
command fails the same way and none can forget to.

Each group lives in its own module, loaded when it is used: ``tearline serve`` does not load DuckDB and
the forecasting stack that ``events`` and ``forecast`` need (about 40 MB the hub would carry for nothing),
and an outside party's ``tearline warn verify`` does not load the web stack. ``--help`` loads them all.
"""

from __future__ import annotations

import importlib
from typing import Any

import typer
from typer.core import TyperGroup

from ..errors import TearlineError
from . import context

# name → (module of tearline.cli, its Typer app), in the order --help lists them; serve and demo are
# commands, the rest groups of commands
COMMANDS = {
    "serve": ("hub", "serve_app"),
    "demo": ("demo", "app"),
    "compact": ("compact", "app"),
    "db": ("hub", "db_app"),
    "events": ("events", "app"),
    "forecast": ("forecast", "app"),
    "audit": ("audit", "app"),
    "guard": ("guard", "guard_app"),
    "leak": ("guard", "leak_app"),
    "warn": ("warn", "app"),
    "match": ("match", "app"),
    "misp": ("misp", "app"),
    "peer": ("peer", "app"),
}


class _Commands(TyperGroup):
    def list_commands(self, ctx: Any) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        if cmd_name not in COMMANDS:
            return None
        module, attr = COMMANDS[cmd_name]
        found = getattr(importlib.import_module(f"{__name__}.{module}"), attr)
        # a group of one command (db upgrade, leak trace) stays a group
        command = typer.main.get_command(found) if cmd_name in ("serve", "demo") else typer.main.get_group(found)
        command.name = cmd_name
        return command

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except TearlineError as exc:
            raise context.report(exc) from None


app = typer.Typer(cls=_Commands, help="Tearline: a scoped intelligence exchange (TAXII 2.1 hub).", no_args_is_help=True,
                  pretty_exceptions_enable=False)


@app.callback()
def _root() -> None:
    """Tearline: a scoped intelligence exchange (TAXII 2.1 hub)."""


def main() -> None:
    app()
