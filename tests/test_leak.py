"""Leak attribution: each member's copy from the running hub carries its fingerprint, which survives
re-serialisation, key reordering, whitespace changes and extraction of the text, keeps the object
valid STIX with the same meaning, and `tearline leak trace` names the right member for every
transformed copy in the set that is long enough to; and that a trace names nobody it should not: not on
a short text, not on a copy released to someone else, not in 10,000 simulated leaks."""

from __future__ import annotations

import dataclasses
import json
import math
import random
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st
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
    text = obj["description"]
    gaps = [pos for pos, _, _ in leak.word_gaps(text)]  # cut at gaps, whichever space each one holds
    return {
        "as received": json.dumps({"objects": [obj]}),
        "bundle, re-serialised": json.dumps({"type": "bundle", "id": "bundle--6f1c8f7e-0000-4000-8000-000000000001",
                                             "objects": [obj]}, indent=4, ensure_ascii=True),
        "keys reordered, compact": json.dumps(shuffled, separators=(",", ":"), ensure_ascii=False),
        "object alone, sorted": json.dumps(obj, sort_keys=True, indent=2, ensure_ascii=False),
        "description pasted": obj["description"],
        "description less its first seven words": text[gaps[6] + 1:],
        "first half of the description": text[:gaps[len(gaps) // 2]],
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
            rule = result["threshold"]
            assert rule["p_corrected_at_most"] == leak.NAME_P and rule["members_tested"] == len(result["ranking"])
            top, *rest = result["ranking"]
            for m in result["ranking"]:
                assert {"gaps", "agreeing", "p_value", "p_corrected", "verdict", "threshold"} <= m.keys()
                assert m["p_value"] <= m["p_corrected"] <= 1 and m["threshold"] == leak.NAME_P
            assert all(m["verdict"] == "not matching" for m in rest), (how, result)
            if top["gaps"] < rule["fewest_gaps_that_can_name"]:
                # 20 gaps cannot rule out chance at 1e-6 over the hub's members: the trace says so and names nobody
                assert how == "first half of the description" and top["agreeing"] == top["gaps"], (how, top)
                assert result["named"] == [] and "too few" in result["verdict"], (how, result)
                continue
            assert top["member"] == member and result["verdict"].startswith(f"released to {member}"), (how, result)
            assert top["verdict"] == "named" and top["p_corrected"] <= leak.NAME_P and [n["member"] for n in result["named"]] == [member]
            checked += 1
    assert checked == 12
    # normalised text has no fingerprint left, and the trace says so instead of guessing
    plain = tmp_path / "normalised.txt"
    plain.write_text(got["state-b"]["description"].replace(leak.NBSP, " "))
    done = subprocess.run([sys.executable, "-m", "tearline", "leak", "trace", str(plain), "--db", hub.settings.db,
                           "--leak-key", hub.settings.leak_key], capture_output=True, text=True, check=True)
    assert "no fingerprint" in done.stdout and "named:" not in done.stdout


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


# --- attribution that cannot accuse the innocent -------------------------------------------------------

KEY = bytes(range(32))
ROOT = "isis-k"
PROSE = " ".join(f"w{random.Random(11).randrange(300)}" for _ in range(342))  # 341 gaps


def copy_for(member: str, text: str = PROSE, key: bytes = KEY, root: str = ROOT) -> str:
    return leak.mark_text(leak.member_key(key, root, member), text)


def named(ranked: list[leak.Match]) -> list[str]:
    return [m.member for m in ranked if m.verdict == leak.NAMED]


def test_only_the_recipient_is_named_and_the_others_carry_no_score_of_suspicion() -> None:
    """The reviewers' case: state-b's copy, 341 gaps. The two others agree on about half the gaps, as any
    copy not meant for them does, and are "not matching", with p-values near 1/2, not confidences near 1."""
    ranked, verdict = leak.trace(KEY, [copy_for("state-b")], [(ROOT, m) for m in MEMBERS])
    assert named(ranked) == ["state-b"] and verdict.startswith("released to state-b of isis-k: 341 of 341 gaps agree")
    b, *others = ranked
    assert b.p_value == pytest.approx(0.5 ** 341, rel=1e-12) and b.p_corrected == pytest.approx(3 * 0.5 ** 341)
    for m in others:
        assert m.verdict == "not matching" and m.gaps == 341 and 0.3 < m.agreeing / m.gaps < 0.7
        assert m.p_corrected > 1e-3 and m.threshold == leak.NAME_P


def test_a_short_copy_names_nobody_even_when_every_gap_agrees() -> None:
    """7 gaps: the old trace said "no member fits" and then "ngo-c: 7/7 gaps agree, confidence 0.976"."""
    short = " ".join(PROSE.split(" ")[:8])
    ranked, verdict = leak.trace(KEY, [copy_for("ngo-c", short)], [(ROOT, m) for m in MEMBERS])
    assert named(ranked) == [] and "7 gaps are too few" in verdict and f"{leak.min_gaps(3)} gaps" in verdict
    assert ranked[0].agreeing == 7 and ranked[0].p_value == 0.5 ** 7 and ranked[0].verdict == "not matching"
    assert leak.min_gaps(3) == 22 and leak.min_gaps(100) == 27  # log2(members / NAME_P), rounded up


def test_members_whose_marks_coincide_with_the_recipients_cannot_be_told_apart_so_neither_is_named() -> None:
    short = " ".join(PROSE.split(" ")[:11])  # 10 gaps: a twin turns up in about a thousand members
    bits = copy_for("leaker", short)
    twin = next(f"m{i}" for i in range(100_000) if copy_for(f"m{i}", short) == bits)
    ranked, verdict = leak.trace(KEY, [bits], [(ROOT, "leaker"), (ROOT, twin), (ROOT, "other")])
    assert named(ranked) == [] and "too few" in verdict
    assert [(m.agreeing, m.p_value) for m in ranked[:2]] == [(10, 0.5 ** 10)] * 2


def test_a_copy_made_of_two_members_copies_names_both_as_such_or_neither() -> None:
    b, c = copy_for("state-b"), copy_for("ngo-c")
    # a bundle holding both members' copies of the object: gaps where their spaces differ say nothing
    ranked, verdict = leak.trace(KEY, [b, c], [(ROOT, m) for m in MEMBERS])
    assert sorted(named(ranked)) == ["ngo-c", "state-b"] and verdict.startswith("matches 2 members at once")
    assert not verdict.startswith("released to") and ranked[0].gaps < 341
    # a paragraph pieced together from the two copies fits neither whole; the trace says what it is
    half = leak.word_gaps(PROSE)[170][0]
    pieced = b[:half] + c[half:]
    ranked, verdict = leak.trace(KEY, [pieced], [(ROOT, m) for m in MEMBERS])
    assert named(ranked) == [] and verdict.startswith("no member named") and "pieces together" in verdict


def test_a_copy_with_a_passage_from_another_members_copy_names_its_recipient_and_says_so() -> None:
    text = " ".join(f"w{random.Random(12).randrange(5000)}" for _ in range(2001))
    cut = leak.word_gaps(text)[1700][0]  # the last 15% of the gaps from ngo-c's copy
    ranked, verdict = leak.trace(KEY, [copy_for("state-b", text)[:cut] + copy_for("ngo-c", text)[cut:]],
                                 [(ROOT, m) for m in MEMBERS])
    assert named(ranked) == ["state-b"] and verdict.startswith("released to state-b")
    assert "part of it agrees with ngo-c of isis-k" in verdict and "state-a" not in verdict


def test_a_description_repeated_in_a_bundle_is_evidence_once() -> None:
    """Its agreements counted twice would be a binomial of twice the gaps, and ten gaps would pass for 20."""
    short = copy_for("state-b", " ".join(PROSE.split(" ")[:23]))  # 22 gaps
    once, _ = leak.trace(KEY, [short], [(ROOT, m) for m in MEMBERS])
    thrice, _ = leak.trace(KEY, [short, {"x": short}["x"], short], [(ROOT, m) for m in MEMBERS])
    assert [dataclasses.astuple(m) for m in once] == [dataclasses.astuple(m) for m in thrice]


def test_a_stripped_copy_has_no_fingerprint_and_names_nobody() -> None:
    ranked, verdict = leak.trace(KEY, [copy_for("state-b").replace(leak.NBSP, " ")], [(ROOT, m) for m in MEMBERS])
    assert ranked == [] and verdict.startswith("no fingerprint: all 341 gaps are ordinary spaces")
    ranked, verdict = leak.trace(KEY, ["one two three"], [(ROOT, m) for m in MEMBERS])
    assert ranked == [] and "chance in one copy in 4" in verdict
    assert leak.trace(KEY, ["nothing"], [(ROOT, "a")]) == ([], "no gaps between words to read a fingerprint from")


def test_the_p_value_is_the_binomial_tail() -> None:
    """Checked against the sum it stands for, in exact fractions, and against scipy.stats."""
    from fractions import Fraction

    from scipy.stats import binom

    text = copy_for("a", " ".join(PROSE.split(" ")[:41]))
    for m in leak.trace(KEY, [text], [(ROOT, f"x{i}") for i in range(20)])[0]:
        exact = Fraction(sum(math.comb(40, i) for i in range(m.agreeing, 41)), 2 ** 40)
        assert m.p_value == pytest.approx(float(exact), rel=1e-9) == binom.sf(m.agreeing - 1, 40, 0.5)
        assert m.p_corrected == pytest.approx(1 - (1 - float(exact)) ** 20, rel=1e-9)


# The simulation: random keys, members, texts and leaks, each traced with the real marking and tracing.
# A false attribution is a trial that names anyone but the recipient.

# distinct gaps traced; 21 to 24 is where the bar lies for 2 to 12 members (leak.min_gaps)
LENGTHS = ((1, 20), (21, 24), (25, 27), (28, 32), (33, 50), (51, 100), (101, 400))
# prose-like vocabularies, and a tiny one whose word pairs repeat (each repeat gets fresh bits)
VOCABULARIES = tuple([f"{case}{i}" for i in range(n) for case in "wW"] for n in (4, 60, 2000))
P_LEVELS = (0.001, 0.01, 0.05)
FLIPS = (0.0, 0.0, 0.0, 0.0, 0.02, 0.05, 0.1, 0.2)  # the share of spaces a leaker swaps


@dataclasses.dataclass
class Tally:
    trials: int = 0
    false_attributions: int = 0
    # (length bucket, share of spaces swapped) -> [leaker named, trials], over prose-like texts
    detected: dict[tuple[tuple[int, int], float], list[int]] = dataclasses.field(default_factory=dict)
    # [named, trials] over untouched fragments of 33+ gaps cut from a text of four words: a pair that occurred
    # before the cut has its later occurrences counted from the wrong start, so their bits are a coin toss
    repeats_cut: list[int] = dataclasses.field(default_factory=lambda: [0, 0])
    shortest_named: int | None = None
    # every member but the recipient, in every trial: how their p-values fall (at most t in a share at most
    # t of them, if the p-value is what it claims), and the smallest corrected one (how near an innocent came)
    innocent_tests: int = 0
    innocent_p_at_most: dict[float, int] = dataclasses.field(default_factory=lambda: dict.fromkeys(P_LEVELS, 0))
    nearest_innocent: float = 1.0
    seconds: float = 0.0

    def rate(self, bucket: tuple[int, int], flip: float) -> tuple[int, int]:
        hit, n = self.detected.get((bucket, flip), [0, 0])
        return hit, n


def simulate(trials: int, seed: int = 21, longest: int = 200, most_members: int = 8) -> Tally:
    """``trials`` leaks of texts of 2 to ``longest`` words (log-uniform, so short texts, where the bar
    bites, are as common as long ones), among 2 to ``most_members`` members."""
    rnd = random.Random(seed)
    tally = Tally()
    started = time.perf_counter()
    for _ in range(trials):
        key = rnd.randbytes(32)
        roots = ("r1",) if rnd.random() < 0.7 else ("r1", "r2")
        members = [(rnd.choice(roots), f"m{i}") for i in rnd.sample(range(50), rnd.randint(2, most_members))]
        vocab = VOCABULARIES[rnd.randrange(3)]
        words = rnd.choices(vocab, k=int(2 ** rnd.uniform(1, math.log2(longest + 1))))
        cut = False
        recipient = rnd.choice(members)
        copy = copy_for(recipient[1], " ".join(words), key, recipient[0])
        if rnd.random() < 0.5:  # a fragment: whole words from somewhere in the copy
            spans = [m.span() for m in re.finditer(r"\S+", copy)]
            first = rnd.randrange(len(spans))
            copy = copy[spans[first][0]:spans[rnd.randrange(first, len(spans))][1]]
            cut = first > 0
        flip = rnd.choice(FLIPS)
        if flip:
            chars = list(copy)
            for pos, _, _ in leak.word_gaps(copy):
                if rnd.random() < flip:
                    chars[pos] = " " if chars[pos] == leak.NBSP else leak.NBSP
            copy = "".join(chars)
        texts = [copy]
        if rnd.random() < 0.25:  # a bundle that also quotes the end of the text: its gaps are read once
            spans = [m.start() for m in re.finditer(r"\S+", copy)]
            texts.append(copy[rnd.choice(spans):] if spans else copy)
        ranked, _ = leak.trace(key, texts, members)
        names = {(m.api_root, m.member) for m in ranked if m.verdict == leak.NAMED}
        tally.trials += 1
        tally.false_attributions += bool(names - {recipient})
        for m in ranked:
            if (m.api_root, m.member) != recipient:
                tally.innocent_tests += 1
                tally.nearest_innocent = min(tally.nearest_innocent, m.p_corrected)
                for level in P_LEVELS:
                    tally.innocent_p_at_most[level] += m.p_value <= level
        if not ranked:
            continue  # nothing to read: no gaps, or every gap an ordinary space
        gaps = ranked[0].gaps
        if recipient in names:
            tally.shortest_named = min(gaps, tally.shortest_named or gaps)
        bucket = next(b for b in LENGTHS if b[0] <= gaps <= b[1])
        if vocab is VOCABULARIES[0] and cut:
            if not flip and gaps > 32:
                tally.repeats_cut[0] += recipient in names
                tally.repeats_cut[1] += 1
            continue
        counts = tally.detected.setdefault((bucket, flip), [0, 0])
        counts[0] += recipient in names
        counts[1] += 1
    tally.seconds = time.perf_counter() - started
    return tally


def report(tally: Tally) -> list[str]:
    lines = [f"false attributions: {tally.false_attributions}/{tally.trials} trials at corrected p <= "
             f"{leak.NAME_P:.0e} and >= {leak.NAME_SHARE:.0%} of gaps agreeing; shortest text naming the leaker: "
             f"{tally.shortest_named} gaps ({tally.seconds:.1f} s)",
             f"{tally.innocent_tests} innocent members traced: the smallest corrected p among them "
             f"{tally.nearest_innocent:.1e}; raw p at most " + ", ".join(
                 f"{level}: {n / tally.innocent_tests:.4f}" for level, n in tally.innocent_p_at_most.items()),
             "leaker named, by distinct gaps traced and share of spaces the leaker swapped (prose-like texts):",
             "gaps      " + "".join(f"{f'{flip:.0%} swapped':>16}" for flip in sorted(set(FLIPS)))]
    for bucket in LENGTHS:
        cells = []
        for flip in sorted(set(FLIPS)):
            hit, n = tally.rate(bucket, flip)
            cells.append(f"{f'{hit}/{n} {hit / n:.0%}' if n else '-':>16}")
        lines.append(f"{bucket[0]:>3}-{bucket[1]:<5} " + "".join(cells))
    hit, n = tally.repeats_cut
    lines.append(f"untouched fragments of 33+ gaps cut from a text of four words repeated: named in {hit}/{n}")
    return lines


def test_ten_thousand_simulated_leaks_name_no_innocent_member() -> None:
    tally = simulate(10_000)
    print("\nleak attribution, simulated:\n  " + "\n  ".join(report(tally)))
    assert tally.trials == 10_000 and tally.false_attributions == 0
    # the p-values are honest: among innocent members, p <= t in no more than a share t (binomial noise aside)
    for level, n in tally.innocent_p_at_most.items():
        assert n / tally.innocent_tests <= level + 4 * math.sqrt(level / tally.innocent_tests), (level, n)
    # the bar costs short texts, and only them: an untouched copy of 33+ gaps is named
    assert tally.shortest_named is not None and tally.shortest_named >= leak.min_gaps(2)
    for bucket in LENGTHS[4:]:
        hit, n = tally.rate(bucket, 0.0)
        assert n > 100 and hit / n > 0.99, (bucket, hit, n)


_WORD = st.sampled_from(["the", "The", "cell", "of", "four", "a", "b", "Kabul", "ß", "SS", "x.y"])
# long enough to name someone, or not, or not words at all
_TEXTS = st.lists(_WORD, min_size=25, max_size=120).map(" ".join) | st.lists(_WORD, max_size=30).map(" ".join) | st.lists(st.sampled_from(["a", "b", "A", " ", " ", "  ", leak.NBSP, "\n", "."]),
                           max_size=300).map("".join)


@settings(max_examples=200, deadline=None)
@given(text=_TEXTS, key=st.binary(min_size=32, max_size=32),
       members=st.lists(st.tuples(st.sampled_from(["r1", "r2"]), st.from_regex(r"[a-z][a-z0-9-]{0,8}", fullmatch=True)),
                        min_size=1, max_size=10, unique=True),
       pick=st.integers(min_value=0), swaps=st.lists(st.booleans(), max_size=120), cut=st.integers(0, 60))
def test_a_copy_released_to_x_never_names_anyone_but_x(text: str, key: bytes, members: list[tuple[str, str]],
                                                      pick: int, swaps: list[bool], cut: int) -> None:
    x = members[pick % len(members)]
    copy = copy_for(x[1], text, key, x[0])
    chars = list(copy)
    for (pos, _, _), swap in zip(leak.word_gaps(copy), swaps, strict=False):
        if swap:
            chars[pos] = " " if chars[pos] == leak.NBSP else leak.NBSP
    edited = "".join(chars)[cut:]
    ranked, verdict = leak.trace(key, [edited], members)
    event(f"names {len(named(ranked))}")  # --hypothesis-show-statistics: the property is not only "names nobody"
    assert set(named(ranked)) <= {x[1]} and {(m.api_root, m.member) for m in ranked if m.verdict == leak.NAMED} <= {x}
    # and an untouched copy long enough to name anyone names x
    gaps = len(leak.word_gaps(copy))
    if not any(swaps) and not cut and gaps >= leak.min_gaps(len(members)) and leak.NBSP in copy:
        assert verdict.startswith(f"released to {x[1]} of {x[0]}"), verdict
