"""The outbound gate: TLP ceilings, AMBER+STRICT, TLP:RED recipients and expiry, on every read path;
an object a member may not see answers exactly like one that does not exist."""

from __future__ import annotations

import datetime as dt
import uuid

import httpx
import pytest

from tearline import compact, markings
from tearline.config import Settings
from tearline.store import Store
from tests.conftest import TAXII, Hub, client, free_port
from tests.stixgen import ACTOR_ID, indicator

POST = {"Content-Type": TAXII}
OBJECTS = "/taxii2/{root}/collections/intel/objects/"

COMPACT = """
name: gate
scope:
  actors: [{{name: Islamic State Khorasan Province, aliases: [ISKP]}}]
  hops: 2
expires: {expires}
grace_days: 10
members:
  - {{name: alpha, write: true, tlp_max: red}}
  - {{name: bravo, write: true, tlp_max: red}}
  - {{name: charlie, write: true, tlp_max: amber}}
  - {{name: ngo, write: false, tlp_max: green}}
"""


def marked(level: str, **extra: object) -> dict:
    obj = indicator(uuid.uuid4().int % 10**9, object_marking_refs=[markings.TLP2[level][0]], **extra)
    obj["id"] = f"indicator--{uuid.uuid4()}"
    return obj


@pytest.fixture
def gate(store: Store) -> dict[str, str]:
    expires = (dt.date.today() + dt.timedelta(days=30)).isoformat()
    return compact.apply(store, compact.parse(COMPACT.format(expires=expires)))


@pytest.fixture
def clients(store: Store, gate: dict[str, str]):  # type: ignore[no-untyped-def]
    with Hub(store, Settings(db=store.url, port=free_port())) as hub:
        made = {name: client(hub, name, token) for name, token in gate.items()}
        yield made
        for c in made.values():
            c.close()


def ids(c: httpx.Client, path: str = "objects", **params: str) -> set[str]:
    found: set[str] = set()
    query = dict(params, limit="3")
    while True:
        body = c.get(f"/taxii2/gate/collections/intel/{path}/", params=query).json()
        found |= {o["id"] for o in body.get("objects", [])}
        if not body["more"]:
            return found
        query["next"] = body["next"]


def test_each_member_reads_up_to_its_ceiling_on_every_path(clients) -> None:  # type: ignore[no-untyped-def]
    alpha, ngo, charlie = clients["alpha"], clients["ngo"], clients["charlie"]
    objs = {level: marked(level) for level in ("clear", "green", "amber")}
    assert alpha.post(OBJECTS.format(root="gate"), json={"objects": list(objs.values())}, headers=POST).json()[
        "success_count"] == 3
    for path in ("objects", "manifest"):
        seen = ids(ngo, path, **{"match[type]": "indicator"})
        assert seen == {objs["clear"]["id"], objs["green"]["id"]}
        assert ids(charlie, path, **{"match[type]": "indicator"}) == {o["id"] for o in objs.values()}
    hidden = objs["amber"]["id"]
    never = f"indicator--{uuid.uuid4()}"
    for suffix in ("", "versions/"):
        a = ngo.get(f"{OBJECTS.format(root='gate')}{hidden}/{suffix}")
        b = ngo.get(f"{OBJECTS.format(root='gate')}{never}/{suffix}")
        assert a.status_code == b.status_code == 404
        assert a.json()["description"].replace(hidden, "X") == b.json()["description"].replace(never, "X")


def test_amber_strict_stays_with_its_author(clients) -> None:  # type: ignore[no-untyped-def]
    strict = marked("amber+strict")
    assert clients["charlie"].post(OBJECTS.format(root="gate"), json={"objects": [strict]}, headers=POST).json()[
        "success_count"] == 1
    assert strict["id"] in ids(clients["charlie"])
    for other in ("alpha", "bravo", "ngo"):
        assert strict["id"] not in ids(clients[other])


def test_red_goes_only_to_the_named_recipients(clients) -> None:  # type: ignore[no-untyped-def]
    red = marked("red", x_tearline_recipients=["bravo"])
    status = clients["alpha"].post(OBJECTS.format(root="gate"), json={"objects": [red]}, headers=POST).json()
    assert status["success_count"] == 1
    assert red["id"] in ids(clients["alpha"]) and red["id"] in ids(clients["bravo"])
    assert red["id"] not in ids(clients["charlie"]) and red["id"] not in ids(clients["ngo"])


def test_red_to_someone_outside_the_compact_is_refused_without_a_roll_call(clients) -> None:  # type: ignore[no-untyped-def]
    red = marked("red", x_tearline_recipients=["bravo", "mossad"])
    status = clients["alpha"].post(OBJECTS.format(root="gate"), json={"objects": [red]}, headers=POST).json()
    assert status["failure_count"] == 1
    assert "not members of this compact: mossad" in status["failures"][0]["message"]


def test_a_member_deletes_only_what_it_wrote(clients) -> None:  # type: ignore[no-untyped-def]
    obj = marked("green")
    clients["alpha"].post(OBJECTS.format(root="gate"), json={"objects": [obj]}, headers=POST)
    path = f"{OBJECTS.format(root='gate')}{obj['id']}/"
    assert clients["bravo"].delete(path).status_code == 404
    assert clients["alpha"].delete(path).status_code == 200


@pytest.mark.parametrize(("days_past", "write", "read"), [(-1, 202, 200), (3, 403, 200), (30, 403, 403)])
def test_expiry_makes_a_compact_read_only_then_closed(store: Store, days_past: int, write: int, read: int) -> None:
    expires = (dt.date.today() - dt.timedelta(days=days_past)).isoformat()
    tokens = compact.apply(store, compact.parse(COMPACT.format(expires=expires)))
    with Hub(store, Settings(db=store.url, port=free_port())) as hub, client(hub, "alpha", tokens["alpha"]) as c:
        assert c.post(OBJECTS.format(root="gate"), json={"objects": [marked("green")]}, headers=POST).status_code == write
        assert c.get(OBJECTS.format(root="gate")).status_code == read
