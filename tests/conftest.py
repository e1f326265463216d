"""Shared fixtures: a real store on a SQLite file or on PostgreSQL, the demo compact, and the hub
running under uvicorn on 127.0.0.1."""

from __future__ import annotations

import dataclasses
import os
import socket
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from sqlalchemy import create_engine, text

from tearline import compact
from tearline.config import Settings
from tearline.keys import HubKeys
from tearline.store import Store
from tearline.web.app import create_app

TAXII = "application/taxii+json;version=2.1"
PG_URL = os.environ.get("TEARLINE_TEST_PG") or None
_TEMPLATE = "tearline_template"


def _backends() -> list[Any]:
    marks = []
    if PG_URL is None and os.environ.get("CI"):
        raise RuntimeError("TEARLINE_TEST_PG is not set: run the suite through scripts/test, which starts PostgreSQL")
    if PG_URL is None:
        marks = [pytest.mark.skip(reason="no PostgreSQL (TEARLINE_TEST_PG unset); scripts/test starts one")]
    return ["sqlite", pytest.param("postgresql", marks=marks)]


@pytest.fixture(scope="session")
def pg_template() -> str | None:
    if PG_URL is None:
        return None
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"DROP DATABASE IF EXISTS {_TEMPLATE} WITH (FORCE)"))
        conn.execute(text(f"CREATE DATABASE {_TEMPLATE}"))
    url = PG_URL.rsplit("/", 1)[0] + f"/{_TEMPLATE}"
    store = Store(url)
    store.migrate()
    store.close()
    admin.dispose()
    return url


@pytest.fixture(params=_backends())
def db_url(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'hub.db'}"
        return
    request.getfixturevalue("pg_template")
    assert PG_URL is not None
    name = f"tl_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"CREATE DATABASE {name} TEMPLATE {_TEMPLATE}"))
    yield PG_URL.rsplit("/", 1)[0] + f"/{name}"
    with admin.connect() as conn:
        conn.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
    admin.dispose()


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    s = Store(db_url)
    s.migrate()
    yield s
    s.close()


@pytest.fixture
def keys() -> HubKeys:
    return HubKeys(os.urandom(32))


@pytest.fixture
def demo_spec() -> compact.CompactSpec:
    text_ = resources.files("tearline.data").joinpath("demo-compact.yaml").read_text()
    spec = compact.parse(text_, "demo-compact.yaml")
    # tests (hypothesis above all) send requests far faster than people; the limits have their own tests
    fast = tuple((kind, 1_000_000) for kind, _ in spec.members[0].rate_limits)
    return dataclasses.replace(spec, members=tuple(dataclasses.replace(m, rate_limits=fast) for m in spec.members))


@pytest.fixture
def tokens(store: Store, demo_spec: compact.CompactSpec) -> dict[str, str]:
    return compact.apply(store, demo_spec)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Hub:
    def __init__(self, store: Store, settings: Settings):
        if not settings.audit_key:  # keep the hub's keys out of the home directory
            keys = Path(tempfile.mkdtemp())
            settings = dataclasses.replace(settings, audit_key=str(keys / "audit.key"), leak_key=str(keys / "leak.key"))
        self.settings = settings
        self.url = f"http://127.0.0.1:{settings.port}"
        config = uvicorn.Config(create_app(settings, store), host="127.0.0.1", port=settings.port, log_level="error")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> Hub:
        self.thread.start()
        deadline = time.monotonic() + 15
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("hub did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.should_exit = True
        self.thread.join(10)


@pytest.fixture
def hub(store: Store, tokens: dict[str, str], request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[Hub]:
    overrides = getattr(request, "param", {}) or {}
    settings = Settings(db=store.url, port=free_port(), audit_key=str(tmp_path / "audit.key"),
                        leak_key=str(tmp_path / "leak.key"), **overrides)
    with Hub(store, settings) as h:
        yield h


def stored_ids(c: httpx.Client, url: str, params: dict[str, str]) -> set[str]:
    """The ids of every object ``c`` receives from a TAXII objects endpoint, page after page."""
    found: set[str] = set()
    params = dict(params)
    while True:
        body = c.get(url, params=params).json()
        found |= {o["id"] for o in body.get("objects", [])}
        if not body["more"]:
            return found
        params["next"] = body["next"]


def client(hub: Hub, member: str, token: str) -> httpx.Client:
    return httpx.Client(base_url=hub.url, auth=(member, token), headers={"Accept": TAXII}, timeout=30)


@pytest.fixture
def alice(hub: Hub, tokens: dict[str, str]) -> Iterator[httpx.Client]:
    with client(hub, "state-a", tokens["state-a"]) as c:
        yield c


@pytest.fixture
def ngo(hub: Hub, tokens: dict[str, str]) -> Iterator[httpx.Client]:
    with client(hub, "ngo-c", tokens["ngo-c"]) as c:
        yield c
