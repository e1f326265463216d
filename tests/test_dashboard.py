"""The dashboard in a real browser (Playwright driving Debian's chromium): each demo member signs in
and opens every page, clicks through the graph to an object, acknowledges a warning; the operator
opens the audit and guard pages; and no page shows a member anything TAXII hides from it. Each page's
screenshot is saved under artifacts/dashboard/."""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import shutil
from collections import Counter
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest

from tearline import compact, events, markings, warn, write
from tearline import keys as hub_keys
from tearline.config import Settings
from tearline.events import tostix
from tearline.forecast import current
from tearline.store import Store
from tests.conftest import TAXII, Hub, free_port
from tests.stixgen import ACTOR_ID, indicator

ROOT = Path(__file__).resolve().parent.parent
SHOTS = ROOT / "artifacts" / "dashboard"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ADMIN = "operator-token-for-tests"
PAGES = {"Overview": "/ui/", "Timeline": "/ui/timeline/", "Map": "/ui/map/", "Graph": "/ui/graph/",
         "Warnings": "/ui/warnings/", "Forecasts": "/ui/forecasts/"}
SOON = (dt.date.today() + dt.timedelta(days=10)).isoformat()

if not Path(CHROMIUM).exists():
    if os.environ.get("CI"):
        raise RuntimeError("Debian's chromium is missing: scripts/test installs it")
    pytest.skip("Debian's chromium is not installed (scripts/test installs it)", allow_module_level=True)


@dataclasses.dataclass
class Demo:
    url: str
    tokens: dict[str, str]
    store: Store
    amber_id: str  # shared by state-a at TLP:AMBER: state-b reads it, ngo-c (GREEN) does not
    red_id: str  # TLP:RED, shared by state-b for itself alone
    warning: str  # delivered to state-b


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Any:
    tmp = tmp_path_factory.mktemp("dashboard")
    store = Store(f"sqlite:///{tmp / 'hub.db'}")
    store.migrate()
    text = (ROOT / "tearline" / "data" / "demo-compact.yaml").read_text()
    spec = compact.parse(text)
    fast = tuple((kind, 1_000_000) for kind, _ in spec.members[0].rate_limits)
    spec = dataclasses.replace(spec, members=tuple(dataclasses.replace(m, rate_limits=fast) for m in spec.members))
    tokens = compact.apply(store, spec)
    # real events: the curated ISKP list, shared in the compact as the demo does
    events_db = tmp / "events.duckdb"
    events.ingest([ROOT / "tearline" / "data" / "events" / "iskp-attacks" / "iskp_attacks.csv"], events_db)
    con = events.connect(events_db)
    objs = tostix.bundle_objects(tostix.actor_events(con, "ISKP"), spec.actors[0])
    # and a forecast run, as `tearline forecast run` stores it
    panel = SimpleNamespace(actor="Islamic State Khorasan Province", source="iskp-curated", level="province")
    rows = [{"country": "AFG", "province": p, "origin": "2024-05", "target": "2024-06", "horizon": 1,
             "probability": pr, "events_mean": pr * 2, "events_q90": 3.0, "fatalities_mean": pr * 9, "fatalities_q90": 20.0}
            for p, pr in (("Kabul", 0.62), ("Nangarhar", 0.41), ("Kunar", 0.08))]
    current.record(con, panel, "boosting", rows, threshold=0.5)  # type: ignore[arg-type]
    con.close()
    intel = store.collection("isis-k", "intel")
    assert intel is not None
    settings = Settings(db=store.url, port=free_port(), audit_key=str(tmp / "audit.key"), leak_key=str(tmp / "leak.key"),
                        admin_token=ADMIN, events_db=str(events_db), warn_outbox=str(tmp / "outbox"))
    with store.engine.begin() as conn:  # with the hub's own keys: its pseudonyms are the ones it will serve
        write.hub_write(store, conn, intel, objs, hub_keys.load(settings))
    amber = indicator(9001, name="AMBER-ONLY relay domain", object_marking_refs=[markings.TLP2["amber"][0]])
    red = {"type": "report", "spec_version": "2.1", "id": "report--5d1c0c53-3a1e-4a0e-9c55-6f0a3b2f7e01",
           "created": "2024-06-01T00:00:00.000Z", "modified": "2024-06-01T00:00:00.000Z",
           "published": "2024-06-01T00:00:00.000Z", "name": "RED-ONLY source report", "object_refs": [ACTOR_ID],
           "object_marking_refs": [markings.TLP2["red"][0]], "x_tearline_recipients": ["state-b"]}
    with Hub(store, settings) as hub:
        for author, obj in (("state-a", amber), ("state-b", red)):
            with httpx.Client(base_url=hub.url, auth=(author, tokens[author]),
                              headers={"Accept": TAXII, "Content-Type": TAXII}) as c:
                posted = c.post("/taxii2/isis-k/collections/intel/objects/", json={"objects": [obj]}).json()
                assert posted["success_count"] == 1, posted
        w = warn.draft(store, "isis-k", "analyst-1", "state-b", False, {"country": "PAK", "city": "Peshawar"},
                       (dt.date.today().isoformat(), SOON), 70, "raise security at Friday prayers",
                       "An attack on a mosque in Peshawar during Friday prayers is being prepared.")
        warn.move(store, w["id"], "approve", "analyst-2")
        warn.move(store, w["id"], "deliver", "analyst-1")
        yield Demo(hub.url, tokens, store, amber["id"], red["id"], w["id"])
    store.close()


@pytest.fixture(scope="module")
def browser() -> Any:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        # the flags keep chromium from calling home on a machine with no internet
        b = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
            "--disable-component-update", "--disable-sync"])
        yield b
        b.close()


def signed_in(browser: Any, demo: Demo, member: str, width: int = 1280, height: int = 800) -> Any:
    context = browser.new_context(viewport={"width": width, "height": height})
    page = context.new_page()
    outside: list[str] = []
    page.on("request", lambda r: outside.append(r.url) if not r.url.startswith(demo.url) else None)
    page.outside = outside
    page.goto(demo.url + "/")
    page.get_by_label("Member name").fill(member)
    page.get_by_label("Token", exact=True).fill(demo.tokens[member])
    page.get_by_role("button", name="Sign in", exact=True).click()
    page.wait_for_url(demo.url + "/ui/")
    return page


README_SHOTS = ROOT / "docs" / "screenshots"
# the pages the README shows, as the first screen of each (TEARLINE_README_SHOTS=1 refreshes them)
FOR_README = {"state-b-overview", "state-b-object-badges", "state-a-timeline", "state-a-map", "state-a-graph",
              "state-b-warnings-delivered", "state-a-forecasts-run", "operator-audit", "ngo-c-object-badges"}


def shot(page: Any, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)
    if os.environ.get("TEARLINE_README_SHOTS") and name in FOR_README:
        README_SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(README_SHOTS / f"{name}.png"), full_page=False)


def taxii_view(demo: Demo, member: str) -> dict[str, dict[str, Any]]:
    """Everything TAXII releases to the member in the intel collection, latest versions."""
    seen: dict[str, dict[str, Any]] = {}
    params: dict[str, str] = {"limit": "1000"}
    with httpx.Client(base_url=demo.url, auth=(member, demo.tokens[member]), headers={"Accept": TAXII}) as c:
        while True:
            body = c.get("/taxii2/isis-k/collections/intel/objects/", params=params).json()
            seen |= {o["id"]: o for o in body.get("objects", [])}
            if not body["more"]:
                return seen
            params["next"] = body["next"]


@pytest.mark.parametrize("member", ["state-a", "state-b", "ngo-c"])
def test_each_member_signs_in_and_opens_every_page(browser: Any, demo: Demo, member: str) -> None:
    page = signed_in(browser, demo, member)
    for text, path in PAGES.items():
        page.get_by_role("navigation").get_by_role("link", name=text).click()
        page.wait_for_url(demo.url + path)
        assert page.locator("h1").count() == 1 and page.get_by_role("alert").count() == 0, (member, text)
        assert page.get_by_role("link", name=text).get_attribute("aria-current") == "page"
        shot(page, f"{member}-{text.lower()}")
    assert page.outside == []  # no request left the hub: no CDN, no font, no tile server
    page.context.close()


def test_pages_show_real_data(browser: Any, demo: Demo) -> None:
    page = signed_in(browser, demo, "state-a")
    page.goto(demo.url + "/ui/timeline/?country=AFG")
    assert page.locator("figure svg[role=img]").count() == 1 and "Afghanistan" in page.inner_text("figcaption")
    page.goto(demo.url + "/ui/map/")
    names = page.locator("svg.map text.country").all_text_contents()
    assert {"AFGHANISTAN", "PAKISTAN", "IRAN"} <= set(names)  # countries named on the map
    assert "Incidents:" in (page.locator("svg.map g.legend").text_content() or "")  # its shading explained
    kabul = page.locator("svg.map a[aria-label^='Kabul, Afghanistan']")
    assert kabul.count() == 1 and " 0 incidents" not in kabul.get_attribute("aria-label")
    kabul.focus()  # a province is a link a keyboard reaches
    page.keyboard.press("Enter")
    page.wait_for_url("**province=AF-KAB*")
    assert page.locator("tr.chosen td").first.inner_text() == "Kabul"
    page.goto(demo.url + "/ui/forecasts/")
    assert "Kabul" in page.inner_text("table") and "0.62" in page.inner_text("table")
    shot(page, "state-a-forecasts-run")
    page.context.close()


def test_the_forecasts_page_says_when_its_data_is_stale(browser: Any, demo: Demo) -> None:
    # the demo's run saw data to 2024-05: months before any day this test runs on
    page = signed_in(browser, demo, "state-a")
    page.goto(demo.url + "/ui/forecasts/")
    stale = page.locator("p.stale[role=status]")
    assert stale.count() == 1 and page.get_by_role("alert").count() == 0
    text = " ".join(stale.inner_text().split())
    today = dt.datetime.now(dt.UTC).date()  # the hub's today
    months = (today.year - 2024) * 12 + today.month - 5
    assert text.startswith("Stale data.") and f"The data ends in 2024-05, {months} months before today" in text
    assert page.locator("strong.data-end").inner_text() == "2024-05" and "2024-06" in page.inner_text("main")
    assert "(from stale data)" in page.inner_text("main")  # each open alert, too
    page.context.close()


def test_a_member_never_sees_what_taxii_hides(browser: Any, demo: Demo) -> None:
    for member in ("state-a", "state-b", "ngo-c"):
        allowed = taxii_view(demo, member)
        page = signed_in(browser, demo, member)
        # the overview's counts are TAXII's counts, type by type
        rows = page.locator("section[aria-labelledby=counts] tbody tr")
        shown = {rows.nth(i).locator("td").nth(0).inner_text(): int(rows.nth(i).locator("td").nth(1).inner_text())
                 for i in range(rows.count())}
        assert shown == dict(Counter(o["type"] for o in allowed.values() if o["type"] != "marking-definition")), member
        # every object the graph and the overview link to is one TAXII releases to this member
        for path in ("/ui/", "/ui/graph/"):
            page.goto(demo.url + path)
            hrefs = page.eval_on_selector_all("a[href^='/ui/objects/']", "els => els.map(e => e.getAttribute('href'))")
            assert hrefs and {h.split("/")[3] for h in hrefs} <= set(allowed), (member, path)
        # an object it may not see answers exactly like one that does not exist
        for hidden in (demo.amber_id, demo.red_id, "indicator--00000000-0000-4000-8000-000000000000"):
            if hidden in allowed:
                continue
            response = page.goto(demo.url + f"/ui/objects/{hidden}/")
            assert response.status == 404 and "AMBER-ONLY" not in page.content() and "RED-ONLY" not in page.content()
        page.context.close()
    assert demo.amber_id not in taxii_view(demo, "ngo-c") and demo.red_id not in taxii_view(demo, "state-a")


def test_click_through_the_graph_to_an_object_and_on(browser: Any, demo: Demo) -> None:
    page = signed_in(browser, demo, "state-b")
    page.goto(demo.url + "/ui/graph/")
    page.locator("svg.graph a[aria-label^='threat-actor'] circle").first.click()
    page.wait_for_url("**/ui/objects/threat-actor--*/")
    assert page.locator("h1").inner_text() == "Islamic State Khorasan Province"
    shot(page, "state-b-object-actor")
    page.locator("section[aria-labelledby=in] a.rel", has_text="attributed-to").first.click()
    page.wait_for_url("**/ui/objects/relationship--*/")
    assert "attributed-to" in page.locator("h1").inner_text()
    page.go_back()
    page.locator("section[aria-labelledby=in] a", has_text="incident:").first.click()
    page.wait_for_url("**/ui/objects/incident--*/")
    assert "killed" in page.locator("p.description").inner_text()  # the event's own text, from the dataset
    shot(page, "state-b-object-incident")
    page.context.close()


def test_the_addressee_acknowledges_a_warning_and_nobody_else_sees_it(browser: Any, demo: Demo) -> None:
    for member in ("state-a", "ngo-c"):
        page = signed_in(browser, demo, member)
        page.goto(demo.url + "/ui/warnings/")
        assert "Peshawar" not in page.content() and page.get_by_role("button", name="Acknowledge").count() == 0
        page.context.close()
    page = signed_in(browser, demo, "state-b")
    page.goto(demo.url + "/ui/warnings/")
    # the member's own sign-in reads it; a person of the member, signed in as such, acknowledges it
    assert page.get_by_role("button", name="Acknowledge").count() == 0
    page.context.close()
    page = signed_in(browser, demo, "state-b/bilal")
    page.goto(demo.url + "/ui/warnings/")
    # its copy, like every copy it receives, carries its fingerprint (no-break spaces between some words)
    assert "mosque in Peshawar" in page.inner_text("main").replace("\xa0", " ")
    shot(page, "state-b-warnings-delivered")
    page.get_by_role("button", name="Acknowledge as bilal").click()
    page.wait_for_url("**/ui/warnings/?done=*")
    assert "acknowledged" in page.get_by_role("status").inner_text()
    shot(page, "state-b-warnings-acknowledged")
    page.context.close()
    done = warn.show(demo.store, demo.warning)
    assert done["state"] == "acknowledged" and "bilal" in done["history"][-1]["note"]


def test_the_operator_sees_the_audit_trail_and_guard_alerts_and_members_do_not(browser: Any, demo: Demo) -> None:
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    page.goto(demo.url + "/")
    page.get_by_label("Operator token").fill(ADMIN)
    page.get_by_role("button", name="Sign in as operator").click()
    page.wait_for_url("**/ui/operator/audit/")
    assert "Intact" in page.get_by_role("status").inner_text()
    assert "/taxii2/isis-k/collections/intel/objects/" in page.inner_text("table")
    shot(page, "operator-audit")
    page.get_by_role("link", name="Guard alerts").click()
    page.wait_for_url("**/ui/operator/alerts/")
    shot(page, "operator-alerts")
    # the operator pages are not for members, and member pages are not for the operator: each is sent
    # back to its own start page
    page.goto(demo.url + "/ui/")
    assert page.url == demo.url + "/ui/operator/audit/"
    context.close()
    member = signed_in(browser, demo, "state-a")
    member.goto(demo.url + "/ui/operator/audit/")
    assert member.url == demo.url + "/ui/" and member.locator("h1").inner_text() != "Audit trail"
    member.context.close()


def test_narrow_screen_and_keyboard_only(browser: Any, demo: Demo) -> None:
    context = browser.new_context(viewport={"width": 375, "height": 740})
    page = context.new_page()
    page.goto(demo.url + "/")
    page.keyboard.press("Tab")  # the skip link comes first
    page.keyboard.press("Tab")
    page.keyboard.type("ngo-c")
    page.keyboard.press("Tab")
    page.keyboard.type(demo.tokens["ngo-c"])
    page.keyboard.press("Enter")
    page.wait_for_url(demo.url + "/ui/")
    assert page.evaluate("document.documentElement.scrollWidth") <= 375 + 1  # nothing spills sideways
    shot(page, "ngo-c-overview-narrow")
    page.goto(demo.url + "/ui/map/")
    shot(page, "ngo-c-map-narrow")
    context.close()


def test_bad_input_gets_a_clear_page_never_a_500(demo: Demo) -> None:
    with httpx.Client(base_url=demo.url, follow_redirects=False) as c:
        wrong = c.post("/signin/", data={"member": "state-a", "token": "nope"})
        assert wrong.status_code == 401 and "unknown member or wrong token" in wrong.text
        assert c.post("/signin/", content=b"\xff\xfe" * 10).status_code == 401
        assert c.get("/ui/").status_code == 303  # signed out: to the sign-in page
        c.post("/signin/", data={"member": "state-b", "token": demo.tokens["state-b"]})
        assert c.get("/ui/timeline/", params={"country": "XXX"}).status_code == 404
        assert c.get("/ui/map/", params={"dataset": "nonsense"}).status_code == 404
        assert c.get("/ui/objects/not-an-id/").status_code == 404
        forged = c.post(f"/ui/warnings/{demo.warning}/acknowledge/", data={"by": "x", "csrf": "guess"})
        assert forged.status_code == 403 and "expired" in forged.text
        page = c.get("/ui/")
        assert page.headers["content-security-policy"].startswith("default-src 'self'")


def test_every_object_wears_the_tlp_badge_of_the_copy_taxii_gives_that_member(browser: Any, demo: Demo) -> None:
    """The overview's latest objects, an object page and the objects it links to: each badge says the level of
    the member's own TAXII copy (the compact's default where the copy names none), for every member."""
    def level(obj: dict[str, Any]) -> str:
        return f"TLP:{(markings.tlp_of(obj) or 'amber').upper()}"

    for member in ("state-a", "state-b", "ngo-c"):
        allowed = taxii_view(demo, member)
        page = signed_in(browser, demo, member)
        rows = page.locator("section[aria-labelledby=latest] tbody tr")
        assert rows.count() > 0
        for i in range(rows.count()):
            href = rows.nth(i).locator("a").get_attribute("href")
            assert rows.nth(i).locator(".tlp").inner_text() == level(allowed[href.split("/")[3]]), (member, href)
        target = demo.amber_id if demo.amber_id in allowed else ACTOR_ID
        page.goto(demo.url + f"/ui/objects/{target}/")
        assert page.locator("main > p .tlp").first.inner_text() == level(allowed[target])
        for item in page.locator("section.card li").all():
            href = item.locator("a").first.get_attribute("href")
            linked = href.split("/")[3]
            if linked.startswith("marking-definition--"):  # a marking is not marked
                assert item.locator(".tlp").count() == 0
                continue
            assert item.locator(".tlp").text_content() == level(allowed[linked]), (member, href)  # folded ones too
        shot(page, f"{member}-object-badges")
        page.context.close()


def test_search_finds_only_what_the_member_may_read(browser: Any, demo: Demo) -> None:
    """Search from the header, as each member: the AMBER-only and RED-only objects are found by those TAXII gives
    them to, and by nobody else; every result is one TAXII releases to the member."""
    for member in ("ngo-c", "state-b", "state-a"):
        allowed = taxii_view(demo, member)
        page = signed_in(browser, demo, member)
        for query, target in (("AMBER-ONLY relay", demo.amber_id), ("RED-ONLY source", demo.red_id)):
            page.get_by_role("searchbox").fill(query)
            page.get_by_role("searchbox").press("Enter")
            page.wait_for_url("**/ui/search/?q=*")
            hrefs = page.eval_on_selector_all("main a[href^='/ui/objects/']", "els => els.map(e => e.getAttribute('href'))")
            ids = {h.split("/")[3] for h in hrefs}
            assert ids <= set(allowed) and (target in ids) == (target in allowed), (member, query, ids)
        shot(page, f"{member}-search")
        page.context.close()
    assert demo.amber_id not in taxii_view(demo, "ngo-c") and demo.red_id in taxii_view(demo, "state-b")
