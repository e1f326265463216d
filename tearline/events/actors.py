"""Actors by alias, with the per-dataset rules a name alone cannot express.

ACLED names ISKP "Islamic State Khorasan Province (ISKP)" (older exports "Islamic State
(Afghanistan)") and writes "Taliban and/or ISKP" when attribution is unclear: those rows are counted
apart as ambiguous, never silently. UCDP GED files every Islamic State branch under one actor, "IS"
(side id 234), so ISIS-K there means IS events in its theatre (Afghanistan, Pakistan, Iran, Central
Asia) plus the attacks abroad it claimed (Moscow, March 2024; Kerman is in Iran already). The curated
ISKP list is ISKP by construction.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from ..errors import NotFound


@dataclasses.dataclass(frozen=True)
class Rule:
    source: str  # a dataset name, or "*" for every dataset
    names: tuple[str, ...] = ()  # actor strings (actor1/actor2), exact, case-insensitive
    ids: tuple[str, ...] = ()  # UCDP side ids
    countries: tuple[str, ...] = ()  # ISO3; empty means anywhere
    extra_events: tuple[tuple[str, str], ...] = ()  # (ISO3, YYYY-MM-DD) outside `countries` that still count
    ambiguous: tuple[str, ...] = ()  # actor strings counted apart, never as the actor
    everything: bool = False  # every row of the dataset is this actor's
    note: str = ""  # what the rule cannot tell, said with every figure it produces

    def describe(self) -> str:
        parts = []
        if self.everything:
            parts.append("every row")
        if self.names:
            parts.append("actor is " + " or ".join(repr(n) for n in self.names))
        if self.ids:
            parts.append("side id " + " or ".join(self.ids))
        if self.countries:
            parts.append("in " + ", ".join(self.countries))
        if self.extra_events:
            parts.append("plus " + ", ".join(f"{c} {d}" for c, d in self.extra_events))
        if self.ambiguous:
            parts.append("ambiguous (counted apart): " + ", ".join(repr(a) for a in self.ambiguous))
        return "; ".join(parts)


@dataclasses.dataclass(frozen=True)
class Actor:
    name: str
    aliases: tuple[str, ...]
    rules: tuple[Rule, ...]

    def names(self) -> set[str]:
        return {self.name.lower(), *(a.lower() for a in self.aliases)}


ISKP_THEATRE = ("AFG", "PAK", "IRN", "TJK", "UZB", "TKM", "KGZ", "KAZ")

CATALOGUE: tuple[Actor, ...] = (
    Actor(
        name="Islamic State Khorasan Province",
        aliases=("ISIS-K", "ISKP", "IS-K", "ISIL-KP", "Wilayat Khorasan", "Islamic State Khorasan"),
        rules=(
            Rule("acled", names=("Islamic State Khorasan Province (ISKP)", "Islamic State (Afghanistan)",
                                 "Islamic State Khorasan Province"),
                 ambiguous=("Taliban and/or ISKP",),
                 note="ACLED's own attribution, which it revises between releases; rows naming ISKP only among "
                      "associated actors are reported apart as associated"),
            Rule("ucdp-ged", names=("IS",), ids=("234",), countries=ISKP_THEATRE,
                 extra_events=(("RUS", "2024-03-22"),),
                 note="UCDP codes every Islamic State branch as IS (side 234): geography stands in for ISKP, so "
                      "an IS event in the theatre by another branch would be counted"),
            Rule("ucdp-candidate", names=("IS",), ids=("234",), countries=ISKP_THEATRE,
                 extra_events=(("RUS", "2024-03-22"),),
                 note="UCDP codes every Islamic State branch as IS (side 234): geography stands in for ISKP; "
                      "candidate codings are preliminary"),
            Rule("iskp-curated", everything=True,
                 note="every row is an attack ascribed to ISKP, claimed, attributed or suspected (in event_type)"),
        ),
    ),
)


def with_compact(spec: Any, catalogue: tuple[Actor, ...] = CATALOGUE) -> tuple[Actor, ...]:
    """The catalogue extended by a compact's actors: a compact actor with dataset rules replaces the
    built-in actor it names (by name or alias); one without rules adds its aliases to it."""
    merged = list(catalogue)
    for ca in spec.actors:
        names = {ca.name.lower(), *(a.lower() for a in ca.aliases)}
        index = next((i for i, a in enumerate(merged) if a.names() & names), None)
        rules = tuple(Rule(source=ds, **rule) for ds, rule in ca.datasets)
        if index is None:
            merged.append(Actor(ca.name, ca.aliases, rules or (Rule("*", names=(ca.name, *ca.aliases)),)))
            continue
        base = merged[index]
        aliases = tuple(dict.fromkeys((*base.aliases, *ca.aliases, *([ca.name] if ca.name != base.name else []))))
        merged[index] = Actor(base.name, aliases, rules or base.rules)
    return tuple(merged)


def resolve(name: str, catalogue: tuple[Actor, ...] = CATALOGUE) -> Actor:
    """A catalogue actor by name or alias; otherwise the dataset's own actor string, in every dataset."""
    name = " ".join(name.split())  # as the datasets' names are stored: runs of spaces made one
    for actor in catalogue:
        if name.lower() in actor.names():
            return actor
    return Actor(name=name, aliases=(), rules=(Rule("*", names=(name,)),))


def narrowing(country: str | None, source: str | None) -> tuple[str, list[Any]]:
    """' AND …' for the --country and --source options every events query takes."""
    sql, params = "", []
    if country:
        sql += " AND country_iso3 = ?"
        params.append(country.upper())
    if source and source != "all":
        sql += " AND source = ?"
        params.append(source)
    return sql, params


def selection(actor_name: str, country: str | None, source: str | None,
              catalogue: tuple[Actor, ...] = CATALOGUE) -> tuple[Actor, str, list[Any]]:
    """The resolved actor and the WHERE clause over `events` for its rows, narrowed by country and source."""
    actor = resolve(actor_name, catalogue)
    where, params = predicate(actor)
    extra, extra_params = narrowing(country, source)
    return actor, where + extra, params + extra_params


def coding(actor: Actor, source: str) -> str:
    """How the actor's rows are picked out of ``source``, and what that rule cannot tell."""
    rules = [r for r in actor.rules if r.source in (source, "*")]
    if not rules:
        return f"no rule picks {actor.name} out of {source}: none of its rows count"
    return "; ".join(f"{r.describe()}{' (' + r.note + ')' if r.note else ''}" for r in rules)


def require(con: Any, actor_name: str, catalogue: tuple[Actor, ...] = CATALOGUE) -> None:
    """NotFound when the events store holds no event of the actor at all: an unknown or misspelt actor is an
    error, never a trend of zeros (a known actor with none where asked is a zero, and says so)."""
    if not con.execute("SELECT count(*) FROM (SELECT 1 FROM events LIMIT 1)").fetchone()[0]:
        raise NotFound("the events store holds no events: load UCDP, ACLED or curated files first with "
                       "`tearline events ingest FILE…`", code="empty_store")
    _actor, where, params = selection(actor_name, None, None, catalogue)
    if con.execute(f"SELECT count(*) FROM (SELECT 1 FROM events WHERE {where} LIMIT 1)", params).fetchone()[0]:
        return
    raise NotFound(f"no event of {actor_name!r} in the events store: `tearline events actors` lists the actors "
                   "Tearline knows; a dataset's own actor name (as in its actor1/side_a column) works too",
                   code="unknown_actor")


def associated(actor: Actor) -> tuple[str, list[Any]]:
    """SQL over `events` selecting the rows that name the actor only among ACLED's associated actors."""
    named, named_params = predicate(actor, kind="associated")
    own, own_params = predicate(actor)
    return f"({named} AND NOT {own})", named_params + own_params


def predicate(actor: Actor, ambiguous: bool = False, kind: str = "actor") -> tuple[str, list[Any]]:
    """SQL over `events` selecting the actor's rows (or, with ambiguous=True, its ambiguous rows; with
    kind="associated", the rows naming it among associated actors, whatever their primary actors)."""
    kind = "ambiguous" if ambiguous else kind
    clauses: list[str] = []
    params: list[Any] = []
    for rule in actor.rules:
        names = rule.ambiguous if kind == "ambiguous" else rule.names
        who: list[str] = []
        who_params: list[Any] = []
        if rule.everything and kind == "actor":
            who.append("TRUE")
        if names and kind == "associated":
            marks = ", ".join("?" for _ in names)
            who.append(f"list_has_any(string_split(lower(coalesce(assoc_actors, '')), '; '), list_value({marks}))")
            who_params += [n.lower() for n in names]
        elif names:
            marks = ", ".join("?" for _ in names)
            who.append(f"(lower(actor1) IN ({marks}) OR lower(actor2) IN ({marks}))")
            who_params += [n.lower() for n in names] * 2
        if rule.ids and kind == "actor":
            marks = ", ".join("?" for _ in rule.ids)
            who.append(f"(actor1_id IN ({marks}) OR actor2_id IN ({marks}))")
            who_params += list(rule.ids) * 2
        if not who:
            continue
        clause = "(" + " OR ".join(who) + ")"
        clause_params = who_params
        if rule.source != "*":
            clause = f"source = ? AND {clause}"
            clause_params = [rule.source] + clause_params
        places: list[str] = []
        if rule.countries:
            places.append(f"country_iso3 IN ({', '.join('?' for _ in rule.countries)})")
            clause_params += list(rule.countries)
        for iso, day in rule.extra_events:
            places.append("(country_iso3 = ? AND event_date = CAST(? AS DATE))")
            clause_params += [iso, day]
        if places:
            clause += " AND (" + " OR ".join(places) + ")"
        clauses.append(f"({clause})")
        params += clause_params
    return ("(" + " OR ".join(clauses) + ")" if clauses else "FALSE"), params
