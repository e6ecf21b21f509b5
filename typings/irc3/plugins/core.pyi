import asyncio
from collections.abc import Callable
from typing import Any

class Core:
    """irc3's core plugin: PING/PONG, nick tracking, ``server_ready``."""

    bot: Any
    timeout: int
    max_lag: int
    reconn_handle: asyncio.TimerHandle | None
    ping_handle: asyncio.TimerHandle | None
    nick_handle: asyncio.TimerHandle | None
    reconnect: Callable[[], Any]
    def __init__(self, bot: Any) -> None: ...
