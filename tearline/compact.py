"""Compacts: the declarative sharing agreement (the YAML schema of DESIGN.md) and ``apply``.

A compact becomes a TAXII API root ``/taxii2/<name>/`` with two collections, ``intel`` and
``warnings``, and one member row per partner. ``apply`` is declarative: the file is the truth, so
members missing from it are removed and lose access at once. New members' tokens are returned once.
Errors name the line of the file and the field.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
import uuid
from pathlib import Path
from typing import Any

import yaml

from . import markings, stix, write
from .model import NAME as _NAME
from .model import Policy
from .errors import ConfigError
from .store import Store

_MEMBER_KEYS = {"name", "write", "read", "tlp_max", "redact", "organisation", "organization", "rate_limits",
                "contacts", "people"}
_TOP_KEYS = {"name", "title", "description", "scope", "expires", "members", "grace_days", "default_tlp", "versions_by",
             "members_visible", "matching", "rate_limits", "warnings"}
# A fixed namespace so the threat-actor object of a compact's actor has the same id on every hub.
_ACTOR_NS = uuid.UUID("6f1c8f7e-3a0b-4d8e-9a52-3b1f7f0c2d11")


@dataclasses.dataclass(frozen=True)
class MemberSpec:
    name: str
    write: bool
    read: bool
    tlp_max: str
    redact: tuple[str, ...]
    rate_limits: tuple[tuple[str, int], ...] = ()  # (endpoint class, requests per minute), resolved
    contacts: tuple[str, ...] = ()  # people warned, in order, when a warning to the member goes unacknowledged
    organisation: str = ""  # members of one organisation may version each other's objects (versions_by)
    people: tuple[str, ...] = ()  # people within the member, each with a token of their own (warning steps)


@dataclasses.dataclass(frozen=True)
class Actor:
    name: str
    aliases: tuple[str, ...]
    # how event datasets name this actor: {dataset: {names, ids, countries, extra_events, ambiguous}}
    datasets: tuple[tuple[str, dict[str, Any]], ...] = ()


@dataclasses.dataclass(frozen=True)
class CompactSpec:
    name: str
    title: str
    description: str
    actors: tuple[Actor, ...]
    hops: int
    expires: dt.date | None
    members: tuple[MemberSpec, ...]
    types: tuple[str, ...] = ()
    default_tlp: str = "amber"
    grace_days: int = 30
    members_visible: bool = False
    region: tuple[str, ...] = ()  # ISO 3166 alpha-2
    window: tuple[str, ...] = ()
    matching: dict[str, Any] = dataclasses.field(default_factory=dict)  # tearline.matching.mailbox.Rules
    escalate_after_hours: int = 24  # an unacknowledged warning goes to the addressee's next contact
    versions_by: str = "member"  # who may add versions to an object: its sharer, or its sharer's organisation

    def policy(self) -> "Policy":
        names = tuple(sorted({n.lower() for a in self.actors for n in (a.name, *a.aliases)}))
        label = " / ".join(a.name for a in self.actors)
        return Policy(actor_names=names, actor_label=label, hops=self.hops, types=self.types,
                            default_tlp=self.default_tlp, expires=self.expires.isoformat() if self.expires else None,
                            grace_days=self.grace_days, region=self.region, window=self.window,
                            members_visible=self.members_visible, matching=self.matching,
                            escalate_after_hours=self.escalate_after_hours, versions_by=self.versions_by)


def _line(node: yaml.Node | None, path: tuple[Any, ...]) -> int | None:
    """The 1-based line of ``path`` in a composed YAML document (best effort)."""
    for key in path:
        if node is None:
            return None
        if isinstance(node, yaml.MappingNode):
            found = None
            for k, v in node.value:
                if k.value == key:
                    found = v if key != path[-1] else k
                    break
            node = found
        elif isinstance(node, yaml.SequenceNode) and isinstance(key, int) and key < len(node.value):
            node = node.value[key]
        else:
            return None
    return node.start_mark.line + 1 if node is not None else None


def parse(text: str, source: str = "<compact>") -> CompactSpec:
    """Parse and check a compact file; raise ConfigError listing every problem with its line."""
    try:
        root = yaml.compose(text)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{source}:{mark.line + 1}" if mark else source
        raise ConfigError(f"{where}: not valid YAML: {getattr(exc, 'problem', exc)}") from None
    problems: list[str] = []

    def problem(path: tuple[Any, ...], message: str) -> None:
        line = _line(root, path)
        field = ".".join(str(p) if not isinstance(p, int) else f"[{p}]" for p in path).replace(".[", "[")
        problems.append(f"{source}:{line or '?'}: {field or '(file)'}: {message}")

    if not isinstance(data, dict):
        raise ConfigError(f"{source}: a compact file is a YAML mapping with name, scope and members")
    for key in sorted(set(data) - _TOP_KEYS):
        problem((key,), f"unknown field (known: {', '.join(sorted(_TOP_KEYS))})")
    name = data.get("name")
    if not isinstance(name, str) or not _NAME.match(name):
        problem(("name",), "required: lower-case letters, digits, '-' or '_', at most 63 characters")
    scope_ = data.get("scope")
    actors: list[Actor] = []
    hops = 2
    types: list[str] = []
    region: tuple[str, ...] = ()
    window: tuple[str, ...] = ()
    if not isinstance(scope_, dict):
        problem(("scope",), "required: a mapping with actors and hops")
    else:
        raw_actors = scope_.get("actors")
        if not isinstance(raw_actors, list) or not raw_actors:
            problem(("scope", "actors"), "required: a non-empty list of {name, aliases}")
        else:
            for i, actor in enumerate(raw_actors):
                if not isinstance(actor, dict) or not isinstance(actor.get("name"), str) or not actor["name"].strip():
                    problem(("scope", "actors", i), "each actor needs a name")
                    continue
                aliases = actor.get("aliases", [])
                if not isinstance(aliases, list) or not all(isinstance(a, str) for a in aliases):
                    problem(("scope", "actors", i, "aliases"), "must be a list of strings")
                    aliases = []
                datasets = _dataset_rules(actor.get("datasets", {}), ("scope", "actors", i, "datasets"), problem)
                actors.append(Actor(actor["name"].strip(), tuple(a.strip() for a in aliases), datasets))
        hops = scope_.get("hops", 2)
        if not isinstance(hops, int) or isinstance(hops, bool) or not 0 <= hops <= 6:
            problem(("scope", "hops"), f"must be an integer from 0 to 6, got {hops!r}")
            hops = 2
        types = scope_.get("types", [])
        if not isinstance(types, list) or not all(isinstance(t, str) and stix.TYPE_NAME.match(t) for t in types):
            problem(("scope", "types"), "must be a list of STIX type names")
            types = []
        region = _region(scope_.get("region", []), problem)
        window = _window(scope_.get("window"), problem)
    expires = data.get("expires")
    if expires is not None and not isinstance(expires, dt.date):
        try:
            expires = dt.date.fromisoformat(str(expires))
        except ValueError:
            problem(("expires",), f"must be a date YYYY-MM-DD, got {expires!r}")
            expires = None
    default_tlp = str(data.get("default_tlp", "amber")).lower()
    if default_tlp not in markings.TLP2:
        problem(("default_tlp",), f"must be one of {', '.join(markings.LEVELS)}")
    grace = data.get("grace_days", 30)
    if not isinstance(grace, int) or isinstance(grace, bool) or grace < 0:
        problem(("grace_days",), f"must be a whole number of days, got {grace!r}")
        grace = 30
    members_visible = data.get("members_visible", False)
    if not isinstance(members_visible, bool):
        problem(("members_visible",), f"must be true or false, got {members_visible!r}")
        members_visible = False
    from .guard import CLASSES, parse_limits
    from .matching.mailbox import parse_rules

    matching = parse_rules(data.get("matching", {}), problem)
    compact_limits = CLASSES | parse_limits(data.get("rate_limits", {}), ("rate_limits",), problem)
    escalate = _warnings(data.get("warnings", {}), problem)
    versions_by = data.get("versions_by", "member")
    if versions_by not in ("member", "organisation"):
        problem(("versions_by",), f"must be member or organisation, got {versions_by!r}")
        versions_by = "member"
    raw_members = data.get("members")
    member_specs: list[MemberSpec] = []
    if not isinstance(raw_members, list) or not raw_members:
        problem(("members",), "required: a non-empty list of {name, write, tlp_max}")
    else:
        seen: set[str] = set()
        for i, m in enumerate(raw_members):
            if not isinstance(m, dict):
                problem(("members", i), "each member is a mapping {name, write, tlp_max}")
                continue
            for key in sorted(set(m) - _MEMBER_KEYS):
                problem(("members", i, key), f"unknown member field (known: {', '.join(sorted(_MEMBER_KEYS))})")
            mname = m.get("name")
            if not isinstance(mname, str) or not _NAME.match(mname):
                problem(("members", i, "name"), "required: lower-case letters, digits, '-' or '_'")
                continue
            if mname in seen:
                problem(("members", i, "name"), f"member {mname!r} appears twice")
            seen.add(mname)
            write = m.get("write", False)
            read = m.get("read", True)
            for key, value in (("write", write), ("read", read)):
                if not isinstance(value, bool):
                    problem(("members", i, key), f"must be true or false, got {value!r}")
            tlp = str(m.get("tlp_max", "clear")).lower()
            if tlp == "white":
                tlp = "clear"
            if tlp not in markings.TLP2:
                problem(("members", i, "tlp_max"), f"must be one of {', '.join(markings.LEVELS)}, got {m.get('tlp_max')!r}")
            redact = m.get("redact", [])
            if not isinstance(redact, list) or not all(isinstance(r, str) for r in redact):
                problem(("members", i, "redact"), "must be a list of property names")
                redact = []
            for r in redact:
                if r not in ("x_", "coordinates") and not re.match(r"^[a-z][a-z0-9_]{2,249}$", r):
                    problem(("members", i, "redact"), f"{r!r} is not a property name, 'x_' or 'coordinates'")
                if r in ("id", "type", "spec_version", "created", "modified"):
                    problem(("members", i, "redact"), f"{r!r} is required in every STIX object and cannot be redacted")
            limits = compact_limits | parse_limits(m.get("rate_limits", {}), ("members", i, "rate_limits"), problem)
            contacts = m.get("contacts", [])
            if not isinstance(contacts, list) or not all(isinstance(c, str) and c.strip() for c in contacts):
                problem(("members", i, "contacts"), "must be a list of contacts, e.g. 'Duty officer <duty@example.org>'")
                contacts = []
            org = m.get("organisation", m.get("organization", ""))
            if not isinstance(org, str):
                problem(("members", i, "organisation"), f"must be a name, got {org!r}")
                org = ""
            people = m.get("people", [])
            if not isinstance(people, list) or not all(isinstance(p, str) and _NAME.match(p) for p in people):
                problem(("members", i, "people"), "must be a list of people's names (lower-case letters, digits, "
                        "'-' or '_'), each of whom gets a token of their own")
                people = []
            elif len(set(people)) != len(people):
                problem(("members", i, "people"), "a person appears twice")
            member_specs.append(MemberSpec(mname, bool(write), bool(read), tlp, tuple(redact),
                                           tuple(sorted(limits.items())), tuple(c.strip() for c in contacts),
                                           org.strip(), tuple(people)))
    known_members = {m.name for m in member_specs}
    for i, (answerer, asker, _types) in enumerate(matching.get("standing_consent", [])):
        for role, who in (("answerer", answerer), ("asker", asker)):
            if member_specs and who not in known_members:
                problem(("matching", "standing_consent", i, role), f"{who!r} is not a member of this compact")
    if problems:
        raise ConfigError("\n".join(problems), details={"problems": problems})
    assert isinstance(name, str)
    return CompactSpec(
        name=name, title=str(data.get("title") or f"Compact {name}"), description=str(data.get("description") or ""),
        actors=tuple(actors), hops=hops, expires=expires, members=tuple(member_specs), types=tuple(types),
        default_tlp=default_tlp, grace_days=grace, region=region, window=window, members_visible=members_visible,
        matching=matching, escalate_after_hours=escalate, versions_by=versions_by,
    )


def _warnings(raw: Any, problem: Any) -> int:
    """warnings: {escalate_after_hours: N}."""
    if not isinstance(raw, dict):
        problem(("warnings",), "must be a mapping {escalate_after_hours: N}")
        return 24
    for key in sorted(set(raw) - {"escalate_after_hours"}):
        problem(("warnings", key), "unknown field (known: escalate_after_hours)")
    hours = raw.get("escalate_after_hours", 24)
    if not isinstance(hours, int) or isinstance(hours, bool) or hours < 1:
        problem(("warnings", "escalate_after_hours"), f"must be a whole number of hours, at least 1, got {hours!r}")
        return 24
    return hours


def _region(raw: Any, problem: Any) -> tuple[str, ...]:
    """scope.region: ISO 3166 alpha-3 (or alpha-2) codes → alpha-2, as STIX locations carry them."""
    import pycountry

    if not isinstance(raw, list):
        problem(("scope", "region"), "must be a list of ISO 3166 country codes")
        return ()
    out = []
    for code in raw:
        country = pycountry.countries.get(alpha_3=str(code).upper()) or pycountry.countries.get(alpha_2=str(code).upper())
        if country is None:
            problem(("scope", "region"), f"{code!r} is not an ISO 3166 country code")
        else:
            out.append(country.alpha_2)
    return tuple(out)


def _window(raw: Any, problem: Any) -> tuple[str, ...]:
    """scope.window: {from: YYYY-MM-DD, to: YYYY-MM-DD}."""
    if raw is None:
        return ()
    try:
        start = dt.date.fromisoformat(str(raw["from"]))
        end = dt.date.fromisoformat(str(raw["to"]))
    except (TypeError, KeyError, ValueError):
        problem(("scope", "window"), "must be {from: YYYY-MM-DD, to: YYYY-MM-DD}")
        return ()
    if end < start:
        problem(("scope", "window"), "ends before it starts")
    return (start.isoformat(), end.isoformat())


_DATASETS = ("acled", "ucdp-ged", "ucdp-candidate", "iskp-curated", "*")
_RULE_KEYS = {"names", "ids", "countries", "extra_events", "ambiguous", "everything"}


def _dataset_rules(raw: Any, path: tuple[Any, ...], problem: Any) -> tuple[tuple[str, dict[str, Any]], ...]:
    """scope.actors[].datasets: per-dataset resolution rules (see tearline.events.actors)."""
    if raw in (None, {}):
        return ()
    if not isinstance(raw, dict):
        problem(path, "must be a mapping of dataset → rule")
        return ()
    rules = []
    for dataset, rule in raw.items():
        where = (*path, dataset)
        if dataset not in _DATASETS:
            problem(where, f"unknown dataset (known: {', '.join(_DATASETS)})")
            continue
        if not isinstance(rule, dict):
            problem(where, "must be a mapping with names, ids, countries, extra_events, ambiguous")
            continue
        for key in sorted(set(rule) - _RULE_KEYS):
            problem((*where, key), f"unknown rule field (known: {', '.join(sorted(_RULE_KEYS))})")
        clean: dict[str, Any] = {}
        for key in ("names", "ids", "countries", "ambiguous"):
            value = rule.get(key, [])
            if not isinstance(value, list) or not all(isinstance(v, (str, int)) for v in value):
                problem((*where, key), "must be a list of strings")
                continue
            clean[key] = tuple(str(v) for v in value)
        bad_iso = [c for c in clean.get("countries", ()) if len(c) != 3 or not c.isalpha() or not c.isupper()]
        if bad_iso:
            problem((*where, "countries"), f"not ISO 3166 alpha-3 codes: {', '.join(bad_iso)}")
        extra = rule.get("extra_events", [])
        pairs = []
        for j, item in enumerate(extra if isinstance(extra, list) else [None]):
            try:
                iso, day = item
                pairs.append((str(iso), dt.date.fromisoformat(str(day)).isoformat()))
            except (TypeError, ValueError):
                problem((*where, "extra_events", j), "each extra event is [ISO3, YYYY-MM-DD]")
        clean["extra_events"] = tuple(pairs)
        clean["everything"] = bool(rule.get("everything", False))
        rules.append((dataset, clean))
    return tuple(rules)


def load(path: Path) -> CompactSpec:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the compact file: {exc.strerror}") from None
    return parse(text, str(path))


def actor_object(actor: Actor) -> dict[str, Any]:
    """The STIX threat-actor for a scope actor, with a name-derived (deterministic) id."""
    return {
        "type": "threat-actor",
        "spec_version": "2.1",
        "id": f"threat-actor--{uuid.uuid5(_ACTOR_NS, actor.name.lower())}",
        "created": "2015-01-01T00:00:00.000Z",
        "modified": "2015-01-01T00:00:00.000Z",
        "name": actor.name,
        **({"aliases": list(actor.aliases)} if actor.aliases else {}),  # STIX forbids an empty list
        "threat_actor_types": ["terrorist"],
        "object_marking_refs": [markings.TLP2["clear"][0]],
    }


def apply(store: Store, spec: CompactSpec) -> dict[str, str]:
    """Create or update the compact; return {member: token} for the members that are new, and
    {"member/person": token} for the people that are new."""
    tokens: dict[str, str] = {}
    with store.engine.begin() as conn:
        store.ensure_api_root(conn, spec.name, spec.title, spec.description, spec.policy().dumps())
        store.ensure_collection(conn, spec.name, "intel", f"{spec.title}: intelligence",
                                "Objects shared within the compact's scope")
        store.ensure_collection(conn, spec.name, "warnings", f"{spec.title}: warnings",
                                "Duty-to-warn notices, each visible only to its addressee", member_writable=False)
        existing = {m.name: m for m in store.members_of(conn, spec.name)}
        changed = []
        for m in spec.members:
            profile = {"redact": list(m.redact), "rate_limits": dict(m.rate_limits), "contacts": list(m.contacts),
                       "organisation": m.organisation, "people": list(m.people)}
            values = {"can_read": m.read, "can_write": m.write, "tlp_max": m.tlp_max, "profile": profile}
            before = existing.get(m.name)
            if before is not None:
                store.update_member(conn, spec.name, m.name, **values)
                if (before.tlp_max, before.can_read, before.hides_authors) != (m.tlp_max, m.read, "created_by_ref" in m.redact):
                    changed.append(m.name)
            else:
                tokens[m.name] = store.add_member(conn, spec.name, m.name, **values)  # type: ignore[arg-type]
                changed.append(m.name)
        for gone in sorted(set(existing) - {m.name for m in spec.members}):
            store.drop_member(conn, spec.name, gone)
        ids = {m.name: m.id for m in store.members_of(conn, spec.name)}
        for m in spec.members:
            had = set(store.people_of(conn, ids[m.name]))
            for person in m.people:
                if person not in had:
                    tokens[f"{m.name}/{person}"] = store.add_person(conn, ids[m.name], person)
            for person in sorted(had - set(m.people)):
                store.drop_person(conn, ids[m.name], person)
        for coll in store.collections(spec.name, conn):
            # clients resolving object_marking_refs find the TLP 2.0 definitions in every collection
            objs = markings.definitions() + ([actor_object(a) for a in spec.actors] if coll.alias == "intel" else [])
            write.hub_write(store, conn, coll, objs, None)
        write.settle_members(store, conn, spec.name, changed)
    return tokens
