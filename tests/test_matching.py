"""Private matching: two members' CLIs against a running hub find exactly the values both hold, in
each one's own spelling, while the hub stores nothing but blinded messages; consent, limits and
privacy of the mailbox; normalisation and warninglists."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from tearline.errors import BadRequest
from tearline.matching import benign, protocol, values
from tearline.store import Store
from tearline.store.schema import match_log, match_requests

TL = [sys.executable, "-m", "tearline"]


def cli(hub: Any, member: str, token: str, state: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    done = subprocess.run([*TL, "match", *args, "--hub", hub.url, "--member", member, "--token", token,
                           "--state", str(state)], capture_output=True, text=True, stdin=subprocess.DEVNULL)
    if check:
        assert done.returncode == 0, done.stderr
    return done


def lists(tmp_path: Path) -> tuple[Path, Path, set[str], set[str], set[str]]:
    """state-b asks with 400 domains, state-a holds 2,000; they share 120, 40 of them spelled
    differently on each side, and both hold google.com (known benign)."""
    shared = [f"relay{i}.khorasan-media.example" for i in range(120)]
    b_only = [f"b-{i}.telegram-mirror.example" for i in range(279)]
    a_only = [f"a-{i}.hosting-front.example" for i in range(1879)]
    b_spelled = [d.upper() + "." if i < 40 else d for i, d in enumerate(shared)]
    a_file, b_file = tmp_path / "a.txt", tmp_path / "b.txt"
    a_file.write_text("# state-a's domains\n" + "\n".join(a_only + shared + ["google.com"]) + "\n")
    b_file.write_text("\n".join(b_only + b_spelled + ["Google.com"]) + "\n")
    return a_file, b_file, set(shared), set(b_spelled), set(shared + b_only + a_only)


def test_two_members_learn_the_intersection_and_the_hub_learns_no_value(
        hub: Any, tokens: dict[str, str], store: Store, tmp_path: Path) -> None:
    a_file, b_file, shared, b_spelled, every = lists(tmp_path)
    sa, sb = tmp_path / "state-a", tmp_path / "state-b"
    asked = cli(hub, "state-b", tokens["state-b"], sb, "request", str(b_file), "--type", "domain",
                "--with", "state-a", "--both")
    request_id = re.search(r"request ([0-9a-f-]{36})", asked.stdout).group(1)
    assert "1 known-benign" in asked.stderr  # google.com left out before matching
    served = cli(hub, "state-a", tokens["state-a"], sa, "serve", str(a_file), "--type", "domain")
    back_id = re.search(r"asked back as ([0-9a-f-]{36})", served.stdout).group(1)
    got_b = json.loads(cli(hub, "state-b", tokens["state-b"], sb, "result", request_id, "--json").stdout)
    assert set(got_b["matches"]) == b_spelled and got_b["asked"] == 399
    got_a = json.loads(cli(hub, "state-a", tokens["state-a"], sa, "result", back_id, "--json").stdout)
    assert set(got_a["matches"]) == shared
    # the hub kept blinded messages, sizes and a log: no value, in any spelling
    with store.engine.connect() as conn:
        stored = [bytes(v) if isinstance(v, (bytes, memoryview)) else str(v).encode()
                  for row in conn.execute(select(match_requests)).all() for v in row if v is not None]
        stored += [str(v).encode() for row in conn.execute(select(match_log)).all() for v in row]
    blob = b"\n".join(stored)
    assert len(blob) > 20_000  # the messages really are there
    for value in every | {"google.com"}:
        for spelling in (value, value.upper()):
            assert spelling.encode() not in blob, spelling
    if store.url.startswith("sqlite"):
        db_file = Path(store.url.removeprefix("sqlite:///"))
        raw = b"".join(p.read_bytes() for p in db_file.parent.glob(db_file.name + "*"))
        assert not any(v.encode() in raw for v in every)


def _ask(client: httpx.Client, to: str, kind: str, n: int, results: str = "asker") -> httpx.Response:
    _key, body = protocol.ask([f"v{i}.example" for i in range(n)])
    return client.post("/tearline/match/requests/", params={"to": to, "type": kind, "results": results},
                       content=body, headers={"content-type": "application/octet-stream"})


def test_mailbox_limits_consent_and_privacy(hub: Any, tokens: dict[str, str], tmp_path: Path) -> None:
    def member(name: str) -> httpx.Client:
        return httpx.Client(base_url=hub.url, auth=(name, tokens[name]), timeout=60)

    with member("state-b") as b, member("ngo-c") as ngo, member("state-a") as a:
        # too small to be anything but a probe
        small = _ask(b, "state-a", "hash", 99)
        assert small.status_code == 400 and "at least 100" in small.json()["description"]
        # four a day per pair and type; the fifth names the limit and when to retry
        for _ in range(4):
            assert _ask(b, "state-a", "hash", 100).status_code == 201
        fifth = _ask(b, "state-a", "hash", 100)
        assert fifth.status_code == 429 and int(fifth.headers["retry-after"]) > 0
        assert "4 hash requests a day" in fifth.json()["description"]
        # a non-member is answered exactly like a member: the mailbox does not reveal membership
        ghost, real = _ask(b, "nobody-here", "ip", 100), _ask(b, "ngo-c", "ip", 100)
        assert ghost.status_code == real.status_code == 201 and set(ghost.json()) == set(real.json())
        # only the two parties see a request; anyone else gets the answer for an id that does not exist
        rid = real.json()["id"]
        assert b.get(f"/tearline/match/requests/{rid}/").status_code == 200
        other, missing = a.get(f"/tearline/match/requests/{rid}/"), a.get("/tearline/match/requests/nope/")
        assert other.status_code == missing.status_code == 404
        assert other.json()["description"].replace(rid, "X") == missing.json()["description"].replace("nope", "X")
        # the asker is not told whether consent is standing (that would say who is a member)
        assert "consent" not in b.get(f"/tearline/match/requests/{rid}/").json()
        assert ngo.get("/tearline/match/inbox/").json()[0]["consent"] == "ask"
        # garbage instead of a PSI message
        bad = b.post("/tearline/match/requests/", params={"to": "state-a", "type": "domain"}, content=b"\x00junk",
                     headers={"content-type": "application/octet-stream"})
        assert bad.status_code == 400 and "PSI request" in bad.json()["description"]
        unknown_type = _ask(b, "state-a", "cars", 100)
        assert unknown_type.status_code == 400 and "cars" in unknown_type.json()["description"]
        # the answerer cannot collect, the asker cannot answer
        assert b.post(f"/tearline/match/requests/{rid}/answer/", content=b"x").status_code == 404
        assert ngo.get(f"/tearline/match/requests/{rid}/answer/").status_code == 404
    # without standing consent, serve asks; with no terminal it answers nothing and says how to consent
    values_file = tmp_path / "ngo.txt"
    values_file.write_text("\n".join(f"10.0.{i // 250}.{i % 250}" for i in range(300)))
    waiting = cli(hub, "ngo-c", tokens["ngo-c"], tmp_path / "s", "serve", str(values_file), "--type", "ip")
    assert "needs your consent" in waiting.stderr and f"--id {rid} --yes" in waiting.stderr
    declined = cli(hub, "ngo-c", tokens["ngo-c"], tmp_path / "s", "serve", str(values_file), "--type", "ip",
                   "--id", rid, "--decline")
    assert "declined" in declined.stdout


def test_a_bad_list_is_refused_with_every_bad_line(hub: Any, tokens: dict[str, str], tmp_path: Path) -> None:
    bad = tmp_path / "bad.txt"
    bad.write_text("evil.example\nhttp://x.example/path\nfine.example\n0x52908400098527886E0F7030069857D2E4169Ee7\n")
    done = cli(hub, "state-b", tokens["state-b"], tmp_path / "s", "request", str(bad), "--type", "domain",
               "--with", "state-a", check=False)
    assert done.returncode == 2 and "bad.txt:2" in done.stderr and "bad.txt:4" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize("kind, spellings, canonical", [
    ("domain", ["Evil.Example.COM.", "evil.example.com"], "evil.example.com"),
    ("domain", ["bücher.example", "XN--BCHER-KVA.example"], "xn--bcher-kva.example"),
    ("phone", ["0300 1234567", "+92 300 1234567", "+92-300-123-4567"], "+923001234567"),
    ("wallet", ["0x52908400098527886E0F7030069857D2E4169EE7", "0x52908400098527886e0f7030069857d2e4169ee7"],
     "0x52908400098527886e0f7030069857d2e4169ee7"),
    ("wallet", ["BC1QAR0SRRR7XFKVY5L643LYDNW9RE59GTZZWF5MDQ"], "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq"),
    ("hash", ["D41D8CD98F00B204E9800998ECF8427E"], "d41d8cd98f00b204e9800998ecf8427e"),
    ("ip", ["2001:0db8:0000::0001"], "2001:db8::1"),
])
def test_trivial_spelling_differences_normalise_to_one_value(kind: str, spellings: list[str], canonical: str) -> None:
    assert {values.normalise(kind, s) for s in spellings} == {canonical}


@pytest.mark.parametrize("kind, value, reason", [
    ("wallet", "0x52908400098527886E0F7030069857D2E4169Ee7", "EIP-55"),
    ("wallet", "1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNb", "checksum"),
    ("phone", "12", "phone"),
    ("hash", "abc", "hex"),
    ("domain", "localhost", "domain"),
])
def test_typos_are_refused_not_matched(kind: str, value: str, reason: str) -> None:
    with pytest.raises(BadRequest, match=reason):
        values.parse([value], kind)


def test_known_benign_values_are_dropped_by_type() -> None:
    keep, dropped = benign.split("domain", ["google.com", "relay.khorasan-media.example"])
    assert keep == ["relay.khorasan-media.example"] and "google.com" in dropped
    keep, dropped = benign.split("hash", ["d41d8cd98f00b204e9800998ecf8427e", "0" * 31 + "1"])
    assert "d41d8cd98f00b204e9800998ecf8427e" in dropped and keep == ["0" * 31 + "1"]
    keep, dropped = benign.split("ip", ["8.8.8.8", "203.0.113.77"])
    assert "8.8.8.8" in dropped


def test_a_standing_consent_must_name_members() -> None:
    from tearline import compact
    from tearline.errors import ConfigError

    text = ("name: x\nscope: {actors: [{name: A}]}\nmembers: [{name: a}, {name: b}]\nmatching:\n"
            "  standing_consent:\n    - {answerer: a, asker: zed, types: [domain]}\n")
    with pytest.raises(ConfigError, match=r"standing_consent\[0\]\.asker: 'zed' is not a member"):
        compact.parse(text)
