"""Duty to warn: a warning's life from draft to acknowledgement, or its waiver, every step recorded.

The model follows US ICD 191 (see ../shared/reference/sharing-anchors.md §5.2): credible and specific
information of an impending threat to people — a member of the compact or an outside party — obliges
its holder to warn them, unless a documented waiver applies. A warning is a STIX 2.1 report carrying
the Tearline warning extension (the threatened party, target, threat window, confidence, what is asked
of the recipient, and the text releasable at tear-line level); what is not releasable never enters it.

    draft ──approve──▶ approved ──deliver──▶ delivered ──acknowledge──▶ acknowledged
      └──waive──▶ waived            (any state before acknowledged ──▶ expired, once the window ends)

Approval and waiver need a second person, never the author (two-person rule). Every transition is a
row in ``warning_events`` and an entry in the audit trail; an illegal one is refused with the reason.
A warning to a member is delivered into the compact's ``warnings`` collection as TLP:RED for that
member alone, so the outbound gate shows it to nobody else on any endpoint.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import orjson
from sqlalchemy import insert, select, update

from . import markings
from .errors import BadRequest, Conflict, NotFound
from .store import Store, now_us
from .store.schema import warning_events, warnings

EXTENSION_ID = "extension-definition--3f6c2b1e-7a4d-5e8f-9b0c-1d2e3f4a5b6c"
_NS = uuid.UUID("2c7e5d1a-8b3f-4e6d-9a1c-5f0e7d3b2a19")

# ICD 191's waiver grounds, as codes
WAIVERS = {
    "sources-and-methods": "warning would unduly endanger personnel, sources, methods or operations",
    "violent-actor": "the intended victim is a terrorist, a direct supporter of terrorists, an assassin, a drug "
                     "trafficker or involved in violent crime",
    "armed-conflict": "the intended victim is at risk only through its part in an insurgency or armed conflict",
    "already-knows": "the intended victim already knows of the threat",
    "no-way-to-warn": "there is no reasonable way to warn the intended victim",
}
FINAL = ("acknowledged", "waived", "expired")
MOVES = {"approve": ("draft", "approved"), "waive": ("draft", "waived"), "deliver": ("approved", "delivered"),
         "acknowledge": ("delivered", "acknowledged")}


def _date(value: str, field: str) -> dt.date:
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError:
        raise BadRequest(f"{field}: expected a date YYYY-MM-DD, got {value!r}") from None


def draft(store: Store, compact: str, author: str, addressee: str, outside: bool, target: dict[str, Any],
          window: tuple[str, str], confidence: int, ask: str, text: str) -> dict[str, Any]:
    """Check every field, report every problem at once, then write the draft."""
    import pycountry

    problems = []
    root = store.api_root(compact)
    if root is None:
        raise NotFound(f"no compact named {compact!r}")
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
    if not isinstance(confidence, int) or not 0 <= confidence <= 100:
        problems.append(f"confidence must be a whole number from 0 to 100, got {confidence!r}")
    if not text.strip():
        problems.append("the releasable text is empty: a warning must say what the threat is")
    if not ask.strip():
        problems.append("say what is asked of the recipient (e.g. raise security at the venue)")
    if not outside:
        with store.engine.connect() as conn:
            if addressee not in store.member_names(conn, compact):
                problems.append(f"{addressee!r} is not a member of {compact}; warn an outside party with --outside")
    if problems:
        raise BadRequest("; ".join(problems), details={"problems": problems})
    wid = str(uuid.uuid4())
    now = now_us()
    created = dt.datetime.fromtimestamp(now / 1e6, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    report = {
        "type": "report", "spec_version": "2.1", "id": f"report--{uuid.uuid5(_NS, wid)}",
        "created": created, "modified": created, "published": created,
        "name": f"Warning: threat to {target.get('place') or target.get('city') or country.name}",
        "report_types": ["threat-report"], "description": text.strip(),
        "object_refs": [f"location--{uuid.uuid5(_NS, wid + '/location')}"],
        "confidence": confidence,
        "object_marking_refs": [markings.TLP2["red"][0]],
        "extensions": {EXTENSION_ID: {
            "extension_type": "property-extension",
            "threatened_party": addressee, "threatened_party_kind": "outside" if outside else "member",
            "target": {k: v for k, v in {"country": country.alpha_3, "province": target.get("province"),
                                         "city": target.get("city"), "place_type": target.get("place_type")}.items() if v},
            "window_start": start.isoformat(), "window_end": end.isoformat(), "requested_action": ask.strip(),
        }},
    }
    with store.engine.begin() as conn:
        conn.execute(insert(warnings).values(
            id=wid, api_root=compact, author=author, addressee=addressee, outside=outside, state="draft",
            created_us=now, window_end=end.isoformat(), report=orjson.dumps(report).decode()))
        _event(conn, wid, author, "draft", None, "draft", "")
    return show(store, wid)


def _event(conn: Any, wid: str, by: str, action: str, before: str | None, after: str, note: str) -> None:
    conn.execute(insert(warning_events).values(warning_id=wid, at_us=now_us(), by=by, action=action,
                                               from_state=before, to_state=after, note=note))


def _expire(store: Store, today: dt.date | None = None) -> None:
    today = today or dt.date.today()
    with store.engine.begin() as conn:
        for wid, state in conn.execute(select(warnings.c.id, warnings.c.state).where(
                warnings.c.state.notin_(FINAL), warnings.c.window_end < today.isoformat())).all():
            conn.execute(update(warnings).where(warnings.c.id == wid).values(state="expired"))
            _event(conn, wid, "hub", "expire", state, "expired", "the threat window ended")


def show(store: Store, wid: str, today: dt.date | None = None) -> dict[str, Any]:
    _expire(store, today)
    with store.engine.connect() as conn:
        return _load(conn, wid)


def _load(conn: Any, wid: str) -> dict[str, Any]:
    row = conn.execute(select(warnings).where(warnings.c.id == wid)).first()
    if row is None:
        raise NotFound(f"no warning {wid!r}; `tearline warn list` shows them")
    events = [{"at": dt.datetime.fromtimestamp(e.at_us / 1e6, dt.timezone.utc).isoformat(), "by": e.by,
               "action": e.action, "from": e.from_state, "to": e.to_state, "note": e.note}
              for e in conn.execute(select(warning_events).where(warning_events.c.warning_id == wid)
                                    .order_by(warning_events.c.id))]
    return {"id": row.id, "compact": row.api_root, "author": row.author, "addressee": row.addressee,
            "outside": row.outside, "state": row.state, "window_end": row.window_end,
            "report": orjson.loads(row.report), "history": events}


def list_(store: Store, compact: str | None = None) -> list[dict[str, Any]]:
    _expire(store)
    with store.engine.connect() as conn:
        q = select(warnings.c.id).order_by(warnings.c.created_us)
        if compact:
            q = q.where(warnings.c.api_root == compact)
        return [_load(conn, wid) for (wid,) in conn.execute(q).all()]


def move(store: Store, wid: str, action: str, by: str, note: str = "", today: dt.date | None = None) -> dict[str, Any]:
    """One transition, checked: the state it starts from, and who may take it."""
    current = show(store, wid, today)
    if action not in MOVES:
        raise BadRequest(f"unknown action {action!r}; one of {', '.join(MOVES)}")
    before, after = MOVES[action]
    if current["state"] != before:
        why = {"expired": "its threat window has ended", "waived": "it was waived",
               "acknowledged": "it was already acknowledged"}.get(current["state"], f"it is {current['state']}")
        raise Conflict(f"cannot {action} warning {wid}: {why} (only a {before} warning can be {after})")
    if action in ("approve", "waive") and by == current["author"]:
        raise Conflict(f"cannot {action} warning {wid}: {by} wrote it, and a second person must decide (two-person rule)")
    if action == "waive":
        code = note.split(":", 1)[0].strip()
        if code not in WAIVERS or not note.split(":", 1)[-1].strip() or ":" not in note:
            raise BadRequest(f"a waiver needs a reason code ({', '.join(WAIVERS)}) and a justification, as 'code: why'")
    if action == "acknowledge" and not current["outside"] and by != current["addressee"]:
        raise Conflict(f"only {current['addressee']}, to whom it was delivered, can acknowledge warning {wid}")
    with store.engine.begin() as conn:
        done = conn.execute(update(warnings).where(warnings.c.id == wid, warnings.c.state == before)
                            .values(state=after)).rowcount
        if not done:
            raise Conflict(f"warning {wid} changed meanwhile; look again with `tearline warn status {wid}`")
        if action == "deliver" and not current["outside"]:
            _deliver_to_member(store, conn, current)
        _event(conn, wid, by, action, before, after, note)
    return show(store, wid, today)


def _deliver_to_member(store: Store, conn: Any, current: dict[str, Any]) -> None:
    """Into the compact's warnings collection, TLP:RED for the addressee alone."""
    coll = store.collection(current["compact"], "warnings")
    if coll is None:
        raise NotFound(f"compact {current['compact']} has no warnings collection; apply its compact file again")
    report = dict(current["report"], x_tearline_recipients=[current["addressee"]])
    location = {"type": "location", "spec_version": "2.1", "id": report["object_refs"][0],
                "created": report["created"], "modified": report["modified"],
                "country": _alpha2(report["extensions"][EXTENSION_ID]["target"]["country"]),
                "object_marking_refs": report["object_marking_refs"],
                "x_tearline_recipients": [current["addressee"]]}
    store.write_objects(conn, coll.num, [location, report], coll.rules)


def _alpha2(alpha3: str) -> str:
    import pycountry

    return pycountry.countries.get(alpha_3=alpha3).alpha_2
