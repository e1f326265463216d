"""Settings: command-line flags, then ``TEARLINE_*`` environment variables, then defaults.

They are read once (``load``) and passed in; nothing in the package reads the environment itself.
``SETTINGS`` is the single table of names, defaults and help that the CLI and the README use.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .errors import ConfigError

DEFAULT_DB = "sqlite:///tearline.db"
DEFAULT_EVENTS_DB = "tearline-events.duckdb"  # what the events and forecast commands use when events_db is empty

# name, type, default, help
SETTINGS: tuple[tuple[str, type, Any, str], ...] = (
    ("db", str, DEFAULT_DB, "SQLAlchemy URL of the store (sqlite:///FILE or postgresql+psycopg://...)"),
    ("host", str, "127.0.0.1", "address the hub listens on"),
    ("port", int, 6100, "port the hub listens on"),
    ("tls_cert", str, "", "PEM certificate (chain) the hub serves HTTPS with; empty: plain HTTP (behind a proxy "
                          "that terminates TLS)"),
    ("tls_key", str, "", "the private key of tls_cert"),
    ("tls_peers", str, "", "PEM certificates of peer hubs (or the CAs that issued them): clients are asked for a "
                           "certificate, and members of kind hub must present the one their compact pins"),
    ("max_content_length", int, 10 * 1024 * 1024, "largest request body accepted, in bytes (413 above)"),
    ("page_size", int, 1000, "most objects returned by one TAXII page, whatever `limit` asks"),
    ("max_objects", int, 10_000, "most objects in one envelope (413 above, nothing judged)"),
    ("max_string", int, 262_144, "most characters in any one string of an object (the object fails above)"),
    ("max_list", int, 10_000, "most items in any one list, or properties in one dictionary, of an object"),
    ("max_failures", int, 100, "failures one status resource explains at length; the rest are listed with "
                               "short messages"),
    ("member_storage_mb", int, 1024, "most MB of object versions one member may have stored in one compact"),
    ("member_mailbox_mb", int, 256, "most MB of private-matching messages one member may have waiting"),
    ("address_per_minute", int, 600, "requests a minute from one client address that end without an "
                                     "authenticated caller (members are held to their own limits)"),
    ("anonymous_per_minute", int, 60, "of those, requests a minute from one client address that end refused"),
    ("title", str, "Tearline hub", "title shown by TAXII discovery"),
    ("contact", str, "", "contact shown by TAXII discovery"),
    ("audit_key", str, "", "file of the hub's Ed25519 audit signing key (default: next to a SQLite store, "
                           "else ./tearline-audit.key); created on first use"),
    ("audit_checkpoint_every", int, 1000, "sign a checkpoint of the audit log every this many entries"),
    ("audit_seal_seconds", int, 10, "seal the audit log (sign a tree head over every entry) at least this often "
                                    "while entries arrive, and when the hub stops"),
    ("leak_key", str, "", "file of the secret key of leak fingerprints (default: next to a SQLite store, else "
                          "in ~/.tearline); created on first use"),
    ("guard_scan_seconds", int, 30, "how often the hub scans its audit trail for probing"),
    ("peer_sync_seconds", int, 60, "how often the hub pulls from and pushes to its peer hubs (tearline peer add); "
                                   "0: only when `tearline peer sync` is run"),
    ("admin_token", str, "", "bearer token of the operator's admin API (/tearline/admin/); empty: no admin API"),
    ("events_db", str, "", "DuckDB events store: the one the events and forecast commands use (empty: "
                           f"{DEFAULT_EVENTS_DB}) and whose current forecasts the dashboard shows (empty: none)"),
    ("warn_outbox", str, "", "directory where escalation notices of unacknowledged warnings are written as .eml "
                             "files for the operator's mail relay (default: next to a SQLite store, else in "
                             "~/.tearline)"),
    # a member's side: what `tearline match` and `tearline misp` talk to and as whom
    ("hub", str, "http://127.0.0.1:6100", "URL of the hub a member's matching and MISP commands talk to"),
    ("member", str, "", "your member name, for private matching and the MISP bridge"),
    ("token", str, "", "your member token, for private matching and the MISP bridge"),
    ("match_state", str, "", "directory where your matching keys and values stay (default: ~/.tearline/match)"),
)


@dataclasses.dataclass(frozen=True)
class Settings:
    db: str = DEFAULT_DB
    host: str = "127.0.0.1"
    port: int = 6100
    tls_cert: str = ""
    tls_key: str = ""
    tls_peers: str = ""
    max_content_length: int = 10 * 1024 * 1024
    page_size: int = 1000
    max_objects: int = 10_000
    max_string: int = 262_144
    max_list: int = 10_000
    max_failures: int = 100
    member_storage_mb: int = 1024
    member_mailbox_mb: int = 256
    address_per_minute: int = 600
    anonymous_per_minute: int = 60
    title: str = "Tearline hub"
    contact: str = ""
    audit_key: str = ""
    audit_checkpoint_every: int = 1000
    audit_seal_seconds: int = 10
    leak_key: str = ""
    guard_scan_seconds: int = 30
    peer_sync_seconds: int = 60
    admin_token: str = dataclasses.field(default="", repr=False)  # secrets stay out of reprs and logs
    events_db: str = ""
    warn_outbox: str = ""
    hub: str = "http://127.0.0.1:6100"
    member: str = ""
    token: str = dataclasses.field(default="", repr=False)
    match_state: str = ""


def secret_path(setting: str, db_url: str, name: str) -> Path:
    """Where a hub secret (the audit signing key, the leak key) lives: the configured file, else next
    to a SQLite store, else one per database under ~/.tearline."""
    # where keys have always lived
    if not setting and not (db_url.startswith("sqlite:///") and ":memory:" not in db_url):
        return Path.home() / ".tearline" / f"{name}-{hashlib.sha256(db_url.encode()).hexdigest()[:12]}.key"
    return hub_path(setting, db_url, f"{name}-key")


def hub_path(setting: str, db_url: str, name: str) -> Path:
    """A file or directory of the hub's own (a key, the warnings outbox): the configured one, else
    next to a SQLite store, else one per database under ~/.tearline."""
    if setting:
        return Path(setting)
    if db_url.startswith("sqlite:///") and ":memory:" not in db_url:
        return Path(db_url.removeprefix("sqlite:///") + f".{name}")
    return Path.home() / ".tearline" / f"{name}-{hashlib.sha256(db_url.encode()).hexdigest()[:12]}"


def create_secret(path: Path, data: bytes) -> None:
    """Write a new secret file readable by its owner only; never overwrite one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(data)


def load(flags: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None) -> Settings:
    """Flags that are not None win, then TEARLINE_<NAME>, then the defaults."""
    flags = flags or {}
    environ = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    for name, kind, default, _help in SETTINGS:
        raw: Any = flags.get(name)
        source = f"--{name.replace('_', '-')}"
        if raw is None and f"TEARLINE_{name.upper()}" in environ:
            raw = environ[f"TEARLINE_{name.upper()}"]
            source = f"TEARLINE_{name.upper()}"
        if raw is None:
            values[name] = default
            continue
        try:
            values[name] = kind(raw)
        except (TypeError, ValueError):
            raise ConfigError(f"{source}: expected {kind.__name__}, got {raw!r}", details={"setting": name}) from None
        if kind is int and values[name] <= 0 and name != "port":
            raise ConfigError(f"{source}: must be positive, got {raw!r}", details={"setting": name})
    return Settings(**values)


# prometheus-client adds up the metrics of several processes through files in this directory
METRICS_DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"


def hand_down(settings: Settings, metrics_dir: str) -> None:
    """Make ``settings`` the TEARLINE_* environment of processes started from this one (``serve --workers``:
    each worker then reads exactly what this command resolved), with the directory their metrics share."""
    for name, value in dataclasses.asdict(settings).items():
        os.environ[f"TEARLINE_{name.upper()}"] = str(value)
    os.environ[METRICS_DIR_ENV] = metrics_dir


def metrics_dir() -> str | None:
    """The directory of the metrics shared with sibling workers, when this process is one."""
    return os.environ.get(METRICS_DIR_ENV) or None
