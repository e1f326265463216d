"""Granular-marking selectors (STIX 2.1 §7.2.3.1): ``description``, ``external_references.[1]``,
``external_references.[0].url`` — parsed into paths, checked against the object they mark."""

from __future__ import annotations

from typing import Any

from .vocabulary import REQUIRED_REFS, required_properties

Path = tuple[str | int, ...]


def parse(selector: str) -> Path:
    """``external_references.[0].url`` → ("external_references", 0, "url")."""
    out: list[str | int] = []
    for token in selector.split("."):
        if token.startswith("[") and token.endswith("]") and token[1:-1].isascii() and token[1:-1].isdigit():
            out.append(int(token[1:-1]))
        else:
            out.append(token)
    return tuple(out)


def render(path: Path) -> str:
    return ".".join(f"[{t}]" if isinstance(t, int) else t for t in path)


def resolves(obj: Any, path: Path) -> bool:
    """The selector names a part that exists in ``obj``."""
    node = obj
    for token in path:
        if isinstance(token, int):
            if not isinstance(node, list) or token >= len(node):
                return False
        elif not isinstance(node, dict) or token not in node:
            return False
        node = node[token]
    return True


def problems(obj: dict[str, Any]) -> list[str]:
    """Selectors that name nothing, and selectors on parts a valid copy cannot lose: a tear line may cut
    what the object can do without, never what makes it an object of its type (a reader's copy must
    stay valid STIX) nor its markings."""
    out = []
    stix_type = obj.get("type")
    needed = required_properties(stix_type) if isinstance(stix_type, str) else set()
    needed |= {"object_marking_refs", "granular_markings"}
    grouped = {p for group in REQUIRED_REFS.get(stix_type, ()) for p in group} if isinstance(stix_type, str) else set()
    for i, gm in enumerate(obj.get("granular_markings") or ()):
        if not isinstance(gm, dict) or not isinstance(gm.get("selectors"), list):
            continue
        for selector in gm["selectors"]:
            if not isinstance(selector, str):
                continue
            path = parse(selector)
            where = f"granular_markings[{i}].selectors"
            if not resolves(obj, path):
                out.append(f"{where}: {selector!r} names no part of this object")
            elif path[0] in grouped:
                out.append(f"{where}: {selector!r} would cut a reference a {stix_type} cannot do without; "
                           "share what it refers to at the level you mean instead")
            elif len(path) == 1 and path[0] in needed:
                out.append(f"{where}: {selector!r} is a property every {stix_type} needs; a tear line cannot "
                           "cut it (mark the object as a whole instead)")
    return out
