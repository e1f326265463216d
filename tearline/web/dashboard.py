"""The analyst dashboard, served by the hub at / : thin handlers that render tearline.views.

Sign-in is with a member's name and token (the same credentials as TAXII) or, for the operator
pages, the hub's admin token. A session lives in the hub's memory and keeps the token, so each page
authenticates again as TAXII would: a rotated token or a removed member loses the dashboard at once.
Every member page reads through ``release.released`` — the TAXII gate and the member's copies — and
every request goes through the audit trail and the member's rate limits like any other. Forms carry
a per-session token and the cookie is SameSite=Strict, so another site cannot post in a member's name.
No asset comes from anywhere but the hub: the pages work with no internet at all.
"""

from __future__ import annotations

import datetime as dt
import functools
import hmac
import secrets
import threading
import time
from importlib import resources
from typing import Any
from urllib.parse import parse_qs, quote

import orjson
from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from starlette.concurrency import run_in_threadpool

from .. import release, views, warn
from ..audit import AuditLog
from ..config import Settings
from ..errors import BadRequest, Forbidden, NotFound, TearlineError
from ..guard import RateLimiter
from ..keys import HubKeys
from ..model import Member
from ..store import Store
from . import caller, charts, trail

COOKIE = "tearline_session"
SESSION_SECONDS = 8 * 3600
MAX_FORM = 16 * 1024


class Sessions:
    """Signed-in browsers: a random id → who, until when. In memory: a restarted hub signs everyone out.
    At most MAX sessions are kept (the oldest go first), so sign-ins cannot grow the hub without end."""

    MAX = 10_000

    def __init__(self) -> None:
        self._by_id: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()

    def open(self, **who: Any) -> str:
        sid = secrets.token_urlsafe(32)
        with self._lock:
            self._by_id[sid] = who | {"csrf": secrets.token_urlsafe(24), "until": time.time() + SESSION_SECONDS}
            while len(self._by_id) > self.MAX:
                del self._by_id[next(iter(self._by_id))]
        return sid

    def valid(self, sid: str | None) -> bool:
        return self.get(sid) is not None

    def get(self, sid: str | None) -> dict[str, Any] | None:
        with self._lock:
            found = self._by_id.get(sid or "")
            if found and found["until"] < time.time():
                del self._by_id[sid or ""]
                return None
            return found

    def close(self, sid: str | None) -> None:
        with self._lock:
            self._by_id.pop(sid or "", None)


def _templates() -> Any:
    import jinja2

    env = jinja2.Environment(loader=jinja2.PackageLoader("tearline.web", "templates"), autoescape=True,
                             trim_blocks=True, lstrip_blocks=True)
    env.globals["label"] = views.label
    env.globals["quote"] = lambda s: quote(str(s), safe="")
    env.filters["pretty"] = lambda obj: orjson.dumps(obj, option=orjson.OPT_INDENT_2).decode()
    return env


class SignedOut(Exception):
    """No valid session: the page answers with the sign-in form."""


def router(store: Store, settings: Settings, limiter: RateLimiter, keys: HubKeys, log: AuditLog,
           sessions: Sessions) -> APIRouter:
    api = APIRouter()
    env = _templates()
    css = resources.files("tearline.web").joinpath("static", "app.css").read_bytes()

    def page(request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
        session = sessions.get(request.cookies.get(COOKIE))
        html = env.get_template(template).render(session=session, path=request.url.path, **context)
        response = HTMLResponse(html, status_code=status)
        # nothing outside the hub: no script, style, image or frame from anywhere else
        response.headers["Content-Security-Policy"] = ("default-src 'self'; img-src 'self' data:; style-src 'self' "
                                                       "'unsafe-inline'; script-src 'none'; frame-ancestors 'none'; "
                                                       "form-action 'self'")
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "no-referrer"
        response.headers["Cache-Control"] = "no-store"
        return response

    def member_of(request: Request, kind: str = "read") -> tuple[Member, dict[str, Any]]:
        session = sessions.get(request.cookies.get(COOKIE))
        if not session or session["kind"] != "member":
            raise SignedOut()
        member = store.authenticate(session["token"], session["name"])
        if member is None:  # token rotated or member removed since sign-in
            sessions.close(request.cookies.get(COOKIE))
            raise SignedOut()
        return caller.admitted(request, member, limiter, kind), session

    def operator_of(request: Request) -> dict[str, Any]:
        session = sessions.get(request.cookies.get(COOKIE))
        if not session or session["kind"] != "operator" or not settings.admin_token:
            raise SignedOut()
        return session

    async def form(request: Request, session: dict[str, Any] | None = None) -> dict[str, str]:
        body = await request.body()
        if len(body) > MAX_FORM:
            raise BadRequest("the form is too large")
        fields = {k: v[0] for k, v in parse_qs(body.decode("utf-8", errors="replace")).items()}
        if session is not None and not hmac.compare_digest(fields.get("csrf", ""), session["csrf"]):
            raise Forbidden("this form has expired: reload the page and try again")
        return fields

    def intel(member: Member) -> Any:
        coll = store.collection(member.api_root, "intel")
        if coll is None:
            raise NotFound(f"compact {member.api_root} has no intel collection")
        return coll

    def copies(member: Member, coll: Any, types: tuple[str, ...] = (), ids: list[str] | None = None
               ) -> list[dict[str, Any]]:
        """The member's copies, as TAXII sends them (of these types, or these ids in this order)."""
        if ids is not None and not ids:
            return []
        found = list(release.released(store, member, coll, keys, dt.date.today(), types, ids or ()))
        if ids:
            order = {i: n for n, i in enumerate(ids)}
            found.sort(key=lambda o: order.get(o["id"], len(order)))
        return found

    def seen(member: Member, types: tuple[str, ...]) -> views.Seen:
        return views.Seen.of(copies(member, intel(member), types))

    def guarded(render: Any) -> Any:
        """Sign-in when signed out; a TearlineError as a page with its status (never a 500 for a client's mistake)."""
        @functools.wraps(render)
        async def handler(request: Request, **kw: Any) -> Response:
            try:
                return await render(request, **kw)
            except SignedOut:
                if request.method == "GET":
                    return RedirectResponse(f"/?next={quote(request.url.path)}", status_code=303)
                return page(request, "signin.html", 401, error="your session ended: sign in again")
            except TearlineError as exc:
                request.state.audit_reason = exc.description
                return page(request, "error.html", exc.status, error=exc)
        return handler

    # --- sign-in ----------------------------------------------------------------------------------

    @api.get("/", response_class=HTMLResponse)
    async def home(request: Request) -> Response:
        session = sessions.get(request.cookies.get(COOKIE))
        if session:
            return RedirectResponse("/ui/operator/audit/" if session["kind"] == "operator" else "/ui/", status_code=303)
        return page(request, "signin.html", operator=bool(settings.admin_token))

    @api.post("/signin/")
    async def signin(request: Request) -> Response:
        fields = await form(request)
        name, token = fields.get("member", "").strip(), fields.get("token", "").strip()
        member = await run_in_threadpool(store.authenticate, token, name) if name and token else None
        if member is None:
            request.state.audit_reason = "dashboard sign-in refused"
            return page(request, "signin.html", 401, error="unknown member or wrong token",
                        operator=bool(settings.admin_token))
        request.state.audit_member = member
        response = RedirectResponse("/ui/", status_code=303)
        # the name signed in with: a person's (member/person) is how their token authenticates again
        sid = sessions.open(kind="member", name=name, api_root=member.api_root, token=token)
        response.set_cookie(COOKIE, sid, httponly=True, samesite="strict", max_age=SESSION_SECONDS, path="/")
        return response

    @api.post("/signin/operator/")
    async def signin_operator(request: Request) -> Response:
        fields = await form(request)
        if not settings.admin_token or not hmac.compare_digest(fields.get("token", "").strip().encode(),
                                                               settings.admin_token.encode()):
            request.state.audit_reason = "operator sign-in refused"
            return page(request, "signin.html", 401, error="wrong operator token", operator=bool(settings.admin_token))
        response = RedirectResponse("/ui/operator/audit/", status_code=303)
        sid = sessions.open(kind="operator", name="operator")
        response.set_cookie(COOKIE, sid, httponly=True, samesite="strict", max_age=SESSION_SECONDS, path="/")
        return response

    @api.post("/signout/")
    async def signout(request: Request) -> Response:
        sessions.close(request.cookies.get(COOKIE))
        response = RedirectResponse("/", status_code=303)
        response.delete_cookie(COOKIE, path="/")
        return response

    @api.get("/ui/static/app.css")
    def stylesheet() -> Response:
        return Response(css, media_type="text/css", headers={"Cache-Control": "max-age=3600"})

    # --- member pages --------------------------------------------------------------------------------

    @api.get("/ui/", response_class=HTMLResponse)
    @guarded
    async def overview(request: Request) -> Response:
        member, _ = await run_in_threadpool(member_of, request)
        coll = await run_in_threadpool(intel, member)
        today = dt.date.today()
        counts = await run_in_threadpool(release.type_counts, store, member, coll, today)
        newest = await run_in_threadpool(release.newest_ids, store, member, coll, today, 12,
                                         ("marking-definition", "relationship"))
        latest = await run_in_threadpool(copies, member, coll, (), newest)
        root = store.api_root(member.api_root)
        policy = coll.rules
        with store.engine.connect() as conn:
            others = store.member_names(conn, member.api_root) if policy.members_visible else None
        return page(request, "overview.html", member=member, root=root, policy=policy, members=others,
                    **views.overview(counts, latest))

    @api.get("/ui/timeline/", response_class=HTMLResponse)
    @guarded
    async def timeline(request: Request) -> Response:
        member, _ = await run_in_threadpool(member_of, request)
        country = request.query_params.get("country") or None
        data = views.timeline(await run_in_threadpool(seen, member, views.EVENT_TYPES), country)
        if country and country not in data["choices"]:
            raise NotFound(f"no incidents you can see in {country!r}")
        title = f"Incidents you can see, {views.country_name(country) if country else 'all countries'}"
        svg = await run_in_threadpool(charts.timeline_svg, data["series"], title)
        return page(request, "timeline.html", member=member, country=country, chart=svg, title=title,
                    country_name=views.country_name, **data)

    @api.get("/ui/map/", response_class=HTMLResponse)
    @guarded
    async def province_map(request: Request) -> Response:
        member, _ = await run_in_threadpool(member_of, request)
        data = views.provinces(await run_in_threadpool(seen, member, views.EVENT_TYPES),
                               request.query_params.get("dataset") or None)
        if request.query_params.get("dataset") and request.query_params["dataset"] not in data["datasets"]:
            raise NotFound(f"no incidents you can see from {request.query_params['dataset']!r}")
        link = "/ui/map/?dataset=" + quote(data["dataset"] or "", safe="") + "&province={code}#province"
        svg = await run_in_threadpool(charts.map_svg, data["counts"], link)
        from .. import boundaries

        ranked = sorted(((boundaries.name(c), c, n) for c, n in data["counts"].items()), key=lambda r: -r[2])
        return page(request, "map.html", member=member, chart=svg, ranked=ranked,
                    chosen=request.query_params.get("province"), **data)

    @api.get("/ui/graph/", response_class=HTMLResponse)
    @guarded
    async def graph(request: Request) -> Response:
        member, _ = await run_in_threadpool(member_of, request)
        data = views.graph(await run_in_threadpool(seen, member, views.GRAPH_TYPES))
        svg = charts.graph_svg(data, "/ui/objects/{id}/")
        return page(request, "graph.html", member=member, chart=svg, **data)

    @api.get("/ui/objects/{object_id}/", response_class=HTMLResponse)
    @guarded
    async def detail(request: Request, object_id: str) -> Response:
        member, _ = await run_in_threadpool(member_of, request)
        coll = await run_in_threadpool(intel, member)
        found = await run_in_threadpool(copies, member, coll, (), [object_id])
        if not found:  # the same answer for what does not exist and what the member may not see
            raise NotFound(f"no object {object_id!r}")
        obj = found[0]
        referrers = await run_in_threadpool(release.newest_ids, store, member, coll, dt.date.today(), 200, (),
                                            object_id)
        near = await run_in_threadpool(copies, member, coll, (), [*views.references(obj), *referrers])
        far = [e for o in near if o["type"] in ("relationship", "sighting") and (e := views.other_end(o, object_id))]
        near += await run_in_threadpool(copies, member, coll, (), far)
        return page(request, "object.html", member=member, obj=obj, **views.links(views.Seen.of([obj, *near]), obj))

    @api.get("/ui/warnings/", response_class=HTMLResponse)
    @guarded
    async def inbox(request: Request) -> Response:
        member, session = await run_in_threadpool(member_of, request, "meta")
        await run_in_threadpool(warn.expire, store)
        found = await run_in_threadpool(release.warnings_for, store, member, keys)
        return page(request, "warnings.html", member=member, warnings=found, csrf=session["csrf"],
                    done=request.query_params.get("done"))

    @api.post("/ui/warnings/{warning_id}/acknowledge/")
    @guarded
    async def acknowledge(request: Request, warning_id: str) -> Response:
        member, session = await run_in_threadpool(member_of, request, "write")
        await form(request, session)
        if member.person is None:
            raise Forbidden(f"a warning is acknowledged by a person with their own token: sign in as "
                            f"{member.name}/<person>")
        current = await run_in_threadpool(release.warning_for, store, member, warning_id, keys)
        if current["addressee"] != member.name:
            raise Forbidden(f"only {current['addressee']}, to whom it was delivered, can acknowledge it")
        await run_in_threadpool(warn.move, store, warning_id, "acknowledge", member.name, f"by {member.person} (dashboard)",
                                None, None, trail.recorder(log, request, 303))
        return RedirectResponse(f"/ui/warnings/?done={quote(warning_id)}", status_code=303)

    @api.get("/ui/forecasts/", response_class=HTMLResponse)
    @guarded
    async def forecasts(request: Request) -> Response:
        member, _ = await run_in_threadpool(member_of, request)
        policy = (await run_in_threadpool(intel, member)).rules
        run = await run_in_threadpool(_latest_forecasts, settings, policy.actor_names)
        return page(request, "forecasts.html", member=member, run=run, events_db=bool(settings.events_db),
                    country_name=views.country_name)

    # --- operator pages ----------------------------------------------------------------------------

    @api.get("/ui/operator/audit/", response_class=HTMLResponse)
    @guarded
    async def operator_audit(request: Request) -> Response:
        operator_of(request)
        from .. import audit

        report = await run_in_threadpool(audit.verify, store)
        entries = await run_in_threadpool(audit.latest, store, 100)
        return page(request, "audit.html", report=report, entries=[e | {"at": _when(e["at_us"])} for e in entries])

    @api.get("/ui/operator/alerts/", response_class=HTMLResponse)
    @guarded
    async def operator_alerts(request: Request) -> Response:
        operator_of(request)
        from .. import probes

        await run_in_threadpool(probes.scan, store)
        found = await run_in_threadpool(probes.stored_alerts, store, None, None, None)
        return page(request, "alerts.html", alerts=[a | {"at": _when(a["at_us"])} for a in found])

    return api


def _latest_forecasts(settings: Settings, actors: tuple[str, ...]) -> dict[str, Any] | None:
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
    return dt.datetime.fromtimestamp(at_us / 1e6, dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
