"""The hub's secret, and what is keyed by it: leak fingerprints, authors' pseudonyms and paging tokens.

One 32-byte secret per hub (``--leak-key``/``TEARLINE_LEAK_KEY``, created on first use next to a SQLite
store, mode 0600). Each use draws its own key from it by HMAC under a label, so no two uses share a key
and none can stand in for another. Without the secret nobody can tell which member a fingerprint
belongs to, compute the pseudonym of an author, or read the position a paging token stands for.
"""

from __future__ import annotations

import base64
import dataclasses
import functools
import hashlib
import hmac
import struct
import uuid

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from . import leak
from .config import Settings
from .errors import BadRequest

_TOKEN_CHECK = b"TLnx"  # a paging token that decrypts to anything else was not issued by this hub


@dataclasses.dataclass(frozen=True)
class HubKeys:
    secret: bytes

    @property
    def leak(self) -> bytes:
        """The fingerprint key: the secret itself, as it has always been (fingerprints already handed out
        stay traceable)."""
        return self.secret

    @functools.cached_property
    def _pseudonym(self) -> bytes:
        return hmac.new(self.secret, b"tearline/pseudonym", hashlib.sha256).digest()

    @functools.cached_property
    def _paging(self) -> Cipher:  # type: ignore[type-arg]
        key = hmac.new(self.secret, b"tearline/paging", hashlib.sha256).digest()[:16]
        return Cipher(algorithms.AES(key), modes.ECB())

    def pseudonym(self, api_root: str, real_id: str) -> str:
        """The identity id that stands for ``real_id`` in compact ``api_root``: the same every time, different
        in every compact, and not computable without the hub's secret."""
        digest = hmac.new(self._pseudonym, f"{api_root}\x00{real_id}".encode(), hashlib.sha256).digest()
        return f"identity--{uuid.UUID(bytes=digest[:16], version=4)}"

    def next_token(self, coll: int, after_us: int) -> str:
        """An opaque paging token for the position after ``after_us`` in collection ``coll``: one AES block,
        so the internal position (which counts every version written) is never shown."""
        block = _TOKEN_CHECK + struct.pack(">IQ", coll & 0xFFFFFFFF, after_us)
        encryptor = self._paging.encryptor()
        sealed = encryptor.update(block) + encryptor.finalize()
        return base64.urlsafe_b64encode(sealed).rstrip(b"=").decode()

    def read_token(self, coll: int, token: str) -> int:
        wrong = BadRequest(f"next: {token!r} is not a paging token this server issued for this collection",
                           details={"parameter": "next"})
        if len(token) != 22 or not token.isascii():
            raise wrong
        try:
            sealed = base64.urlsafe_b64decode(token + "==")
        except ValueError:
            raise wrong from None
        if len(sealed) != 16:
            raise wrong
        decryptor = self._paging.decryptor()
        block = decryptor.update(sealed) + decryptor.finalize()
        check, token_coll, after_us = block[:4], *struct.unpack(">IQ", block[4:])
        if not hmac.compare_digest(check, _TOKEN_CHECK) or token_coll != coll & 0xFFFFFFFF:
            raise wrong
        return int(after_us)


def load(settings: Settings) -> HubKeys:
    """The hub's keys for these settings (the secret file is created on first use)."""
    return HubKeys(leak.load_or_create_key(leak.key_path(settings.leak_key, settings.db)))
