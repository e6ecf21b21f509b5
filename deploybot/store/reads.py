"""Long reads off the asyncio loop: one worker thread with a connection of its own.

The store is called synchronously on the loop (a few indexed statements each, a few
milliseconds at most: README, Benchmarks), except for reads that may take long — a
day's digest reads every incident of the day: 0.5 s for 100,000 of them, on SQLite and
on PostgreSQL alike.  :class:`ReadWorker` runs such a read in one dedicated thread on a
second :class:`~deploybot.store.Store` opened on the same database (by that thread: an
SQLite connection is its opener thread's), so the loop goes on meanwhile.  The read sees
what was committed when it runs; it must not write.  Reads queue: one at a time.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Generic, Protocol, TypeVar

__all__ = ["ReadWorker"]

_T = TypeVar("_T")


class _Closable(Protocol):
    def close(self) -> None: ...


_S = TypeVar("_S", bound=_Closable)


class ReadWorker(Generic[_S]):
    """Runs ``read(store)`` in its thread on the store ``opener`` gives (opened at the
    first read, in that thread): ``ReadWorker(store.reopen)``."""

    def __init__(self, opener: Callable[[], _S]) -> None:
        self._opener = opener
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="store-reads")
        self._store: _S | None = None
        #: The worker thread's id, once it ran a read (tests check the loop's is another).
        self.thread: int | None = None

    def _call(self, read: Callable[[_S], _T]) -> _T:
        if self._store is None:
            self._store = self._opener()
            self.thread = threading.get_ident()
        return read(self._store)

    async def run(self, read: Callable[[_S], _T]) -> _T:
        """``read(store)`` in the worker thread; its result, or its exception."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._call, read)

    def close(self) -> None:
        """Close the worker's store (in its thread) and stop the thread (idempotent)."""

        def close_store() -> None:
            if self._store is not None:
                self._store.close()
                self._store = None

        try:
            self._executor.submit(close_store).result()
        except RuntimeError:  # already shut down
            return
        self._executor.shutdown(wait=True)
