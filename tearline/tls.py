"""HTTPS for the hub itself, and the client certificates hubs present to each other.

TAXII 2.1 requires TLS. A hub that peers with other hubs (compact members of ``kind: hub``) terminates TLS
itself, asks every client for a certificate and accepts the ones its peers file (``tls_peers``: the peers'
certificates, or the CAs that issued them) vouches for; which member a certificate belongs to is decided
per member, by the SHA-256 fingerprint pinned in the compact file, on top of the member's token
(tearline.auth). A certificate the peers file does not vouch for fails the handshake; one it vouches for
that is not the member's pinned one is refused like a wrong token.

uvicorn does not hand the client's certificate to the application, so ``PinnedProtocol`` adds it to each
request's scope as the ASGI TLS extension describes (``scope["extensions"]["tls"]["client_cert_chain"]``,
PEM), of which only the leaf is filled: the pin is the leaf's.
"""

from __future__ import annotations

import hashlib
import re
import ssl
from pathlib import Path
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from .errors import ConfigError

_FINGERPRINT = re.compile(r"(?:sha256:)?((?:[0-9a-f]{2}:?){31}[0-9a-f]{2})")


def pin(text: str) -> str | None:
    """A certificate's SHA-256 fingerprint as the compact file may write it ("sha256:ab12…", with or without
    colons, any case), as 64 lowercase hex digits; None when it is not one."""
    found = _FINGERPRINT.fullmatch(text.strip().lower())
    return found.group(1).replace(":", "") if found and len(found.group(1).replace(":", "")) == 64 else None


def fingerprint(der: bytes) -> str:
    return hashlib.sha256(der).hexdigest()


def fingerprint_of_file(path: str | Path) -> str:
    """The fingerprint of the first certificate of a PEM file (what to pin in a compact file)."""
    try:
        text = Path(path).read_text()
        return fingerprint(ssl.PEM_cert_to_DER_cert(text[:text.index("-----END CERTIFICATE-----") + 25]))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path}: not a readable PEM certificate ({exc})", details={"file": str(path)}) from None


def presented(scope: Any) -> str | None:
    """The fingerprint of the client certificate presented on the request's connection, if any."""
    chain = ((scope.get("extensions") or {}).get("tls") or {}).get("client_cert_chain") or []
    return fingerprint(ssl.PEM_cert_to_DER_cert(chain[0])) if chain else None


class PinnedProtocol(HttpToolsProtocol):
    """uvicorn's HTTP/1.1 protocol, with the connection's client certificate in each request's scope."""

    _client_pem: str | None = None

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)
        ssl_object = transport.get_extra_info("ssl_object")
        der = ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None
        self._client_pem = ssl.DER_cert_to_PEM_cert(der) if der else None

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self.scope["extensions"] = {"tls": {"client_cert_chain": [self._client_pem] if self._client_pem else []}}


def server_options(cert: str, key: str, peers: str) -> dict[str, Any]:
    """uvicorn's TLS options for ``tearline serve`` (none without a certificate), each file checked first so
    that a wrong one is named rather than failing inside the server."""
    if not cert and not key and not peers:
        return {}
    if not cert or not key:
        raise ConfigError("--tls-cert and --tls-key go together: the hub's certificate and its private key",
                          details={"setting": "tls_cert" if not cert else "tls_key"})
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"--tls-cert {cert} / --tls-key {key}: cannot be loaded as a certificate and its key "
                          f"({exc})", details={"setting": "tls_cert"}) from None
    options: dict[str, Any] = {"ssl_certfile": cert, "ssl_keyfile": key, "http": PinnedProtocol}
    if peers:
        try:
            context.load_verify_locations(peers)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(f"--tls-peers {peers}: not a readable file of PEM certificates ({exc})",
                              details={"setting": "tls_peers"}) from None
        # asked of every client, required of none: members that are people's tools come with a token alone
        options |= {"ssl_ca_certs": peers, "ssl_cert_reqs": ssl.CERT_OPTIONAL}
    return options
