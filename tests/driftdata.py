"""The 2014 pkgdb2 answers, for the drift probe's tests: production is pkgdb1, staging
pkgdb2, as on the eve of the 2014-05-28 deploy (cut down).

:func:`body` gives what each side answers to each probe (``call`` counts the calls, so
the noisy fields change on every one); :func:`pkgdb_app` serves it with aiohttp, and the
fixture :func:`serve` (loaded by conftest) starts such apps on 127.0.0.1.  The plan
(:func:`plan_text`) declares two of the breaks and not the third.
"""

from __future__ import annotations

import itertools
import json
import random
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from textwrap import dedent
from typing import Any

import pytest
from aiohttp import web

PROBES = (
    "/api/packager/acl?packagername=toshio",  # [] → null: the 2014 case, declared
    "/api/collections",  # koji_name renamed dist_tag: NOT declared
    "/api/packager/list",  # gone on staging (410), declared
    "/api/version",  # a timestamp and a request id that change on every call: noise
    "/api/packages",  # a large list whose order changes on every call: no difference
    "/api/critpath",  # declared as breaking, but answers alike: "check the probe"
)


def plan_text(
    staging: str,
    production: str,
    probes: tuple[str, ...] = PROBES,
    when: str = "2026-12-15T13:00:00Z",
) -> str:
    listed = "".join(f"  - {json.dumps(probe)}\n" for probe in probes)
    return (
        dedent(
            f"""\
        id: pkgdb2-2.0
        service: pkgdb2
        release: "2.0"
        when: {when}
        duration: 8h
        major: true
        staging: {{url: {json.dumps(staging)}}}
        production: {{url: {json.dumps(production)}}}
        api_breaks:
          - endpoint: /api/packager/acl
            change: returns null instead of [] when the packager has no ACLs
            migration: treat null as an empty list
          - endpoint: /api/packager/list
            change: removed; use /api/packagers
          - endpoint: /api/critpath
            change: the critpath flag is per branch
        probes:
        """
        )
        + listed
    )


PACKAGES = [{"name": f"pkg{i}", "summary": "x" * (i % 9), "id": i} for i in range(5000)]


def body(role: str, path: str, call: int) -> tuple[int, str, bytes]:
    """(status, content type, body) of ``role`` (``production``/``staging``) for ``path``."""
    staging = role == "staging"
    document: Any
    if path == "/api/packager/acl":
        document = {"output": "ok", "acls": None if staging else []}
    elif path == "/api/collections":
        key = "dist_tag" if staging else "koji_name"
        document = {"collections": [{key: "f21", "branchname": "f21", "version": "21"}]}
    elif path == "/api/packager/list":
        if staging:
            return 410, "application/json", b'{"error": "gone"}'
        document = {"packagers": ["toshio", "pingou"]}
    elif path == "/api/version":
        document = {
            "version": "2.0" if staging else "1.33",
            "generated": f"2014-05-27T10:00:{call % 60:02d}Z",
            "request_id": f"{role}-{call}",
        }
    elif path == "/api/packages":
        shuffled = PACKAGES[:]
        random.Random(call).shuffle(shuffled)
        document = {"packages": shuffled}
    elif path == "/api/critpath":
        document = {"pkgs": ["kernel", "glibc"]}
    else:
        return 404, "text/html", b"<h1>Not Found</h1>"
    return 200, "application/json", json.dumps(document).encode()


def pkgdb_app(role: str) -> tuple[web.Application, list[web.Request]]:
    """An aiohttp app answering as :func:`body` under ``/pkgdb``, and the requests it got."""
    counter = itertools.count(1)
    calls: list[web.Request] = []

    async def handle(request: web.Request) -> web.Response:
        calls.append(request)
        path = request.path.removeprefix("/pkgdb")
        status, content_type, payload = body(role, path, next(counter))
        return web.Response(status=status, body=payload, content_type=content_type)

    app = web.Application()
    app.router.add_route("GET", "/{tail:.*}", handle)
    return app, calls


Serve = Callable[..., Awaitable[str]]


@pytest.fixture
async def serve() -> AsyncIterator[Serve]:
    """Start an aiohttp app on 127.0.0.1 (a free port); returns its base URL."""
    runners: list[web.AppRunner] = []

    async def start(
        app: web.Application, tls: ssl.SSLContext | None = None, host: str = "127.0.0.1"
    ) -> str:
        runner = web.AppRunner(app, shutdown_timeout=0.1)
        await runner.setup()
        runners.append(runner)
        site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=tls)
        await site.start()
        port = runner.addresses[0][1]
        return f"{'https' if tls else 'http'}://{host}:{port}"

    yield start
    for runner in runners:
        await runner.cleanup()
