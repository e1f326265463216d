"""STIX timestamps (RFC 3339, UTC, 'Z'), and the integer microseconds the store orders by."""

from __future__ import annotations

import functools
import re
from datetime import UTC, datetime, timedelta

# ASCII digits only: Python's \d also takes Arabic-Indic and full-width digits, which int() reads happily
_TIMESTAMP = re.compile(r"^([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})(\.[0-9]+)?Z$")
# created and modified must be precise to the millisecond (STIX 2.1 §3.2; the OASIS schemas hold to it)
MILLIS = re.compile(r"T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3,}Z$")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def parse_timestamp(value: object) -> datetime:
    """A STIX timestamp → aware datetime, to the microsecond; ValueError naming the value otherwise."""
    if not isinstance(value, str):
        raise ValueError(f"{value!r} is not a STIX timestamp (YYYY-MM-DDTHH:MM:SS[.s+]Z)")
    return _parse(value)


# Bulk feeds repeat the same few timestamps (created = modified = valid_from), so parsing is cached.
@functools.lru_cache(maxsize=65536)
def _parse(value: str) -> datetime:
    m = _TIMESTAMP.match(value)
    if m is None:
        raise ValueError(f"{value!r} is not a STIX timestamp (YYYY-MM-DDTHH:MM:SS[.s+]Z)")
    frac = (m.group(7) or ".0")[1:7].ljust(6, "0")
    y, mo, d, h, mi, s = (int(m.group(i)) for i in range(1, 7))
    try:
        return datetime(y, mo, d, h, mi, s, int(frac), tzinfo=UTC)
    except ValueError as exc:
        raise ValueError(f"{value!r} is not a valid date and time: {exc}") from None


def to_us(value: datetime) -> int:
    """Microseconds since the epoch: the integer the store orders versions and date_added by."""
    delta = value - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def format_us(us: int) -> str:
    """The inverse of ``to_us``, as a STIX/TAXII timestamp with microseconds."""
    dt = _EPOCH + timedelta(microseconds=us)
    # strftime's %Y does not pad years before 1000 on every platform
    return (f"{dt.year:04d}-{dt.month:02d}-{dt.day:02d}T{dt.hour:02d}:{dt.minute:02d}:{dt.second:02d}"
            f".{dt.microsecond:06d}Z")
