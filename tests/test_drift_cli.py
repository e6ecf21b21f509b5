"""``deploybot drift ID``: the probe run now against real aiohttp apps on 127.0.0.1 playing
staging and production (the 2014 pkgdb2 answers), the run stored, the report or the API's
JSON document printed, and the exit status a script can gate on: 0 no undeclared drift,
1 undeclared drift, 2 the probe could not run (or the command could not start)."""

from __future__ import annotations

import asyncio
import io
import json
import socket
from pathlib import Path

import pytest

from deploybot.cli import main
from deploybot.drift.runs import latest_run
from deploybot.plans.files import dump_plan
from deploybot.store import Store
from tests.apischema import check_answer
from tests.planfactory import make_plan

from .driftdata import PROBES, Serve, pkgdb_app, plan_text


def setup(tmp_path: Path, staging: str, production: str, probes: tuple[str, ...]) -> Path:
    """A plans directory with pkgdb2-2.0 and a bot.ini naming it and a database."""
    plans = tmp_path / "plans"
    plans.mkdir(exist_ok=True)
    text = plan_text(staging, production, probes)
    (plans / "pkgdb2-2.0.yaml").write_text(text, encoding="utf-8")
    ini = tmp_path / "bot.ini"
    ini.write_text(
        f"[deploybot]\nplans_dir = {plans}\ndatabase = {tmp_path / 'db.sqlite3'}\n"
        "timezone = Europe/Paris\nprobe_timeout = 5s\n",
        encoding="utf-8",
    )
    return ini


async def cli(*argv: str) -> tuple[int, str]:
    """``deploybot ARGV`` in a worker thread (``drift`` runs its own event loop) while the
    test's loop serves staging and production."""

    def run() -> tuple[int, str]:
        out = io.StringIO()
        return main(list(argv), out=out), out.getvalue()

    return await asyncio.to_thread(run)


async def drift(*argv: str) -> tuple[int, str]:
    return await cli("drift", *argv)


async def two_servers(serve: Serve) -> tuple[str, str]:
    staging, _ = pkgdb_app("staging")
    production, _ = pkgdb_app("production")
    return await serve(staging) + "/pkgdb", await serve(production) + "/pkgdb"


async def test_undeclared_drift_is_reported_stored_and_exits_1(
    tmp_path: Path, serve: Serve
) -> None:
    ini = setup(tmp_path, *await two_servers(serve), PROBES)
    status, output = await drift("pkgdb2-2.0", "--config", str(ini))
    assert status == 1, output
    lines = output.splitlines()
    assert lines[0].startswith("pkgdb2-2.0 drift (")
    assert " CET): ⚠ 1 UNDECLARED API BREAK (/api/collections); " in lines[0]
    assert lines[1:] == [
        "declared (/api/packager/acl) /api/packager/acl?packagername=toshio: .acls: array → null",
        "⚠ UNDECLARED API BREAK /api/collections: .collections[].koji_name: renamed to "
        ".collections[].dist_tag (string)",
        "declared (/api/packager/list) /api/packager/list: status 200 → 410",
        "declared, not observed (check the probe): /api/critpath — the critpath flag is per branch",
    ]
    with Store.open(tmp_path / "db.sqlite3", create=False) as store:
        run = latest_run(store, "pkgdb2-2.0")
        assert run is not None and run.verdict == "undeclared-drift"
        assert store.drift_run_count("pkgdb2-2.0") == 1
    # deploybot check reads the stored run for the readiness rule
    out = io.StringIO()
    assert main(["check", "--config", str(ini)], out=out) == 0
    assert "  ✘ no-undeclared-drift: ⚠ UNDECLARED API BREAK on /api/collections (probed " in (
        out.getvalue()
    )


async def test_declared_breaks_and_noise_only_exit_0(tmp_path: Path, serve: Serve) -> None:
    """The declared breaks, the noisy timestamp and request id, the shuffled list: 0."""
    probes = ("/api/packager/acl?packagername=toshio", "/api/version", "/api/packages")
    ini = setup(tmp_path, *await two_servers(serve), probes)
    status, output = await drift("pkgdb2-2.0", "--config", str(ini))
    assert status == 0, output
    first = output.splitlines()[0]
    assert first.endswith(
        "no undeclared drift; declared breaks seen on 1 probe; 2 declared breaks not observed"
    )


async def test_a_probe_that_cannot_run_exits_2(tmp_path: Path, serve: Serve) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    production, _ = pkgdb_app("production")
    ini = setup(tmp_path, f"http://127.0.0.1:{port}", await serve(production), ("/api/version",))
    status, output = await drift("pkgdb2-2.0", "--config", str(ini))
    assert status == 2, output
    assert output.splitlines()[1] == (
        f"✘ /api/version could not run: staging: cannot connect to http://127.0.0.1:{port}: "
        "connection refused"
    )


async def test_json_is_the_documents_of_the_api(tmp_path: Path, serve: Serve) -> None:
    """``--json`` prints what GET /api/v1/deployments/ID/drift serves, schema and all."""
    ini = setup(tmp_path, *await two_servers(serve), PROBES)
    status, output = await drift("pkgdb2-2.0", "--json", "--config", str(ini))
    assert status == 1
    document = json.loads(output)
    check_answer("GET", "/api/v1/deployments/pkgdb2-2.0/drift", 200, document)
    assert document["probes"] == list(PROBES)
    assert document["run"]["verdict"] == "undeclared-drift"
    assert [p["status"] for p in document["run"]["probes"]] == [
        "declared-drift",
        "undeclared-drift",
        "declared-drift",
        "same",
        "same",
        "same",
    ]


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["nope"], "no plan 'nope' in "),
        (["pkgdb2-2.0", "--config", "{tmp}/missing.ini"], "missing.ini"),
        (["fas-3.0"], "fas-3.0 has no probes: list GET paths under probes: in its plan"),
        (["broken"], "no plan 'broken' in "),
    ],
)
async def test_what_stops_it_is_said_and_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], says: str
) -> None:
    """Nothing is asked of any server: an unknown plan (listing the known ones and the
    plan problems), a missing config file, a plan without probes."""
    ini = setup(tmp_path, "http://127.0.0.1:9", "http://127.0.0.1:9", PROBES)
    fas = make_plan(id="fas-3.0", service="fas", release="3.0", api_breaks=(), probes=())
    (tmp_path / "plans" / "fas-3.0.yaml").write_text(dump_plan(fas), encoding="utf-8")
    (tmp_path / "plans" / "broken.yaml").write_text("id: broken\n", encoding="utf-8")
    argv = [arg.replace("{tmp}", str(tmp_path)) for arg in argv]
    if "--config" not in argv:
        argv += ["--config", str(ini)]
    status, output = await drift(*argv)
    error = capsys.readouterr().err
    assert status == 2 and output == ""
    assert error.startswith("deploybot: ") and says in error, error
    if argv[0] in ("nope", "broken"):
        assert "(plans: fas-3.0, pkgdb2-2.0); 3 plan problems: deploybot check" in error
    with Store.open(tmp_path / "db.sqlite3") as store:
        assert store.drift_run_count("pkgdb2-2.0") == 0
