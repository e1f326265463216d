"""Peering with other hubs: what one hub's operator gives the other."""

from __future__ import annotations

from typing import Annotated

import typer

from .. import tls
from .context import out

app = typer.Typer(help="Peering with other hubs (federation).", no_args_is_help=True)


@app.command("fingerprint")
def fingerprint(certificate: Annotated[str, typer.Argument(help="a PEM certificate file")]) -> None:
    """Print a certificate's SHA-256 fingerprint, as a compact file pins it for a member of kind hub."""
    out.print(f"sha256:{tls.fingerprint_of_file(certificate)}", highlight=False)
