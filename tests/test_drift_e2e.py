"""End to end (issue 12's test): staging and production as two aiohttp apps on 127.0.0.1
serving the 2014 pkgdb2 answers — ``[]`` become ``null``, a renamed field, an endpoint
gone (410) on staging, a timestamp and a request id that change on every call (noise), a
5,000-element list whose order changes on every call (not a difference) — and a plan that
declares the first and the third but not the rename.  ``deploybot drift`` reports it
and exits 1, ``deploybot check`` shows the readiness rule missing, ``deploybot run`` on a
real IRC server (ngircd) probes before its 1-day countdown and posts the undeclared break
with ⚠, ``!drift`` answers with the summary in the channel and the report privately;
once the plan declares the rename, the CLI exits 0 and the rule is met."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.botprocess import (
    UNTHROTTLED,
    BotProcesses,
    bot_lines,
    bot_process_fixture,  # noqa: F401  (the bot_process fixture)
    joined,
    wait_said,
)
from tests.ircd.fixtures import IrcClientFactory
from tests.ircd.servers import NgircdServer

from .driftdata import PROBES, Serve, pkgdb_app, plan_text
from .test_drift_cli import cli

pytestmark = pytest.mark.irc

ADMIN = "#fedora-admin"
TIMEOUT = 60.0
UNDECLARED = (
    "/api/collections: .collections[].koji_name: renamed to .collections[].dist_tag (string)"
)


async def test_the_2014_break_is_caught_before_the_deploy(
    ngircd_server: NgircdServer,
    irc_client: IrcClientFactory,
    bot_process: BotProcesses,
    serve: Serve,
) -> None:
    staging_app, staging_calls = pkgdb_app("staging")
    production_app, production_calls = pkgdb_app("production")
    staging = await serve(staging_app) + "/pkgdb"
    production = await serve(production_app) + "/pkgdb"
    # The deploy is a day and a few seconds away: its 1d countdown comes due just after
    # the bot starts (or just before: then it is probed at start-up, all the same).
    when = (datetime.now(UTC) + timedelta(days=1, seconds=6)).replace(microsecond=0)
    text = plan_text(staging, production, PROBES, when=when.strftime("%Y-%m-%dT%H:%M:%SZ"))
    bot = bot_process(
        port=ngircd_server.port,
        nick="deploybot",
        admin_channel=ADMIN,
        countdowns="1d",
        bot_settings=UNTHROTTLED,
    )
    plan_file = bot.write_plan(text, "pkgdb2-2.0.yaml")
    config = str(bot.ini)

    # deploybot drift: the report, noise and order left out, exit 1.
    status, output = await cli("drift", "pkgdb2-2.0", "--config", config)
    assert status == 1, output
    lines = output.splitlines()
    assert (
        "⚠ 1 UNDECLARED API BREAK (/api/collections); declared breaks seen on 2 probes"
        in (lines[0])
    )
    assert lines[1:] == [
        "declared (/api/packager/acl) /api/packager/acl?packagername=toshio: .acls: array → null",
        f"⚠ UNDECLARED API BREAK {UNDECLARED}",
        "declared (/api/packager/list) /api/packager/list: status 200 → 410",
        "declared, not observed (check the probe): /api/critpath — the critpath flag is per branch",
    ]
    assert len(staging_calls) == len(PROBES) and len(production_calls) == 2 * len(PROBES)

    # deploybot check: the readiness rule reads the stored run.
    status, output = await cli("check", "--config", config)
    assert "pkgdb2-2.0: NOT READY" in output, output
    assert "  ✘ no-undeclared-drift: ⚠ UNDECLARED API BREAK on /api/collections (probed " in (
        output
    )

    # deploybot run: the 1d countdown runs the probe first and warns.
    watcher = await joined(irc_client, ngircd_server.port, "watcher", [ADMIN])
    since = watcher.mark()
    await bot.start(watcher)
    warning = await wait_said(
        watcher, bot.nick, f"): {UNDECLARED}", target=ADMIN, since=since, timeout=TIMEOUT
    )
    assert warning.text.startswith("⚠ UNDECLARED API BREAK (staging vs production, probed ")
    await wait_said(watcher, bot.nick, "pkgdb2 2.0 deploys in", target=ADMIN, since=since)
    post = [m.text for m in bot_lines(watcher, bot.nick, ADMIN, since)]
    assert post.index(warning.text) < next(i for i, line in enumerate(post) if "deploys in" in line)
    assert not any("/api/version" in line or "/api/packages" in line for line in post)
    assert len(staging_calls) == 2 * len(PROBES)  # the countdown's own run
    assert bot.read_db("SELECT count(*) FROM drift_runs") == [(2,)]

    # !drift: the summary in the channel, the report (5 lines) privately; the run of the
    # last minute is answered again, nothing more is asked of staging.
    since = watcher.mark()
    await watcher.privmsg(ADMIN, "!drift pkgdb2-2.0")
    said = await wait_said(watcher, bot.nick, "(sent you 5 lines)", target=ADMIN, since=since)
    assert said.text.startswith("watcher: pkgdb2-2.0 drift (")
    assert "⚠ 1 UNDECLARED API BREAK (/api/collections)" in said.text
    await wait_said(watcher, bot.nick, "declared, not observed", target="watcher", since=since)
    private = " · ".join(m.text for m in bot_lines(watcher, bot.nick, "watcher", since))
    assert f"⚠ UNDECLARED API BREAK {UNDECLARED}" in private  # replies may be joined by ·
    assert len(staging_calls) == 2 * len(PROBES)

    # The plan declares the rename: no undeclared drift, exit 0, the rule met.
    declared = text.replace(
        "api_breaks:\n",
        "api_breaks:\n  - endpoint: /api/collections\n    change: koji_name is dist_tag\n",
    )
    plan_file.write_text(declared, encoding="utf-8")
    status, output = await cli("drift", "pkgdb2-2.0", "--config", config)
    assert status == 0, output
    assert "no undeclared drift; declared breaks seen on 3 probes" in output.splitlines()[0]
    status, output = await cli("check", "--config", config)
    assert "  ✔ no-undeclared-drift: no undeclared drift on 6 probes (probed " in output

    await bot.stop(watcher)
    assert "Traceback" not in bot.log_text()
