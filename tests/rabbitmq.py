"""A real RabbitMQ broker on 127.0.0.1 for the AMQP tests, and its pytest fixtures.

`tests/conftest.py` imports everything listed in `__all__`.

Fixtures
- `rabbitmq_session` (one per session, i.e. per xdist worker: each has its own broker, node
  name `deploybot-test-PID`, epmd, ports and data): a `RabbitmqServer` as started (RabbitMQ 3.10 on
  Erlang 25, 2 cores: 5.5–6.5 s to the first AMQP handshake on a fresh data directory,
  3.5–4 s for a restart on the same data, ~1 s for a clean stop; `.startup_seconds`).
- `rabbitmq`: the session's broker, running (a test that stopped or killed it leaves it to
  the next test's set-up to bring it back). `.url` (`amqp://guest:guest@127.0.0.1:PORT/`),
  `.port`, `.stop()`/`.kill()`/`.start()`/`.restart()` and their `a…` variants (same port
  and data: durable queues and persistent messages survive), `.log_tail()`.

The broker is `rabbitmq-server` (Debian's package; `.ci/run` installs it) run as the user
running the tests (root on CI, which RabbitMQ accepts), with nothing from the system
installation: its own directory (data, logs,
`rabbitmq.conf`, an empty `enabled_plugins` — no management plugin —, an empty
`rabbitmq-env.conf`, the Erlang cookie in its own HOME) and a clean environment (`env -i`).
It listens for AMQP on one free loopback port only; its Erlang distribution listens on
another free port (`RABBITMQ_DIST_PORT`), on 127.0.0.1 only, and registers the node
(`deploybot-test-PID@localhost`) with an epmd of its own (`EpmdServer`: `epmd` in the
foreground on a free loopback port, `ERL_EPMD_PORT`), never the system's epmd on 4369:
an `erl` that finds no epmd starts one with `-daemon`, which leaves our process group and
would outlive the tests.

Publishing as fedora-messaging does (for the tests)
    `fedora_message(body, schema=…, headers=…)` builds the AMQP message fedora-messaging's
    `Message` would (JSON body, `application/json`/`utf-8`, persistent, uuid4 message id,
    `fedora_messaging_schema`, `sent-at`, `fedora_messaging_severity`, `priority`);
    `publish(url, topic, *messages)` sends to `amq.topic` with routing key = topic and waits
    for the broker's confirms; `queue_counts(url, name)` and `delete_queue(url, name)`
    inspect and clean up; `sample(name)` loads tests/data/bus-samples; `server.ctl(…)`
    runs `rabbitmqctl` against the test broker (e.g. `set_policy`).

No process leaks
    Both processes run under `setpriv --pdeathsig KILL` in their own process group (see
    `tests/ircd/servers.py`, whose `ManagedServer` does the spawning, waiting, logging and
    reaping); `rabbitmq-server` runs with `RABBITMQ_ALLOW_INPUT=1` so that the script
    `exec`s the Erlang VM, which keeps the death signal (by default the script waits for a
    background VM that would survive a killed test run). The VM's helpers
    (`erl_child_setup`, `inet_gethost`, the disk monitor's shell) start sessions of their
    own, out of reach of `killpg`: every process of a server carries
    `DEPLOYBOT_TEST_TAG=<tag>` in its environment, and `stop()`/`kill()` finish with a sweep
    that SIGKILLs whatever still carries the tag (`tagged_processes()` finds them in /proc;
    the tests use it to check that nothing is left). Checked: SIGKILL to the pytest process
    leaves no broker, helper or epmd behind. Missing binaries fail the tests unless
    DEPLOYBOT_SKIP_RABBITMQ=1 skips them.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import struct
import subprocess
import time
import uuid
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from string import Template
from typing import Any

import aio_pika
import pytest

from tests.ircd.servers import (
    HOST,
    ManagedServer,
    PortInUse,
    ServerError,
    free_port,
)

__all__ = ["rabbitmq", "rabbitmq_session"]  # the fixtures; tests import the rest by name

SKIP_ENV = "DEPLOYBOT_SKIP_RABBITMQ"
INSTALL_HINT = (
    ".ci/run installs it (apt-get install rabbitmq-server); "
    f"set {SKIP_ENV}=1 to skip the AMQP tests instead"
)
#: Debian's real script; /usr/sbin/rabbitmq-server only switches to the rabbitmq user
#: and the system's data directory.
DEBIAN_SERVER_SCRIPT = "/usr/lib/rabbitmq/bin/rabbitmq-server"
TAG_VARIABLE = "DEPLOYBOT_TEST_TAG"

RABBITMQ_CONF = Template("""\
# Written by tests/rabbitmq.py for one test run.
listeners.tcp.1 = $host:$port
listeners.ssl = none
loopback_users = none
log.console = true
log.console.level = info
log.console.use_colors = off
log.file = false
# tmp directories on CI machines can be small: don't block publishers over free space
disk_free_limit.absolute = 1MB
""")


def server_script() -> str | None:
    """The `rabbitmq-server` script to run, or None if RabbitMQ is not installed."""
    override = os.environ.get("DEPLOYBOT_RABBITMQ_SERVER")
    if override:
        return override
    if os.path.exists(DEBIAN_SERVER_SCRIPT):
        return DEBIAN_SERVER_SCRIPT
    return shutil.which("rabbitmq-server")


def missing_binaries() -> list[str]:
    missing = [name for name in ("epmd", "setpriv", "env") if shutil.which(name) is None]
    if server_script() is None:
        missing.append("rabbitmq-server")
    return missing


# -- processes carrying a tag ----------------------------------------------------------------


def tagged_processes(tag: str) -> list[int]:
    """Pids of the live (not zombie) processes whose environment holds `TAG_VARIABLE=tag`."""
    needle = f"{TAG_VARIABLE}={tag}".encode()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        with contextlib.suppress(OSError):
            environ = Path(f"/proc/{entry}/environ").read_bytes()
            if needle not in environ.split(b"\0"):
                continue
            state = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[0]
            if state not in {"Z", "X"}:
                found.append(int(entry))
    return found


def sweep_tagged(tag: str, timeout: float = 5.0) -> list[int]:
    """SIGKILL every process tagged `tag`; wait until they are gone. Returns the pids that
    were still there (none, when the normal stop did its job)."""
    leftovers = tagged_processes(tag)
    for pid in leftovers:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + timeout
    while tagged_processes(tag):
        if time.monotonic() >= deadline:
            raise ServerError(f"processes tagged {tag} survive SIGKILL: {tagged_processes(tag)}")
        time.sleep(0.02)
    return leftovers


class _TaggedServer(ManagedServer):
    """A `ManagedServer` whose processes carry a tag and are swept after every stop."""

    def __init__(self, workdir: Path) -> None:
        super().__init__(workdir)
        self.tag = f"{self.name}-{os.getpid()}-{secrets.token_hex(4)}"
        self.swept: list[int] = []
        """Pids the sweeps had to kill (the normal stop should leave none)."""

    def _environment(self) -> dict[str, str]:
        return {
            "PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
            "LANG": "C.UTF-8",
            TAG_VARIABLE: self.tag,
        }

    def _command(self) -> list[str]:
        raise NotImplementedError

    def _argv(self) -> list[str]:
        env = [f"{key}={value}" for key, value in self._environment().items()]
        return ["env", "-i", *env, *self._command()]

    def processes(self) -> list[int]:
        """This server's live processes (the main one and every helper it started)."""
        return tagged_processes(self.tag)

    def stop(self, timeout: float = 10.0) -> None:
        super().stop(timeout)
        self.swept += sweep_tagged(self.tag)

    def kill(self) -> None:
        super().kill()
        self.swept += sweep_tagged(self.tag)


class EpmdServer(_TaggedServer):
    """Erlang's port mapper for one test broker, in the foreground, on a free loopback port."""

    name = "epmd"
    start_timeout = 10.0

    def __init__(self, workdir: Path) -> None:
        super().__init__(workdir)
        self.port = 0

    def _choose_ports(self) -> None:
        self.port = free_port()

    def _listen_ports(self) -> list[int]:
        return [self.port]

    def _write_config(self) -> None:
        pass

    def _command(self) -> list[str]:
        return ["epmd", "-port", str(self.port), "-address", HOST]


class RabbitmqServer(_TaggedServer):
    """RabbitMQ on 127.0.0.1 with its own epmd, data, config and cookie (module doc)."""

    name = "rabbitmq"
    start_timeout = 90.0

    def __init__(self, workdir: Path) -> None:
        super().__init__(workdir)
        self.host = HOST
        self.port = 0
        self.dist_port = 0
        self.nodename = f"deploybot-test-{os.getpid()}@localhost"
        self.epmd = EpmdServer(self.workdir / "epmd")
        self.home = self.rundir / "home"
        self.config_path = self.rundir / "rabbitmq.conf"
        self.mnesia_base = self.rundir / "mnesia"
        self.log_base = self.rundir / "log"

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@{self.host}:{self.port}/"

    def _choose_ports(self) -> None:
        self.port = free_port()
        self.dist_port = free_port()
        while self.dist_port == self.port:
            self.dist_port = free_port()

    def _listen_ports(self) -> list[int]:
        return [self.port, self.dist_port]

    def _write_config(self) -> None:
        for directory in (self.home, self.mnesia_base, self.log_base):
            directory.mkdir(parents=True, exist_ok=True)
        cookie = self.home / ".erlang.cookie"
        if not cookie.exists():
            cookie.write_text(secrets.token_hex(16).upper())
            cookie.chmod(0o400)
        self.config_path.write_text(RABBITMQ_CONF.substitute(host=self.host, port=self.port))
        (self.rundir / "enabled_plugins").write_text("[].\n")
        (self.rundir / "rabbitmq-env.conf").write_text("# nothing from /etc/rabbitmq\n")

    def _environment(self) -> dict[str, str]:
        return {
            **super()._environment(),
            "HOME": str(self.home),  # the Erlang cookie: $HOME/.erlang.cookie
            "RABBITMQ_NODENAME": self.nodename,
            "RABBITMQ_CONF_ENV_FILE": str(self.rundir / "rabbitmq-env.conf"),
            "RABBITMQ_CONFIG_FILE": str(self.config_path),
            "RABBITMQ_ADVANCED_CONFIG_FILE": str(self.rundir / "advanced.config"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.rundir / "enabled_plugins"),
            "RABBITMQ_MNESIA_BASE": str(self.mnesia_base),
            "RABBITMQ_LOG_BASE": str(self.log_base),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "ERL_EPMD_PORT": str(self.epmd.port),
            "ERL_EPMD_ADDRESS": HOST,
            # exec the VM (it keeps the parent-death signal); no shell on stdin, no BREAK
            "RABBITMQ_ALLOW_INPUT": "1",
            "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": (
                "-noinput +B i -kernel inet_dist_use_interface {127,0,0,1}"
            ),
        }

    def _command(self) -> list[str]:
        script = server_script()
        if script is None:
            raise ServerError(f"rabbitmq-server is not installed. {INSTALL_HINT}")
        return [script]

    def _spawn(self) -> float:
        if not self.epmd.running:
            self.epmd.start()
        return super()._spawn()

    def _wait_ready(self, began: float, probe: bool) -> None:
        try:
            super()._wait_ready(began, probe)
        except PortInUse:
            raise
        except ServerError as error:
            if "eaddrinuse" in self.log_tail(200).rsplit("=== ", 1)[-1]:
                raise PortInUse(str(error)) from error
            raise

    def _probe(self, deadline: float) -> None:
        """The AMQP handshake begins: the broker answers the protocol header with
        Connection.Start (it opens its listeners last, once it is ready)."""
        while True:
            try:
                amqp_greeting(self.host, self.port, max(0.1, deadline - time.monotonic()))
                return
            except OSError:
                if time.monotonic() >= deadline:
                    raise
                time.sleep(0.05)

    def ctl(self, *args: str, timeout: float = 60.0) -> str:
        """Run `rabbitmqctl -n NODE ARGS…` against this broker (same cookie and epmd);
        return its output, or raise `ServerError` with it if the command failed."""
        script = server_script()
        assert script is not None
        ctl = str(Path(script).with_name("rabbitmqctl"))
        port = str(free_port())  # the CLI's own distribution port
        env = {
            **self._environment(),
            "RABBITMQ_CTL_DIST_PORT_MIN": port,
            "RABBITMQ_CTL_DIST_PORT_MAX": port,
        }
        result = subprocess.run(
            [ctl, "-n", self.nodename, *args],
            env=env,
            cwd=self.rundir,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if result.returncode != 0:
            raise ServerError(
                f"rabbitmqctl {' '.join(args)} exited {result.returncode}:\n"
                f"{result.stdout}{result.stderr}"
            )
        return result.stdout

    def close(self) -> None:
        super().close()
        self.epmd.close()

    def debug_sections(self) -> list[tuple[str, str]]:
        return [*super().debug_sections(), *self.epmd.debug_sections()]


def amqp_greeting(host: str, port: int, timeout: float) -> None:
    """Send the AMQP 0-9-1 protocol header; return once Connection.Start comes back."""
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.settimeout(timeout)
        sock.sendall(b"AMQP\x00\x00\x09\x01")
        head = b""
        while len(head) < 11:
            chunk = sock.recv(11 - len(head))
            if not chunk:
                raise ConnectionError("the broker closed the connection during the handshake")
            head += chunk
        frame_type, channel, _size, class_id, method_id = struct.unpack(">BHIHH", head)
        if (frame_type, channel, class_id, method_id) != (1, 0, 10, 10):
            raise ConnectionError(f"not an AMQP 0-9-1 Connection.Start: {head!r}")


# -- publishing like fedora-messaging --------------------------------------------------------

SAMPLES_DIR = Path(__file__).parent / "data" / "bus-samples"


def sample(name: str) -> dict[str, Any]:
    """A message from tests/data/bus-samples (`name` without `.json`), `_source` removed."""
    document = json.loads((SAMPLES_DIR / f"{name}.json").read_text(encoding="utf-8"))
    document.pop("_source", None)
    return dict(document)


def fedora_message(
    body: Mapping[str, Any] | bytes,
    *,
    schema: str = "base.message",
    headers: Mapping[str, Any] | None = None,
    message_id: str | None = None,
    sent_at: datetime | None = None,
) -> aio_pika.Message:
    """An AMQP message as fedora-messaging's `Message._build_properties` makes one: JSON
    body (`bytes` are sent as they are, for malformed ones), content type
    `application/json`, encoding `utf-8`, persistent, a uuid4 message id, and headers
    `fedora_messaging_schema`, `sent-at` (now, whole seconds, ISO 8601 with offset),
    `fedora_messaging_severity` (20, INFO) and `priority` over whatever `headers` gives."""
    moment = (sent_at or datetime.now(UTC)).replace(microsecond=0)
    all_headers: dict[str, Any] = {
        "fedora_messaging_severity": 20,
        "priority": 0,
        **(headers or {}),
        "fedora_messaging_schema": schema,
        "sent-at": moment.isoformat(),
    }
    data = body if isinstance(body, bytes) else json.dumps(body).encode("utf-8")
    return aio_pika.Message(
        data,
        content_type="application/json",
        content_encoding="utf-8",
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        headers=all_headers,
        message_id=message_id or str(uuid.uuid4()),
    )


async def publish(url: str, topic: str, *messages: aio_pika.Message) -> None:
    """Publish to `amq.topic` with routing key `topic` (as fedora-messaging does), waiting
    for the broker's confirm of each: once this returns, the messages are queued."""
    async with await aio_pika.connect(url) as connection:
        channel = await connection.channel(publisher_confirms=True)
        exchange = await channel.get_exchange("amq.topic", ensure=False)
        for message in messages:
            await exchange.publish(message, routing_key=topic)


async def queue_counts(url: str, name: str) -> tuple[int, int]:
    """(messages ready, consumers) of the queue `name` (a passive declare)."""
    async with await aio_pika.connect(url) as connection:
        channel = await connection.channel()
        queue = await channel.declare_queue(name, passive=True)
        result = queue.declaration_result
        return result.message_count or 0, result.consumer_count or 0


async def delete_queue(url: str, name: str) -> None:
    """Delete the queue `name` (whatever it holds)."""
    async with await aio_pika.connect(url) as connection:
        channel = await connection.channel()
        await channel.queue_delete(name)


# -- fixtures ---------------------------------------------------------------------------------


def require_rabbitmq() -> None:
    """Skip when DEPLOYBOT_SKIP_RABBITMQ=1; otherwise fail loudly if RabbitMQ is missing."""
    if os.environ.get(SKIP_ENV, "") not in {"", "0"}:
        pytest.skip(f"{SKIP_ENV}=1: tests needing a real RabbitMQ are skipped")
    missing = missing_binaries()
    if missing:
        pytest.fail(f"not installed: {', '.join(missing)}. {INSTALL_HINT}")


@pytest.fixture(scope="session")
def rabbitmq_session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RabbitmqServer]:
    """The session's RabbitMQ as started; tests use `rabbitmq`."""
    require_rabbitmq()
    server = RabbitmqServer(tmp_path_factory.mktemp("rabbitmq"))
    try:
        server.start()
        yield server
    finally:
        server.close()


@pytest.fixture
def rabbitmq(rabbitmq_session: RabbitmqServer) -> RabbitmqServer:
    """The session's RabbitMQ, running."""
    if not rabbitmq_session.running:
        rabbitmq_session.start()
    return rabbitmq_session
