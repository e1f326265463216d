"""Escalation: a delivered warning not acknowledged within the compact's ``escalate_after_hours`` goes to the
addressee's contacts, one more each period, in the order listed: each an ``escalate`` step and an RFC 5322
message in the hub's outbox for the operator's mail relay (the hub has no mail client of its own)."""

from __future__ import annotations

import datetime as dt
import uuid
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path
from typing import Any

import orjson

from ..model import Policy
from ..store import Store, now_us
from ..store import warnings as rows
from .lifecycle import expire
from .report import EXTENSION_ID


def escalate(store: Store, outbox: Path, now: int | None = None) -> list[dict[str, Any]]:
    """Send each delivered, unacknowledged warning to the addressee's next contact once it has waited
    ``escalate_after_hours`` more. Returns what was sent; each is an ``escalate`` event and a message
    file in ``outbox``."""
    now = now or now_us()
    sent = []
    expire(store)
    with store.engine.connect() as conn:
        waiting = [r for wid in rows.ids_by(conn, state="delivered") if (r := rows.load(conn, wid))]
    for current in waiting:
        delivered = next(e for e in current["history"] if e["action"] == "deliver")
        done = sum(1 for e in current["history"] if e["action"] == "escalate")
        contacts = _contacts(store, current)
        hours = Policy.loads(store.api_root(current["compact"]).policy).escalate_after_hours
        due = dt.datetime.fromisoformat(delivered["at"]).timestamp() * 1e6 + (done + 1) * hours * 3600e6
        if done >= len(contacts) or now < due:
            continue
        contact = contacts[done]
        path = _write_notice(outbox, current, contact, hours * (done + 1))
        with store.engine.begin() as conn:
            rows.add_event(conn, current["id"], "hub", "escalate", "delivered", "delivered",
                   f"not acknowledged after {hours * (done + 1)} h: sent to {contact} ({path.name})")
        sent.append({"warning": current["id"], "contact": contact, "file": str(path)})
    return sent


def _contacts(store: Store, current: dict[str, Any]) -> list[str]:
    with store.engine.connect() as conn:
        if current["outside"]:
            party = rows.party(conn, current["addressee"])
            return orjson.loads(party.contacts) if party else []
        member = next((m for m in store.members_of(conn, current["compact"]) if m.name == current["addressee"]), None)
    return list(member.profile.get("contacts") or ()) if member else []


def _write_notice(outbox: Path, current: dict[str, Any], contact: str, hours: int) -> Path:
    """An RFC 5322 message for the operator's mail relay: the escalation and the releasable text (the
    contact belongs to the addressee, who may read it)."""
    ext = current["report"]["extensions"][EXTENSION_ID]
    msg = EmailMessage()
    msg["To"] = contact
    msg["From"] = "Tearline hub <tearline@localhost>"
    msg["Date"] = format_datetime(dt.datetime.now(dt.UTC))
    msg["Message-ID"] = make_msgid(domain="tearline.local")
    msg["Subject"] = f"[TLP:RED] Unacknowledged warning {current['id']} to {current['addressee']}"
    msg.set_content(
        f"A duty-to-warn warning delivered to {current['addressee']} has not been acknowledged after {hours} hours.\n\n"
        f"Threat: {current['report']['name']}\nWindow: {ext['window_start']} to {ext['window_end']}\n"
        f"Asked of you: {ext['requested_action']}\n\n{current['report']['description']}\n\n"
        f"Acknowledge it in the hub (warning {current['id']}) or with the signed reply file.\n")
    outbox.mkdir(parents=True, exist_ok=True)
    path = outbox / f"{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%S}-{current['id']}-{uuid.uuid4().hex[:6]}.eml"
    path.write_bytes(bytes(msg))
    return path


