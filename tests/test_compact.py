"""Compact files: the DESIGN.md schema, and errors that name the line and the field."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tearline import compact
from tearline.errors import ConfigError
from tearline.store import Store

GOOD = """\
name: isis-k
scope:
  actors:
    - name: Islamic State Khorasan Province
      aliases: [ISIS-K, ISKP]
  hops: 2
expires: 2027-12-31
members:
  - {name: state-a, write: true,  tlp_max: amber}
  - {name: ngo-c,   write: false, tlp_max: green}
"""


def test_the_design_schema_parses() -> None:
    spec = compact.parse(GOOD)
    assert spec.name == "isis-k" and spec.hops == 2 and str(spec.expires) == "2027-12-31"
    assert [(m.name, m.write, m.tlp_max) for m in spec.members] == [("state-a", True, "amber"), ("ngo-c", False, "green")]
    assert spec.actors[0].aliases == ("ISIS-K", "ISKP")


@pytest.mark.parametrize(
    ("edit", "line", "field"),
    [
        (("tlp_max: green}", "tlp_max: purple}"), 10, "members[1].tlp_max"),
        (("hops: 2", "hops: many"), 6, "scope.hops"),
        (("write: true,", "write: yes please,"), 9, "members[0].write"),
        (("expires: 2027-12-31", "expires: soon"), 7, "expires"),
        (("name: isis-k", "name: ISIS K!"), 1, "name"),
        (("  - {name: ngo-c,", "  - {name: state-a,"), 10, "members[1].name"),
    ],
)
def test_errors_name_the_line_and_the_field(edit: tuple[str, str], line: int, field: str) -> None:
    with pytest.raises(ConfigError) as info:
        compact.parse(GOOD.replace(*edit), "c.yaml")
    assert f"c.yaml:{line}: {field}:" in str(info.value)


def test_every_problem_is_reported_at_once() -> None:
    bad = GOOD.replace("hops: 2", "hops: -1").replace("tlp_max: green}", "tlp_max: blue, colour: red}")
    with pytest.raises(ConfigError) as info:
        compact.parse(bad, "c.yaml")
    assert len(info.value.details["problems"]) == 3


def test_apply_is_declarative_and_tokens_are_printed_once(store: Store) -> None:
    first = compact.apply(store, compact.parse(GOOD))
    assert set(first) == {"state-a", "ngo-c"}
    again = compact.apply(store, compact.parse(GOOD))
    assert again == {}
    fewer = compact.apply(store, compact.parse(GOOD.replace("  - {name: ngo-c,   write: false, tlp_max: green}\n", "")))
    assert fewer == {}
    assert store.authenticate(first["ngo-c"]) is None
    assert store.authenticate(first["state-a"]) is not None


def test_people_get_tokens_of_their_own_and_sign_in_as_member_slash_person(store: Store) -> None:
    text = GOOD.replace("tlp_max: amber}", "tlp_max: amber, people: [amina, farid]}")
    tokens = compact.apply(store, compact.parse(text))
    assert set(tokens) == {"state-a", "ngo-c", "state-a/amina", "state-a/farid"}
    amina = store.authenticate(tokens["state-a/amina"], "state-a/amina")
    assert amina is not None and (amina.name, amina.person) == ("state-a", "amina")
    assert store.authenticate(tokens["state-a/amina"]) is not None  # Bearer: the token alone
    assert store.authenticate(tokens["state-a"]).person is None  # type: ignore[union-attr]
    # a person's token under another person's name, or under the bare member name, is nobody
    assert store.authenticate(tokens["state-a/amina"], "state-a/farid") is None
    assert store.authenticate(tokens["state-a/amina"], "state-a") is None
    # people dropped from the file lose their tokens; those kept keep theirs
    assert compact.apply(store, compact.parse(GOOD.replace("tlp_max: amber}", "tlp_max: amber, people: [farid]}"))) == {}
    assert store.authenticate(tokens["state-a/amina"]) is None
    assert store.authenticate(tokens["state-a/farid"]) is not None


@pytest.mark.parametrize("people", ["[Amina]", "[amina, amina]", "amina", "[{name: amina}]"])
def test_a_bad_people_list_is_refused_by_line_and_field(people: str) -> None:
    with pytest.raises(ConfigError) as info:
        compact.parse(GOOD.replace("tlp_max: amber}", f"tlp_max: amber, people: {people}}}"), "c.yaml")
    assert "members[0].people" in str(info.value)


def test_cli_apply_json_prints_one_object_and_nothing_else(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(GOOD)
    db = f"sqlite:///{tmp_path / 'hub.db'}"
    out = subprocess.run([sys.executable, "-m", "tearline", "compact", "apply", str(path), "--db", db, "--json"],
                         capture_output=True, text=True, check=True).stdout
    doc = json.loads(out)
    assert doc["compact"] == "isis-k" and set(doc["tokens"]) == {"state-a", "ngo-c"}


def test_cli_reports_a_bad_file_without_a_traceback(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(GOOD.replace("hops: 2", "hops: lots"))
    run = subprocess.run([sys.executable, "-m", "tearline", "compact", "apply", str(path), "--db",
                          f"sqlite:///{tmp_path / 'hub.db'}"], capture_output=True, text=True)
    assert run.returncode == 2
    assert "scope.hops" in run.stderr and "Traceback" not in run.stderr
    missing = subprocess.run([sys.executable, "-m", "tearline", "compact", "apply", str(tmp_path / "nope.yaml")],
                             capture_output=True, text=True)
    assert missing.returncode == 2 and "cannot read" in missing.stderr


def test_cli_refuses_a_bad_db_url(tmp_path: Path) -> None:
    run = subprocess.run([sys.executable, "-m", "tearline", "db", "upgrade", "--db", "mysql://x"],
                         capture_output=True, text=True)
    assert run.returncode == 2 and "--db" in run.stderr and "Traceback" not in run.stderr


def test_the_declared_model_reports_every_problem_with_its_line_and_field() -> None:
    bad = GOOD.replace("  hops: 2\n", "  hops: 2\n  region: [AFG, QQQ]\n  window: {from: 2024-01-01, to: 2023-01-01}\n") \
        .replace("expires: 2027-12-31\n", "expires: 2027-12-31\ntitle:\nversions_by: everyone\nrate_limits: {fly: 3}\n") \
        .replace("write: true,  tlp_max: amber}", "write: maybe, tlp_max: amber, redact: [id], people: [a, a]}")
    with pytest.raises(ConfigError) as info:
        compact.parse(bad, "c.yaml")
    problems = info.value.details["problems"]
    assert "c.yaml:7: scope.region: 'QQQ' is not an ISO 3166 country code" in problems
    assert "c.yaml:8: scope.window: ends before it starts" in problems
    assert "c.yaml:11: versions_by: input should be 'member' or 'organisation', got 'everyone'" in problems
    assert "c.yaml:12: rate_limits.fly: unknown endpoint class (known: meta, read, write, match)" in problems
    assert "c.yaml:14: members[0].write: input should be a valid boolean, got 'maybe'" in problems
    assert any(p.startswith("c.yaml:14: members[0].redact: 'id' is required in every STIX object") for p in problems)
    assert "c.yaml:14: members[0].people: a person appears twice" in problems
    assert len(problems) == 7


def test_an_empty_title_is_no_title() -> None:
    spec = compact.parse(GOOD + "title:\ndescription:\n")
    assert (spec.title, spec.description) == ("Compact isis-k", "")


def test_the_model_knows_the_endpoint_classes_the_guard_limits() -> None:
    from typing import get_args

    from tearline import compactfile, guard

    assert set(get_args(compactfile.EndpointClass)) == set(guard.CLASSES)


@pytest.mark.parametrize(("edit", "problem"), [
    (("expires: 2027-12-31", "expires: 2027-13-01"), "c.yaml: not valid YAML: month must be in 1..12"),
    (("  hops: 2", "  hops: 2\n  str: 1"), "c.yaml:7: scope.str: unknown field"),
])
def test_odd_files_get_a_line_not_a_traceback(edit: tuple[str, str], problem: str) -> None:
    with pytest.raises(ConfigError) as info:
        compact.parse(GOOD.replace(*edit), "c.yaml")
    assert problem in str(info.value)


def test_what_the_old_parser_took_the_model_takes() -> None:
    # quoted dates, lower-case country codes, an empty datasets mapping, a number as a title
    text = GOOD.replace("      aliases: [ISIS-K, ISKP]\n", "      aliases: [ISIS-K, ISKP]\n      datasets:\n") + "title: 2024\n"
    assert compact.parse(text).title == "2024"
    text = GOOD.replace("      aliases: [ISIS-K, ISKP]\n", "      aliases: [ISIS-K, ISKP]\n      datasets:\n"
                        "        acled: {names: [x], extra_events: [[rus, '2024-03-22']]}\n")
    rule = dict(compact.parse(text).actors[0].datasets)["acled"]
    assert rule["extra_events"] == (("RUS", "2024-03-22"),)
