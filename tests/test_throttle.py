"""The output token bucket and the reconnect backoff (pure; time is passed in)."""

from __future__ import annotations

import pytest
from deploybot_plugins.irc.throttle import (
    DEFAULT_CAPACITY,
    DEFAULT_RATE,
    TokenBucket,
    backoff_delay,
    command_cost,
)
from hypothesis import given, settings
from hypothesis import strategies as st


def send_greedily(bucket: TokenBucket, start: float, lines: int, cost: int = 1) -> list[float]:
    """Send ``lines`` lines as early as the bucket allows; return their send times."""
    now, times = start, []
    for _ in range(lines):
        now += bucket.delay_until_available(now, cost)
        bucket.take(now, cost)
        times.append(now)
    return times


def test_a_full_bucket_lets_a_burst_of_capacity_lines_go_at_once() -> None:
    """A fresh bucket sends ``capacity`` lines without waiting; the next one waits 1/rate."""
    bucket = TokenBucket(capacity=4, rate=1.0, now=100.0)
    for _ in range(4):
        assert bucket.delay_until_available(100.0) == 0
        bucket.take(100.0)
    assert bucket.delay_until_available(100.0) == pytest.approx(1.0)


def test_tokens_refill_at_the_rate_and_never_beyond_capacity() -> None:
    """After emptying, half a second gives half a token at rate 1; an hour gives only capacity."""
    bucket = TokenBucket(capacity=3, rate=1.0, now=0.0)
    for _ in range(3):
        bucket.take(0.0)
    assert bucket.tokens(0.5) == pytest.approx(0.5)
    assert bucket.delay_until_available(0.5) == pytest.approx(0.5)
    assert bucket.tokens(3600.0) == 3.0


def test_lines_sent_around_the_queue_put_the_bucket_in_debt() -> None:
    """Registration lines taken without asking still count: queued lines wait for the debt."""
    bucket = TokenBucket(capacity=4, rate=1.0, now=0.0)
    for _ in range(6):
        bucket.take(0.0)
    assert bucket.tokens(0.0) == -2
    assert bucket.delay_until_available(0.0) == pytest.approx(3.0)


def test_an_expensive_command_waits_for_its_cost_but_never_beyond_a_full_bucket() -> None:
    """JOIN (2) needs two tokens; PART (5) costs more than capacity and waits for a full one."""
    bucket = TokenBucket(capacity=4, rate=1.0, now=0.0)
    bucket.take(0.0, 4)
    assert bucket.delay_until_available(0.0, command_cost("JOIN #a")) == pytest.approx(2.0)
    assert bucket.delay_until_available(0.0, command_cost("PART #a :bye")) == pytest.approx(4.0)


def test_reset_fills_the_bucket_for_a_new_connection() -> None:
    """A new connection starts without server-side penalty: the bucket is full again."""
    bucket = TokenBucket(capacity=4, rate=1.0, now=0.0)
    for _ in range(8):
        bucket.take(0.0)
    bucket.reset(1.0)
    assert bucket.tokens(1.0) == 4.0


def test_command_costs_follow_inspircd_penalties() -> None:
    """PRIVMSG costs 1, JOIN 2, PART 5; a later NICK 4 but the registration NICK/USER nothing."""
    assert command_cost("PRIVMSG #a :hi") == 1
    assert command_cost("join #a") == 2
    assert command_cost("PART #a") == 5
    assert command_cost("NICK other") == 4
    assert command_cost("NICK bot", registered=False) == 0
    assert command_cost("USER bot 0 * :bot", registered=False) == 0
    assert command_cost("CAP END", registered=False) == 1


def test_bad_parameters_are_refused() -> None:
    """A bucket that could never send (capacity < 1 or rate <= 0) is an error."""
    with pytest.raises(ValueError, match="capacity"):
        TokenBucket(capacity=0.5, rate=1.0, now=0.0)
    with pytest.raises(ValueError, match="rate"):
        TokenBucket(capacity=4, rate=0, now=0.0)


@settings(max_examples=200, deadline=None)
@given(
    capacity=st.integers(min_value=1, max_value=10),
    rate=st.floats(min_value=0.1, max_value=20, allow_nan=False),
    gaps=st.lists(st.floats(min_value=0, max_value=3, allow_nan=False), min_size=1, max_size=80),
    costs=st.lists(st.integers(min_value=1, max_value=5), min_size=80, max_size=80),
)
def test_over_any_window_the_cost_sent_never_exceeds_capacity_plus_rate_times_time(
    capacity: int, rate: float, gaps: list[float], costs: list[int]
) -> None:
    """Whatever the demand, cost sent in any window [a, b] ≤ max(capacity, cost) + rate·(b-a).

    This is the property that keeps the bot under a server's flood counter.
    """
    bucket = TokenBucket(capacity=capacity, rate=rate, now=0.0)
    now, sent = 0.0, []
    for gap, cost in zip(gaps, costs, strict=False):
        now += gap  # demand arrives after a gap; the line goes as soon as the bucket allows
        now += bucket.delay_until_available(now, cost)
        bucket.take(now, cost)
        sent.append((now, cost))
    for i, (start, _) in enumerate(sent):
        total = 0
        for end, cost in sent[i:]:
            total += cost
            allowance = max(capacity, max(c for _, c in sent[i:])) + rate * (end - start)
            assert total <= allowance + 1e-6


def test_defaults_keep_a_long_flood_at_one_line_per_second() -> None:
    """With the defaults, 60 lines take 56 s: 4 at once, then one per second."""
    bucket = TokenBucket(DEFAULT_CAPACITY, DEFAULT_RATE, now=0.0)
    times = send_greedily(bucket, 0.0, 60)
    assert times[:4] == [0.0] * 4
    assert times[-1] == pytest.approx(56.0)


@given(attempt=st.integers(min_value=0, max_value=200), rand=st.floats(0, 1))
def test_backoff_doubles_up_to_the_cap_within_the_jitter(attempt: int, rand: float) -> None:
    """Attempt n waits base·2ⁿ (capped) ±20%, never less than 0.8·base, never over 1.2·cap."""
    delay = backoff_delay(attempt, base=1.0, cap=60.0, jitter=0.2, rand=lambda: rand)
    nominal = min(60.0, 2.0**attempt)
    assert 0.8 * nominal - 1e-9 <= delay <= 1.2 * nominal + 1e-9


def test_backoff_sequence_without_jitter() -> None:
    """1, 2, 4, … 32, 60, 60 seconds."""
    delays = [backoff_delay(n, jitter=0.0) for n in range(8)]
    assert delays == [1, 2, 4, 8, 16, 32, 60, 60]
