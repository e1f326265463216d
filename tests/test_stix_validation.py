"""The hub's validation is at least as strict as the OASIS validator on errors: over valid objects of
every type and small, targeted defects in them, whatever stix2-validator rejects, the hub rejects too.
And the fast path for indicator patterns never accepts a pattern the OASIS pattern grammar refuses."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from stix2validator import ValidationOptions, validate_instance
from stix2validator.v21 import enums

from tearline import markings, stix
from tearline.stix import patterns

TS = "2024-03-01T10:00:00.000Z"
LATER = "2024-03-02T10:00:00.000Z"
OPTIONS = ValidationOptions(version="2.1")


def oasis_errors(obj: Any) -> list[str]:
    if not isinstance(obj, dict) or "id" not in obj or "type" not in obj:
        return ["not an object with id and type"]
    try:
        result = validate_instance(obj, OPTIONS)
    except Exception as exc:  # the validator itself chokes on some shapes; that is a rejection too
        return [f"validator raised {type(exc).__name__}"]
    return [str(e) for e in result.errors]


def ident(kind: str) -> str:
    return f"{kind}--{uuid.uuid4()}"


def sdo(kind: str, **extra: Any) -> dict[str, Any]:
    return {"type": kind, "spec_version": "2.1", "id": ident(kind), "created": TS, "modified": TS, **extra}


# One valid object of each type, with the properties that make it so.
BASES: dict[str, Any] = {
    "attack-pattern": lambda: sdo("attack-pattern", name="Spear phishing",
                                  kill_chain_phases=[{"kill_chain_name": "mitre-attack", "phase_name": "initial"}]),
    "campaign": lambda: sdo("campaign", name="Kabul 2024", first_seen=TS, last_seen=LATER),
    "course-of-action": lambda: sdo("course-of-action", name="Block"),
    "grouping": lambda: sdo("grouping", context="suspicious-activity", object_refs=[ident("indicator")]),
    "identity": lambda: sdo("identity", name="Ministry", identity_class="organization", sectors=["government"]),
    "incident": lambda: sdo("incident", name="Bombing"),
    "indicator": lambda: sdo("indicator", pattern="[domain-name:value = 'a.example']", pattern_type="stix",
                             valid_from=TS, indicator_types=["malicious-activity"]),
    "infrastructure": lambda: sdo("infrastructure", name="C2", infrastructure_types=["command-and-control"]),
    "intrusion-set": lambda: sdo("intrusion-set", name="ISKP", aliases=["ISIS-K"], first_seen=TS),
    "location": lambda: sdo("location", country="AF", latitude=34.5, longitude=69.2, precision=1000.0),
    "malware": lambda: sdo("malware", is_family=True, name="loader", malware_types=["dropper"]),
    "malware-analysis": lambda: sdo("malware-analysis", product="sandbox", result="malicious"),
    "note": lambda: sdo("note", content="seen twice", object_refs=[ident("indicator")]),
    "observed-data": lambda: sdo("observed-data", first_observed=TS, last_observed=LATER, number_observed=2,
                                 object_refs=[ident("ipv4-addr")]),
    "opinion": lambda: sdo("opinion", opinion="agree", object_refs=[ident("report")]),
    "report": lambda: sdo("report", name="Weekly", published=TS, report_types=["threat-report"],
                          object_refs=[ident("indicator")]),
    "threat-actor": lambda: sdo("threat-actor", name="ISKP", threat_actor_types=["terrorist"], roles=["agent"]),
    "tool": lambda: sdo("tool", name="nmap", tool_types=["network-capture"]),
    "vulnerability": lambda: sdo("vulnerability", name="CVE-2024-0001",
                                 external_references=[{"source_name": "cve", "external_id": "CVE-2024-0001"}]),
    "relationship": lambda: sdo("relationship", relationship_type="indicates", source_ref=ident("indicator"),
                                target_ref=ident("threat-actor"), start_time=TS, stop_time=LATER),
    "sighting": lambda: sdo("sighting", sighting_of_ref=ident("indicator"), count=3, first_seen=TS, last_seen=LATER,
                            where_sighted_refs=[ident("identity")]),
    "ipv4-addr": lambda: {"type": "ipv4-addr", "spec_version": "2.1", "id": ident("ipv4-addr"), "value": "10.0.0.1"},
    "domain-name": lambda: {"type": "domain-name", "spec_version": "2.1", "id": ident("domain-name"),
                            "value": "a.example"},
    "file": lambda: {"type": "file", "spec_version": "2.1", "id": ident("file"), "name": "a.exe",
                     "hashes": {"SHA-256": "a" * 64}, "size": 10},
    "url": lambda: {"type": "url", "spec_version": "2.1", "id": ident("url"), "value": "https://a.example/x"},
    "email-addr": lambda: {"type": "email-addr", "spec_version": "2.1", "id": ident("email-addr"),
                           "value": "a@b.example"},
    "network-traffic": lambda: {"type": "network-traffic", "spec_version": "2.1", "id": ident("network-traffic"),
                                "src_ref": ident("ipv4-addr"), "protocols": ["tcp"], "start": TS, "end": LATER},
    "artifact": lambda: {"type": "artifact", "spec_version": "2.1", "id": ident("artifact"),
                         "payload_bin": "aGVsbG8=", "mime_type": "text/plain"},
    "software": lambda: {"type": "software", "spec_version": "2.1", "id": ident("software"), "name": "x",
                         "languages": ["en"]},
    "marking-definition": lambda: markings.definition("green") | {"id": ident("marking-definition")},
}

# Values a defect may put anywhere: each breaks some property's rule, and many are almost right.
ODD = [None, "", "x", "yes", 0, -1, 101, 1.5, True, False, [], ["x"], [1], {}, {"a": "b"}, TS, "2024-02-30T10:00:00.000Z",
       "2024-03-01T10:00:00Z", "2024-03-01T10:00:00.000", "2024-03-01 10:00:00.000Z", "٢٠٢٤-03-01T10:00:00.000Z",
       "0001-01-01T00:00:00.000Z", ident("indicator"), ident("identity"), ident("marking-definition"),
       "identity--not-a-uuid", "en", "xx-nonsense", "http://", "not a url", "a" * 64, "GREEN",
       "[ipv4-addr:value = '1.2.3.4']", "[x:y = 'z'", "[file:hashes.MD5 = 'abc']", "[ipv4-addr:Value = '1']",
       "[ipv4-addr:value = '1'] AND [domain-name:value = 'a.example']", "image/png", "not/a type", "UTF-8", "ÿ"]


@st.composite
def defective(draw: Any) -> Any:
    kind = draw(st.sampled_from(sorted(BASES)))
    obj = BASES[kind]()
    props = sorted(set(enums.PROPERTIES.get(kind, ())) | set(enums.OBSERVABLE_PROPERTIES.get(kind, ())) | set(obj))
    for _ in range(draw(st.integers(1, 2))):
        how = draw(st.sampled_from(["set", "drop", "list-item", "extension", "custom"]))
        prop = draw(st.sampled_from(props))
        if how == "set":
            obj[prop] = draw(st.sampled_from(ODD))
        elif how == "drop":
            obj.pop(prop, None)
        elif how == "list-item" and isinstance(obj.get(prop), list):
            obj[prop] = [*obj[prop], draw(st.sampled_from(ODD))]
        elif how == "extension":
            obj["extensions"] = draw(st.sampled_from([
                {"x-foo-ext": {"a": 1}}, {ident("extension-definition"): {"extension_type": "property-extension"}},
                {ident("extension-definition"): {"extension_type": "nonsense"}}, {"archive-ext": {"contains_refs": []}},
                {"x-foo-ext": "x"}]))
        else:
            obj[draw(st.sampled_from(["x_foo", "x_foo_bar", "foo", "xy", "X_big", "x-dash"]))] = draw(st.sampled_from(ODD))
    return obj


@pytest.mark.parametrize("kind", sorted(BASES))
def test_every_base_object_is_valid_for_both(kind: str) -> None:
    obj = BASES[kind]()
    assert oasis_errors(obj) == []
    assert stix.validate(obj) == []


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(obj=defective())
def test_whatever_the_oasis_validator_rejects_the_hub_rejects(obj: dict[str, Any]) -> None:
    if oasis_errors(obj):
        assert stix.validate(obj), f"accepted what stix2-validator rejects: {oasis_errors(obj)}"


def test_the_reviewers_findings_are_refused_with_the_property_named() -> None:
    family = BASES["malware"]() | {"is_family": "yes"}
    assert stix.validate(family) == ["is_family: must be true or false, got 'yes'"]
    broken = BASES["indicator"]() | {"pattern": "[this is not a pattern"}
    (problem,) = stix.validate(broken)
    assert problem.startswith("pattern: ")


# --- patterns --------------------------------------------------------------------------------------

# Mostly the tokens of valid patterns, now and then one that is almost right: the fast path must never
# take an almost-right pattern for a right one.
_TYPES = (["ipv4-addr", "domain-name", "file", "url", "email-addr", "network-traffic", "x-custom-thing"],
          ["ab", "IPv4-addr", "x_thing", "file-", "true", "a" * 251])
_PATHS = (["value", "name", "hashes.MD5", "hashes.'SHA-256'", "hashes.SHA256", "x_custom", "src_ref.value", "size",
           "parent_directory_ref.path", "hashes.'SHA-1'"],
          ["Value", "ab", "hashes.SHA-256", "AND", "true", "hashes.'MD5'", "'value'", "value.", "value..name", "a-b"])
_OPS_ = ([" = ", "=", " != ", "  =  "], [" == ", " <> ", " > ", " LIKE ", " IN ", "= =", " =\t"])
_LITERALS = (["'1.2.3.4'", "'a.example'", "'" + "a" * 32 + "'", "'" + "b" * 64 + "'", "5", "0", "'it\\'s'",
              "'back\\\\slash'", "'ünïcödé'"],
             ["'abc'", "'bad\\escape'", "07", "'unterminated", "true", "1.5", "-3", "+3", "h'00ff'",
              "t'2024-01-01T00:00:00Z'", "'" + "z" * 64 + "'", "5x"])
_JOINS = ([" AND ", " OR "], [" and ", "AND", " XOR ", "  AND", " AND  "])
_OBS_JOINS = ([" AND ", " OR ", " FOLLOWEDBY "], [" followedby ", " ", "AND", " AND  "])
_WRAPS = (["[{}]", "[ {} ]"], ["({})", "[{}", "[{}]]", "[({})]", "[{}] "])


@st.composite
def pattern_texts(draw: Any) -> str:
    def pick(choices: tuple[list[str], list[str]]) -> str:
        good, odd = choices
        return draw(st.sampled_from(good if draw(st.integers(0, 19)) else odd))

    def comparison() -> str:
        return f"{pick(_TYPES)}:{pick(_PATHS)}{pick(_OPS_)}{pick(_LITERALS)}"

    observations = []
    for _ in range(draw(st.integers(1, 3))):
        parts = [comparison() for _ in range(draw(st.integers(1, 3)))]
        joined = parts[0]
        for part in parts[1:]:
            joined += pick(_JOINS) + part
        observations.append(pick(_WRAPS).format(joined))
    text = observations[0]
    for obs in observations[1:]:
        text += pick(_OBS_JOINS) + obs
    return text


def reference_pattern_errors(text: str) -> list[str]:
    from stix2validator.v21.musts import patterns as oasis

    obj = {"type": "indicator", "id": ident("indicator"), "pattern": text, "pattern_type": "stix"}
    return [str(e) for e in oasis(obj, OPTIONS)]


@settings(max_examples=800, deadline=None)
@given(text=pattern_texts())
def test_the_fast_pattern_path_never_accepts_what_the_grammar_refuses(text: str) -> None:
    try:
        fast = patterns._simple(text)
    except patterns._Fallback:
        return
    assert fast is True
    assert reference_pattern_errors(text) == [], text


def test_common_patterns_take_the_fast_path() -> None:
    for text in ["[ipv4-addr:value = '198.51.100.1']", "[domain-name:value = 'relay.example.org']",
                 "[file:hashes.'SHA-256' = '" + "a" * 64 + "']", "[url:value = 'http://a.example/x']",
                 "[file:hashes.MD5 = '" + "0" * 32 + "' OR file:name = 'a.exe']",
                 "[ipv4-addr:value = '1.2.3.4'] AND [domain-name:value = 'a.example']"]:
        assert patterns._simple(text) is True, text
        assert reference_pattern_errors(text) == []
