"""A loop-lag probe and a timer of store calls, for bench/looplag.py.

Two measurements, taken in the process that runs the bot's asyncio loop:

- **loop lag**: a task sleeps :data:`INTERVAL` seconds again and again and records by how
  much each wake-up came late (``loop.time()`` after the sleep minus the time it asked
  for).  A callback that holds the loop for 80 ms shows as a lag of up to 80 ms, whatever
  it is (a store call, a digest, irc3's parsing);
- **store calls**: every public method of :class:`deploybot.store.Store` is wrapped with
  a ``perf_counter`` timer (calls made on the loop's thread only), so a lag can be put down
  to the store call that made it, by name.

In the bot (``bench.commands.start_deploybot`` with ``DEPLOYBOT_BENCH_LAG_PROBE=FILE``)
it runs as ``python -m bench._lagprobe FILE run bot.ini``: the probe and the timers are
installed, then ``deploybot run`` runs as usual, and at exit (SIGTERM: the bot stops
cleanly) the samples are written to FILE as JSON.  bench/looplag.py uses the same pieces
in its own process for the digest workload.
"""

from __future__ import annotations

import asyncio
import atexit
import functools
import json
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from deploybot.store import Store

#: The probe's sleep: its wake-ups are the lag samples.
INTERVAL = 0.01

#: Store methods not timed: context managers and callbacks (their time is the caller's
#: block, not the store's) and the digest's lazy read (the rows are read as the caller
#: iterates; bench/looplag.py times the digest as a whole).
NOT_TIMED = frozenset(
    {"open", "close", "transaction", "after_commit", "incident_summaries_between"}
)


class LagProbe:
    """Samples of the loop's lag, in seconds (see the module's docstring)."""

    def __init__(self) -> None:
        self.lags: list[float] = []
        self.task: asyncio.Task[None] | None = None

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self.task = loop.create_task(self._run(loop))

    async def _run(self, loop: asyncio.AbstractEventLoop) -> None:
        while True:
            asked = loop.time()
            await asyncio.sleep(INTERVAL)
            self.lags.append(max(0.0, loop.time() - asked - INTERVAL))

    def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()


class StoreTimer:
    """Durations of the store's public methods by name, on one thread (the loop's)."""

    def __init__(self) -> None:
        self.calls: dict[str, list[float]] = {}
        self.thread = threading.get_ident()
        self._originals: dict[str, Callable[..., Any]] = {}

    def install(self) -> None:
        for name in dir(Store):
            original = getattr(Store, name)
            if name.startswith("_") or name in NOT_TIMED or not callable(original):
                continue
            self._originals[name] = original
            setattr(Store, name, self._timed(name, original))

    def uninstall(self) -> None:
        for name, original in self._originals.items():
            setattr(Store, name, original)
        self._originals.clear()

    def _timed(self, name: str, original: Callable[..., Any]) -> Callable[..., Any]:
        samples = self.calls.setdefault(name, [])

        @functools.wraps(original)
        def timed(*args: Any, **kwargs: Any) -> Any:
            if threading.get_ident() != self.thread:
                return original(*args, **kwargs)
            start = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                samples.append(time.perf_counter() - start)

        return timed


def summary(samples: list[float]) -> dict[str, float]:
    """count, p50, p99 and max of ``samples`` (seconds; zeros when there are none)."""
    if not samples:
        return {"count": 0, "p50": 0.0, "p99": 0.0, "max": 0.0}
    ordered = sorted(samples)

    def rank(fraction: float) -> float:
        return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]

    return {"count": len(ordered), "p50": rank(0.5), "p99": rank(0.99), "max": ordered[-1]}


def results(probe: LagProbe, timer: StoreTimer) -> dict[str, Any]:
    return {
        "lag": summary(probe.lags),
        "store": {name: summary(s) for name, s in sorted(timer.calls.items()) if s},
    }


class _ProbedPolicy(asyncio.DefaultEventLoopPolicy):
    """Starts the probe on every loop it makes (``deploybot run`` makes one)."""

    def __init__(self, probe: LagProbe) -> None:
        super().__init__()
        self.probe = probe

    def new_event_loop(self) -> asyncio.AbstractEventLoop:
        loop = super().new_event_loop()
        loop.call_soon(self.probe.start, loop)
        return loop


def main(argv: list[str]) -> int:
    """``FILE deploybot-arguments…``: run deploybot probed; write the results to FILE."""
    out, arguments = Path(argv[0]), argv[1:]
    probe, timer = LagProbe(), StoreTimer()
    timer.install()
    asyncio.set_event_loop_policy(_ProbedPolicy(probe))
    atexit.register(lambda: out.write_text(json.dumps(results(probe, timer))))
    from deploybot.cli import main as deploybot_main

    return deploybot_main(arguments)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
