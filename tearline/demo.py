"""What ``tearline demo`` puts in the demo compact, so that every capability shows at once: the events of
the bundled real data as incidents; each member sharing at a different TLP level (CLEAR to RED), a report
with a tear line, a RED object for one named recipient, authors that state-b's profile names only by
pseudonym; a warning delivered and one acknowledged; a forecast run with alerts.

Everything is written through the same paths as a member's or an operator's own (tearline.write,
tearline.warn, tearline.forecast), never into tables directly, and a second run adds nothing: objects keep
their ids and versions, and warnings and forecasts are made only when the compact has none yet.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from . import compact, events, markings, warn, write
from .events import actors, tostix
from .forecast import current
from .forecast import panel as panels
from .keys import HubKeys
from .store import Store

_NS = uuid.UUID("5d2c6e1a-8f3b-4a7d-9c0e-1b2a3c4d5e6f")
_TS = "2024-03-10T09:00:00.000Z"
EVENT_FILES = ("ucdp-ged-pakistan/conflict_data_pak.csv", "ucdp-candidate-2023-10/GEDEvent_v23_0_10.csv",
               "iskp-attacks/iskp_attacks.csv")


@dataclasses.dataclass
class Seeded:
    incidents: int  # STIX objects made from the event data
    added: int  # new versions stored this run
    shared: dict[str, int]  # member → objects it shared
    warnings: list[str]  # warning ids made this run
    alerts: int  # forecast alerts raised this run


def _id(kind: str, name: str) -> str:
    return f"{kind}--{uuid.uuid5(_NS, name)}"


def _tlp(level: str) -> list[str]:
    return [markings.TLP2[level][0]]


def _indicator(name: str, pattern: str, level: str, author: str, description: str) -> dict[str, Any]:
    return {"type": "indicator", "spec_version": "2.1", "id": _id("indicator", name), "created": _TS,
            "modified": _TS, "created_by_ref": author, "name": name, "description": description,
            "pattern": pattern, "pattern_type": "stix", "valid_from": _TS, "indicator_types": ["malicious-activity"],
            "object_marking_refs": _tlp(level)}


def _indicates(source: str, target: str, level: str, author: str) -> dict[str, Any]:
    return {"type": "relationship", "spec_version": "2.1", "id": _id("relationship", f"{source}|{target}"),
            "created": _TS, "modified": _TS, "created_by_ref": author, "relationship_type": "indicates",
            "source_ref": source, "target_ref": target, "object_marking_refs": _tlp(level)}


def _organisation(name: str) -> dict[str, Any]:
    return {"type": "identity", "spec_version": "2.1", "id": _id("identity", name), "created": _TS, "modified": _TS,
            "name": name, "identity_class": "organization", "object_marking_refs": _tlp("green")}


def member_objects(actor_id: str) -> dict[str, list[dict[str, Any]]]:
    """What each writing member shares: state-a at every level from CLEAR to AMBER+STRICT and a report with a
    tear line; state-b an AMBER indicator and a RED one for state-a alone."""
    a, b = _organisation("State A CERT"), _organisation("State B Counter-Terrorism Centre")
    mine = [
        _indicator("ISKP propaganda channel", "[url:value = 'https://t.me/al_azaim_demo']", "clear", a["id"],
                   "Telegram channel relaying Al-Azaim Foundation releases."),
        _indicator("ISKP recruitment domain", "[domain-name:value = 'khurasan-wilayah.example']", "green", a["id"],
                   "Recruitment landing page, Pashto and Urdu."),
        _indicator("ISKP facilitator relay", "[ipv4-addr:value = '203.0.113.45']", "amber", a["id"],
                   "Relay used by a facilitator moving funds for the Kabul cell."),
        _indicator("ISKP courier handset", "[file:hashes.'SHA-256' = "
                   "'9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08']", "amber+strict", a["id"],
                   "Firmware image recovered from a courier's handset; State A's own lead."),
    ]
    report = {"type": "report", "spec_version": "2.1", "id": _id("report", "kabul-cell"), "created": _TS,
              "modified": _TS, "created_by_ref": a["id"], "name": "ISKP facilitation cell in Kabul",
              "published": _TS, "report_types": ["threat-actor"],
              "description": "A facilitation cell in Kabul moves funds and recruits through the channel and "
                             "domain listed. Source: a human source inside the cell, reporting since 2023.",
              "object_refs": [actor_id, *(o["id"] for o in mine[:3])],
              "object_marking_refs": _tlp("green"),
              # the tear line: the description names a source, so only AMBER readers get it
              "granular_markings": [{"marking_ref": markings.TLP2["amber"][0], "selectors": ["description"]}]}
    theirs = [
        _indicator("ISKP donation page", "[url:value = 'https://donate-khurasan.example/zakat']", "amber", b["id"],
                   "Donation page whose payments are routed through a Peshawar hawala."),
        _indicator("ISKP planner's mailbox", "[email-addr:value = 'planner@mail.example']", "red", b["id"],
                   "Mailbox of a planner preparing an attack in Jalalabad; for State A's team in Jalalabad only."),
    ]
    theirs[1]["x_tearline_recipients"] = ["state-a"]
    return {
        "state-a": [a, *mine, report, *(_indicates(o["id"], actor_id, markings.tlp_of(o) or "green", a["id"])
                                         for o in mine)],
        "state-b": [b, *theirs, *(_indicates(o["id"], actor_id, markings.tlp_of(o) or "green", b["id"])
                                  for o in theirs)],
    }


def seed(store: Store, keys: HubKeys, spec: compact.CompactSpec, events_db: str, data: Path,
         signer: Any, progress: Callable[[str], Any] = lambda _: None) -> Seeded:
    """Seed the compact ``spec`` (already applied) and the events store ``events_db`` from the bundled data."""
    progress("events: ingesting the bundled UCDP and curated ISKP files")
    events.ingest([data / p for p in EVENT_FILES], events_db)
    con = events.connect(events_db)
    try:
        objs = tostix.actor_objects(con, spec.actors[0].name, None, None, actors.with_compact(spec))
        added = write.publish(store, spec.name, objs, keys)
        progress("members: sharing at every TLP level")
        shared = _share(store, keys, spec)
        progress("duty to warn: one warning delivered, one acknowledged")
        made = _warnings(store, spec, signer)
        progress("forecast: ISKP in Afghanistan by province")
        alerts = _forecast(con, spec)
    finally:
        con.close()
    return Seeded(len(objs), added, shared, made, alerts)


def _share(store: Store, keys: HubKeys, spec: compact.CompactSpec) -> dict[str, int]:
    intel = store.collection(spec.name, "intel")
    assert intel is not None  # applied by the caller
    with store.engine.connect() as conn:
        members = {m.name: m for m in store.members_of(conn, spec.name)}
    done = {}
    for name, objs in member_objects(compact.actor_object(spec.actors[0])["id"]).items():
        status = write.add_envelope(store, intel, members[name], objs, keys)
        if status["failure_count"]:
            raise RuntimeError(f"the demo's own objects were refused: {status['failures']}")
        done[name] = status["success_count"]
    return done


def _warnings(store: Store, spec: compact.CompactSpec, signer: Any) -> list[str]:
    if warn.list_(store, spec.name):
        return []  # a demo run again keeps the warnings it made
    report = _id("report", "kabul-cell")
    to_ngo = warn.draft(store, spec.name, "state-a/amina", "ngo-c", False,
                        {"country": "AFG", "province": "Nangarhar", "city": "Jalalabad",
                         "place_type": "aid distribution point"}, ("2026-12-01", "2026-12-31"), 70,
                        "Suspend distributions at the Jalalabad point and move staff to the Kabul office.",
                        "A cell is preparing an attack on an aid distribution point in Jalalabad this month.")
    warn.move(store, to_ngo["id"], "approve", "state-a/farid", "", None, signer)
    warn.move(store, to_ngo["id"], "deliver", "state-a/amina", "", None, signer)
    # drafted from the report: its text is the report's description at state-b's tear line (AMBER: whole)
    to_b = warn.draft(store, spec.name, "state-a/amina", "state-b", False,
                      {"country": "AFG", "province": "Kabul", "city": "Kabul", "place_type": "money exchange"},
                      ("2026-12-01", "2026-12-15"), 60,
                      "Watch transfers from Peshawar exchanges to the Kabul cell.", "", source=report)
    warn.move(store, to_b["id"], "approve", "state-a/farid", "", None, signer)
    warn.move(store, to_b["id"], "deliver", "state-a/amina", "", None, signer)
    warn.move(store, to_b["id"], "acknowledge", "state-b", "by bilal: transfers watched", None, signer)
    return [to_ngo["id"], to_b["id"]]


def _forecast(con: Any, spec: compact.CompactSpec) -> int:
    if current.alerts(con):
        return 0  # a demo run again keeps its forecast
    panel = panels.build(con, "ISKP", "province", "AFG", None, actors.with_compact(spec))
    rows = current.forecast(panel, current.model_named("boosting"))
    # from the curated list (UCDP Candidate's one month cannot be learnt from): a listed attack is a large one,
    # rare in any province and month, so the demo alerts from one chance in ten
    _run, raised = current.record(con, panel, "boosting", rows, threshold=0.1)
    return len(raised)
