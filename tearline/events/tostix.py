"""Events → STIX 2.1: one incident per event, its location, and `attributed-to` / `located-at`
relationships, with deterministic ids so that pushing the same events twice adds nothing new.

STIX `location.country` is ISO 3166-1 alpha-2, so the events' alpha-3 codes are converted with
pycountry. The dataset is the incident's `created_by_ref` identity and its `external_references`
entry carries the dataset's own event id; fatalities go in the description and in
`x_tearline_fatalities` (best, low, high) for tools that want the numbers.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

import duckdb
import pycountry

from .. import markings
from ..compact import Actor as CompactActor
from ..compact import actor_object
from . import actors

_NS = uuid.UUID("0b7c51f4-52a1-4f0e-8a8e-3f6d8c1c9e55")
_CLEAR = markings.TLP2["clear"][0]
_PRECISION_M = {"site": 100, "district": 25_000, "province": 150_000, "city": 10_000, "country": 500_000}
DATASETS = {
    "ucdp-ged": ("Uppsala Conflict Data Program (UCDP GED)", "https://ucdp.uu.se/"),
    "ucdp-candidate": ("Uppsala Conflict Data Program (UCDP Candidate Events)", "https://ucdp.uu.se/"),
    "acled": ("Armed Conflict Location & Event Data (ACLED)", "https://acleddata.com/"),
    "iskp-curated": ("Tearline curated ISKP attack list", None),
}
_STAMP = "T00:00:00.000Z"


def _id(kind: str, *parts: Any) -> str:
    return f"{kind}--{uuid.uuid5(_NS, '|'.join(str(p) for p in parts))}"


def dataset_identity(source: str) -> dict[str, Any]:
    name, _url = DATASETS.get(source, (source, None))
    return {"type": "identity", "spec_version": "2.1", "id": _id("identity", "dataset", source),
            "created": "2015-01-01T00:00:00.000Z", "modified": "2015-01-01T00:00:00.000Z", "name": name,
            "identity_class": "organization", "object_marking_refs": [_CLEAR]}


def event_objects(row: dict[str, Any], actor_id: str) -> list[dict[str, Any]]:
    """The incident and its attributed-to relationship for one canonical event row, and, when the row says
    where it happened, its location and located-at relationship."""
    day = row["event_date"].isoformat() + _STAMP
    creator = dataset_identity(row["source"])["id"]
    fatalities = f"{row['fatalities_best']} killed"
    if row.get("fatalities_low") is not None and row.get("fatalities_high") is not None and \
            (row["fatalities_low"], row["fatalities_high"]) != (row["fatalities_best"], row["fatalities_best"]):
        fatalities += f" (range {row['fatalities_low']}-{row['fatalities_high']})"
    place = row.get("place") or row.get("province") or row.get("country_iso3") or "unknown place"
    name_, url = DATASETS.get(row["source"], (row["source"], None))
    ref: dict[str, Any] = {"source_name": name_, "external_id": str(row["event_id"])}
    if url:
        ref["url"] = url
    common = {"spec_version": "2.1", "created": day, "modified": day, "created_by_ref": creator,
              "object_marking_refs": [_CLEAR]}
    incident: dict[str, Any] = {
        "type": "incident", "id": _id("incident", row["source"], row["event_id"]), **common,
        "name": f"{row.get('event_type') or 'Event'} in {place}, {row['event_date'].isoformat()}",
        "description": (f"{fatalities}. Date precision: {row['date_precision']}. "
                        + (row.get("notes") or "")).strip(),
        "external_references": [ref],
        "x_tearline_fatalities": {"best": row["fatalities_best"], "low": row.get("fatalities_low"),
                                  "high": row.get("fatalities_high")},
    }
    incident["x_tearline_fatalities"] = {k: v for k, v in incident["x_tearline_fatalities"].items() if v is not None}
    location: dict[str, Any] = {"type": "location", "id": _id("location", row["source"], row["event_id"]), **common,
                                "name": place}
    alpha2 = _alpha2(row.get("country_iso3"))
    if alpha2:
        location["country"] = alpha2
    if row.get("province"):
        location["administrative_area"] = row["province"]
    if row.get("latitude") is not None and row.get("longitude") is not None:
        location["latitude"], location["longitude"] = float(row["latitude"]), float(row["longitude"])
        location["precision"] = float(_PRECISION_M.get(row.get("geo_precision") or "", 50_000))
    attributed = {"type": "relationship", "id": _id("relationship", incident["id"], "attributed-to", actor_id),
                  **common, "relationship_type": "attributed-to", "source_ref": incident["id"], "target_ref": actor_id}
    if "country" not in location and "latitude" not in location:
        # a STIX location needs a country, a region or coordinates; a row with none of them is placed nowhere
        # rather than in a region guessed for it
        return [incident, attributed]
    located = {"type": "relationship", "id": _id("relationship", incident["id"], "located-at", location["id"]),
               **common, "relationship_type": "located-at", "source_ref": incident["id"], "target_ref": location["id"]}
    return [incident, location, attributed, located]


def _alpha2(iso3: str | None) -> str | None:
    if not iso3:
        return None
    country = pycountry.countries.get(alpha_3=iso3)
    return country.alpha_2 if country else None


def actor_events(con: duckdb.DuckDBPyConnection, actor_name: str, country: str | None = None,
                 source: str | None = None, catalogue: tuple[actors.Actor, ...] = actors.CATALOGUE
                 ) -> list[dict[str, Any]]:
    _actor, where, params = actors.selection(actor_name, country, source, catalogue)
    cur = con.execute(f"SELECT * FROM events WHERE {where} ORDER BY event_date, source, event_id", params)
    names = [d[0] for d in cur.description]
    return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def bundle_objects(rows: Iterable[dict[str, Any]], actor: CompactActor) -> list[dict[str, Any]]:
    """Everything to share for these events: the actor, each dataset's identity, TLP:CLEAR, the events."""
    threat_actor = actor_object(actor)
    objs: dict[str, dict[str, Any]] = {threat_actor["id"]: threat_actor}
    clear = markings.definition("clear")
    objs[clear["id"]] = clear
    for row in rows:
        ident = dataset_identity(row["source"])
        objs.setdefault(ident["id"], ident)
        for obj in event_objects(row, threat_actor["id"]):
            objs[obj["id"]] = obj
    return list(objs.values())


def actor_objects(con: duckdb.DuckDBPyConnection, actor: str, country: str | None, source: str | None,
                  catalogue: tuple[actors.Actor, ...] = actors.CATALOGUE) -> list[dict[str, Any]]:
    """An actor's events as STIX objects, attributed to the actor as the catalogue knows it."""
    resolved = actors.resolve(actor, catalogue)
    rows = actor_events(con, actor, country, source, catalogue)
    return bundle_objects(rows, CompactActor(resolved.name, resolved.aliases))
