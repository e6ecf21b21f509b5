"""deploybot.deployday.posts: the durable outbox, as the deploy-day parts use it.

A real SQLite store under ``tmp_path``; the transport is a recorder of what it is handed.
A decision (firefighting's opening, a countdown, a page) and its posts are one
transaction: an error part-way leaves neither, and the transport is handed nothing
before the commit."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from deploybot.config import config_from_mapping
from deploybot.core import Core
from deploybot.deployday.countdowns import CountdownPoster
from deploybot.deployday.day import DeployDay
from deploybot.deployday.posts import Networks, StoredOutbox
from deploybot.plans.book import PlanBook
from deploybot.plans.files import dump_plan
from deploybot.store import Store, StoredPost, StoreWriteError
from tests.planfactory import make_plan, utc

WHEN = utc(2026, 12, 15, 13)
FIRE = "#pkgdb2-firefight"


class Transport:
    """Records what :class:`StoredOutbox` hands over, in order."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, ...]] = []
        self.posts: list[StoredPost] = []

    def reply(self, target: str, text: str) -> None:
        self.calls.append(("reply", target, text))

    def notice(self, target: str, text: str) -> None:
        self.calls.append(("notice", target, text))

    def keep_joined(self, channel: str, joined: bool) -> None:
        self.calls.append(("keep", channel, str(joined)))

    def send_post(self, post: StoredPost) -> None:
        self.calls.append(("send", post.command, post.target, post.text))
        self.posts.append(post)


class Clock:
    def __init__(self) -> None:
        self.now = WHEN

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def core(tmp_path: Path) -> Iterator[Core]:
    plans_dir = tmp_path / "plans"
    plans_dir.mkdir()
    (plans_dir / "pkgdb2-2.0.yaml").write_text(dump_plan(make_plan(when=WHEN)), encoding="utf-8")
    book = PlanBook(plans_dir)
    assert not book.reload().problems
    config = config_from_mapping({"admins": "account:alice", "admin_channel": "#admin"})
    store = Store.open(tmp_path / "db.sqlite3")
    core = Core(config=config, store=store, book=book, clock=Clock())
    yield core
    core.store.close()


def test_opening_stores_its_posts_with_the_claim_and_hands_them_over_after(
    core: Core,
) -> None:
    """Every post of the opening (join, topic, started line, breaks, pages, highlights)
    is in the store when the claim is, and reaches the transport in that order."""
    transport = Transport()
    outbox = StoredOutbox(core.store, transport, core.clock)
    fire = DeployDay(core, outbox).firefight
    assert fire.open(fire.core.book.get("pkgdb2-2.0"), WHEN, "scheduled")  # type: ignore[arg-type]
    stored = core.store.pending_posts()
    assert core.store.claimed("firefight-open:pkgdb2-2.0")
    assert list(stored) == transport.posts
    commands = [post.command for post in stored]
    assert commands[:2] == ["JOIN", "TOPIC"]
    assert any("deploy started" in post.text for post in stored if post.target == FIRE)
    pages = core.store.list_pages()
    assert pages
    for page in pages:
        assert any(
            post.target == page.target_nick and f"[page #{page.number}]" in post.text
            for post in stored
        )
    assert transport.calls[0] == ("keep", FIRE, "True")


def test_a_post_that_cannot_be_stored_undoes_the_whole_opening(
    core: Core, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The store fails on the opening's fourth post: no claim, no page, no post, nothing
    handed to the transport; the next sweep opens firefighting in full."""
    transport = Transport()
    outbox = StoredOutbox(core.store, transport, core.clock)
    fire = DeployDay(core, outbox).firefight
    plan = core.book.get("pkgdb2-2.0")
    assert plan is not None
    real_add = core.store.add_post
    calls = 0

    def failing_add(*args: object, **kwargs: object) -> StoredPost:
        nonlocal calls
        calls += 1
        if calls == 4:
            raise StoreWriteError("disk full")
        return real_add(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(core.store, "add_post", failing_add)
    report = fire.sweep(WHEN)
    assert report.opened == ()
    assert not core.store.claimed("firefight-open:pkgdb2-2.0")
    assert core.store.list_pages() == ()
    assert core.store.pending_posts() == ()
    assert transport.calls == []
    assert not fire.is_open(plan)

    monkeypatch.setattr(core.store, "add_post", real_add)
    report = fire.sweep(WHEN + timedelta(seconds=30))
    assert report.opened == ("pkgdb2-2.0",)
    assert core.store.list_pages()
    assert len(core.store.pending_posts()) == len(transport.posts) > 4


def test_a_countdown_claim_is_undone_with_its_post(
    core: Core, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A countdown whose post cannot be stored is not claimed: the next sweep posts it."""
    transport = Transport()
    outbox = StoredOutbox(core.store, transport, core.clock)
    core.config = config_from_mapping(
        {"admins": "account:alice", "admin_channel": "#admin", "announce_channels": "#announce"}
    )
    poster = CountdownPoster(core, outbox)
    now = WHEN - timedelta(hours=1)

    def failing_add(*args: object, **kwargs: object) -> StoredPost:
        raise StoreWriteError("disk full")

    real_add = core.store.add_post
    monkeypatch.setattr(core.store, "add_post", failing_add)
    with pytest.raises(StoreWriteError):
        poster.post_due(now)
    skipped = core.store.sent_countdown_keys()  # the superseded ones, which post nothing
    monkeypatch.setattr(core.store, "add_post", real_add)
    keys = poster.post_due(now)
    assert keys and not skipped & set(keys)
    assert core.store.sent_countdown_keys() == skipped | set(keys)
    assert [post.target for post in transport.posts] == ["#announce"] * len(transport.posts)


def test_resume_hands_over_what_was_left_in_order_and_replies_are_not_kept(
    core: Core,
) -> None:
    first = StoredOutbox(core.store, Transport(), core.clock)
    first.join("#fire")
    first.set_topic("#fire", "wanted topic")
    first.post("pingou", "[page #1] hi")
    first.part("#fire", "bye")
    first.reply("#fire", "a reply")
    first.notice("alice", "a notice")
    transport = Transport()
    assert StoredOutbox(core.store, transport, core.clock).resume() == 4
    assert [call for call in transport.calls] == [
        ("send", "JOIN", "#fire", ""),
        ("send", "TOPIC", "#fire", "wanted topic"),
        ("send", "PRIVMSG", "pingou", "[page #1] hi"),
        ("send", "PART", "#fire", "bye"),
    ]


def test_on_two_networks_a_post_stays_until_both_confirmed_and_goes_again_only_where_not(
    core: Core,
) -> None:
    """With two networks, each confirms for itself: the post is kept until both have, and
    at a restart it is handed only to the network that had not confirmed it."""
    irc, other = Transport(), Transport()
    core.store.post_networks = ("irc", "other")
    outbox = StoredOutbox(core.store, Networks({"irc": irc, "other": other}), core.clock)
    outbox.post("#admin", "first")
    outbox.post("#admin", "second")
    assert [p.text for p in irc.posts] == [p.text for p in other.posts] == ["first", "second"]
    first, second = irc.posts
    assert core.store.confirm_posts([first.id, second.id], "irc") == 0
    assert core.store.confirm_posts([first.id], "other") == 1
    (left,) = core.store.pending_posts()
    assert (left.text, left.confirmed_by) == ("second", frozenset({"irc"}))
    irc2, other2 = Transport(), Transport()
    restarted = StoredOutbox(core.store, Networks({"irc": irc2, "other": other2}), core.clock)
    assert restarted.resume() == 1
    assert (irc2.posts, [p.text for p in other2.posts]) == ([], ["second"])
    assert core.store.confirm_posts([second.id], "other") == 1
    assert core.store.pending_posts() == ()


def test_network_state_is_kept_per_network(core: Core) -> None:
    """What an adapter keeps (a sync position, a direct-message room) is per network and key;
    None forgets it."""
    store = core.store
    assert store.network_value("other", "since") is None
    store.set_network_value("other", "since", "s1")
    store.set_network_value("other", "since", "s2")
    store.set_network_value("third", "since", "t1")
    assert (store.network_value("other", "since"), store.network_value("third", "since")) == (
        "s2",
        "t1",
    )
    store.set_network_value("other", "since", None)
    assert store.network_value("other", "since") is None
