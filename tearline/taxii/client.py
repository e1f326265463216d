"""A member's side of TAXII 2.1: read a collection page after page, fetch an object by id, post an envelope.
The MISP bridge (tearline.misp) and a member's other tools run it on the member's machine, against any hub.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import httpx

from ..errors import ConfigError, TearlineError
from .media import TAXII


class HubError(TearlineError):
    """The hub refused a call; the message is the hub's own description."""

    def __init__(self, response: httpx.Response):
        try:
            body = response.json()
            text = body.get("description") or body.get("title") or response.text
        except (ValueError, AttributeError):
            text = response.text[:300]
        super().__init__(f"the hub answered {response.status_code} to {response.request.url.path}: {text}")
        self.status = response.status_code if 400 <= response.status_code < 500 else 502


def call(http: httpx.Client, method: str, path: str, **kw: Any) -> httpx.Response:
    """One request; unreachable hubs and refusals become one-line errors."""
    try:
        response = http.request(method, path, **kw)
    except httpx.HTTPError as exc:
        raise ConfigError(f"cannot reach the hub at {http.base_url}: {exc}") from None
    if response.status_code >= 400:
        raise HubError(response)
    return response


def body(response: httpx.Response) -> Any:
    """The JSON of an answer; an answer that is not JSON (a proxy's error page) is a one-line error."""
    try:
        return response.json()
    except ValueError:
        raise TearlineError(f"the hub's answer to {response.request.url.path} is not JSON "
                            f"({response.headers.get('content-type', 'no content type')})",
                            code="hub_not_json") from None


@dataclasses.dataclass(frozen=True)
class Collection:
    """One collection of one API root, as a member reaches it."""

    hub: str
    api_root: str
    collection: str  # id or alias
    member: str
    token: str

    def client(self) -> httpx.Client:
        base = f"{self.hub.rstrip('/')}/taxii2/{self.api_root}/collections/{self.collection}"
        return httpx.Client(base_url=base, auth=(self.member, self.token), headers={"Accept": TAXII},
                            timeout=httpx.Timeout(300.0, connect=10.0))

    def objects(self, http: httpx.Client, params: dict[str, str] | None = None, limit: int = 1000,
                ) -> Iterator[dict[str, Any]]:
        """Every object the member receives, following ``more``/``next`` to the last page."""
        query = {**(params or {}), "limit": str(limit)}
        while True:
            page = body(call(http, "GET", "/objects/", params=query))
            yield from page.get("objects") or ()
            if not page.get("more") or not page.get("next"):
                return
            query["next"] = page["next"]

    def fetch(self, http: httpx.Client, stix_id: str) -> dict[str, Any] | None:
        """The newest version of one object the member receives, or None when it receives none."""
        try:
            response = http.get(f"/objects/{stix_id}/")
        except httpx.HTTPError as exc:
            raise ConfigError(f"cannot reach the hub at {http.base_url}: {exc}") from None
        if response.status_code == 404:
            return None
        if response.status_code >= 400:
            raise HubError(response)
        found = body(response).get("objects") or []
        return found[-1] if found else None

    def post(self, http: httpx.Client, objs: list[dict[str, Any]]) -> dict[str, Any]:
        """Post one envelope; the hub's status resource."""
        return body(call(http, "POST", "/objects/", json={"objects": objs}, headers={"Content-Type": TAXII}))
