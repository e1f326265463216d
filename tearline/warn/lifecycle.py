"""A warning's life: drafted, approved or waived by a second person, delivered, acknowledged or expired;
every step a row of its history. What a member is shown of a warning is tearline.release's."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable
from typing import Any

import orjson
import pycountry

from .. import granular, markings, release, stix, write
from ..errors import BadRequest, Conflict, NotFound
from ..keys import HubKeys
from ..model import NAME, Member
from ..store import Store, now_us
from ..store import warnings as rows
from .document import REPLY_FORMAT, check_reply, sign_document
from .report import EXTENSION_ID, NS, Signer, location

# ICD 191's waiver grounds, as codes
WAIVERS = {
    "sources-and-methods": "warning would unduly endanger personnel, sources, methods or operations",
    "violent-actor": "the intended victim is a terrorist, a direct supporter of terrorists, an assassin, a drug "
                     "trafficker or involved in violent crime",
    "armed-conflict": "the intended victim is at risk only through its part in an insurgency or armed conflict",
    "already-knows": "the intended victim already knows of the threat",
    "no-way-to-warn": "there is no reasonable way to warn the intended victim",
}
FINAL = rows.FINAL
REVIEWS = ("uphold", "overturn")
MOVES = {"approve": ("draft", "approved"), "waive": ("draft", "waived"), "deliver": ("approved", "delivered"),
         # review of a waiver: upheld, it stays waived; overturned, the warning is a draft again
         "uphold": ("waived", "waived"), "overturn": ("waived", "draft"),
         "acknowledge": ("delivered", "acknowledged")}


# Called inside a step's transaction with the warning report's id, before it commits: the audit entry of
# the request that took the step (tearline.web.trail.within), so the step and its record commit together.
Record = Callable[[Any, str], None]


def _date(value: str, field: str) -> dt.date:
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError:
        raise BadRequest(f"{field}: expected a date YYYY-MM-DD, got {value!r}") from None


def draft(store: Store, compact: str, author: str, addressee: str, outside: bool, target: dict[str, Any],
          window: tuple[str, str], confidence: int, ask: str, text: str, source: str | None = None,
          author_member: Member | None = None, keys: HubKeys | None = None,
          record: Record | None = None) -> dict[str, Any]:
    """Check every field, report every problem at once, then write the draft; return its whole record (for
    the operator: a member is shown its draft through tearline.release). ``record`` is called in the
    write's transaction, with the report's id, before it commits (the audit entry commits with it).

    With ``source`` (a report in the compact's intel collection) and no ``text``, the text is the source's
    description as its drafter receives it — the member drafting through the API, ``author_member``, reads it
    through its own release (``keys``) — and carries that part's TLP level as a granular marking, so the
    addressee's copy holds it only if the addressee may read it (the warning's own tear line). Where the
    operator drafts, or members may know each other, an addressee that may not read it is refused by name;
    where they may not, the draft is answered alike for every addressee (member or not, whatever its
    ceiling), so drafting tells a member nothing of the others."""
    if store.api_root(compact) is None:
        raise NotFound(f"no compact named {compact!r}")
    _check_text(author, addressee, ask, text, source)
    target = {k: v for k, v in target.items() if v is not None}
    problems = [f"target.{field}: must be text of at most 200 characters, got {str(value)[:40]!r}"
                for field, value in target.items() if not isinstance(value, str) or len(value) > 200 or "\x00" in value]
    guarded = author_member is not None and not _members_visible(store, compact)
    with store.engine.connect() as conn:
        members = {m.name: m for m in store.members_of(conn, compact)}
        party = rows.party(conn, addressee) if outside else None
    if not outside and not NAME.match(addressee):
        problems.append(f"to: {addressee[:70]!r} is not a member name (lower-case letters, digits, '-' and '_')")
    elif not guarded and not (party is not None if outside else addressee in members):
        problems.append(f"{addressee!r} is not a registered outside party; register it and its key with "
                        "`tearline warn party add`" if outside else
                        f"{addressee!r} is not a member of {compact}; warn an outside party with --outside")
    level = None
    if source and not text.strip():
        ceiling = party.tlp_max if party is not None else members[addressee].tlp_max if addressee in members else None
        text, level = _tear_line(store, compact, source, author_member, keys, addressee, outside, ceiling, guarded,
                                 problems)
    country, start, end = _facts(target, window, confidence, text, ask, problems)
    if problems:
        raise BadRequest("; ".join(problems), details={"problems": problems})
    wid = str(uuid.uuid4())
    now = now_us()
    report = _report(wid, stix.format_us(now), addressee, outside, target, country, (start, end), confidence, ask,
                     text, level)
    with store.engine.begin() as conn:
        rows.add(conn, id=wid, api_root=compact, author=author, addressee=addressee, outside=outside, state="draft",
                 created_us=now, window_end=end.isoformat(), report=orjson.dumps(report).decode(),
                 author_member=author_member.name if author_member else None, source=source if level else None)
        rows.add_event(conn, wid, author, "draft", None, "draft",
                       f"text from the tear line of {source}" if level else "")
        if record is not None:
            record(conn, report["id"])
    return show(store, wid)


def _check_text(author: str, addressee: str, ask: str, text: str, source: str | None) -> None:
    for field, value in (("by", author), ("to", addressee), ("ask", ask), ("text", text), ("source", source or "")):
        if not isinstance(value, str) or "\x00" in value or (
                field in ("by", "to", "source") and (len(value) > 160 or not value.isprintable())):
            raise BadRequest(f"{field}: {str(value)[:70]!r} is not a name or text the hub keeps (printable, at most "
                             "160 characters for a name)", details={"field": field})


def _tear_line(store: Store, compact: str, source: str, author_member: Member | None, keys: HubKeys | None,
               addressee: str, outside: bool, ceiling: str | None, guarded: bool,
               problems: list[str]) -> tuple[str, str | None]:
    """The text of ``source`` as the drafter receives it, and its level; a problem when the addressee may not
    read that part (or, for a member drafting where members may not know each other, when it is RED)."""
    try:
        text, level, recipients = release.draft_text(store, compact, source, author_member, keys, dt.date.today())
    except (BadRequest, NotFound) as exc:
        problems.append(exc.description)
        return "-", None
    if level == "red" and guarded:
        # who else may read a RED part is its author's to say: a member cannot pass it on, to anyone
        problems.append(f"source {source}: its description is TLP:RED, which a warning drafted by a member "
                        "cannot pass on; write the text with --text")
    elif level is not None and not guarded:
        recipient = not outside and addressee in recipients
        if ceiling is not None and not granular.reader(ceiling, recipient)(level):
            problems.append(f"source {source}: its description is TLP:{level.upper()}, above the tear line for "
                            f"{addressee}; mark a releasable part or write the text with --text")
    return text, level


def _facts(target: dict[str, Any], window: tuple[str, str], confidence: int, text: str, ask: str,
           problems: list[str]) -> tuple[Any, dt.date, dt.date]:
    """The target's country and the threat window, checked with the rest of a warning's facts."""
    country = pycountry.countries.get(alpha_3=str(target.get("country", "")).upper())
    if country is None:
        problems.append(f"target country {target.get('country')!r} is not an ISO 3166 alpha-3 code")
    try:
        start, end = _date(window[0], "window start"), _date(window[1], "window end")
        if end < start:
            problems.append("the threat window ends before it starts")
    except BadRequest as exc:
        problems.append(exc.description)
        start = end = dt.date.today()
    if not isinstance(confidence, int) or isinstance(confidence, bool) or not 0 <= confidence <= 100:
        problems.append(f"confidence must be a whole number from 0 to 100, got {confidence!r}")
    if not text.strip():
        problems.append("the releasable text is empty: a warning must say what the threat is")
    if not ask.strip():
        problems.append("say what is asked of the recipient (e.g. raise security at the venue)")
    return country, start, end


def _report(wid: str, created: str, addressee: str, outside: bool, target: dict[str, Any], country: Any,
            window: tuple[dt.date, dt.date], confidence: int, ask: str, text: str, level: str | None) -> dict[str, Any]:
    """The warning as a STIX report with the Tearline warning extension, TLP:RED."""
    report = {
        "type": "report", "spec_version": "2.1", "id": f"report--{uuid.uuid5(NS, wid)}",
        "created": created, "modified": created, "published": created,
        "name": f"Warning: threat to {target.get('place') or target.get('city') or country.name}",
        "report_types": ["threat-report"], "description": text.strip(),
        "object_refs": [f"location--{uuid.uuid5(NS, wid + '/location')}"],
        "confidence": confidence,
        "object_marking_refs": [markings.TLP2["red"][0]],
        "extensions": {EXTENSION_ID: {
            "extension_type": "property-extension",
            "threatened_party": addressee, "threatened_party_kind": "outside" if outside else "member",
            "target": {k: v for k, v in {"country": country.alpha_3, "province": target.get("province"),
                                         "city": target.get("city"), "place_type": target.get("place_type")}.items()
                       if v},
            "window_start": window[0].isoformat(), "window_end": window[1].isoformat(), "requested_action": ask.strip(),
        }},
    }
    if level is not None and level != "clear":
        # the part keeps the level it had in its source: the addressee's copy holds it only if it may read it
        report["granular_markings"] = [{"marking_ref": markings.TLP2[level][0], "selectors": ["description"]}]
    return report


def _members_visible(store: Store, compact: str) -> bool:
    root = store.api_root(compact)
    return bool(root is not None and orjson.loads(root.policy or "{}").get("members_visible"))


def expire(store: Store, today: dt.date | None = None) -> None:
    """Every warning whose threat window has ended, and that is not final, is expired."""
    today = today or dt.date.today()
    with store.engine.begin() as conn:
        for wid, state in rows.due_to_expire(conn, today):
            if rows.set_state(conn, wid, state, "expired"):
                rows.add_event(conn, wid, "hub", "expire", state, "expired", "the threat window ended")


def show(store: Store, wid: str, today: dt.date | None = None) -> dict[str, Any]:
    """A warning's whole record, for the hub's operator (members read theirs through tearline.release)."""
    expire(store, today)
    with store.engine.connect() as conn:
        found = rows.load(conn, wid)
    if found is None:
        raise NotFound(f"no warning {wid!r}; `tearline warn list` shows them")
    return found


def list_(store: Store, compact: str | None = None, state: str | None = None) -> list[dict[str, Any]]:
    expire(store)
    with store.engine.connect() as conn:
        return [r for wid in rows.ids_by(conn, compact, state) if (r := rows.load(conn, wid)) is not None]


def move(store: Store, wid: str, action: str, by: str, note: str = "", today: dt.date | None = None,
         signer: Signer | None = None, record: Record | None = None) -> dict[str, Any]:
    """One transition, checked: the state it starts from, and who may take it. Delivering to an outside
    party needs ``signer`` (the hub's key) to sign its document."""
    current = show(store, wid, today)
    if action not in MOVES:
        raise BadRequest(f"unknown action {action!r}; one of {', '.join(MOVES)}")
    return step(store, current, action, by, note, today, signer, record=record)


def step(store: Store, current: dict[str, Any], action: str, by: str, note: str, today: dt.date | None,
         signer: Signer | None = None, check_reply: Any = None, record: Record | None = None) -> dict[str, Any]:
    wid = current["id"]
    before, after = MOVES[action]
    _check_step(current, action, by, note, signer, check_reply)
    document = None
    with store.engine.begin() as conn:
        if check_reply is not None:
            check_reply(conn)
        if action == "deliver" and current["outside"]:
            party = rows.party(conn, current["addressee"])
            document = sign_document(current, signer, stix.format_us(now_us()),  # type: ignore[arg-type]
                                     party.tlp_max if party is not None else "clear")
        if not rows.set_state(conn, wid, before, after, document):
            raise Conflict(f"warning {wid} changed meanwhile; look again with `tearline warn status {wid}`")
        if action == "deliver" and not current["outside"]:
            _deliver_to_member(store, conn, current)
        rows.add_event(conn, wid, by, action, before, after, note)
        if record is not None:
            record(conn, current["report"]["id"])
    return show(store, wid, today)


def _check_step(current: dict[str, Any], action: str, by: str, note: str, signer: Signer | None,
                check_reply: Any) -> None:
    """Refuse a step the warning's state, the two-person rule or the step's own needs do not allow."""
    wid = current["id"]
    before, after = MOVES[action]
    if not by.strip() or len(by) > 160 or not by.isprintable() or len(note) > 4000 or "\x00" in note:
        raise BadRequest("by: a name of at most 160 printable characters; note: text of at most 4,000, without NUL")
    if current["state"] != before:
        why = {"expired": "its threat window has ended", "waived": "it was waived",
               "acknowledged": "it was already acknowledged"}.get(current["state"], f"it is {current['state']}")
        can = "reviewed" if action in REVIEWS else after
        raise Conflict(f"cannot {action} warning {wid}: {why} (only a {before} warning can be {can})")
    if action in REVIEWS:
        waived_by = next((e["by"] for e in reversed(current["history"]) if e["action"] == "waive"), None)
        if by in (current["author"], waived_by):
            raise Conflict(f"cannot {action} the waiver of warning {wid}: {by} took part in it, and a waiver is "
                           "reviewed by someone who did not")
        if not note.strip():
            raise BadRequest(f"a review says why the waiver is {'upheld' if action == 'uphold' else 'overturned'}")
    _check_who(current, action, by, note, signer, check_reply)


def _check_who(current: dict[str, Any], action: str, by: str, note: str, signer: Signer | None,
               check_reply: Any) -> None:
    wid = current["id"]
    if action in ("approve", "waive") and by == current["author"]:
        raise Conflict(f"cannot {action} warning {wid}: {by} wrote it, "
                       "and a second person must decide (two-person rule)")
    if action == "waive":
        code = note.split(":", 1)[0].strip()
        if code not in WAIVERS or not note.split(":", 1)[-1].strip() or ":" not in note:
            raise BadRequest(f"a waiver needs a reason code ({', '.join(WAIVERS)}) and a justification, as 'code: why'")
    if action == "acknowledge" and not current["outside"] and by != current["addressee"]:
        raise Conflict(f"only {current['addressee']}, to whom it was delivered, can acknowledge warning {wid}")
    if action == "acknowledge" and current["outside"] and check_reply is None:
        raise Conflict(f"an outside party acknowledges warning {wid} with the reply file it signs: "
                       "`tearline warn ack FILE` records it")
    if action == "deliver" and current["outside"] and signer is None:
        raise BadRequest("delivering to an outside party signs a document with the hub's key: no key was given")


def _deliver_to_member(store: Store, conn: Any, current: dict[str, Any]) -> None:
    """Into the compact's warnings collection, TLP:RED for the addressee alone."""
    coll = store.collection(current["compact"], "warnings", conn)
    if coll is None:
        raise NotFound(f"compact {current['compact']} has no warnings collection; apply its compact file again")
    only = {"x_tearline_recipients": [current["addressee"]]}
    write.hub_write(store, conn, coll, [location(current) | only, current["report"] | only], None)


def record_reply(store: Store, reply: dict[str, Any], today: dt.date | None = None) -> dict[str, Any]:
    """Record an outside party's signed acknowledgement, after checking that it is signed by the key
    registered for the party and names the very document the hub delivered."""
    if reply.get("format") != REPLY_FORMAT or not isinstance(reply.get("signature"), str):
        raise BadRequest(f"not a signed acknowledgement (format {REPLY_FORMAT!r})")
    current = show(store, str(reply.get("warning")), today)
    if not current["outside"]:
        raise Conflict(f"warning {current['id']} went to member {current['addressee']}, who acknowledges it in the hub")
    note = f"signed reply from {reply.get('acknowledged_by')} at {reply.get('at')}" + (
        f": {reply['note']}" if reply.get("note") else "")
    return step(store, current, "acknowledge", f"{current['addressee']}: {reply.get('acknowledged_by')}", note, today,
                check_reply=lambda conn: check_reply(reply, current, rows.party(conn, current["addressee"])))
