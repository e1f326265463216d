"""TAXII 2.1 media type negotiation (§1.6.8): 406 for an Accept we cannot satisfy, 415 for a body."""

from __future__ import annotations

from ..errors import NotAcceptable, UnsupportedMediaType

TAXII = "application/taxii+json;version=2.1"
STIX = "application/stix+json;version=2.1"


def _parts(value: str) -> tuple[str, dict[str, str]]:
    kind, *params = [p.strip() for p in value.split(";")]
    args = {}
    for p in params:
        key, _, val = p.partition("=")
        args[key.strip().lower()] = val.strip().strip('"')
    return kind.lower(), args


def check_accept(accept: str | None) -> None:
    """Accept must allow application/taxii+json (version 2.1 or unversioned) or a wildcard."""
    if not accept:
        return
    for item in accept.split(","):
        kind, args = _parts(item)
        if args.get("q") in ("0", "0.0", "0.00", "0.000"):
            continue
        if kind in ("*/*", "application/*"):
            return
        if kind == "application/taxii+json" and args.get("version", "2.1") == "2.1":
            return
    raise NotAcceptable(
        f"Accept {accept!r} does not allow {TAXII}, the only media type this server returns",
        details={"accept": accept},
    )


def check_content_type(content_type: str | None) -> None:
    kind, args = _parts(content_type or "")
    if kind != "application/taxii+json" or args.get("version", "2.1") != "2.1":
        raise UnsupportedMediaType(
            f"Content-Type {content_type or '(none)'!r} is not {TAXII}", details={"content_type": content_type}
        )
