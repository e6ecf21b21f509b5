"""The bot's output queue: lanes, merging and bounds (pure; time is passed in)."""

from __future__ import annotations

import logging

import pytest
from deploybot_plugins.irc.outqueue import (
    LANE_LIMITS,
    POSTS_PER_NICK,
    REPLIES_PER_PERSON,
    REPLY_STREAK,
    OutItem,
    OutputQueue,
)


def post(target: str, text: str, command: str = "PRIVMSG") -> OutItem:
    return OutItem("post", 0.0, command, target, text)


def reply(target: str, text: str, person: str) -> OutItem:
    return OutItem("reply", 0.0, "PRIVMSG", target, text, person)


def drain(queue: OutputQueue, now: float = 0.0) -> list[str]:
    """Everything the queue gives, as `COMMAND target :text` strings."""
    out = []
    while (item := queue.take(now)) is not None:
        out.append(f"{item.command} {item.target} :{item.text}")
    return out


def test_a_reply_goes_before_posts_queued_earlier() -> None:
    """Ten pages and a channel post wait; a reply queued after them is taken first."""
    queue = OutputQueue(reply_ttl=60)
    for i in range(10):
        queue.add(post(f"person{i}", f"[page #{i}] deploy started"))
    queue.add(post("#fire", "deploy started"))
    queue.add(reply("#fire", "alice: recorded incident #1", "alice"))
    assert drain(queue)[0] == "PRIVMSG #fire :alice: recorded incident #1"


def test_pages_and_topics_go_before_channel_chatter_and_joins_before_both() -> None:
    """Urgent posts (private messages, JOIN, TOPIC) keep their order among themselves
    and go before channel posts, whose order is kept too (a PART follows its posts)."""
    queue = OutputQueue(reply_ttl=60)
    queue.add(post("#fire", "", "JOIN"))
    queue.add(post("#fire", "pkgdb2 deploy started"))
    queue.add(post("#fire", "deploy pkgdb2 · ⚠ 1 API break", "TOPIC"))
    queue.add(post("#fire", "⚠ API BREAK: /api/acl"))
    queue.add(post("alice", "[page #1] deploy started"))
    queue.add(post("#fire", "closed", "PART"))
    assert drain(queue) == [
        "JOIN #fire :",
        "TOPIC #fire :deploy pkgdb2 · ⚠ 1 API break",
        "PRIVMSG alice :[page #1] deploy started",
        "PRIVMSG #fire :pkgdb2 deploy started",
        "PRIVMSG #fire :⚠ API BREAK: /api/acl",
        "PART #fire :closed",
    ]


def test_a_stream_of_replies_lets_a_waiting_post_through_every_few_lines() -> None:
    """Replies first, but after REPLY_STREAK replies a waiting post gets a turn."""
    queue = OutputQueue(reply_ttl=60)
    queue.add(post("alice", "[page #1] deploy started"))
    for i in range(10):
        queue.add(reply(f"nick{i}", f"answer {i}", f"nick{i}"))
    out = drain(queue)
    assert out.index("PRIVMSG alice :[page #1] deploy started") == REPLY_STREAK


def test_replies_to_one_channel_merge_per_person_never_across_people() -> None:
    """alice's and bob's replies in one channel, interleaved: each person's are joined
    with ' · ' in order; no line carries both."""
    queue = OutputQueue(reply_ttl=60)
    for i in range(3):
        queue.add(reply("#fire", f"alice: recorded #{i}", "alice"))
        queue.add(reply("#fire", f"bob: recorded #{10 + i}", "bob"))
    assert drain(queue) == [
        "PRIVMSG #fire :alice: recorded #0 · alice: recorded #1 · alice: recorded #2",
        "PRIVMSG #fire :bob: recorded #10 · bob: recorded #11 · bob: recorded #12",
    ]


def test_posts_keep_their_own_lines_on_a_normal_day() -> None:
    queue = OutputQueue(reply_ttl=60)
    for i in range(3):
        queue.add(post("#fire", f"line {i}"))
    assert drain(queue) == [f"PRIVMSG #fire :line {i}" for i in range(3)]


def test_one_persons_burst_of_replies_is_bounded_and_says_what_it_dropped(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """100 long replies for one person: at most REPLIES_PER_PERSON wait; the rest are
    merged into the last when they fit or dropped, with a WARNING each and a note on the
    person's next line; another person's reply and the pages are not held back."""
    caplog.set_level(logging.INFO, logger="deploybot_plugins")
    queue = OutputQueue(reply_ttl=60)
    for i in range(100):
        queue.add(reply("mallory", f"{i:03d} " + "x" * 300, "mallory"))
    queue.add(reply("alice", "pong", "alice"))
    queue.add(post("bob", "[page #1] deploy started"))
    out = drain(queue)
    mallory = [line for line in out if line.startswith("PRIVMSG mallory")]
    assert len(mallory) == REPLIES_PER_PERSON
    dropped = 100 - REPLIES_PER_PERSON
    assert mallory[0].endswith(f"(and {dropped} more not sent: too many at once)")
    assert out.index("PRIVMSG alice :pong") <= REPLIES_PER_PERSON
    assert out.index("PRIVMSG bob :[page #1] deploy started") <= REPLY_STREAK
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == dropped


def test_short_replies_past_the_bound_are_merged_into_the_last_waiting_one() -> None:
    queue = OutputQueue(reply_ttl=60)
    for i in range(REPLIES_PER_PERSON + 3):
        queue.add(reply("#fire", f"#{i}", "alice"))
    assert drain(queue) == [
        "PRIVMSG #fire :" + " · ".join(f"#{i}" for i in range(REPLIES_PER_PERSON + 3))
    ]


def test_a_full_channel_lane_drops_long_posts_and_says_so_on_the_next_line() -> None:
    """More long channel posts than the lane holds: those past the bound are dropped (not
    mergeable: too long) and the channel's next line says how many; pages still go first."""
    queue = OutputQueue(reply_ttl=60)
    limit = LANE_LIMITS[2]
    for i in range(limit + 5):
        queue.add(post(f"#chan{i % 2}", f"{i:03d} " + "y" * 400))
    queue.add(post("alice", "[page #1]"))
    out = drain(queue)
    assert out[0] == "PRIVMSG alice :[page #1]"
    assert len(out) == 1 + limit
    assert out[1].endswith("(and 3 more not sent: too many at once)")
    assert out[2].endswith("(and 2 more not sent: too many at once)")


def test_a_drop_with_no_later_line_to_carry_it_gets_a_line_of_its_own() -> None:
    queue = OutputQueue(reply_ttl=60)
    for i in range(LANE_LIMITS[2]):
        queue.add(post("#busy", f"{i:03d} " + "y" * 400))
    queue.add(post("#quiet", "z" * 400))
    out = drain(queue)
    assert out[-1] == "PRIVMSG #quiet :(1 more post not sent: too many at once)"


def test_stale_replies_are_dropped_when_taken() -> None:
    queue = OutputQueue(reply_ttl=5)
    queue.add(reply("#fire", "old", "alice"))
    queue.add(post("#fire", "kept"))
    assert drain(queue, now=10.0) == ["PRIVMSG #fire :kept"]


def test_pages_to_one_nick_are_bounded_and_other_pages_are_not_held_back() -> None:
    """Fifty long pages to one nick (someone's !page spam): at most POSTS_PER_NICK go out,
    the first says how many more were not sent; a deploy's page to someone else queued
    after them waits behind those few only."""
    queue = OutputQueue(reply_ttl=60)
    for i in range(50):
        queue.add(post("victim", f"[page #{i}] " + "w" * 400))
    queue.add(post("oncall", "[page #99] deploy started"))
    out = drain(queue)
    assert len(out) == POSTS_PER_NICK + 1
    assert out[0].endswith(f"(and {50 - POSTS_PER_NICK} more not sent: too many at once)")
    assert out[-1] == "PRIVMSG oncall :[page #99] deploy started"


def test_peek_cost_is_the_cost_of_what_take_gives_next() -> None:
    """A TOPIC waiting costs 2 tokens; once a reply is queued the next item is the reply
    (1 token): the sender waits for the cost of what it will really send."""
    queue = OutputQueue(reply_ttl=60)
    assert queue.peek_cost() == 1
    queue.add(post("#fire", "deploy pkgdb2", "TOPIC"))
    assert queue.peek_cost() == 2
    queue.add(reply("#fire", "alice: recorded #1", "alice"))
    assert queue.peek_cost() == 1
    assert drain(queue)[0] == "PRIVMSG #fire :alice: recorded #1"
