"""TLP 2.0 as STIX 2.1 marking definitions, with the fixed identifiers FIRST and OASIS published.

The ``stix2`` library ships only TLP 1.0 (WHITE/GREEN/AMBER/RED); TLP 2.0 is defined by the OASIS
extension ``extension-definition--60a3c5c5-…`` and these five objects. TLP 1.0 ids are understood
too (WHITE as CLEAR), since older feeds still carry them.
"""

from __future__ import annotations

from typing import Any

TLP2_EXTENSION = "extension-definition--60a3c5c5-0d10-413e-aab3-9e08dde9e88d"
TLP2_CREATED = "2022-10-01T00:00:00.000Z"

# level → (identifier, rank); a higher rank is more restrictive.
TLP2: dict[str, tuple[str, int]] = {
    "clear": ("marking-definition--94868c89-83c2-464b-929b-a1a8aa3c8487", 0),
    "green": ("marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb", 1),
    "amber": ("marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421", 2),
    "amber+strict": ("marking-definition--939a9414-2ddd-4d32-a0cd-375ea402b003", 3),
    "red": ("marking-definition--e828b379-4e03-4974-9ac4-e53a884c97c1", 4),
}
TLP1_IDS: dict[str, str] = {
    "marking-definition--613f2e26-407d-48c7-9eca-b8e91df99dc9": "clear",  # TLP:WHITE
    "marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da": "green",
    "marking-definition--f88d31f6-486f-44da-b317-01333bde0b82": "amber",
    "marking-definition--5e57c739-391a-4eb3-b6be-7d15ca92d5ed": "red",
}
LEVEL_OF_ID: dict[str, str] = {ident: level for level, (ident, _) in TLP2.items()} | TLP1_IDS
LEVELS = tuple(TLP2)  # in rank order: LEVELS[rank] is the level
RANK_OF_ID: dict[str, int] = {ident: TLP2[level][1] for ident, level in LEVEL_OF_ID.items()}


def rank(level: str) -> int:
    return TLP2[level][1]


def definition(level: str) -> dict[str, Any]:
    """The published STIX object for one TLP 2.0 level."""
    ident, _ = TLP2[level]
    return {
        "type": "marking-definition",
        "spec_version": "2.1",
        "id": ident,
        "created": TLP2_CREATED,
        "name": f"TLP:{level.upper()}",
        "extensions": {TLP2_EXTENSION: {"extension_type": "property-extension", "tlp_2_0": level}},
    }


def definitions() -> list[dict[str, Any]]:
    return [definition(level) for level in TLP2]


def tlp_rank_of(obj: dict[str, Any]) -> int | None:
    """The rank of the most restrictive TLP level among an object's object_marking_refs, or None if
    unmarked. Written as a plain loop: the store runs it for every object admitted."""
    best = -1
    for ref in obj.get("object_marking_refs") or ():
        found = RANK_OF_ID.get(ref, -1) if isinstance(ref, str) else -1
        if found > best:
            best = found
    return best if best >= 0 else None


def tlp_of(obj: dict[str, Any]) -> str | None:
    """The most restrictive TLP level among an object's object_marking_refs, or None if unmarked."""
    found = tlp_rank_of(obj)
    return None if found is None else LEVELS[found]
