"""The `e2e` marker, applied by fixture use and checked against what a test really does.

`e2e` (registered in pyproject.toml) means: the test starts a process — a server binary
(inspircd, atheme, ngircd, RabbitMQ, Synapse, PostgreSQL), `deploybot` (run, demo or
another command) or another interpreter. `pytest -m "not e2e"` is the quick inner loop;
`.ci/run` runs everything.

- A test that uses one of `E2E_FIXTURES` (the server fixtures, `bot_process`, the demo's
  `demo`) or is marked `irc` (it needs the IRC server binaries) is marked `e2e` at
  collection.
- A test that starts a process some other way carries `@pytest.mark.e2e` itself.
- An audit hook (`sys.addaudithook`: `subprocess.Popen`, `os.fork`, `os.posix_spawn`, …)
  sees every process a test starts, in set-up, call or tear-down; a test that starts one
  without the marker fails, saying what it started. So the marker stays exact: nothing
  that starts a process hides in the inner loop.

A session fixture's processes count for the first test that asks for it (an `e2e` test by
the rule above). Loaded by tests/conftest.py as a plugin (`pytest_plugins`).

The same hook puts the files with `slow` tests first (most `slow` tests first; otherwise
the order is kept): `.ci/run` runs files in parallel (`-n N --dist loadfile
--no-loadscope-reorder`), and workers take files in collection order, so the long files
start at once instead of making a tail at the end.
"""

from __future__ import annotations

import sys
from collections.abc import Generator
from typing import Any

import pytest

from tests.ircd.fixtures import IRC_FIXTURES
from tests.postgres import POSTGRES_FIXTURES
from tests.synapse import MATRIX_FIXTURES

__all__ = ["E2E_FIXTURES", "SPAWN_EVENTS"]

#: Fixtures that start server or bot processes: a test using one is `e2e`.
E2E_FIXTURES = (
    IRC_FIXTURES
    | MATRIX_FIXTURES
    | POSTGRES_FIXTURES
    | {"rabbitmq", "rabbitmq_session", "bot_process", "demo"}
)

#: Audit events (PEP 578) raised when Python starts a process.
SPAWN_EVENTS = frozenset(
    {
        "subprocess.Popen",
        "os.fork",
        "os.forkpty",
        "os.posix_spawn",
        "os.exec",
        "os.spawn",
        "os.system",
    }
)

_spawned: list[str] = []


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if event in SPAWN_EVENTS:
        what = args[1] if event == "subprocess.Popen" and len(args) > 1 else args
        _spawned.append(f"{event} {what!r}"[:200])


sys.addaudithook(_audit)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark `e2e` every test that uses a process-starting fixture or is marked `irc`; put
    the files with the most `slow` tests first (a stable sort: a file's order is kept)."""
    _spawned.clear()  # whatever collection started is no test's doing
    slow: dict[str, int] = {}
    for item in items:
        uses = E2E_FIXTURES & set(getattr(item, "fixturenames", ()))
        if uses or item.get_closest_marker("irc") is not None:
            item.add_marker(pytest.mark.e2e)
        file = item.nodeid.split("::", 1)[0]
        slow[file] = slow.get(file, 0) + (item.get_closest_marker("slow") is not None)
    items.sort(key=lambda item: -slow[item.nodeid.split("::", 1)[0]])


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Fail a test not marked `e2e` that started a process (checked after each phase)."""
    report = yield
    if _spawned and item.get_closest_marker("e2e") is None and not report.failed:
        started = "\n  ".join(_spawned[:5])
        report.outcome = "failed"
        report.longrepr = (
            f"{item.nodeid} started a process but is not marked e2e "
            f"(tests/markers.py; add @pytest.mark.e2e or use an e2e fixture):\n  {started}"
        )
    _spawned.clear()
    return report
