"""Known-benign values (MISP warninglists) are dropped before matching: two members who both hold
google.com, 8.8.8.8 or the MD5 of the empty file have learned nothing about each other's targets.

Only the lists meant for the value's type are consulted (a domain is not looked up in hash lists),
using the warninglists bundled with `pymispwarninglists`, so nothing is fetched at match time.
"""

from __future__ import annotations

import functools
from typing import Any

# MISP attribute types each Tearline value type corresponds to
ATTRIBUTES = {
    "domain": {"domain", "hostname", "domain|ip", "url", "uri"},
    "hash": {"md5", "sha1", "sha256", "sha512", "filename|md5", "filename|sha1", "filename|sha256"},
    "ip": {"ip-src", "ip-dst", "ip-src|port", "ip-dst|port", "domain|ip"},
    "email": {"email", "email-src", "email-dst"},
    "phone": {"phone-number", "whois-registrant-phone"},
    "wallet": {"btc", "xmr", "dash"},
}


@functools.cache
def _all() -> Any:
    from pymispwarninglists import WarningLists

    return WarningLists(slow_search=False)


@functools.cache
def _lists(kind: str) -> tuple[Any, ...]:
    wanted = ATTRIBUTES.get(kind, set())
    return tuple(wl for wl in _all().warninglists.values()
                 if wanted & set(getattr(wl, "matching_attributes", []) or []))


def split(kind: str, values: list[str]) -> tuple[list[str], dict[str, str]]:
    """(values to match, {dropped value: the warninglist that names it})."""
    lists = _lists(kind)
    keep, dropped = [], {}
    for value in values:
        probe = value.split("@", 1)[1] if kind == "email" else value
        hit = next((wl.name for wl in lists if probe in wl), None)
        if hit:
            dropped[value] = hit
        else:
            keep.append(value)
    return keep, dropped
