"""Tear lines: granular markings decide which parts of an object each reader receives, and what is
left is still a valid object whose remaining markings point at the right parts."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from stix2validator import ValidationOptions, validate_instance

from tearline import granular, markings, release, stix
from tearline.keys import HubKeys
from tearline.model import Collection, Member, Policy
from tests.stixgen import ACTOR_ID
from tests.test_release import POST, clients, gate  # noqa: F401  (fixtures)

RED, STRICT, AMBER, GREEN = (markings.TLP2[level][0] for level in ("red", "amber+strict", "amber", "green"))
TS = "2024-05-01T08:00:00.000Z"


def report(**extra: Any) -> dict[str, Any]:
    return {
        "type": "report", "spec_version": "2.1", "id": f"report--{uuid.uuid4()}", "created": TS, "modified": TS,
        "published": TS, "name": "ISKP cell preparing an attack on a Kabul hotel",
        "description": "A cell is preparing an attack on a hotel in Kabul during the conference week.",
        "object_refs": [ACTOR_ID], "object_marking_refs": [GREEN], "x_tearline_about_ref": ACTOR_ID,
        "external_references": [{"source_name": "hotel-registry", "description": "guest list"},
                                {"source_name": "asset-7", "description": "a human source inside the cell"},
                                {"source_name": "press", "url": "https://example.org/news"}],
        "x_tearline_sourcing": "Reported by a human source with direct access; corroborated by intercepts.",
        **extra,
    }


def member(name: str, tlp_max: str) -> Member:
    return Member(1, "gate", name, True, True, tlp_max)


# members may know each other here, so the recipients list stays in copies and the tests can compare whole objects
_COLLECTION = Collection("c", "gate", "intel", "", "", True, 1, Policy(members_visible=True).dumps())


def redact(reader: Member, obj: dict[str, Any], hidden: set[str], own: bool = False) -> dict[str, Any]:
    """The reader's copy of ``obj`` as the release module makes it (without its fingerprint)."""
    if own:
        return obj
    return release.Copier(None, None, reader, _COLLECTION, HubKeys(b"k" * 32), [], mark=False).shape(obj, hidden)


def valid(obj: dict[str, Any]) -> list[str]:
    problems = stix.validate(obj)
    results = validate_instance(obj, ValidationOptions(version="2.1", strict=False))
    return problems + [str(e) for e in results.errors]


def test_a_red_part_goes_only_to_its_named_recipients() -> None:
    obj = report(x_tearline_recipients=["alpha"],
                 granular_markings=[{"marking_ref": RED, "selectors": ["x_tearline_sourcing", "external_references.[1]"]}])
    to_alpha = redact(member("alpha", "red"), obj, set())
    to_bravo = redact(member("bravo", "red"), obj, set())
    assert to_alpha == obj
    assert "x_tearline_sourcing" not in to_bravo
    assert [r["source_name"] for r in to_bravo["external_references"]] == ["hotel-registry", "press"]
    assert "granular_markings" not in to_bravo  # nothing it marked is left
    assert to_bravo["description"] == obj["description"]


def test_remaining_selectors_are_renumbered_after_items_are_cut() -> None:
    obj = report(granular_markings=[
        {"marking_ref": AMBER, "selectors": ["external_references.[0]"]},
        {"marking_ref": GREEN, "selectors": ["external_references.[2].url", "description"]},
    ])
    copy = redact(member("ngo", "green"), obj, set())
    assert [r["source_name"] for r in copy["external_references"]] == ["asset-7", "press"]
    assert copy["granular_markings"] == [{"marking_ref": GREEN, "selectors": ["external_references.[1].url", "description"]}]
    assert valid(copy) == []


def test_a_list_left_empty_goes() -> None:
    obj = report(labels=["hotel"], granular_markings=[{"marking_ref": AMBER, "selectors": ["labels.[0]"]}])
    copy = redact(member("ngo", "green"), obj, set())
    assert "labels" not in copy
    assert valid(copy) == []


@pytest.mark.parametrize("selector", ["name", "id", "created", "object_refs", "object_refs.[0]", "published",
                                      "object_marking_refs", "type"])
def test_a_tear_line_may_not_cut_what_a_valid_copy_needs(selector: str) -> None:
    obj = report(granular_markings=[{"marking_ref": AMBER, "selectors": [selector]}])
    (problem,) = stix.validate(obj)
    assert problem.startswith(f"granular_markings[0].selectors: {selector!r} ")
    assert "cannot" in problem


def test_amber_strict_parts_stay_with_the_author() -> None:
    obj = report(granular_markings=[{"marking_ref": STRICT, "selectors": ["x_tearline_sourcing"]}])
    assert "x_tearline_sourcing" not in redact(member("alpha", "red"), obj, set())
    assert redact(member("alpha", "red"), obj, set(), own=True) == obj


def test_a_cut_reference_renumbers_the_markings_on_the_others() -> None:
    hidden = f"indicator--{uuid.uuid4()}"
    kept = f"indicator--{uuid.uuid4()}"
    obj = report(x_tearline_related_refs=[ACTOR_ID, hidden, kept],
                 granular_markings=[{"marking_ref": GREEN, "selectors": ["x_tearline_related_refs.[2]"]}])
    copy = redact(member("ngo", "green"), obj, {hidden})
    assert copy["x_tearline_related_refs"] == [ACTOR_ID, kept]
    assert copy["granular_markings"][0]["selectors"] == ["x_tearline_related_refs.[1]"]


def test_a_selector_that_names_nothing_is_refused_at_the_door() -> None:
    obj = report(granular_markings=[{"marking_ref": RED, "selectors": ["external_references.[7]", "nothing"]}])
    problems = stix.validate(obj)
    assert "granular_markings[0].selectors: 'external_references.[7]' names no part of this object" in problems
    assert "granular_markings[0].selectors: 'nothing' names no part of this object" in problems


# --- the invariant over generated markings ---------------------------------------------------------

PARTS = ["description", "x_tearline_sourcing", "external_references", "external_references.[0]",
         "external_references.[1]", "external_references.[2]", "external_references.[1].description",
         "external_references.[2].url", "labels", "labels.[0]", "labels.[1]"]
OTHER = "location--6b1f0f7e-2d55-4a8b-9f1e-0c7d2a3b4c5d"
LEVEL = {GREEN: "green", AMBER: "amber", STRICT: "amber+strict", RED: "red"}


def _leaf_values(obj: Any, path: granular.Path = ()) -> dict[granular.Path, Any]:
    """Every scalar of an object by its path."""
    if isinstance(obj, dict):
        return {p: v for k, val in obj.items() for p, v in _leaf_values(val, (*path, k)).items()}
    if isinstance(obj, list):
        return {p: v for i, val in enumerate(obj) for p, v in _leaf_values(val, (*path, i)).items()}
    return {path: obj}


marked_reports = st.lists(
    st.tuples(st.sampled_from(list(LEVEL)), st.lists(st.sampled_from(PARTS), min_size=1, max_size=3, unique=True)),
    min_size=1, max_size=4,
).map(lambda gms: report(labels=["hotel", "kabul"], x_tearline_recipients=["alpha"], object_refs=[ACTOR_ID, OTHER],
                         granular_markings=[{"marking_ref": ref, "selectors": sels} for ref, sels in gms]))
readers = st.sampled_from([("alpha", "red"), ("bravo", "red"), ("bravo", "amber"), ("ngo", "green"), ("ngo", "clear")])


@settings(max_examples=300, deadline=None)
@given(obj=marked_reports, who=readers, hide_actor=st.booleans())
def test_no_reader_receives_a_part_marked_beyond_it_and_the_copy_stays_valid(obj, who, hide_actor) -> None:  # type: ignore[no-untyped-def]
    name, ceiling = who
    copy = redact(member(name, ceiling), obj, {ACTOR_ID} if hide_actor else set())
    may_read = granular.reader(ceiling, name in obj["x_tearline_recipients"])
    forbidden = [granular.parse(s) for gm in obj["granular_markings"] if not may_read(LEVEL[gm["marking_ref"]])
                 for s in gm["selectors"]]
    # every original value under a forbidden part is absent from the copy (values are unique here, so
    # a value that moved to another index would still be found)
    leaked = {repr(v) for p, v in _leaf_values(obj).items() if any(p[:len(f)] == f for f in forbidden)}
    assert not ({repr(v) for v in _leaf_values(copy).values()} & leaked - {repr("2.1"), repr(TS), repr(ACTOR_ID)}), (forbidden, copy)
    # and every remaining marking marks only values that the same marking marked in the original
    for gm in copy.get("granular_markings", ()):
        before = {repr(v) for g in obj["granular_markings"] if g["marking_ref"] == gm["marking_ref"]
                  for sel in g["selectors"] for v in _leaf_values(_at(obj, granular.parse(sel))).values()}
        for sel in gm["selectors"]:
            assert {repr(v) for v in _leaf_values(_at(copy, granular.parse(sel))).values()} <= before, (sel, copy)
    assert valid(copy) == [], copy


def _at(obj: Any, path: granular.Path) -> Any:
    for token in path:
        obj = obj[token]
    return obj


# --- through the hub --------------------------------------------------------------------------------

def test_each_member_reads_its_own_tear_line_through_taxii(clients) -> None:  # type: ignore[no-untyped-def]
    obj = report(x_tearline_recipients=["alpha"], granular_markings=[
        {"marking_ref": RED, "selectors": ["x_tearline_sourcing"]},
        {"marking_ref": AMBER, "selectors": ["external_references.[1]"]},
    ])
    obj["object_refs"] = [ACTOR_ID]
    posted = clients["bravo"].post("/taxii2/gate/collections/intel/objects/", json={"objects": [obj]}, headers=POST)
    assert posted.json()["success_count"] == 1, posted.json()
    seen = {}
    for name, c in clients.items():
        copies = []
        for path in (f"objects/{obj['id']}/", "objects/"):  # object by id and the collection: one copy
            body = c.get(f"/taxii2/gate/collections/intel/{path}").json()
            copies += [o for o in body["objects"] if o["id"] == obj["id"]]
        assert len(copies) == 2 and copies[0] == copies[1], name
        seen[name] = copies[0]
    assert seen["bravo"] == obj  # the author's own copy is whole
    assert seen["alpha"]["x_tearline_sourcing"] == obj["x_tearline_sourcing"]
    assert "x_tearline_sourcing" not in seen["charlie"]  # RED, not a recipient
    assert len(seen["charlie"]["external_references"]) == 3  # AMBER: within charlie's ceiling
    assert "x_tearline_sourcing" not in seen["ngo"] and len(seen["ngo"]["external_references"]) == 2
    for copy in seen.values():
        assert valid(copy) == []


@pytest.mark.parametrize("level", ["clear", "green"])
def test_parts_at_or_under_the_ceiling_reach_the_ngo(level: str) -> None:
    obj = report(granular_markings=[{"marking_ref": markings.TLP2[level][0], "selectors": ["x_tearline_sourcing"]}])
    assert redact(member("ngo", "green"), obj, set())["x_tearline_sourcing"] == obj["x_tearline_sourcing"]
