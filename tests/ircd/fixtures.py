"""pytest fixtures: real IRC servers on 127.0.0.1 and raw clients connected to them.

`tests/conftest.py` imports everything listed in `__all__` (fixtures and two hooks).

Fixtures
- `inspircd_services` (one per session, ~1.1 s to start): inspircd linked with atheme;
  `.host`, `.stock_port` (default-install flood control), `.relaxed_port` (none),
  `.servers_port`, `.unique_name(prefix)`, `.restart()`/`.kill()`/`.start()`/`.stop()` and
  their `a…` variants. Each test gets it running and linked (a test that killed or stopped
  inspircd leaves it to the next test's set-up to bring it back).
- `inspircd_server`: a fresh inspircd without services, per test (~1 s).
- `ngircd_server` / `ngircd_stock_server`: a fresh ngircd per test (~0.05 s), without /
  with the stock flood penalty; `.port`.
- `irc_client`: `await irc_client(port, "nick", caps=..., sasl=(account, password))` gives a
  connected `IrcClient`; all of them are closed at teardown.
- `make_account`: `await make_account("alice")` registers a fresh NickServ account on
  `inspircd_services` and returns `Account(name, password, email)`; the name is made unique
  (`alice7`), so always use `account.name`.

inspircd completes client registrations once a second (its background tick), so each
connect there takes up to ~1 s: connect several clients with `asyncio.gather`.

Tests using these fixtures are marked `irc` (and `e2e`) automatically; on a failure the
report shows the server log tails and the last lines each client sent and received. Missing
server binaries fail the tests (`.ci/run` installs them) unless DEPLOYBOT_SKIP_IRC=1 skips
them.

Under pytest-xdist (`.ci/run`: `-n 4 --dist loadfile`) a "session" is one worker's: each
worker that needs them starts its own servers, on free ports drawn at random (a port taken
meanwhile means new ports, see `ManagedServer.start`), in its own tmp directories (pytest's
per-worker base) and /tmp directories (`mkdtemp`); nothing is shared between workers.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.ircd.client import DEFAULT_CAPS, IrcClient
from tests.ircd.servers import (
    HOST,
    INSTALL_HINT,
    InspircdServer,
    InspircdWithServices,
    NgircdServer,
    missing_binaries,
)

__all__ = [
    "Account",
    "IrcClientFactory",
    "MakeAccount",
    "inspircd_server",
    "inspircd_services",
    "inspircd_services_session",
    "irc_client",
    "make_account",
    "ngircd_server",
    "ngircd_stock_server",
    "pytest_collection_modifyitems",
    "pytest_runtest_makereport",
]

SKIP_ENV = "DEPLOYBOT_SKIP_IRC"
IRC_FIXTURES = frozenset(
    {
        "inspircd_services",
        "inspircd_server",
        "ngircd_server",
        "ngircd_stock_server",
        "make_account",
        "inspircd_services_session",
    }
)


def _skip_requested() -> bool:
    return os.environ.get(SKIP_ENV, "") not in {"", "0"}


def require_irc_binaries(*names: str) -> None:
    """Skip when DEPLOYBOT_SKIP_IRC=1; otherwise fail loudly if a server binary is missing."""
    if _skip_requested():
        pytest.skip(f"{SKIP_ENV}=1: tests needing real IRC servers are skipped")
    missing = missing_binaries(names) if names else missing_binaries()
    if missing:
        pytest.fail(f"IRC server binaries not installed: {', '.join(missing)}. {INSTALL_HINT}")


# -- servers -----------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def inspircd_services_session(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[InspircdWithServices]:
    """The session's inspircd + atheme network as started; tests use `inspircd_services`."""
    require_irc_binaries("inspircd", "atheme-services", "setpriv")
    network = InspircdWithServices(tmp_path_factory.mktemp("inspircd-services"))
    try:
        network.start()
        yield network
    finally:
        network.close()


@pytest.fixture
def inspircd_services(inspircd_services_session: InspircdWithServices) -> InspircdWithServices:
    """The session's inspircd + atheme network, running and linked."""
    inspircd_services_session.start()
    return inspircd_services_session


@pytest.fixture
def inspircd_server(tmp_path: Path) -> Iterator[InspircdServer]:
    """A fresh inspircd (stock and relaxed client ports, no services) for one test."""
    require_irc_binaries("inspircd")
    server = InspircdServer(tmp_path / "inspircd")
    try:
        server.start()
        yield server
    finally:
        server.close()


@pytest.fixture
def ngircd_server(tmp_path: Path) -> Iterator[NgircdServer]:
    """A fresh ngircd without flood penalty (`MaxPenaltyTime = 0`) for one test; `.port`."""
    require_irc_binaries("ngircd")
    server = NgircdServer(tmp_path / "ngircd", relaxed=True)
    try:
        server.start()
        yield server
    finally:
        server.close()


@pytest.fixture
def ngircd_stock_server(tmp_path: Path) -> Iterator[NgircdServer]:
    """A fresh ngircd with its stock flood penalty for one test; `.port`."""
    require_irc_binaries("ngircd")
    server = NgircdServer(tmp_path / "ngircd-stock", relaxed=False)
    try:
        server.start()
        yield server
    finally:
        server.close()


# -- clients -----------------------------------------------------------------------------------


class IrcClientFactory:
    """Creates connected `IrcClient`s and closes them all at teardown."""

    def __init__(self) -> None:
        self.clients: list[IrcClient] = []
        self._count = 0

    async def __call__(
        self,
        port: int,
        nick: str | None = None,
        *,
        host: str = HOST,
        caps: tuple[str, ...] = DEFAULT_CAPS,
        sasl: tuple[str, str] | None = None,
        timeout: float = 10.0,  # noqa: ASYNC109 (the deadline's failure says what was awaited)
    ) -> IrcClient:
        """Connect and register (see `IrcClient.connect`); `nick` defaults to `clientN`."""
        if nick is None:
            self._count += 1
            nick = f"client{self._count}"
        client = await IrcClient.connect(host, port, nick, caps=caps, sasl=sasl, timeout=timeout)
        self.clients.append(client)
        return client

    async def close_all(self) -> None:
        for client in self.clients:
            await client.quit(timeout=2.0)

    def debug_sections(self) -> list[tuple[str, str]]:
        return [(f"IRC client {c.nick}", c.summary(lines=40)) for c in self.clients]


@pytest.fixture
async def irc_client() -> AsyncIterator[IrcClientFactory]:
    """Factory: `await irc_client(port, "nick", caps=..., sasl=(account, password))`."""
    factory = IrcClientFactory()
    try:
        yield factory
    finally:
        await factory.close_all()


@dataclass(frozen=True)
class Account:
    """A NickServ account registered on `inspircd_services`."""

    name: str
    password: str
    email: str


MakeAccount = Callable[..., Awaitable[Account]]
"""The type of the `make_account` fixture: `(name="acct", password=None) -> Account`."""


@pytest.fixture
def make_account(inspircd_services: InspircdWithServices) -> MakeAccount:
    """`await make_account(name="acct", password=None) -> Account`: registers a fresh
    account (name made unique on the shared server; a password is generated if omitted)."""

    async def make(name: str = "acct", password: str | None = None) -> Account:
        unique = inspircd_services.unique_name(name)
        account = Account(
            name=unique,
            password=password or f"pw-{secrets.token_hex(6)}",
            email=f"{unique}@example.test",
        )
        client = await IrcClient.connect(
            inspircd_services.host, inspircd_services.relaxed_port, account.name, caps=()
        )
        try:
            await client.register_account(account.password, account.email)
        finally:
            await client.quit()
        return account

    return make


# -- hooks -------------------------------------------------------------------------------------


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark tests that use the IRC server fixtures `irc`; skip all `irc` tests when
    DEPLOYBOT_SKIP_IRC=1."""
    skip = pytest.mark.skip(reason=f"{SKIP_ENV}=1") if _skip_requested() else None
    for item in items:
        if IRC_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.irc)
        if skip is not None and item.get_closest_marker("irc") is not None:
            item.add_marker(skip)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """On a failure, append server log tails and client transcripts to the report."""
    report = yield
    if report.failed:
        seen: set[int] = set()
        for value in getattr(item, "funcargs", {}).values():
            sections = getattr(value, "debug_sections", None)
            if callable(sections) and id(value) not in seen:
                seen.add(id(value))
                report.sections.extend(sections())
    return report
