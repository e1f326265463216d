"""What the dashboard shows a member, computed from the member's own released copies.

Every function here takes the objects ``release.released`` yields — the same copies, through the same
gate, that TAXII would send the member — so the dashboard can never show more than TAXII does: an
incident the member may not see is in no count, no month and no province. Plain functions over
lists of dicts, testable without a server; charts are drawn by tearline.web.charts.
"""

from __future__ import annotations

import collections
import dataclasses
from collections.abc import Iterable, Sequence
from typing import Any

import pycountry

from . import boundaries, markings

# What each page reads of the member's copies (the rest of a large collection stays in the database).
EVENT_TYPES = ("incident", "location", "relationship")
GRAPH_TYPES = ("threat-actor", "intrusion-set", "campaign", "malware", "tool", "attack-pattern", "indicator", "report",
               *EVENT_TYPES)
_SHOWN = {"incident": 30, "indicator": 12, "report": 8}  # the most recent of each: all of them is a hairball


@dataclasses.dataclass
class Seen:
    """The member's view of one collection: its copies by id, and the links between them."""

    objects: dict[str, dict[str, Any]]

    @classmethod
    def of(cls, copies: Iterable[dict[str, Any]]) -> Seen:
        return cls({o["id"]: o for o in copies})

    def of_type(self, *types: str) -> list[dict[str, Any]]:
        return [o for o in self.objects.values() if o["type"] in types]

    def relationships(self) -> list[dict[str, Any]]:
        return self.of_type("relationship")

    def located(self) -> dict[str, dict[str, Any]]:
        """incident id → the location it is `located-at` (both visible to the member)."""
        out = {}
        for rel in self.relationships():
            if rel.get("relationship_type") == "located-at" and rel.get("target_ref") in self.objects:
                out[rel["source_ref"]] = self.objects[rel["target_ref"]]
        return out


def dataset_of(obj: dict[str, Any]) -> str:
    """Which event dataset an incident came from: its first external reference's source (the author's
    identity may be pseudonymised for this member, the reference is not)."""
    refs = obj.get("external_references") or ()
    return str(refs[0].get("source_name")) if refs and isinstance(refs[0], dict) else "shared by a member"


def fatalities(obj: dict[str, Any]) -> int:
    value = ((obj.get("x_tearline_fatalities") or {}).get("best")
             if isinstance(obj.get("x_tearline_fatalities"), dict) else None)
    return int(value) if isinstance(value, (int, float)) else 0


def _alpha3(alpha2: str | None) -> str | None:
    country = pycountry.countries.get(alpha_2=alpha2) if alpha2 else None
    return country.alpha_3 if country else None


def country_name(alpha3: str) -> str:
    country = pycountry.countries.get(alpha_3=alpha3)
    return country.name if country else alpha3


def overview(counts: dict[str, int], latest: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Counts by type (from the gate, in SQL) and the newest objects, markings and relationships aside."""
    counts = {t: n for t, n in counts.items() if t != "marking-definition"}
    return {"counts": sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])), "latest": list(latest)}


def timeline(seen: Seen, country: str | None = None) -> dict[str, Any]:
    """Monthly incidents and fatalities per dataset (datasets overlap: never added together), for one
    country (ISO 3166 alpha-3) or all; and each country's totals per dataset."""
    where = seen.located()
    months: dict[tuple[str, str], list[int]] = collections.defaultdict(lambda: [0, 0])
    totals: dict[tuple[str, str], list[int]] = collections.defaultdict(lambda: [0, 0])
    for inc in seen.of_type("incident"):
        day = str(inc.get("created", ""))[:7]
        iso3 = _alpha3((where.get(inc["id"]) or {}).get("country")) or "unknown"
        source = dataset_of(inc)
        totals[(iso3, source)][0] += 1
        totals[(iso3, source)][1] += fatalities(inc)
        if country and iso3 != country:
            continue
        months[(source, day)][0] += 1
        months[(source, day)][1] += fatalities(inc)
    series: dict[str, list[dict[str, Any]]] = {}
    for source in sorted({src for src, _ in months}):
        seen_months = sorted(m for src, m in months if src == source)
        # every month from the first to the last, quiet ones as zeros: a line must not bridge a gap
        for month in _month_range(seen_months[0], seen_months[-1]):
            events, dead = months.get((source, month), (0, 0))
            series.setdefault(source, []).append({"month": month, "events": events, "fatalities": dead})
    by_country = [{"country": iso3, "name": country_name(iso3) if iso3 != "unknown" else "unknown", "dataset": source,
                   "events": ev, "fatalities": dead} for (iso3, source), (ev, dead) in sorted(totals.items())]
    return {"series": series, "countries": by_country,
            "choices": sorted({row["country"] for row in by_country if row["country"] != "unknown"})}


def _month_range(first: str, last: str) -> list[str]:
    """'2024-01' … '2024-03' → every month between, inclusive."""
    y, m = int(first[:4]), int(first[5:7])
    out = []
    while f"{y:04d}-{m:02d}" <= last:
        out.append(f"{y:04d}-{m:02d}")
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    return out


def provinces(seen: Seen, dataset: str | None = None) -> dict[str, Any]:
    """Incidents per province (ISO 3166-2, matched to the bundled Natural Earth outlines) for one
    dataset, and those that could not be placed."""
    where = seen.located()
    datasets = collections.Counter(dataset_of(i) for i in seen.of_type("incident"))
    chosen = dataset or (datasets.most_common(1)[0][0] if datasets else None)
    counts: collections.Counter[str] = collections.Counter()
    unplaced = 0
    for inc in seen.of_type("incident"):
        if dataset_of(inc) != chosen:
            continue
        loc = where.get(inc["id"]) or {}
        code = boundaries.code(_alpha3(loc.get("country")) or "", loc.get("administrative_area"))
        if code:
            counts[code] += 1
        else:
            unplaced += 1
    return {"dataset": chosen, "datasets": sorted(datasets), "counts": dict(counts), "unplaced": unplaced}


def graph(seen: Seen, incidents: int = 30) -> dict[str, Any]:
    """The actor's graph as the member sees it: actors and intrusion sets, what relationships tie to them, the
    most recent incidents (``incidents``), indicators and reports (a few each: all of them is a hairball) with
    the incidents' locations, the relationships among them and what the reports refer to. ``hidden`` counts,
    per type, what the member sees and the graph leaves out."""
    shown = {**_SHOWN, "incident": incidents}
    actors = {o["id"] for o in seen.of_type("threat-actor", "intrusion-set")}
    keep = actors | {o["id"] for o in seen.of_type("campaign", "malware", "attack-pattern", "tool")}
    hidden = {}
    for kind, most in shown.items():
        recent = sorted(seen.of_type(kind), key=lambda o: (o.get("modified") or o.get("created", ""), o["id"]),
                        reverse=True)
        keep |= {o["id"] for o in recent[:most]}
        if len(recent) > most:
            hidden[kind] = len(recent) - most
    where = seen.located()
    keep |= {where[i]["id"] for i in keep if i in where}
    for rel in seen.relationships():  # other objects tied to an actor (a campaign, a tool)
        ends = {rel.get("source_ref"), rel.get("target_ref")}
        if (ends & actors and ends <= set(seen.objects) and not any(str(e).startswith(("incident--", "indicator--"))
                                                                    for e in ends)):
            keep |= ends  # type: ignore[arg-type]
    nodes = [seen.objects[i] for i in sorted(keep) if i in seen.objects]
    edges = [r for r in seen.relationships() if r.get("source_ref") in keep and r.get("target_ref") in keep]
    edges += [{"source_ref": o["id"], "target_ref": ref, "relationship_type": "refers to"}
              for o in nodes if o["type"] == "report" for ref in o.get("object_refs") or () if ref in keep]
    return {"nodes": nodes, "edges": edges, "incidents_total": len(seen.of_type("incident")),
            "incidents_shown": min(incidents, len(seen.of_type("incident"))), "hidden": hidden}


def references(obj: dict[str, Any]) -> list[str]:
    """The ids an object refers to at its top level, in order, once each."""
    out: list[str] = []
    for key, value in obj.items():
        if key.endswith("_ref") and isinstance(value, str):
            out.append(value)
        elif key.endswith("_refs") and isinstance(value, list):
            out.extend(v for v in value if isinstance(v, str))
    return list(dict.fromkeys(out))


def other_end(rel: dict[str, Any], ident: str) -> str | None:
    """The end of a relationship (or sighting) that is not ``ident``."""
    ends = [rel.get("source_ref") or rel.get("sighting_of_ref"), rel.get("target_ref")]
    others = [e for e in ends if isinstance(e, str) and e != ident]
    return others[0] if others else None


def links(seen: Seen, obj: dict[str, Any]) -> dict[str, list[Any]]:
    """What an object refers to, and what refers to it among what the member sees: a relationship is
    shown as the object at its other end, with the relationship beside it."""
    refers = [seen.objects[i] for i in references(obj) if i in seen.objects and i != obj["id"]]
    referred = []
    for other in seen.objects.values():
        if other["id"] == obj["id"] or obj["id"] not in references(other):
            continue
        if other["type"] in ("relationship", "sighting"):
            far = seen.objects.get(other_end(other, obj["id"]) or "")
            referred.append({"obj": far or other, "rel": other if far else None})
        else:
            referred.append({"obj": other, "rel": None})
    return {"refers_to": refers, "referred_by": referred[:200]}


def tlp(obj: dict[str, Any], default: str = "amber") -> dict[str, str] | None:
    """The TLP badge of a member's copy: the level its marking names (TLP 1.0 read as 2.0; ``default``, the
    compact's, where it names none) and, when parts of it are marked stricter (a tear line it is above), the
    strictest of those; None for marking definitions."""
    if obj.get("type") == "marking-definition":
        return None
    level = markings.tlp_of(obj) or default
    parts = [markings.LEVEL_OF_ID[g["marking_ref"]] for g in obj.get("granular_markings") or ()
             if isinstance(g, dict) and g.get("marking_ref") in markings.LEVEL_OF_ID]
    stricter = max(parts, key=markings.rank, default=None)
    found = {"level": level, "css": "tlp-" + level.replace("+", "-"), "text": f"TLP:{level.upper()}"}
    if stricter and markings.rank(stricter) > markings.rank(level):
        found["parts"] = f"parts TLP:{stricter.upper()}"
    return found


def label(obj: dict[str, Any]) -> str:
    if obj.get("type") == "relationship":
        return f"{obj.get('relationship_type', 'related-to')} relationship"
    return str(obj.get("name") or obj.get("value") or obj.get("pattern") or obj["id"])


def by_month(series: dict[str, Sequence[dict[str, Any]]]) -> list[str]:
    return sorted({p["month"] for points in series.values() for p in points})
