"""The two halves of OpenMined's PSI (ECDH with a Golomb-compressed set), as byte strings that the
hub relays without being able to read.

The asker (PSI client) blinds each of its values with a secret key it keeps; the answerer (PSI
server) blinds the asker's blinded values again with its own key, and sends its own values blinded
once, in a compressed set. Only the asker, holding its key, can remove its blinding and see which of
its own values are in the set. The answerer learns the size of the asker's list; the asker learns
the intersection and the approximate size of the answerer's list; the hub learns the sizes and
nothing about any value.
"""

from __future__ import annotations

import struct

from ..errors import BadRequest

FPR = 1e-9  # probability that a request of the asker's size reports a false match


def _psi():  # type: ignore[no-untyped-def]
    import private_set_intersection.python as psi

    return psi


def ask(values: list[str]) -> tuple[bytes, bytes]:
    """(the asker's private key, the blinded request)."""
    psi = _psi()
    client = psi.client.CreateWithNewKey(True)
    return client.GetPrivateKeyBytes(), client.CreateRequest(values).SerializeToString()


def request_size(request: bytes) -> int:
    """How many values a request carries (the hub checks sizes itself rather than trust a label)."""
    psi = _psi()
    try:
        parsed = psi.Request.FromString(request)
    except Exception:  # protobuf's DecodeError is not exported under a stable name
        raise BadRequest("the body is not an OpenMined PSI request message") from None
    if not parsed.encrypted_elements:
        raise BadRequest("the PSI request carries no values")
    return len(parsed.encrypted_elements)


def answer(values: list[str], request: bytes, fpr: float = FPR) -> bytes:
    """The answerer's reply: its blinded set and the asker's values blinded again, framed together."""
    psi = _psi()
    server = psi.server.CreateWithNewKey(True)
    parsed = psi.Request.FromString(request)
    setup = server.CreateSetupMessage(fpr, len(parsed.encrypted_elements), values, psi.DataStructure.GCS)
    response = server.ProcessRequest(parsed)
    return frame(setup.SerializeToString(), response.SerializeToString())


def frame(setup: bytes, response: bytes) -> bytes:
    return struct.pack(">Q", len(setup)) + setup + response


def unframe(reply: bytes) -> tuple[bytes, bytes]:
    if len(reply) < 8:
        raise BadRequest("a PSI reply starts with the 8-byte length of its setup message")
    (n,) = struct.unpack(">Q", reply[:8])
    if n > len(reply) - 8:
        raise BadRequest("the PSI reply's setup length runs past its end")
    return reply[8: 8 + n], reply[8 + n:]


def check_reply(reply: bytes, asked: int) -> None:
    """Refuse a reply that is not a setup and a response for exactly the values asked."""
    psi = _psi()
    setup, response = unframe(reply)
    try:
        psi.ServerSetup.FromString(setup)
        parsed = psi.Response.FromString(response)
    except Exception:
        raise BadRequest("the body is not an OpenMined PSI setup and response") from None
    if len(parsed.encrypted_elements) != asked:
        raise BadRequest(f"the PSI response answers {len(parsed.encrypted_elements)} values; the request asked {asked}")


def intersect(key: bytes, reply: bytes) -> list[int]:
    """Indices, in the asker's own list, of its values that the answerer also holds."""
    psi = _psi()
    setup, response = unframe(reply)
    client = psi.client.CreateFromKey(key, True)
    return sorted(client.GetIntersection(psi.ServerSetup.FromString(setup), psi.Response.FromString(response)))
