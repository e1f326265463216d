"""The hub's side of private matching: a per-compact mailbox that holds blinded PSI messages between
two members, enforces the compact's matching rules, and logs every action.

What the hub sees: who asked whom, when, the value type, how many values were asked, and two opaque
messages. What it cannot see: any value, or which values matched (only the asker's secret key turns
the reply into an answer).

Limits, and why. A PSI request answers "which of these values do you hold?". A member who sends
many small requests could test a partner's list one value at a time, which is exactly the probing
the compact exists to prevent. So:
- ``requests_per_day`` (default 4) caps how often one member may ask the same partner about the same
  type of value, in any rolling 24 hours: at most that many probes a day, however they are built;
- ``min_items`` (default 100) refuses requests too small to be anything but a probe. Padding a probe
  with junk defeats this rule alone, which is why the frequency cap is the real bound and the
  answerer is shown the size of every request before consenting;
- ``max_items`` (default 1,000,000) bounds the work and the mailbox's storage.
A request to a name that is not a member is accepted like any other and simply expires unanswered,
so the mailbox cannot be used to learn who is in the compact.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from collections.abc import Callable
from typing import Any

import orjson
from sqlalchemy import and_, func, insert, select, update

from ..errors import BadRequest, Forbidden, NotFound, PayloadTooLarge, TooManyRequests
from ..model import NAME, Member, Policy
from ..store import Store, now_us
from ..store.schema import match_log, match_requests, members
from . import protocol
from .values import TYPES

DAY_US = 86_400_000_000


@dataclasses.dataclass(frozen=True)
class Rules:
    results: str = "asker"  # 'asker': only the asker learns the intersection; 'both': it may ask for both
    max_items: int = 1_000_000
    min_items: int = 100
    requests_per_day: int = 4
    fpr: float = protocol.FPR
    expire_days: int = 7
    # (answerer, asker, types): requests the answerer has agreed in advance to answer
    standing_consent: tuple[tuple[str, str, tuple[str, ...]], ...] = ()

    @classmethod
    def of(cls, policy: Policy) -> Rules:
        raw = dict(policy.matching or {})
        raw["standing_consent"] = tuple((a, b, tuple(t)) for a, b, t in raw.get("standing_consent", ()))
        return cls(**raw)

    def standing(self, answerer: str, asker: str, kind: str) -> bool:
        return any(a == answerer and b == asker and kind in types for a, b, types in self.standing_consent)


def _log(conn: Any, member: Member, action: str, request_id: str | None, **detail: Any) -> None:
    conn.execute(insert(match_log).values(at_us=now_us(), api_root=member.api_root, member=member.name, action=action,
                                          request_id=request_id, detail=orjson.dumps(detail).decode()))


# Called inside a mailbox write's transaction with the request's id, before it commits: the audit entry of
# the HTTP request that made it (tearline.web.trail.within), so the two commit together.
Record = Callable[[Any, str], None]


def rules_for(store: Store, member: Member) -> Rules:
    """The member's compact's matching rules; refused once the compact is no longer open."""
    root = store.api_root(member.api_root)
    policy = Policy.loads(root.policy if root is not None else "{}")
    state = policy.state(dt.date.today())
    if state != "open":
        raise Forbidden(f"this compact is {state} (it expired on {policy.expires}); no new matching")
    return Rules.of(policy)


def max_body(rules: Rules) -> int:
    """A request or reply for max_items values, with room for the compressed set."""
    return 48 * rules.max_items + 1_000_000


def waiting(conn: Any, member: Member) -> int:
    """Bytes of this member's messages the mailbox holds for others: its pending requests, and its replies
    until their requests expire (what counts against its mailbox quota, tearline.limits)."""
    now = now_us()
    mine = and_(match_requests.c.api_root == member.api_root, match_requests.c.expires_us > now)
    asked = conn.execute(select(func.sum(func.length(match_requests.c.request))).where(
        mine, match_requests.c.asker == member.name, match_requests.c.status == "pending")).scalar()
    replied = conn.execute(select(func.sum(func.length(match_requests.c.reply))).where(
        mine, match_requests.c.answerer == member.name, match_requests.c.status == "answered")).scalar()
    return int(asked or 0) + int(replied or 0)


def _within_quota(conn: Any, member: Member, size: int, quota: int | None) -> None:
    if quota is None:
        return
    # take the member's row first: two of its requests at once then count one after the other (on SQLite
    # this takes the write lock; on PostgreSQL the row's), so neither can slip past the quota
    conn.execute(update(members).where(members.c.id == member.id).values(profile=members.c.profile))
    have = waiting(conn, member)
    if have + size > quota:
        raise PayloadTooLarge(f"this member has {have:,} bytes waiting in the mailbox and this message would add "
                              f"{size:,}; its quota is {quota:,} bytes (member_mailbox_mb): wait for answers to be "
                              "collected or requests to expire", details={"waiting_bytes": have, "quota_bytes": quota})


def open_request(store: Store, member: Member, to: str, kind: str, results: str, body: bytes,
                 rules: Rules | None = None, quota: int | None = None, record: Record | None = None) -> dict[str, Any]:
    if not member.can_read:
        raise Forbidden("this member may not read the compact, so it may not match against it either")
    rules = rules or rules_for(store, member)
    if kind not in TYPES:
        raise BadRequest(f"type {kind!r}: choose one of {', '.join(TYPES)}")
    if results not in ("asker", "both"):
        raise BadRequest(f"results {results!r}: 'asker' or 'both'")
    if results == "both" and rules.results != "both":
        raise Forbidden("this compact's matching rules give results to the asker only (matching.results: asker)")
    if not NAME.match(to):
        raise BadRequest(f"to {to[:70]!r}: not a member name (lower-case letters, digits, '-' and '_', at most 63)")
    if to == member.name:
        raise BadRequest("a member cannot match against itself")
    if len(body) > max_body(rules):
        raise PayloadTooLarge(f"a request may carry at most {rules.max_items:,} values")
    asked = protocol.request_size(body)
    if asked < rules.min_items:
        raise BadRequest(f"the request carries {asked} values; this compact requires at least {rules.min_items} "
                         "(smaller requests could test a partner's list one value at a time)")
    if asked > rules.max_items:
        raise PayloadTooLarge(f"the request carries {asked:,} values; this compact allows at most {rules.max_items:,}")
    now = now_us()
    with store.engine.begin() as conn:
        recent = conn.execute(select(func.count(), func.min(match_requests.c.created_us)).where(and_(
            match_requests.c.api_root == member.api_root, match_requests.c.asker == member.name,
            match_requests.c.answerer == to, match_requests.c.kind == kind,
            match_requests.c.reverse_of.is_(None), match_requests.c.created_us > now - DAY_US))).one()
        _within_quota(conn, member, len(body), quota)
        if recent[0] >= rules.requests_per_day:
            wait = max(1, (recent[1] + DAY_US - now) // 1_000_000)
            _log(conn, member, "refused", None, to=to, kind=kind, asked=asked, reason="requests_per_day")
            raise TooManyRequests(
                f"at most {rules.requests_per_day} {kind} requests a day to the same member; try again in {wait} s",
                details={"retry_after": int(wait)})
        rid = str(uuid.uuid4())
        consent = "standing" if rules.standing(to, member.name, kind) else "ask"
        conn.execute(insert(match_requests).values(
            id=rid, api_root=member.api_root, asker=member.name, answerer=to, kind=kind, results=results,
            status="pending", consent=consent, created_us=now, expires_us=now + rules.expire_days * DAY_US,
            asked=asked, fpr=rules.fpr, request=body))
        _log(conn, member, "request", rid, to=to, kind=kind, asked=asked, results=results)
        if record is not None:
            record(conn, rid)
    # the asker is not told whether consent is standing: that would say `to` is a member
    return {"id": rid, "status": "pending", "kind": kind, "asked": asked, "results": results,
            "expires": (now + rules.expire_days * DAY_US) // 1_000_000}


def ask_back(store: Store, member: Member, original_id: str, body: bytes, quota: int | None = None,
             record: Record | None = None) -> dict[str, Any]:
    """The answerer of a results: both request asks the same question in reverse; the original
    asker's consent is the request itself."""
    row = _mine(store, member, original_id, as_="answerer")
    if row.results != "both":
        raise Forbidden("the asker did not ask for results to go to both")
    asked = protocol.request_size(body)
    now = now_us()
    with store.engine.begin() as conn:
        existing = conn.execute(select(match_requests.c.id).where(match_requests.c.reverse_of == original_id)).first()
        if existing:
            raise BadRequest(f"request {original_id} has already been asked back ({existing[0]})")
        _within_quota(conn, member, len(body), quota)
        rid = str(uuid.uuid4())
        conn.execute(insert(match_requests).values(
            id=rid, api_root=member.api_root, asker=member.name, answerer=row.asker, kind=row.kind, results="asker",
            status="pending", consent="standing", created_us=now, expires_us=row.expires_us, asked=asked, fpr=row.fpr,
            reverse_of=original_id, request=body))
        _log(conn, member, "ask-back", rid, of=original_id, asked=asked)
        if record is not None:
            record(conn, rid)
    return {"id": rid, "status": "pending", "reverse_of": original_id, "asked": asked}


_PUBLIC = ("id", "asker", "answerer", "kind", "results", "status", "consent", "created_us", "expires_us", "asked",
           "fpr", "reverse_of")


def _expire(conn: Any) -> None:
    conn.execute(update(match_requests).where(and_(match_requests.c.status == "pending",
                                                   match_requests.c.expires_us < now_us()))
                 .values(status="expired", request=None))


def _mine(store: Store, member: Member, request_id: str, as_: str | None = None) -> Any:
    """The request, if this member is a party to it (as the given role); otherwise the same 404 as
    for an id that does not exist."""
    with store.engine.begin() as conn:
        _expire(conn)
        row = conn.execute(select(*(match_requests.c[c] for c in _PUBLIC)).where(and_(
            match_requests.c.id == request_id, match_requests.c.api_root == member.api_root))).first()
    if row is None or member.name not in (row.asker, row.answerer) or (as_ and getattr(row, as_) != member.name):
        raise NotFound(f"no match request {request_id!r} for this member")
    return row


def describe(row: Any, member: Member) -> dict[str, Any]:
    out = {c: getattr(row, c) for c in _PUBLIC}
    if member.name != row.answerer:
        out.pop("consent")
    out["created"] = out.pop("created_us") // 1_000_000
    out["expires"] = out.pop("expires_us") // 1_000_000
    return out


def show(store: Store, member: Member, request_id: str) -> dict[str, Any]:
    return describe(_mine(store, member, request_id), member)


def inbox(store: Store, member: Member) -> list[dict[str, Any]]:
    with store.engine.begin() as conn:
        _expire(conn)
        rows = conn.execute(select(*(match_requests.c[c] for c in _PUBLIC)).where(and_(
            match_requests.c.api_root == member.api_root, match_requests.c.answerer == member.name,
            match_requests.c.status == "pending")).order_by(match_requests.c.created_us)).all()
    return [describe(r, member) for r in rows]


def request_body(store: Store, member: Member, request_id: str) -> bytes:
    row = _mine(store, member, request_id, as_="answerer")
    if row.status != "pending":
        raise BadRequest(f"request {request_id} is {row.status}; only a pending request can be answered")
    with store.engine.begin() as conn:
        body = conn.execute(select(match_requests.c.request).where(match_requests.c.id == request_id)).scalar_one()
        _log(conn, member, "fetch-request", request_id)
    return body


def answer(store: Store, member: Member, request_id: str, reply: bytes, rules: Rules | None = None,
           quota: int | None = None, record: Record | None = None) -> dict[str, Any]:
    row = _mine(store, member, request_id, as_="answerer")
    if row.status != "pending":
        raise BadRequest(f"request {request_id} is {row.status}; only a pending request can be answered")
    rules = rules or rules_for(store, member)
    if len(reply) > max_body(rules):
        raise PayloadTooLarge("the reply is larger than a reply to this request can be")
    protocol.check_reply(reply, row.asked)
    with store.engine.begin() as conn:
        _within_quota(conn, member, len(reply), quota)
        done = conn.execute(update(match_requests).where(and_(match_requests.c.id == request_id,
                                                              match_requests.c.status == "pending"))
                            .values(status="answered", reply=reply, request=None)).rowcount
        if not done:
            raise BadRequest(f"request {request_id} was answered or withdrawn meanwhile")
        _log(conn, member, "answer", request_id, bytes=len(reply))
        if record is not None:
            record(conn, request_id)
    return {"id": request_id, "status": "answered"}


def decline(store: Store, member: Member, request_id: str, record: Record | None = None) -> dict[str, Any]:
    row = _mine(store, member, request_id, as_="answerer")
    if row.status != "pending":
        raise BadRequest(f"request {request_id} is {row.status}; only a pending request can be declined")
    with store.engine.begin() as conn:
        conn.execute(update(match_requests).where(match_requests.c.id == request_id)
                     .values(status="declined", request=None))
        _log(conn, member, "decline", request_id)
        if record is not None:
            record(conn, request_id)
    return {"id": request_id, "status": "declined"}


def reply_body(store: Store, member: Member, request_id: str) -> bytes:
    row = _mine(store, member, request_id, as_="asker")
    if row.status != "answered":
        raise BadRequest(f"request {request_id} is {row.status}; there is no answer to collect yet")
    with store.engine.begin() as conn:
        body = conn.execute(select(match_requests.c.reply).where(match_requests.c.id == request_id)).scalar_one()
        _log(conn, member, "collect", request_id)
    return body


def reverse_of(store: Store, member: Member, request_id: str) -> str | None:
    """The id of the answerer's ask-back for a results: both request, once it exists."""
    row = _mine(store, member, request_id)
    with store.engine.begin() as conn:
        found = conn.execute(select(match_requests.c.id).where(match_requests.c.reverse_of == row.id)).first()
    return found[0] if found else None
