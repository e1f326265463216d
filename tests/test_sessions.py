"""Dashboard sessions in the store (tearline.cluster.Sessions): what ends one, and what a member signing in in a
loop can and cannot do to the others' sessions; and the keys of the shared rate-limit buckets."""

from __future__ import annotations

import pytest

from tearline import cluster
from tearline.store import Store, token_hash
from tearline.web.doorman import _holder


def test_a_session_ends_when_its_token_is_rotated_or_its_member_removed(store: Store, tokens: dict[str, str]) -> None:
    sessions = cluster.Sessions(store, 3600)
    sid_b = sessions.open("member", "state-b", token_hash(tokens["state-b"]), "isis-k")
    sid_c = sessions.open("member", "ngo-c", token_hash(tokens["ngo-c"]), "isis-k")
    assert sessions.valid(sid_b) and sessions.valid(sid_c)
    store.rotate_token("isis-k", "state-b")
    assert not sessions.valid(sid_b) and sessions.valid(sid_c)
    store.remove_member("isis-k", "ngo-c")
    assert not sessions.valid(sid_c)


def test_an_operator_session_ends_when_the_operator_token_changes(store: Store) -> None:
    sessions = cluster.Sessions(store, 3600)
    sid = sessions.open("operator", "operator", token_hash("first"))
    assert sessions.valid(sid, "first")
    assert not sessions.valid(sid, "second") and not sessions.valid(sid, "")


def test_signing_in_in_a_loop_replaces_only_ones_own_sessions(store: Store, tokens: dict[str, str]) -> None:
    sessions = cluster.Sessions(store, 3600)
    others = sessions.open("member", "ngo-c", token_hash(tokens["ngo-c"]), "isis-k")
    mine = [sessions.open("member", "state-b", token_hash(tokens["state-b"]), "isis-k")
            for _ in range(cluster.Sessions.PER_NAME + 15)]
    assert sessions.valid(others)
    assert sum(sessions.get(s) is not None for s in mine) == cluster.Sessions.PER_NAME
    assert sessions.get(mine[-1]) is not None and sessions.get(mine[0]) is None


def test_a_session_id_is_stored_only_as_its_hash(store: Store, tokens: dict[str, str]) -> None:
    from sqlalchemy import text

    sid = cluster.Sessions(store, 3600).open("member", "ngo-c", token_hash(tokens["ngo-c"]), "isis-k")
    with store.engine.connect() as conn:
        stored = [tuple(r) for r in conn.execute(text("SELECT * FROM ui_sessions"))]
    assert stored and all(sid not in map(str, row) and tokens["ngo-c"] not in map(str, row) for row in stored)


@pytest.mark.parametrize(("one", "other"), [
    (("address", "7|write"), ("address|7", "write")),
    (("isis-k", 7, "read"), ("isis-k|7", "read")),
    (("a", "b"), ("a|b",)),
])
def test_bucket_keys_never_run_two_parts_into_one(one: tuple[object, ...], other: tuple[object, ...]) -> None:
    assert cluster._key(one) != cluster._key(other)
    assert cluster._key(("x" * 500,)) != cluster._key(("x" * 499,))


def test_an_ipv6_address_is_held_to_its_64_and_a_mapped_ipv4_to_itself() -> None:
    assert _holder("2001:db8:1:2:aaaa::1") == _holder("2001:db8:1:2:ffff::9") == "2001:db8:1:2::/64"
    assert _holder("2001:db8:1:3::1") != _holder("2001:db8:1:2::1")
    assert _holder("::ffff:192.0.2.7") == "192.0.2.7" == _holder("192.0.2.7")
    assert _holder("unknown") == "unknown"
