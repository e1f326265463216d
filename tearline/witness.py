"""A member's witness of the hub's audit log: it keeps every signed tree head the hub showed it and checks
each new one against the last, so a hub that shrank, forked or rewrote its log, even one that re-signed it
with its own key, is caught, and leaves evidence anyone can check offline.

How a rewrite shows. The witness asks the hub for a consistency proof from the last head it kept (size m,
root A) to the newest (size n). The hub signs that proof together with the root of its first m entries as
its log holds them now. An honest hub's root is A. A hub that changed any of those m entries signs another
root: two signatures by the hub's key over different roots of the same m entries, which no honest hub ever
makes. A hub that signs a proof that does not hold, or a newer head smaller than an older one, is caught the
same way. ``prove_fork`` checks such evidence with nothing but the file and the hub's public key.

What it cannot prove offline: a hub that stops answering, or that shows an older head and then no longer has
the newer one it signed. The witness still reports those (exit non-zero), marked as not provable.

Keys: the hub's public key comes from the witness's user (``--public-key``, as the operator published it);
without one, the first run trusts the key the hub names and says so, like SSH's known hosts, and every
later run holds the hub to it. The state directory keeps ``keys.json``, ``heads.jsonl`` (every head seen),
``latest.json`` (the newest head checked) and ``evidence-*.json``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import orjson

from . import merkle
from .audit import consistency_message, entry_hash, head_message, key_id, verify_signature
from .errors import BadRequest, TearlineError

EVIDENCE_FORMAT = "tearline-audit-evidence/1"
MAX_PAGES = 20  # pages of a member's own entries checked in one run
Fetch = Callable[[str, dict[str, Any]], Any]  # (path, query) → the hub's JSON answer; raises Missing for a 404


class Missing(LookupError):
    """The hub answered 404: it has no such head."""


@dataclasses.dataclass
class Outcome:
    ok: bool
    lines: list[str]
    evidence: Path | None = None
    head: dict[str, Any] | None = None


class Inconsistent(Exception):
    """The hub's answers contradict a head it showed before; ``proven`` when its signatures alone show it."""

    def __init__(self, text: str, proven: bool, heads: Sequence[dict[str, Any]], consistency: dict[str, Any] | None):
        super().__init__(text)
        self.text, self.proven, self.heads, self.consistency = text, proven, list(heads), consistency


def _signed(record: Any, message: Callable[[dict[str, Any]], bytes], keys: dict[str, str]) -> bool:
    """Is ``record`` (a head or a consistency statement, as received) signed by one of ``keys``?"""
    if not isinstance(record, dict):
        return False
    public = keys.get(str(record.get("key_id")))
    try:
        signed = message(record)
    except (KeyError, TypeError, ValueError):
        return False
    return public is not None and verify_signature(public, signed, str(record.get("signature", "")))


def _hex(value: Any) -> bytes:
    return bytes.fromhex(str(value))


class State:
    """The witness's directory: the keys it trusts and the heads it has seen."""

    def __init__(self, path: Path):
        self.path = path
        path.mkdir(parents=True, exist_ok=True)

    def _read(self, name: str) -> Any:
        f = self.path / name
        if not f.exists():
            return None
        try:
            return orjson.loads(f.read_bytes())
        except orjson.JSONDecodeError as exc:
            raise BadRequest(f"{f}: not the witness's JSON ({exc}); restore it or start a new state "
                             "directory") from None

    def _write(self, name: str, value: Any) -> None:
        tmp = self.path / (name + ".tmp")
        tmp.write_bytes(orjson.dumps(value, option=orjson.OPT_INDENT_2))
        tmp.replace(self.path / name)  # a witness stopped half-way keeps its last good state

    @property
    def keys(self) -> dict[str, str]:
        return dict(self._read("keys.json") or {})

    def trust(self, public_keys: Sequence[str]) -> None:
        self._write("keys.json", self.keys | {key_id(bytes.fromhex(k)): k.lower() for k in public_keys})

    @property
    def latest(self) -> dict[str, Any] | None:
        found: dict[str, Any] | None = self._read("latest.json")
        return found

    def keep(self, head: dict[str, Any], newest: bool) -> None:
        """Keep a signed head: in ``heads.jsonl`` (every one seen, once) or, once checked, as the newest."""
        if newest:
            self._write("latest.json", head)
            return
        with (self.path / "heads.jsonl").open("ab") as f:
            f.write(orjson.dumps(head) + b"\n")

    @property
    def last_run(self) -> float | None:
        found = self._read("ran.json")
        return float(found) if found is not None else None

    def ran(self, at: float) -> None:
        self._write("ran.json", at)

    def keep_entry(self, entry: dict[str, Any]) -> None:
        with (self.path / "entries.jsonl").open("ab") as f:
            f.write(orjson.dumps(entry) + b"\n")

    @property
    def entries_checked(self) -> int:
        return int(self._read("entries.json") or 0)

    def checked_entries(self, seq: int) -> None:
        self._write("entries.json", seq)

    def evidence(self, found: Inconsistent, hub: str) -> Path:
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%fZ")
        path = self.path / f"evidence-{stamp}.json"
        path.write_bytes(orjson.dumps({
            "format": EVIDENCE_FORMAT, "hub": hub, "found": found.text, "provable": found.proven,
            "heads": found.heads, "consistency": found.consistency}, option=orjson.OPT_INDENT_2))
        return path


def _consistent(fetch: Fetch, a: dict[str, Any], b: dict[str, Any], keys: dict[str, str]) -> str:
    """Can the two signed heads ``a`` and ``b`` both be heads of one honest log? An honest hub's heads grow in
    size and time together, and each extends the last. Raises Inconsistent; returns what it found."""
    if a["size"] == b["size"]:
        if a["root"] != b["root"]:
            raise Inconsistent(f"two signed tree heads at size {a['size']} with different roots: the log forked",
                               True, [a, b], None)
        return f"no new entries since size {a['size']}"
    small, large = sorted((a, b), key=lambda h: h["size"])
    if large["at_us"] < small["at_us"]:
        raise Inconsistent(f"the log shrank: it held {large['size']} entries at {_when(large['at_us'])} and "
                           f"{small['size']} at {_when(small['at_us'])}", True, [a, b], None)
    try:
        proof = fetch("/tearline/audit/consistency/", {"first": small["size"], "second": large["size"]})
    except Missing:
        raise Inconsistent(f"the hub no longer has the tree head it signed at size {large['size']} "
                           f"({_when(large['at_us'])})", False, [a, b], None) from None
    except TearlineError as exc:  # a hub that will not prove what it signed is reported, not excused
        raise Inconsistent(f"the hub gave no consistency proof from size {small['size']} to {large['size']}: "
                           f"{exc.description}", False, [a, b], None) from None
    statement = proof.get("consistency") if isinstance(proof, dict) else None
    if not isinstance(statement, dict) or not _signed(statement, consistency_message, keys):
        raise Inconsistent("the hub's consistency proof is not signed by a trusted key", False, [a, b], None)
    if statement.get("first") != small["size"] or statement.get("second") != large["size"]:
        raise Inconsistent(f"the hub answered a consistency proof between sizes {statement.get('first')} and "
                           f"{statement.get('second')}, not the {small['size']} and {large['size']} asked",
                           False, [a, b], statement)
    for head, side in ((small, "first"), (large, "second")):
        if statement[f"{side}_root"] != head["root"]:
            raise Inconsistent(
                f"the hub's log was rewritten: it signed root {head['root'][:16]}… for its first {head['size']} "
                f"entries at {_when(head['at_us'])} and root {statement[f'{side}_root'][:16]}… for them now",
                True, [a, b], statement)
    try:
        holds = merkle.verify_consistency(small["size"], large["size"], _hex(small["root"]), _hex(large["root"]),
                                          [_hex(p) for p in statement["proof"]])
    except (TypeError, ValueError):
        holds = False
    if not holds:
        raise Inconsistent(f"the hub signed a consistency proof from size {small['size']} to {large['size']} "
                           "that does not hold", True, [a, b], statement)
    return f"the log grew from {small['size']} to {large['size']} entries and extends what it was"


def _check_entries(fetch: Fetch, state: State, head: dict[str, Any], member: str) -> str:
    """The member's own entries up to ``head``: each must be the member's, what its hash says, and in the
    signed tree at its own place. The witness keeps a copy of each (``entries.jsonl``): the member's own record
    of what the hub recorded. At most MAX_PAGES pages a run (years of requests would otherwise run into the
    member's own rate limits); the next run goes on from there."""
    after, checked = state.entries_checked, 0
    for _page in range(MAX_PAGES):
        page = fetch("/tearline/audit/entries/", {"after": after, "size": head["size"]})
        for entry in page.get("entries", []):
            proof = entry.get("proof") or {}
            seq = entry.get("seq")
            try:
                fits = (isinstance(seq, int) and after < seq <= head["size"] and entry.get("actor") == member
                        and proof.get("index") == seq - 1 and entry_hash(entry) == entry.get("hash")
                        and merkle.verify_inclusion(_hex(entry["hash"]), seq - 1, head["size"],
                                                    [_hex(p) for p in proof.get("path", [])], _hex(head["root"])))
            except (KeyError, TypeError, ValueError):
                fits = False
            if not fits:
                raise TearlineError(f"the hub's record of this member's request {seq} is not its own, not in order, "
                                    f"or not in the signed tree head at size {head['size']}",
                                    code="witness_entry_missing")
            state.keep_entry(entry)
            after, checked = seq, checked + 1
        state.checked_entries(after)
        if not page.get("more"):
            return f"{checked} more of this member's own entries are in the signed log"
    return (f"{checked} more of this member's own entries are in the signed log; the rest (after entry {after}) "
            "on the next run")


def witness(fetch: Fetch, state: State, hub: str, member: str, public_keys: Sequence[str] = (),
            grace_seconds: float = 60.0, now: Callable[[], float] = time.time) -> Outcome:
    """One round: fetch the hub's newest head, check it against the last kept, keep it. Every signed head is
    kept before it is checked, so a hub that then refuses to answer has still handed over its signature."""
    lines: list[str] = []
    if public_keys:
        state.trust(public_keys)
    keys = state.keys
    if not keys:
        published = fetch("/tearline/audit/keys/", {}).get("keys", [])
        current = [k["public_key"] for k in published if not k.get("retired_us")]
        if not current:
            raise TearlineError("the hub names no current audit key; ask its operator for `tearline audit key`",
                                code="witness_no_key")
        state.trust(current)
        keys = state.keys
        lines.append(f"trusting the hub's key {', '.join(keys)} on first use: compare it with the key the operator "
                     "published (`tearline audit key`), or pass --public-key")
    started = now()
    new = fetch("/tearline/audit/heads/latest/", {})
    if not isinstance(new, dict) or not _signed(new, head_message, keys):
        raise TearlineError(f"the hub's newest tree head is not signed by a trusted key (it names key "
                            f"{new.get('key_id') if isinstance(new, dict) else None}); if the operator rotated its "
                            "key, pass the new one with --public-key", code="witness_unsigned")
    state.keep(new, newest=False)
    last, ran = state.latest, state.last_run
    try:
        if last is None:
            lines.append(f"first tree head kept: size {new['size']}, root {new['root']}")
        else:
            if new["size"] < last["size"]:
                # an honest hub's newest head never goes back; the signatures alone show it when the smaller head
                # is the later one, or the hub signs a different past; else it is reported, not provable
                _consistent(fetch, last, new, keys)
                raise Inconsistent(f"the hub shows as its newest a head of {new['size']} entries, older than the "
                                   f"{last['size']} it showed before", False, [last, new], None)
            lines.append(_consistent(fetch, last, new, keys))
            if new["size"] <= last["size"] and ran is not None and started - ran > grace_seconds:
                # this witness's own requests last time were recorded after that head: an honest hub has sealed
                # them since (within its seal interval), so a log that did not grow is a frozen view
                raise Inconsistent(f"the hub still shows the head of {last['size']} entries it showed "
                                   f"{started - ran:.0f} s ago, though this witness's own requests since are on its "
                                   "record: a frozen view", False, [last, new], None)
    except Inconsistent as found:
        path = state.evidence(found, hub)
        return Outcome(False, [*lines, f"INCONSISTENT: {found.text}",
                               f"evidence: {path}" + ("" if found.proven else " (not provable offline)")], path, new)
    state.keep(new, newest=True)
    state.ran(started)
    lines.append(_check_entries(fetch, state, new, member))
    return Outcome(True, lines, None, new)


def _when(at_us: int) -> str:
    return dt.datetime.fromtimestamp(at_us / 1e6, dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


# --- offline ------------------------------------------------------------------------------------------

@dataclasses.dataclass
class Verdict:
    proven: bool
    lines: list[str]


def prove_fork(doc: Any, public_keys: Sequence[str]) -> Verdict:
    """Does the evidence, with nothing but the hub's public keys, show the hub signed statements about its log
    that no honest log could produce? Every signature must verify; then two roots for one size, a larger head
    signed before a smaller one, or a signed consistency proof that does not hold, are each proof. ``doc`` is
    a witness's evidence; its ``heads`` may pool heads several members' witnesses kept, and its
    ``consistency`` may be one statement or a list."""
    if not isinstance(doc, dict) or doc.get("format") != EVIDENCE_FORMAT:
        raise BadRequest(f"not a witness's evidence (format {EVIDENCE_FORMAT})")
    if not public_keys:
        raise BadRequest("--public-key is needed: evidence is checked against the key the hub published, never "
                         "against a key named in the file")
    keys = {key_id(bytes.fromhex(k)): k.lower() for k in public_keys}
    roots: dict[int, dict[str, str]] = {}  # size → root → what signed it
    heads: dict[int, int] = {}  # size → the earliest time a head of that size was signed
    bad: list[str] = []
    statements = doc.get("consistency")
    statements = [] if statements is None else statements if isinstance(statements, list) else [statements]
    try:
        for head in doc.get("heads") or []:
            if not _signed(head, head_message, keys):
                size = head.get("size") if isinstance(head, dict) else None
                return Verdict(False, [f"the tree head at size {size} is not signed by the given key"])
            size, at = int(head["size"]), int(head["at_us"])
            roots.setdefault(size, {}).setdefault(str(head["root"]), f"head of {size} signed at {_when(at)}")
            heads[size] = min(at, heads.get(size, at))
        for statement in statements:
            if not _signed(statement, consistency_message, keys):
                return Verdict(False, ["a consistency proof is not signed by the given key"])
            what = f"consistency proof signed at {_when(int(statement['at_us']))}"
            for side in ("first", "second"):
                roots.setdefault(int(statement[side]), {}).setdefault(str(statement[f"{side}_root"]), what)
            if not merkle.verify_consistency(int(statement["first"]), int(statement["second"]),
                                             _hex(statement["first_root"]), _hex(statement["second_root"]),
                                             [_hex(p) for p in statement["proof"]]):
                bad.append(f"BAD PROOF: the hub signed a consistency proof from size {statement['first']} to "
                           f"{statement['second']} that does not hold")
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise BadRequest(f"the evidence is malformed: {exc}") from None
    lines = [f"{sum(len(r) for r in roots.values())} signed roots of {len(roots)} sizes, every signature valid",
             *_contradictions(roots, heads)]
    lines += bad
    proven = len(lines) > 1
    if not proven:
        lines.append("these statements do not contradict each other: not proof of a fork")
    return Verdict(proven, lines)


def _contradictions(roots: dict[int, dict[str, str]], heads: dict[int, int]) -> list[str]:
    """Two roots for one size; a larger head signed before a smaller one (heads grow in size and time
    together)."""
    found = [f"FORK: different roots for the first {size} entries, in the " + " and the ".join(said.values())
             for size, said in sorted(roots.items()) if len(said) > 1]
    latest_at, latest_size = None, None
    for size, at in sorted(heads.items()):
        if latest_at is not None and at < latest_at:
            found.append(f"SHRANK: the log held {size} entries at {_when(at)}, and only {latest_size} later, at "
                         f"{_when(latest_at)}")
        if latest_at is None or at > latest_at:
            latest_at, latest_size = at, size
    return found
