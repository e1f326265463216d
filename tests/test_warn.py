"""Duty to warn: a warning to a member and one to an outside party walk draft → approved → delivered
→ acknowledged; a waiver needs a reason code and a second person; each illegal step is refused with
its reason (forged and altered documents and replies too); the report is valid STIX; only its
addressee sees the delivered warning; unacknowledged warnings escalate to the addressee's contacts;
a draft can take its text from a report's tear line; members do all of it through the API."""

from __future__ import annotations

import datetime as dt
from typing import Any

import httpx
import pytest
from stix2validator import ValidationOptions, validate_instance

from tearline import warn, write
from tearline.errors import BadRequest, Conflict
from tearline.store import Store
from tests.conftest import TAXII

WARNINGS = "/taxii2/isis-k/collections/warnings/objects/"
SOON = (dt.date.today() + dt.timedelta(days=10)).isoformat()


def shared(page: dict[str, Any]) -> set[str]:
    """The ids on a page, less the TLP marking definitions every collection serves to everyone."""
    return {o["id"] for o in page.get("objects", []) if not o["id"].startswith("marking-definition--")}


def a_draft(store: Store, addressee: str = "state-b", outside: bool = False) -> dict[str, Any]:
    return warn.draft(store, "isis-k", "analyst-1", addressee, outside,
                      {"country": "PAK", "province": "Khyber Pakhtunkhwa", "city": "Peshawar",
                       "place_type": "religious gathering"},
                      (dt.date.today().isoformat(), SOON), 70, "raise security at Friday prayers",
                      "A suicide attack on a mosque in Peshawar during Friday prayers is being prepared.")


def test_a_warning_to_a_member_walks_every_state_and_only_it_sees_it(hub: Any, tokens: dict[str, str],
                                                                    store: Store) -> None:
    w = a_draft(store)
    result = validate_instance(w["report"], ValidationOptions(version="2.1", strict=False))
    assert result.is_valid, [str(e) for e in result.errors]
    for action, by, state in (("approve", "analyst-2", "approved"), ("deliver", "analyst-1", "delivered"),
                              ("acknowledge", "state-b", "acknowledged")):
        if action == "acknowledge":
            for member in ("state-a", "ngo-c"):  # delivered: nobody but the addressee sees it, anywhere
                with httpx.Client(base_url=hub.url, auth=(member, tokens[member]), headers={"Accept": TAXII}) as c:
                    assert shared(c.get(WARNINGS).json()) == set()
                    assert c.get(WARNINGS + w["report"]["id"] + "/").status_code == 404
                    assert shared(c.get(WARNINGS.replace("objects/", "manifest/")).json()) == set()
            with httpx.Client(base_url=hub.url, auth=("state-b", tokens["state-b"]), headers={"Accept": TAXII}) as c:
                assert shared(c.get(WARNINGS).json()) == {w["report"]["id"], w["report"]["object_refs"][0]}
        w = warn.move(store, w["id"], action, by)
        assert w["state"] == state
    assert [e["action"] for e in w["history"]] == ["draft", "approve", "deliver", "acknowledge"]


def test_illegal_steps_are_refused_with_their_reason(store: Store, tokens: dict[str, str]) -> None:
    w = a_draft(store)
    with pytest.raises(Conflict, match="two-person rule"):
        warn.move(store, w["id"], "approve", "analyst-1")
    with pytest.raises(Conflict, match="only a approved warning can be delivered"):
        warn.move(store, w["id"], "deliver", "analyst-2")
    with pytest.raises(Conflict, match="only a delivered warning can be acknowledged"):
        warn.move(store, w["id"], "acknowledge", "state-b")
    warn.move(store, w["id"], "approve", "analyst-2")
    warn.move(store, w["id"], "deliver", "analyst-2")
    with pytest.raises(Conflict, match="only state-b"):
        warn.move(store, w["id"], "acknowledge", "state-a")
    # the window ends: nothing more can happen to it, and it says why
    later = dt.date.today() + dt.timedelta(days=30)
    with pytest.raises(Conflict, match="threat window has ended"):
        warn.move(store, w["id"], "acknowledge", "state-b", today=later)
    assert warn.show(store, w["id"])["state"] == "expired"


def test_a_waiver_needs_a_reason_code_a_justification_and_a_second_person(store: Store, tokens: dict[str, str]) -> None:
    warn.add_party(store, "Government of Kazakhstan", warn.new_party_key()[1])
    w = a_draft(store, "Government of Kazakhstan", outside=True)
    with pytest.raises(Conflict, match="two-person rule"):
        warn.move(store, w["id"], "waive", "analyst-1", "already-knows: their service told us")
    with pytest.raises(BadRequest, match="reason code"):
        warn.move(store, w["id"], "waive", "analyst-2", "we would rather not")
    done = warn.move(store, w["id"], "waive", "analyst-2", "sources-and-methods: the only source is a live asset")
    assert done["state"] == "waived" and done["history"][-1]["note"].startswith("sources-and-methods")
    with pytest.raises(Conflict, match="it was waived"):
        warn.move(store, w["id"], "approve", "analyst-3")
    # the waiver is reviewable: by a third person, with a reason; overturned, the warning is a draft again
    for who in ("analyst-1", "analyst-2"):
        with pytest.raises(Conflict, match="took part in it"):
            warn.move(store, w["id"], "overturn", who, "the source is no longer live")
    with pytest.raises(BadRequest, match="says why"):
        warn.move(store, w["id"], "uphold", "reviewer", "")
    assert warn.move(store, w["id"], "uphold", "reviewer", "the asset is still in place")["state"] == "waived"
    assert [x["id"] for x in warn.list_(store, "isis-k", "waived")] == [w["id"]]
    again = warn.move(store, w["id"], "overturn", "reviewer-2", "the asset was exfiltrated last week")
    assert again["state"] == "draft" and [e["action"] for e in again["history"]][-3:] == ["waive", "uphold", "overturn"]
    with pytest.raises(Conflict, match="only a waived warning can be reviewed"):
        warn.move(store, w["id"], "uphold", "reviewer")
    assert warn.move(store, w["id"], "approve", "analyst-2")["state"] == "approved"


def test_a_draft_reports_every_problem_at_once(store: Store, tokens: dict[str, str]) -> None:
    with pytest.raises(BadRequest) as bad:
        warn.draft(store, "isis-k", "a", "nobody", False, {"country": "XXX"}, ("2026-02-01", "2026-01-01"), 140,
                   "", "")
    problems = bad.value.details["problems"]
    assert len(problems) == 6 and any("XXX" in p for p in problems) and any("'nobody'" in p for p in problems)


def test_cli_walks_a_warning_and_refuses_illegal_steps_by_name(tmp_path: Any) -> None:
    import json
    import subprocess
    import sys
    from pathlib import Path

    db = f"sqlite:///{tmp_path / 'hub.db'}"
    tl = [sys.executable, "-m", "tearline"]
    demo = Path(__file__).resolve().parent.parent / "tearline" / "data" / "demo-compact.yaml"
    subprocess.run([*tl, "compact", "apply", str(demo), "--db", db], check=True, capture_output=True)
    made = subprocess.run([*tl, "warn", "draft", "--compact", "isis-k", "--to", "ngo-c", "--country", "AFG",
                           "--city", "Kabul", "--from", dt.date.today().isoformat(), "--until", SOON,
                           "--confidence", "60", "--ask", "suspend the field visit", "--text",
                           "A kidnapping of aid workers on the Jalalabad road is planned.", "--by", "alice",
                           "--json", "--db", db], check=True, capture_output=True, text=True)
    wid = json.loads(made.stdout)["id"]
    own = subprocess.run([*tl, "warn", "approve", wid, "--by", "alice", "--db", db], capture_output=True, text=True)
    assert own.returncode == 2 and "two-person rule" in own.stderr and "Traceback" not in own.stderr
    for step, by in (("approve", "bob"), ("deliver", "alice"), ("acknowledge", "ngo-c")):
        subprocess.run([*tl, "warn", step, wid, "--by", by, "--db", db], check=True, capture_output=True)
    status = json.loads(subprocess.run([*tl, "warn", "status", wid, "--json", "--db", db], check=True,
                                       capture_output=True, text=True).stdout)
    assert status["state"] == "acknowledged" and [e["by"] for e in status["history"]] == ["alice", "bob", "alice", "ngo-c"]
    from tearline import audit as audit_mod
    from tearline.store import Store as S

    store = S(db)
    try:
        assert audit_mod.verify(store).intact
        with store.engine.connect() as conn:
            from sqlalchemy import select

            from tearline.store.schema import audit

            steps = [r[0] for r in conn.execute(select(audit.c.endpoint).order_by(audit.c.seq))]
            refused = conn.execute(select(audit.c.status, audit.c.reason).where(audit.c.endpoint == "warn approve")
                                   .order_by(audit.c.seq)).first()
        assert steps[-5:] == ["warn draft", "warn approve", "warn approve", "warn deliver", "warn acknowledge"]
        assert refused.status == 409 and "two-person rule" in refused.reason  # refused steps are on record too
    finally:
        store.close()


# --- outside parties: signed documents and signed replies --------------------------------------------------

PARTY = "Ministry of Interior of Tajikistan"


@pytest.fixture
def signer(store: Store, tmp_path: Any) -> Any:
    from tearline.audit import AuditLog

    return AuditLog(store, tmp_path / "hub-audit.key")


@pytest.fixture
def party(store: Store, tokens: dict[str, str]) -> bytes:
    pem, public = warn.new_party_key()
    warn.add_party(store, PARTY, public, "green", ("Duty desk <desk@mvd.example>", "Deputy minister <dm@mvd.example>"))
    return pem


def delivered_to_party(store: Store, signer: Any) -> dict[str, Any]:
    w = warn.draft(store, "isis-k", "analyst-1", PARTY, True, {"country": "TJK", "city": "Dushanbe",
                                                              "place_type": "concert hall"},
                   (dt.date.today().isoformat(), SOON), 65, "raise security at the venue",
                   "An attack on a concert hall in Dushanbe during the festival is being prepared.")
    warn.move(store, w["id"], "approve", "analyst-2")
    return warn.move(store, w["id"], "deliver", "analyst-1", signer=signer)


def hub_key(signer: Any) -> str:
    return signer.public_keys()[-1]["public_key"]


def test_a_warning_to_an_outside_party_walks_every_state_and_verifies_offline(store: Store, signer: Any,
                                                                              party: bytes) -> None:
    w = delivered_to_party(store, signer)
    doc = w["document"]
    facts = warn.verify_document(doc, [hub_key(signer)])
    assert facts["to"] == PARTY and facts["id"] == w["id"] and "concert hall" in facts["text"]
    # the bundle inside is valid STIX, and the HTML page carries the same signed document
    for obj in doc["stix"]["objects"]:
        result = validate_instance(obj, ValidationOptions(version="2.1", strict=False))
        assert result.is_valid, [str(e) for e in result.errors]
    page = warn.render_html(doc)
    assert "Dushanbe" in page and "raise security at the venue" in page
    assert warn.verify_document(warn.read_document(page.encode()), [hub_key(signer)]) == facts
    reply = warn.make_reply(warn.read_document(page.encode()), party, "Col. R. Nazarov", "guards doubled")
    done = warn.record_reply(store, reply)
    assert done["state"] == "acknowledged"
    assert [e["action"] for e in done["history"]] == ["draft", "approve", "deliver", "acknowledge"]
    assert "Col. R. Nazarov" in done["history"][-1]["note"] and "guards doubled" in done["history"][-1]["note"]


def test_forged_or_altered_documents_are_refused(store: Store, signer: Any, party: bytes, tmp_path: Any) -> None:
    import copy

    from tearline.audit import AuditLog

    doc = delivered_to_party(store, signer)["document"]
    key = hub_key(signer)
    altered = copy.deepcopy(doc)
    altered["warning"]["window"][1] = "2099-01-01"
    with pytest.raises(BadRequest, match="altered or forged"):
        warn.verify_document(altered, [key])
    page = warn.render_html(doc).replace("Dushanbe", "Khujand")  # the embedded JSON changed with the page
    with pytest.raises(BadRequest, match="altered or forged"):
        warn.verify_document(warn.read_document(page.encode()), [key])
    # a forger with a key of its own: its signature is good, but not by a key the recipient trusts
    forger = AuditLog(store, tmp_path / "forger.key")
    forged = warn.sign_document(warn.show(store, doc["warning"]["id"]) | {"addressee": PARTY}, forger, "2026-01-01T00:00:00Z")
    with pytest.raises(BadRequest, match="not a key you trust"):
        warn.verify_document(forged, [key])
    with pytest.raises(BadRequest, match="proves nothing"):
        warn.verify_document(doc, [])
    with pytest.raises(BadRequest, match="neither a Tearline warning document"):
        warn.read_document(b"<html>not a warning</html>")


def test_forged_altered_or_misdirected_replies_are_refused(store: Store, signer: Any, party: bytes) -> None:
    w = delivered_to_party(store, signer)
    other_pem, _ = warn.new_party_key()
    with pytest.raises(BadRequest, match="registered key: forged or altered"):
        warn.record_reply(store, warn.make_reply(w["document"], other_pem, "impostor"))
    reply = warn.make_reply(w["document"], party, "Col. R. Nazarov")
    with pytest.raises(BadRequest, match="registered key: forged or altered"):
        warn.record_reply(store, reply | {"note": "added afterwards"})
    # a reply to a different document (e.g. an earlier or doctored copy) does not count
    other = dict(w["document"], reply="doctored")
    with pytest.raises(BadRequest, match="a document other than the one delivered"):
        warn.record_reply(store, warn.make_reply(other, party, "Col. R. Nazarov"))
    # a member cannot be made to acknowledge for the party, nor the operator without the signed reply
    with pytest.raises(Conflict, match="with the reply file it signs"):
        warn.move(store, w["id"], "acknowledge", "analyst-2")
    assert warn.show(store, w["id"])["state"] == "delivered"
    assert warn.record_reply(store, reply)["state"] == "acknowledged"


def test_ack_before_delivery_or_after_expiry_is_refused(store: Store, signer: Any, party: bytes) -> None:
    w = delivered_to_party(store, signer)
    reply = warn.make_reply(w["document"], party, "Col. R. Nazarov")
    later = dt.date.today() + dt.timedelta(days=30)
    with pytest.raises(Conflict, match="threat window has ended"):
        warn.record_reply(store, reply, today=later)
    assert warn.show(store, w["id"])["state"] == "expired"
    fresh = a_draft(store, PARTY, outside=True)
    with pytest.raises(Conflict, match="only a delivered warning can be acknowledged"):
        warn.record_reply(store, dict(reply, warning=fresh["id"]))
    with pytest.raises(Conflict, match="only a approved warning can be delivered"):
        warn.move(store, fresh["id"], "deliver", "analyst-2", signer=signer)


def test_an_outside_party_must_be_registered_with_a_real_key(store: Store, tokens: dict[str, str]) -> None:
    with pytest.raises(BadRequest, match="not a registered outside party"):
        a_draft(store, "Somebody Unknown", outside=True)
    with pytest.raises(BadRequest) as bad:
        warn.add_party(store, "X", "abcd", "red")
    assert "not an Ed25519 public key" in str(bad.value) and "tlp_max" in str(bad.value)


# --- escalation ----------------------------------------------------------------------------------------------

def test_an_unacknowledged_warning_goes_to_each_contact_in_turn(store: Store, tokens: dict[str, str],
                                                                tmp_path: Any) -> None:
    import email

    w = a_draft(store)  # to state-b, whose contacts are its watch desk, then its deputy director
    warn.move(store, w["id"], "approve", "analyst-2")
    w = warn.move(store, w["id"], "deliver", "analyst-1")
    at = dt.datetime.fromisoformat(w["history"][-1]["at"]).timestamp() * 1e6
    hour = 3600e6
    outbox = tmp_path / "outbox"
    assert warn.escalate(store, outbox, int(at + 23 * hour)) == []
    first = warn.escalate(store, outbox, int(at + 25 * hour))
    assert [s["contact"] for s in first] == ["State B watch desk <watch@state-b.example>"]
    assert warn.escalate(store, outbox, int(at + 26 * hour)) == []  # once per period
    second = warn.escalate(store, outbox, int(at + 49 * hour))
    assert [s["contact"] for s in second] == ["State B deputy director <deputy@state-b.example>"]
    assert warn.escalate(store, outbox, int(at + 500 * hour)) == []  # every contact has been told
    with open(first[0]["file"], "rb") as fh:
        message = email.message_from_bytes(fh.read())
    assert message["To"] == "State B watch desk <watch@state-b.example>" and w["id"] in message["Subject"]
    assert "mosque in Peshawar" in message.get_payload()
    assert [e["action"] for e in warn.show(store, w["id"])["history"]][-2:] == ["escalate", "escalate"]
    # once acknowledged, nobody else is disturbed
    warn.move(store, w["id"], "acknowledge", "state-b")
    assert warn.escalate(store, outbox, int(at + 1000 * hour)) == []


# --- the tear line of a source report -------------------------------------------------------------------

def test_the_text_of_a_warning_comes_from_the_source_reports_tear_line(store: Store, signer: Any,
                                                                        party: bytes) -> None:
    import uuid

    from tearline import markings
    from tests.stixgen import ACTOR_ID

    def report(**extra: Any) -> dict[str, Any]:
        ts = "2026-01-05T10:00:00.000Z"
        return {"type": "report", "spec_version": "2.1", "id": f"report--{uuid.uuid4()}", "created": ts,
                "modified": ts, "published": ts, "name": "Festival plot", "object_refs": [ACTOR_ID],
                "description": "A cell plans to attack the Dushanbe festival.", **extra}

    red, green, amber = (markings.TLP2[level][0] for level in ("red", "green", "amber"))
    releasable = report(object_marking_refs=[red], x_tearline_sourcing="asset in the cell",
                        granular_markings=[{"marking_ref": green, "selectors": ["description"]}])
    secret = report(object_marking_refs=[red])
    for_members = report(object_marking_refs=[green], granular_markings=[{"marking_ref": amber, "selectors": ["description"]}])
    coll = store.collection("isis-k", "intel")
    with store.engine.begin() as conn:
        write.hub_write(store, conn, coll, [releasable, secret, for_members], None)
    args = ({"country": "TJK"}, (dt.date.today().isoformat(), SOON), 60, "raise security")
    w = warn.draft(store, "isis-k", "analyst-1", PARTY, True, *args, "", releasable["id"])
    assert w["report"]["description"] == releasable["description"]
    assert "asset" not in str(w["report"])  # the part above the line never enters the warning
    with pytest.raises(BadRequest, match="TLP:RED, above the tear line"):
        warn.draft(store, "isis-k", "analyst-1", PARTY, True, *args, "", secret["id"])
    with pytest.raises(BadRequest, match="TLP:AMBER, above the tear line for " + PARTY):  # the party: up to GREEN
        warn.draft(store, "isis-k", "analyst-1", PARTY, True, *args, "", for_members["id"])
    assert warn.draft(store, "isis-k", "analyst-1", "state-b", False, *args, "", for_members["id"])["report"][
        "description"] == for_members["description"]  # state-b reads AMBER
    with pytest.raises(BadRequest, match="no such report"):
        warn.draft(store, "isis-k", "analyst-1", "state-b", False, *args, "", "report--00000000-0000-4000-8000-000000000000")


# --- the API --------------------------------------------------------------------------------------------

def test_members_draft_approve_deliver_and_acknowledge_through_the_api(hub: Any, tokens: dict[str, str]) -> None:
    """Each step is a person's, under their own token (the demo compact lists state-a's amina and farid,
    state-b's bilal, ngo-c's noor): the two-person rule takes two logins, and nobody is named by a body."""
    def as_(name: str) -> httpx.Client:
        return httpx.Client(base_url=hub.url + "/tearline/warnings", auth=(name, tokens[name]), timeout=30)

    amina, farid, bilal, noor = as_("state-a/amina"), as_("state-a/farid"), as_("state-b/bilal"), as_("ngo-c/noor")
    a, b, c = as_("state-a"), as_("state-b"), as_("ngo-c")
    draft = {"to": "state-b", "target": {"country": "PAK", "city": "Quetta"},
             "window": [dt.date.today().isoformat(), SOON], "confidence": 55,
             "ask": "protect the consulate", "text": "An attack on the consulate in Quetta is planned."}
    # the member's own token reads, but takes no step
    machine = a.post("/", json=draft)
    assert machine.status_code == 403 and "state-a/<person>" in machine.json()["description"]
    # a body cannot say someone else did it
    claimed = amina.post("/", json=draft | {"by": "farid"})
    assert claimed.status_code == 400 and "is not who is signed in" in claimed.json()["description"]
    made = amina.post("/", json=draft)
    assert made.status_code == 201, made.text
    wid = made.json()["id"]
    assert made.json()["author"] == "state-a:amina"
    own = amina.post(f"/{wid}/approve/", json={})
    assert own.status_code == 409 and "two-person rule" in own.json()["description"]
    assert a.post(f"/{wid}/approve/", json={"by": "farid"}).status_code == 403  # saying so is not signing in
    for other in (b, c, bilal, noor):  # not delivered yet: the rest see nothing, not even that it exists
        assert other.get(f"/{wid}/").status_code == 404 and other.get("/").json() == {"warnings": []}
    for other in (bilal, noor):
        assert other.post(f"/{wid}/deliver/", json={}).status_code == 404
    assert farid.post(f"/{wid}/approve/", json={}).json()["state"] == "approved"
    assert bilal.post(f"/{wid}/acknowledge/", json={}).status_code == 404
    assert amina.post(f"/{wid}/deliver/", json={}).json()["state"] == "delivered"
    inbox = b.get("/").json()["warnings"]
    assert [w["id"] for w in inbox] == [wid] and "author" not in inbox[0]  # the addressee does not learn who wrote it
    assert c.get("/").json() == {"warnings": []} and c.get(f"/{wid}/").status_code == 404
    assert noor.post(f"/{wid}/acknowledge/", json={}).status_code == 404
    assert amina.post(f"/{wid}/acknowledge/", json={}).status_code == 403
    assert b.post(f"/{wid}/acknowledge/", json={"by": "bilal"}).status_code == 403
    done = bilal.post(f"/{wid}/acknowledge/", json={})
    assert done.status_code == 200 and done.json()["state"] == "acknowledged"
    history = a.get(f"/{wid}/").json()["history"]
    assert [(e["action"], e["by"]) for e in history][-4:] == [
        ("draft", "state-a:amina"), ("approve", "state-a:farid"), ("deliver", "state-a:amina"),
        ("acknowledge", "state-b")] and history[-1]["note"] == "by bilal"
    # bad input: named, never a 500
    assert amina.post("/", content=b"{not json", headers={"Content-Type": "application/json"}).status_code == 400
    missing = amina.post("/", json={"to": "state-b"})
    assert missing.status_code == 400 and "ask" in missing.json()["description"]
    bad = amina.post("/", json={"to": "nobody", "ask": "x", "target": {"country": "ZZZ"}, "window": ["x", "y"],
                                "confidence": "high", "text": "t"})
    # every problem named at once; but not whether "nobody" is a member, which this compact keeps from members
    assert bad.status_code == 400 and len(bad.json()["details"]["problems"]) == 3
    assert "nobody" not in bad.text
    assert amina.post(f"/{wid}/explode/", json={}).status_code in (400, 409)
    for x in (a, b, c, amina, farid, bilal, noor):
        x.close()


def test_cli_delivers_to_an_outside_party_who_verifies_and_replies(tmp_path: Any) -> None:
    import json
    import subprocess
    import sys
    from pathlib import Path

    db = f"sqlite:///{tmp_path / 'hub.db'}"
    tl = [sys.executable, "-m", "tearline"]
    demo = Path(__file__).resolve().parent.parent / "tearline" / "data" / "demo-compact.yaml"

    def run(*args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run([*tl, *args], capture_output=True, text=True)
        assert (done.returncode == 0) == ok, done.stderr
        assert "Traceback" not in done.stderr
        return done

    run("compact", "apply", str(demo), "--db", db)
    public = run("warn", "keygen", "--out", str(tmp_path / "party.pem")).stdout.strip()
    run("warn", "party", "add", PARTY, "--public-key", public, "--contact", "desk <desk@mvd.example>", "--db", db)
    wid = json.loads(run("warn", "draft", "--compact", "isis-k", "--to", PARTY, "--outside", "--country", "TJK",
                         "--from", dt.date.today().isoformat(), "--until", SOON, "--confidence", "60", "--ask",
                         "raise security", "--text", "An attack in Dushanbe is planned.", "--by", "alice", "--json",
                         "--db", db).stdout)["id"]
    run("warn", "approve", wid, "--by", "bob", "--db", db)
    run("warn", "deliver", wid, "--by", "alice", "--out", str(tmp_path / "out"), "--db", db)
    html_file = tmp_path / "out" / f"warning-{wid}.html"
    assert html_file.exists() and (tmp_path / "out" / f"warning-{wid}.json").exists()
    hub_public = run("audit", "key", "--db", db).stdout.split()[1]
    assert "authentic" in run("warn", "verify", str(html_file), "--public-key", hub_public).stdout
    tampered = tmp_path / "tampered.html"
    tampered.write_text(html_file.read_text().replace("Dushanbe", "Khujand"))
    refused = run("warn", "verify", str(tampered), "--public-key", hub_public, ok=False)
    assert refused.returncode == 2 and "altered or forged" in refused.stderr
    run("warn", "reply", str(html_file), "--key", str(tmp_path / "party.pem"), "--by", "Col. Nazarov",
        "--public-key", hub_public, "--out", str(tmp_path / "reply.json"))
    state = json.loads(run("warn", "ack", str(tmp_path / "reply.json"), "--json", "--db", db).stdout)["state"]
    assert state == "acknowledged"
    again = run("warn", "ack", str(tmp_path / "reply.json"), "--db", db, ok=False)
    assert "it was already acknowledged" in again.stderr
