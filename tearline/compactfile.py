"""The compact file (the YAML schema of DESIGN.md) as a declared model, and the spec it becomes.

The file is read twice: composed, for the line each value sits on, and validated by the pydantic model
below, which reports every problem at once. Each problem is one line, ``file:line: field: message``, so an
operator finds it in the file. The model is strict: ``write: yes please`` is not true, ``hops: "2"`` is not
a number. Nothing here touches a store: ``tearline.compact.apply`` makes a compact of the spec.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

import pycountry
import yaml
from pydantic import (
    AfterValidator,
    AliasChoices,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    Strict,
    ValidationError,
    field_validator,
    model_validator,
)

from . import markings, stix, tls
from .errors import ConfigError
from .guard import CLASSES
from .matching.mailbox import Rules
from .matching.values import TYPES
from .model import NAME, Policy

# --- what the rest of the hub reads: plain, frozen data -------------------------------------------------


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
    kind: str = "member"  # "hub": another Tearline hub (or TAXII server) that mirrors the compact (federation)
    certificate: str = ""  # SHA-256 fingerprint of the TLS client certificate a hub member must present


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

    def policy(self) -> Policy:
        names = tuple(sorted({n.lower() for a in self.actors for n in (a.name, *a.aliases)}))
        label = " / ".join(a.name for a in self.actors)
        return Policy(actor_names=names, actor_label=label, hops=self.hops, types=self.types,
                      default_tlp=self.default_tlp, expires=self.expires.isoformat() if self.expires else None,
                      grace_days=self.grace_days, region=self.region, window=self.window,
                      members_visible=self.members_visible, matching=self.matching,
                      escalate_after_hours=self.escalate_after_hours, versions_by=self.versions_by)


# --- the file's model ----------------------------------------------------------------------------------

_NAME_PATTERN = NAME.pattern
_PROPERTY = re.compile(r"^[a-z][a-z0-9_]{2,249}$")
_REQUIRED_PROPERTIES = ("id", "type", "spec_version", "created", "modified")
Dataset = Literal["acled", "ucdp-ged", "ucdp-candidate", "iskp-curated", "*"]
DATASETS = get_args(Dataset)
EndpointClass = Literal["meta", "read", "write", "match"]  # tearline.guard.CLASSES (a test holds them equal)

Name = Annotated[str, Field(pattern=_NAME_PATTERN)]


def _per_minute(value: int) -> int:
    if not 1 <= value <= 1_000_000:
        raise ValueError(f"must be a whole number of requests per minute from 1 to 1000000, got {value!r}")
    return value


PerMinute = Annotated[int, AfterValidator(_per_minute)]
RateLimits = dict[EndpointClass, PerMinute]


class _Model(BaseModel):
    # YAML already gives booleans and numbers their types: none is taken from text ("yes please" is not
    # true, "2" is not a number). Dates are the exception: a quoted date reads as the date it spells.
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


def _date(value: Any) -> Any:
    """A date written YYYY-MM-DD, quoted or not (YAML reads the unquoted form as a date already)."""
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            raise ValueError(f"must be a date YYYY-MM-DD, got {value!r}") from None
    return value


def _none_is_empty(value: Any) -> Any:
    """A mapping key with nothing after it (every entry commented out, say) is an empty mapping."""
    return {} if value is None else value


def _text(value: Any) -> Any:
    """A title or description: whatever YAML read, as text (``title: 2024`` is the title '2024')."""
    return None if value is None else str(value)


Day = Annotated[dt.date, BeforeValidator(_date)]
Alpha3 = Annotated[str, BeforeValidator(lambda v: v.upper() if isinstance(v, str) else v),
                   Field(pattern=r"^[A-Z]{3}$")]


class DatasetRule(_Model):
    """How one event dataset names the actor (tearline.events.actors)."""

    names: list[str | int] = []
    ids: list[str | int] = []
    countries: list[str] = []
    ambiguous: list[str | int] = []
    # [ISO3, date] pairs: YAML has no tuples, so a two-item list is taken as one
    extra_events: list[Annotated[tuple[Alpha3, Day], Strict(False)]] = []
    everything: bool = False

    @field_validator("countries")
    @classmethod
    def _alpha3(cls, codes: list[str]) -> list[str]:
        bad = [c for c in codes if len(c) != 3 or not c.isalpha() or not c.isupper()]
        if bad:
            raise ValueError(f"not ISO 3166 alpha-3 codes: {', '.join(bad)}")
        return codes


class ActorModel(_Model):
    name: Annotated[str, Field(min_length=1, pattern=r"\S")]
    aliases: list[str] = []
    datasets: Annotated[dict[Dataset, DatasetRule], BeforeValidator(_none_is_empty)] = {}


class Window(_Model):
    start: dt.date = Field(validation_alias="from")
    end: dt.date = Field(validation_alias="to")

    @field_validator("start", "end", mode="before")
    @classmethod
    def _dates(cls, value: Any) -> Any:
        return _date(value)

    @model_validator(mode="after")
    def _ordered(self) -> Window:
        if self.end < self.start:
            raise ValueError("ends before it starts")
        return self


class Scope(_Model):
    actors: Annotated[list[ActorModel], Field(min_length=1)]
    hops: Annotated[int, Field(ge=0, le=6)] = 2
    types: list[Annotated[str, Field(pattern=stix.TYPE_NAME.pattern)]] = []
    region: list[str | int] = []
    window: Window | None = None

    @field_validator("region")
    @classmethod
    def _countries(cls, codes: list[str | int]) -> list[str | int]:
        unknown = [c for c in codes if _alpha2(c) is None]
        if unknown:
            raise ValueError("; ".join(f"{c!r} is not an ISO 3166 country code" for c in unknown))
        return codes


class Consent(_Model):
    answerer: str
    asker: str
    types: list[Literal["phone", "domain", "wallet", "hash", "ip", "email"]] = list(TYPES)


class Matching(_Model):
    results: Literal["asker", "both"] = "asker"
    max_items: Annotated[int, Field(ge=1, le=100_000_000)] = Rules.max_items
    min_items: Annotated[int, Field(ge=1, le=1_000_000)] = Rules.min_items
    requests_per_day: Annotated[int, Field(ge=1, le=1000)] = Rules.requests_per_day
    fpr: Annotated[float, Field(gt=0, le=1e-3)] = Rules.fpr
    expire_days: Annotated[int, Field(ge=1, le=365)] = Rules.expire_days
    standing_consent: list[Consent] = []

    @field_validator("fpr", mode="before")
    @classmethod
    def _number(cls, value: Any) -> Any:
        return float(value) if isinstance(value, int) and not isinstance(value, bool) else value

    @model_validator(mode="after")
    def _sizes(self) -> Matching:
        if self.min_items > self.max_items:
            given = "" if "min_items" in self.model_fields_set else ", the default"
            raise ValueError(f"max_items ({self.max_items:,}) is below min_items ({self.min_items:,}{given}): "
                             "no request could be admitted")
        return self


class Warnings(_Model):
    escalate_after_hours: Annotated[int, Field(ge=1)] = 24


class MemberModel(_Model):
    name: Name
    write: bool = False
    read: bool = True
    tlp_max: str = "clear"
    redact: list[str] = []
    rate_limits: RateLimits = {}
    contacts: list[Annotated[str, Field(pattern=r"\S")]] = []
    organisation: str = Field("", validation_alias=AliasChoices("organisation", "organization"))
    people: list[Name] = []
    kind: Literal["member", "hub"] = "member"
    certificate: str = ""

    @field_validator("certificate")
    @classmethod
    def _pinned(cls, value: str) -> str:
        if value and tls.pin(value) is None:
            raise ValueError(f"{value!r} is not a SHA-256 certificate fingerprint (64 hex digits, colons allowed, "
                             "e.g. as `tearline peer fingerprint CERT.pem` prints it)")
        return tls.pin(value) or ""

    @model_validator(mode="after")
    def _hub_pinned(self) -> MemberModel:
        if self.kind == "hub" and not self.certificate:
            raise ValueError(f"member {self.name!r} is of kind hub: pin the TLS client certificate it presents "
                             "(certificate: its SHA-256 fingerprint)")
        if self.kind == "hub" and self.people:
            raise ValueError(f"member {self.name!r} is of kind hub: a hub has no people (warning steps are "
                             "people's, on their own hub)")
        return self

    @field_validator("tlp_max", mode="before")
    @classmethod
    def _level(cls, value: Any) -> Any:
        level = str(value).lower()
        level = "clear" if level == "white" else level
        if level not in markings.TLP2:
            raise ValueError(f"must be one of {', '.join(markings.LEVELS)}, got {value!r}")
        return level

    @field_validator("redact")
    @classmethod
    def _properties(cls, names: list[str]) -> list[str]:
        for r in names:
            if r in _REQUIRED_PROPERTIES:
                raise ValueError(f"{r!r} is required in every STIX object and cannot be redacted")
            if r not in ("x_", "coordinates") and not _PROPERTY.match(r):
                raise ValueError(f"{r!r} is not a property name, 'x_' or 'coordinates'")
        return names

    @field_validator("people")
    @classmethod
    def _once(cls, people: list[str]) -> list[str]:
        if len(set(people)) != len(people):
            raise ValueError("a person appears twice")
        return people


class CompactFile(_Model):
    name: Name
    title: Annotated[str | None, BeforeValidator(_text)] = None  # "title:" with nothing after it is no title
    description: Annotated[str | None, BeforeValidator(_text)] = None
    scope: Scope
    expires: dt.date | None = None
    members: Annotated[list[MemberModel], Field(min_length=1)]
    grace_days: Annotated[int, Field(ge=0)] = 30
    default_tlp: str = "amber"
    versions_by: Literal["member", "organisation"] = "member"
    members_visible: bool = False
    matching: Matching = Matching()
    rate_limits: RateLimits = {}
    warnings: Warnings = Warnings()

    @field_validator("expires", mode="before")
    @classmethod
    def _expiry(cls, value: Any) -> Any:
        return _date(value)

    @field_validator("default_tlp", mode="before")
    @classmethod
    def _tlp(cls, value: Any) -> Any:
        level = str(value).lower()
        if level not in markings.TLP2:
            raise ValueError(f"must be one of {', '.join(markings.LEVELS)}")
        return level


# --- from text to spec ---------------------------------------------------------------------------------

def _alpha2(code: Any) -> str | None:
    text = str(code).upper()
    country = pycountry.countries.get(alpha_3=text) or pycountry.countries.get(alpha_2=text)
    return country.alpha_2 if country else None


def _line(node: yaml.Node | None, path: tuple[Any, ...]) -> int | None:
    """The 1-based line of ``path`` in a composed YAML document (the nearest one found)."""
    line = node.start_mark.line + 1 if node is not None else None
    for key in path:
        if isinstance(node, yaml.MappingNode):
            found = next(((k, v) for k, v in node.value if k.value == key), None)
            if found is None:
                return line
            node = found[0] if key == path[-1] else found[1]
        elif isinstance(node, yaml.SequenceNode) and isinstance(key, int) and key < len(node.value):
            node = node.value[key]
        else:
            return line
        line = node.start_mark.line + 1
    return line


def _field(path: tuple[Any, ...]) -> str:
    return ".".join(str(p) if not isinstance(p, int) else f"[{p}]" for p in path).replace(".[", "[") or "(file)"


_FIELD_WORD = {"DatasetRule": "rule field", "MemberModel": "member field"}


def _message(error: Any, model: type[BaseModel] | None) -> str:
    kind, text = error["type"], error["msg"]
    if kind == "extra_forbidden":
        known = sorted(f.validation_alias if isinstance(f.validation_alias, str) else name
                       for name, f in (model.model_fields.items() if model else ()))
        what = _FIELD_WORD.get(model.__name__ if model else "", "field")
        return f"unknown {what} (known: {', '.join(known)})" if known else f"unknown {what}"
    if kind == "missing":
        return "required"
    if kind == "value_error":  # our own validators' words, which name what they got
        return str(text).removeprefix("Value error, ")
    if kind in ("model_type", "dict_type", "model_attributes_type"):
        text = "must be a mapping"
    return f"{text[0].lower()}{text[1:]}, got {error['input']!r}"


def _owner(path: tuple[Any, ...]) -> type[BaseModel] | None:
    """The model a field path ends in, to list the fields it knows."""
    model: Any = CompactFile
    for key in path[:-1]:
        if isinstance(key, int) or model is None:
            continue
        field = model.model_fields.get(key)
        if field is None:  # a key of a mapping (a dataset's name): the model stays the same
            continue
        inner = field.annotation
        for arg in getattr(inner, "__args__", ()) or ():
            inner = arg if isinstance(arg, type) and issubclass(arg, BaseModel) else inner
        model = inner if isinstance(inner, type) and issubclass(inner, BaseModel) else None
    return model


_KEYED = {"datasets": ("dataset", DATASETS), "rate_limits": ("endpoint class", tuple(CLASSES))}


def _unknown_key(path: tuple[Any, ...]) -> str:
    """A mapping's key that is not one of the names it takes (a dataset, an endpoint class)."""
    what, known = _KEYED.get(path[-2] if len(path) > 1 else "", ("key", ()))
    return f"unknown {what} (known: {', '.join(known)})"


def _problems(error: ValidationError, root: yaml.Node, source: str) -> list[str]:
    out = []
    for e in error.errors():
        # pydantic names a tuple's members and a union's branches in the path; the file has neither
        loc = e["loc"]
        path = tuple(p for i, p in enumerate(loc) if not (isinstance(p, str) and (
            "[" in p or (p in ("str", "int") and i and isinstance(loc[i - 1], int)))))
        message = _unknown_key(path) if e["loc"][-1:] == ("[key]",) else _message(e, _owner(path))
        line = f"{source}:{_line(root, path) or '?'}: {_field(path)}: {message}"
        if line not in out:  # a value that fits no branch of a union fails once per branch
            out.append(line)
    return out


def _cross_problems(data: dict[str, Any], root: yaml.Node, source: str) -> list[str]:
    """What no one field shows: a member named twice, a standing consent for someone not a member. Read
    from the file as it is, so these are reported with the rest even when other fields are wrong."""
    members = data.get("members") if isinstance(data.get("members"), list) else []
    names = [m.get("name") if isinstance(m, dict) else None for m in members]
    out = []
    for i, name in enumerate(names):
        if name is not None and name in names[:i]:
            path = ("members", i, "name")
            out.append(f"{source}:{_line(root, path)}: {_field(path)}: member {name!r} appears twice")
    matching = data.get("matching") if isinstance(data.get("matching"), dict) else {}
    consents = matching.get("standing_consent") if isinstance(matching.get("standing_consent"), list) else []
    for i, rule in enumerate(consents):
        for role in ("answerer", "asker"):
            who = rule.get(role) if isinstance(rule, dict) else None
            if isinstance(who, str) and names and who not in names:
                path = ("matching", "standing_consent", i, role)
                out.append(f"{source}:{_line(root, path)}: {_field(path)}: {who!r} is not a member of this compact")
    return out


def _spec(m: CompactFile) -> CompactSpec:
    actors = tuple(Actor(a.name.strip(), tuple(x.strip() for x in a.aliases), tuple(
        (dataset, {"names": tuple(str(v) for v in r.names), "ids": tuple(str(v) for v in r.ids),
                   "countries": tuple(r.countries), "ambiguous": tuple(str(v) for v in r.ambiguous),
                   "extra_events": tuple((iso, day.isoformat()) for iso, day in r.extra_events),
                   "everything": r.everything})
        for dataset, r in a.datasets.items())) for a in m.scope.actors)
    members = tuple(MemberSpec(p.name, p.write, p.read, p.tlp_max, tuple(p.redact),
                               tuple(sorted((CLASSES | m.rate_limits | p.rate_limits).items())),
                               tuple(c.strip() for c in p.contacts), p.organisation.strip(), tuple(p.people),
                               p.kind, p.certificate)
                    for p in m.members)
    matching = m.matching.model_dump(exclude_unset=True, exclude={"standing_consent"})
    if m.matching.standing_consent:
        matching["standing_consent"] = [[c.answerer, c.asker, list(c.types)] for c in m.matching.standing_consent]
    window = (m.scope.window.start.isoformat(), m.scope.window.end.isoformat()) if m.scope.window else ()
    return CompactSpec(
        name=m.name, title=m.title or f"Compact {m.name}", description=m.description or "", actors=actors,
        hops=m.scope.hops, expires=m.expires, members=members, types=tuple(m.scope.types),
        default_tlp=m.default_tlp, grace_days=m.grace_days, region=tuple(_alpha2(c) or "" for c in m.scope.region),
        window=window, members_visible=m.members_visible, matching=matching,
        escalate_after_hours=m.warnings.escalate_after_hours, versions_by=m.versions_by)


def parse(text: str, source: str = "<compact>") -> CompactSpec:
    """Parse and check a compact file; raise ConfigError listing every problem with its line."""
    try:
        root = yaml.compose(text)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{source}:{mark.line + 1}" if mark else source
        raise ConfigError(f"{where}: not valid YAML: {getattr(exc, 'problem', exc)}") from None
    except ValueError as exc:  # a value YAML's own types refuse, such as the date 2027-13-01
        raise ConfigError(f"{source}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: a compact file is a YAML mapping with name, scope and members")
    problems = _cross_problems(data, root, source)
    try:
        model = CompactFile.model_validate(data)
    except ValidationError as exc:
        problems = _problems(exc, root, source) + problems
    if problems:
        raise ConfigError("\n".join(problems), details={"problems": problems})
    return _spec(model)


def load(path: Path) -> CompactSpec:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the compact file: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: the compact file is not UTF-8 text (byte {exc.start})") from None
    return parse(text, str(path))
