"""The analyst dashboard, served by the hub at / : thin handlers that render tearline.views.

Sign-in is with a member's name and token (the same credentials as TAXII) or, for the operator
pages, the hub's admin token. A session lives in the store (tearline.cluster.Sessions: valid in every hub
process, the id kept hashed) with the hash the token had at sign-in, so each page authenticates again as
TAXII would: a rotated token or a removed member loses the dashboard at once, in every process.
Every member page reads through ``release.released`` — the TAXII gate and the member's copies — and
every request goes through the audit trail and the member's rate limits like any other. Forms carry
a per-session token and the cookie is SameSite=Strict, so another site cannot post in a member's name.
No asset comes from anywhere but the hub: the pages work with no internet at all.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import hmac
import inspect
from importlib import resources
from typing import Any
from urllib.parse import parse_qs, quote

import jinja2
import orjson
from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from markupsafe import Markup
from starlette.concurrency import run_in_threadpool

from .. import audit, boundaries, peering, probes, release, views, warn
from ..cluster import Sessions
from ..config import Settings
from ..errors import BadRequest, Forbidden, NotFound, TearlineError
from ..model import Collection, Member
from ..release import search as finding
from ..store import token_hash
from . import caller, charts, trail

COOKIE = "tearline_session"
SEARCH_LIMIT = 50
SESSION_SECONDS = 8 * 3600
MAX_FORM = 16 * 1024


@dataclasses.dataclass(frozen=True)
class Pages:
    """What the dashboard renders with: its templates, its stylesheet and the signed-in browsers."""

    env: jinja2.Environment
    css: bytes
    sessions: Sessions

    @classmethod
    def load(cls, sessions: Sessions) -> Pages:
        env = jinja2.Environment(loader=jinja2.PackageLoader("tearline.web", "templates"), autoescape=True,
                                 trim_blocks=True, lstrip_blocks=True)
        env.globals["label"] = views.label
        env.globals["badge"] = _badge
        env.globals["quote"] = lambda s: quote(str(s), safe="")
        env.filters["pretty"] = lambda obj: orjson.dumps(obj, option=orjson.OPT_INDENT_2).decode()
        return cls(env, resources.files("tearline.web").joinpath("static", "app.css").read_bytes(), sessions)


@jinja2.pass_context
def _badge(context: Any, obj: dict[str, Any]) -> Markup:
    """The TLP badge of a member's copy; its own unmarked objects fall under the compact's default."""
    found = views.tlp(obj, context.get("default_tlp") or "amber")
    if found is None:
        return Markup("")
    html = Markup('<span class="tlp {}" title="Traffic Light Protocol">{}</span>').format(found["css"], found["text"])
    if "parts" in found:
        html += Markup(' <span class="tlp-parts">{}</span>').format(found["parts"])
    return html


class SignedOut(Exception):
    """No valid session: the page answers with the sign-in form."""


def _pages(request: Request) -> Pages:
    found: Pages = request.app.state.pages
    return found


def _session(request: Request) -> dict[str, Any] | None:
    return _pages(request).sessions.get(request.cookies.get(COOKIE))


def page(request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
    member = context.get("member")
    if member is not None and "default_tlp" not in context:
        intel = caller.hub(request).store.collection(member.api_root, "intel")
        context["default_tlp"] = intel.rules.default_tlp if intel is not None else "amber"
    html = _pages(request).env.get_template(template).render(session=_session(request), path=request.url.path,
                                                             **context)
    response = HTMLResponse(html, status_code=status)
    # nothing outside the hub: no script, style, image or frame from anywhere else
    response.headers["Content-Security-Policy"] = ("default-src 'self'; img-src 'self' data:; style-src 'self' "
                                                   "'unsafe-inline'; script-src 'none'; frame-ancestors 'none'; "
                                                   "form-action 'self'")
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["Cache-Control"] = "no-store"
    return response


def _member(request: Request, kind: str = "read") -> tuple[Member, dict[str, Any]]:
    session = _session(request)
    if not session or session["kind"] != "member":
        raise SignedOut()
    member = caller.hub(request).store.authenticate_digest(session["credential"], session["name"])
    if member is None:  # token rotated or member removed since sign-in
        _pages(request).sessions.close(request.cookies.get(COOKIE))
        raise SignedOut()
    return caller.admitted(request, member, kind), session


def _operator(request: Request) -> dict[str, Any]:
    session = _session(request)
    admin_token = caller.hub(request).settings.admin_token
    if not session or session["kind"] != "operator" or not admin_token \
            or not hmac.compare_digest(session["credential"], token_hash(admin_token)):
        raise SignedOut()
    return session


async def _form(request: Request, session: dict[str, Any] | None = None) -> dict[str, str]:
    body = await request.body()
    if len(body) > MAX_FORM:
        raise BadRequest("the form is too large")
    fields = {k: v[0] for k, v in parse_qs(body.decode("utf-8", errors="replace")).items()}
    if session is not None and not hmac.compare_digest(fields.get("csrf", "").encode(), session["csrf"].encode()):
        raise Forbidden("this form has expired: reload the page and try again")
    return fields


def _intel(request: Request, member: Member) -> Collection:
    coll = caller.hub(request).store.collection(member.api_root, "intel")
    if coll is None:
        raise NotFound(f"compact {member.api_root} has no intel collection")
    return coll


def _copies(request: Request, member: Member, coll: Collection, types: tuple[str, ...] = (),
            ids: list[str] | None = None) -> list[dict[str, Any]]:
    """The member's copies, as TAXII sends them (of these types, or these ids in this order)."""
    if ids is not None and not ids:
        return []
    hub = caller.hub(request)
    found = list(release.released(hub.store, member, coll, hub.keys, dt.date.today(), types, ids or ()))
    if ids:
        order = {i: n for n, i in enumerate(ids)}
        found.sort(key=lambda o: order.get(o["id"], len(order)))
    return found


def _seen(request: Request, member: Member, types: tuple[str, ...]) -> views.Seen:
    return views.Seen.of(_copies(request, member, _intel(request, member), types))


def _refused(request: Request, exc: Exception) -> Response:
    """Sign-in when signed out; a TearlineError as a page with its status (never a 500 for a client's mistake)."""
    if isinstance(exc, SignedOut):
        if request.method == "GET":
            return RedirectResponse(f"/?next={quote(request.url.path)}", status_code=303)
        return page(request, "signin.html", 401, error="your session ended: sign in again")
    assert isinstance(exc, TearlineError)
    request.state.audit_reason = exc.description
    return page(request, "error.html", exc.status, error=exc)


def guarded(render: Any) -> Any:
    """``render`` with its refusals as pages. A plain function stays plain, so FastAPI runs it in the thread
    pool: the pages read the store, and the event loop must never wait on a database."""
    if inspect.iscoroutinefunction(render):
        @functools.wraps(render)
        async def handler(request: Request, **kw: Any) -> Response:
            try:
                return await render(request, **kw)
            except (SignedOut, TearlineError) as exc:
                # the page reads the session from the store: never on the event loop
                return await run_in_threadpool(_refused, request, exc)
        return handler

    @functools.wraps(render)
    def sync_handler(request: Request, **kw: Any) -> Response:
        try:
            return render(request, **kw)  # type: ignore[no-any-return]
        except (SignedOut, TearlineError) as exc:
            return _refused(request, exc)
    return sync_handler


# --- sign-in ----------------------------------------------------------------------------------------


def home(request: Request) -> Response:
    session = _session(request)
    if session:
        return RedirectResponse("/ui/operator/audit/" if session["kind"] == "operator" else "/ui/", status_code=303)
    return page(request, "signin.html", operator=bool(caller.hub(request).settings.admin_token))


async def _signed_in(request: Request, target: str, **who: Any) -> Response:
    response = RedirectResponse(target, status_code=303)
    sid = await run_in_threadpool(lambda: _pages(request).sessions.open(**who))
    response.set_cookie(COOKIE, sid, httponly=True, samesite="strict", max_age=SESSION_SECONDS, path="/")
    return response


async def signin(request: Request) -> Response:
    fields = await _form(request)
    name, token = fields.get("member", "").strip(), fields.get("token", "").strip()
    store = caller.hub(request).store
    member = await run_in_threadpool(store.authenticate, token, name) if name and token else None
    # a peer hub syncs over TAXII with its pinned certificate; the dashboard is for people, and a session
    # would let its token alone stand for it
    if member is not None and member.certificate is not None:
        member = None
    if member is None:
        request.state.audit_reason = "dashboard sign-in refused"
        operator = bool(caller.hub(request).settings.admin_token)
        return await run_in_threadpool(lambda: page(request, "signin.html", 401, operator=operator,
                                                    error="unknown member or wrong token"))
    # a sign-in is the member's request like any other: on record as its own, and held to its meta limit, so
    # that signing in in a loop costs the member's share and nobody else's
    await run_in_threadpool(caller.admitted, request, member, "meta")
    # the name signed in with: a person's (member/person) is how their token authenticates again
    return await _signed_in(request, "/ui/", kind="member", name=name, api_root=member.api_root,
                            credential=token_hash(token))


async def signin_operator(request: Request) -> Response:
    fields = await _form(request)
    admin_token = caller.hub(request).settings.admin_token
    if not admin_token or not hmac.compare_digest(fields.get("token", "").strip().encode(), admin_token.encode()):
        request.state.audit_reason = "operator sign-in refused"
        return await run_in_threadpool(lambda: page(request, "signin.html", 401, error="wrong operator token",
                                                    operator=bool(admin_token)))
    return await _signed_in(request, "/ui/operator/audit/", kind="operator", name="operator",
                      credential=token_hash(admin_token))


def signout(request: Request) -> Response:
    _pages(request).sessions.close(request.cookies.get(COOKIE))
    response = RedirectResponse("/", status_code=303)
    response.delete_cookie(COOKIE, path="/")
    return response


def stylesheet(request: Request) -> Response:
    return Response(_pages(request).css, media_type="text/css", headers={"Cache-Control": "max-age=3600"})


# --- member pages -----------------------------------------------------------------------------------


@guarded
def overview(request: Request) -> Response:
    member, _ = _member(request)
    coll = _intel(request, member)
    store = caller.hub(request).store
    today = dt.date.today()
    counts = release.type_counts(store, member, coll, today)
    newest = release.newest_ids(store, member, coll, today, 12, ("marking-definition", "relationship"))
    latest = _copies(request, member, coll, (), newest)
    root = store.api_root(member.api_root)
    policy = coll.rules
    with store.engine.connect() as conn:
        others = store.member_names(conn, member.api_root) if policy.members_visible else None
    return page(request, "overview.html", member=member, root=root, policy=policy, members=others,
                **views.overview(counts, latest))


@guarded
def timeline(request: Request) -> Response:
    member, _ = _member(request)
    country = request.query_params.get("country") or None
    data = views.timeline(_seen(request, member, views.EVENT_TYPES), country)
    if country and country not in data["choices"]:
        raise NotFound(f"no incidents you can see in {country!r}")
    title = f"Incidents you can see, {views.country_name(country) if country else 'all countries'}"
    svg = charts.timeline_svg(data["series"], title)
    return page(request, "timeline.html", member=member, country=country, chart=svg, title=title,
                country_name=views.country_name, **data)


@guarded
def province_map(request: Request) -> Response:
    member, _ = _member(request)
    dataset = request.query_params.get("dataset") or None
    data = views.provinces(_seen(request, member, views.EVENT_TYPES), dataset)
    if dataset and dataset not in data["datasets"]:
        raise NotFound(f"no incidents you can see from {dataset!r}")
    link = "/ui/map/?dataset=" + quote(data["dataset"] or "", safe="") + "&province={code}#province"
    svg = charts.map_svg(data["counts"], link)
    ranked = sorted(((boundaries.name(c), c, n) for c, n in data["counts"].items()), key=lambda r: -r[2])
    return page(request, "map.html", member=member, chart=svg, ranked=ranked,
                chosen=request.query_params.get("province"), **data)


@guarded
def graph(request: Request) -> Response:
    member, _ = _member(request)
    data = views.graph(_seen(request, member, views.GRAPH_TYPES))
    svg = charts.graph_svg(data, "/ui/objects/{id}/")
    return page(request, "graph.html", member=member, chart=svg, **data)


@guarded
def search(request: Request) -> Response:
    member, _ = _member(request)
    coll = _intel(request, member)
    hub = caller.hub(request)
    query = (request.query_params.get("q") or "")[:200]
    found = finding.search(hub.store, member, coll, hub.keys, dt.date.today(), query, SEARCH_LIMIT)
    return page(request, "search.html", member=member, query=query, found=found, limit=SEARCH_LIMIT)


@guarded
def detail(request: Request, object_id: str) -> Response:
    member, _ = _member(request)
    coll = _intel(request, member)
    found = _copies(request, member, coll, (), [object_id])
    if not found:  # the same answer for what does not exist and what the member may not see
        raise NotFound(f"no object {object_id!r}")
    obj = found[0]
    referrers = release.newest_ids(caller.hub(request).store, member, coll, dt.date.today(), 200, (), object_id)
    near = _copies(request, member, coll, (), [*views.references(obj), *referrers])
    far = [e for o in near if o["type"] in ("relationship", "sighting") and (e := views.other_end(o, object_id))]
    near += _copies(request, member, coll, (), far)
    return page(request, "object.html", member=member, obj=obj, **views.links(views.Seen.of([obj, *near]), obj))


@guarded
def inbox(request: Request) -> Response:
    member, session = _member(request, "meta")
    hub = caller.hub(request)
    warn.expire(hub.store)
    found = release.warnings_for(hub.store, member, hub.keys)
    return page(request, "warnings.html", member=member, warnings=found, csrf=session["csrf"],
                done=request.query_params.get("done"))


def _acknowledge(request: Request, member: Member, warning_id: str) -> None:
    if member.person is None:
        raise Forbidden(f"a warning is acknowledged by a person with their own token: sign in as "
                        f"{member.name}/<person>")
    hub = caller.hub(request)
    current = release.warning_for(hub.store, member, warning_id, hub.keys)
    if current["addressee"] != member.name:
        raise Forbidden(f"only {current['addressee']}, to whom it was delivered, can acknowledge it")
    warn.move(hub.store, warning_id, "acknowledge", member.name, f"by {member.person} (dashboard)", None, None,
              trail.recorder(hub.log, request, 303))


@guarded
async def acknowledge(request: Request, warning_id: str) -> Response:
    member, session = await run_in_threadpool(_member, request, "write")
    await _form(request, session)
    await run_in_threadpool(_acknowledge, request, member, warning_id)
    return RedirectResponse(f"/ui/warnings/?done={quote(warning_id)}", status_code=303)


@guarded
def forecasts(request: Request) -> Response:
    member, _ = _member(request)
    settings = caller.hub(request).settings
    run = _latest_forecasts(settings, _intel(request, member).rules.actor_names)
    return page(request, "forecasts.html", member=member, run=run, events_db=bool(settings.events_db),
                country_name=views.country_name)


# --- operator pages ---------------------------------------------------------------------------------


@guarded
def operator_audit(request: Request) -> Response:
    _operator(request)
    store = caller.hub(request).store
    report = audit.verify(store)
    entries = audit.latest(store, 100)
    return page(request, "audit.html", report=report, entries=[e | {"at": _when(e["at_us"])} for e in entries])


@guarded
def operator_alerts(request: Request) -> Response:
    _operator(request)
    store = caller.hub(request).store
    probes.scan(store)
    found = probes.stored_alerts(store, None, None, None)
    return page(request, "alerts.html", alerts=[a | {"at": _when(a["at_us"])} for a in found])


@guarded
def operator_peers(request: Request) -> Response:
    _operator(request)
    found = peering.listed(caller.hub(request).store)
    return page(request, "peers.html", peers=[p | {"tried": _when(p["last_try_us"]) if p["last_try_us"] else "never",
                                                   "ok": _when(p["last_ok_us"]) if p["last_ok_us"] else "never"}
                                              for p in found])


def router() -> APIRouter:
    api = APIRouter()
    html = {"response_class": HTMLResponse}
    api.add_api_route("/", home, methods=["GET"], **html)
    api.add_api_route("/signin/", signin, methods=["POST"])
    api.add_api_route("/signin/operator/", signin_operator, methods=["POST"])
    api.add_api_route("/signout/", signout, methods=["POST"])
    api.add_api_route("/ui/static/app.css", stylesheet, methods=["GET"])
    api.add_api_route("/ui/", overview, methods=["GET"], **html)
    api.add_api_route("/ui/timeline/", timeline, methods=["GET"], **html)
    api.add_api_route("/ui/map/", province_map, methods=["GET"], **html)
    api.add_api_route("/ui/graph/", graph, methods=["GET"], **html)
    api.add_api_route("/ui/objects/{object_id}/", detail, methods=["GET"], **html)
    api.add_api_route("/ui/warnings/", inbox, methods=["GET"], **html)
    api.add_api_route("/ui/warnings/{warning_id}/acknowledge/", acknowledge, methods=["POST"])
    api.add_api_route("/ui/forecasts/", forecasts, methods=["GET"], **html)
    api.add_api_route("/ui/search/", search, methods=["GET"], **html)
    api.add_api_route("/ui/operator/audit/", operator_audit, methods=["GET"], **html)
    api.add_api_route("/ui/operator/alerts/", operator_alerts, methods=["GET"], **html)
    api.add_api_route("/ui/operator/peers/", operator_peers, methods=["GET"], **html)
    return api


def _latest_forecasts(settings: Settings, actors: tuple[str, ...]) -> dict[str, Any] | None:
    # DuckDB and the forecasting stack (numpy among them) are loaded when the forecasts page is first
    # asked for, not by every hub: loaded at start they hold about 27 MB more in each hub process
    import duckdb

    from ..forecast import current

    if not settings.events_db:
        return None
    try:
        con = duckdb.connect(settings.events_db, read_only=True)
    except duckdb.Error:  # missing, or being written by the CLI right now
        return None
    try:
        return current.latest_run(con, actors)
    finally:
        con.close()


def _when(at_us: int) -> str:
    return dt.datetime.fromtimestamp(at_us / 1e6, dt.UTC).strftime("%Y-%m-%d %H:%M:%S")
