"""The ``tearline`` command: parse → call → print.

Commands only call the package and print what comes back; they never catch its errors. A
``TearlineError`` raised anywhere below the root group (a command, a sub-group's command, an option's
callback) becomes one line on stderr and an exit code in ``_Commands.invoke`` (the root group), so every command fails
the same way and none can forget to. Each group lives in its own module; this one only puts them together.
"""

from __future__ import annotations

from typing import Any

import typer
from typer.core import TyperGroup

from ..errors import TearlineError
from . import audit, compact, context, events, forecast, guard, hub, match, warn


class _Commands(TyperGroup):
    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except TearlineError as exc:
            raise context.report(exc) from None


app = typer.Typer(cls=_Commands, help="Tearline: a scoped intelligence exchange (TAXII 2.1 hub).", no_args_is_help=True,
                  pretty_exceptions_enable=False)
app.command()(hub.serve)
app.command()(hub.demo)
app.add_typer(compact.app, name="compact")
app.add_typer(hub.db_app, name="db")
app.add_typer(events.app, name="events")
app.add_typer(forecast.app, name="forecast")
app.add_typer(audit.app, name="audit")
app.add_typer(guard.guard_app, name="guard")
app.add_typer(guard.leak_app, name="leak")
app.add_typer(warn.app, name="warn")
app.add_typer(match.app, name="match")


def main() -> None:
    app()
