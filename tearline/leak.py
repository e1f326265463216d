"""Leak attribution: every recipient's copy of a free-text field carries a keyed fingerprint, and a
leaked copy (a bundle, one object, or a pasted paragraph) names the member it was released to.

The mark. Between two words of a ``description`` the hub writes either an ordinary space
or a no-break space (U+00A0); which one is a keyed pseudo-random bit of the recipient and the two
words around the gap (and how often that pair has occurred before in the text). Nothing else changes:
the text reads and renders the same, the JSON and the STIX stay valid, and re-serialising the JSON,
reordering its keys, changing its whitespace or copying the text out of it keeps every bit. Because
each gap's bit depends only on its neighbouring words, a fragment of a paragraph still carries the
bits of its gaps.

The trace. For each member, the fraction of gaps whose space matches that member's bits; a copy
meant for someone else agrees about half the time, so the chance that a non-recipient agrees as often
(binomial) gives the confidence. Without the key nobody can tell which member a pattern points to or
forge another member's pattern. What the key does not protect against: rewriting every no-break space
as an ordinary space (or retyping the text) removes the mark; the trace then reports that the copy
carries no fingerprint, which for text from the hub is itself a sign of tampering.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import math
import os
import re
from collections.abc import Iterable, Sequence
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


def _bits(mkey: bytes, text: str) -> list[tuple[int, int]]:
    """(position of the gap in the text, this recipient's bit there) for every gap between two words."""
    seen: dict[tuple[str, str], int] = {}
    out = []
    for pos, left, right in word_gaps(text):
        pair = (_canon(left), _canon(right))
        n = seen.get(pair, 0)
        seen[pair] = n + 1
        digest = hashlib.blake2b(f"{pair[0]}\x00{pair[1]}\x00{n}".encode(), key=mkey, digest_size=1).digest()
        out.append((pos, digest[0] & 1))
    return out


def mark_text(mkey: bytes, text: str) -> str:
    chars = list(text)
    for pos, bit in _bits(mkey, text):
        chars[pos] = NBSP if bit else " "
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


@dataclasses.dataclass(frozen=True)
class Match:
    api_root: str
    member: str
    agree: int
    gaps: int
    confidence: float  # 1 - P(a non-recipient's copy agrees this often)


def _tail(n: int, k: int) -> float:
    """P(Binomial(n, 1/2) >= k)."""
    return sum(math.comb(n, i) for i in range(k, n + 1)) / 2 ** n


def trace(key: bytes, texts: Sequence[str], candidates: Iterable[tuple[str, str]]) -> tuple[list[Match], str]:
    """Every candidate ranked by agreement, and a verdict in words."""
    observed = [(text, pos, text[pos] == NBSP) for text in texts for pos, _, _ in word_gaps(text)]
    gaps = len(observed)
    if gaps == 0:
        return [], "no gaps between words to read a fingerprint from"
    if not any(bit for _, _, bit in observed):
        return [], (f"no fingerprint: all {gaps} gaps are ordinary spaces; the text was normalised or retyped, "
                    "or did not come from this hub")
    ranked = []
    candidates = list(candidates)
    for api_root, member in candidates:
        mkey = member_key(key, api_root, member)
        agree = 0
        for text in texts:
            want = dict(_bits(mkey, text))
            agree += sum(1 for t, pos, bit in observed if t is text and want.get(pos) == bit)
        # with many members to choose from, one of them agreeing by chance is likelier (Bonferroni)
        ranked.append(Match(api_root, member, agree, gaps, max(0.0, 1.0 - _tail(gaps, agree) * len(candidates))))
    ranked.sort(key=lambda m: (-m.agree, m.api_root, m.member))
    best = ranked[0] if ranked else None
    if best is None:
        return [], "no members to compare with"
    share = best.agree / gaps
    if share >= 0.9 and best.confidence >= 0.999:
        verdict = (f"released to {best.member} of {best.api_root}: {best.agree} of {gaps} gaps agree "
                   f"(a copy for anyone else agrees this often with probability {1 - best.confidence:.1e})")
    else:
        verdict = (f"no member's fingerprint fits: the best, {best.member} of {best.api_root}, agrees on "
                   f"{best.agree} of {gaps} gaps ({share:.0%}); too few gaps, or the text was edited")
    return ranked, verdict
