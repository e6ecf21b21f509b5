"""`deploybot run` as a real subprocess, for end-to-end tests against real IRC servers.

A `BotProcess` owns one directory: `bot.ini`, `plans/`, the SQLite file, the SASL password
file and `bot.log` (everything the process printed, one header line per start). `start()`
spawns `deploybot run bot.ini` and returns once a watcher client sees the bot join a
channel; `stop()` sends SIGTERM and asserts exit status 0 and (when a watcher is given) that
the watcher saw the bot's QUIT; `kill()` is SIGKILL (a crash). The process runs under
`setpriv --pdeathsig KILL`, so a killed test run leaves no bot behind.

`bot.ini` is generated: `[bot]` connects to the given server (SASL if asked) with fast
reconnects, `[deploybot]` points at the directory's files with `web_port = 0`; the
`bot_settings` and `deploybot_settings` mappings add keys to those sections or replace the
defaults (each key is written once: deploybot refuses a key given twice), and
`configure()` changes them for the next start.

`BotProcesses` (the `bot_process` fixture, defined here: a module using it imports
`bot_process_fixture`) creates them and stops the ones still running at teardown; its
`debug_sections()` puts every bot's log into a failing test's report (see
`pytest_runtest_makereport` in tests/ircd/fixtures.py). `inspircd_bot()` makes the usual
bot of tests on inspircd, logged in with SASL: on the relaxed port without output pacing
(`UNTHROTTLED`) for functional tests, or (`stock=True`) on the stock port with the bot's
default pacing, for the tests about flood limits.
"""

from __future__ import annotations

import asyncio
import configparser
import contextlib
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import pytest

from deploybot.plans.files import dump_plan
from deploybot.plans.model import Plan
from tests.ircd.client import IrcClient, Message
from tests.ircd.fixtures import Account, IrcClientFactory, MakeAccount
from tests.ircd.servers import HOST, InspircdWithServices

# `bot_settings` for a bot that may send as fast as the server takes it (ngircd, relaxed)
UNTHROTTLED: Mapping[str, str] = {"throttle_burst": "100", "throttle_rate": "100"}


def deploybot_executable() -> str:
    """The `deploybot` console script of the interpreter running the tests (the venv's)."""
    beside = Path(sys.executable).with_name("deploybot")
    if beside.exists():
        return str(beside)
    found = shutil.which("deploybot")
    if found is None:
        raise RuntimeError("the deploybot console script is not installed (pip install -e .)")
    return found


_RFC1459 = str.maketrans("[]\\~", "{}|^")


def run_refused(
    write_ini: Callable[[int], Path], *, env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """`deploybot run` of the bot.ini `write_ini(port)` writes, `port` being a listening
    socket that must never see a connection: the run is refused at start. Asserts exit
    status 1, no connection and no traceback; returns the finished process."""
    with socket.socket() as irc:
        irc.bind((HOST, 0))
        irc.listen(5)
        irc.setblocking(False)
        ini = write_ini(irc.getsockname()[1])
        done = subprocess.run(
            [deploybot_executable(), "run", str(ini)],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=ini.parent,
            env=env,
        )
        with pytest.raises(BlockingIOError):
            irc.accept()
    assert done.returncode == 1, done
    assert "Traceback" not in done.stderr, done.stderr
    return done


def nick_eq(a: str | None, b: str | None) -> bool:
    """RFC 1459 case-insensitive nick/channel comparison (inspircd and ngircd defaults)."""
    if a is None or b is None:
        return a is b
    return a.lower().translate(_RFC1459) == b.lower().translate(_RFC1459)


def said_by(nick: str, target: str | None = None) -> Callable[[Message], bool]:
    """A predicate: a PRIVMSG from `nick` (to `target`, if given)."""

    def match(m: Message) -> bool:
        return (
            m.command == "PRIVMSG"
            and nick_eq(m.nick, nick)
            and (target is None or nick_eq(m.target, target))
        )

    return match


def bot_lines(
    client: IrcClient, nick: str, target: str | None = None, since: int = 0
) -> list[Message]:
    """Every PRIVMSG from `nick` (to `target`) that `client` received (from index `since`)."""
    match = said_by(nick, target)
    return [m for m in client.messages[since:] if match(m)]


async def wait_said(
    client: IrcClient,
    nick: str,
    text: str,
    *,
    target: str | None = None,
    since: int = 0,
    timeout: float = 20.0,  # noqa: ASYNC109 (the deadline's failure says what was awaited)
) -> Message:
    """The first PRIVMSG from `nick` (to `target`) containing `text`, received since `since`.

    Unlike `IrcClient.wait_privmsg`, a message already seen by an earlier wait counts too:
    the bot coalesces short replies (`a · b · c`), so one message may answer several waits.
    """
    match = said_by(nick, target)
    for m in client.messages[since:]:
        if match(m) and text in m.text:
            return m
    where = f" to {target}" if target else ""
    return await client.wait_for(
        lambda m: match(m) and text in m.text,
        timeout,
        what=f"a PRIVMSG from {nick}{where} containing {text!r}",
        since=since,
    )


def _is_join(m: Message, nick: str, channel: str) -> bool:
    return (
        m.command == "JOIN"
        and nick_eq(m.nick, nick)
        and bool(m.params)
        and nick_eq(m.target, channel)
    )


class BotProcess:
    """One `deploybot run` process and its directory; see the module docstring."""

    def __init__(
        self,
        workdir: Path,
        *,
        port: int,
        nick: str,
        admin_channel: str,
        announce_channels: tuple[str, ...] = (),
        sasl: tuple[str, str] | None = None,
        admins: str = "account:nobody-is-admin",
        countdowns: str = "14d 7d 3d 1d 4h 1h 15m 0",
        bot_settings: Mapping[str, str] | None = None,
        deploybot_settings: Mapping[str, str] | None = None,
        host: str = HOST,
        matrix_settings: Mapping[str, str] | None = None,
        irc: bool = True,
    ) -> None:
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.nick = nick
        self.host = host
        self.port = port
        self.admin_channel = admin_channel
        self.announce_channels = announce_channels or (admin_channel,)
        self.ini = self.workdir / "bot.ini"
        self.plans_dir = self.workdir / "plans"
        self.plans_dir.mkdir(exist_ok=True)
        self.database = self.workdir / "deploybot.sqlite3"
        self.log_path = self.workdir / "bot.log"
        self.password_file = self.workdir / "sasl-password"
        self.returncodes: list[int] = []
        self._proc: subprocess.Popen[bytes] | None = None
        self._log_offset = 0
        self.bot_settings: dict[str, str] = {
            "nick": self.nick,
            "username": "deploybot",
            "host": self.host,
            "port": str(self.port),
            # fast, bounded reconnects: tests restart servers
            "reconnect_delay": "0.5",
            "reconnect_max_delay": "4",
            **(bot_settings or {}),
        }
        if sasl is not None:
            account, password = sasl
            self.password_file.write_text(password + "\n")
            self.bot_settings["sasl_username"] = account
            self.bot_settings["sasl_password_file"] = str(self.password_file)
        self.deploybot_settings: dict[str, str] = {
            "plans_dir": str(self.plans_dir),
            "database": str(self.database),
            "timezone": "UTC",
            "admin_channel": self.admin_channel,
            "announce_channels": " ".join(self.announce_channels),
            "countdowns": countdowns,
            "admins": admins,
            "web_port": "0",
            **(deploybot_settings or {}),
        }
        #: `[matrix]` (Matrix on, tests/test_matrix_e2e.py); with `irc=False` no `[bot]`.
        self.matrix_settings: dict[str, str] = dict(matrix_settings or {})
        self.irc = irc
        self.write_config()

    # -- files ------------------------------------------------------------------------------

    def configure(
        self,
        *,
        bot_settings: Mapping[str, str] | None = None,
        deploybot_settings: Mapping[str, str] | None = None,
    ) -> None:
        """Add or replace keys of `[bot]` and `[deploybot]` and write `bot.ini` again (a
        running bot sees the change at its next start)."""
        self.bot_settings.update(bot_settings or {})
        self.deploybot_settings.update(deploybot_settings or {})
        self.write_config()

    def write_config(self) -> None:
        """Write `bot.ini` from `bot_settings` and `deploybot_settings`, each key once."""
        lines = []
        sections = [("bot", self.bot_settings)] if self.irc else []
        sections.append(("deploybot", self.deploybot_settings))
        if self.matrix_settings:
            sections.append(("matrix", self.matrix_settings))
        for section, settings in sections:
            lines += [f"[{section}]", *(f"{key} = {value}" for key, value in settings.items()), ""]
        text = "\n".join(lines)
        # refuses a key given twice, as deploybot's own (strict, case-sensitive) reading does
        parser = configparser.ConfigParser(interpolation=None)
        parser.optionxform = str  # type: ignore[assignment,method-assign]
        parser.read_string(text, source=str(self.ini))
        self.ini.write_text(text)

    def write_plan(self, plan: Plan | str, name: str | None = None) -> Path:
        """Write a plan file (a `Plan`, dumped, or YAML text) into the plans directory."""
        text = dump_plan(plan) if isinstance(plan, Plan) else plan
        if name is None:
            if not isinstance(plan, Plan):
                raise ValueError("name a plan file written from YAML text")
            name = f"{plan.id}.yaml"
        path = self.plans_dir / name
        path.write_text(text, encoding="utf-8")
        return path

    def read_db(self, query: str) -> list[tuple[object, ...]]:
        """Rows of `query` on the bot's SQLite file, opened read-only."""
        db = sqlite3.connect(f"file:{self.database}?mode=ro", uri=True)
        try:
            return db.execute(query).fetchall()
        finally:
            db.close()

    # -- the log ----------------------------------------------------------------------------

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def log_mark(self) -> int:
        """The current end of the log; pass it as `since=` to look only at what follows."""
        return len(self.log_text())

    def log_since(self, since: int = 0) -> str:
        return self.log_text()[since:]

    def current_run_log(self) -> str:
        """The log of the latest start only."""
        return self.log_text()[self._log_offset :]

    async def wait_log(self, text: str, *, since: int = 0, timeout: float = 20.0) -> str:  # noqa: ASYNC109 (the deadline's failure says what was awaited)
        """Wait until the log (from offset `since`) contains `text`; return the line."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            for line in self.log_since(since).splitlines():
                if text in line:
                    return line
            if self._proc is not None and self._proc.poll() is not None:
                raise AssertionError(
                    f"bot exited ({self._proc.returncode}) before logging {text!r}\n"
                    f"{self.log_tail()}"
                )
            if loop.time() > deadline:
                raise AssertionError(f"bot log: no {text!r} within {timeout}s\n{self.log_tail()}")
            await asyncio.sleep(0.05)

    def log_tail(self, lines: int = 80) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])

    def debug_sections(self) -> list[tuple[str, str]]:
        return [(f"deploybot log ({self.log_path})", self.log_tail(150))]

    # -- the process ------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def spawn(self) -> None:
        """Start `deploybot run bot.ini` without waiting for anything."""
        if self.running:
            raise RuntimeError(f"bot {self.nick} is already running (pid {self.pid})")
        argv = ["setpriv", "--pdeathsig", "KILL", deploybot_executable(), "run", str(self.ini)]
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONDONTWRITEBYTECODE": "1"}
        self._log_offset = self.log_mark()
        with open(self.log_path, "ab") as log:
            log.write(f"=== {time.strftime('%H:%M:%S')} start: {' '.join(argv)}\n".encode())
            log.flush()
            self._proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.workdir,
                env=env,
            )

    async def start(
        self,
        watcher: IrcClient,
        channel: str | None = None,
        *,
        timeout: float = 30.0,  # noqa: ASYNC109 (the deadline's failure says what was awaited)
    ) -> None:
        """Spawn the bot and return once `watcher` (already in `channel`, default the admin
        channel) sees it join; fails with the bot's log if it exits or takes too long."""
        channel = channel or self.admin_channel
        since = watcher.mark()
        self.spawn()
        await self.wait_joined(watcher, channel, since=since, timeout=timeout)

    async def wait_joined(
        self,
        watcher: IrcClient,
        channel: str,
        *,
        since: int = 0,
        timeout: float = 30.0,  # noqa: ASYNC109 (the deadline's failure says what was awaited)
    ) -> Message:
        """Wait until `watcher` sees the bot join `channel` (from message index `since`)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            try:
                return await watcher.wait_for(
                    lambda m: _is_join(m, self.nick, channel),
                    min(1.0, max(0.0, deadline - loop.time())),
                    what=f"JOIN {channel} by {self.nick}",
                    since=since,
                )
            except AssertionError:
                if self._proc is not None and self._proc.poll() is not None:
                    raise AssertionError(
                        f"bot exited with status {self._proc.returncode} before joining "
                        f"{channel}\n{self.log_tail()}"
                    ) from None
                if watcher.closed or loop.time() >= deadline:
                    raise AssertionError(
                        f"{watcher.nick} did not see {self.nick} join {channel} within "
                        f"{timeout}s\n--- bot log:\n{self.log_tail()}\n{watcher.summary()}"
                    ) from None

    async def wait_exit(self, timeout: float = 20.0) -> int:  # noqa: ASYNC109 (the deadline's failure says what was awaited)
        """Wait for the process to end; return its exit status (fails after `timeout`)."""
        proc = self._proc
        assert proc is not None, "the bot was never started"
        try:
            status = await asyncio.to_thread(proc.wait, timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(
                f"bot {self.nick} still running after {timeout}s\n{self.log_tail()}"
            ) from None
        self.returncodes.append(status)
        self._proc = None
        return status

    async def stop(self, watcher: IrcClient | None = None, *, timeout: float = 20.0) -> None:  # noqa: ASYNC109 (the deadline's failure says what was awaited)
        """SIGTERM; assert exit status 0 and, with a `watcher` sharing a channel with the
        bot, that the watcher saw the bot QUIT."""
        proc = self._proc
        assert proc is not None and proc.poll() is None, f"bot is not running\n{self.log_tail()}"
        since = watcher.mark() if watcher is not None else 0
        proc.send_signal(signal.SIGTERM)
        status = await self.wait_exit(timeout)
        assert status == 0, f"deploybot run exited {status} on SIGTERM\n{self.log_tail()}"
        if watcher is not None:
            await watcher.wait_for(
                lambda m: m.command == "QUIT" and nick_eq(m.nick, self.nick),
                10.0,
                what=f"QUIT from {self.nick}",
                since=since,
            )

    async def kill(self) -> None:
        """SIGKILL the bot (a crash: no QUIT, nothing flushed beyond what was committed)."""
        proc = self._proc
        assert proc is not None, "the bot was never started"
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGKILL)
        await self.wait_exit(10.0)

    def terminate_quietly(self) -> None:
        """Teardown: SIGTERM, then SIGKILL after 10 s; no assertions."""
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self._proc = None

    def __repr__(self) -> str:
        state = f"pid {self.pid}" if self.running else "not running"
        return f"<BotProcess {self.nick} {self.host}:{self.port} {state}>"


class BotProcesses:
    """Factory for `BotProcess`es under one test's tmp directory; stops them at teardown."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.bots: list[BotProcess] = []

    def __call__(self, **kwargs: object) -> BotProcess:
        """`BotProcess(workdir=tmp_path/"botN", **kwargs)` (nothing is started yet)."""
        workdir = self.tmp_path / f"bot{len(self.bots) + 1}"
        bot = BotProcess(workdir, **kwargs)  # type: ignore[arg-type]
        self.bots.append(bot)
        return bot

    def close(self) -> None:
        for bot in self.bots:
            bot.terminate_quietly()

    def debug_sections(self) -> list[tuple[str, str]]:
        return [section for bot in self.bots for section in bot.debug_sections()]


@pytest.fixture(name="bot_process")
def bot_process_fixture(tmp_path: Path) -> Iterator[BotProcesses]:
    """`bot_process(port=…, nick=…, admin_channel=…, …)` → a `BotProcess` (not started);
    every one still running at teardown is stopped; their logs go into failure reports."""
    bots = BotProcesses(tmp_path)
    try:
        yield bots
    finally:
        bots.close()


async def inspircd_bot(
    net: InspircdWithServices,
    make_account: MakeAccount,
    bot_process: BotProcesses,
    account: Account | None = None,
    *,
    stock: bool = False,
    bot_settings: Mapping[str, str] | None = None,
    **kwargs: object,
) -> BotProcess:
    """A bot (not started) logging in to `account` (default: a fresh one) with SASL; its
    nick is the account name. On the relaxed port and `UNTHROTTLED` (functional tests: no
    waiting on the pacing a stock class needs); with `stock=True` on the stock port with the
    default pacing (flood tests). `bot_settings` add to (or replace) those."""
    account = account or await make_account("deploybot")
    return bot_process(
        port=net.stock_port if stock else net.relaxed_port,
        nick=account.name,
        sasl=(account.name, account.password),
        bot_settings={**({} if stock else UNTHROTTLED), **(bot_settings or {})},
        **kwargs,
    )


async def joined(
    irc_client: IrcClientFactory, port: int, nick: str, channels: list[str], **kwargs: object
) -> IrcClient:
    """A client connected as `nick` (`irc_client`'s keyword arguments) and in `channels`."""
    client = await irc_client(port, nick, **kwargs)  # type: ignore[arg-type]
    for channel in channels:
        await client.join(channel)
    return client
