"""The demo's processes and sockets (``deploybot demo``): the bus and the bot.

* :class:`Bus`, the fedmsg publisher: a ZeroMQ XPUB socket on a free port, named in the
  bot's ``fedmsg_endpoints`` (an XPUB tells the publisher when the bot has subscribed, so
  no message is lost to PUB/SUB's slow-joiner window);
* :class:`BotProcess`, the bot as a subprocess (``python -m deploybot.cli run bot.ini``),
  not in-process through :class:`deploybot_plugins.application.Application`:

  * it is exactly what ``deploybot run`` does, with the same ``bot.ini`` a newcomer can
    keep (``--keep``) and run again;
  * irc3's process-wide side effects (it patches ``asyncio.sleep``/``asyncio.wait`` and
    configures logging) and the application's own SIGINT/SIGTERM handlers stay out of the
    process that hosts the demo server and the transcript; the bot's log goes to
    ``bot.log`` in the directory, not into the transcript;
  * stopping it is what an operator does: SIGTERM, then QUIT shows in the transcript.

  It is started in its own session (a Ctrl-C in the terminal reaches only the demo, which
  then stops the bot once, cleanly) and, on Linux where ``setpriv`` exists, with a
  parent-death signal (SIGTERM), so even a demo killed with SIGKILL leaves no bot behind;
* :func:`free_tcp_port`, the port of the bot's web server.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import zmq
from deploybot_plugins.bus.fedmsg_source import fedmsg_frames, make_envelope

from .day import HOST
from .errors import DemoError

__all__ = ["BotProcess", "Bus", "free_tcp_port"]

TOPIC_BASE = "org.fedoraproject.prod.ansible.playbook."


def free_tcp_port() -> int:
    """A 127.0.0.1 port free a moment ago, for the bot's web server (if something takes it
    first, the bot says so and exits 1: the demo stops with that error)."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


# -- the bus ---------------------------------------------------------------------------------


class Bus:
    """The demo's fedmsg publisher: an XPUB socket on a free 127.0.0.1 port."""

    def __init__(self) -> None:
        self.context: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
        self.socket = self.context.socket(zmq.XPUB)
        self.socket.setsockopt(zmq.LINGER, 0)
        self.socket.setsockopt(zmq.XPUB_VERBOSE, 1)
        port = self.socket.bind_to_random_port(f"tcp://{HOST}")
        self.endpoint = f"tcp://{HOST}:{port}"
        self.subscribed = False

    async def wait_subscribed(self, timeout: float, alive: Callable[[], None]) -> None:  # noqa: ASYNC109 (the deadline's failure says what was awaited)
        """Until the bot's SUB socket has subscribed (``alive`` raises if the bot died)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not self.subscribed:
            while self.socket.poll(0):
                if self.socket.recv()[:1] == b"\x01":
                    self.subscribed = True
            if self.subscribed:
                return
            alive()
            if loop.time() > deadline:
                raise DemoError(f"the bot did not subscribe to {self.endpoint} in {timeout:.0f} s")
            await asyncio.sleep(0.05)

    def publish(self, kind: str, msg: dict[str, Any]) -> None:
        envelope = make_envelope(TOPIC_BASE + kind, msg, username="root")
        self.socket.send_multipart(fedmsg_frames(envelope))

    def close(self) -> None:
        self.socket.close(linger=0)
        self.context.term()


# -- the bot process -------------------------------------------------------------------------


class BotProcess:
    """``deploybot run bot.ini`` in ``workdir``, its output in ``bot.log``."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.log_path = workdir / "bot.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> int:
        argv = [sys.executable, "-m", "deploybot.cli", "run", "bot.ini"]
        setpriv = shutil.which("setpriv") if sys.platform.startswith("linux") else None
        if setpriv:
            argv = [setpriv, "--pdeathsig", "TERM", *argv]
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                argv,
                cwd=self.workdir,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,  # Ctrl-C reaches the demo, which stops the bot
            )
        return self.proc.pid

    def check_alive(self) -> None:
        if self.proc is not None and self.proc.poll() is not None:
            raise DemoError(
                f"the bot exited with status {self.proc.returncode}: {self.last_log_line()}"
            )

    def last_log_line(self) -> str:
        try:
            lines = self.log_path.read_text(errors="replace").strip().splitlines()
        except OSError:
            return "(no log)"
        return lines[-1] if lines else "(no output)"

    async def stop(self) -> int | None:
        """SIGTERM (QUIT, store closed), SIGKILL after 15 s; its exit status."""
        proc = self.proc
        if proc is None:
            return None
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.to_thread(proc.wait, 15)
            except subprocess.TimeoutExpired:
                proc.kill()
                await asyncio.to_thread(proc.wait)
        return proc.returncode
