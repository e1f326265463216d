"""Rate limits: token buckets per member and endpoint class, set in the compact file, answered with
429 and Retry-After on the running hub, and on record in the audit trail."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from sqlalchemy import select

from tearline import compact, probes
from tearline.config import Settings
from tearline.errors import ConfigError, TooManyRequests
from tearline.guard import RateLimiter
from tearline.release import Member
from tearline.store import Store
from tearline.store.schema import audit
from tests.conftest import TAXII, Hub, free_port


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def member(limits: dict[str, int], name: str = "m", mid: int = 1) -> Member:
    return Member(id=mid, api_root="c", name=name, can_read=True, can_write=True, tlp_max="amber",
                  profile={"rate_limits": limits})


def test_a_bucket_holds_ten_seconds_of_requests_and_refills() -> None:
    clock = Clock()
    limiter = RateLimiter(clock)
    m = member({"read": 60})
    for _ in range(10):
        limiter.check(m, "read")
    with pytest.raises(TooManyRequests) as refused:
        limiter.check(m, "read")
    assert refused.value.details["retry_after"] == 1 and "60 read requests a minute" in refused.value.description
    limiter.check(m, "write")  # another class has its own bucket
    limiter.check(member({"read": 60}, "other", 2), "read")  # and so does another member
    clock.now += 1.0
    limiter.check(m, "read")
    with pytest.raises(TooManyRequests):
        limiter.check(m, "read")
    clock.now += 3600
    for _ in range(10):  # a full bucket again, never more
        limiter.check(m, "read")
    with pytest.raises(TooManyRequests):
        limiter.check(m, "read")


SPEC = """
name: limited
scope:
  actors: [{name: Islamic State Khorasan Province}]
rate_limits: {read: 12, meta: 600}
members:
  - {name: fast, write: true, tlp_max: amber, rate_limits: {read: 600}}
  - {name: slow, write: true, tlp_max: amber}
"""


def test_the_hub_answers_429_with_retry_after_and_records_it(store: Store) -> None:
    tokens = compact.apply(store, compact.parse(SPEC))
    with Hub(store, Settings(db=store.url, port=free_port())) as hub:
        def get(name: str, path: str) -> httpx.Response:
            return httpx.get(hub.url + path, auth=(name, tokens[name]), headers={"Accept": TAXII})

        objects = "/taxii2/limited/collections/intel/objects/"
        slow = [get("slow", objects).status_code for _ in range(3)]
        assert slow[:2] == [200, 200] and slow[2] == 429  # 12 a minute: a burst of 2
        refused = get("slow", objects)
        assert refused.status_code == 429 and 1 <= int(refused.headers["retry-after"]) <= 5
        assert "12 read requests a minute" in refused.json()["description"]
        assert get("slow", "/taxii2/limited/collections/").status_code == 200  # meta has its own limit
        assert all(get("fast", objects).status_code == 200 for _ in range(20))  # the member's own override
    with store.engine.connect() as conn:
        rows = conn.execute(select(audit.c.actor, audit.c.status, audit.c.reason).where(audit.c.status == 429)).all()
    assert rows and all(r.actor == "slow" and "read requests a minute" in r.reason for r in rows)


@pytest.mark.parametrize("text, message", [
    ("rate_limits: {reads: 10}", "rate_limits.reads: unknown endpoint class"),
    ("rate_limits: {read: 0}", "rate_limits.read: must be a whole number"),
    ("rate_limits: 5", "rate_limits: must be a mapping"),
])
def test_bad_rate_limits_name_their_line_and_field(text: str, message: str) -> None:
    doc = f"name: x\nscope: {{actors: [{{name: A}}]}}\nmembers: [{{name: a}}]\n{text}\n"
    with pytest.raises(ConfigError, match=message):
        compact.parse(doc)


RETRYING = """
name: limited
scope:
  actors: [{name: Islamic State Khorasan Province}]
rate_limits: {read: 600, meta: 600}
members:
  - {name: patient, tlp_max: amber}
  - {name: impatient, tlp_max: amber}
"""


def test_clients_that_wait_as_told_after_a_429_raise_no_alert_and_one_that_does_not_does(store: Store) -> None:
    """A member's three workers polling at once, each waiting its Retry-After when refused (as a connector
    does), are refused again and again without being counted; a client that keeps asking inside its
    Retry-After is."""
    tokens = compact.apply(store, compact.parse(RETRYING))
    objects = "/taxii2/limited/collections/intel/objects/"
    poll = {"added_after": "2024-01-01T00:00:00Z"}

    with Hub(store, Settings(db=store.url, port=free_port(), guard_scan_seconds=3600)) as hub:
        def worker(name: str, asks: int) -> int:
            # at least its asks, and on until it has been refused twice (how many requests that takes depends
            # on how fast the store answers: on PostgreSQL the buckets are the store's)
            refused = sent = 0
            with httpx.Client(base_url=hub.url, auth=(name, tokens[name]), headers={"Accept": TAXII}) as c:
                while (asks > 0 or refused < 2) and sent < 2000:
                    sent += 1
                    r = c.get(objects, params=poll)
                    if r.status_code == 429:
                        refused += 1
                        time.sleep(int(r.headers["retry-after"]))
                    else:
                        asks -= 1
            return refused

        with ThreadPoolExecutor(3) as pool:
            refused = sum(pool.map(lambda _: worker("patient", 45), range(3)))
        with httpx.Client(base_url=hub.url, auth=("impatient", tokens["impatient"]), headers={"Accept": TAXII}) as c:
            # asking without waiting until well over the limit (how many requests that takes depends on how
            # fast the store answers: on PostgreSQL the buckets are the store's)
            codes: list[int] = []
            while codes.count(429) < 25 and len(codes) < 2000:
                codes.append(c.get(objects, params=poll).status_code)
    assert refused >= 3 and codes.count(429) >= 20  # both were really over the limit
    probes.scan(store)
    assert [a["rule"] for a in probes.stored_alerts(store, member="patient")] == []
    assert {a["rule"] for a in probes.stored_alerts(store, member="impatient")} == {"denied"}
