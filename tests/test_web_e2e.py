"""End to end: `deploybot run` serves its web side (SPEC §6) while on real IRC.

The bot is a real process (tests/botprocess.py) on ngircd without flood penalty, with
`web_port` set to a free port of 127.0.0.1 and a `webhook_secret`; a watcher client sits
in the admin channel. A real aiohttp client reads /healthz and POSTs a signed webhook
event; the watcher sees what the bot says about it.
"""

from __future__ import annotations

import json
import socket
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from deploybot.web.api import signature
from tests.apischema import check_answer
from tests.botprocess import (
    UNTHROTTLED,
    BotProcess,
    BotProcesses,
    bot_process_fixture,  # noqa: F401  (the bot_process fixture)
    joined,
    run_refused,
    wait_said,
)
from tests.ircd.client import IrcClient
from tests.ircd.fixtures import IrcClientFactory
from tests.ircd.servers import NgircdServer, free_port
from tests.planfactory import make_plan

SAMPLES_DIR = Path(__file__).parent / "data" / "bus-samples"
START = "org.fedoraproject.prod.ansible.playbook.start"
PLAYBOOK = "/srv/web/infra/ansible/playbooks/groups/pkgdb.yml"
ADMIN = "#ops"
SECRET = "an e2e webhook secret of 32 bytes or more"
TIMEOUT = 30.0


async def start_with_web(bot: BotProcess, watcher: IrcClient) -> int:
    """Start the bot serving on a free port of 127.0.0.1 with the webhook on; another free
    port if someone took it first (botprocess writes `web_port = 0`, so parallel bots never
    fight over a port)."""
    for _ in range(3):
        port = free_port()
        bot.configure(deploybot_settings={"web_port": str(port), "webhook_secret": SECRET})
        try:
            await bot.start(watcher)
            return port
        except AssertionError:
            if bot.running or "web_host:web_port" not in bot.current_run_log():
                raise
    raise AssertionError(f"no free web port in three tries\n{bot.log_tail()}")


def start_payload(user: str) -> bytes:
    sample = json.loads((SAMPLES_DIR / "ansible.playbook.start.json").read_text("utf-8"))
    body: dict[str, Any] = {**sample["msg"], "playbook": PLAYBOOK, "userid": user}
    return json.dumps({"topic": START, "body": body, "id": "e2e-start-1"}).encode()


@pytest.mark.irc
async def test_healthz_and_a_signed_webhook_event_reach_irc(
    ngircd_server: NgircdServer,
    irc_client: IrcClientFactory,
    bot_process: BotProcesses,
) -> None:
    """A pkgdb2 plan starts in 20 minutes. /healthz says ok, IRC connected, one plan,
    this one instance active since its start (SQLite);
    an unsigned event is refused (401) and nothing is said; the signed start of pkgdb's
    playbook by ralph is accepted (202) and "deploy of pkgdb2 started by ralph" is said in
    the admin channel; /metrics counts it. The bot then stops cleanly and its port is
    free again."""
    when = (datetime.now(UTC) + timedelta(minutes=20)).replace(second=0, microsecond=0)
    bot = bot_process(
        port=ngircd_server.port,
        nick="deploybot",
        admin_channel=ADMIN,
        countdowns="0",
        bot_settings=UNTHROTTLED,
    )
    bot.write_plan(make_plan(when=when, duration=timedelta(hours=2)))
    watcher = await joined(irc_client, ngircd_server.port, "watcher", [ADMIN])
    port = await start_with_web(bot, watcher)
    base = f"http://127.0.0.1:{port}"
    assert f"web server on {base}" in bot.current_run_log()

    async with aiohttp.ClientSession() as session:
        async with session.get(f"{base}/healthz") as response:
            assert response.status == 200
            health = await response.json()
            check_answer("GET", "/healthz", response.status, health)
        assert health["ok"] is True and health["irc_connected"] is True
        assert health["plans"] == 1
        # SQLite: this one instance, active since its start
        ha = health["ha"]
        assert (ha["backend"], ha["standbys_last_minute"]) == ("sqlite", 0)
        assert (ha["active"]["instance"], ha["active"]["epoch"]) == (health["instance"], None)
        assert ha["active"]["since"] <= health["as_of"]

        since = watcher.mark()
        payload = start_payload("ralph")
        async with session.post(f"{base}/api/v1/events", data=payload) as response:
            assert response.status == 401
            refused = await response.json()
            check_answer("POST", "/api/v1/events", 401, refused)
            assert refused["error"]["code"] == "missing-signature"
        stamp = str(int(time.time()))
        headers = {
            "X-Deploybot-Timestamp": stamp,
            "X-Deploybot-Signature": signature(SECRET, stamp, payload),
        }
        async with session.post(f"{base}/api/v1/events", data=payload, headers=headers) as response:
            assert response.status == 202, await response.text()
            accepted = await response.json()
            check_answer("POST", "/api/v1/events", 202, accepted)
        assert accepted["accepted"] is True and "DeployStarted" in accepted["facts"]
        started = "deploy of pkgdb2 started by ralph (groups/pkgdb.yml)"
        said = await wait_said(
            watcher, bot.nick, started, target=ADMIN, since=since, timeout=TIMEOUT
        )
        assert said.text.count("started by") == 1

        async with session.get(f"{base}/metrics") as response:
            metrics = await response.text()
        samples = {
            (sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(metrics)
            for sample in family.samples
        }
        assert samples["deploybot_bus_received_total", (("source", "webhook"),)] == 1
        refused = (("method", "POST"), ("route", "/api/v1/events"), ("status", "401"))
        assert samples["deploybot_http_requests_total", refused] == 1

    await bot.stop(watcher)
    assert "Traceback" not in bot.log_text()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", port))  # released: the server stopped with the bot


@pytest.mark.e2e  # starts the bot
def test_a_web_port_in_use_stops_the_bot_at_start_naming_it(tmp_path: Path) -> None:
    """`deploybot run` whose web_port is taken exits 1 with one line naming
    web_host:web_port, no traceback, and never connects to the IRC server."""
    ini = tmp_path / "bot.ini"
    (tmp_path / "plans").mkdir()

    def write_ini(port: int) -> Path:
        ini.write_text(
            "[bot]\nnick = deploybot\nhost = 127.0.0.1\n"
            f"port = {port}\n\n[deploybot]\nplans_dir = plans\n"
            f"web_host = 127.0.0.1\nweb_port = {web_port}\n"
        )
        return ini

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(5)
        web_port = taken.getsockname()[1]
        done = run_refused(write_ini)
    assert f"cannot listen on web_host:web_port 127.0.0.1:{web_port}:" in done.stderr, done.stderr


@pytest.mark.e2e  # starts the bot
def test_an_unusable_read_token_file_stops_the_bot_at_start_naming_the_key(
    tmp_path: Path,
) -> None:
    """`deploybot run` whose web_read_token_file holds a short token exits 1 with a line
    naming web_read_token_file (not the token), no traceback, and never connects."""
    ini = tmp_path / "bot.ini"
    (tmp_path / "plans").mkdir()
    (tmp_path / "token").write_text("too-short-token\n", encoding="utf-8")

    def write_ini(port: int) -> Path:
        ini.write_text(
            "[bot]\nnick = deploybot\nhost = 127.0.0.1\n"
            f"port = {port}\n\n[deploybot]\nplans_dir = plans\n"
            f"web_host = 127.0.0.1\nweb_port = {free_port()}\nweb_read_token_file = token\n"
        )
        return ini

    done = run_refused(write_ini)
    assert "[deploybot] web_read_token_file: " in done.stderr, done.stderr
    assert "too-short-token" not in done.stderr
