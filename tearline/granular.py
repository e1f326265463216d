"""Tear lines: which parts of an object its reader may see, decided by STIX 2.1 granular markings.

A report can be shared at TLP:GREEN as a whole while its sourcing paragraph is marked TLP:RED for two
named recipients and one external reference AMBER+STRICT: each reader receives the version "below the
tear line" for it. A granular marking names parts by selector (STIX 2.1 §7.2.3.1): ``description``,
``external_references.[1]``, ``external_references.[0].url``. Cutting parts out of an object must leave
a valid object, so:

- the write path refuses markings on what a valid copy cannot lose (the common properties, those its
  type requires, the references it cannot do without: tearline.stix.selectors), so no cut ever takes them;
- a list item that is cut is removed, and the selectors of the markings that remain are re-indexed to
  the shorter list (``external_references.[3]`` becomes ``external_references.[2]`` when item 1 went);
- a list left empty is removed (STIX forbids empty lists), and an external reference or kill-chain
  phase that loses a field it cannot do without is removed whole;
- markings whose parts are gone are dropped, so no selector points at nothing.

The same cutting serves the gate's other removals (references to hidden objects, redaction profiles),
so a selector never outlives the part it marked, whatever removed it.
"""

from __future__ import annotations

import bisect
import copy
from collections.abc import Callable, Iterable
from typing import Any

from . import markings
from .stix import selectors

Path = selectors.Path
parse, render, resolves = selectors.parse, selectors.render, selectors.resolves


def withheld(obj: dict[str, Any], may_read: Callable[[str], bool]) -> list[Path]:
    """The parts marked with a TLP level the reader may not read (other markings restrict nothing)."""
    out = []
    for gm in obj.get("granular_markings") or ():
        level = markings.LEVEL_OF_ID.get(gm.get("marking_ref", "")) if isinstance(gm, dict) else None
        if level is not None and not may_read(level):
            out.extend(parse(s) for s in gm.get("selectors") or () if isinstance(s, str))
    return out


def _key(path: Path) -> tuple[tuple[int, Any], ...]:
    return tuple((0, t) if isinstance(t, int) else (1, t) for t in path)


# Items of these lists are invalid without these fields (any one of each tuple): losing them loses the item.
_ITEM_NEEDS = {"external_references": (("source_name",), ("external_id", "url", "description")),
               "kill_chain_phases": (("kill_chain_name",), ("phase_name",))}


def _whole_items(obj: dict[str, Any], paths: set[Path]) -> set[Path]:
    """Add the list items that would be left invalid by losing the fields in ``paths``. (Every step here and
    in ``cut`` is linear in the parts and selectors: an object with thousands of marked items is cut in
    one pass, not one pass per item.)"""
    lost: dict[tuple[Any, Any], set[Any]] = {}
    for p in paths:
        if len(p) == 3 and p[0] in _ITEM_NEEDS:
            lost.setdefault(p[:2], set()).add(p[2])
    for (prop, i), fields_lost in lost.items():
        items = obj.get(prop)
        item = items[i] if isinstance(items, list) and isinstance(i, int) and 0 <= i < len(items) else None
        if isinstance(item, dict) and any(not (set(fields) & (set(item) - fields_lost))
                                          for fields in _ITEM_NEEDS[prop]):
            paths.add((prop, i))
    return paths


def cut(obj: dict[str, Any], paths: Iterable[Path]) -> dict[str, Any]:
    """A copy of ``obj`` without the parts at ``paths``, still a valid object (see the module's rules)."""
    paths = sorted(_whole_items(obj, {p for p in paths if p and resolves(obj, p)}), key=_key, reverse=True)
    if not paths:
        return obj
    out = copy.deepcopy(obj)
    removed_items: list[Path] = []
    for path in paths:  # children before parents, and later items before earlier ones of one list
        if not resolves(out, path):
            continue  # inside something already removed
        parent = out
        for token in path[:-1]:
            parent = parent[token]
        last = path[-1]
        if isinstance(last, int):
            del parent[last]
            removed_items.append(path)
        else:
            del parent[last]
    for parent_path in sorted({r[:-1] for r in removed_items}, key=_key, reverse=True):
        if resolves(out, parent_path) and _at(out, parent_path) == []:
            del _at(out, parent_path[:-1])[parent_path[-1]]
    if "granular_markings" in obj:
        gone = set(paths)
        shifts: dict[Path, list[int]] = {}
        for r in removed_items:
            shifts.setdefault(r[:-1], []).append(r[-1])  # type: ignore[arg-type]
        for indices in shifts.values():
            indices.sort()
        kept = []
        for gm in out.get("granular_markings") or ():
            parsed = (parse(s) for s in gm.get("selectors") or ())
            selectors = [render(p) for p in (_reindex(q, shifts) for q in parsed
                                             if not any(q[:k] in gone for k in range(1, len(q) + 1)))
                         if resolves(out, p)]
            if selectors:
                kept.append(dict(gm, selectors=selectors))
        if kept:
            out["granular_markings"] = kept
        else:
            out.pop("granular_markings", None)
    return out


def _reindex(path: Path, shifts: dict[Path, list[int]]) -> Path:
    """The selector's path after list items left their lists (``shifts``: each list's path → the sorted
    indices removed from it; the list is named by the selector's original tokens, as removal saw them)."""
    tokens = list(path)
    for k, token in enumerate(path):
        if isinstance(token, int):
            removed = shifts.get(path[:k])
            if removed:
                tokens[k] = token - bisect.bisect_left(removed, token)
    return tuple(tokens)


def _at(obj: Any, path: Path) -> Any:
    for token in path:
        obj = obj[token]
    return obj


def part_level(obj: dict[str, Any], selector: str, default: str) -> str:
    """The TLP level of one part: its own granular TLP marking when it has one (the author marked that
    part on purpose), else the object's, else ``default``."""
    path = parse(selector)
    levels = [markings.LEVEL_OF_ID[gm["marking_ref"]] for gm in obj.get("granular_markings") or ()
              if gm.get("marking_ref") in markings.LEVEL_OF_ID
              and any(path[:len(p)] == p for p in map(parse, gm.get("selectors") or ()))]
    if levels:
        return max(levels, key=markings.rank)
    return markings.tlp_of(obj) or default


def reader(ceiling: str, recipient: bool) -> Callable[[str], bool]:
    """Who may read a part marked at a level: up to the reader's ceiling, AMBER+STRICT never beyond its
    author's organisation, RED only for the recipients the object names (the object-level rules)."""
    top = min(markings.rank(ceiling), markings.rank("amber"))

    def may_read(level: str) -> bool:
        if level == "red":
            return recipient and ceiling == "red"
        return markings.rank(level) <= top

    return may_read
