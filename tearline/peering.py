"""Federation, this hub's side: mirroring a compact another hub hosts.

A partner hub A admits this hub as a member of kind hub in its compact (its TLS client certificate pinned
there, tearline.tls). Here, a *peer* names A's collection, this hub's member name and token there, the
certificates to present and to trust, and the local compact that mirrors A's. A pull asks A, over plain TAXII
2.1 with ``added_after`` and ``next``, for every version A's gate releases to this hub, and writes them into
the mirror's intel collection with A as their ``origin`` (tearline.write.mirror). From there this hub's own
gate decides which of its members receive them; a member of kind hub never does (tearline.visibility), so
nothing A released here travels on to a third hub.

A pull is made of pages, and each page is written in one transaction with the pull's position (the page
token to resume from, and at the end of a walk the ``added_after`` of the next one) and an audit entry: a pull
stopped anywhere (a network error, kill -9) resumes where its last page committed, and a page written twice
(a resumed walk A answers again) writes nothing twice.
"""

from __future__ import annotations

import contextlib
import dataclasses
import ssl
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import orjson
from sqlalchemy import insert, select, update

from . import release, stix
from .audit import AuditLog
from .errors import BadRequest, NotFound, Unavailable
from .keys import HubKeys
from .store import Store, now_us
from .store.schema import peers
from .write import mirror

TAXII = "application/taxii+json;version=2.1"
PAGE = 1000
COLUMNS = ("id", "name", "api_root", "url", "member", "client_cert", "client_key", "server_ca", "added_after",
           "next", "pulled", "pushed_us", "pushed", "push_refused", "last_try_us", "last_ok_us", "last_error")


@dataclasses.dataclass(frozen=True)
class Peer:
    id: int
    name: str
    api_root: str
    url: str
    member: str
    token: str = dataclasses.field(repr=False)
    client_cert: str = ""
    client_key: str = ""
    server_ca: str = ""


def add(store: Store, name: str, api_root: str, url: str, member: str, token: str, client_cert: str = "",
        client_key: str = "", server_ca: str = "") -> None:
    """Record a peer; refused with the reason when the mirror compact does not exist or the name is taken."""
    if store.collection(api_root, "intel") is None:
        raise NotFound(f"no compact {api_root!r} on this hub to mirror into: apply its compact file first",
                       details={"compact": api_root})
    if not url.startswith(("https://", "http://")) or "/collections/" not in url:
        raise BadRequest(f"--url {url!r}: give the peer's TAXII collection URL, "
                         "https://HOST/taxii2/ROOT/collections/ID/", details={"url": url})
    if bool(client_cert) != bool(client_key):
        raise BadRequest("--cert and --key go together: the client certificate this hub presents and its key")
    with store.engine.begin() as conn:
        if conn.scalar(select(peers.c.id).where(peers.c.name == name)) is not None:
            raise BadRequest(f"a peer named {name!r} exists already", details={"peer": name})
        conn.execute(insert(peers).values(name=name, api_root=api_root, url=url.rstrip("/") + "/", member=member,
                                          token=token, client_cert=client_cert, client_key=client_key,
                                          server_ca=server_ca))


def listed(store: Store) -> list[dict[str, Any]]:
    """Every peer with its pull's state (the token aside)."""
    with store.engine.connect() as conn:
        return [dict(zip(COLUMNS, r, strict=True)) for r in conn.execute(
            select(*(peers.c[c] for c in COLUMNS)).order_by(peers.c.name))]


def _load(store: Store, name: str) -> Peer:
    with store.engine.connect() as conn:
        row = conn.execute(select(peers).where(peers.c.name == name)).first()
    if row is None:
        raise NotFound(f"no peer named {name!r}: `tearline peer add` records one", details={"peer": name})
    return Peer(row.id, row.name, row.api_root, row.url, row.member, row.token, row.client_cert, row.client_key,
                row.server_ca)


def client(peer: Peer) -> httpx.Client:
    """A TAXII client for the peer: its certificates only (never the system's) when a server CA is given, and
    this hub's client certificate when it has one."""
    context = ssl.create_default_context(cafile=peer.server_ca or None)
    if peer.client_cert:
        context.load_cert_chain(peer.client_cert, peer.client_key)
    return httpx.Client(verify=context, auth=(peer.member, peer.token), timeout=60,
                        headers={"Accept": TAXII})


def pull(store: Store, keys: HubKeys, log: AuditLog, name: str, page: int = PAGE,
         connect: Callable[[Peer], httpx.Client] = client,
         progress: Callable[[int], None] | None = None) -> dict[str, Any]:
    """Pull what the peer releases to this hub since the last pull; return {pulled, pages, failures}. The
    failures are versions that could not be written (invalid STIX, or needing what never arrived)."""
    peer = _load(store, name)
    collection = store.collection(peer.api_root, "intel")
    if collection is None:
        raise NotFound(f"the mirror compact {peer.api_root!r} is gone from this hub", details={"peer": name})
    with store.engine.connect() as conn:
        state = conn.execute(select(peers.c.added_after, peers.c.next).where(peers.c.id == peer.id)).one()
    added_after, cursor = state.added_after, state.next
    pulled, pages, failures = 0, 0, []
    waiting: list[Any] = []  # versions whose references arrive on a later page of the walk
    _note(store, peer.id, last_try_us=now_us())
    with _talking(store, peer), connect(peer) as http:
        while True:
            params = {"limit": str(page), "match[version]": "all"}
            if added_after:
                params["added_after"] = added_after
            if cursor:
                params["next"] = cursor
            r = http.get(peer.url + "objects/", params=params)
            if r.status_code == 400 and cursor:  # a page token the peer no longer takes: walk again
                cursor = None
                continue
            if r.status_code in (401, 403):
                ended = _revoke(store, keys, log, peer, collection, None,
                                f"membership ended or refused at {peer.url} ({r.status_code}: {_said(r)})")
                raise Unavailable(f"peer {name!r} refused this hub ({r.status_code}: {_said(r)}); the "
                                  f"{ended} versions mirrored from it are removed",
                                  details={"peer": name, "status": r.status_code, "removed": ended})
            if r.status_code != 200:
                raise Unavailable(f"peer {name!r} answered {r.status_code} to {r.request.url}: "
                                  f"{_said(r)}", details={"peer": name, "status": r.status_code})
            body = orjson.loads(r.content) if r.content else {}
            objs = waiting + list(body.get("objects") or [])
            more = bool(body.get("more"))
            last = r.headers.get("X-TAXII-Date-Added-Last")
            with store.engine.begin() as conn:
                written, failed = mirror.write(store, conn, collection, objs, keys, peer.id) if objs else ([], [])
                waiting = [objs[f["index"]] for f in failed if more and "is not in this collection" in f["message"]]
                if not more:
                    failures += failed
                cursor = body.get("next") if more else None
                if not more and last:
                    added_after = last
                conn.execute(update(peers).where(peers.c.id == peer.id).values(
                    next=cursor, added_after=added_after, pulled=peers.c.pulled + len(written)))
                log.append(f"peer:{name}", peer.api_root, "GET", "peer-pull", peer.url + "objects/", params,
                           200, f"{len(written)} versions mirrored from {peer.url}", written, conn=conn)
            log.settle()
            pulled += len(written)
            pages += 1
            if progress is not None:
                progress(len(written))
            if not more:
                break
        # what the peer no longer releases to this hub (deleted there, or this hub's membership narrowed)
        removed = _revoke(store, keys, log, peer, collection, _manifest(http, peer),
                          f"no longer released by {peer.url}")
    _note(store, peer.id, last_ok_us=now_us(), last_error=None)
    return {"peer": name, "pulled": pulled, "pages": pages, "removed": removed, "failures": failures}


def _manifest(http: httpx.Client, peer: Peer) -> set[tuple[str, int]]:
    """(id, version) of every version the peer releases to this hub now, from its manifest."""
    out: set[tuple[str, int]] = set()
    cursor = None
    while True:
        params = {"limit": str(PAGE), "match[version]": "all"} | ({"next": cursor} if cursor else {})
        r = http.get(peer.url + "manifest/", params=params)
        if r.status_code != 200:
            raise Unavailable(f"peer {peer.name!r} answered {r.status_code} to {r.request.url}: {_said(r)}",
                              details={"peer": peer.name, "status": r.status_code})
        body = orjson.loads(r.content) if r.content else {}
        for record in body.get("objects") or []:
            version = record.get("version") if isinstance(record, dict) else None
            if isinstance(version, str) and isinstance(record.get("id"), str):
                out.add((record["id"], stix.to_us(stix.parse_timestamp(version))))
        cursor = body.get("next") if body.get("more") else None
        if cursor is None:
            return out


def _revoke(store: Store, keys: HubKeys, log: AuditLog, peer: Peer, collection: Any,
            released: set[tuple[str, int]] | None, why: str) -> int:
    with store.engine.begin() as conn:
        gone = mirror.remove(store, conn, collection, keys, peer.id, released)
        if gone:
            log.append(f"peer:{peer.name}", peer.api_root, "DELETE", "peer-revoke", peer.url + "objects/", {}, 200,
                       f"{len(gone)} mirrored versions removed: {why}", gone, conn=conn)
    log.settle()
    return len(gone)


def push(store: Store, log: AuditLog, name: str, batch: int = PAGE,
         connect: Callable[[Peer], httpx.Client] = client) -> dict[str, Any]:
    """Send the peer what this hub's own members wrote in the mirror since the last push and the compact shares
    as a whole (tearline.release.outbound), as this hub's member there: the peer's gate judges it like any
    member's write. Returns {pushed, refused}. A push cut short sends its last envelope again, which the peer
    takes as the exact duplicate it is (TAXII 2.1 §5.5)."""
    peer = _load(store, name)
    collection = store.collection(peer.api_root, "intel")
    if collection is None:
        raise NotFound(f"the mirror compact {peer.api_root!r} is gone from this hub", details={"peer": name})
    with store.engine.connect() as conn:
        after = int(conn.scalar(select(peers.c.pushed_us).where(peers.c.id == peer.id)) or 0)
    pushed = refused = 0
    with _talking(store, peer), connect(peer) as http:
        while found := release.outbound(store, collection, after, batch):
            r = http.post(peer.url + "objects/", content=orjson.dumps({"objects": [o for _, o in found]}),
                          headers={"Content-Type": TAXII})
            if r.status_code != 202:
                raise Unavailable(f"peer {name!r} answered {r.status_code} to a push of {len(found)} versions: "
                                  f"{_said(r)}", details={"peer": name, "status": r.status_code})
            status = orjson.loads(r.content)
            after = found[-1][0]
            took, failed = int(status.get("success_count", 0)), int(status.get("failure_count", 0))
            why = "; ".join(f"{f.get('id')}: {f.get('message')}" for f in (status.get("failures") or [])[:3])
            with store.engine.begin() as conn:
                conn.execute(update(peers).where(peers.c.id == peer.id).values(
                    pushed_us=after, pushed=peers.c.pushed + took, push_refused=peers.c.push_refused + failed))
                log.append(f"peer:{name}", peer.api_root, "POST", "peer-push", peer.url + "objects/", {}, 202,
                           f"{took} of {len(found)} versions taken by {peer.url}" + (f"; refused: {why}" if why
                                                                                     else ""),
                           [str(o.get("id")) for _, o in found], conn=conn)
            log.settle()
            pushed, refused = pushed + took, refused + failed
    return {"peer": name, "pushed": pushed, "refused": refused}


def sync(store: Store, keys: HubKeys, log: AuditLog, name: str,
         progress: Callable[[int], None] | None = None) -> dict[str, Any]:
    """A pull, then a push."""
    return pull(store, keys, log, name, progress=progress) | push(store, log, name)


@contextlib.contextmanager
def _talking(store: Store, peer: Peer) -> Iterator[None]:
    """A conversation with the peer: what goes wrong (the network, an answer that is not TAXII, a refusal) is
    noted for `peer status` and raised as Unavailable, naming the peer."""
    try:
        yield
    except Unavailable as exc:
        _note(store, peer.id, last_error=exc.description)
        raise
    except (httpx.HTTPError, ValueError, TypeError, AttributeError) as exc:  # a body that is not what TAXII says
        _note(store, peer.id, last_error=f"{type(exc).__name__}: {exc}")
        raise Unavailable(f"peer {peer.name!r} at {peer.url}: {type(exc).__name__}: {exc}",
                          details={"peer": peer.name}) from None


def _said(r: httpx.Response) -> str:
    try:
        return str(orjson.loads(r.content).get("description") or r.text[:200])
    except (orjson.JSONDecodeError, AttributeError):
        return r.text[:200]


def _note(store: Store, peer_id: int, **values: Any) -> None:
    with store.engine.begin() as conn:
        conn.execute(update(peers).where(peers.c.id == peer_id).values(**values))
