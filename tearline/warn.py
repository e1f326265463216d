"""Duty to warn: a warning's life from draft to acknowledgement, or its waiver, every step recorded.

The model follows US ICD 191 (see ../shared/reference/sharing-anchors.md §5.2): credible and specific
information of an impending threat to people — a member of the compact or an outside party — obliges
its holder to warn them, unless a documented waiver applies. A warning is a STIX 2.1 report carrying
the Tearline warning extension (the threatened party, target, threat window, confidence, what is asked
of the recipient, and the text releasable at tear-line level); what is not releasable never enters it.

    draft ──approve──▶ approved ──deliver──▶ delivered ──acknowledge──▶ acknowledged
      └──waive──▶ waived            (any state before acknowledged ──▶ expired, once the window ends)
      ◀──overturn──┘ └──uphold──▶ waived      (a waiver's review)

Approval and waiver need a second person, never the author (two-person rule); a waiver is reviewed
by a third, neither its author nor who waived it, who upholds or overturns it with a reason. Every transition is a
row in ``warning_events`` and an entry in the audit trail; an illegal one is refused with the reason.

Delivery. To a member: into the compact's ``warnings`` collection as TLP:RED for that member alone, so
the outbound gate shows it to nobody else on any endpoint. To an outside party (registered with its
Ed25519 public key and contacts): a self-contained document — the STIX bundle and the warning's facts,
signed with the hub's published key (the audit key, under its own signing context) — written as JSON
and as HTML that embeds the same signed JSON. ``verify_document`` checks either offline against the
keys the recipient trusts. The party acknowledges with a reply it signs with its own key, bound to the
digest of the document it received; ``record_reply`` checks both before the warning moves on.

Escalation. A delivered warning not acknowledged within the compact's ``escalate_after_hours`` goes to
the addressee's contacts, one more each period, in the order listed: each is an ``escalate`` event and
an RFC 5322 message in the hub's outbox for the operator's mail relay.

Tear line. A draft can take its text from a report the holder has: the releasable version of its
description for the addressee, by the compacts' granular markings (tearline.granular). A part's level
is its own granular TLP marking when it has one (the author marked that part on purpose), else the
report's.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import html
import re
import uuid
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path
from typing import Any, Protocol

import orjson
from sqlalchemy import insert, select, update

from . import granular, markings, stix
from .audit import verify_signature
from .errors import BadRequest, Conflict, NotFound
from .scope import Policy
from .store import Store, now_us
from .store.schema import members, objects, warn_parties, warning_events, warnings

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
REVIEWS = ("uphold", "overturn")
DOCUMENT_FORMAT = "tearline-warning/1"
REPLY_FORMAT = "tearline-warning-ack/1"
# What each signature is over starts with its kind, so a signature of one kind never passes for another.
_DOCUMENT_CONTEXT = b"tearline-warning-document/1\n"
_REPLY_CONTEXT = b"tearline-warning-ack/1\n"


class Signer(Protocol):
    """The hub's signing key (tearline.audit.AuditLog.sign)."""

    def sign(self, message: bytes) -> dict[str, str]: ...

MOVES = {"approve": ("draft", "approved"), "waive": ("draft", "waived"), "deliver": ("approved", "delivered"),
         # review of a waiver: upheld, it stays waived; overturned, the warning is a draft again
         "uphold": ("waived", "waived"), "overturn": ("waived", "draft"),
         "acknowledge": ("delivered", "acknowledged")}


def _date(value: str, field: str) -> dt.date:
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError:
        raise BadRequest(f"{field}: expected a date YYYY-MM-DD, got {value!r}") from None


def draft(store: Store, compact: str, author: str, addressee: str, outside: bool, target: dict[str, Any],
          window: tuple[str, str], confidence: int, ask: str, text: str, source: str | None = None,
          author_member: Any = None) -> dict[str, Any]:
    """Check every field, report every problem at once, then write the draft. With ``source`` (a
    report in the compact's intel collection) and no ``text``, the text is the source's description at
    the addressee's tear line. ``author_member``: the member drafting through the API (it may only
    draw on what it may read)."""
    import pycountry

    problems = []
    root = store.api_root(compact)
    if root is None:
        raise NotFound(f"no compact named {compact!r}")
    if source and not text.strip():
        try:
            text = releasable_text(store, compact, source, addressee, outside, author_member)
        except (BadRequest, NotFound) as exc:
            problems.append(exc.description)
            text = "-"
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
    with store.engine.connect() as conn:
        if not outside and addressee not in store.member_names(conn, compact):
            problems.append(f"{addressee!r} is not a member of {compact}; warn an outside party with --outside")
        if outside and _party(conn, addressee) is None:
            problems.append(f"{addressee!r} is not a registered outside party; register it and its key with "
                            "`tearline warn party add`")
    if problems:
        raise BadRequest("; ".join(problems), details={"problems": problems})
    wid = str(uuid.uuid4())
    now = now_us()
    created = stix.format_us(now)
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
            created_us=now, window_end=end.isoformat(), report=orjson.dumps(report).decode(),
            author_member=author_member.name if author_member else None))
        _event(conn, wid, author, "draft", None, "draft", f"text from the tear line of {source}" if source else "")
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
    return {"id": row.id, "compact": row.api_root, "author": row.author, "author_member": row.author_member,
            "addressee": row.addressee, "outside": row.outside, "state": row.state, "window_end": row.window_end,
            "report": orjson.loads(row.report), "history": events,
            "document": orjson.loads(row.document) if row.document else None}


def list_(store: Store, compact: str | None = None, state: str | None = None) -> list[dict[str, Any]]:
    _expire(store)
    with store.engine.connect() as conn:
        q = select(warnings.c.id).order_by(warnings.c.created_us)
        if compact:
            q = q.where(warnings.c.api_root == compact)
        if state:
            q = q.where(warnings.c.state == state)
        return [_load(conn, wid) for (wid,) in conn.execute(q).all()]


def move(store: Store, wid: str, action: str, by: str, note: str = "", today: dt.date | None = None,
         signer: Signer | None = None) -> dict[str, Any]:
    """One transition, checked: the state it starts from, and who may take it. Delivering to an outside
    party needs ``signer`` (the hub's key) to sign its document."""
    current = show(store, wid, today)
    if action not in MOVES:
        raise BadRequest(f"unknown action {action!r}; one of {', '.join(MOVES)}")
    return _move(store, current, action, by, note, today, signer)


def _move(store: Store, current: dict[str, Any], action: str, by: str, note: str, today: dt.date | None,
          signer: Signer | None = None, check_reply: Any = None) -> dict[str, Any]:
    wid = current["id"]
    before, after = MOVES[action]
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
    if action in ("approve", "waive") and by == current["author"]:
        raise Conflict(f"cannot {action} warning {wid}: {by} wrote it, and a second person must decide (two-person rule)")
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
    document = None
    with store.engine.begin() as conn:
        if check_reply is not None:
            check_reply(conn)
        if action == "deliver" and current["outside"]:
            document = _document(current, signer, stix.format_us(now_us()))  # type: ignore[arg-type]
        done = conn.execute(update(warnings).where(warnings.c.id == wid, warnings.c.state == before).values(
            state=after, **({"document": orjson.dumps(document).decode()} if document else {}))).rowcount
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
    only = {"x_tearline_recipients": [current["addressee"]]}
    store.write_objects(conn, coll.num, [_location(current) | only, current["report"] | only], coll.rules)


def _location(current: dict[str, Any]) -> dict[str, Any]:
    """The STIX location of a warning's target (its report's one reference)."""
    report = current["report"]
    target = report["extensions"][EXTENSION_ID]["target"]
    return {"type": "location", "spec_version": "2.1", "id": report["object_refs"][0],
            "created": report["created"], "modified": report["modified"], "country": _alpha2(target["country"]),
            **({"city": target["city"]} if target.get("city") else {}),
            **({"administrative_area": target["province"]} if target.get("province") else {}),
            "object_marking_refs": report["object_marking_refs"]}


def _alpha2(alpha3: str) -> str:
    import pycountry

    return pycountry.countries.get(alpha_3=alpha3).alpha_2


def _canonical(doc: dict[str, Any]) -> bytes:
    return orjson.dumps({k: v for k, v in doc.items() if k != "signature"}, option=orjson.OPT_SORT_KEYS)


def digest(doc: dict[str, Any]) -> str:
    """SHA-256 of a signed document as signed: what a reply binds itself to."""
    return hashlib.sha256(_canonical(doc) + bytes.fromhex(doc.get("signature", {}).get("value", ""))).hexdigest()


# --- outside parties ----------------------------------------------------------------------------------

def _party(conn: Any, name: str) -> Any:
    return conn.execute(select(warn_parties).where(warn_parties.c.name == name)).first()


def _public_key_problem(public_key: str) -> str | None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    try:
        Ed25519PublicKey.from_public_bytes(bytes.fromhex(public_key))
    except ValueError:
        return f"public key {public_key!r} is not an Ed25519 public key in hex (64 hex digits)"
    return None


def add_party(store: Store, name: str, public_key: str, tlp_max: str = "amber", contacts: tuple[str, ...] = ()) -> dict[str, Any]:
    """Register (or update) an outside party: the key its acknowledgements are signed with, the TLP
    level of the parts it may receive, and whom to tell, in order, when it does not acknowledge."""
    problems = []
    if not name.strip() or len(name) > 160:
        problems.append("the party needs a name of at most 160 characters")
    if (why := _public_key_problem(public_key.strip())) is not None:
        problems.append(why)
    if tlp_max not in ("clear", "green", "amber"):
        problems.append(f"tlp_max for an outside party is clear, green or amber (RED parts are for named members), "
                        f"got {tlp_max!r}")
    if any(not c.strip() for c in contacts):
        problems.append("a contact cannot be empty")
    if problems:
        raise BadRequest("; ".join(problems), details={"problems": problems})
    values = {"public_key": public_key.strip().lower(), "tlp_max": tlp_max,
              "contacts": orjson.dumps([c.strip() for c in contacts]).decode()}
    with store.engine.begin() as conn:
        if _party(conn, name) is None:
            conn.execute(insert(warn_parties).values(name=name, added_us=now_us(), **values))
        else:
            conn.execute(update(warn_parties).where(warn_parties.c.name == name).values(**values))
    return next(p for p in parties(store) if p["name"] == name)


def parties(store: Store) -> list[dict[str, Any]]:
    with store.engine.connect() as conn:
        return [{"name": r.name, "public_key": r.public_key, "tlp_max": r.tlp_max,
                 "contacts": orjson.loads(r.contacts)} for r in conn.execute(select(warn_parties).order_by(warn_parties.c.name))]


# --- the tear line of a source report -------------------------------------------------------------------

def releasable_text(store: Store, compact: str, source: str, addressee: str, outside: bool, reader: Any = None) -> str:
    """The description of report ``source`` if the addressee may read it, by the tear line."""
    from .release import visible

    coll = store.collection(compact, "intel")
    if coll is None:
        raise NotFound(f"no compact named {compact!r}")
    q = select(objects.c.body).where(objects.c.coll == coll.num, objects.c.stix_id == source,
                                     objects.c.is_latest.is_(True))
    if reader is not None:  # a member draws only on what it may read itself
        q = select(objects.c.body).where(*visible(reader, coll), objects.c.stix_id == source).order_by(
            objects.c.version_us.desc()).limit(1)
    with store.engine.connect() as conn:
        body = conn.execute(q).scalar()
        if outside:
            row = _party(conn, addressee)
            ceiling, recipient = (row.tlp_max if row else "clear"), False
        else:
            row = conn.execute(select(members.c.tlp_max).where(members.c.api_root == compact,
                                                               members.c.name == addressee)).first()
            ceiling = row.tlp_max if row else "clear"
            recipient = True
    if body is None:
        raise NotFound(f"source {source!r}: no such report in {compact}'s intel collection")
    obj = orjson.loads(body)
    if not obj.get("description"):
        raise BadRequest(f"source {source}: it has no description to release; write the text with --text")
    level = granular.part_level(obj, "description", coll.rules.default_tlp)
    recipient = recipient and addressee in (obj.get("x_tearline_recipients") or ())
    if not granular.reader(ceiling, recipient)(level):
        raise BadRequest(f"source {source}: its description is TLP:{level.upper()}, above the tear line for "
                         f"{addressee}; mark a releasable part or write the text with --text")
    return str(obj["description"])


# --- the signed document for an outside party -------------------------------------------------------------

def _bundle(current: dict[str, Any]) -> dict[str, Any]:
    return {"type": "bundle", "id": f"bundle--{uuid.uuid5(_NS, current['id'] + '/bundle')}",
            "objects": [markings.definition("red"), _location(current), current["report"]]}


def _document(current: dict[str, Any], signer: Signer, issued: str) -> dict[str, Any]:
    ext = current["report"]["extensions"][EXTENSION_ID]
    doc: dict[str, Any] = {
        "format": DOCUMENT_FORMAT,
        "warning": {"id": current["id"], "compact": current["compact"], "to": current["addressee"], "issued": issued,
                    "target": ext["target"], "window": [ext["window_start"], ext["window_end"]],
                    "confidence": current["report"].get("confidence"), "requested_action": ext["requested_action"],
                    "text": current["report"]["description"]},
        "stix": _bundle(current),
        "reply": "Verify this document with `tearline warn verify FILE --public-key HUB-KEY`, then acknowledge it "
                 "with `tearline warn reply FILE --key YOUR-KEY.pem --by NAME --out reply.json` and return reply.json.",
    }
    signed = signer.sign(_DOCUMENT_CONTEXT + _canonical(doc))
    doc["signature"] = {"algorithm": "ed25519", "key_id": signed["key_id"], "public_key": signed["public_key"],
                        "value": signed["signature"]}
    return doc


def _signed_part(doc: dict[str, Any]) -> bytes:
    return _DOCUMENT_CONTEXT + _canonical(doc)


_EMBEDDED = re.compile(r'<script type="application/json" id="tearline-warning">(.*?)</script>', re.S)


def render_html(doc: dict[str, Any]) -> str:
    """A page a person reads, carrying the signed JSON so the page itself can be verified."""
    w = doc["warning"]
    e = html.escape
    target = ", ".join(e(str(w["target"][k])) for k in ("place_type", "city", "province", "country") if w["target"].get(k))
    embedded = orjson.dumps(doc).decode().replace("</", "<\\/")
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Warning {e(w['id'])}</title>
<style>body{{font:16px/1.5 system-ui,sans-serif;max-width:46rem;margin:2rem auto;padding:0 1rem;color:#111}}
.tlp{{display:inline-block;background:#000;color:#ff2b2b;font-weight:700;padding:.1rem .5rem}}
dt{{font-weight:600}}dd{{margin:0 0 .6rem 0}}.text{{border-left:4px solid #c00;padding:.5rem 1rem;background:#fff6f6}}
code{{word-break:break-all}}</style></head>
<body>
<p><span class="tlp">TLP:RED</span> for {e(w['to'])} only</p>
<h1>Duty to warn: threat to {target}</h1>
<div class="text"><p>{e(w['text'])}</p></div>
<dl>
<dt>Addressed to</dt><dd>{e(w['to'])}</dd>
<dt>Target</dt><dd>{target}</dd>
<dt>Threat window</dt><dd>{e(w['window'][0])} to {e(w['window'][1])}</dd>
<dt>Confidence</dt><dd>{e(str(w['confidence']))} / 100</dd>
<dt>What is asked of you</dt><dd>{e(w['requested_action'])}</dd>
<dt>Issued</dt><dd>{e(w['issued'])} (warning {e(w['id'])})</dd>
<dt>Signed by the hub key</dt><dd><code>{e(doc['signature']['key_id'])}</code></dd>
</dl>
<p>{e(doc['reply'])} This page carries the signed document: the same commands accept this file.</p>
<script type="application/json" id="tearline-warning">{embedded}</script>
</body></html>
"""


def read_document(data: bytes, name: str = "the file") -> dict[str, Any]:
    """A signed document from its JSON or from the HTML page that embeds it."""
    text = data.decode("utf-8", errors="replace")
    found = _EMBEDDED.search(text)
    try:
        doc = orjson.loads(found.group(1).replace("<\\/", "</") if found else data)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"{name}: neither a Tearline warning document (JSON) nor its HTML page ({exc})") from None
    if not isinstance(doc, dict) or doc.get("format") not in (DOCUMENT_FORMAT, REPLY_FORMAT):
        raise BadRequest(f"{name}: not a Tearline warning document or reply (no format {DOCUMENT_FORMAT!r})")
    return doc


def verify_document(doc: dict[str, Any], trusted_keys: list[str]) -> dict[str, Any]:
    """Check a delivered document offline: signed by one of ``trusted_keys`` (the hub's published
    public keys, hex) and unchanged since. Returns the warning's facts; raises BadRequest naming why not."""
    sig = doc.get("signature")
    if doc.get("format") != DOCUMENT_FORMAT or not isinstance(sig, dict):
        raise BadRequest("not a signed Tearline warning document", code="not_authentic")
    trusted = {k.strip().lower() for k in trusted_keys}
    if not trusted:
        raise BadRequest("give the hub's published public key (--public-key): a document checked only against the "
                         "key it carries proves nothing", code="not_authentic")
    if str(sig.get("public_key", "")).lower() not in trusted:
        raise BadRequest(f"signed with key {sig.get('key_id')!r}, which is not a key you trust: this document did "
                         "not come from the hub whose key you hold", code="not_authentic")
    if not verify_signature(sig["public_key"], _signed_part(doc), str(sig.get("value", ""))):
        raise BadRequest("the signature does not match the content: the document was altered or forged",
                         code="not_authentic")
    report = next((o for o in doc["stix"]["objects"] if o.get("type") == "report"), None)
    if report is None or report.get("description") != doc["warning"]["text"]:
        raise BadRequest("the STIX report and the warning's text disagree", code="not_authentic")
    return doc["warning"] | {"key_id": sig["key_id"], "digest": digest(doc)}


# --- the outside party's signed reply ---------------------------------------------------------------------

def new_party_key() -> tuple[bytes, str]:
    """A key for an outside party: (PKCS#8 PEM private key, public key in hex to register with the hub)."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

    from .audit import public_bytes

    key = Ed25519PrivateKey.generate()
    return key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()), public_bytes(key).hex()


def make_reply(doc: dict[str, Any], private_pem: bytes, by: str, note: str = "") -> dict[str, Any]:
    """The acknowledgement an outside party returns: which document it received (by digest), who
    acknowledges, when, signed with the party's own key."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    from .audit import public_bytes

    try:
        key = load_pem_private_key(private_pem, password=None)
    except (ValueError, TypeError) as exc:
        raise BadRequest(f"the reply key is not an unencrypted PEM private key ({exc})") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise BadRequest("the reply key is not an Ed25519 key (make one with `tearline warn keygen`)")
    if not by.strip():
        raise BadRequest("say who acknowledges (--by)")
    reply: dict[str, Any] = {"format": REPLY_FORMAT, "warning": doc["warning"]["id"], "party": doc["warning"]["to"],
                             "document_digest": digest(doc), "acknowledged_by": by.strip(), "at": stix.format_us(now_us()),
                             "note": note, "public_key": public_bytes(key).hex()}
    reply["signature"] = key.sign(_REPLY_CONTEXT + _canonical(reply)).hex()
    return reply


def record_reply(store: Store, reply: dict[str, Any], today: dt.date | None = None) -> dict[str, Any]:
    """Record an outside party's signed acknowledgement, after checking that it is signed by the key
    registered for the party and names the very document the hub delivered."""
    if reply.get("format") != REPLY_FORMAT or not isinstance(reply.get("signature"), str):
        raise BadRequest(f"not a signed acknowledgement (format {REPLY_FORMAT!r})")
    current = show(store, str(reply.get("warning")), today)
    if not current["outside"]:
        raise Conflict(f"warning {current['id']} went to member {current['addressee']}, who acknowledges it in the hub")

    def check(conn: Any) -> None:
        party = _party(conn, current["addressee"])
        if reply.get("party") != current["addressee"] or party is None:
            raise BadRequest(f"the reply speaks for {reply.get('party')!r}, but warning {current['id']} went to "
                             f"{current['addressee']!r}", code="not_authentic")
        if str(reply.get("public_key", "")).lower() != party.public_key or not verify_signature(
                party.public_key, _REPLY_CONTEXT + _canonical(reply), reply["signature"]):
            raise BadRequest(f"the reply is not signed with {current['addressee']}'s registered key: forged or altered",
                             code="not_authentic")
        if current["document"] is None or reply.get("document_digest") != digest(current["document"]):
            raise BadRequest(f"the reply acknowledges a document other than the one delivered for warning "
                             f"{current['id']}", code="not_authentic")

    note = f"signed reply from {reply.get('acknowledged_by')} at {reply.get('at')}" + (
        f": {reply['note']}" if reply.get("note") else "")
    return _move(store, current, "acknowledge", f"{current['addressee']}: {reply.get('acknowledged_by')}", note, today,
                 check_reply=check)


# --- escalation -----------------------------------------------------------------------------------------

def escalate(store: Store, outbox: Path, now: int | None = None) -> list[dict[str, Any]]:
    """Send each delivered, unacknowledged warning to the addressee's next contact once it has waited
    ``escalate_after_hours`` more. Returns what was sent; each is an ``escalate`` event and a message
    file in ``outbox``."""
    now = now or now_us()
    sent = []
    _expire(store)
    with store.engine.connect() as conn:
        waiting = [_load(conn, wid) for (wid,) in conn.execute(
            select(warnings.c.id).where(warnings.c.state == "delivered")).all()]
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
            _event(conn, current["id"], "hub", "escalate", "delivered", "delivered",
                   f"not acknowledged after {hours * (done + 1)} h: sent to {contact} ({path.name})")
        sent.append({"warning": current["id"], "contact": contact, "file": str(path)})
    return sent


def _contacts(store: Store, current: dict[str, Any]) -> list[str]:
    with store.engine.connect() as conn:
        if current["outside"]:
            party = _party(conn, current["addressee"])
            return orjson.loads(party.contacts) if party else []
        row = conn.execute(select(members.c.profile).where(members.c.api_root == current["compact"],
                                                           members.c.name == current["addressee"])).first()
    return list(orjson.loads(row.profile).get("contacts") or ()) if row else []


def _write_notice(outbox: Path, current: dict[str, Any], contact: str, hours: int) -> Path:
    """An RFC 5322 message for the operator's mail relay: the escalation and the releasable text (the
    contact belongs to the addressee, who may read it)."""
    ext = current["report"]["extensions"][EXTENSION_ID]
    msg = EmailMessage()
    msg["To"] = contact
    msg["From"] = "Tearline hub <tearline@localhost>"
    msg["Date"] = format_datetime(dt.datetime.now(dt.timezone.utc))
    msg["Message-ID"] = make_msgid(domain="tearline.local")
    msg["Subject"] = f"[TLP:RED] Unacknowledged warning {current['id']} to {current['addressee']}"
    msg.set_content(
        f"A duty-to-warn warning delivered to {current['addressee']} has not been acknowledged after {hours} hours.\n\n"
        f"Threat: {current['report']['name']}\nWindow: {ext['window_start']} to {ext['window_end']}\n"
        f"Asked of you: {ext['requested_action']}\n\n{current['report']['description']}\n\n"
        f"Acknowledge it in the hub (warning {current['id']}) or with the signed reply file.\n")
    outbox.mkdir(parents=True, exist_ok=True)
    path = outbox / f"{dt.datetime.now(dt.timezone.utc):%Y%m%dT%H%M%S}-{current['id']}-{uuid.uuid4().hex[:6]}.eml"
    path.write_bytes(bytes(msg))
    return path


# --- what a member sees of warnings through the API (and the dashboard's inbox) ----------------------------

def for_member(w: dict[str, Any], member: str) -> dict[str, Any] | None:
    """The drafting member sees its whole record; the addressee, once it was delivered, the warning
    and the steps that concern it; anyone else nothing (the same as for a warning that does not exist)."""
    if w["author_member"] == member:
        return w
    delivered = any(e["action"] == "deliver" for e in w["history"])
    if w["outside"] or w["addressee"] != member or not delivered:
        return None
    return {"id": w["id"], "compact": w["compact"], "addressee": member, "outside": False, "state": w["state"],
            "window_end": w["window_end"], "report": w["report"],
            "history": [e for e in w["history"] if e["action"] in ("deliver", "acknowledge", "escalate", "expire")]}


def for_member_list(store: Store, compact: str, member: str) -> list[dict[str, Any]]:
    return [v for w in list_(store, compact) if (v := for_member(w, member)) is not None]


def show_for_member(store: Store, compact: str, member: str, wid: str) -> dict[str, Any]:
    try:
        w = show(store, wid)
    except NotFound:
        w = None
    seen = for_member(w, member) if w and w["compact"] == compact else None
    if seen is None:
        raise NotFound(f"no warning {wid!r}")
    return seen
