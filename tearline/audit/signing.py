"""The hub's audit signing key and what it signs. Every kind of statement starts with its own context, so
no signature over one kind (a checkpoint, a tree head, a consistency proof, a warning document) can pass
for another."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import orjson

from ..config import create_secret, secret_path
from ..errors import ConfigError

SIGNING_CONTEXT = b"tearline-audit-checkpoint/1"
HEAD_CONTEXT = b"tearline-audit-tree-head/1"
CONSISTENCY_CONTEXT = b"tearline-audit-consistency/1"


def key_path(settings_key: str, db_url: str) -> Path:
    return secret_path(settings_key, db_url, "audit")


def key_id(public: bytes) -> str:
    return hashlib.sha256(public).hexdigest()[:16]


def public_bytes(private: Any) -> bytes:
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    return private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def load_or_create_key(path: Path) -> Any:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import (
        Encoding,
        NoEncryption,
        PrivateFormat,
        load_pem_private_key,
    )

    if path.exists():
        try:
            key = load_pem_private_key(path.read_bytes(), password=None)
        except (ValueError, TypeError) as exc:
            raise ConfigError(f"audit key {path}: not an unencrypted PEM private key ({exc})") from None
        if not isinstance(key, Ed25519PrivateKey):
            raise ConfigError(f"audit key {path}: not an Ed25519 key")
        return key
    key = Ed25519PrivateKey.generate()
    create_secret(path, key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()))
    return key


def verify_signature(public_hex: str, message: bytes, signature_hex: str) -> bool:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    try:
        Ed25519PublicKey.from_public_bytes(bytes.fromhex(public_hex)).verify(bytes.fromhex(signature_hex), message)
        return True
    except (InvalidSignature, ValueError):
        return False


def head_message(head: dict[str, Any]) -> bytes:
    """What a signed tree head's signature is over: its own context, then size, root, time and key."""
    return HEAD_CONTEXT + orjson.dumps([head["size"], head["root"], head["at_us"], head["key_id"]])


def checkpoint_message(cp: dict[str, Any]) -> bytes:
    return SIGNING_CONTEXT + orjson.dumps([cp["first_seq"], cp["seq"], cp["root"], cp["head"], cp["at_us"],
                                           cp["key_id"]])


def consistency_message(statement: dict[str, Any]) -> bytes:
    """What a signed consistency proof is over: the hub's word that its tree of ``second`` entries (root
    ``second_root``) extends its tree of ``first`` (root ``first_root``, as the hub holds it now), by ``proof``."""
    return CONSISTENCY_CONTEXT + orjson.dumps([statement["first"], statement["first_root"], statement["second"],
                                              statement["second_root"], statement["proof"], statement["at_us"],
                                              statement["key_id"]])
