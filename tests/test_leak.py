"""Leak attribution: each member's copy from the running hub carries its fingerprint, which survives
re-serialisation, key reordering, whitespace changes and extraction of the text, keeps the object
valid STIX with the same meaning, and `tearline leak trace` names the right member for every
transformed copy in the set."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
from stix2validator import ValidationOptions, validate_instance

from tearline import leak
from tests.conftest import TAXII
from tests.stixgen import indicator

INTEL = "/taxii2/isis-k/collections/intel/objects/"
TEXT = ("Telegram channel relaying Al-Azaim Foundation releases in Pashto and Dari; it reposted the claim "
        "for the Kabul airport attack within the hour and announces new mirrors when accounts are "
        "suspended. Administrators rotate every few weeks and reuse the same watermark on videos.")
MEMBERS = ("state-a", "state-b", "ngo-c")  # state-a writes the object; the other two receive copies


def copies(hub: Any, tokens: dict[str, str]) -> dict[str, dict[str, Any]]:
    obj = indicator(77, description=TEXT)
    with httpx.Client(base_url=hub.url, auth=("state-a", tokens["state-a"]),
                      headers={"Accept": TAXII, "Content-Type": TAXII}) as c:
        assert c.post(INTEL, content=json.dumps({"objects": [obj]})).json()["success_count"] == 1
    out = {}
    for m in MEMBERS:
        with httpx.Client(base_url=hub.url, auth=(m, tokens[m]), headers={"Accept": TAXII}) as c:
            out[m] = c.get(INTEL + obj["id"] + "/").json()["objects"][0]
    return out


def transforms(obj: dict[str, Any], rnd: random.Random) -> dict[str, str]:
    """The ways a copy leaks: as it came, re-serialised, keys shuffled, re-indented, the object alone,
    the description pasted as text, and a fragment of it."""
    shuffled = dict(rnd.sample(list(obj.items()), len(obj)))
    words = obj["description"].split(" ")
    return {
        "as received": json.dumps({"objects": [obj]}),
        "bundle, re-serialised": json.dumps({"type": "bundle", "id": "bundle--6f1c8f7e-0000-4000-8000-000000000001",
                                             "objects": [obj]}, indent=4, ensure_ascii=True),
        "keys reordered, compact": json.dumps(shuffled, separators=(",", ":"), ensure_ascii=False),
        "object alone, sorted": json.dumps(obj, sort_keys=True, indent=2, ensure_ascii=False),
        "description pasted": obj["description"],
        "first half of the description": " ".join(words[: len(words) // 2]),
    }


def test_each_member_gets_its_own_fingerprint_and_the_meaning_is_unchanged(hub: Any, tokens: dict[str, str]) -> None:
    got = copies(hub, tokens)
    texts = {m: o["description"] for m, o in got.items()}
    assert texts["state-a"] == TEXT  # the author's own object comes back exactly as sent
    assert len({texts["state-b"], texts["ngo-c"], TEXT}) == 3  # each recipient has its own copy …
    assert {t.replace(leak.NBSP, " ") for t in texts.values()} == {TEXT}  # … of the same words
    for obj in got.values():
        assert {k: v for k, v in obj.items() if k != "description"} == \
            {k: v for k, v in got["state-a"].items() if k != "description"}
        result = validate_instance(obj, ValidationOptions(version="2.1", strict=False))
        assert result.is_valid, [str(e) for e in result.errors]


def test_leak_trace_names_the_recipient_of_every_transformed_copy(hub: Any, tokens: dict[str, str],
                                                                  tmp_path: Path) -> None:
    got = copies(hub, tokens)
    rnd = random.Random(5)
    checked = 0
    for member, obj in got.items():
        if member == "state-a":
            continue
        for how, text in transforms(obj, rnd).items():
            leaked = tmp_path / f"{member}-{checked}.txt"
            leaked.write_text(text, encoding="utf-8")
            done = subprocess.run([sys.executable, "-m", "tearline", "leak", "trace", str(leaked), "--json",
                                   "--db", hub.settings.db, "--leak-key", hub.settings.leak_key],
                                  capture_output=True, text=True, check=True)
            result = json.loads(done.stdout)
            top = result["ranking"][0]
            assert top["member"] == member and result["verdict"].startswith(f"released to {member}"), (how, result)
            assert top["confidence"] > 0.99, (how, top)
            checked += 1
    assert checked == 12
    # normalised text has no fingerprint left, and the trace says so instead of guessing
    plain = tmp_path / "normalised.txt"
    plain.write_text(got["state-b"]["description"].replace(leak.NBSP, " "))
    done = subprocess.run([sys.executable, "-m", "tearline", "leak", "trace", str(plain), "--db", hub.settings.db,
                           "--leak-key", hub.settings.leak_key], capture_output=True, text=True, check=True)
    assert "no fingerprint" in done.stdout


def test_marks_depend_only_on_neighbouring_words_and_the_key() -> None:
    key = bytes(range(32))
    a, b = leak.member_key(key, "c", "a"), leak.member_key(key, "c", "b")
    marked = leak.mark_text(a, TEXT)
    assert marked != leak.mark_text(b, TEXT) and marked == leak.mark_text(a, TEXT)
    # the same sentence inside another text keeps its own marks
    tail = TEXT.split(". ", 1)[1]
    assert leak.mark_text(a, tail) in marked
    other_key = leak.member_key(bytes(32), "c", "a")
    assert leak.mark_text(other_key, TEXT) != marked
    # stored JSON is marked without being parsed, escapes and all
    body = json.dumps({"type": "note", "description": 'said "hello" to the\nnew channel admins today'})
    out = json.loads(leak.mark_body(a, body))["description"]
    assert out == leak.mark_text(a, 'said "hello" to the\nnew channel admins today')
