"""Hypothesis strategies: valid STIX 2.1 objects of several types, and ways to break them."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import strategies as st

from tearline import markings
from tests.stixgen import ACTOR_ID

_BASE = datetime(2015, 1, 1, tzinfo=UTC)

text = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=40)
uuids = st.uuids(version=4).map(str)


@st.composite
def timestamps(draw: Any) -> str:
    moment = _BASE + timedelta(seconds=draw(st.integers(0, 10 * 365 * 86400)), milliseconds=draw(st.integers(0, 999)))
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


json_scalars = st.none() | st.booleans() | st.integers(-(2**53), 2**53) | text
json_values = st.recursive(json_scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
    st.from_regex(r"[a-z][a-z0-9_]{2,10}", fullmatch=True), inner, max_size=3), max_leaves=6)


@st.composite
def stix_objects(draw: Any) -> dict[str, Any]:
    kind = draw(st.sampled_from(["indicator", "threat-actor", "identity", "location", "incident", "malware", "report"]))
    created = draw(timestamps())
    obj: dict[str, Any] = {
        "type": kind, "spec_version": "2.1", "id": f"{kind}--{draw(uuids)}", "created": created, "modified": created,
    }
    if kind == "indicator":
        obj |= {"pattern": "[domain-name:value = 'a.example']", "pattern_type": "stix", "valid_from": created}
    elif kind == "location":
        obj |= {"country": draw(st.sampled_from(["AF", "PK", "IR", "TJ", "UZ"]))}
    elif kind == "malware":
        obj |= {"is_family": True, "name": draw(text)}
    elif kind == "report":
        # what a report refers to must be in the collection (the compact's actor always is)
        obj |= {"name": draw(text), "published": created, "object_refs": [ACTOR_ID]}
    else:
        obj["name"] = draw(text)
    obj["x_tearline_about_ref"] = ACTOR_ID  # in the demo compact's scope
    if draw(st.booleans()):
        obj["description"] = draw(text)
    if draw(st.booleans()):
        obj["labels"] = draw(st.lists(text, min_size=1, max_size=3))
    if draw(st.booleans()):
        obj["object_marking_refs"] = [markings.TLP2[draw(st.sampled_from(markings.LEVELS))][0]]
    if draw(st.booleans()):
        obj["confidence"] = draw(st.integers(0, 100))
    if draw(st.booleans()):
        obj["created_by_ref"] = f"identity--{draw(uuids)}"
    for name in draw(st.lists(st.from_regex(r"x_[a-z]{3,8}", fullmatch=True), max_size=2, unique=True)):
        obj[name] = draw(json_values.filter(lambda v: v is not None and v != [] and v != {}))
    return obj


@st.composite
def broken_objects(draw: Any) -> Any:
    """A valid object with one defect that STIX 2.1 forbids."""
    obj = draw(stix_objects())
    defect = draw(st.sampled_from(["drop", "bad_id", "bad_time", "wrong_type_id", "bad_ref", "spec", "not_object",
                                   "modified_before_created", "bad_confidence", "not_a_list"]))
    if defect == "drop":
        obj.pop(draw(st.sampled_from(["id", "created", "modified", "spec_version", "type"])))
    elif defect == "bad_id":
        obj["id"] = draw(text)
    elif defect == "bad_time":
        obj["created"] = draw(text.filter(lambda t: not t.endswith("Z")))
    elif defect == "wrong_type_id":
        obj["id"] = f"campaign--{uuid.uuid4()}"
    elif defect == "bad_ref":
        obj["created_by_ref"] = draw(st.sampled_from([f"indicator--{uuid.uuid4()}", "identity--nope", 7]))
    elif defect == "spec":
        obj["spec_version"] = draw(st.sampled_from(["2.0", "3", 2.1]))
    elif defect == "not_object":
        return draw(json_scalars | st.lists(json_scalars, max_size=2))
    elif defect == "modified_before_created":
        obj["created"], obj["modified"] = "2024-01-02T00:00:00.000Z", "2024-01-01T00:00:00.000Z"
    elif defect == "bad_confidence":
        obj["confidence"] = draw(st.sampled_from([101, -1, "high", 5.5]))
    elif defect == "not_a_list":
        # a list property given as a scalar used to be walked item by item (a string's characters),
        # and a number or true raised
        prop = draw(st.sampled_from(["external_references", "granular_markings", "object_marking_refs", "labels"]))
        obj[prop] = draw(st.sampled_from([True, 7, "x", "source_name", {"source_name": "x"}]))
    return obj
