"""The hub serves HTTPS itself, and a member of kind hub is admitted only over a connection that presents the
TLS client certificate its compact pins, on top of its token. A throw-away CA (trustme) issues every
certificate; the hub runs as `tearline serve` on 127.0.0.1."""

from __future__ import annotations

import os
import re
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import trustme

from tearline import compact, tls
from tearline.errors import ConfigError
from tearline.store import Store
from tests.conftest import TAXII, free_port

COMPACT = """
name: fed
scope:
  actors: [{{name: Islamic State Khorasan Province}}]
expires: 2099-12-31
members:
  - {{name: analyst, write: true, tlp_max: amber}}
  - {{name: hub-b, kind: hub, write: true, tlp_max: amber, certificate: "{pin}"}}
  - {{name: pinned-tool, tlp_max: green, certificate: "{pin}"}}
"""


class Certs:
    def __init__(self, where: Path):
        self.where = where
        self.server_ca, self.peer_ca, self.stranger_ca = trustme.CA(), trustme.CA(), trustme.CA()
        self.server = self._leaf(self.server_ca, "server", "127.0.0.1")
        self.hub_b = self._leaf(self.peer_ca, "hub-b", "hub-b.example")
        self.hub_c = self._leaf(self.peer_ca, "hub-c", "hub-c.example")  # vouched for by the peers file, not pinned
        self.stranger = self._leaf(self.stranger_ca, "stranger", "hub-b.example")
        self.peers = where / "peers.pem"
        self.peer_ca.cert_pem.write_to_path(str(self.peers))
        self.server_ca_file = where / "server-ca.pem"
        self.server_ca.cert_pem.write_to_path(str(self.server_ca_file))

    def _leaf(self, ca: trustme.CA, name: str, host: str) -> tuple[Path, Path]:
        cert = ca.issue_cert(host)
        paths = (self.where / f"{name}.pem", self.where / f"{name}.key")
        cert.cert_chain_pems[0].write_to_path(str(paths[0]))
        cert.private_key_pem.write_to_path(str(paths[1]))
        return paths

    def client(self, port: int, presents: tuple[Path, Path] | None, auth: Any = None) -> httpx.Client:
        context = ssl.create_default_context(cafile=str(self.server_ca_file))
        if presents is not None:
            context.load_cert_chain(str(presents[0]), str(presents[1]))
        return httpx.Client(base_url=f"https://127.0.0.1:{port}", verify=context, auth=auth, timeout=20,
                            headers={"Accept": TAXII})


def serve(where: Path, db: str, certs: Certs) -> tuple[subprocess.Popen[str], int]:
    """`tearline serve` over HTTPS on ``db``, asking clients for certificates the peers file vouches for."""
    port = free_port()
    env = os.environ | {"TEARLINE_AUDIT_KEY": str(where / "audit.key"), "TEARLINE_LEAK_KEY": str(where / "leak.key")}
    proc = subprocess.Popen([sys.executable, "-m", "tearline", "serve", "--db", db, "--port", str(port),
                             "--tls-cert", str(certs.server[0]), "--tls-key", str(certs.server[1]),
                             "--tls-peers", str(certs.peers)], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while True:
        try:
            with certs.client(port, None) as c:
                if c.get("/tearline/health/").status_code == 200:
                    return proc, port
        except httpx.TransportError:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the hub did not start: {proc.stderr.read() if proc.stderr else ''}") from None
            time.sleep(0.2)


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    where = tmp_path_factory.mktemp("tls")
    certs = Certs(where)
    db = f"sqlite:///{where / 'hub.db'}"
    store = Store(db)
    store.migrate()
    tokens = compact.apply(store, compact.parse(COMPACT.format(pin=tls.fingerprint_of_file(certs.hub_b[0]))))
    store.close()
    proc, port = serve(where, db, certs)
    yield {"certs": certs, "port": port, "tokens": tokens}
    proc.terminate()
    proc.wait(20)


def _collections(c: httpx.Client) -> httpx.Response:
    return c.get("/taxii2/fed/collections/")


def test_a_member_with_its_token_alone_is_served_over_https(secured: dict[str, Any]) -> None:
    certs, port, tokens = secured["certs"], secured["port"], secured["tokens"]
    with certs.client(port, None, ("analyst", tokens["analyst"])) as c:
        assert _collections(c).status_code == 200
    with pytest.raises(httpx.TransportError):  # plain HTTP to the HTTPS port gets nowhere
        httpx.get(f"http://127.0.0.1:{port}/taxii2/", timeout=10)


def test_a_hub_member_is_admitted_with_its_pinned_certificate_and_token(secured: dict[str, Any]) -> None:
    certs, port, tokens = secured["certs"], secured["port"], secured["tokens"]
    with certs.client(port, certs.hub_b, ("hub-b", tokens["hub-b"])) as c:
        assert _collections(c).status_code == 200
    with certs.client(port, certs.hub_b, ("hub-b", "not-its-token")) as c:  # the certificate alone is not enough
        assert _collections(c).status_code == 401
    # a pin holds for any member that has one, not only for hubs
    with certs.client(port, None, ("pinned-tool", tokens["pinned-tool"])) as c:
        assert _collections(c).status_code == 401
    with certs.client(port, certs.hub_b, ("pinned-tool", tokens["pinned-tool"])) as c:
        assert _collections(c).status_code == 200


def test_a_hub_member_without_its_pinned_certificate_is_refused(secured: dict[str, Any]) -> None:
    certs, port, tokens = secured["certs"], secured["port"], secured["tokens"]
    with certs.client(port, None, ("hub-b", tokens["hub-b"])) as c:
        r = _collections(c)
        assert r.status_code == 401 and "none was presented" in r.json()["description"]
    # a certificate the peers file vouches for, but not the one the compact pins for hub-b
    with certs.client(port, certs.hub_c, ("hub-b", tokens["hub-b"])) as c:
        r = _collections(c)
        assert r.status_code == 401 and "this one is not it" in r.json()["description"]
    # one the peers file does not vouch for does not get through the handshake
    with pytest.raises(httpx.TransportError), certs.client(port, certs.stranger, ("hub-b", tokens["hub-b"])) as c:
        _collections(c)


def test_a_client_that_pins_another_server_refuses_this_one(secured: dict[str, Any]) -> None:
    certs, port = secured["certs"], secured["port"]
    context = ssl.create_default_context(cafile=str(certs.peers))  # trusts the peers' CA, not the hub's
    with pytest.raises(httpx.ConnectError), httpx.Client(verify=context, timeout=10) as c:
        c.get(f"https://127.0.0.1:{port}/taxii2/")


def test_a_hub_member_cannot_sign_in_to_the_dashboard(secured: dict[str, Any]) -> None:
    certs, port, tokens = secured["certs"], secured["port"], secured["tokens"]
    with certs.client(port, certs.hub_b) as c:
        assert c.post("/signin/", data={"member": "analyst", "token": tokens["analyst"]}).status_code in (200, 303)
        assert c.post("/signin/", data={"member": "analyst", "token": "wrong"}).status_code == 401
        r = c.post("/signin/", data={"member": "hub-b", "token": tokens["hub-b"]})
        assert r.status_code == 401 and "tearline_session" not in r.headers.get("set-cookie", "")


@pytest.mark.parametrize(("member", "problem"), [
    ("{name: b, kind: hub}", r"kind hub: pin the TLS client certificate"),
    ("{name: b, kind: hub, certificate: 'sha256:12ab'}", r"is not a SHA-256 certificate fingerprint"),
    ("{name: b, kind: relay}", r"kind"),
    ("{name: b, kind: hub, certificate: '" + "ab" * 32 + "', people: [p]}", r"a hub has no people"),
])
def test_the_compact_file_refuses_a_hub_member_without_a_proper_pin(member: str, problem: str) -> None:
    text = COMPACT.format(pin="ab" * 32).replace("  - {name: analyst, write: true, tlp_max: amber}",
                                                 f"  - {member}")
    with pytest.raises(ConfigError, match=problem):
        compact.parse(text)


def test_pins_are_read_in_the_usual_spellings() -> None:
    spaced = ":".join(["AB"] * 32)
    assert tls.pin(spaced) == tls.pin("sha256:" + "ab" * 32) == "ab" * 32
    assert tls.pin("ab" * 31) is None and tls.pin("zz" * 32) is None


@pytest.mark.parametrize(("flags", "problem"), [
    (["--tls-cert", "x.pem"], r"--tls-cert and --tls-key go together"),
    (["--tls-cert", "missing.pem", "--tls-key", "missing.key"], r"cannot be loaded as a certificate and its key"),
])
def test_serve_names_a_wrong_tls_setting(tmp_path: Path, flags: list[str], problem: str) -> None:
    run = subprocess.run([sys.executable, "-m", "tearline", "serve", "--db", f"sqlite:///{tmp_path / 'h.db'}",
                          "--port", str(free_port()), *flags], capture_output=True, text=True, timeout=60,
                         cwd=tmp_path)
    assert run.returncode == 2 and re.search(problem, run.stderr), run.stderr
