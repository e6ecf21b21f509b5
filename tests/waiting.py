"""Waiting in tests without blocking the event loop."""

from __future__ import annotations

import asyncio
from collections.abc import Callable


async def eventually(check: Callable[[], object], what: str, timeout: float = 10.0) -> None:  # noqa: ASYNC109 (the deadline's failure says what was awaited)
    """Poll ``check()`` every 5 ms until it is true; after ``timeout`` seconds, fail with an
    AssertionError that says what was awaited."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not check():
        if loop.time() > deadline:
            raise AssertionError(f"not within {timeout} s: {what}")
        await asyncio.sleep(0.005)
