"""The HTTP side of SPEC §6 on aiohttp: the ``/api/v1`` JSON API, the webhook, the web
pages, the calendar feed, ``/healthz`` and ``/metrics``.

:func:`make_app` builds the :class:`aiohttp.web.Application`; :class:`WebServer` runs it on
the bot's loop (``AppRunner`` + ``TCPSite``) with :meth:`~WebServer.start` and
:meth:`~WebServer.stop`.  The documents themselves, their shapes, error codes and the
webhook's acceptance rules are in :mod:`deploybot.web.api`, the pages and what they show
in :mod:`deploybot.web.pages`; this module only routes, reads requests and turns
:class:`~deploybot.web.api.ApiError` and aiohttp's own errors into the JSON error envelope
``{"error": {"code", "message"}}`` for everything under ``/api/``.

The webhook (``POST /api/v1/events``)
    Its rules are the core's (:func:`deploybot.web.api.webhook_precheck` before the body
    is read, :func:`deploybot.web.api.webhook_document` after); here the body is read, up
    to :data:`MAX_BODY` bytes (aiohttp's 413 beyond), and the answer is sent with its
    status (202, 200 for a duplicate) or :class:`~deploybot.web.api.ApiError`'s, with its
    headers (``Retry-After`` on a 503).  A standby checks an event the same way and keeps
    it in the store's inbox for the active instance (202 ``"queued": true``).

Before any route, :func:`_guard` lets through only requests whose ``Host`` names this
server and, with a read token, that carry it (:func:`deploybot.web.api.check_host`,
:func:`~deploybot.web.api.check_read_token`): 421 and 401 in the JSON envelope, on every
path.  Every answer says ``Server: deploybot``, without versions.

Unexpected errors are logged with a traceback and a reference; the client gets a 500 with
that reference only.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from aiohttp import hdrs, web
from prometheus_client.registry import CollectorRegistry
from yarl import URL

from deploybot.bus.reactor import BusReactor
from deploybot.core import Core
from deploybot.deployday.record import record_of
from deploybot.health import IrcStatus, NetworkStatuses, Role
from deploybot.plans.model import Plan
from deploybot.postmortem import draft_html, draft_markdown
from deploybot.web import api, metrics
from deploybot.web.calendarfeed import calendar_feed
from deploybot.web.pages import deployment_page_of, digest_page_of, front_page

log = logging.getLogger(__name__)

#: Largest request body accepted (the webhook's; the API takes no other body).
MAX_BODY = api.MAX_BODY
SHUTDOWN_TIMEOUT = 5.0
#: The ``Server`` header of every answer (aiohttp's names the Python and aiohttp versions).
SERVER = "deploybot"
JSON_TYPE = "application/json"

_STATUS_CODES = {
    400: "bad-request",
    401: "unauthorized",
    403: "forbidden",
    404: "not-found",
    405: "method-not-allowed",
    411: "length-required",
    413: "too-large",
    415: "unsupported-media-type",
    421: "misdirected-request",
    500: "internal-error",
    503: "unavailable",
}
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class WebStartError(Exception):
    """The server could not listen (e.g. the port is taken); the message says where."""


@dataclass
class _State:
    core: Core
    reactor: BusReactor
    irc_status: Callable[[], IrcStatus | None]
    max_body: int
    read_token: str | None = field(default=None, repr=False)
    network_status: Callable[[], NetworkStatuses] = dict
    role: Callable[[], Role] = Role
    requests: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    #: Holds only :class:`~deploybot.web.metrics.DeploybotCollector`, reading this state.
    registry: CollectorRegistry = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.registry = metrics.registry_for(self.core, self.readings)

    def readings(self) -> metrics.Readings:
        """What /metrics reads at scrape time besides the store and the plans."""
        return metrics.Readings(
            bus=self.reactor.stats.as_dict(),
            duplicates=self.reactor.duplicates,
            http_requests=dict(self.requests),
            irc=self.irc_status(),
            networks=self.network_status(),
            role=self.role(),
        )


STATE = web.AppKey("deploybot_state", _State)


def _state(request: web.Request) -> _State:
    return request.app[STATE]


def _json(document: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    text = json.dumps(document, ensure_ascii=False)
    return web.Response(
        text=text, status=status, content_type=JSON_TYPE, charset="utf-8", headers=headers
    )


def _error(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> web.Response:
    return _json(api.error_document(code, message), status, headers)


def _query(request: web.Request) -> list[tuple[str, str]]:
    return list(request.rel_url.query.items())


def _route(request: web.Request) -> str:
    """The route template that matched (bounded label values for /metrics)."""
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else "unmatched"


# -- middleware ---------------------------------------------------------------------------

_Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def _errors(request: web.Request, handler: _Handler) -> web.StreamResponse:
    """Errors as the JSON envelope under /api/ (and for a refused Host or token), a short
    text elsewhere; count requests."""
    is_api = request.path == "/api" or request.path.startswith("/api/")
    status = 500
    try:
        try:
            _guard(request)
            response = await handler(request)
        except api.ApiError as error:
            response = _json(error.document(), error.status, error.headers or None)
        except web.HTTPException as error:
            if not is_api or error.status < 400:
                status = error.status
                raise
            response = _http_error(error)
        except Exception:
            ref = secrets.token_hex(3)
            log.exception("internal error (ref %s) on %s %s", ref, request.method, request.path)
            message = f"internal error (ref {ref}); the admins can find it in the log"
            if is_api:
                response = _error(500, "internal-error", message)
            else:
                response = web.Response(text=message + "\n", status=500)
        status = response.status
        return response
    finally:
        method = request.method if request.method in _METHODS else "other"
        _state(request).requests[(method, _route(request), str(status))] += 1


def _guard(request: web.Request) -> None:
    """The Host check and the read token, before any route (ApiError 421 or 401)."""
    state = _state(request)
    api.check_host(state.core.config, request.headers.get(hdrs.HOST))
    api.check_read_token(
        state.read_token, request.path, request.method, request.headers.get(hdrs.AUTHORIZATION)
    )


async def _server_header(_: web.Request, response: web.StreamResponse) -> None:
    response.headers[hdrs.SERVER] = SERVER


def _http_error(error: web.HTTPException) -> web.Response:
    """aiohttp's own 404, 405, 413… as the JSON envelope (keeping ``Allow`` on a 405)."""
    code = _STATUS_CODES.get(error.status, f"http-{error.status}")
    headers = {}
    if isinstance(error, web.HTTPMethodNotAllowed):
        allowed = ", ".join(sorted(error.allowed_methods))
        message = f"{error.method} is not allowed here; allowed: {allowed}"
        headers["Allow"] = allowed
    elif isinstance(error, web.HTTPNotFound):
        message = "no such API route; /api/v1/ lists them"
    elif isinstance(error, web.HTTPRequestEntityTooLarge):
        message = "the request body is too large"
    else:
        message = error.reason
    return _error(error.status, code, message, headers)


# -- API handlers -------------------------------------------------------------------------


async def _api_index(request: web.Request) -> web.Response:
    return _json(api.index_document(_query(request)))


async def _schema(request: web.Request) -> web.Response:
    body = api.schema_bytes(request.match_info["file"])
    return web.Response(body=body, headers={"Content-Type": f"{api.SCHEMA_TYPE}; charset=utf-8"})


async def _deployments(request: web.Request) -> web.Response:
    return _json(api.deployments_document(_state(request).core, _query(request)))


async def _deployment(request: web.Request) -> web.Response:
    core = _state(request).core
    return _json(api.deployment_document(core, request.match_info["id"], _query(request)))


async def _freezes(request: web.Request) -> web.Response:
    return _json(api.freezes_document(_state(request).core, _query(request)))


async def _drift(request: web.Request) -> web.Response:
    core = _state(request).core
    return _json(api.drift_document(core, request.match_info["id"], _query(request)))


async def _incidents(request: web.Request) -> web.Response:
    return _json(api.incidents_document(_state(request).core, _query(request)))


async def _incident(request: web.Request) -> web.Response:
    core = _state(request).core
    return _json(api.incident_document(core, request.match_info["n"], _query(request)))


async def _digest(request: web.Request) -> web.Response:
    core = _state(request).core
    day, query = request.match_info["date"], _query(request)
    # off the loop (Core.read): a big day's digest reads every incident of the day
    document = await core.read(
        lambda store: api.digest_document(core.with_store(store), day, query)
    )
    return _json(document)


async def _event(request: web.Request) -> web.Response:
    state = _state(request)
    signed = api.webhook_precheck(
        state.core,
        request.headers.get(api.SIGNATURE_HEADER),
        request.headers.get(api.TIMESTAMP_HEADER),
        request.content_length,
        state.max_body,
    )
    body = await request.read()  # 413 from aiohttp beyond client_max_size
    status, document = api.webhook_document(
        state.core,
        state.reactor,
        body,
        signed,
        request.remote or "",
        state.max_body,
        queue=state.role().role == "standby",  # kept for the active one, in the store
    )
    return _json(document, status=status)


# -- health, metrics, pages ---------------------------------------------------------------


async def _healthz(request: web.Request) -> web.Response:
    state = _state(request)
    status, document = api.health_document(
        state.core, state.irc_status(), state.network_status(), state.role()
    )
    return _json(document, status)


async def _metrics(request: web.Request) -> web.Response:
    """The text format 0.0.4, or OpenMetrics when ``Accept`` asks for it."""
    body, content_type = metrics.exposition(
        _state(request).registry, request.headers.get(hdrs.ACCEPT)
    )
    return web.Response(body=body, headers={"Content-Type": content_type})


def _html(text: str) -> web.Response:
    return web.Response(text=text, content_type="text/html", charset="utf-8")


async def _index(request: web.Request) -> web.Response:
    return _html(front_page(_state(request).core))


async def _deployment_page(request: web.Request) -> web.Response:
    plan_id = request.match_info["id"]
    page = deployment_page_of(_state(request).core, plan_id)
    if page is None:
        raise web.HTTPNotFound(text=f"no deployment {plan_id[:60]!r}\n")
    return _html(page)


def _plan_or_404(core: Core, plan_id: str) -> Plan:
    plan = core.book.get(plan_id)
    if plan is None:
        raise web.HTTPNotFound(text=f"no deployment {plan_id[:60]!r}\n")
    return plan


async def _postmortem_page(request: web.Request) -> web.Response:
    core = _state(request).core
    plan = _plan_or_404(core, request.match_info["id"])
    return _html(draft_html(record_of(core, plan), core.config.timezone, core.now()))


async def _postmortem_markdown(request: web.Request) -> web.Response:
    core = _state(request).core
    plan = _plan_or_404(core, request.match_info["id"])
    text = draft_markdown(record_of(core, plan), core.config.timezone)
    return web.Response(text=text, content_type="text/markdown", charset="utf-8")


def _page_day(text: str) -> date:
    try:
        return api.path_day(text)
    except api.ApiError as error:
        raise web.HTTPBadRequest(text=error.message + "\n") from None


async def _digest_page(request: web.Request) -> web.Response:
    day = _page_day(request.match_info["date"])
    core = _state(request).core
    return _html(await core.read(lambda store: digest_page_of(core.with_store(store), day)))


async def _calendar(request: web.Request) -> web.Response:
    core = _state(request).core
    # The deploy pages' URLs are resolved against this request's own (the Host it named,
    # which _guard checked), so they point where the client reached the server.
    base_url = str(request.url.with_query(None).join(URL("./")))
    feed = calendar_feed(
        core.plans,
        now=core.now(),
        notice_days=core.config.notice_days,
        base_url=base_url,
        freezes=core.freezes.freezes,
        readiness=core.readiness,
    )
    return web.Response(text=feed, content_type="text/calendar", charset="utf-8")


# -- the application and the server -------------------------------------------------------


def make_app(
    core: Core,
    reactor: BusReactor,
    *,
    irc_status: Callable[[], IrcStatus | None] | None = None,
    max_body: int = MAX_BODY,
    read_token: str | None = None,
    network_status: Callable[[], NetworkStatuses] | None = None,
    role: Callable[[], Role] = Role,
) -> web.Application:
    """The aiohttp application: every route of SPEC §6 on ``core``, webhook events to
    ``reactor`` (the one every bus source feeds).  ``irc_status`` tells /healthz and
    /metrics whether IRC is up, and if not why (None: unknown), ``network_status`` the
    same of every chat network by name, ``role`` whether this instance is active or a
    standby (a standby keeps webhook events in the store's inbox for the active one:
    202 ``"queued": true``); ``read_token`` (None:
    none) is asked of every route but /healthz and the webhook."""
    app = web.Application(middlewares=[_errors], client_max_size=max_body)
    app[STATE] = _State(
        core,
        reactor,
        irc_status or (lambda: None),
        max_body,
        read_token,
        network_status or dict,
        role,
    )
    app.on_response_prepare.append(_server_header)
    router = app.router
    router.add_get("/api/v1/", _api_index)
    router.add_get("/api/v1", _api_index)
    router.add_get("/api/v1/schemas/{file}", _schema)
    router.add_get("/api/v1/deployments", _deployments)
    router.add_get("/api/v1/deployments/{id}", _deployment)
    router.add_get("/api/v1/freezes", _freezes)
    router.add_get("/api/v1/deployments/{id}/drift", _drift)
    router.add_get("/api/v1/incidents", _incidents)
    router.add_get("/api/v1/incidents/{n}", _incident)
    router.add_get("/api/v1/digests/{date}", _digest)
    router.add_post("/api/v1/events", _event)
    router.add_get("/healthz", _healthz)
    router.add_get("/metrics", _metrics)
    router.add_get("/", _index)
    router.add_get("/deployments/{id}", _deployment_page)
    router.add_get("/deployments/{id}/postmortem", _postmortem_page)
    router.add_get("/deployments/{id}/postmortem.md", _postmortem_markdown)
    router.add_get("/digest/{date}", _digest_page)
    router.add_get("/calendar.ics", _calendar)
    return app


class WebServer:
    """:func:`make_app` served on ``host:port`` on the running loop (port 0: any free port,
    see :attr:`port`)."""

    def __init__(
        self,
        core: Core,
        reactor: BusReactor,
        *,
        host: str,
        port: int,
        irc_status: Callable[[], IrcStatus | None] | None = None,
        max_body: int = MAX_BODY,
        read_token: str | None = None,
        network_status: Callable[[], NetworkStatuses] | None = None,
        role: Callable[[], Role] = Role,
    ) -> None:
        self.host = host
        self.port = port
        self.app = make_app(
            core,
            reactor,
            irc_status=irc_status,
            max_body=max_body,
            read_token=read_token,
            network_status=network_status,
            role=role,
        )
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    async def start(self) -> None:
        """Listen; :class:`WebStartError` naming ``host:port`` if that fails."""
        runner = web.AppRunner(self.app, access_log=None, shutdown_timeout=SHUTDOWN_TIMEOUT)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port)
        try:
            await site.start()
        except OSError as error:
            await runner.cleanup()
            reason = os.strerror(error.errno).lower() if error.errno else str(error)
            raise WebStartError(
                f"cannot listen on web_host:web_port {self.host}:{self.port}: {reason}"
            ) from error
        self._runner = runner
        for address in runner.addresses:
            if isinstance(address, tuple) and len(address) >= 2:
                self.port = int(address[1])
                break
        log.info("web server on %s", self.url)

    async def stop(self) -> None:
        """Stop listening and finish the requests in progress (idempotent)."""
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()
            log.info("web server stopped")
