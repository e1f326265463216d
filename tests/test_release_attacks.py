"""What a hostile member tried against the one release path, and failed at once it was mended: each test
is an attack of the second review (numbered as in its report), replayed against the hub."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from tearline import keys, leak, visibility, warn
from tearline.store import Store
from tearline.store.schema import withheld
from tests.stixgen import ACTOR_ID
from tests.test_release_findings import AMBER, GREEN, RED, TS, Rev, objects_url, rel, rev, sdo, valid_for_oasis  # noqa: F401

LATER = "2024-06-01T10:00:00.000Z"


def _withheld_consistent(store: Store, api_root: str = "rev") -> tuple[set[Any], set[Any]]:
    coll = store.collection(api_root, "intel")
    assert coll is not None
    with store.engine.connect() as conn:
        trans = conn.begin()
        kept = set(conn.execute(select(withheld.c.member, withheld.c.added_us)))
        for m in store.members_of(conn, api_root):
            visibility.recompute(conn, coll.num, visibility.Reader.of(m), False)
        rebuilt = set(conn.execute(select(withheld.c.member, withheld.c.added_us)))
        trans.rollback()
    return kept, rebuilt


def test_1_nobody_adds_versions_to_another_members_object(rev: Rev) -> None:
    x = sdo("indicator", "green", description="the real relay")
    assert rev.post("alpha", [x, rel(x["id"], "indicates", ACTOR_ID)])["failure_count"] == 0
    forged = x | {"modified": LATER, "description": "forged", "revoked": True}
    (failure,) = rev.post("greeny", [forged])["failures"]
    assert "shared by another member" in failure["message"]
    for who in ("alpha", "ngo", "bravo"):
        assert rev.one(who, x["id"]) == (x if who == "alpha" else rev.one(who, x["id"]))
        assert rev.one(who, x["id"])["description"].replace(leak.NBSP, " ") == "the real relay"  # type: ignore[index]


def test_1_a_write_to_a_hidden_id_is_answered_as_fresh_and_leaves_the_hidden_object_alone(rev: Rev) -> None:
    hidden = sdo("malware", "amber", description="alpha's own")
    assert rev.post("alpha", [hidden, rel(ACTOR_ID, "uses", hidden["id"], "amber")])["failure_count"] == 0
    mine = hidden | {"modified": LATER, "description": "greeny's, under the same id", "object_marking_refs": [GREEN]}
    status = rev.post("greeny", [mine, rel(ACTOR_ID, "uses", hidden["id"])])
    assert status["failure_count"] == 0  # the same answer as if nothing held that id
    assert rev.one("greeny", hidden["id"]) == mine  # it reads what it wrote
    assert rev.one("alpha", hidden["id"])["description"] == "alpha's own"  # type: ignore[index]
    assert rev.one("ngo", hidden["id"]) is None  # and nobody else reads greeny's


def test_2_a_version_of_ones_own_unlocks_nothing(rev: Rev) -> None:
    x = sdo("malware", "amber")
    link = rel(x["id"], "related-to", ACTOR_ID)
    report = sdo("report", "green", object_refs=[ACTOR_ID, x["id"]])
    assert rev.post("alpha", [x, link, report])["failure_count"] == 0
    before = (link["id"] in rev.ids("greeny"), rev.one("greeny", report["id"])["object_refs"])  # type: ignore[index]
    assert rev.post("greeny", [sdo("malware", "green", x_tearline_about_ref=ACTOR_ID) | {"id": x["id"]}])[
        "failure_count"] == 0
    after = (link["id"] in rev.ids("greeny"), rev.one("greeny", report["id"])["object_refs"])  # type: ignore[index]
    assert before == after == (False, [ACTOR_ID])


def test_2_guessing_an_authors_id_confirms_nothing(rev: Rev) -> None:
    me = sdo("identity", "green", name="Ministry A", identity_class="organization", x_tearline_about_ref=ACTOR_ID)
    ind = sdo("indicator", "green", created_by_ref=me["id"], x_tearline_about_ref=ACTOR_ID)
    assert rev.post("alpha", [me, ind])["failure_count"] == 0
    shown = rev.one("bravo", ind["id"])["created_by_ref"]  # type: ignore[index]
    for guess in (me["id"], f"identity--{uuid.uuid4()}"):
        mine = sdo("identity", "green", name="Agency B", identity_class="organization", x_tearline_about_ref=ACTOR_ID)
        assert rev.post("bravo", [mine | {"id": guess}])["failure_count"] == 0
        assert rev.one("bravo", ind["id"])["created_by_ref"] == shown != me["id"]  # type: ignore[index]
    assert rev.one("charlie", me["id"]) == me  # alpha's identity untouched


def test_3_a_hidden_reference_never_admits_a_guess(rev: Rev) -> None:
    secret = {"type": "domain-name", "spec_version": "2.1", "id": f"domain-name--{uuid.uuid4()}",
              "value": "c2.secret.example", "object_marking_refs": [AMBER]}
    report = sdo("report", "green", object_refs=[ACTOR_ID, secret["id"]])
    assert rev.post("alpha", [secret, report])["failure_count"] == 0
    right = {k: v for k, v in secret.items() if k != "object_marking_refs"} | {"object_marking_refs": [GREEN]}
    wrong = right | {"id": f"domain-name--{uuid.uuid4()}"}
    answers = [rev.post("greeny", [guess])["failures"][0]["message"].replace(guess["id"], "X") for guess in (right, wrong)]
    assert answers[0] == answers[1] and "not connected" in answers[0]


def test_4_a_red_marking_definition_reaches_only_its_recipients(rev: Rev) -> None:
    statement = {"type": "marking-definition", "spec_version": "2.1", "id": f"marking-definition--{uuid.uuid4()}",
                 "created": TS, "name": "handling", "extensions": {
                     "extension-definition--1f611280-fbe1-48e8-92ab-ff47ce02d5b5": {
                         "extension_type": "property-extension", "statement": "from agent BLUEBIRD"}},
                 "object_marking_refs": [RED], "x_tearline_recipients": ["bravo"]}
    assert rev.post("alpha", [statement])["success_count"] == 1
    assert rev.one("bravo", statement["id"]) is not None
    for who in ("charlie", "ngo", "greeny"):
        assert rev.one(who, statement["id"]) is None and "BLUEBIRD" not in str(rev.ids(who))


def test_5_what_members_may_not_receive_stays_exact_through_cycles_and_new_ends(rev: Rev, store: Store) -> None:
    # an end that arrives later and a cycle of reports (both found drifting from a rebuild)
    f0 = sdo("report", "amber", name="F v0")
    s = sdo("report", "green", object_refs=[f0["id"]], name="S")
    assert rev.post("alpha", [f0])["failure_count"] == 0 and rev.post("alpha", [s])["failure_count"] == 0
    f1 = f0 | {"modified": LATER, "object_refs": [s["id"]], "object_marking_refs": [GREEN], "name": "F v1"}
    assert rev.post("alpha", [f1])["failure_count"] == 0
    assert {f0["id"], s["id"]} <= rev.ids("greeny")  # each refers to the other, both in sight: both released
    i = sdo("identity", "green", name="Agency C", identity_class="organization", x_tearline_about_ref=ACTOR_ID)
    r = sdo("report", "green", object_refs=[i["id"]])
    assert rev.post("alpha", [i, r])["failure_count"] == 0
    t = rel(r["id"], "related-to", ACTOR_ID) | {"created_by_ref": i["id"]}
    assert rev.post("alpha", [t])["failure_count"] == 0
    for who in rev.c:
        copy = rev.one(who, t["id"])
        assert copy is None or valid_for_oasis(copy) == [], (who, copy)
    kept, rebuilt = _withheld_consistent(store)
    assert kept == rebuilt


def test_6_a_member_that_hides_authors_never_sees_an_identity_it_could_link(rev: Rev) -> None:
    i = sdo("identity", "green", name="Ministry D", identity_class="organization", x_tearline_about_ref=ACTOR_ID,
            created="2023-05-06T07:08:09.123Z", modified="2023-05-06T07:08:09.123Z")
    assert rev.post("alpha", [i])["failure_count"] == 0
    before = {o for o in rev.ids("bravo") if o.startswith("identity--")}
    assert i["id"] not in before  # not an author yet, and already only its stand-in
    assert rev.post("alpha", [sdo("indicator", "green", created_by_ref=i["id"], x_tearline_about_ref=ACTOR_ID)])[
        "failure_count"] == 0
    after = {o for o in rev.ids("bravo") if o.startswith("identity--")}
    assert before == after  # naming it as an author changes nothing it can see


def _draft(rev: Rev, who: str, to: str, report: str, outside: bool = False) -> httpx.Response:
    api = httpx.Client(base_url=rev.hub.url + "/tearline/warnings", auth=rev.person(who))
    window = [dt.date.today().isoformat(), (dt.date.today() + dt.timedelta(days=3)).isoformat()]
    r = api.post("/", json={"to": to, "target": {"country": "AFG"}, "window": window,
                            "confidence": 40, "ask": "take care", "from_report": report, "outside": outside})
    api.close()
    return r


def test_7_drafting_tells_nothing_of_who_is_a_member_or_what_it_may_read(rev: Rev) -> None:
    amber = sdo("report", "amber", description="a plot against the consulate")
    assert rev.post("alpha", [amber])["failure_count"] == 0
    answers = {to: _draft(rev, "alpha", to, amber["id"]).status_code for to in ("ngo", "bravo", "no-such-member", "zz")}
    assert set(answers.values()) == {201}, answers
    outside = {to: _draft(rev, "alpha", to, amber["id"], outside=True).status_code
               for to in ("Ministry of Interior of Y", "Nobody registered")}
    assert set(outside.values()) == {201}, outside


def test_7_an_addressee_gets_only_the_part_it_may_read(rev: Rev, store: Store) -> None:
    amber = sdo("report", "amber", description="a plot against the consulate")
    assert rev.post("alpha", [amber])["failure_count"] == 0
    wid = _draft(rev, "alpha", "ngo", amber["id"]).json()["id"]
    warn.move(store, wid, "approve", "alpha:other")
    warn.move(store, wid, "deliver", "alpha:analyst")
    api = httpx.Client(base_url=rev.hub.url + "/tearline/warnings", auth=("ngo", rev.tokens["ngo"]))
    seen = api.get(f"/{wid}/").json()
    api.close()
    assert "description" not in seen["report"] and "consulate" not in str(seen)  # AMBER is above ngo's line
    assert valid_for_oasis(seen["report"]) == []


def test_8_a_delivered_warning_does_not_name_its_author(rev: Rev, store: Store) -> None:
    w = warn.draft(store, "rev", "alpha:ann.smith", "greeny", False, {"country": "AFG"},
                   (dt.date.today().isoformat(), (dt.date.today() + dt.timedelta(days=3)).isoformat()), 50,
                   "take care", "Something is planned.")
    warn.move(store, w["id"], "approve", "alpha:bob")
    warn.move(store, w["id"], "deliver", "alpha:ann.smith", "sent by Ann on the secure line")
    api = httpx.Client(base_url=rev.hub.url + "/tearline/warnings", auth=("greeny", rev.tokens["greeny"]))
    text = api.get(f"/{w['id']}/").text
    api.close()
    assert "ann.smith" not in text and "alpha" not in text and "secure line" not in text


def test_9_a_draft_from_a_report_carries_its_drafters_fingerprint(rev: Rev) -> None:
    report = sdo("report", "green", description=" ".join(
        ["A", "cell", "in", "Kunar", "is", "preparing", "attacks", "on", "aid", "convoys", "on", "the", "road", "to", "Asadabad", "next", "week,", "and", "a", "second", "cell", "is", "watching", "the", "offices", "of", "two", "organisations", "in", "Jalalabad", "for", "the", "same", "purpose."] * 2))
    assert rev.post("alpha", [report])["failure_count"] == 0
    made = _draft(rev, "greeny", "greeny", report["id"])
    assert made.status_code == 201
    text = made.json()["report"]["description"]
    ranked, verdict = leak.trace(keys.load(rev.hub.settings).leak, [text], [("rev", m) for m in rev.c])
    assert ranked[0].member == "greeny" and "released to greeny" in verdict


def test_10_trying_versions_of_an_object_reveals_no_timestamp(rev: Rev) -> None:
    x = sdo("indicator", "green", x_tearline_about_ref=ACTOR_ID)
    hidden_version = x | {"modified": "2024-05-01T10:00:00.789Z", "object_marking_refs": [AMBER]}
    assert rev.post("alpha", [x, hidden_version])["failure_count"] == 0
    tries = [x | {"modified": f"2024-05-01T10:00:00.7{n:02d}Z"} for n in range(80, 95)]
    status = rev.post("greeny", tries)
    assert status["success_count"] == 0  # it sees the object, so it may add none, whatever the timestamp
    assert {f["message"].replace(x["id"], "X") for f in status["failures"]} == {
        "X was shared by another member, and only its sharer adds versions to it, revokes or deletes it; "
        "share yours under an id of your own"}


def test_11_no_cut_leaves_a_reader_an_invalid_copy(rev: Rev) -> None:
    sco = {"type": "file", "spec_version": "2.1", "id": f"file--{uuid.uuid4()}", "name": "a.exe",
           "object_marking_refs": [AMBER]}
    analysis = sdo("malware-analysis", "green", product="sandbox", analysis_sco_refs=[sco["id"]],
                   x_tearline_about_ref=ACTOR_ID)
    assert rev.post("alpha", [sco, analysis])["failure_count"] == 0
    assert rev.one("ngo", analysis["id"]) is None  # its one observable is out of ngo's sight: withheld whole
    assert valid_for_oasis(rev.one("charlie", analysis["id"])) == []  # type: ignore[arg-type]
    ip = {"type": "ipv4-addr", "spec_version": "2.1", "id": f"ipv4-addr--{uuid.uuid4()}", "value": "203.0.113.4"}
    traffic = {"type": "network-traffic", "spec_version": "2.1", "id": f"network-traffic--{uuid.uuid4()}",
               "protocols": ["tcp"], "dst_ref": ip["id"],
               "granular_markings": [{"marking_ref": AMBER, "selectors": ["protocols.[0]"]}]}
    ext = f"extension-definition--{uuid.uuid4()}"
    extended = sdo("indicator", "green", x_tearline_about_ref=ACTOR_ID,
                   extensions={ext: {"extension_type": "property-extension", "grade": "A"}},
                   granular_markings=[{"marking_ref": AMBER, "selectors": [f"extensions.{ext}"]}])
    status = rev.post("alpha", [ip, traffic, extended])
    failures = {f["id"]: f["message"] for f in status["failures"]}
    for obj in (traffic, extended):
        assert "would receive an invalid copy" in failures[obj["id"]] or "cannot" in failures[obj["id"]]


@pytest.mark.parametrize("field", ["by", "note"])
def test_12_warning_steps_with_nul_or_overlong_names_are_refused_not_500(rev: Rev, field: str) -> None:
    api = httpx.Client(base_url=rev.hub.url + "/tearline/warnings", auth=rev.person("alpha"))
    window = [dt.date.today().isoformat(), (dt.date.today() + dt.timedelta(days=3)).isoformat()]
    made = api.post("/", json={"to": "greeny", "target": {"country": "AFG"}, "window": window,
                               "confidence": 40, "ask": "x", "text": "something"}).json()
    for bad in ("nul\x00here", "x" * (200 if field == "by" else 5000)):
        body = {"by": "b", "note": "n"} | {field: bad}
        r = api.post(f"/{made['id']}/approve/", json=body)
        assert r.status_code == 400, r.text
    for body in ({"from_report": ["a"]}, {"from_report": {"a": 1}}, {"target": {"country": "AFG", "city": 7}},
                 {"to": "x" * 150}):
        r = api.post("/", json={"to": "greeny", "target": {"country": "AFG"}, "window": window,
                                "confidence": 40, "ask": "x", "text": "t"} | body)
        assert r.status_code == 400, (body, r.text)
    api.close()


def test_12_long_timestamps_and_deep_keys_are_kept_or_refused_never_500(rev: Rev) -> None:
    long_stamp = "2024-03-01T10:00:00." + "1" * 40 + "Z"
    precise = sdo("indicator", "green", x_tearline_about_ref=ACTOR_ID, modified=long_stamp)
    deep = sdo("indicator", "green", x_tearline_about_ref=ACTOR_ID,
               x_data={"k" * 200: {"m" * 120 + "_ref": ACTOR_ID}})
    nul = sdo("indicator", "green", x_tearline_about_ref=ACTOR_ID, x_data={"a\x00_ref": ACTOR_ID})
    status = rev.post("alpha", [precise, deep, nul])
    assert {f["id"] for f in status["failures"]} == {nul["id"]}
    assert rev.one("alpha", precise["id"]) == precise and rev.one("alpha", deep["id"]) == deep
