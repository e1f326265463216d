"""Events become valid STIX incidents shared in the compact, idempotently; the demo is seeded with them."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx
from stix2validator import ValidationOptions, validate_instance

from tearline import compact, events, write
from tearline.events import tostix
from tearline.keys import HubKeys
from tearline.store import Store
from tests.conftest import TAXII, free_port

DATA = Path(__file__).resolve().parent.parent / "tearline" / "data" / "events"


def test_events_become_valid_stix_linked_to_the_compacts_actor(tmp_path: Path, store: Store, keys: HubKeys,
                                                                demo_spec: compact.CompactSpec) -> None:
    compact.apply(store, demo_spec)
    db = tmp_path / "e.duckdb"
    events.ingest([DATA / "iskp-attacks" / "iskp_attacks.csv"], db)
    rows = tostix.actor_events(events.connect(db), "ISKP", "AFG")
    assert len(rows) == 112  # the curated list's Afghan attacks
    objs = tostix.bundle_objects(rows, demo_spec.actors[0])
    for obj in objs:
        result = validate_instance(obj, ValidationOptions(version="2.1"))
        assert result.is_valid, (obj["id"], [str(e) for e in result.errors])
    actor_id = compact.actor_object(demo_spec.actors[0])["id"]
    attributed = [o for o in objs if o.get("relationship_type") == "attributed-to"]
    assert len(attributed) == 112 and {o["target_ref"] for o in attributed} == {actor_id}
    kabul = next(o for o in objs if o["type"] == "location" and o.get("administrative_area") == "Kabul")
    assert kabul["country"] == "AF"

    intel = store.collection("isis-k", "intel")
    assert intel is not None
    with store.engine.begin() as conn:
        write.hub_write(store, conn, intel, objs, keys)
    held = store.version_count(intel.num)
    with store.engine.begin() as conn:
        write.hub_write(store, conn, intel, tostix.bundle_objects(rows, demo_spec.actors[0]), keys)
    assert store.version_count(intel.num) == held  # same ids, same versions: nothing new


def test_demo_serves_the_compact_seeded_with_real_events(tmp_path: Path) -> None:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "tearline", "demo", "--db", f"sqlite:///{tmp_path / 'demo.db'}",
                             "--port", str(port)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        token = None
        deadline = time.monotonic() + 90
        lines = []
        while time.monotonic() < deadline and token is None:
            line = proc.stderr.readline()  # type: ignore[union-attr]
            lines.append(line)
            if "│ state-a " in line:
                token = line.split("│")[3].strip()
        assert token, "".join(lines)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", auth=("state-a", token), headers={"Accept": TAXII}) as c:
            while time.monotonic() < deadline:
                try:
                    r = c.get("/taxii2/isis-k/collections/intel/objects/", params={"match[type]": "incident", "limit": "500"})
                    break
                except httpx.TransportError:
                    time.sleep(0.2)
            incidents = r.json()["objects"]
        assert len(incidents) >= 200
        assert any("Peshawar" in i["name"] for i in incidents)
        _the_printed_next_steps_work_when_pasted(proc, tmp_path)
    finally:
        proc.terminate()
        proc.wait(10)


def _the_printed_next_steps_work_when_pasted(proc: subprocess.Popen, where: Path) -> None:
    """Each line the demo prints under "Next", pasted as it is into a shell (with the export line first)."""
    lines: list[str] = []
    while True:
        line = proc.stderr.readline()  # type: ignore[union-attr]
        assert line, "the demo printed no next steps"
        if line.startswith("Next,"):
            break
    while not (line := proc.stderr.readline()).startswith("Tearline hub on"):  # type: ignore[union-attr]
        lines.append(line.strip())
    assert lines[0].startswith("export TEARLINE_DB=") and len(lines) >= 7
    for step in lines[1:]:
        if step.startswith("curl") and shutil.which("curl") is None:
            continue
        done = subprocess.run(["bash", "-c", f"{lines[0]} && {step}"], capture_output=True, text=True, cwd=where,
                              timeout=300)
        assert done.returncode == 0 and "Traceback" not in done.stderr, (step, done.stdout[-500:], done.stderr[-500:])
    warned = subprocess.run(["bash", "-c", f"{lines[0]} && {lines[2]} --json"], capture_output=True, text=True,
                            cwd=where, timeout=60)
    assert {w["state"] for w in json.loads(warned.stdout)} == {"delivered", "acknowledged"}


def test_an_event_with_no_place_is_placed_nowhere_rather_than_in_a_guessed_region(
        demo_spec: compact.CompactSpec) -> None:
    import datetime as dt

    row = {"source": "acled", "event_id": "X1", "event_date": dt.date(2024, 3, 22), "date_precision": "day",
           "country_iso3": None, "province": None, "place": None, "latitude": None, "longitude": None,
           "geo_precision": None, "event_type": "Attack", "fatalities_best": 3, "fatalities_low": None,
           "fatalities_high": None, "notes": ""}
    actor_id = compact.actor_object(demo_spec.actors[0])["id"]
    objs = tostix.event_objects(row, actor_id)
    assert [o["type"] for o in objs] == ["incident", "relationship"]
    assert objs[1]["relationship_type"] == "attributed-to"
    for obj in objs:
        assert validate_instance(obj, ValidationOptions(version="2.1")).is_valid
    placed = tostix.event_objects(row | {"country_iso3": "AFG"}, actor_id)
    assert [o["type"] for o in placed] == ["incident", "location", "relationship", "relationship"]
    assert placed[1]["country"] == "AF" and "region" not in placed[1]
