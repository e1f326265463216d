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


def test_naming_outsiders_as_red_recipients_tells_nothing_about_who_is_a_member(clients) -> None:  # type: ignore[no-untyped-def]
    # members are not visible in this compact: an unknown name is kept, matches nobody, and the answer is
    # the same as for a member's name, so a member cannot probe the roll
    for names in (["bravo", "mossad"], ["mossad"], ["bravo"]):
        red = marked("red", x_tearline_recipients=names)
        status = clients["alpha"].post(OBJECTS.format(root="gate"), json={"objects": [red]}, headers=POST).json()
        assert status["success_count"] == 1 and status["failure_count"] == 0
        assert (red["id"] in ids(clients["bravo"])) == ("bravo" in names)


def test_where_members_may_know_each_other_an_outsider_recipient_is_refused_by_name(store: Store) -> None:
    expires = (dt.date.today() + dt.timedelta(days=30)).isoformat()
    tokens = compact.apply(store, compact.parse(COMPACT.format(expires=expires) + "members_visible: true\n"))
    with Hub(store, Settings(db=store.url, port=free_port())) as hub, client(hub, "alpha", tokens["alpha"]) as c:
        red = marked("red", x_tearline_recipients=["bravo", "mossad"])
        status = c.post(OBJECTS.format(root="gate"), json={"objects": [red]}, headers=POST).json()
    assert status["failure_count"] == 1
    assert "not members of this compact: mossad" in status["failures"][0]["message"]


def test_a_member_deletes_only_what_it_wrote(clients) -> None:  # type: ignore[no-untyped-def]
    obj, hidden = marked("green"), marked("amber+strict")
    clients["alpha"].post(OBJECTS.format(root="gate"), json={"objects": [obj, hidden]}, headers=POST)
    path = f"{OBJECTS.format(root='gate')}{obj['id']}/"
    # another member that reads it is told it may not delete it; one that may not read it, that it does not exist
    refused = clients["bravo"].delete(path)
    assert refused.status_code == 403 and "only it can delete it" in refused.json()["description"]
    never = f"indicator--{uuid.uuid4()}"
    a = clients["bravo"].delete(f"{OBJECTS.format(root='gate')}{hidden['id']}/")
    b = clients["bravo"].delete(f"{OBJECTS.format(root='gate')}{never}/")
    assert a.status_code == b.status_code == 404
    assert a.json()["description"].replace(hidden["id"], "X") == b.json()["description"].replace(never, "X")
    assert clients["alpha"].delete(path).status_code == 200


@pytest.mark.parametrize(("days_past", "write", "read"), [(-1, 202, 200), (3, 403, 200), (30, 403, 403)])
def test_expiry_makes_a_compact_read_only_then_closed(store: Store, days_past: int, write: int, read: int) -> None:
    expires = (dt.date.today() - dt.timedelta(days=days_past)).isoformat()
    tokens = compact.apply(store, compact.parse(COMPACT.format(expires=expires)))
    with Hub(store, Settings(db=store.url, port=free_port())) as hub, client(hub, "alpha", tokens["alpha"]) as c:
        assert c.post(OBJECTS.format(root="gate"), json={"objects": [marked("green")]}, headers=POST).status_code == write
        assert c.get(OBJECTS.format(root="gate")).status_code == read


def relationship(source: str, kind: str, target: str) -> dict:
    return {"type": "relationship", "spec_version": "2.1", "id": f"relationship--{uuid.uuid4()}",
            "created": "2024-03-01T10:00:00.000Z", "modified": "2024-03-01T10:00:00.000Z",
            "relationship_type": kind, "source_ref": source, "target_ref": target,
            "object_marking_refs": [markings.TLP2["green"][0]]}


def test_a_relationship_to_what_a_member_may_not_see_is_withheld_whole(clients) -> None:  # type: ignore[no-untyped-def]
    secret = marked("amber")
    link = relationship(secret["id"], "indicates", ACTOR_ID)
    alpha, ngo = clients["alpha"], clients["ngo"]
    assert alpha.post(OBJECTS.format(root="gate"), json={"objects": [secret, link]}, headers=POST).json()[
        "success_count"] == 2
    assert link["id"] in ids(alpha) and link["id"] not in ids(ngo)
    assert ngo.get(f"{OBJECTS.format(root='gate')}{link['id']}/").status_code == 404


def test_a_relationship_follows_what_its_members_may_see_of_its_ends(clients) -> None:  # type: ignore[no-untyped-def]
    """What a member may not receive is kept exact as ends change: an end only RED for alpha withholds the
    relationship from the others; a later GREEN version of it releases the relationship; deleting that
    version withholds it again."""
    alpha, bravo, charlie = clients["alpha"], clients["bravo"], clients["charlie"]
    public = marked("green")
    secret = marked("red", x_tearline_recipients=["alpha"])
    assert alpha.post(OBJECTS.format(root="gate"), json={"objects": [public, secret]}, headers=POST).json()[
        "success_count"] == 2
    link = relationship(public["id"], "related-to", secret["id"])
    assert alpha.post(OBJECTS.format(root="gate"), json={"objects": [link]}, headers=POST).json()["success_count"] == 1
    assert link["id"] not in ids(charlie) and link["id"] in ids(alpha)
    assert charlie.get(f"{OBJECTS.format(root='gate')}{link['id']}/").status_code == 404

    greener = {k: v for k, v in secret.items() if k != "x_tearline_recipients"} | {
        "modified": "2024-03-02T10:00:00.000Z", "object_marking_refs": [markings.TLP2["green"][0]]}
    assert alpha.post(OBJECTS.format(root="gate"), json={"objects": [greener]}, headers=POST).json()[
        "success_count"] == 1
    assert link["id"] in ids(charlie) and link["id"] in ids(bravo)
    gone = alpha.delete(f"{OBJECTS.format(root='gate')}{secret['id']}/", params={"match[version]": greener["modified"]})
    assert gone.status_code == 200
    assert link["id"] not in ids(charlie) and link["id"] in ids(alpha)


def test_references_to_hidden_objects_are_cut_from_the_copy(clients) -> None:  # type: ignore[no-untyped-def]
    secret, public = marked("amber"), marked("green")
    report = {"type": "report", "spec_version": "2.1", "id": f"report--{uuid.uuid4()}", "name": "ISKP cell",
              "created": "2024-03-01T10:00:00.000Z", "modified": "2024-03-01T10:00:00.000Z",
              "published": "2024-03-01T10:00:00.000Z", "object_refs": [secret["id"], public["id"], ACTOR_ID],
              "object_marking_refs": [markings.TLP2["green"][0]]}
    alpha, ngo = clients["alpha"], clients["ngo"]
    alpha.post(OBJECTS.format(root="gate"), json={"objects": [secret, public, report]}, headers=POST)
    full = alpha.get(f"{OBJECTS.format(root='gate')}{report['id']}/").json()["objects"][0]
    cut = ngo.get(f"{OBJECTS.format(root='gate')}{report['id']}/").json()["objects"][0]
    assert full["object_refs"] == report["object_refs"]
    assert cut["object_refs"] == [public["id"], ACTOR_ID]
    assert secret["id"] not in ngo.get(OBJECTS.format(root="gate")).text


def test_redaction_profiles_shape_each_members_copy(store: Store) -> None:
    spec = compact.parse("""
name: red
scope:
  actors: [{name: Islamic State Khorasan Province}]
members:
  - {name: author, write: true, tlp_max: amber, redact: [created_by_ref, x_]}
  - {name: plain, tlp_max: amber}
  - {name: masked, tlp_max: amber, redact: [created_by_ref, x_, coordinates, where_sighted_refs]}
""")
    tokens = compact.apply(store, spec)
    me, other = (f"identity--{uuid.uuid4()}" for _ in range(2))
    green = [markings.TLP2["green"][0]]
    people = [{"type": "identity", "spec_version": "2.1", "id": i, "created": "2024-03-01T10:00:00.000Z",
               "modified": "2024-03-01T10:00:00.000Z", "name": name, "identity_class": "organization",
               "object_marking_refs": green, "x_tearline_about_ref": ACTOR_ID}
              for i, name in ((me, "Ministry of the Interior of A"), (other, "Agency B"))]
    place = {"type": "location", "spec_version": "2.1", "id": f"location--{uuid.uuid4()}", "created": "2024-03-01T10:00:00.000Z",
             "modified": "2024-03-01T10:00:00.000Z", "name": "Safe house", "latitude": 34.42, "longitude": 70.45,
             "precision": 10.0, "administrative_area": "Nangarhar", "country": "AF", "created_by_ref": me,
             "object_marking_refs": green}
    bare = place | {"id": f"location--{uuid.uuid4()}", "country": None, "administrative_area": None,
                    "x_tearline_about_ref": ACTOR_ID}
    bare = {k: v for k, v in bare.items() if v is not None}
    objs = [*people, place, bare, relationship(place["id"], "related-to", ACTOR_ID) | {"created_by_ref": other},
            marked("green", created_by_ref=me, x_source_grade="A1")]
    with Hub(store, Settings(db=store.url, port=free_port())) as hub:
        copies, lookups = {}, {}
        for name in ("author", "plain", "masked"):
            with client(hub, name, tokens[name]) as c:
                if name == "author":
                    status = c.post("/taxii2/red/collections/intel/objects/", json={"objects": objs},
                                    headers=POST).json()
                    assert status["success_count"] == len(objs), status["failures"]
                got = c.get("/taxii2/red/collections/intel/objects/")
                copies[name] = {o["id"]: o for o in got.json()["objects"]}
                lookups[name] = {i: c.get(f"/taxii2/red/collections/intel/objects/{i}/").status_code
                                 for o in copies[name].values() for i in [o.get("created_by_ref")] if i}
    author, plain, masked = copies["author"], copies["plain"], copies["masked"]
    for obj in objs:  # the author gets its own objects back exactly, whatever its own profile
        assert author[obj["id"]] == obj
    assert plain[place["id"]] == place and plain[me] == people[0]
    loc = masked[place["id"]]
    assert "latitude" not in loc and loc["administrative_area"] == "Nangarhar" and loc["country"] == "AF"
    assert masked[bare["id"]]["country"] == "AF" and "latitude" not in masked[bare["id"]]  # placed by its point
    pseudonym = loc["created_by_ref"]
    assert pseudonym not in (me, other) and pseudonym.startswith("identity--")
    indicator_copy = masked[objs[-1]["id"]]
    assert indicator_copy["created_by_ref"] == pseudonym  # same author, same pseudonym
    assert masked[objs[-2]["id"]]["created_by_ref"] not in (pseudonym, other, me)
    assert "x_source_grade" not in indicator_copy and plain[objs[-1]["id"]]["x_source_grade"] == "A1"
    # every pseudonym resolves, to a stand-in that says nothing of who; the real identities never reach it
    assert set(lookups["masked"].values()) == {200}
    assert me not in masked and other not in masked and "Ministry" not in str(masked) and "Agency B" not in str(masked)
    stand_in = masked[pseudonym]
    assert set(stand_in) <= {"type", "spec_version", "id", "created", "modified", "name", "identity_class",
                             "object_marking_refs"}


def test_last_and_first_mean_the_last_and_first_version_a_member_may_see(clients) -> None:  # type: ignore[no-untyped-def]
    v1 = marked("green")
    v2 = v1 | {"modified": "2024-04-01T00:00:00.000Z", "object_marking_refs": [markings.TLP2["amber"][0]]}
    v3 = v1 | {"modified": "2024-05-01T00:00:00.000Z", "object_marking_refs": [markings.TLP2["green"][0]],
               "name": "renamed"}
    alpha, ngo, charlie = clients["alpha"], clients["ngo"], clients["charlie"]
    alpha.post(OBJECTS.format(root="gate"), json={"objects": [v1, v2]}, headers=POST)
    path = f"{OBJECTS.format(root='gate')}{v1['id']}/"
    assert [o["modified"] for o in ngo.get(path).json()["objects"]] == [v1["modified"]]  # v2 is beyond it
    assert [o["modified"] for o in charlie.get(path).json()["objects"]] == [v2["modified"]]
    assert [o["modified"] for o in ngo.get(path, params={"match[version]": "first"}).json()["objects"]] == [v1["modified"]]
    alpha.post(OBJECTS.format(root="gate"), json={"objects": [v3]}, headers=POST)
    assert [o["modified"] for o in ngo.get(path).json()["objects"]] == [v3["modified"]]
    listed = {o["id"]: o["modified"] for o in ngo.get(OBJECTS.format(root="gate"), params={"match[type]": "indicator"}).json()["objects"]}
    assert listed[v1["id"]] == v3["modified"]


def test_tlp_1_markings_are_released_as_their_tlp_2_equivalents(clients) -> None:  # type: ignore[no-untyped-def]
    import stix2

    # what stix2 (which knows only TLP 1.0) and older feeds send: WHITE is CLEAR, the others keep their names
    old = {level: marked("clear") | {"object_marking_refs": [definition.id]} for level, definition in (
        ("white", stix2.TLP_WHITE), ("green", stix2.TLP_GREEN), ("amber", stix2.TLP_AMBER), ("red", stix2.TLP_RED))}
    old["red"]["x_tearline_recipients"] = ["bravo"]
    status = clients["alpha"].post(OBJECTS.format(root="gate"), json={"objects": list(old.values())},
                                   headers=POST).json()
    assert status["success_count"] == 4, status
    expected = {"ngo": {"white", "green"}, "charlie": {"white", "green", "amber"},
                "bravo": {"white", "green", "amber", "red"}, "alpha": {"white", "green", "amber", "red"}}
    for member, levels in expected.items():
        seen = ids(clients[member], **{"match[type]": "indicator"})
        assert {level for level, obj in old.items() if obj["id"] in seen} == levels, member
    assert markings.tlp_of(old["white"]) == "clear" and markings.tlp_of(old["amber"]) == "amber"
