"""The Matrix side of bench/commands.py: Synapse, a bare mautrix echo bot, a timing client.

Synapse is the test harness's (tests/synapse.py: its own venv, 127.0.0.1, SQLite, relaxed
rate limits); every user of the run has its message rate limit overridden to none.  The
floor is a bare mautrix-python bot (mautrix's own ``Client`` and sync loop) answering
``!ping`` with ``pong`` in the room; the client sends a command with the client-server
API and times until the answer comes back through its own /sync long-poll.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import textwrap
import time
import urllib.parse
from typing import Any

import aiohttp

#: A bare mautrix bot: mautrix's Client syncing (its own loop), answering !ping in rooms.
ECHO_BOT = textwrap.dedent(
    """
    import asyncio, sys
    from mautrix.client import Client
    from mautrix.types import EventType, MessageEvent, TextMessageEventContent, MessageType

    async def main():
        url, user, token = sys.argv[1:4]
        client = Client(mxid=user, base_url=url, token=token)
        client.ignore_initial_sync = True

        async def on_message(event: MessageEvent) -> None:
            if event.sender != user and event.content.body == "!ping":
                await client.send_message(
                    event.room_id, TextMessageEventContent(msgtype=MessageType.TEXT, body="pong")
                )

        client.add_event_handler(EventType.ROOM_MESSAGE, on_message)
        for room in sys.argv[4:]:
            await client.join_room(room)
        await client.start(None)

    asyncio.run(main())
    """
)


class TimingClient:
    """A syncing client that sends a line and times the first answer from a sender."""

    def __init__(self, url: str, token: str) -> None:
        self.url = url
        self.session = aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"})
        self.events: list[tuple[str, str]] = []  # (sender, body)
        self.changed = asyncio.Event()
        self.since: str | None = None
        self.task: asyncio.Task[None] | None = None

    async def request(
        self, method: str, path: str, body: Any = None, params: Any = None
    ) -> dict[str, Any]:
        url = f"{self.url}/_matrix/client/v3{path}"
        async with self.session.request(method, url, json=body, params=params) as answer:
            data: dict[str, Any] = await answer.json(content_type=None)
            if answer.status != 200:
                raise RuntimeError(f"{method} {path}: HTTP {answer.status} {data}")
            return data

    async def start(self) -> None:
        data = await self.request("GET", "/sync", params={"timeout": "0"})
        self.since = data["next_batch"]
        self.task = asyncio.get_running_loop().create_task(self._sync_loop())

    async def _sync_loop(self) -> None:
        while True:
            params = {"timeout": "30000", "since": self.since or ""}
            data = await self.request("GET", "/sync", params=params)
            self.since = data["next_batch"]
            for room in data.get("rooms", {}).get("join", {}).values():
                for event in room.get("timeline", {}).get("events", []):
                    if event.get("type") == "m.room.message":
                        body = str(event.get("content", {}).get("body", ""))
                        self.events.append((str(event.get("sender")), body))
            self.changed.set()

    async def close(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
        await self.session.close()

    async def send(self, room: str, text: str) -> None:
        txn = secrets.token_hex(8)
        quoted = urllib.parse.quote(room)
        await self.request(
            "PUT", f"/rooms/{quoted}/send/m.room.message/{txn}", {"msgtype": "m.text", "body": text}
        )

    async def round_trip(
        self,
        room: str,
        text: str,
        sender: str,
        answer: str,
        timeout: float = 10.0,  # noqa: ASYNC109
    ) -> float:
        """Milliseconds from sending ``text`` to seeing ``sender``'s message containing
        ``answer`` in this client's sync."""
        index = len(self.events)
        began = time.perf_counter()
        await self.send(room, text)
        async with asyncio.timeout(timeout):
            while True:
                while index < len(self.events):
                    who, body = self.events[index]
                    index += 1
                    if who == sender and answer in body:
                        return (time.perf_counter() - began) * 1000
                self.changed.clear()
                await self.changed.wait()

    async def round_trips(
        self, room: str, text: str, sender: str, answer: str, count: int
    ) -> list[float]:
        return [await self.round_trip(room, text, sender, answer) for _ in range(count)]
