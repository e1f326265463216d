"""Credentials → Member: HTTP Basic (user = member name, password = token) or Bearer token."""

from __future__ import annotations

import base64
import binascii
import secrets

from .errors import Unauthorized
from .model import Member
from .store import Store


def authenticate(store: Store, authorization: str | None, client_cert: str | None = None) -> Member:
    """The member of the request's credentials. ``client_cert``: the SHA-256 fingerprint of the TLS client
    certificate of the connection (tearline.tls.presented), which a member of kind hub must present."""
    if not authorization:
        raise Unauthorized("credentials required: HTTP Basic (member name and token) or a Bearer token")
    scheme, _, value = authorization.strip().partition(" ")
    value = value.strip()
    name: str | None = None
    if scheme.lower() == "bearer" and value:
        token = value
    elif scheme.lower() == "basic" and value:
        try:
            name, sep, token = base64.b64decode(value, validate=True).decode("utf-8").partition(":")
        except (binascii.Error, ValueError):  # not base64 (or not ASCII at all), or not UTF-8 inside
            raise Unauthorized("Basic credentials are not base64 of 'member:token'") from None
        if not sep:
            raise Unauthorized("Basic credentials are not base64 of 'member:token'")
    else:
        raise Unauthorized("unsupported Authorization scheme: use Basic or Bearer")
    member = store.authenticate(token, name)
    if member is None:
        raise Unauthorized("unknown member or wrong token")
    if member.certificate is not None and not (
            client_cert is not None and secrets.compare_digest(member.certificate, client_cert)):
        # a pinned member's (a peer hub's) token alone is not enough: the connection must present the pinned certificate
        raise Unauthorized(f"member {member.name!r} must connect over TLS with the client certificate "
                           "its compact pins" + (", and this one is not it" if client_cert else
                                                  "; none was presented"))
    return member
