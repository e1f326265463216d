"""Leak attribution: every recipient's copy of a free-text field carries a keyed fingerprint, and a
leaked copy (a bundle, one object, or a pasted paragraph) names the member it was released to.

The mark. Between two words of a ``description`` the hub writes either an ordinary space
or a no-break space (U+00A0); which one is a keyed pseudo-random bit of the recipient and the two
words around the gap (and how often that pair has occurred before in the text). Nothing else changes:
the text reads and renders the same, the JSON and the STIX stay valid, and re-serialising the JSON,
reordering its keys, changing its whitespace or copying the text out of it keeps every bit. Because
each gap's bit depends only on its neighbouring words, a fragment of a paragraph still carries the
bits of its gaps.

The trace. For each member, how many of the copy's gaps agree with that member's bits. A copy not
released to a member was made without that member's bits, which are keyed pseudo-random, so it agrees
with each of them with probability 1/2, independently: its agreements are Binomial(gaps, 1/2) however
the leaker cut or edited its own copy. The upper tail of that binomial is the p-value of "this copy was
not released to this member", Šidák-corrected for the number of members tried, and a member is named
only when the corrected p-value is at most ``NAME_P`` and the copy agrees on at least ``NAME_SHARE`` of
its gaps; every other member is "not matching". Without the key nobody can tell which member a pattern
points to or forge another member's pattern. What the key does not protect against: rewriting every
no-break space as an ordinary space (or retyping the text) removes the mark; the trace then reports that
the copy carries no fingerprint, which for text from the hub is itself a sign of tampering.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import math
import os
import re
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import orjson

from .config import create_secret, secret_path
from .errors import ConfigError

NBSP = "\u00a0"
# Only descriptions: a name is how tools such as OpenCTI merge objects, so it must stay byte-identical.
FIELDS = ("description",)
_WORD = re.compile(r"\S+")
_FIELD_JSON = re.compile(r'("description"\s*:\s*")((?:[^"\\]|\\.)*)(")')


def load_or_create_key(path: Path) -> bytes:
    if path.exists():
        key = path.read_bytes()
        if len(key) != 32:
            raise ConfigError(f"leak key {path}: expected 32 bytes, found {len(key)}")
        return key
    key = os.urandom(32)
    create_secret(path, key)
    return key


def key_path(setting: str, db_url: str) -> Path:
    return secret_path(setting, db_url, "leak")


def _canon(word: str) -> str:
    return word.replace(NBSP, " ").casefold()


def member_key(key: bytes, api_root: str, member: str) -> bytes:
    return hashlib.blake2b(f"{api_root}\x00{member}".encode(), key=key, digest_size=32).digest()


def word_gaps(text: str) -> list[tuple[int, str, str]]:
    """(position, word before, word after) of every gap between two words: one space or no-break space
    with a word on each side. One pass over the words, so its time is linear in the text (a regex that
    looked ahead for the next word from every position was quadratic: 60,000 characters froze the hub)."""
    out = []
    before: re.Match[str] | None = None
    for word in _WORD.finditer(text):
        if before is not None and word.start() == before.end() + 1 and text[before.end()] in " \u00a0":
            out.append((before.end(), before.group(), word.group()))
        before = word
    return out


def _units(text: str) -> Iterator[tuple[int, bytes]]:
    """(position, what its bit is keyed on) of every gap between two words: the two words, and how often
    that pair has occurred before in the text, so a repeated phrase gets fresh bits."""
    seen: dict[tuple[str, str], int] = {}
    for pos, left, right in word_gaps(text):
        pair = (_canon(left), _canon(right))
        n = seen.get(pair, 0)
        seen[pair] = n + 1
        yield pos, f"{pair[0]}\x00{pair[1]}\x00{n}".encode()


def _bit(mkey: bytes, unit: bytes) -> int:
    return hashlib.blake2b(unit, key=mkey, digest_size=1).digest()[0] & 1


def mark_text(mkey: bytes, text: str) -> str:
    chars = list(text)
    for pos, unit in _units(text):
        chars[pos] = NBSP if _bit(mkey, unit) else " "
    return "".join(chars)


# Bounded well below a collection's size: at 200,000 entries a walk through a million objects grew the
# hub by 26 MB between 100k and 1M objects (bench/RESULTS.md), for re-reads that are rarely that far apart.
@functools.lru_cache(maxsize=20_000)
def _marked_json_string(mkey: bytes, raw: str) -> str:
    """A JSON string's content, marked: decoded first, so the words are the ones a reader sees (an
    escaped quote or newline must not change which bits a gap gets), then encoded again."""
    if " " not in raw:
        return raw
    return orjson.dumps(mark_text(mkey, orjson.loads(f'"{raw}"'))).decode()[1:-1]


def mark_body(mkey: bytes, body: str) -> str:
    """The stored JSON text with every description marked for one recipient, without parsing the
    object (this runs on every read)."""
    if '"description"' not in body:
        return body
    return _FIELD_JSON.sub(lambda m: m.group(1) + _marked_json_string(mkey, m.group(2)) + m.group(3), body)


def mark_object(mkey: bytes, obj: dict[str, Any]) -> dict[str, Any]:
    return {k: mark_text(mkey, v) if k in FIELDS and isinstance(v, str) else v for k, v in obj.items()}


# --- tracing ----------------------------------------------------------------------------------------

def texts_of(doc: Any) -> list[str]:
    """The free-text fields of a bundle, envelope, object or list of them; a plain string is itself."""
    if isinstance(doc, str):
        return [doc]
    if isinstance(doc, list):
        return [t for item in doc for t in texts_of(item)]
    if isinstance(doc, dict):
        found = [v for k, v in doc.items() if k in FIELDS and isinstance(v, str)]
        for k in ("objects",):
            if isinstance(doc.get(k), list):
                found += texts_of(doc[k])
        return found
    return []


# A member is named only at a corrected p-value this small. It bounds, per trace, the chance of naming
# anyone the copy was not released to (the test is exact, see the module's docstring), and an accused
# partner costs more than an unattributed leak: a hub that traces a thousand copies over its life names
# an innocent partner with probability under 0.1%. The price is length: even a copy that agrees on every
# gap names nobody below min_gaps(members) gaps, log2(members / NAME_P) (22 with four members, 27 with
# a hundred), about two sentences.
NAME_P = 1e-6
# ... and only if the copy agrees on this share of its gaps. A copy released to a member agrees on all of
# them; a small p-value alone says only that the copy was made with the member's bits in part, which is
# as true of a text pieced together from two members' copies. A tenth of the gaps may be lost to a leaker
# retyping or re-spacing. This can only make naming rarer, so NAME_P stays the bound.
NAME_SHARE = 0.9
NAMED, NOT_MATCHING = "named", "not matching"


@dataclasses.dataclass(frozen=True)
class Match:
    api_root: str
    member: str
    gaps: int  # distinct gaps compared
    agreeing: int
    p_value: float  # P(a copy not released to this member agrees on this many gaps or more)
    p_corrected: float  # P(any of the members tried agrees this often by chance): Šidák over them
    verdict: str  # NAMED or NOT_MATCHING
    threshold: float = NAME_P


def _sidak(p: float, tests: int) -> float:
    """1 - (1 - p)^tests, without losing a small p to rounding. The members' bits are independent of each
    other and of a copy not released to them, so this is the exact chance that one of ``tests`` innocent
    members agrees this often, not merely a bound on it (as Bonferroni's p * tests is)."""
    return 1.0 if p >= 1.0 else -math.expm1(tests * math.log1p(-p))


def min_gaps(members: int) -> int:
    """The fewest gaps from which a copy agreeing on every one of them can name one of ``members``."""
    n = 1
    while _sidak(0.5 ** n, members) > NAME_P:
        n += 1
    return n


def _observed(texts: Sequence[str]) -> tuple[dict[bytes, bool], int, int]:
    """Each distinct gap of the copy and whether it holds a no-break space; how many gaps were read; how
    many were left out. A gap's bit depends only on its unit, so a description that occurs twice in a
    bundle is read once: counted twice, its agreements would count twice, and the binomial would no
    longer be the chance of agreeing. A unit that comes with both spaces agrees with exactly one bit of
    every member, so it tells the members apart no better than nothing and is left out."""
    seen: dict[bytes, bool | None] = {}
    read = 0
    for text in dict.fromkeys(texts):  # the same text twice has the same spaces: reading it once is enough
        for pos, unit in _units(text):
            read += 1
            nbsp = text[pos] == NBSP
            seen[unit] = nbsp if seen.get(unit, nbsp) is nbsp else None
    units = {unit: nbsp for unit, nbsp in seen.items() if nbsp is not None}
    return units, read, len(seen) - len(units)


def show_p(p: float) -> str:
    """A p-value for a reader: one that underflowed to 0 is below the smallest double, not impossible."""
    return f"{p:.1e}" if p > 0 else "below 1e-300"


def _verdict(ranked: list[Match], members: int) -> str:
    named = [m for m in ranked if m.verdict == NAMED]
    gaps = ranked[0].gaps
    rule = f"at a Šidák-corrected p ≤ {NAME_P:.0e} over {members} member(s)"
    # members the copy agrees with beyond chance that it does not fit whole: part of it came from their copy
    related = ", ".join(f"{m.member} of {m.api_root} ({m.agreeing} of {gaps} gaps, p {show_p(m.p_corrected)})"
                        for m in ranked if m.p_corrected <= NAME_P and m.verdict != NAMED)
    if len(named) == 1:
        m = named[0]
        also = f"; part of it agrees with {related} beyond chance too" if related else ""
        return (f"released to {m.member} of {m.api_root}: {m.agreeing} of {gaps} gaps agree; a copy released to "
                f"anyone else agrees this often with probability {show_p(m.p_corrected)} ({rule}){also}")
    if named:
        who = ", ".join(f"{m.member} of {m.api_root}" for m in named)
        return (f"matches {len(named)} members at once, {who}: the copy is made of copies released to each of "
                f"them (merged by one who had both, or passed between them); it does not single out one")
    if related:
        return (f"no member named: the copy agrees with {related} more often than chance, but on fewer than "
                f"{NAME_SHARE:.0%} of its gaps, where a copy released to them agrees on all; it was edited, or "
                f"pieces together several members' copies: trace each object or paragraph on its own")
    if gaps < min_gaps(members):
        return (f"no member named: {gaps} gaps are too few; even a copy agreeing on all of them could be "
                f"chance {rule}, which takes {min_gaps(members)} gaps")
    return (f"no member named: no member's fingerprint agrees with the copy more often than chance ({rule}); "
            f"the text was edited or retyped, or did not come from this hub")


def trace(key: bytes, texts: Sequence[str], candidates: Iterable[tuple[str, str]]) -> tuple[list[Match], str]:
    """Every candidate with its agreement, p-value and verdict, most agreeing first, and a verdict in
    words."""
    units, read, mixed = _observed(texts)
    members = list(dict.fromkeys(candidates))  # a member listed twice is still one test
    if read == 0:
        return [], "no gaps between words to read a fingerprint from"
    if not any(units.values()) and not mixed:
        if members and read < min_gaps(len(members)):
            # a recipient's bits are all 0 on n gaps once in 2^n, so a short text may be a genuine copy
            return [], (f"no fingerprint: all {read} gaps are ordinary spaces, as they are by chance in one "
                        f"copy in {2 ** read} of a text this short; too few gaps to name anyone in any case")
        return [], (f"no fingerprint: all {read} gaps are ordinary spaces; the text was normalised or retyped, "
                    "or did not come from this hub")
    if not units:
        return [], f"no fingerprint: each of its {mixed} distinct gaps comes with both spaces"
    if not members:
        return [], "no members to compare with"
    # scipy.stats.binom.sf(k - 1, n, p) is this function; called directly it spares every trace the second
    # that importing scipy.stats takes. Imported here because marking, on every read, never needs it.
    from scipy.special import bdtrc

    observed = list(units.items())
    agreeing = []
    for api_root, member in members:
        mkey = member_key(key, api_root, member)
        agreeing.append(sum(_bit(mkey, unit) == nbsp for unit, nbsp in observed))
    gaps = len(units)
    p_values = bdtrc([k - 1 for k in agreeing], gaps, 0.5)  # P(Binomial(gaps, 1/2) > k - 1)
    ranked = []
    for (api_root, member), k, p in zip(members, agreeing, p_values, strict=True):
        p_corrected = _sidak(float(p), len(members))
        named = p_corrected <= NAME_P and k >= NAME_SHARE * gaps
        ranked.append(Match(api_root, member, gaps, k, float(p), p_corrected, NAMED if named else NOT_MATCHING))
    ranked.sort(key=lambda m: (-m.agreeing, m.api_root, m.member))
    return ranked, _verdict(ranked, len(members))
