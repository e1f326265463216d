"""What a load balancer and monitoring see: the health check (answered in front of the hub, never recorded,
503 without a word of why when the store is unreachable) and the Prometheus metrics (operator only)."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from tearline.store import Store
from tearline.store.schema import audit
from tearline.web import monitor
from tests.conftest import TAXII, Hub


@pytest.mark.parametrize("hub", [{"admin_token": "op-secret"}], indirect=True)
def test_metrics_answer_the_operator_only_and_count_by_endpoint_class(hub: Hub, store: Store,
                                                                      tokens: dict[str, str]) -> None:
    assert httpx.get(f"{hub.url}/tearline/admin/metrics/").status_code == 401
    assert httpx.get(f"{hub.url}/tearline/admin/metrics/", headers={"Authorization": "Bearer nope"}).status_code == 401
    with httpx.Client(base_url=hub.url, auth=("state-a", tokens["state-a"]), headers={"Accept": TAXII}) as c:
        for _ in range(3):
            assert c.get("/taxii2/isis-k/collections/intel/objects/").status_code == 200
        assert c.get("/taxii2/isis-k/collections/nowhere/objects/").status_code == 404
        posted = c.post("/taxii2/isis-k/collections/intel/objects/", headers={"Content-Type": TAXII},
                        json={"objects": [{"type": "indicator", "id": "not-an-id"}]})
        assert posted.status_code in (202, 400, 422)
    body = httpx.get(f"{hub.url}/tearline/admin/metrics/", headers={"Authorization": "Bearer op-secret"})
    assert body.status_code == 200 and body.headers["content-type"].startswith("text/plain")
    text = body.text
    assert 'tearline_requests_total{endpoint_class="read",status="200"} 3.0' in text
    assert 'tearline_refusals_total{endpoint_class="read",status="404"} 1.0' in text
    assert 'tearline_refusals_total{endpoint_class="admin",status="401"} 2.0' in text
    assert "tearline_request_seconds_bucket" in text and "tearline_audit_unsealed_entries" in text
    assert "tearline_background_leader 1.0" in text  # one process: it leads


def test_metrics_do_not_exist_without_an_operator_token(hub: Hub) -> None:
    assert httpx.get(f"{hub.url}/tearline/admin/metrics/", headers={"Authorization": "Bearer x"}).status_code == 404


def test_health_is_answered_in_front_of_the_hub_and_never_recorded(hub: Hub, store: Store) -> None:
    with store.engine.connect() as conn:
        before = conn.execute(select(func.count()).select_from(audit)).scalar()
    for _ in range(50):  # a load balancer asking often is neither limited nor recorded
        r = httpx.get(f"{hub.url}/tearline/health/")
        assert r.status_code == 200 and r.json() == {"status": "ok"}
    with store.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(audit)).scalar() == before


def test_an_unreachable_store_is_503_without_saying_why(tmp_path: Any) -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:  # never reached by a health check
        raise AssertionError("health checks are answered in front")

    dead = Store("postgresql+psycopg://nobody:secret-pw@127.0.0.1:1/none")
    front = monitor.Front(app, monitor.Metrics(), dead)

    async def ask() -> httpx.Response:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=front), base_url="http://hub") as c:
            return await c.get("/tearline/health/")

    r = asyncio.run(ask())
    assert r.status_code == 503 and r.json() == {"status": "unavailable"}
    assert "secret-pw" not in r.text and "127.0.0.1" not in r.text
