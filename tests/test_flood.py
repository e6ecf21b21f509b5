"""Flood control per person (deploybot/commands/dispatch.py), on a driven clock: the
bookkeeping of :class:`FloodGuard`, and what :func:`dispatch` does with it — one notice
then silence for the flooder, others still answered, every report recorded and its
reply merged."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from deploybot.commands.base import Registry
from deploybot.commands.dispatch import (
    Admission,
    FloodGuard,
    FloodLimits,
    Outgoing,
    PostLimits,
    dispatch,
    flood_key,
)
from deploybot.commands.registry import build_registry
from deploybot.core import Core
from deploybot.deployday.day import DeployDay
from tests.fakes import RecordingOutbox
from tests.planfactory import make_plan
from tests.test_commands import BEFORE, CHANNEL, Clock, fas_plan, make_core, request

LIMITS = FloodLimits(limit=3, window=timedelta(seconds=10), ignore=timedelta(seconds=60))
S = timedelta(seconds=1)


def test_more_than_the_limit_in_the_window_floods_once_then_ignores_until_the_end() -> None:
    """Three commands in 10 s pass; the fourth floods (said once); everything after is
    ignored for 60 s; then the person starts afresh."""
    guard = FloodGuard(LIMITS)
    t = BEFORE
    assert [guard.admit("mask:a", t + n * S) for n in range(3)] == [Admission.OK] * 3
    assert guard.admit("mask:a", t + 3 * S) is Admission.FLOODED
    assert guard.admit("mask:a", t + 4 * S) is Admission.IGNORED
    assert guard.admit("mask:a", t + 62 * S) is Admission.IGNORED
    assert guard.admit("mask:b", t + 4 * S) is Admission.OK  # others are not concerned
    assert guard.admit("mask:a", t + 63 * S) is Admission.OK  # 60 s after the flood
    assert guard.admit("mask:a", t + 64 * S) is Admission.OK


def test_the_window_slides() -> None:
    """One command every 4 s never floods a limit of 3 in 10 s; three in a moment after
    a pause do not either."""
    guard = FloodGuard(LIMITS)
    assert {guard.admit("w", BEFORE + n * 4 * S) for n in range(20)} == {Admission.OK}
    later = BEFORE + 200 * S
    assert {guard.admit("w", later + n * S / 10) for n in range(3)} == {Admission.OK}


def test_people_are_counted_by_account_else_by_full_mask(core: Core) -> None:
    """Two nicks of one account are one person (as the server folds case); two masks
    without an account are two."""
    a = request(core, "!deploys", nick="alice", account="Alice[m]")
    b = request(core, "!deploys", nick="alice_away", account="alice{m}")
    assert flood_key(a) == flood_key(b) == "account:alice{m}"
    c = request(core, "!deploys", nick="x1", account=None)
    d = request(core, "!deploys", nick="x2", account=None)
    assert flood_key(c) == "mask:x1!x1@users.test" != flood_key(d)


def test_the_bookkeeping_forgets_idle_people() -> None:
    """Memory stays bounded whatever number of throw-away nicks came once."""
    guard = FloodGuard(LIMITS)
    for n in range(1000):
        guard.admit(f"mask:n{n}", BEFORE + n * S / 100)
    guard.admit("mask:last", BEFORE + 1000 * S)
    for n in range(256):
        guard.admit("mask:last2", BEFORE + 1000 * S + n * S)
    assert len(guard._recent) <= 300


@pytest.fixture
def core(tmp_path: Path) -> Iterator[Core]:
    clock = Clock(BEFORE)
    core = make_core(tmp_path, clock, [make_plan(), fas_plan()])
    yield core
    core.store.close()


@pytest.fixture
def registry() -> Registry:
    return build_registry()


async def test_a_flooder_gets_one_notice_then_silence_while_others_are_answered(
    core: Core, registry: Registry
) -> None:
    """Ten !deploys at once from alice (limit 3): three answers, one private NOTICE, then
    nothing; bob, meanwhile, is answered."""
    guard = FloodGuard(LIMITS)
    answers = [await dispatch(core, registry, request(core, "!deploys"), guard) for _ in range(10)]
    assert all(out and out[0].target == CHANNEL for out in answers[:3])
    assert answers[3] == [
        Outgoing(
            "alice",
            "you gave more than 3 commands in 10s: I ignore your commands for 1m"
            " (a !broke is still recorded)",
            notice=True,
        )
    ]
    assert answers[4:] == [[]] * 6
    bob = await dispatch(
        core, registry, request(core, "!deploys", nick="bob", account="bob"), guard
    )
    assert bob and bob[0].target == CHANNEL and not bob[0].notice


async def test_reports_over_the_limit_are_recorded_and_answered_in_one_private_line(
    core: Core, registry: Registry
) -> None:
    """Ten !broke at once (limit 3): all ten recorded; three answered in the channel; the
    last seven are answered together, privately, in one NOTICE that is also the flood
    notice, when the transport takes the pending line."""
    guard = FloodGuard(LIMITS)
    answers = [
        await dispatch(core, registry, request(core, f"!broke pkgdb2 thing {n}"), guard)
        for n in range(1, 11)
    ]
    assert [out[0].text for out in answers[:3]] == [
        f"recorded incident #{n} (pkgdb2); fix with !fixed {n}" for n in (1, 2, 3)
    ]
    assert answers[3:] == [[]] * 7
    assert len(core.store.list_incidents(limit=100, newest_first=True)) == 10
    assert guard.has_pending(flood_key(request(core, "!broke")))
    who = flood_key(request(core, "!broke"))
    assert guard.take_pending(who) == Outgoing(
        "alice",
        "recorded incidents #4–#10 (pkgdb2) — you gave more than 3 commands in 10s: I ignore"
        " your commands for 1m (a !broke is still recorded)",
        notice=True,
    )
    assert guard.take_pending(who) is None
    # still ignored: another command is dropped, another report held again
    assert await dispatch(core, registry, request(core, "!incidents"), guard) == []
    await dispatch(core, registry, request(core, "!broke fas the login page"), guard)
    assert guard.take_pending(who) == Outgoing("alice", "recorded incident #11 (fas)")


async def test_without_a_guard_nothing_is_limited(core: Core, registry: Registry) -> None:
    """dispatch() without flood control (the command tests, `deploybot` tools) answers all."""
    for _ in range(10):
        assert await dispatch(core, registry, request(core, "!deploys"))


POSTS = {
    "page": PostLimits(3, 20, timedelta(minutes=10), ("page_flood_limit", "page_flood_total")),
    "uses": PostLimits(3, 30, timedelta(minutes=10), ("uses_flood_limit", "uses_flood_total")),
}
RELAXED = FloodLimits(limit=1000, window=timedelta(seconds=10), ignore=timedelta(seconds=60))


async def test_uses_is_capped_per_person_and_for_everyone_within_the_window(
    core: Core, registry: Registry, caplog: pytest.LogCaptureFixture
) -> None:
    """Three !uses per person in 10m, thirty from everyone (throw-away nicks): over it the
    registration is not made; the person is told, and for everyone's cap only the first
    refused is told — the rest are dropped, each logged. `!uses --remove` is never
    refused. Ten minutes later !uses works again."""
    guard = FloodGuard(RELAXED, POSTS)
    clock: Clock = core.clock  # type: ignore[assignment]
    for n in range(3):
        out = await dispatch(core, registry, request(core, f"!uses svc{n} scripts"), guard)
        assert "registered as a consumer of" in out[0].text
    out = await dispatch(core, registry, request(core, "!uses svc9 scripts"), guard)
    assert [o.text for o in out] == [
        "not registered: you used !uses 3 times within 10m, the most for one person"
        " (uses_flood_limit); try again later"
    ]
    out = await dispatch(core, registry, request(core, "!uses --remove svc0"), guard)
    assert "not registered" not in out[0].text and "svc0" in out[0].text
    for n in range(27):
        nick = f"throwaway{n}"
        out = await dispatch(
            core, registry, request(core, "!uses pkgdb2 x", nick=nick, account=None), guard
        )
        assert "registered as a consumer" in out[0].text, out
    refused = [
        await dispatch(
            core, registry, request(core, "!uses pkgdb2 x", nick=f"late{n}", account=None), guard
        )
        for n in range(5)
    ]
    assert [o.text for o in refused[0]] == [
        "not registered: !uses was used 30 times within 10m by everyone, the most allowed"
        " (uses_flood_total); again in 10m"
    ]
    assert refused[1:] == [[]] * 4
    consumers = {c.nick for c in core.store.consumers("pkgdb2")}
    assert not any(nick.startswith("late") for nick in consumers)
    assert sum("dropped !uses pkgdb2 x from late" in r.getMessage() for r in caplog.records) == 5
    clock.now = BEFORE + timedelta(minutes=10, seconds=1)
    out = await dispatch(
        core, registry, request(core, "!uses pkgdb2 x", nick="late9", account=None), guard
    )
    assert "registered as a consumer" in out[0].text


async def test_fifty_pages_from_one_person_page_three_times_and_escalate_three_at_most(
    core: Core, registry: Registry, caplog: pytest.LogCaptureFixture
) -> None:
    """The symptom of issue 10: 50 `!page` from one person made 100 posts and then 53
    escalation pages. With the cap (3 per person in 10m, a repeat counting as one) and
    identical pending pages not sent again, the same 50 make 2 pages here (2 private
    messages, 2 highlights, so at most 2 escalations); the person is told each time why
    nothing was sent, and the log says what was dropped."""
    outbox = RecordingOutbox()
    day = DeployDay(core, outbox)
    guard = FloodGuard(RELAXED, POSTS)
    replies = []
    for n in range(50):
        text = "the compose is failing" if n < 2 else f"problem {n}"
        line = f"!page dgilmore {text}"
        replies.append(await dispatch(core, registry, request(core, line, deploy_day=day), guard))
    assert len(core.store.list_pages()) == 2
    assert len(outbox.to("dgilmore")) == 2
    assert len(outbox.calls) == 4  # a private message and a highlight each
    assert replies[1][0].text == (
        "not paged again: that page is pending (not acknowledged) for dgilmore (#1)"
    )
    assert replies[2][0].text == "paged dgilmore (#2)"
    refused = "not paged: you used !page 3 times within 10m, the most for one person"
    assert all(out[0].text.startswith(refused) for out in replies[3:])
    assert sum("dropped !page dgilmore" in r.getMessage() for r in caplog.records) == 47
