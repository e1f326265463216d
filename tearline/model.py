"""The shared types every layer speaks: a compact's policy, its members and its collections.

Plain frozen values with no behaviour beyond what they are; everything that decides (scope, what a
member may see, what a write may store) lives in the modules above and takes these as arguments.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from typing import Any

import orjson

INTEL, WARNINGS = "intel", "warnings"
# What a compact or member name looks like (a public rule: refusing a name for its form tells nothing of who
# is a member)
NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")


@dataclasses.dataclass(frozen=True)
class Policy:
    """A compact's rules as the hub stores them with its API root (tearline.compactfile builds it from the file)."""

    actor_names: tuple[str, ...] = ()  # the scope actors' names and aliases, lower-case
    actor_label: str = "the compact's actors"
    hops: int = 2
    types: tuple[str, ...] = ()  # allow-list; empty admits every type
    default_tlp: str = "amber"  # for objects with no TLP marking
    expires: str | None = None  # ISO date: read-only after it
    grace_days: int = 30  # closed this many days after expiry
    members_visible: bool = False  # may members learn who else is in the compact?
    region: tuple[str, ...] = ()  # ISO 3166 alpha-2 countries a location may lie in; empty: anywhere
    window: tuple[str, ...] = ()  # (first day, last day) an object's own date must fall in; empty: any time
    matching: dict[str, Any] = dataclasses.field(default_factory=dict)  # private matching rules (compact file)
    escalate_after_hours: int = 24  # duty to warn: when an unacknowledged warning goes to the next contact
    versions_by: str = "member"  # who adds versions to an object: its sharer ("member") or its organisation

    def dumps(self) -> str:
        return orjson.dumps(dataclasses.asdict(self)).decode()

    @classmethod
    def loads(cls, text: str) -> Policy:
        raw = orjson.loads(text or "{}")
        fields = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in raw.items() if k in fields})

    def state(self, today: dt.date) -> str:
        """open, read-only (past expiry) or closed (past the grace period)."""
        if not self.expires:
            return "open"
        ends = dt.date.fromisoformat(self.expires)
        if today <= ends:
            return "open"
        return "read-only" if today <= ends + dt.timedelta(days=self.grace_days) else "closed"


@dataclasses.dataclass(frozen=True)
class Member:
    id: int
    api_root: str
    name: str
    can_read: bool
    can_write: bool
    tlp_max: str
    profile: dict[str, Any] = dataclasses.field(default_factory=dict, hash=False, compare=False)
    # the person within the member who signed in with their own token (tearline.compact: ``people``); None for
    # the member's own token. Steps that need a second person (tearline.warn) are taken by people.
    person: str | None = dataclasses.field(default=None, hash=False, compare=False)

    @property
    def redactions(self) -> frozenset[str]:
        return frozenset(self.profile.get("redact") or ())

    @property
    def certificate(self) -> str | None:
        """The SHA-256 fingerprint of the TLS client certificate this member must present (a peer hub), if any."""
        return self.profile.get("certificate") or None

    @property
    def hides_authors(self) -> bool:
        """Its copies name authors only by pseudonym (redact: [created_by_ref])."""
        return "created_by_ref" in self.redactions


@dataclasses.dataclass(frozen=True)
class Collection:
    id: str
    api_root: str
    alias: str
    title: str
    description: str
    member_writable: bool
    num: int  # the store's key of the collection
    policy: str = "{}"  # its compact's policy, as stored (read with the collection: one query, not two)

    @property
    def rules(self) -> Policy:
        return Policy.loads(self.policy)

    @property
    def addressed_only(self) -> bool:
        """The warnings collection: an object reaches its named addressee and nobody else, whatever
        the addressee's TLP ceiling (tearline.warn delivers there; members cannot write to it)."""
        return self.alias == WARNINGS and not self.member_writable


def can_read(member: Member, collection: Collection) -> bool:
    return member.api_root == collection.api_root and member.can_read


def can_write(member: Member, collection: Collection) -> bool:
    return member.api_root == collection.api_root and member.can_write and collection.member_writable
