"""deploybot_plugins.drift: the probes asked of real aiohttp servers on 127.0.0.1 playing
staging and production — the 2014 pkgdb2 answers, then hostile servers: each problem is
that probe's error, in bounded time, never an exception."""

from __future__ import annotations

import asyncio
import socket
import ssl
import subprocess
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from aiohttp import web
from deploybot_plugins.application import Application
from deploybot_plugins.drift import ProbeFetcher

from deploybot import __version__
from deploybot.config import config_from_mapping
from deploybot.drift.report import judge
from deploybot.errors import ConfigError
from deploybot.plans.files import load_text
from deploybot.plans.model import Plan

from .driftdata import PROBES, Serve, pkgdb_app, plan_text
from .test_drift_report import RAN_AT


def plan_for(staging: str, production: str, probes: tuple[str, ...]) -> Plan:
    return load_text(plan_text(staging, production, probes), "pkgdb2-2.0.yaml")


def app_of(handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.Application:
    app = web.Application()
    app.router.add_route("GET", "/{tail:.*}", handler)
    return app


async def json_ok(_: web.Request) -> web.Response:
    return web.json_response({"acls": []})


async def test_the_2014_answers_from_two_servers(serve: Serve) -> None:
    """Staging and production as servers: the report, production asked twice per probe,
    staging once, with deploybot's User-Agent and each environment's bearer token."""
    staging_app, staging_calls = pkgdb_app("staging")
    production_app, production_calls = pkgdb_app("production")
    staging = await serve(staging_app) + "/pkgdb"
    production = await serve(production_app) + "/pkgdb/"
    plan = plan_for(staging, production, PROBES)
    fetch = ProbeFetcher(tokens={"staging": "stg-token", "production": "prod-token"})
    run = judge(plan, await fetch(plan), RAN_AT)
    assert [(p.path, p.status) for p in run.probes] == [
        ("/api/packager/acl?packagername=toshio", "declared-drift"),
        ("/api/collections", "undeclared-drift"),
        ("/api/packager/list", "declared-drift"),
        ("/api/version", "same"),
        ("/api/packages", "same"),
        ("/api/critpath", "same"),
    ]
    assert run.exit_code == 1
    assert len(staging_calls) == len(PROBES) and len(production_calls) == 2 * len(PROBES)
    first = staging_calls[0]
    assert first.path_qs == "/pkgdb/api/packager/acl?packagername=toshio"
    assert first.headers["User-Agent"] == f"deploybot/{__version__} (drift probe)"
    assert {r.headers["Authorization"] for r in staging_calls} == {"Bearer stg-token"}
    assert {r.headers["Authorization"] for r in production_calls} == {"Bearer prod-token"}


async def test_without_token_no_authorization_is_sent(serve: Serve) -> None:
    app, calls = pkgdb_app("production")
    url = await serve(app)
    plan = plan_for(url, url, ("/api/critpath",))
    (fetched,) = await ProbeFetcher()(plan)
    assert fetched.answers is not None
    assert all("Authorization" not in request.headers for request in calls)


async def test_a_refused_port_is_the_probes_error(serve: Serve) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    production = await serve(app_of(json_ok))
    plan = plan_for(f"http://127.0.0.1:{port}", production, ("/api/x",))
    (fetched,) = await ProbeFetcher()(plan)
    assert fetched.answers is None
    assert (
        fetched.error == f"staging: cannot connect to http://127.0.0.1:{port}: connection refused"
    )
    run = judge(plan, [fetched], RAN_AT)
    assert run.exit_code == 2


async def test_a_slow_loris_is_cut_at_the_timeout(serve: Serve) -> None:
    """Headers at once, then a byte every 50 ms for ever: the GET ends at probe_timeout."""

    async def drip(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        await response.prepare(request)
        for _ in range(10_000):
            await response.write(b" ")
            await asyncio.sleep(0.05)
        return response

    staging = await serve(app_of(drip))
    production = await serve(app_of(json_ok))
    plan = plan_for(staging, production, ("/api/x",))
    started = time.monotonic()
    (fetched,) = await ProbeFetcher(timeout=0.5)(plan)
    assert time.monotonic() - started < 2
    assert fetched.error == f"staging: no complete answer within 0.5s from {staging}"


async def test_a_silent_server_is_cut_at_the_timeout(serve: Serve) -> None:
    async def silent(_: web.Request) -> web.Response:
        await asyncio.sleep(30)
        return web.Response()

    production = await serve(app_of(silent))
    staging = await serve(app_of(json_ok))
    plan = plan_for(staging, production, ("/api/x",))
    started = time.monotonic()
    (fetched,) = await ProbeFetcher(timeout=0.3)(plan)
    assert time.monotonic() - started < 2
    assert fetched.error.startswith("production: no complete answer within 0.3s")


async def test_an_endless_body_stops_at_the_size_limit(serve: Serve) -> None:
    sent = []

    async def endless(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        await response.prepare(request)
        await response.write(b"[")
        chunk = b"1," * 32_768
        try:
            while True:
                await response.write(chunk)
                sent.append(len(chunk))
        except (ConnectionError, RuntimeError):
            pass
        return response

    staging = await serve(app_of(endless))
    production = await serve(app_of(json_ok))
    plan = plan_for(staging, production, ("/api/x",))
    started = time.monotonic()
    (fetched,) = await ProbeFetcher(max_size=256 * 1024)(plan)
    assert time.monotonic() - started < 5
    assert fetched.error == (
        f"staging: the answer from {staging} is larger than probe_max_size "
        "(262144 bytes): not read further"
    )


async def test_a_declared_huge_length_is_not_read(serve: Serve) -> None:
    async def huge(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        response.content_length = 10**12
        await response.prepare(request)
        await response.write(b"[")
        return response

    staging = await serve(app_of(huge))
    production = await serve(app_of(json_ok))
    plan = plan_for(staging, production, ("/api/x",))
    (fetched,) = await ProbeFetcher()(plan)
    assert fetched.error == (
        f"staging: the answer from {staging} is 1000000000000 bytes, more than "
        f"probe_max_size ({8 * 1024 * 1024}): not read"
    )


async def test_ten_megabytes_of_nested_arrays(serve: Serve) -> None:
    """Under the default size limit: refused unread.  Under a larger one: read, and not
    JSON (nested too deeply), in bounded time: a difference, not a crash."""
    nested = b"[" * 5_000_000 + b"]" * 5_000_000

    async def deep(_: web.Request) -> web.Response:
        return web.Response(body=nested, content_type="application/json")

    staging = await serve(app_of(deep))
    production = await serve(app_of(json_ok))
    plan = plan_for(staging, production, ("/api/x",))
    (refused,) = await ProbeFetcher()(plan)
    assert "more than probe_max_size" in refused.error
    started = time.monotonic()
    (read,) = await ProbeFetcher(max_size=16 * 1024 * 1024)(plan)
    assert time.monotonic() - started < 5
    run = judge(plan, [read], RAN_AT)
    (difference,) = run.probes[0].differences
    assert difference.text == "JSON → not JSON: nested too deeply to read"
    assert run.probes[0].status == "undeclared-drift"


async def test_invalid_utf8_is_not_json(serve: Serve) -> None:
    async def latin1(_: web.Request) -> web.Response:
        return web.Response(body=b'{"acls": ["caf\xe9"]}', content_type="application/json")

    staging = await serve(app_of(latin1))
    production = await serve(app_of(json_ok))
    plan = plan_for(staging, production, ("/api/packager/acl",))
    run = judge(plan, await ProbeFetcher()(plan), RAN_AT)
    assert [d.text for d in run.probes[0].differences] == ["JSON → not UTF-8 text (byte 14)"]
    assert run.probes[0].status == "declared-drift"


async def test_redirects_are_followed_on_the_same_host_only(serve: Serve) -> None:
    """A redirect on the same host is followed; one to another host (localhost is not
    127.0.0.1) is the probe's error, and nothing is asked there."""
    elsewhere_calls = []

    async def elsewhere(request: web.Request) -> web.Response:
        elsewhere_calls.append(request)
        return web.json_response({"acls": []})

    other = await serve(app_of(elsewhere), host="localhost")

    async def moved(request: web.Request) -> web.Response:
        if request.path == "/old":
            raise web.HTTPFound("/new")
        if request.path == "/away":
            raise web.HTTPFound(f"{other}/new")
        return web.json_response({"acls": []})

    staging = await serve(app_of(moved))
    production = await serve(app_of(json_ok))
    plan = plan_for(staging, production, ("/old", "/away"))
    followed, refused = await ProbeFetcher()(plan)
    assert followed.answers is not None and not followed.error
    assert refused.error == (
        f"staging: {staging} redirects to another place ({other}): not followed"
    )
    assert elsewhere_calls == []


async def test_a_redirect_loop_ends(serve: Serve) -> None:
    async def loop(request: web.Request) -> web.Response:
        raise web.HTTPFound("/loop")

    staging = await serve(app_of(loop))
    production = await serve(app_of(json_ok))
    plan = plan_for(staging, production, ("/loop",))
    (fetched,) = await ProbeFetcher()(plan)
    assert fetched.error == f"staging: more than 5 redirects from {staging}"


async def test_concurrency_is_limited_across_probes(serve: Serve) -> None:
    busy = [0]
    most = [0]

    async def slow(_: web.Request) -> web.Response:
        busy[0] += 1
        most[0] = max(most[0], busy[0])
        await asyncio.sleep(0.05)
        busy[0] -= 1
        return web.json_response({"acls": []})

    url = await serve(app_of(slow))
    plan = plan_for(url, url, tuple(f"/api/{n}" for n in range(8)))
    fetched = await ProbeFetcher(concurrency=2)(plan)
    assert all(item.answers is not None for item in fetched)
    assert most[0] == 2


def test_token_files_come_from_the_config(tmp_path: Path) -> None:
    (tmp_path / "stg.token").write_text("  s3cret-staging\n", encoding="utf-8")
    config = config_from_mapping(
        {"probe_token_file_staging": "stg.token", "probe_timeout": "3s"}, tmp_path / "bot.ini"
    )
    fetcher = ProbeFetcher.from_config(config)
    assert fetcher.tokens == {"staging": "s3cret-staging", "production": None}
    assert fetcher.timeout == 3
    missing = config_from_mapping({"probe_token_file_production": "nope"}, tmp_path / "bot.ini")
    with pytest.raises(ConfigError, match=r"probe_token_file_production: cannot read .*nope"):
        ProbeFetcher.from_config(missing)


def test_deploybot_run_reads_the_token_files_at_start(tmp_path: Path) -> None:
    """The application makes its fetcher before connecting: an unreadable token file stops
    ``deploybot run`` (exit 1 through the CLI's ConfigError) naming the key."""
    ini = tmp_path / "bot.ini"
    ini.write_text(
        "[bot]\nnick = deploybot\nhost = 127.0.0.1\n"
        "[deploybot]\nprobe_token_file_staging = nope.token\n",
        encoding="utf-8",
    )
    with pytest.raises(ConfigError, match=r"probe_token_file_staging: cannot read .*nope"):
        Application(ini)


# --- TLS ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def self_signed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1, made now with openssl."""
    directory = tmp_path_factory.mktemp("tls")
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
            "-keyout", str(key), "-out", str(cert),
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key


@pytest.mark.e2e
async def test_a_self_signed_certificate_is_refused(
    serve: Serve, self_signed: tuple[Path, Path]
) -> None:
    """TLS verification is on: a self-signed staging is the probe's error.  The same
    server trusted explicitly answers, so the refusal is the certificate's."""
    cert, key = self_signed
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(cert, key)
    staging = await serve(app_of(json_ok), tls)
    production = await serve(app_of(json_ok))
    plan = plan_for(staging, production, ("/api/x",))
    (refused,) = await ProbeFetcher()(plan)
    assert refused.error.startswith(f"staging: TLS certificate of {staging} not trusted: ")
    assert "CERTIFICATE_VERIFY_FAILED" in refused.error
    trusting = ProbeFetcher(ssl_context=ssl.create_default_context(cafile=str(cert)))
    (trusted,) = await trusting(plan)
    assert trusted.answers is not None, trusted.error


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("probe_timeout", "0", "longer than 0"),
        ("probe_timeout", "1h", "at most 10m"),
        ("probe_max_size", "8GB", "not a size"),
        ("probe_max_size", "10", "1KiB to 1024MiB"),
        ("probe_concurrency", "0", "1 to 64 requests"),
    ],
)
def test_bad_probe_settings_name_their_key(key: str, value: str, message: str) -> None:
    with pytest.raises(ConfigError) as refused:
        config_from_mapping({key: value})
    assert f"{key}: " in str(refused.value) and message in str(refused.value)


def test_probe_sizes_read_with_their_unit() -> None:
    assert config_from_mapping({"probe_max_size": "512KiB"}).probe_max_size == 512 * 1024
    assert config_from_mapping({"probe_max_size": "65536"}).probe_max_size == 65536
    assert config_from_mapping({}).probe_max_size == 8 * 1024 * 1024
