"""Cyware's cytaxii2 client against the running hub: discovery, collections, a bundle posted through its
inbox request, and polling with its filters and paging."""

from __future__ import annotations

import json

from cytaxii2.cytaxii2 import cytaxii2

from tests.conftest import Hub
from tests.stixgen import indicator


def test_cytaxii2_discovers_posts_a_bundle_and_polls_it_back(hub: Hub, tokens: dict[str, str]) -> None:
    client = cytaxii2(f"{hub.url}/taxii2/", "state-a", tokens["state-a"], version=2.1)
    found = client.discovery_request()
    assert found["status_code"] == 200 and found["response"]["default"].endswith("/taxii2/isis-k/")
    collections = client.collection_request()["response"]["collections"]
    intel = next(c for c in collections if c["alias"] == "intel")
    assert client.collection_data_request(intel["id"])["response"]["can_write"] is True

    sent = [indicator(1200 + i) for i in range(30)]
    bundle = {"type": "bundle", "id": "bundle--4d7e2b8a-5c1f-4e9a-8b3d-2f6a7c9e1b05", "objects": sent}
    posted = client.inbox_request(intel["id"], json.dumps(bundle))  # cytaxii2 posts the bundle as it is
    assert posted["status_code"] == 202, posted
    assert posted["response"]["success_count"] == 30 and "failures" not in posted["response"]

    got: list[dict] = []
    page = client.poll_request(intel["id"], object_type="indicator", limit=7)
    while True:
        assert page["status_code"] == 200, page
        got += page["response"].get("objects", [])
        if not page["response"]["more"]:
            break
        page = client.poll_request(intel["id"], object_type="indicator", limit=7, next=page["response"]["next"])
    assert {o["id"] for o in sent} <= {o["id"] for o in got}
    one = client.poll_request(intel["id"], object_id=sent[3]["id"])["response"]["objects"]
    assert one == [sent[3]]
