"""deploybot.store: the outbox table, and transactions that nest, on a real SQLite file and
on PostgreSQL (`store_db`: each test runs on both).

A decision (a ledger claim, a page) and the posts it causes are one transaction: both
are kept or neither; callbacks registered with ``after_commit`` run only once the
outermost block has committed."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from deploybot.store import Store, StoredPost, StoreUnavailableError
from tests.storedb import StoreDatabase

T0 = datetime(2026, 11, 27, 14, 2, 0, tzinfo=UTC)


@pytest.fixture
def db_path(store_db: StoreDatabase) -> str:
    return store_db.location


@pytest.fixture
def store(db_path: str) -> Iterator[Store]:
    with Store.open(db_path) as opened:
        yield opened


@pytest.fixture
def other(store_db: StoreDatabase) -> Iterator[Any]:
    """A second, independent connection to the database (as another process would have)."""
    connection = store_db.other()
    yield connection
    connection.close()


def test_posts_are_kept_in_order_until_confirmed_across_reopen(db_path: str) -> None:
    """Posts come back in the order they were added, with their time, after a reopen;
    confirming removes exactly the ones named."""
    with Store.open(db_path) as store:
        first = store.add_post("JOIN", "#fire", "", T0)
        second = store.add_post("TOPIC", "#fire", "pkgdb2 deploy", T0)
        third = store.add_post("PRIVMSG", "pingou", "[page #1] hi", T0 + timedelta(seconds=1))
    with Store.open(db_path) as store:
        assert store.pending_posts() == (first, second, third)
        assert third == StoredPost(
            third.id, T0 + timedelta(seconds=1), "PRIVMSG", "pingou", "[page #1] hi"
        )
        assert store.confirm_posts([first.id, third.id]) == 2
        assert store.confirm_posts([first.id]) == 0
        assert store.pending_posts() == (second,)


def test_an_unknown_command_is_refused(store: Store) -> None:
    with pytest.raises(ValueError, match="not a post command"):
        store.add_post("KICK", "#fire", "", T0)  # type: ignore[arg-type]


def test_a_claim_and_its_posts_commit_together(other: Any, store: Store) -> None:
    """Inside ``transaction`` nothing is visible to another connection until the block
    ends; then the claim and the posts are there together."""
    with store.transaction():
        assert store.claim_once("firefight-open:pkgdb2-2.0", T0)
        store.add_post("PRIVMSG", "#fire", "pkgdb2 deploy started", T0)
        assert store.in_transaction
        assert other.execute("SELECT count(*) FROM outbox").fetchone()[0] == 0
        assert other.execute("SELECT count(*) FROM once_claims").fetchone()[0] == 0
    assert not store.in_transaction
    assert other.execute("SELECT count(*) FROM outbox").fetchone()[0] == 1
    assert other.execute("SELECT count(*) FROM once_claims").fetchone()[0] == 1


def test_a_failure_after_the_posts_rolls_back_the_claim_and_the_posts(store: Store) -> None:
    """An error anywhere in the block leaves neither the claim nor any post, and no
    after-commit callback runs."""
    ran: list[str] = []
    with pytest.raises(RuntimeError), store.transaction():
        store.claim_once("firefight-open:pkgdb2-2.0", T0)
        store.create_page_once(
            "firefight-page:pkgdb2-2.0:pingou",
            target_nick="pingou",
            team=None,
            plan_id="pkgdb2-2.0",
            message="deploy started",
            sender_nick="deploybot",
            now=T0,
            escalate_at=None,
        )
        store.add_post("PRIVMSG", "pingou", "[page #1] deploy started", T0)
        store.after_commit(lambda: ran.append("sent"))
        raise RuntimeError("crash in the middle")
    assert store.pending_posts() == ()
    assert not store.claimed("firefight-open:pkgdb2-2.0")
    assert store.list_pages() == ()
    assert ran == []
    # and the same key can be claimed again: nothing was used up
    assert store.claim_once("firefight-open:pkgdb2-2.0", T0)


def test_a_failed_inner_write_rolls_back_only_itself(store: Store) -> None:
    """A nested block that raises (and is caught) is undone alone, with its callbacks;
    the rest of the transaction commits and its callbacks run after the commit."""
    ran: list[str] = []
    with store.transaction():
        store.add_post("PRIVMSG", "#fire", "kept", T0)
        store.after_commit(lambda: ran.append("kept"))
        try:
            with store.transaction():
                store.add_post("PRIVMSG", "#fire", "undone", T0)
                store.after_commit(lambda: ran.append("undone"))
                raise RuntimeError("this page failed")
        except RuntimeError:
            pass
        with store.transaction():
            store.add_post("PRIVMSG", "#fire", "also kept", T0)
            store.after_commit(lambda: ran.append("also kept"))
        assert ran == []
    assert [post.text for post in store.pending_posts()] == ["kept", "also kept"]
    assert ran == ["kept", "also kept"]


def test_after_commit_outside_a_transaction_runs_at_once(store: Store) -> None:
    ran: list[int] = []
    store.after_commit(lambda: ran.append(1))
    assert ran == [1]


def test_a_failing_callback_does_not_stop_the_others(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    ran: list[int] = []

    def explode() -> None:
        raise RuntimeError("boom")

    with store.transaction():
        store.add_post("PRIVMSG", "#fire", "x", T0)
        store.after_commit(explode)
        store.after_commit(lambda: ran.append(1))
    assert ran == [1]
    assert "after-commit callback failed" in caplog.text


def test_a_locked_database_rolls_back_the_whole_block(store_db: StoreDatabase) -> None:
    """Another connection holding the write lock: the block cannot start, nothing is
    kept, and the error is the store's (the caller tells the user)."""
    with Store.open(store_db.location, busy_timeout=0.05) as store:
        with store_db.hold_write_lock():
            with pytest.raises(StoreUnavailableError, match="busy"), store.transaction():
                store.add_post("PRIVMSG", "#fire", "x", T0)
            with pytest.raises(StoreUnavailableError, match="busy"):
                store.check_writable()
        assert store.pending_posts() == ()
        store.check_writable()
        assert not store.in_transaction


def test_schema_4_adds_the_outbox_to_a_version_3_database(store_db: StoreDatabase) -> None:
    """A database of schema 3 is upgraded in place; its data stays."""
    store_db.make_version(3)
    with store_db.other() as raw:
        raw.execute("INSERT INTO once_claims VALUES ('digest:2026-11-27', '2026-11-27T10:00:00Z')")
    with Store.open(store_db.location) as store:
        assert store.claimed("digest:2026-11-27")
        assert store.pending_posts() == ()
        store.add_post("PART", "#fire", "bye", T0)
        assert len(store.pending_posts()) == 1


def test_with_two_networks_a_post_is_kept_until_both_confirmed(store: Store) -> None:
    """Each network confirms for itself; the post is forgotten once every network of
    post_networks has; pending posts say who confirmed them already."""
    store.post_networks = ("irc", "matrix")
    first = store.add_post("PRIVMSG", "#a", "one", T0)
    second = store.add_post("PRIVMSG", "#a", "two", T0)
    assert store.confirm_posts([first.id, second.id], "matrix") == 0
    assert store.confirm_posts([first.id, first.id], "matrix") == 0  # twice is once
    assert [p.confirmed_by for p in store.pending_posts()] == [frozenset({"matrix"})] * 2
    assert store.confirm_posts([first.id], "irc") == 1
    assert [(p.text, p.confirmed_by) for p in store.pending_posts()] == [
        ("two", frozenset({"matrix"}))
    ]


def test_network_state_by_network_and_key(store: Store) -> None:
    store.set_network_value("matrix", "since", "s1")
    store.set_network_value("matrix", "since", "s2")
    store.set_network_value("matrix", "dm:@a:x", "!room-a")
    store.set_network_value("matrix", "dm:@b:x", "!room-b")
    store.set_network_value("other", "dm:@a:x", "!elsewhere")
    assert store.network_value("matrix", "since") == "s2"
    assert store.network_items("matrix", "dm:") == {"dm:@a:x": "!room-a", "dm:@b:x": "!room-b"}
    store.set_network_value("matrix", "dm:@a:x", None)
    assert store.network_items("matrix", "dm:") == {"dm:@b:x": "!room-b"}
    assert store.network_value("matrix", "nothing") is None


# --- the bus outbox (what the bot publishes on the message bus) ---------------------------


def test_bus_messages_are_kept_whole_in_order_until_confirmed_across_reopen(
    db_path: str,
) -> None:
    """Headers (text, integers, booleans) and the body text come back exactly, with the
    message id, after a reopen; confirming removes exactly the ones named."""
    headers: dict[str, str | int | bool] = {
        "fedora_messaging_schema": "deploybot.digest.v1",
        "sent-at": "2026-11-27T14:02:00+00:00",
        "fedora_messaging_severity": 20,
        "fedora_messaging_user_pingou": True,
    }
    body = '{"date": "2026-11-27", "text": "caf\\u00e9 \\u2028"}'
    with Store.open(db_path) as store:
        first = store.add_bus_message(
            "id-1", "org.fedoraproject.prod.deploybot.digest", headers, body, T0
        )
        second = store.add_bus_message(
            "id-2", "org.fedoraproject.prod.deploybot.digest", {}, "{}", T0
        )
    with Store.open(db_path) as store:
        assert store.pending_bus_messages() == (first, second)
        assert store.bus_outbox_state() == (2, T0)
        assert first.headers == headers and first.body == body and first.message_id == "id-1"
        assert first.queued_at == T0 and first.id < second.id
        assert store.confirm_bus_messages([first.id]) == 1
        assert store.confirm_bus_messages([first.id]) == 0
        assert store.pending_bus_messages() == (second,)
        store.confirm_bus_messages([second.id])
        assert store.bus_outbox_state() == (0, None)


def test_a_decision_rolled_back_keeps_no_bus_message(store: Store) -> None:
    handed: list[int] = []
    with pytest.raises(RuntimeError), store.transaction():
        stored = store.add_bus_message("id-1", "a.b", {}, "{}", T0)
        store.after_commit(lambda: handed.append(stored.id))
        raise RuntimeError("the decision failed")
    assert store.pending_bus_messages() == () and handed == []


def test_bus_messages_are_kept_until_the_broker_confirms_them(db_path: str) -> None:
    """The bus outbox (schema 8), on both backends: messages back in order with their
    headers and body as given, across a reopen; confirming removes exactly those; a
    message id is stored once."""
    body = '{"msg": {"text": "⚠ 50% done"}}'
    with Store.open(db_path) as store:
        first = store.add_bus_message(
            message_id="m-1", routing_key="org.fedoraproject.deploybot.x",
            headers={"sent-at": "2026-11-27T14:02:00Z", "priority": 0}, body=body, now=T0,
        )  # fmt: skip
        second = store.add_bus_message(
            message_id="m-2", routing_key="org.fedoraproject.deploybot.y",
            headers={}, body="{}", now=T0,
        )  # fmt: skip
        with pytest.raises(Exception), store.transaction():  # noqa: B017  (either driver's)
            store.add_bus_message(message_id="m-1", routing_key="r", headers={}, body="{}", now=T0)
    with Store.open(db_path) as store:
        assert store.pending_bus_messages() == (first, second)
        assert first.body == body and first.headers["priority"] == 0
        assert store.confirm_bus_messages([first.id]) == 1
        assert store.pending_bus_messages() == (second,)
