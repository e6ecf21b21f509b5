"""contrib/deploybot.service: the systemd unit (contrib/README).

No systemd runs as PID 1 in the test machine (nor in CI's container), so the unit is
never started by systemd here. What is checked instead, honestly:

- `systemd-analyze verify` (Debian's `systemd` package; it needs no running manager)
  reads the unit as systemd would and prints nothing: no unknown key, no bad value, both
  commands executable. The venv's `deploybot` stands in for /opt/deploybot/bin/deploybot
  (verify checks that the command exists); nothing else is changed. A misspelt key in the
  same unit is reported, so the check can fail.
- What the unit promises, read from the file: a dynamic user, the state directory the
  database goes in, the hardening options, restart on failure, SIGTERM, and the two
  credentials under the names contrib/README puts in bot.ini.
- The unit's own command lines (ExecStartPre, ExecStart), with only the install paths
  replaced, run the way systemd runs them for this unit: `$CREDENTIALS_DIRECTORY` holding
  the two credentials as `LoadCredential=` copies them, the database in the state
  directory. The check passes, the bot logs in to InspIRCd/atheme with SASL using the
  password from the credential, the webhook accepts an event signed with the secret from
  the other credential, and SIGTERM ends it with exit status 0 (a clean stop for
  systemd) within the unit's `TimeoutStopSec`.

Not covered (needs systemd as PID 1): the dynamic user itself, the sandbox's effect on
the process (ProtectSystem=, SystemCallFilter=, MemoryDenyWriteExecute=…), the restart.
"""

from __future__ import annotations

import asyncio
import json
import os
import shlex
import shutil
import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import pytest

from deploybot.web.api import signature
from tests.botprocess import (
    UNTHROTTLED,
    BotProcesses,
    bot_process_fixture,  # noqa: F401  (the bot_process fixture)
    deploybot_executable,
    joined,
    wait_said,
)
from tests.ircd.fixtures import IrcClientFactory, MakeAccount
from tests.ircd.servers import InspircdWithServices, free_port
from tests.planfactory import make_plan

REPO = Path(__file__).resolve().parent.parent
UNIT = REPO / "contrib" / "deploybot.service"
INSTALLED = "/opt/deploybot/bin/deploybot"
INI = "/etc/deploybot/bot.ini"
CREDENTIALS = {"sasl-password": "/etc/deploybot/sasl-password",
               "webhook-secret": "/etc/deploybot/webhook-secret"}  # fmt: skip
HARDENING = {
    "NoNewPrivileges": "yes",
    "ProtectSystem": "strict",
    "ProtectHome": "yes",
    "PrivateTmp": "yes",
    "PrivateDevices": "yes",
    "ProtectKernelTunables": "yes",
    "ProtectKernelModules": "yes",
    "ProtectControlGroups": "yes",
    "RestrictNamespaces": "yes",
    "RestrictSUIDSGID": "yes",
    "LockPersonality": "yes",
    "CapabilityBoundingSet": "",
}


def unit_settings(text: str) -> dict[str, list[str]]:
    """`Key=value` lines of a unit file, every value of a key repeated, in order."""
    settings: dict[str, list[str]] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";", "[")):
            continue
        key, _, value = line.partition("=")
        settings.setdefault(key.strip(), []).append(value.strip())
    return settings


def systemd_analyze() -> str:
    """The `systemd-analyze` binary; skipped without it, except in CI (.ci/run installs
    Debian's `systemd` package)."""
    found = shutil.which("systemd-analyze")
    if found is None:
        message = "systemd-analyze is not installed (Debian: apt-get install systemd)"
        if os.environ.get("CI"):
            pytest.fail(f"in CI the unit check may not skip: {message}")
        pytest.skip(message)
    return found


def verify(unit: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [systemd_analyze(), "verify", "--man=no", str(unit)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.e2e
def test_systemd_analyze_verify_finds_nothing_to_say_about_the_unit(tmp_path: Path) -> None:
    """`systemd-analyze verify` on the unit (the venv's deploybot in place of the install
    path): exit 0 and not one line of output. The same unit with `DynamicUsr=yes` and
    `ProtectSystem=stric` is reported line by line (the check can fail)."""
    text = UNIT.read_text(encoding="utf-8")
    assert text.count(INSTALLED) == 2
    unit = tmp_path / "deploybot.service"
    unit.write_text(text.replace(INSTALLED, deploybot_executable()), encoding="utf-8")
    done = verify(unit)
    assert (done.returncode, done.stdout, done.stderr) == (0, "", ""), done

    broken = tmp_path / "broken" / "deploybot.service"
    broken.parent.mkdir()
    broken.write_text(
        unit.read_text()
        .replace("DynamicUser=yes", "DynamicUsr=yes")
        .replace("ProtectSystem=strict", "ProtectSystem=stric"),
        encoding="utf-8",
    )
    done = verify(broken)
    assert "Unknown key 'DynamicUsr'" in done.stderr, done
    assert "stric" in done.stderr, done


def test_the_unit_says_what_contrib_readme_promises() -> None:
    """A dynamic user, the state directory for the SQLite file, the config checked
    before each start, restart on failure, SIGTERM to stop, the hardening options, and
    the SASL password and webhook secret as credentials under the names contrib/README
    writes into bot.ini."""
    settings = unit_settings(UNIT.read_text(encoding="utf-8"))
    one = {key: values[-1] for key, values in settings.items()}
    assert settings["ExecStartPre"] == [f"{INSTALLED} check --config {INI}"]
    assert settings["ExecStart"] == [f"{INSTALLED} run {INI}"]
    assert one["DynamicUser"] == "yes"
    assert one["StateDirectory"] == "deploybot"
    assert one["Restart"] == "on-failure"
    assert one["KillSignal"] == "SIGTERM"
    assert {key: one.get(key) for key in HARDENING} == HARDENING
    loaded = dict(value.split(":", 1) for value in settings["LoadCredential"])
    assert loaded == CREDENTIALS
    readme = (REPO / "contrib" / "README").read_text(encoding="utf-8")
    assert "sasl_password_credential = sasl-password" in readme
    assert "webhook_secret_credential = webhook-secret" in readme
    assert "database = /var/lib/deploybot/deploybot.sqlite3" in readme


def unit_command(key: str, replacements: dict[str, str]) -> list[str]:
    """The unit's `key=` command line as argv, with the install paths replaced."""
    (line,) = unit_settings(UNIT.read_text(encoding="utf-8"))[key]
    for old, new in replacements.items():
        line = line.replace(old, new)
    return shlex.split(line)


async def test_the_units_commands_run_with_credentials_as_systemd_runs_them(
    tmp_path: Path,
    inspircd_services: InspircdWithServices,
    make_account: MakeAccount,
    irc_client: IrcClientFactory,
    bot_process: BotProcesses,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The unit's ExecStartPre (`deploybot check --config`) exits 0 on a bot.ini set up as
    contrib/README says (secrets as credentials, the database in the state directory);
    its ExecStart (`deploybot run`), with $CREDENTIALS_DIRECTORY holding the two
    credentials and nothing secret in bot.ini, logs in with SASL (the account is the
    credential's), accepts a webhook event signed with the credential's secret (202) and
    refuses one signed with another (401); SIGTERM: QUIT, exit 0 within TimeoutStopSec,
    and the incident database is in the state directory."""
    net = inspircd_services
    account = await make_account("deploybot")
    state = tmp_path / "state"  # /var/lib/deploybot (StateDirectory=deploybot)
    credentials = tmp_path / "credentials"  # /run/credentials/deploybot.service
    state.mkdir(mode=0o700)
    credentials.mkdir(mode=0o700)
    webhook_secret = "a webhook secret from a systemd credential"
    (credentials / "sasl-password").write_text(account.password + "\n")
    (credentials / "webhook-secret").write_text(webhook_secret + "\n")
    web_port = free_port()
    bot = bot_process(
        port=net.relaxed_port,
        nick=account.name,
        admin_channel="#ops",
        bot_settings={
            **UNTHROTTLED,
            "sasl_username": account.name,
            "sasl_password_credential": "sasl-password",
        },
        deploybot_settings={
            "database": str(state / "deploybot.sqlite3"),
            "web_port": str(web_port),
            "webhook_secret_credential": "webhook-secret",
        },
    )
    when = (datetime.now(UTC) + timedelta(minutes=20)).replace(second=0, microsecond=0)
    bot.write_plan(make_plan(when=when, duration=timedelta(hours=2)))
    ini_text = bot.ini.read_text()
    assert account.password not in ini_text and webhook_secret not in ini_text
    paths = {INSTALLED: deploybot_executable(), INI: str(bot.ini)}

    # (systemd gives ExecStartPre the credentials too; the check does not read them)
    check = await asyncio.to_thread(
        subprocess.run,
        unit_command("ExecStartPre", paths),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={k: v for k, v in os.environ.items() if k != "CREDENTIALS_DIRECTORY"},
    )
    assert check.returncode == 0, check
    assert unit_command("ExecStart", paths) == [deploybot_executable(), "run", str(bot.ini)]

    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(credentials))
    watcher = await joined(irc_client, net.relaxed_port, "watcher", ["#ops"])
    await bot.start(watcher)  # argv: deploybot run bot.ini, the environment above
    assert f"SASL: logged in as {account.name}" in bot.log_text()

    url = f"http://127.0.0.1:{web_port}/api/v1/events"
    body = {"playbook": "/srv/web/infra/ansible/playbooks/groups/pkgdb.yml", "userid": "ralph"}
    payload = json.dumps(
        {"topic": "org.fedoraproject.prod.ansible.playbook.start", "id": "unit-1", "body": body}
    ).encode()
    stamp = str(int(time.time()))
    other = "another secret of 32 bytes or more"
    async with aiohttp.ClientSession() as session:
        wrong = {
            "X-Deploybot-Timestamp": stamp,
            "X-Deploybot-Signature": signature(other, stamp, payload),
        }
        async with session.post(url, data=payload, headers=wrong) as response:
            assert response.status == 401, await response.text()
        right = {**wrong, "X-Deploybot-Signature": signature(webhook_secret, stamp, payload)}
        async with session.post(url, data=payload, headers=right) as response:
            assert response.status == 202, await response.text()
    await wait_said(watcher, bot.nick, "started by ralph", target="#ops", timeout=30)

    timeout = float(unit_settings(UNIT.read_text())["TimeoutStopSec"][-1])
    started = asyncio.get_running_loop().time()
    await bot.stop(watcher, timeout=timeout)
    assert asyncio.get_running_loop().time() - started < timeout
    assert (state / "deploybot.sqlite3").is_file()
    assert "Traceback" not in bot.log_text()
