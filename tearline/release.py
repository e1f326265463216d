"""The one outbound gate: what a member may see, compiled to SQL.

Every read path (objects, object by id, versions, manifest, the date headers, ``more``/``next``) asks
``visible`` for its WHERE clauses and never filters rows by hand afterwards, so paging, counts and
headers agree with what is released. Deny by default: without a readable membership of the
collection's API root there is no clause that lets a row through.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from sqlalchemy import ColumnElement, and_, exists, false, or_, select

from . import markings
from .store.schema import objects, recipients


@dataclasses.dataclass(frozen=True)
class Member:
    id: int
    api_root: str
    name: str
    can_read: bool
    can_write: bool
    tlp_max: str
    profile: dict[str, Any] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class Collection:
    id: str
    api_root: str
    alias: str
    title: str
    description: str
    member_writable: bool
    num: int  # the store's key of the collection


def can_read(member: Member, collection: Collection) -> bool:
    return member.api_root == collection.api_root and member.can_read


def can_write(member: Member, collection: Collection) -> bool:
    return member.api_root == collection.api_root and member.can_write and collection.member_writable


def visible(member: Member, collection: Collection) -> list[ColumnElement[bool]]:
    """WHERE clauses selecting the object versions ``member`` may read in ``collection``."""
    if not can_read(member, collection):
        return [false()]
    ceiling = markings.rank(member.tlp_max)
    shared = min(ceiling, markings.rank("amber"))  # AMBER+STRICT never leaves its author's organisation
    may_see = [objects.c.author == member.id, objects.c.tlp <= shared]
    if ceiling >= markings.rank("red"):
        may_see.append(and_(objects.c.tlp == markings.rank("red"), exists(
            select(recipients.c.added_us).where(recipients.c.added_us == objects.c.added_us,
                                                recipients.c.member == member.name))))
    return [objects.c.coll == collection.num, or_(*may_see)]
