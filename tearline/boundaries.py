"""Provinces as the datasets name them, matched to Natural Earth's first-level boundaries.

UCDP writes "Khyber Pakhtunkwa" and "Federally Administered Tribal Areas", Natural Earth "K.P." and
"F.A.T.A."; the ISO 3166-2 code is the key both are matched to. Neighbours are provinces whose
outlines share a border (the bundled file was decoded from TopoJSON arcs, so a shared border is the
same vertices on both sides).
"""

from __future__ import annotations

import functools
import json
import re
from importlib import resources
from typing import Any

ADMIN1 = "ne_10m_admin_1_AFG_PAK_IRN_TJK_UZB.geojson"

# Spellings used by UCDP, ACLED and the curated list that Natural Earth writes differently.
ALIASES: dict[str, str] = {
    "azad jammu & kashmir": "PK-JK", "azad jammu and kashmir": "PK-JK", "azad kashmir": "PK-JK",
    "gilgit-baltistan": "PK-GB", "gilgit baltistan": "PK-GB", "northern areas": "PK-GB",
    "federally administered tribal areas": "PK-TA", "fata": "PK-TA", "f.a.t.a.": "PK-TA",
    "balochistan": "PK-BA", "baluchistan": "PK-BA",
    "islamabad capital territory": "PK-IS", "islamabad": "PK-IS", "federal capital territory": "PK-IS",
    "khyber pakhtunkhwa": "PK-KP", "khyber pakhtunkwa": "PK-KP", "k.p.": "PK-KP", "nwfp": "PK-KP",
    "north-west frontier province": "PK-KP", "north west frontier": "PK-KP",
    "sindh": "PK-SD", "sind": "PK-SD",
    "herat": "AF-HER", "hirat": "AF-HER", "sar-e pol": "AF-SAR", "sar-e-pul": "AF-SAR", "sari pul": "AF-SAR",
    "paktia": "AF-PIA", "paktya": "AF-PIA", "helmand": "AF-HEL", "hilmand": "AF-HEL",
    "maidan wardak": "AF-WAR", "wardak": "AF-WAR", "urozgan": "AF-URU", "oruzgan": "AF-URU",
    "daikundi": "AF-DAY", "daykundi": "AF-DAY", "bamiyan": "AF-BAM", "nimruz": "AF-NIM",
    "surxondaryo": "UZ-SU", "surkhandarya": "UZ-SU", "sistan and baluchistan": "IR-13",
    "sistan va baluchestan": "IR-13", "khorasan razavi": "IR-30",
}


@functools.cache
def features() -> tuple[dict[str, Any], ...]:
    text = resources.files("tearline").joinpath("data", "boundaries", ADMIN1).read_text()
    return tuple(json.loads(text)["features"])


def _norm(name: str) -> str:
    return re.sub(r"\s+", " ", name.strip().lower())


@functools.cache
def _by_name() -> dict[tuple[str, str], str]:
    return {(f["properties"]["adm0_a3"], _norm(f["properties"]["name"])): f["properties"]["iso_3166_2"]
            for f in features()}


def code(iso3: str, province: str | None) -> str | None:
    """The ISO 3166-2 code of a dataset's province name, or None when it cannot be matched."""
    if not province:
        return None
    key = _norm(province)
    found = _by_name().get((iso3, key)) or ALIASES.get(key)
    if found and _country_of(found) == iso3:
        return found
    return None


@functools.cache
def _countries() -> dict[str, str]:
    return {f["properties"]["iso_3166_2"]: f["properties"]["adm0_a3"] for f in features()}


def _country_of(code_: str) -> str | None:
    return _countries().get(code_)


def rings(code_: str) -> list[list[tuple[float, float]]]:
    """The outer rings of a province's outline, as (lon, lat) lists."""
    for f in features():
        if f["properties"]["iso_3166_2"] == code_:
            geom = f["geometry"]
            polys = [geom["coordinates"]] if geom["type"] == "Polygon" else geom["coordinates"]
            return [[(x, y) for x, y in poly[0]] for poly in polys]
    return []


def name(code_: str) -> str:
    return next((f["properties"]["name"] for f in features() if f["properties"]["iso_3166_2"] == code_), code_)


@functools.cache
def neighbours() -> dict[str, frozenset[str]]:
    """Provinces sharing at least two boundary vertices (a border, not a single corner point)."""
    owners: dict[tuple[float, float], set[str]] = {}
    for f in features():
        c = f["properties"]["iso_3166_2"]
        for ring in rings(c):
            for point in ring:
                owners.setdefault((round(point[0], 5), round(point[1], 5)), set()).add(c)
    shared: dict[tuple[str, str], int] = {}
    for codes in owners.values():
        for a in codes:
            for b in codes:
                if a < b:
                    shared[(a, b)] = shared.get((a, b), 0) + 1
    out: dict[str, set[str]] = {f["properties"]["iso_3166_2"]: set() for f in features()}
    for (a, b), n in shared.items():
        if n >= 2:
            out[a].add(b)
            out[b].add(a)
    return {k: frozenset(v) for k, v in out.items()}


def locate(latitude: float, longitude: float) -> tuple[str, str] | None:
    """(ISO 3166-1 alpha-3 country, province name) of the bundled province whose outline holds the point,
    or None when none does (the outlines cover Afghanistan, Pakistan, Iran, Tajikistan and Uzbekistan)."""
    for f in features():
        for ring in rings(f["properties"]["iso_3166_2"]):
            if _inside(longitude, latitude, ring):
                return f["properties"]["adm0_a3"], f["properties"]["name"]
    return None


def _inside(x: float, y: float, ring: list[tuple[float, float]]) -> bool:
    """Even-odd rule: a ray from the point crosses the ring an odd number of times when it is inside."""
    inside = False
    for (x1, y1), (x2, y2) in zip(ring, ring[1:] + ring[:1], strict=True):
        if (y1 > y) != (y2 > y) and x < x1 + (y - y1) * (x2 - x1) / (y2 - y1):
            inside = not inside
    return inside
