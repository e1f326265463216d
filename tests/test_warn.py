"""Duty to warn, first part: a warning to a member walks draft → approved → delivered →
acknowledged; a waiver needs a reason code and a second person; each illegal step is refused with
its reason; the report is valid STIX; and only its addressee sees the delivered warning."""

from __future__ import annotations

import datetime as dt
from typing import Any

import httpx
import pytest
from stix2validator import ValidationOptions, validate_instance

from tearline import warn
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
    w = a_draft(store, "Government of Kazakhstan", outside=True)
    with pytest.raises(Conflict, match="two-person rule"):
        warn.move(store, w["id"], "waive", "analyst-1", "already-knows: their service told us")
    with pytest.raises(BadRequest, match="reason code"):
        warn.move(store, w["id"], "waive", "analyst-2", "we would rather not")
    done = warn.move(store, w["id"], "waive", "analyst-2", "sources-and-methods: the only source is a live asset")
    assert done["state"] == "waived" and done["history"][-1]["note"].startswith("sources-and-methods")
    with pytest.raises(Conflict, match="it was waived"):
        warn.move(store, w["id"], "approve", "analyst-3")


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
        assert steps[-4:] == ["warn draft", "warn approve", "warn deliver", "warn acknowledge"]
    finally:
        store.close()
