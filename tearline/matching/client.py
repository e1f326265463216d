"""A member's side of private matching: read and normalise its own list, drop known-benign values,
run its half of PSI, and talk to the hub's mailbox. Its secret key and its own values stay on its
machine, in a state directory (one file per request, readable by its owner only).
"""

from __future__ import annotations

import base64
import dataclasses
import json
import os
from pathlib import Path
from typing import Any

import httpx

from ..errors import BadRequest
from ..taxii.client import call as _call
from . import benign, protocol, values


@dataclasses.dataclass(frozen=True)
class Hub:
    url: str
    member: str
    token: str

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url.rstrip("/") + "/tearline/match", auth=(self.member, self.token),
                            timeout=httpx.Timeout(600.0, connect=10.0))


@dataclasses.dataclass
class Prepared:
    kind: str
    values: list[str]  # canonical, benign ones removed: what is matched
    spelling: dict[str, str]  # canonical → as written in the file
    dropped: dict[str, str]  # canonical → the warninglist that names it


def prepare(path: Path, kind: str, region: str = "PK") -> Prepared:
    canonical, spelling = values.read(path, kind, region)
    keep, dropped = benign.split(kind, canonical)
    if not keep:
        raise BadRequest(f"{path}: every value is on a MISP warninglist of known-benign values; nothing to match")
    return Prepared(kind, keep, spelling, dropped)


def state_dir(setting: str) -> Path:
    """The member's state directory: the configured one (``Settings.match_state``), else ~/.tearline/match."""
    path = Path(setting or Path.home() / ".tearline" / "match")
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path


def _save(state: Path, request_id: str, key: bytes, prepared: Prepared, role: str, **extra: Any) -> None:
    file = state / f"{request_id}.json"
    fd = os.open(file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump({"id": request_id, "role": role, "kind": prepared.kind, "key": base64.b64encode(key).decode(),
                   "values": prepared.values, "spelling": prepared.spelling, **extra}, out)


def _load(state: Path, request_id: str) -> dict[str, Any]:
    file = state / f"{request_id}.json"
    if not file.exists():
        raise BadRequest(f"no local state for request {request_id} in {state}; only the member who asked, on the "
                         "machine it asked from, can read the answer")
    return json.loads(file.read_text())


def request(hub: Hub, state: Path, prepared: Prepared, to: str, both: bool) -> dict[str, Any]:
    key, message = protocol.ask(prepared.values)
    with hub.client() as http:
        made = _call(http, "POST", "/requests/", params={"to": to, "type": prepared.kind,
                                                         "results": "both" if both else "asker"},
                     content=message, headers={"content-type": "application/octet-stream"}).json()
    _save(state, made["id"], key, prepared, "asker", to=to, hub=hub.url)
    return made | {"bytes_sent": len(message), "dropped": len(prepared.dropped)}


def inbox(hub: Hub) -> list[dict[str, Any]]:
    with hub.client() as http:
        return _call(http, "GET", "/inbox/").json()


def answer(hub: Hub, state: Path, prepared: Prepared, request_id: str) -> dict[str, Any]:
    """Answer one request with this member's values; if the asker asked for results to both, ask the
    same question back so this member learns the intersection too."""
    with hub.client() as http:
        meta = _call(http, "GET", f"/requests/{request_id}/").json()
        if meta["kind"] != prepared.kind:
            raise BadRequest(f"request {request_id} is about {meta['kind']} values, not {prepared.kind}")
        message = _call(http, "GET", f"/requests/{request_id}/request/").content
        reply = protocol.answer(prepared.values, message, meta["fpr"])
        _call(http, "POST", f"/requests/{request_id}/answer/", content=reply,
              headers={"content-type": "application/octet-stream"})
        done: dict[str, Any] = {"id": request_id, "asker": meta["asker"], "asked": meta["asked"],
                                "bytes_received": len(message), "bytes_sent": len(reply)}
        if meta["results"] == "both":
            key, back = protocol.ask(prepared.values)
            made = _call(http, "POST", f"/requests/{request_id}/ask-back/", content=back,
                         headers={"content-type": "application/octet-stream"}).json()
            _save(state, made["id"], key, prepared, "asker", to=meta["asker"], hub=hub.url, reverse_of=request_id)
            done["asked_back"] = made["id"]
            done["bytes_sent"] += len(back)
    return done


def decline(hub: Hub, request_id: str) -> dict[str, Any]:
    with hub.client() as http:
        return _call(http, "POST", f"/requests/{request_id}/decline/").json()


def result(hub: Hub, state: Path, request_id: str) -> dict[str, Any]:
    """The intersection of an answered request, in the asker's own spelling. If the asker had asked
    for results to both, it now answers the partner's ask-back with the same values."""
    saved = _load(state, request_id)
    with hub.client() as http:
        meta = _call(http, "GET", f"/requests/{request_id}/").json()
        if meta["status"] != "answered":
            return {"id": request_id, "status": meta["status"], "matches": None}
        reply = _call(http, "GET", f"/requests/{request_id}/answer/").content
    hits = protocol.intersect(base64.b64decode(saved["key"]), reply)
    matches = sorted(saved["spelling"].get(saved["values"][i], saved["values"][i]) for i in hits)
    out: dict[str, Any] = {"id": request_id, "status": "answered", "kind": saved["kind"], "asked": len(saved["values"]),
                           "matches": matches, "bytes_received": len(reply)}
    back = meta.get("asked_back")
    if back and meta["results"] == "both":
        prepared = Prepared(saved["kind"], saved["values"], saved["spelling"], {})
        with hub.client() as http:
            back_meta = _call(http, "GET", f"/requests/{back}/").json()
            if back_meta["status"] == "pending":
                message = _call(http, "GET", f"/requests/{back}/request/").content
                _call(http, "POST", f"/requests/{back}/answer/", content=protocol.answer(prepared.values, message,
                                                                                          back_meta["fpr"]),
                      headers={"content-type": "application/octet-stream"})
                out["answered_ask_back"] = back
    return out
