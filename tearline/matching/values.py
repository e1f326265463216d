"""Indicator values in one canonical spelling per type, so that two members' lists match on meaning,
not on how each analyst happened to type them.

- phone: E.164 (``+923001234567``), parsed by Google's libphonenumber with a default region for
  numbers written without a country code;
- domain: lower case, no trailing dot, internationalised names in their IDNA (punycode) form;
- wallet: Ethereum addresses as lower-case hex after checking the EIP-55 checksum of mixed-case ones;
  Bitcoin base58 addresses after checking their double-SHA-256 checksum; bech32 addresses lower case;
- hash: lower-case hex of an MD5, SHA-1, SHA-256 or SHA-512 length;
- ip: the address as ``ipaddress`` writes it (IPv6 compressed);
- email: the domain part as a domain, the local part as written.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
from collections.abc import Iterable
from pathlib import Path

from ..errors import BadRequest

TYPES = ("phone", "domain", "wallet", "hash", "ip", "email")
_HEX = re.compile(r"^[0-9a-fA-F]+$")
_HASH_LENGTHS = {32: "md5", 40: "sha1", 64: "sha256", 128: "sha512"}
_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
_B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_BECH32 = re.compile(r"^(bc|tb)1[02-9ac-hj-np-z]{8,87}$")


class BadValue(ValueError):
    """A value that is not a valid instance of its type (message says why)."""


def normalise(kind: str, raw: str, region: str = "PK") -> str:
    value = raw.strip()
    if not value:
        raise BadValue("empty")
    if kind == "domain":
        return _domain(value)
    if kind == "hash":
        if not _HEX.match(value) or len(value) not in _HASH_LENGTHS:
            raise BadValue("not an MD5, SHA-1, SHA-256 or SHA-512 in hex")
        return value.lower()
    if kind == "phone":
        return _phone(value, region)
    if kind == "wallet":
        return _wallet(value)
    if kind == "ip":
        try:
            return str(ipaddress.ip_address(value.strip("[]")))
        except ValueError:
            raise BadValue("not an IPv4 or IPv6 address") from None
    if kind == "email":
        local, at, dom = value.rpartition("@")
        if not at or not local:
            raise BadValue("not an e-mail address (local@domain)")
        return f"{local}@{_domain(dom)}"
    raise BadRequest(f"--type {kind!r}: choose one of {', '.join(TYPES)}")


def _domain(value: str) -> str:
    name = value.lower().rstrip(".")
    if "://" in name or "/" in name:
        raise BadValue("a URL, not a domain name")
    try:
        name = name.encode("idna").decode("ascii")
    except UnicodeError:
        raise BadValue("not a valid internationalised domain name") from None
    labels = name.split(".")
    if len(labels) < 2 or not all(_LABEL.match(label) for label in labels):
        raise BadValue("not a domain name")
    return name


def _phone(value: str, region: str) -> str:
    import phonenumbers

    try:
        number = phonenumbers.parse(value, region)
    except phonenumbers.NumberParseException as exc:
        raise BadValue(f"not a phone number ({exc})") from None
    if not phonenumbers.is_valid_number(number):
        raise BadValue("not a valid phone number for its country")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def _wallet(value: str) -> str:
    if value.lower().startswith("0x"):
        body = value[2:]
        if len(body) != 40 or not _HEX.match(body):
            raise BadValue("not an Ethereum address (0x and 40 hex digits)")
        if body != body.lower() and body != body.upper() and _eip55(body.lower()) != body:
            raise BadValue("Ethereum address with a wrong EIP-55 checksum (a typo?)")
        return "0x" + body.lower()
    if _BECH32.match(value.lower()) and (value == value.lower() or value == value.upper()):
        return value.lower()
    if 25 <= len(value) <= 35 and all(c in _B58 for c in value):
        raw = 0
        for c in value:
            raw = raw * 58 + _B58.index(c)
        data = raw.to_bytes(25, "big") if raw.bit_length() <= 200 else b""
        if len(data) == 25 and hashlib.sha256(hashlib.sha256(data[:-4]).digest()).digest()[:4] == data[-4:]:
            return value
        raise BadValue("Bitcoin address with a wrong checksum (a typo?)")
    raise BadValue("not an Ethereum (0x…) or Bitcoin (base58 or bech32) address")


def _eip55(lower_hex: str) -> str:
    from Crypto.Hash import keccak

    digest = keccak.new(digest_bits=256, data=lower_hex.encode()).hexdigest()
    return "".join(c.upper() if c.isalpha() and int(d, 16) >= 8 else c for c, d in zip(lower_hex, digest, strict=False))


def read(path: Path, kind: str, region: str = "PK") -> tuple[list[str], dict[str, str]]:
    """The distinct canonical values of a file (one per line; blank lines and # comments skipped) and
    each one's first spelling in the file. Any invalid line refuses the whole file, naming every bad
    line, so nobody matches half a list without knowing it."""
    if kind not in TYPES:
        raise BadRequest(f"--type {kind!r}: choose one of {', '.join(TYPES)}")
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise BadRequest(f"{path}: no such file") from None
    except UnicodeDecodeError as exc:
        raise BadRequest(f"{path}: not UTF-8 text (byte {exc.start})") from None
    except OSError as exc:
        raise BadRequest(f"{path}: cannot read it ({exc.strerror or exc})") from None
    return parse(lines, kind, str(path), region)


def parse(lines: Iterable[str], kind: str, source: str = "<values>", region: str = "PK"
          ) -> tuple[list[str], dict[str, str]]:
    first: dict[str, str] = {}
    problems = []
    for number, line in enumerate(lines, 1):
        text = line.split("#", 1)[0].strip() if kind != "email" else line.strip()
        if not text or text.startswith("#"):
            continue
        try:
            first.setdefault(normalise(kind, text, region), text)
        except BadValue as exc:
            problems.append(f"{source}:{number}: {text!r} is not a {kind}: {exc}")
    if problems:
        shown = problems[:20] + ([f"… and {len(problems) - 20} more"] if len(problems) > 20 else [])
        raise BadRequest("\n".join(shown), details={"problems": problems})
    if not first:
        raise BadRequest(f"{source}: no {kind} values in the file")
    return list(first), first
