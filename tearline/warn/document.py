"""What an outside party receives and returns: the signed warning document (JSON, and HTML that embeds the
same signed JSON), its offline check, the party's signed acknowledgement, and the registry of parties.

The document is signed with the hub's published key under its own context, so no signature of another
kind passes for it; checking it needs the key the recipient already trusts. A reply is signed with the
party's registered key and names the digest of the very document delivered."""

from __future__ import annotations

import functools
import hashlib
import re
import uuid
from typing import Any

import jinja2
import orjson
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    load_pem_private_key,
)

from .. import granular, markings, stix
from ..audit import public_bytes, verify_signature
from ..errors import BadRequest
from ..store import Store, now_us
from ..store import warnings as rows
from .report import EXTENSION_ID, NS, Signer, location

DOCUMENT_FORMAT = "tearline-warning/1"
REPLY_FORMAT = "tearline-warning-ack/1"
# What each signature is over starts with its kind, so a signature of one kind never passes for another.
_DOCUMENT_CONTEXT = b"tearline-warning-document/1\n"
_REPLY_CONTEXT = b"tearline-warning-ack/1\n"


# --- the signed document for an outside party -------------------------------------------------------------

def _bundle(current: dict[str, Any]) -> dict[str, Any]:
    return {"type": "bundle", "id": f"bundle--{uuid.uuid5(NS, current['id'] + '/bundle')}",
            "objects": [markings.definition("red"), location(current), current["report"]]}


def sign_document(current: dict[str, Any], signer: Signer, issued: str, ceiling: str = "clear") -> dict[str, Any]:
    """The signed document for an outside party whose registered ceiling is ``ceiling``: the warning below
    its tear line (a part marked above the ceiling, never RED, stays out)."""
    report = current["report"]
    report = granular.cut(report, granular.withheld(report, granular.reader(ceiling if ceiling != "red" else "amber",
                                                                             False)))
    current = dict(current, report=report)
    ext = current["report"]["extensions"][EXTENSION_ID]
    doc: dict[str, Any] = {
        "format": DOCUMENT_FORMAT,
        "warning": {"id": current["id"], "compact": current["compact"], "to": current["addressee"], "issued": issued,
                    "target": ext["target"], "window": [ext["window_start"], ext["window_end"]],
                    "confidence": current["report"].get("confidence"), "requested_action": ext["requested_action"],
                    "text": current["report"].get("description", "")},
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


@functools.cache
def _page() -> jinja2.Template:
    env = jinja2.Environment(loader=jinja2.PackageLoader("tearline.warn", "templates"), autoescape=True,
                             keep_trailing_newline=True)
    return env.get_template("document.html")


def render_html(doc: dict[str, Any]) -> str:
    """A page a person reads, carrying the signed JSON so the page itself can be verified."""
    w = doc["warning"]
    target = ", ".join(str(w["target"][k]) for k in ("place_type", "city", "province", "country") if w["target"].get(k))
    # the signed JSON goes in verbatim (it is what gets verified); "</" is escaped so no text in it ends the script
    embedded = orjson.dumps(doc).decode().replace("</", "<\\/")
    return _page().render(w=w, target=target, key_id=doc["signature"]["key_id"],
                                                     reply=doc["reply"], embedded=embedded)


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
    if report is None or report.get("description", "") != doc["warning"]["text"]:
        raise BadRequest("the STIX report and the warning's text disagree", code="not_authentic")
    return doc["warning"] | {"key_id": sig["key_id"], "digest": digest(doc)}



def _canonical(doc: dict[str, Any]) -> bytes:
    return orjson.dumps({k: v for k, v in doc.items() if k != "signature"}, option=orjson.OPT_SORT_KEYS)


def digest(doc: dict[str, Any]) -> str:
    """SHA-256 of a signed document as signed: what a reply binds itself to."""
    return hashlib.sha256(_canonical(doc) + bytes.fromhex(doc.get("signature", {}).get("value", ""))).hexdigest()



# --- outside parties ----------------------------------------------------------------------------------

def _public_key_problem(public_key: str) -> str | None:
    try:
        Ed25519PublicKey.from_public_bytes(bytes.fromhex(public_key))
    except ValueError:
        return f"public key {public_key!r} is not an Ed25519 public key in hex (64 hex digits)"
    return None


def add_party(store: Store, name: str, public_key: str, tlp_max: str = "amber", contacts: tuple[str, ...] = ()
              ) -> dict[str, Any]:
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
        rows.save_party(conn, name, **values)
    return next(p for p in parties(store) if p["name"] == name)


def parties(store: Store) -> list[dict[str, Any]]:
    with store.engine.connect() as conn:
        return [{"name": r.name, "public_key": r.public_key, "tlp_max": r.tlp_max,
                 "contacts": orjson.loads(r.contacts)} for r in rows.parties(conn)]


# --- the outside party's signed reply ---------------------------------------------------------------------

def new_party_key() -> tuple[bytes, str]:
    """A key for an outside party: (PKCS#8 PEM private key, public key in hex to register with the hub)."""
    key = Ed25519PrivateKey.generate()
    return key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()), public_bytes(key).hex()


def make_reply(doc: dict[str, Any], private_pem: bytes, by: str, note: str = "") -> dict[str, Any]:
    """The acknowledgement an outside party returns: which document it received (by digest), who
    acknowledges, when, signed with the party's own key."""
    try:
        key = load_pem_private_key(private_pem, password=None)
    except (ValueError, TypeError) as exc:
        raise BadRequest(f"the reply key is not an unencrypted PEM private key ({exc})") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise BadRequest("the reply key is not an Ed25519 key (make one with `tearline warn keygen`)")
    if not by.strip():
        raise BadRequest("say who acknowledges (--by)")
    reply: dict[str, Any] = {"format": REPLY_FORMAT, "warning": doc["warning"]["id"], "party": doc["warning"]["to"],
                             "document_digest": digest(doc), "acknowledged_by": by.strip(),
                             "at": stix.format_us(now_us()), "note": note, "public_key": public_bytes(key).hex()}
    reply["signature"] = key.sign(_REPLY_CONTEXT + _canonical(reply)).hex()
    return reply


def check_reply(reply: dict[str, Any], current: dict[str, Any], party: Any) -> None:
    """Refuse a reply that is not signed by the key registered for the warning's party (``party``, its row)
    or that names a document other than the one delivered."""
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
