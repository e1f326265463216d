"""Full-text search through the gate: the index proposes, the member's own copy decides. What a copy leaves
out (a part below the tear line) finds nothing, so a search cannot confirm a guess at it; on SQLite (FTS5)
and on PostgreSQL (GIN over the body's words)."""

from __future__ import annotations

import datetime as dt

import pytest

from tearline import markings, write
from tearline.errors import BadRequest
from tearline.keys import HubKeys
from tearline.release import search as finding
from tearline.store import Store
from tests.stixgen import ACTOR_ID, TS, indicator


def _members(store: Store) -> dict[str, object]:
    with store.engine.connect() as conn:
        return {m.name: m for m in store.members_of(conn, "isis-k")}


def test_search_finds_what_the_copy_holds_and_nothing_below_its_tear_line(
        store: Store, tokens: dict[str, str], keys: HubKeys) -> None:
    intel = store.collection("isis-k", "intel")
    assert intel is not None
    members = _members(store)
    hidden = indicator(7001, name="Kunar relay", description="Informant Zarghun reports the relay moved",
                       object_marking_refs=[markings.TLP2["green"][0]],
                       granular_markings=[{"marking_ref": markings.TLP2["amber"][0], "selectors": ["description"]}])
    link = {"type": "relationship", "spec_version": "2.1", "id": "relationship--7b3c1f0e-2a4d-4c6e-9f81-0d2e3a4b5c61",
            "created": TS, "modified": TS, "relationship_type": "indicates", "source_ref": hidden["id"],
            "target_ref": ACTOR_ID, "object_marking_refs": [markings.TLP2["green"][0]]}
    assert write.add_envelope(store, intel, members["state-a"], [hidden, link], keys)["failure_count"] == 0
    today = dt.date.today()

    def found(member: str, query: str) -> set[str]:
        return {o["id"] for o in finding.search(store, members[member], intel, keys, today, query)}  # type: ignore[arg-type]

    assert hidden["id"] in found("ngo-c", "kunar RELAY")  # what its copy holds, in any case
    assert found("ngo-c", "zarghun") == set() and found("ngo-c", "kunar zarghun") == set()  # below its tear line
    assert hidden["id"] in found("state-b", "zarghun")  # AMBER: the description is in its copy
    assert hidden["id"] in found("state-a", "zarghun")  # its own
    with pytest.raises(BadRequest, match="at least one word"):
        found("ngo-c", "  - ")
    # what JSON may hold and an index expression might choke on (an escaped NUL) is stored and found
    odd = indicator(7002, name="Nul relay", description="before \x00 after", object_marking_refs=link["object_marking_refs"])
    assert write.add_envelope(store, intel, members["state-a"], [odd], keys)["failure_count"] == 0
    assert odd["id"] in found("state-a", "nul relay")
