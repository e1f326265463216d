"""Running the hub (``serve``) and keeping its database current (``db upgrade``)."""

from __future__ import annotations

import gc
import os
import socket
from typing import Annotated, Any

import typer
import uvicorn

from .. import config, tls
from ..errors import ConfigError
from ..web.app import create_app
from . import context
from .context import DbOpt, err, out

serve_app = typer.Typer(add_completion=False)
SealOpt = Annotated[int | None, typer.Option(help="seal the audit log at least this often while entries arrive "
                                                  "(TEARLINE_AUDIT_SEAL_SECONDS, 10)")]
db_app = typer.Typer(help="The hub's database.", no_args_is_help=True)


@serve_app.command()
def serve(
    db: DbOpt = None,
    host: Annotated[str | None, typer.Option(help="address to listen on (TEARLINE_HOST, 127.0.0.1)")] = None,
    port: Annotated[int | None, typer.Option(help="port (TEARLINE_PORT, 6100)")] = None,
    max_content_length: Annotated[int | None, typer.Option(help="largest request body in bytes")] = None,
    tls_cert: Annotated[str | None, typer.Option(
        help="serve HTTPS with this PEM certificate (TEARLINE_TLS_CERT; none: plain HTTP)")] = None,
    tls_key: Annotated[str | None, typer.Option(help="the certificate's private key (TEARLINE_TLS_KEY)")] = None,
    tls_peers: Annotated[str | None, typer.Option(
        help="PEM certificates of peer hubs or their CAs; members of kind hub must present the certificate "
             "their compact pins (TEARLINE_TLS_PEERS)")] = None,
    audit_seal_seconds: SealOpt = None,
    audit_checkpoint_every: Annotated[int | None, typer.Option(
        help="sign a checkpoint every this many audit entries (TEARLINE_AUDIT_CHECKPOINT_EVERY, 1000)")] = None,
    guard_scan_seconds: Annotated[int | None, typer.Option(
        help="scan the audit trail for probing this often (TEARLINE_GUARD_SCAN_SECONDS, 30)")] = None,
    admin_token: Annotated[str | None, typer.Option(
        help="bearer token of the operator's admin API and pages (TEARLINE_ADMIN_TOKEN; none: no admin API)")] = None,
    workers: Annotated[int, typer.Option(
        help="hub processes on this port (PostgreSQL store only; 1 on SQLite)", min=1, max=64)] = 1,
) -> None:
    """Run the hub (TAXII 2.1 under /taxii2/)."""
    run(context.open(create=True, db=db, host=host, port=port, max_content_length=max_content_length,
                     tls_cert=tls_cert, tls_key=tls_key, tls_peers=tls_peers,
                     audit_seal_seconds=audit_seal_seconds, audit_checkpoint_every=audit_checkpoint_every,
                     guard_scan_seconds=guard_scan_seconds, admin_token=admin_token), workers)


def shown(url: str) -> str:
    """A store URL as it may be printed: without its password."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # not a URL SQLAlchemy reads: the store would have refused it already
        return url


def free(host: str, port: int) -> None:
    """ConfigError when the address cannot be listened on, said before the hub says it is up."""
    try:
        with socket.create_server((host, port), reuse_port=False):
            pass
    except OSError as exc:
        reason = os.strerror(exc.errno) if exc.errno else str(exc)
        raise ConfigError(f"cannot listen on {host}:{port} ({reason}): another hub or program may hold it; choose "
                          "another with --port (TEARLINE_PORT)") from None


def run(ctx: context.Ctx, workers: int = 1) -> None:
    """Serve the hub of ``ctx`` until it is stopped, in ``workers`` processes."""
    settings = ctx.settings
    if workers > 1 and not ctx.settings.db.startswith("postgresql"):
        raise ConfigError(f"--workers {workers}: several hub processes need a PostgreSQL store (--db "
                          "postgresql+psycopg://…); SQLite is one process's, so run it with --workers 1")
    secure = tls.server_options(settings.tls_cert, settings.tls_key, settings.tls_peers)
    free(settings.host, settings.port)
    if workers > 1:
        _run_workers(ctx, workers, secure)
        return
    application = create_app(settings, ctx.store)
    # What is alive now (modules, the app, the engine) lives as long as the hub: frozen, the cyclic
    # collector stops walking it on every pass. A higher first threshold lets an envelope's thousand
    # freshly parsed objects be freed by reference counting before a collection looks at them. On the
    # benchmark's feed the collector's time per object written fell from 13-21 µs to nothing.
    gc.freeze()
    gc.set_threshold(20_000, 20, 20)
    err.print(f"Tearline hub on {'https' if secure else 'http'}://{settings.host}:{settings.port}/taxii2/  "
              f"(store: {shown(settings.db)})", soft_wrap=True)
    uvicorn.run(application, host=settings.host, port=settings.port, log_level="warning", **secure)


def _run_workers(ctx: context.Ctx, workers: int, secure: dict[str, Any]) -> None:
    """uvicorn's workers, each building the hub from the settings this command resolved (handed down as
    TEARLINE_* variables, so flags and environment mean in every worker what they meant here), with their
    metrics added up in a directory of their own."""
    import tempfile

    from .. import audit, keys, write

    settings = ctx.settings
    # once, here, rather than in N workers at once (two creating one key file would collide)
    ctx.store.migrate()
    hub_keys = keys.load(settings)
    audit.AuditLog(ctx.store, audit.key_path(settings.audit_key, settings.db)).signer()
    write.upkeep(ctx.store, hub_keys)  # what a migration left for the hub, done once before the workers race to it
    with tempfile.TemporaryDirectory(prefix="tearline-metrics-") as metrics_dir:
        config.hand_down(settings, metrics_dir)
        err.print(f"Tearline hub on {'https' if secure else 'http'}://{settings.host}:{settings.port}/taxii2/  "
                  f"(store: {shown(settings.db)}, {workers} processes)", soft_wrap=True)
        uvicorn.run("tearline.web.app:from_environment", factory=True, host=settings.host, port=settings.port,
                    workers=workers, log_level="warning", **secure)


@db_app.command("upgrade")
def db_upgrade(db: DbOpt = None) -> None:
    """Create or migrate the store's schema to the newest revision."""
    ctx = context.open(create=True, db=db)
    ctx.admin("db upgrade", None, {})
    out.print(f"store {ctx.settings.db}: schema up to date")
