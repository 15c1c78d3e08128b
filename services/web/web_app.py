"""The HTTP side of the web stage (Starlette): five pages sharing one small
script, a server-sent event stream of the view, snapshot thumbnails, and the
page's requests — log in and out, a dry-run plan, a config change.

Reading needs nothing. Every POST needs the double-submit CSRF token (see
`login`); a config change needs the operator's session too. A dry run needs
no session: it changes nothing, it only asks the allocator.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator, Awaitable, Callable
from html import escape
from importlib.resources import files
from typing import Any, Protocol

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from schemas.topic_spec import is_valid_level
from schemas.topics import STAGES
from services.common.door import PublishFailed
from services.web.gateway_view import GatewayView, Json, Update
from services.web.live_feed import Follower, LiveFeed, TooManyStreams
from services.web.login import (
    CSRF_COOKIE,
    CSRF_HEADER,
    SESSION_COOKIE,
    Sessions,
    TooManyAttempts,
    csrf_ok,
    new_token,
)

PAGES = {
    "overview": "Overview",
    "alerts": "Alerts",
    "allocation": "Allocation",
    "analytics": "Analytics",
    "config": "Config",
}
STATIC_TYPES = {"app.js": "text/javascript", "app.css": "text/css", "icon.svg": "image/svg+xml"}
KEEPALIVE_S = 15.0
MAX_BODY_BYTES = 64 * 1024
STATIC = files("services.web") / "static"
SECURITY_HEADERS = {
    "content-security-policy": (
        "default-src 'self'; img-src 'self'; style-src 'self'; script-src 'self'; "
        "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    ),
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
}


class Busy(Exception):
    """Too many requests are waiting for an answer already."""


class NoAnswer(Exception):
    """The stage (or the allocator) did not answer in time."""


class PageBackend(Protocol):
    gateway_id: str
    view: GatewayView
    feed: LiveFeed
    sessions: Sessions

    async def dry_run(self, budget_kbps: float, solver: str | None) -> Json: ...

    async def apply_config(self, stage: str, values: dict[str, Any]) -> Json: ...


def _refused(status: int, reason: str, field: str = "request") -> JSONResponse:
    body = {"error": reason, "errors": [{"field": field, "reason": reason}]}
    return JSONResponse(body, status_code=status, headers=SECURITY_HEADERS)


def _sse(kind: str, data: Json) -> bytes:
    return b"event: " + kind.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


async def _next_update(follower: Follower, feed: LiveFeed) -> Update | None:
    """The next update; None after KEEPALIVE_S of silence. Raises EOFError
    once the stream must end (the browser fell behind, or the stage stops)."""
    if follower.dropped.is_set() or feed.closed.is_set():
        raise EOFError
    if not follower.queue.empty():
        return follower.queue.get_nowait()
    getting = asyncio.ensure_future(follower.queue.get())
    ending = {
        asyncio.ensure_future(follower.dropped.wait()),
        asyncio.ensure_future(feed.closed.wait()),
    }
    try:
        done, _ = await asyncio.wait(
            {getting, *ending}, timeout=KEEPALIVE_S, return_when=asyncio.FIRST_COMPLETED
        )
    finally:
        for task in (getting, *ending):
            task.cancel()
    if getting in done:
        return getting.result()
    if done:
        raise EOFError
    return None


def build_app(backend: PageBackend) -> Starlette:
    shell = (STATIC / "shell.html").read_text()

    def logged_in(request: Request) -> bool:
        return backend.sessions.valid(request.cookies.get(SESSION_COOKIE))

    def page(name: str) -> Callable[[Request], Awaitable[Response]]:
        async def render(request: Request) -> Response:
            token = request.cookies.get(CSRF_COOKIE) or new_token()
            nav = "".join(
                f'<a href="{"/" if key == "overview" else "/" + key}"'
                f"{' aria-current=page' if key == name else ''}>{title}</a>"
                for key, title in PAGES.items()
            )
            html = (
                shell.replace("{title}", PAGES[name])
                .replace("{page}", name)
                .replace("{csrf}", escape(token))
                .replace("{nav}", nav)
            )
            response = Response(html, media_type="text/html", headers=SECURITY_HEADERS)
            response.headers["cache-control"] = "no-store"
            if request.cookies.get(CSRF_COOKIE) != token:
                response.set_cookie(CSRF_COOKIE, token, httponly=True, samesite="strict")
            return response

        return render

    async def static(request: Request) -> Response:
        name = request.path_params["name"]
        media = STATIC_TYPES.get(name)
        if media is None:
            return Response(status_code=404)
        body = (STATIC / name).read_bytes()
        return Response(body, media_type=media, headers={"cache-control": "max-age=300"})

    def everything(request: Request) -> Json:
        auth = {"logged_in": logged_in(request), "login_enabled": backend.sessions.enabled}
        view = backend.view.everything()
        return {**view, "gateway": backend.gateway_id, "stage_names": list(STAGES), "auth": auth}

    async def state(request: Request) -> Response:
        return JSONResponse(everything(request))

    async def events(request: Request) -> Response:
        try:
            follower = backend.feed.follow()
        except TooManyStreams as error:
            return _refused(503, str(error))
        first = everything(request)

        async def stream() -> AsyncIterator[bytes]:
            try:
                yield b"retry: 1000\n" + _sse("state", first)
                while True:
                    try:
                        update = await _next_update(follower, backend.feed)
                    except EOFError:
                        return
                    yield b": keepalive\n\n" if update is None else _sse(*update)
            finally:
                backend.feed.leave(follower)

        headers = {"cache-control": "no-store", "x-accel-buffering": "no"}
        return StreamingResponse(stream(), media_type="text/event-stream", headers=headers)

    async def snapshot(request: Request) -> Response:
        key = f"{request.path_params['camera']}/{request.path_params['label']}"
        body = backend.view.thumbnails.get(key)
        if body is None:
            return Response(status_code=404)
        # The page asks for `?t=<the snapshot's time>`: a new snapshot is a new URL.
        return Response(body, media_type="image/jpeg", headers={"cache-control": "max-age=3600"})

    async def checked_body(request: Request, need_login: bool) -> Json | Response:
        """The request's JSON object, or the response that refuses it."""
        origin = request.headers.get("origin")
        if origin is not None and origin.split("://", 1)[-1] != request.headers.get("host"):
            return _refused(403, "cross-origin request refused")
        if not csrf_ok(request.cookies.get(CSRF_COOKIE), request.headers.get(CSRF_HEADER)):
            return _refused(403, "missing or wrong CSRF token")
        if need_login and not logged_in(request):
            return _refused(403, "log in as the operator to change anything")
        raw = await request.body()
        if len(raw) > MAX_BODY_BYTES:
            return _refused(413, f"larger than {MAX_BODY_BYTES} bytes")
        try:
            body = orjson.loads(raw or b"{}")
        except orjson.JSONDecodeError as error:
            return _refused(400, f"invalid JSON: {error}", "payload")
        if not isinstance(body, dict):
            return _refused(400, "must be a JSON object", "payload")
        return body

    def posted(
        handle: Callable[[Request, Json], Awaitable[Response]],
    ) -> Callable[[Request], Awaitable[Response]]:
        """An endpoint that needs no login: `handle` gets the checked JSON body."""

        async def endpoint(request: Request) -> Response:
            body = await checked_body(request, need_login=False)
            return body if isinstance(body, Response) else await handle(request, body)

        return endpoint

    async def login(request: Request, body: Json) -> Response:
        password = body.get("password")
        try:
            token = backend.sessions.log_in(password if isinstance(password, str) else "")
        except TooManyAttempts as error:
            return _refused(429, str(error), "password")
        if token is None:
            why = "wrong password" if backend.sessions.enabled else "no operator password is set"
            return _refused(401, why, "password")
        response = JSONResponse({"logged_in": True}, headers=SECURITY_HEADERS)
        response.set_cookie(SESSION_COOKIE, token, httponly=True, samesite="strict")
        return response

    async def logout(request: Request, body: Json) -> Response:
        backend.sessions.log_out(request.cookies.get(SESSION_COOKIE))
        response = JSONResponse({"logged_in": False}, headers=SECURITY_HEADERS)
        response.delete_cookie(SESSION_COOKIE)
        return response

    async def plan(request: Request, body: Json) -> Response:
        budget = body.get("budget_kbps")
        if isinstance(budget, bool) or not isinstance(budget, int | float):
            return _refused(400, "a number of kbit/s is required", "budget_kbps")
        if not math.isfinite(budget) or budget < 0:
            return _refused(400, "must be a finite number >= 0", "budget_kbps")
        solver = body.get("solver")
        if solver is not None and not isinstance(solver, str):
            return _refused(400, "must be a solver name", "solver")
        return await _answered(backend.dry_run(float(budget), solver))

    async def config(request: Request) -> Response:
        stage = request.path_params["stage"]
        if stage not in STAGES or not is_valid_level(stage):
            return _refused(404, f"no stage {stage!r}", "stage")
        body = await checked_body(request, need_login=True)
        if isinstance(body, Response):
            return body
        values = body.get("config")
        if not isinstance(values, dict):
            return _refused(400, "must be a JSON object", "config")
        return await _answered(backend.apply_config(stage, values))

    routes = [Route("/" if key == "overview" else f"/{key}", page(key)) for key in PAGES]
    routes += [
        Route("/static/{name}", static),
        Route("/api/state", state),
        Route("/events", events),
        Route("/snapshot/{camera}/{label}.jpg", snapshot),
        Route("/login", posted(login), methods=["POST"]),
        Route("/logout", posted(logout), methods=["POST"]),
        Route("/api/plan", posted(plan), methods=["POST"]),
        Route("/api/config/{stage}", config, methods=["POST"]),
    ]
    return Starlette(routes=routes)


async def _answered(request: Awaitable[Json]) -> Response:
    try:
        answer = await request
    except Busy as error:
        return _refused(503, str(error))
    except NoAnswer as error:
        return _refused(504, str(error))
    except PublishFailed as error:
        return _refused(502, f"could not reach the broker: {error}")
    return JSONResponse(answer, headers=SECURITY_HEADERS)
