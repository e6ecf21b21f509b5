"""A real Matrix homeserver (Synapse) on 127.0.0.1 for the Matrix tests, and its fixtures.

`tests/conftest.py` imports everything listed in `__all__`.

Synapse (`matrix-synapse` from PyPI) pins many packages, so it lives in a virtualenv of its
own, never in the project's: `.ci/synapse-venv` builds it (`.ci/run` calls it) at
`.venv-synapse/` beside the project, or wherever `DEPLOYBOT_SYNAPSE_VENV` says.  Where that
venv is absent the Matrix tests are skipped with the reason and the command that builds
it — unless `CI` is set, where a missing venv fails them (CI must run them).

Fixtures
- `synapse_session` (one per session, i.e. per xdist worker): a `SynapseServer` as started:
  server name `deploybot.test`, one client listener on a free loopback port, SQLite in its
  directory, a generated config (`homeserver.yaml`) and signing key.  Nothing leaves
  127.0.0.1: no federation listener and an empty federation whitelist, no trusted key
  servers, no stats reporting, no URL previews, no presence.  Rate limits are relaxed for
  tests (a test that wants them strict sets them for one user with
  `override_ratelimit`).  Start-up on the 2-core machine: about 2.5 s to the first answer on
  a fresh database, ~120 MB RSS (`.startup_seconds`, `rss_kb()`).
- `synapse`: the session's server, running (a test that stopped or killed it leaves it to
  the next test's set-up to bring it back).  `.register("alice")` registers a fresh user
  through the shared-secret admin API (the name is made unique: use the returned
  `MatrixAccount.user_id`), `.url`, `.server_name`, `.restart()`/`.kill()`/`.astart()`…
- `matrix_client`: `await matrix_client(account)` gives a syncing `MatrixClient` (a small
  test client on aiohttp: send, join, create rooms, wait for events); all are closed at
  teardown.

Synapse runs under `setpriv --pdeathsig KILL` like every test server (tests/ircd/servers.py).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import json
import os
import secrets
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from string import Template
from typing import Any

import aiohttp
import pytest

from tests.ircd.servers import HOST, ManagedServer, free_port

__all__ = [
    "MATRIX_FIXTURES",
    "MatrixAccount",
    "MatrixClient",
    "MatrixClientFactory",
    "MatrixClients",
    "MatrixError",
    "SynapseServer",
    "matrix_client",
    "synapse",
    "synapse_session",
]

VENV_ENV = "DEPLOYBOT_SYNAPSE_VENV"
SERVER_NAME = "deploybot.test"
REPO = Path(__file__).resolve().parent.parent
BUILD_HINT = "bash .ci/synapse-venv builds it (.ci/run does)"

#: Fixtures that start Synapse: a test using one is `e2e` (tests/markers.py).
MATRIX_FIXTURES = frozenset({"synapse", "synapse_session", "matrix_client"})


def synapse_venv() -> Path:
    """Where Synapse's own virtualenv is (`DEPLOYBOT_SYNAPSE_VENV`, else `.venv-synapse/`)."""
    return Path(os.environ.get(VENV_ENV) or REPO / ".venv-synapse")


def synapse_python() -> Path | None:
    """The Synapse venv's interpreter, or None when the venv (with Synapse) is absent."""
    python = synapse_venv() / "bin" / "python"
    found = list((synapse_venv() / "lib").glob("python3*/site-packages/synapse/__init__.py"))
    return python if python.exists() and found else None


def require_synapse() -> Path:
    """The Synapse interpreter; skip (fail under `CI`) when its venv is absent."""
    python = synapse_python()
    if python is None:
        message = f"no Synapse virtualenv at {synapse_venv()}: {BUILD_HINT}"
        if os.environ.get("CI"):
            pytest.fail(f"CI is set and {message}")
        pytest.skip(message)
    return python


HOMESERVER_YAML = Template("""\
# Written by tests/synapse.py for one test run.
server_name: "$server_name"
public_baseurl: "http://$host:$port/"
listeners:
  - port: $port
    bind_addresses: ["$host"]
    type: http
    tls: false
    x_forwarded: false
    resources:
      - names: [client]
        compress: false
database:
  name: sqlite3
  args:
    database: "$dir/homeserver.db"
log_config: "$dir/log.yaml"
media_store_path: "$dir/media"
signing_key_path: "$dir/signing.key"
registration_shared_secret: "$secret"
enable_registration: false
report_stats: false
# nothing leaves 127.0.0.1
trusted_key_servers: []
suppress_key_server_warning: true
federation_domain_whitelist: []
url_preview_enabled: false
enable_metrics: false
presence:
  enabled: false
# relaxed for tests; a test wanting them strict uses override_ratelimit for one user
rc_message: {per_second: 1000, burst_count: 1000}
rc_registration: {per_second: 1000, burst_count: 1000}
rc_login:
  address: {per_second: 1000, burst_count: 1000}
  account: {per_second: 1000, burst_count: 1000}
  failed_attempts: {per_second: 1000, burst_count: 1000}
rc_joins:
  local: {per_second: 1000, burst_count: 1000}
  remote: {per_second: 1000, burst_count: 1000}
rc_invites:
  per_room: {per_second: 1000, burst_count: 1000}
  per_user: {per_second: 1000, burst_count: 1000}
  per_issuer: {per_second: 1000, burst_count: 1000}
rc_room_creation: {per_second: 1000, burst_count: 1000}
rc_admin_redaction: {per_second: 1000, burst_count: 1000}
""")

LOG_YAML = """\
version: 1
formatters:
  precise:
    format: '%(asctime)s %(levelname)s %(name)s: %(message)s'
handlers:
  console:
    class: logging.StreamHandler
    formatter: precise
root:
  level: WARNING
  handlers: [console]
disable_existing_loggers: false
"""


@dataclass(frozen=True)
class MatrixAccount:
    """A registered user: full Matrix ID, password, and the access token of its first login."""

    user_id: str
    password: str
    access_token: str
    device_id: str

    @property
    def localpart(self) -> str:
        return self.user_id[1:].split(":", 1)[0]


class MatrixError(AssertionError):
    """An error answer from the homeserver, with its errcode."""

    def __init__(self, status: int, body: dict[str, Any]) -> None:
        self.status = status
        self.errcode = str(body.get("errcode", ""))
        super().__init__(f"HTTP {status}: {body}")


class SynapseServer(ManagedServer):
    """Synapse from its own venv on 127.0.0.1 (module doc)."""

    name = "synapse"
    start_timeout = 60.0

    def __init__(self, workdir: Path, python: Path, server_name: str = SERVER_NAME) -> None:
        super().__init__(workdir)
        self.python = python
        self.server_name = server_name
        self.host = HOST
        self.port = 0
        self.secret = secrets.token_hex(16)
        self.config_path = self.workdir / "homeserver.yaml"
        self._admin: MatrixAccount | None = None
        self._names = 0

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    # ManagedServer hooks ------------------------------------------------------------------

    def _choose_ports(self) -> None:
        self.port = free_port()

    def _listen_ports(self) -> list[int]:
        return [self.port]

    def _write_config(self) -> None:
        (self.workdir / "media").mkdir(exist_ok=True)
        key = self.workdir / "signing.key"
        if not key.exists():  # kept across restarts: events stay verifiable
            seed = base64.b64encode(secrets.token_bytes(32)).decode().rstrip("=")
            key.write_text(f"ed25519 a_test {seed}\n")
        (self.workdir / "log.yaml").write_text(LOG_YAML)
        self.config_path.write_text(
            HOMESERVER_YAML.substitute(
                server_name=self.server_name,
                host=self.host,
                port=self.port,
                dir=self.workdir,
                secret=self.secret,
            )
        )

    def _argv(self) -> list[str]:
        return [str(self.python), "-m", "synapse.app.homeserver", "-c", str(self.config_path)]

    def _probe(self, deadline: float) -> None:
        while True:
            try:
                with urllib.request.urlopen(
                    f"{self.url}/_matrix/client/versions", timeout=2
                ) as answer:
                    if answer.status == 200:
                        return
            except (OSError, urllib.error.URLError):
                pass
            if time.monotonic() >= deadline:
                raise TimeoutError("no answer to /_matrix/client/versions")
            time.sleep(0.05)

    # measurements -------------------------------------------------------------------------

    def rss_kb(self) -> int:
        """Resident memory of the running Synapse process, in KiB (0 when not running)."""
        if self.pid is None:
            return 0
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0

    # the admin API ------------------------------------------------------------------------

    def _request(
        self, method: str, path: str, body: dict[str, Any] | None = None, token: str | None = None
    ) -> dict[str, Any]:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(f"{self.url}{path}", data=data, method=method)
        request.add_header("Content-Type", "application/json")
        if token:
            request.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(request, timeout=20) as answer:
                result: dict[str, Any] = json.load(answer)
                return result
        except urllib.error.HTTPError as error:
            raise MatrixError(error.code, json.loads(error.read() or b"{}")) from None

    def unique(self, prefix: str) -> str:
        """`prefix` made unique on this server (a session's tests share it)."""
        self._names += 1
        return f"{prefix}{self._names}"

    def register(
        self,
        localpart: str,
        password: str | None = None,
        *,
        admin: bool = False,
        exact: bool = False,
    ) -> MatrixAccount:
        """Register a user with the shared-secret admin API (`localpart` made unique unless
        `exact`)."""
        name = localpart if exact else self.unique(localpart)
        password = password or secrets.token_hex(8)
        nonce = self._request("GET", "/_synapse/admin/v1/register")["nonce"]
        role = b"admin" if admin else b"notadmin"
        signed = b"\x00".join([nonce.encode(), name.encode(), password.encode(), role])
        mac = hmac.new(self.secret.encode(), signed, hashlib.sha1).hexdigest()
        answer = self._request(
            "POST",
            "/_synapse/admin/v1/register",
            {"nonce": nonce, "username": name, "password": password, "admin": admin, "mac": mac},
        )
        return MatrixAccount(
            answer["user_id"], password, answer["access_token"], answer["device_id"]
        )

    @property
    def admin(self) -> MatrixAccount:
        """A server admin (registered on first use)."""
        if self._admin is None:
            self._admin = self.register("admin", admin=True)
        return self._admin

    def override_ratelimit(self, user_id: str, per_second: int, burst_count: int) -> None:
        """Set the message rate limit of one user (0, 0: none at all)."""
        quoted = urllib.parse.quote(user_id)
        self._request(
            "POST",
            f"/_synapse/admin/v1/users/{quoted}/override_ratelimit",
            {"messages_per_second": per_second, "burst_count": burst_count},
            self.admin.access_token,
        )


# -- a small test client ---------------------------------------------------------------------


@dataclass(frozen=True)
class RoomEvent:
    """An event of a room's timeline (or an invite), as a client sees it in /sync."""

    room_id: str
    event: dict[str, Any]
    invite: bool = False

    @property
    def type(self) -> str:
        return str(self.event.get("type", ""))

    @property
    def sender(self) -> str:
        return str(self.event.get("sender", ""))

    @property
    def content(self) -> dict[str, Any]:
        content = self.event.get("content")
        return content if isinstance(content, dict) else {}

    @property
    def body(self) -> str:
        return str(self.content.get("body", ""))


class MatrixClient:
    """A syncing test client for one account (raw client-server API on aiohttp)."""

    def __init__(self, server: SynapseServer, account: MatrixAccount) -> None:
        self.server = server
        self.account = account
        self.user_id = account.user_id
        self.events: list[RoomEvent] = []
        self._session = aiohttp.ClientSession(
            headers={"Authorization": f"Bearer {account.access_token}"}
        )
        self._since: str | None = None
        self._changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._txn = 0

    async def start(self) -> None:
        """One initial sync (nothing older is recorded), then sync in the background."""
        await self._sync_once(0, record=False)
        self._task = asyncio.get_running_loop().create_task(self._sync_loop())

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._session.close()

    async def request(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        params: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        url = f"{self.server.url}/_matrix/client/v3{path}"
        async with self._session.request(method, url, json=body, params=params) as answer:
            data: dict[str, Any] = await answer.json(content_type=None)
            if answer.status != 200:
                raise MatrixError(answer.status, data)
            return data

    async def _sync_once(self, wait_ms: int, record: bool = True) -> None:
        params = {"timeout": str(wait_ms)}
        if self._since:
            params["since"] = self._since
        data = await self.request("GET", "/sync", params=params)
        self._since = data["next_batch"]
        if not record:
            return
        rooms = data.get("rooms", {})
        for room_id, room in rooms.get("join", {}).items():
            for event in room.get("timeline", {}).get("events", []):
                self.events.append(RoomEvent(room_id, event))
        for room_id, room in rooms.get("invite", {}).items():
            for event in room.get("invite_state", {}).get("events", []):
                self.events.append(RoomEvent(room_id, event, invite=True))
        self._changed.set()

    async def _sync_loop(self) -> None:
        while True:
            try:
                await self._sync_once(1000)
            except (TimeoutError, aiohttp.ClientError, MatrixError):
                await asyncio.sleep(0.2)  # the server restarts under some tests

    # waiting -------------------------------------------------------------------------------

    def mark(self) -> int:
        return len(self.events)

    async def wait_for(
        self,
        predicate: Callable[[RoomEvent], bool],
        timeout: float = 20.0,  # noqa: ASYNC109 (the deadline's failure says what was awaited)
        *,
        what: str = "an event",
        since: int = 0,
    ) -> RoomEvent:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        index = since
        while True:
            while index < len(self.events):
                event = self.events[index]
                index += 1
                if predicate(event):
                    return event
            left = deadline - loop.time()
            if left <= 0:
                tail = "\n  ".join(
                    f"{e.room_id} {e.sender} {e.type} {e.body!r}" for e in self.events[-15:]
                )
                raise AssertionError(
                    f"{self.user_id}: no {what} within {timeout}s; last events:\n  {tail}"
                )
            self._changed.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._changed.wait(), left)

    async def wait_message(
        self,
        sender: str,
        text: str,
        *,
        room_id: str | None = None,
        since: int = 0,
        timeout: float = 20.0,  # noqa: ASYNC109 (the deadline's failure says what was awaited)
    ) -> RoomEvent:
        """The first m.room.message from `sender` (in `room_id`) whose body contains `text`."""
        return await self.wait_for(
            lambda e: (
                e.type == "m.room.message"
                and e.sender == sender
                and (room_id is None or e.room_id == room_id)
                and text in e.body
            ),
            timeout,
            what=f"a message from {sender} containing {text!r}",
            since=since,
        )

    def messages(self, sender: str, room_id: str | None = None, since: int = 0) -> list[RoomEvent]:
        return [
            e
            for e in self.events[since:]
            if e.type == "m.room.message"
            and e.sender == sender
            and (room_id is None or e.room_id == room_id)
        ]

    # actions -------------------------------------------------------------------------------

    async def send_text(self, room_id: str, body: str) -> str:
        self._txn += 1
        txn = f"t{self._txn}-{secrets.token_hex(4)}"
        quoted = urllib.parse.quote(room_id)
        answer = await self.request(
            "PUT",
            f"/rooms/{quoted}/send/m.room.message/{txn}",
            {"msgtype": "m.text", "body": body},
        )
        return str(answer["event_id"])

    async def create_room(
        self, alias_localpart: str | None = None, invite: list[str] | None = None, **extra: Any
    ) -> str:
        body: dict[str, Any] = {"preset": "public_chat", "invite": invite or [], **extra}
        if alias_localpart:
            body["room_alias_name"] = alias_localpart
        return str((await self.request("POST", "/createRoom", body))["room_id"])

    async def join(self, room: str) -> str:
        quoted = urllib.parse.quote(room)
        return str((await self.request("POST", f"/join/{quoted}", {}))["room_id"])

    async def resolve_alias(self, alias: str) -> str:
        quoted = urllib.parse.quote(alias)
        return str((await self.request("GET", f"/directory/room/{quoted}"))["room_id"])

    async def set_displayname(self, name: str) -> None:
        quoted = urllib.parse.quote(self.user_id)
        await self.request("PUT", f"/profile/{quoted}/displayname", {"displayname": name})

    async def state(self, room_id: str, event_type: str, state_key: str = "") -> dict[str, Any]:
        quoted = urllib.parse.quote(room_id)
        return await self.request("GET", f"/rooms/{quoted}/state/{event_type}/{state_key}")

    def summary(self) -> str:
        return "\n".join(f"{e.room_id} {e.sender} {e.type} {e.body!r}" for e in self.events[-40:])

    def debug_sections(self) -> list[tuple[str, str]]:
        return [(f"matrix client {self.user_id} (last events)", self.summary())]


MatrixClientFactory = Callable[[MatrixAccount], Awaitable[MatrixClient]]


# -- fixtures --------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def synapse_session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SynapseServer]:
    """The session's Synapse as started; tests use `synapse`."""
    python = require_synapse()
    server = SynapseServer(tmp_path_factory.mktemp("synapse"), python)
    try:
        server.start()
        print(
            f"synapse started in {server.startup_seconds[-1]:.2f} s, "
            f"RSS {server.rss_kb() / 1024:.0f} MiB",
            file=sys.stderr,
        )
        yield server
    finally:
        server.close()


@pytest.fixture
def synapse(synapse_session: SynapseServer) -> SynapseServer:
    """The session's Synapse, running."""
    if not synapse_session.running:
        synapse_session.start()
    return synapse_session


class MatrixClients:
    def __init__(self, server: SynapseServer) -> None:
        self.server = server
        self.clients: list[MatrixClient] = []

    async def __call__(self, account: MatrixAccount) -> MatrixClient:
        client = MatrixClient(self.server, account)
        self.clients.append(client)
        await client.start()
        return client

    async def close_all(self) -> None:
        for client in self.clients:
            await client.close()

    def debug_sections(self) -> list[tuple[str, str]]:
        return [section for client in self.clients for section in client.debug_sections()]


@pytest.fixture
async def matrix_client(synapse: SynapseServer) -> AsyncIterator[MatrixClients]:
    """`await matrix_client(account)` → a syncing `MatrixClient`; closed at teardown."""
    clients = MatrixClients(synapse)
    try:
        yield clients
    finally:
        await clients.close_all()
