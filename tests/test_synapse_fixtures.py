"""The Synapse test harness itself (tests/synapse.py): start, users, messages, restart."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.synapse import MatrixClients, MatrixError, SynapseServer, synapse_venv


async def test_users_exchange_a_message(
    synapse: SynapseServer, matrix_client: MatrixClients
) -> None:
    """Two users registered with the shared secret see each other's message in a room
    created with an alias on the loopback-only homeserver."""
    alice = await matrix_client(synapse.register("alice"))
    bob = await matrix_client(synapse.register("bob"))
    alias = synapse.unique("harness")
    room = await alice.create_room(alias, invite=[bob.user_id])
    assert await bob.resolve_alias(f"#{alias}:{synapse.server_name}") == room
    await bob.join(room)
    since = alice.mark()
    await bob.send_text(room, "hello <b>alice</b>")
    seen = await alice.wait_message(bob.user_id, "hello", room_id=room, since=since)
    assert seen.body == "hello <b>alice</b>"
    assert synapse.startup_seconds and synapse.startup_seconds[0] < 30
    assert synapse.rss_kb() > 10_000


async def test_no_federation_listener(synapse: SynapseServer, matrix_client: MatrixClients) -> None:
    """Only the client API listens: the federation API is not served."""
    client = await matrix_client(synapse.register("fed"))
    async with client._session.get(f"{synapse.url}/_matrix/federation/v1/version") as answer:
        assert answer.status == 404


async def test_restart_keeps_users_and_rooms(
    synapse: SynapseServer, matrix_client: MatrixClients
) -> None:
    """A restart comes back on the same port with the same database."""
    carol = await matrix_client(synapse.register("carol"))
    room = await carol.create_room()
    await synapse.arestart()
    since = carol.mark()
    await carol.send_text(room, "after the restart")
    await carol.wait_message(carol.user_id, "after the restart", since=since)


def test_ratelimit_override(synapse: SynapseServer) -> None:
    """A strict limit for one user answers M_LIMIT_EXCEEDED with retry_after_ms."""
    user = synapse.register("limited")
    synapse.override_ratelimit(user.user_id, 1, 1)
    room = synapse._request("POST", "/_matrix/client/v3/createRoom", {}, user.access_token)
    with pytest.raises(MatrixError) as caught:
        for n in range(5):
            synapse._request(
                "PUT",
                f"/_matrix/client/v3/rooms/{room['room_id']}/send/m.room.message/t{n}",
                {"msgtype": "m.text", "body": f"{n}"},
                user.access_token,
            )
    assert caught.value.errcode == "M_LIMIT_EXCEEDED"
    assert caught.value.status == 429


@pytest.mark.e2e
def test_skipped_without_venv_unless_ci(tmp_path: Path) -> None:
    """Without the Synapse venv the Matrix tests skip with the reason; under CI they fail."""
    test = tmp_path / "test_x.py"
    test.write_text("def test_x(synapse):\n    pass\n")
    repo = Path(__file__).resolve().parent.parent
    env = {**os.environ, "DEPLOYBOT_SYNAPSE_VENV": str(tmp_path / "nowhere")}
    env.pop("CI", None)
    args = [
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-rs",
        "-p",
        "no:cacheprovider",
        "-p",
        "tests.synapse",
        "--rootdir",
        str(tmp_path),
        str(test),
    ]
    cwd = repo
    skipped = subprocess.run(args, env=env, capture_output=True, text=True, cwd=cwd, timeout=120)
    assert "1 skipped" in skipped.stdout, skipped.stdout + skipped.stderr
    assert "no Synapse virtualenv" in skipped.stdout
    assert ".ci/synapse-venv" in skipped.stdout
    failed = subprocess.run(
        args, env={**env, "CI": "true"}, capture_output=True, text=True, cwd=cwd, timeout=120
    )
    assert failed.returncode == 1, failed.stdout
    assert "CI is set" in failed.stdout
    assert synapse_venv() != tmp_path  # the real one is untouched
