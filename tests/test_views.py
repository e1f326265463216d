"""The dashboard's views are plain functions over a member's copies: datasets are never added
together, incidents land in the right province, and the graph keeps to what the member sees."""

from __future__ import annotations

from typing import Any

from tearline import views

ACTOR = {"type": "threat-actor", "id": "threat-actor--1", "name": "ISKP"}


def incident(n: int, day: str, source: str, country: str, province: str | None, dead: int) -> list[dict[str, Any]]:
    inc = {"type": "incident", "id": f"incident--{n}", "created": f"{day}T00:00:00Z", "name": f"attack {n}",
           "external_references": [{"source_name": source, "external_id": str(n)}],
           "x_tearline_fatalities": {"best": dead}}
    loc = {"type": "location", "id": f"location--{n}", "country": country,
           **({"administrative_area": province} if province else {})}
    return [inc, loc,
            {"type": "relationship", "id": f"relationship--a{n}", "relationship_type": "attributed-to",
             "source_ref": inc["id"], "target_ref": ACTOR["id"]},
            {"type": "relationship", "id": f"relationship--l{n}", "relationship_type": "located-at",
             "source_ref": inc["id"], "target_ref": loc["id"]}]


def seen() -> views.Seen:
    objs = [ACTOR, *incident(1, "2024-01-05", "UCDP GED", "AF", "Kabul", 10),
            *incident(2, "2024-01-20", "UCDP GED", "PK", "Khyber Pakhtunkwa", 3),
            *incident(3, "2024-01-05", "Curated", "AF", "Kabul", 9),  # the same attack in another dataset
            *incident(4, "2024-03-02", "Curated", "AF", None, 1)]
    return views.Seen.of(objs)


def test_timeline_keeps_datasets_apart_and_filters_by_country() -> None:
    t = views.timeline(seen())
    assert t["series"]["UCDP GED"] == [{"month": "2024-01", "events": 2, "fatalities": 13}]
    assert t["series"]["Curated"] == [{"month": "2024-01", "events": 1, "fatalities": 9},
                                      {"month": "2024-02", "events": 0, "fatalities": 0},  # quiet, not missing
                                      {"month": "2024-03", "events": 1, "fatalities": 1}]
    afg = views.timeline(seen(), "AFG")
    assert afg["series"]["UCDP GED"] == [{"month": "2024-01", "events": 1, "fatalities": 10}]
    assert afg["choices"] == ["AFG", "PAK"]


def test_provinces_are_matched_to_natural_earth_and_unplaced_ones_counted() -> None:
    assert views.provinces(seen(), "UCDP GED")["counts"] == {"AF-KAB": 1, "PK-KP": 1}  # UCDP's own spelling
    curated = views.provinces(seen(), "Curated")
    assert curated["counts"] == {"AF-KAB": 1} and curated["unplaced"] == 1


def test_the_graph_keeps_recent_incidents_and_only_edges_between_kept_nodes() -> None:
    g = views.graph(seen(), incidents=2)
    ids = {n["id"] for n in g["nodes"]}
    assert ids == {"threat-actor--1", "incident--4", "incident--2", "location--4", "location--2"}
    assert all(e["source_ref"] in ids and e["target_ref"] in ids for e in g["edges"]) and len(g["edges"]) == 4


def test_links_name_what_an_object_refers_to_and_what_refers_to_it() -> None:
    s = seen()
    found = views.links(s, s.objects["incident--1"])
    assert [o["id"] for o in found["refers_to"]] == []
    # a relationship is shown as the object at its other end, with the relationship beside it
    assert {(i["obj"]["id"], i["rel"]["id"]) for i in found["referred_by"]} == {
        ("threat-actor--1", "relationship--a1"), ("location--1", "relationship--l1")}
