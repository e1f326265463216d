"""MISP's event files and tags as MISP exports them: the shapes the bridge relies on are checked whole
before anything is converted, and TLP tags are read in either version (``tlp:white`` is CLEAR)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from .. import markings
from ..errors import BadRequest, ConfigError

_TAG_TLP = re.compile(r"^tlp\s*:\s*(white|clear|green|amber\+strict|amber|red)$", re.IGNORECASE)
# MISP's distribution levels that keep data inside the organisation or a sharing group
PRIVATE = {"0": "Your organisation only", "4": "a sharing group"}
_LISTS = ("Attribute", "Object", "Galaxy", "Tag")


def read_events(path: Path) -> list[dict[str, Any]]:
    """The MISP events in one file as MISP exports them: ``{"Event": …}``, a bare event, a list of either, or
    a REST search's ``{"response": [...]}``. Every shape the bridge relies on is checked, and every problem
    named, before anything is converted."""
    try:
        doc = json.loads(path.read_bytes())
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read it ({exc.strerror or exc})") from None
    except ValueError as exc:
        raise BadRequest(f"{path}: not JSON ({exc})") from None
    except RecursionError:
        raise BadRequest(f"{path}: nested deeper than any MISP export") from None
    if isinstance(doc, dict) and isinstance(doc.get("response"), list):
        doc = doc["response"]
    items = doc if isinstance(doc, list) else [doc]
    if not items:
        raise BadRequest(f"{path}: holds no MISP event")
    found, problems = [], []
    for n, item in enumerate(items):
        where = f"{path}" if not isinstance(doc, list) else f"{path}, item {n}"
        event = item.get("Event", item) if isinstance(item, dict) else None
        if not isinstance(event, dict) or not ("info" in event or "Attribute" in event or "Object" in event):
            problems.append(f"{where}: not a MISP event (expected {{\"Event\": {{\"info\": …, \"Attribute\": […]}}}} "
                            "as MISP exports it)")
            continue
        problems += [f"{where}: {p}" for p in shape_problems(event)]
        found.append(event)
    if problems:
        raise BadRequest("; ".join(problems[:20]) + (f"; … {len(problems) - 20} more" if len(problems) > 20 else ""),
                         code="misp_malformed")
    return found


def shape_problems(event: dict[str, Any]) -> list[str]:
    """Lists that are not lists of objects, tags without a name, TLP tags that name no level."""
    problems = []
    for where, item in _tagged(event):
        for key in _LISTS:
            value = item.get(key)
            if value is not None and not (isinstance(value, list) and all(isinstance(v, dict) for v in value)):
                problems.append(f"{where}: {key} must be a list of objects")
        for tag in item.get("Tag") or () if isinstance(item.get("Tag"), list) else ():
            name = tag.get("name") if isinstance(tag, dict) else None
            if not isinstance(name, str):
                problems.append(f"{where}: a tag without a name ({json.dumps(tag)[:80]})")
            elif name.strip().lower().startswith("tlp:") and tag_level(tag) is None \
                    and not name.strip().lower().startswith("tlp:ex:"):
                problems.append(f"{where}: tag {name!r} names no TLP level (tlp:clear, tlp:white, tlp:green, "
                                "tlp:amber, tlp:amber+strict, tlp:red)")
    for galaxy in _list(event, "Galaxy"):
        if not isinstance(galaxy.get("GalaxyCluster", []), list) or \
                not all(isinstance(c, dict) for c in galaxy.get("GalaxyCluster") or ()):
            problems.append(f"galaxy {galaxy.get('name', '?')!r}: GalaxyCluster must be a list of objects")
    return problems


def _list(item: dict[str, Any], key: str) -> list[dict[str, Any]]:
    value = item.get(key)
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def attributes(event: dict[str, Any]) -> Iterator[tuple[dict[str, Any] | None, dict[str, Any]]]:
    """(its MISP object or None, attribute) for every attribute of the event."""
    for a in _list(event, "Attribute"):
        yield None, a
    for obj in _list(event, "Object"):
        for a in _list(obj, "Attribute"):
            yield obj, a


def _tagged(event: dict[str, Any]) -> Iterable[tuple[str, dict[str, Any]]]:
    yield "the event", event
    for obj, a in attributes(event):
        yield (f"attribute {a.get('uuid') or a.get('value', '?')!s:.60}"
               + (f" of object {obj.get('name', '?')}" if obj else "")), a
    for obj in _list(event, "Object"):
        yield f"object {obj.get('name', '?')} {obj.get('uuid', '')}", obj


def tags(item: dict[str, Any]) -> list[dict[str, Any]]:
    return _list(item, "Tag")


def tag_level(tag: Any) -> str | None:
    """The TLP 2.0 level a MISP tag names (``tlp:white`` is CLEAR), or None."""
    name = tag.get("name") if isinstance(tag, dict) else tag
    found = _TAG_TLP.match(name.strip()) if isinstance(name, str) else None
    if not found:
        return None
    level = found.group(1).lower()
    return "clear" if level == "white" else level


def strictest(levels: Iterable[str | None]) -> str | None:
    ranked = [markings.rank(x) for x in levels if x]
    return markings.LEVELS[max(ranked)] if ranked else None


def own_level(item: dict[str, Any]) -> str | None:
    return strictest(tag_level(t) for t in tags(item))


def without_tlp(item: dict[str, Any]) -> None:
    if item.get("Tag"):
        item["Tag"] = [t for t in tags(item) if tag_level(t) is None]


def private(item: dict[str, Any]) -> str | None:
    """What MISP's distribution keeps the item in, when it is not to leave the organisation's MISP."""
    return PRIVATE.get(str(item.get("distribution", "")).strip())


def name(event: dict[str, Any]) -> str:
    return f"MISP event {event.get('uuid') or '(no uuid)'} \"{event.get('info') or ''}\""
