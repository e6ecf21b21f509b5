"""ReadWorker and Core.read: long reads (a big day's digest) run off the asyncio loop, in
one thread of their own on a connection of their own, on both backends (`store_db`)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from deploybot.store import ReadWorker, Store
from tests.storedb import StoreDatabase

T0 = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)


@pytest.fixture
def store(store_db: StoreDatabase) -> Iterator[Store]:
    with Store.open(store_db.location) as opened:
        yield opened


def report(store: Store, text: str) -> int:
    return store.report_incident(
        service="pkgdb2", text=text, reporter_nick="alice", reporter_account=None,
        channel="#c", now=T0,
    ).number  # fmt: skip


async def test_a_read_runs_in_the_workers_thread_on_its_own_store(store: Store) -> None:
    """The read gets another store (its connection opened by the worker's thread), sees
    what the loop's store committed, and its errors come back to the caller."""
    report(store, "committed before")
    worker = ReadWorker(store.reopen)
    try:
        seen = await worker.run(
            lambda reader: (
                threading.get_ident(),
                reader,
                [i.text for i in reader.list_incidents()],
            )
        )
        thread, reader, texts = seen
        assert thread != threading.get_ident() and thread == worker.thread
        assert reader is not store and reader.backend == store.backend
        assert texts == ["committed before"]
        report(store, "committed after")
        assert await worker.run(lambda reader: len(reader.list_incidents())) == 2
        with pytest.raises(ZeroDivisionError):
            await worker.run(lambda reader: 1 // 0)
    finally:
        worker.close()
    worker.close()  # idempotent


async def test_the_loop_goes_on_while_a_read_runs(store: Store) -> None:
    """A read that waits for the loop (here: for an event the loop sets) would deadlock
    if it ran on the loop; in the worker, the loop sets it and the read finishes."""
    loop_went_on = threading.Event()
    worker = ReadWorker(store.reopen)

    def slow_read(reader: Store) -> int:
        if not loop_went_on.wait(30):
            raise TimeoutError("the loop did not run while the read ran")
        return len(reader.list_incidents())

    try:
        reading = asyncio.ensure_future(worker.run(slow_read))
        await asyncio.sleep(0.05)
        assert not reading.done()
        loop_went_on.set()
        assert await asyncio.wait_for(reading, 30) == 0
    finally:
        worker.close()
