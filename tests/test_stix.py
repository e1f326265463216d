"""Validation on its own: each defect is named, and no shape of input raises instead of being named."""

from __future__ import annotations

import pytest

from tearline import stix
from tests.stixgen import indicator


@pytest.mark.parametrize("prop", ["external_references", "granular_markings", "object_marking_refs", "labels"])
@pytest.mark.parametrize("value", [True, 7, "abc", {"source_name": "x"}])
def test_a_list_property_given_as_anything_else_is_named_once(prop: str, value: object) -> None:
    problems = stix.validate(indicator(**{prop: value}))
    assert problems == [f"{prop}: must be a non-empty list"]


def test_problems_name_the_property_and_come_in_a_stable_order() -> None:
    obj = indicator(spec_version="2.0", confidence=101, created="yesterday")
    del obj["pattern"]
    assert stix.validate(obj) == [
        "spec_version: must be '2.1', got '2.0'",
        "pattern: required property is missing for indicator",
        "created: 'yesterday' is not a STIX timestamp (YYYY-MM-DDTHH:MM:SS[.s+]Z)",
        "confidence: must be an integer from 0 to 100",
    ]


def test_references_are_found_at_any_depth_with_their_path() -> None:
    ident = "identity--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f"
    obj = indicator(created_by_ref=ident, extensions={"x-ext": {"seen_by_refs": [ident], "note": {"owner_ref": ident}}})
    refs = stix.refs_of(obj)
    assert ("created_by_ref", "created_by_ref", ident) in refs
    assert ("extensions.x-ext.seen_by_refs", "seen_by_refs", ident) in refs
    assert ("extensions.x-ext.note.owner_ref", "owner_ref", ident) in refs
    assert stix.validate(obj) == []


def test_a_repeated_identifier_is_judged_the_same_every_time() -> None:
    # id_type remembers identifiers it has seen; a bad one must stay bad on its second sighting
    for _ in range(2):
        assert stix.id_type("identity--not-a-uuid") is None
        assert stix.id_type("identity--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f") == "identity"
