"""Shared pieces of the benchmarks: a minimal raw IRC client and latency statistics."""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import time
from collections.abc import Callable

#: Seconds a JOIN or a command's answer may take (TimeoutError after that).
ANSWER_TIMEOUT = 3.0


class RawClient:
    """Just enough IRC to time round trips: register, join, send, read PRIVMSG/NOTICE."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def connect(cls, host: str, port: int, nick: str) -> RawClient:
        reader, writer = await asyncio.open_connection(host, port)
        client = cls(reader, writer)
        client.send(f"NICK {nick}")
        client.send(f"USER {nick} 0 * :bench")
        async with asyncio.timeout(15):
            await client.until(lambda line: " 001 " in line)
        return client

    def send(self, line: str) -> None:
        self.writer.write(line.encode() + b"\r\n")

    async def until(self, predicate: Callable[[str], bool]) -> str:
        """The next line ``predicate`` accepts (answering PINGs meanwhile); no deadline of
        its own: callers wrap it in ``asyncio.timeout``."""
        while True:
            raw = await self.reader.readline()
            if not raw:
                raise ConnectionError("server closed the connection")
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            if line.startswith("PING"):
                self.send("PONG" + line[4:])
                continue
            if predicate(line):
                return line

    async def join(self, channel: str, wait_for_nick: str | None = None) -> None:
        self.send(f"JOIN {channel}")
        async with asyncio.timeout(ANSWER_TIMEOUT):
            await self.until(lambda line: " JOIN " in line and channel in line)

    async def round_trips(
        self, target: str, texts: list[str], answer: str, from_nick: str
    ) -> list[float]:
        """Send each text and wait for a PRIVMSG/NOTICE from ``from_nick`` containing ``answer``."""
        times = []
        for text in texts:
            start = time.perf_counter()
            self.send(f"PRIVMSG {target} :{text}")
            async with asyncio.timeout(ANSWER_TIMEOUT):
                await self.until(
                    lambda line: (
                        line.startswith(f":{from_nick}!")
                        and (" PRIVMSG " in line or " NOTICE " in line)
                        and answer in line
                    )
                )
            times.append((time.perf_counter() - start) * 1000)
        return times

    async def close(self) -> None:
        self.send("QUIT :bench done")
        self.writer.close()
        with contextlib.suppress(ConnectionError):
            await self.writer.wait_closed()


def containing(text: str) -> Callable[[str], bool]:
    """A :meth:`RawClient.until` predicate: the line contains ``text``."""
    return lambda line: text in line


def percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    q = statistics.quantiles(ordered, n=100, method="inclusive")
    return {"p50": statistics.median(ordered), "p95": q[94], "p99": q[98], "max": ordered[-1]}


def row(label: str, stats: dict[str, float]) -> str:
    return (
        f"{label:<34} p50 {stats['p50']:6.2f} ms  p95 {stats['p95']:6.2f} ms  "
        f"p99 {stats['p99']:6.2f} ms  max {stats['max']:7.2f} ms"
    )
