"""deploybot.bus.rules: bus events become deploy facts, one-line texts, counters and logs."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from deploybot.bus.events import (
    KINDS,
    BadMessage,
    BusEvent,
    from_fedmsg_envelope,
    from_fedmsg_frames,
    from_fedora_messaging,
    from_webhook,
)
from deploybot.bus.rules import (
    CLOCK_SKEW,
    EARLY_GRACE,
    FINISH_GRACE,
    MAX_HOSTS_SHOWN,
    UNPLANNED_AFTER,
    UNPLANNED_BEFORE,
    BusStats,
    DeployFact,
    DeployFinished,
    DeployStarted,
    OpenFirefighting,
    RateLimitedLog,
    UnplannedDeploy,
    event_time,
    fact_text,
    interpret,
    playbook_path,
    window_text,
)
from deploybot.plans.model import Plan
from tests.planfactory import DEFAULT_WHEN, make_plan, utc
from tests.test_events import (
    AMQP_SAMPLES,
    FEDMSG_SAMPLES,
    PREFIX,
    amqp_event,
    frames,
    json_values,
    load_sample,
)

PARIS = ZoneInfo("Europe/Paris")
NEW_YORK = ZoneInfo("America/New_York")
WHEN = DEFAULT_WHEN  # Tue 2026-12-15 13:00 UTC, an 8h window: 13:00–21:00
END = WHEN + timedelta(hours=8)
BADGES = "/srv/web/infra/ansible/playbooks/groups/badges-backend.yml"
START_SAMPLE_AT = datetime(2013, 8, 6, 1, 48, 55, 324270, tzinfo=UTC)
COMPLETE_SAMPLE_AT = datetime(2013, 8, 6, 1, 52, 35, 771203, tzinfo=UTC)


def pkgdb(**overrides: Any) -> Plan:
    """The factory's pkgdb2-2.0 plan (groups/pkgdb.yml, Tue 2026-12-15 13:00–21:00 UTC)."""
    return make_plan(**overrides)


def badges(when: datetime, **overrides: Any) -> Plan:
    """A plan for the badges backend, whose playbook the real ansible samples ran."""
    fields: dict[str, Any] = {
        "id": "badges-1.0",
        "service": "badges",
        "release": "1.0",
        "playbooks": ("groups/badges-backend.yml",),
        "when": when,
    }
    return make_plan(**(fields | overrides))


def ansible(
    kind: str,
    at: datetime | None,
    playbook: str = "/srv/web/infra/ansible/playbooks/groups/pkgdb.yml",
    user: str = "pingou",
    environment: str = "prod",
    **body: Any,
) -> BusEvent:
    """An ansible.playbook.KIND fedmsg event sent ``at`` (None: no timestamp)."""
    envelope: dict[str, Any] = {
        "topic": f"org.fedoraproject.{environment}.ansible.playbook.{kind}",
        "msg": {"playbook": playbook, "userid": user, **body},
    }
    if at is not None:
        envelope["timestamp"] = at.timestamp()
    return from_fedmsg_envelope(envelope, prefix=PREFIX)


def started(at: datetime | None, **kwargs: Any) -> BusEvent:
    return ansible("start", at, **kwargs)


def completed(
    at: datetime | None, results: dict[str, Any] | None = None, **kwargs: Any
) -> BusEvent:
    if results is None:
        results = {"pkgdb01.phx2.fedoraproject.org": {"ok": 10, "failures": 0, "unreachable": 0}}
    return ansible("complete", at, results=results, **kwargs)


def kinds(facts: tuple[DeployFact, ...]) -> list[tuple[str, str]]:
    """``[(fact type, plan id), …]``: the shape of an interpretation, for assertions."""
    return [(type(fact).__name__, fact.plan.id) for fact in facts]


# --- playbook paths ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("/srv/web/infra/ansible/playbooks/groups/badges-backend.yml", "groups/badges-backend.yml"),
        ("playbooks/groups/badges-backend.yml", "groups/badges-backend.yml"),
        ("groups/badges-backend.yml", "groups/badges-backend.yml"),
        ("./playbooks//groups/./pkgdb.yml", "groups/pkgdb.yml"),
        ("  groups/pkgdb.yml  ", "groups/pkgdb.yml"),
        ("playbooks/update_ticketkey.yml", "update_ticketkey.yml"),
        ("/home/me/playbooks/ansible/playbooks/hosts/x.yml", "hosts/x.yml"),
        ("/srv/ansible/playbooks/../playbooks/groups/x.yml", "groups/x.yml"),
        ("/etc/ansible/site.yml", "/etc/ansible/site.yml"),
        ("playbooks", "playbooks"),
        ("", ""),
        ("   ", ""),
    ],
)
def test_playbook_path(value: str, expected: str) -> None:
    """Absolute, ``playbooks/``-relative and plan-style paths all become the path under
    ``playbooks/``; a path without a playbooks directory is kept."""
    assert playbook_path(value) == expected


@pytest.mark.parametrize(
    "listed",
    [
        "groups/pkgdb.yml",
        "playbooks/groups/pkgdb.yml",
        "/srv/web/infra/ansible/playbooks/groups/pkgdb.yml",
    ],
)
@pytest.mark.parametrize(
    "sent",
    [
        "groups/pkgdb.yml",
        "playbooks/groups/pkgdb.yml",
        "/srv/web/infra/ansible/playbooks/groups/pkgdb.yml",
    ],
)
def test_plan_and_message_paths_are_compared_normalised(listed: str, sent: str) -> None:
    """Whichever spelling the plan lists and the message sends, they match, and the fact
    carries the normalised path."""
    facts = interpret(started(WHEN, playbook=sent), [pkgdb(playbooks=(listed,))], WHEN, "prod", UTC)
    assert kinds(facts) == [("OpenFirefighting", "pkgdb2-2.0"), ("DeployStarted", "pkgdb2-2.0")]
    assert isinstance(facts[1], DeployStarted)
    assert facts[1].playbook == "groups/pkgdb.yml"


def test_other_playbooks_and_topics_mean_nothing() -> None:
    """A playbook no plan lists, a missing or non-string playbook, and non-ansible topics
    give no fact."""
    plans = [pkgdb()]
    assert interpret(started(WHEN, playbook="groups/other.yml"), plans, WHEN, "prod", UTC) == ()
    assert interpret(started(WHEN, playbook=""), plans, WHEN, "prod", UTC) == ()
    no_playbook = from_fedmsg_envelope(
        {"topic": "org.fedoraproject.prod.ansible.playbook.start", "msg": {"playbook": 7}},
        prefix=PREFIX,
    )
    assert interpret(no_playbook, plans, WHEN, "prod", UTC) == ()
    other = from_fedmsg_envelope(
        {"topic": "org.fedoraproject.prod.ansible.playbook.cancel", "msg": {"playbook": "x"}},
        prefix=PREFIX,
    )
    assert interpret(other, plans, WHEN, "prod", UTC) == ()


# --- the real samples --------------------------------------------------------------------


def sample_events() -> list[tuple[str, BusEvent]]:
    """Every sample through every decoder that takes its shape."""
    events: list[tuple[str, BusEvent]] = []
    for name in FEDMSG_SAMPLES:
        envelope = load_sample(name)
        events.append((name, from_fedmsg_envelope(envelope, prefix=PREFIX)))
        events.append((name, from_fedmsg_frames(*frames(envelope), prefix=PREFIX)))
    for name in AMQP_SAMPLES:
        document = load_sample(name)
        events.append((name, amqp_event(document)))
        events.append((name, from_webhook(json.dumps(document).encode(), prefix=PREFIX)))
    return events


def test_every_sample_goes_through_the_rules() -> None:
    """Every sample, through each decoder, goes through interpret and fact_text without an
    exception, against plans that list its playbook at, around and far from its time, in
    each environment and two timezones; non-ansible samples give no fact."""
    for name, event in sample_events():
        assert event.sent_at is not None
        for offset in (timedelta(hours=-2), timedelta(0), timedelta(hours=5), timedelta(days=3)):
            plans = [
                badges(event.sent_at + offset),
                pkgdb(playbooks=("update_ticketkey.yml",), when=event.sent_at + offset),
            ]
            for environment in ("prod", "stg", "dev"):
                for tz in (UTC, PARIS):
                    facts = interpret(event, plans, event.sent_at, environment, tz)
                    for fact in facts:
                        assert "\n" not in fact_text(fact, tz)
                    if not event.short_topic.startswith("ansible.playbook."):
                        assert facts == (), name


def test_ansible_start_sample_starts_the_planned_deploy() -> None:
    """The real start message (absolute playbook path, userid ralph) during the badges
    window opens firefighting and says the deploy started, by ralph."""
    event = from_fedmsg_envelope(load_sample("ansible.playbook.start.json"), prefix=PREFIX)
    plan = badges(START_SAMPLE_AT - timedelta(minutes=30))
    facts = interpret(event, [plan], START_SAMPLE_AT + timedelta(seconds=2), "prod", UTC)
    assert facts == (
        OpenFirefighting(plan, event),
        DeployStarted(plan, "ralph", "groups/badges-backend.yml", event),
    )
    assert fact_text(facts[1], UTC) == (
        "deploy of badges started by ralph (groups/badges-backend.yml)"
    )


def test_ansible_start_sample_a_bit_early_still_opens() -> None:
    """Starting up to EARLY_GRACE before ``when`` is the deploy starting early: firefighting
    opens and it is reported as started, not unplanned."""
    event = from_fedmsg_envelope(load_sample("ansible.playbook.start.json"), prefix=PREFIX)
    plan = badges(START_SAMPLE_AT + EARLY_GRACE - timedelta(seconds=1))
    facts = interpret(event, [plan], START_SAMPLE_AT, "prod", UTC)
    assert kinds(facts) == [("OpenFirefighting", "badges-1.0"), ("DeployStarted", "badges-1.0")]


def test_ansible_complete_sample_finishes_ok() -> None:
    """The real complete message (two hosts, no failures) during the window is a finished
    deploy, ok, with no failed host."""
    event = from_fedmsg_frames(
        *frames(load_sample("ansible.playbook.complete.json")), prefix=PREFIX
    )
    plan = badges(COMPLETE_SAMPLE_AT - timedelta(minutes=30))
    facts = interpret(event, [plan], COMPLETE_SAMPLE_AT, "prod", UTC)
    assert facts == (DeployFinished(plan, "ralph", "groups/badges-backend.yml", True, (), event),)
    assert fact_text(facts[0], UTC) == "deploy of badges finished ok (groups/badges-backend.yml)"


def test_ansible_complete_sample_with_failures_names_the_hosts() -> None:
    """The complete sample with failures on one host and an unreachable one: not ok, both
    named (in the message's order, the fedoraproject.org domain cut in the text)."""
    envelope = load_sample("ansible.playbook.complete.json")
    results = envelope["msg"]["results"]
    results["badges-backend01.phx2.fedoraproject.org"]["failures"] = 2
    results["badges-backend01.stg.phx2.fedoraproject.org"]["unreachable"] = 1
    results["app02"] = {"ok": 3, "failures": 0, "unreachable": 0}
    event = from_fedmsg_envelope(envelope, prefix=PREFIX)
    plan = badges(COMPLETE_SAMPLE_AT - timedelta(hours=1))
    (fact,) = interpret(event, [plan], COMPLETE_SAMPLE_AT, "prod", UTC)
    assert isinstance(fact, DeployFinished)
    assert not fact.ok
    assert fact.failed_hosts == (
        "badges-backend01.phx2.fedoraproject.org",
        "badges-backend01.stg.phx2.fedoraproject.org",
    )
    assert fact_text(fact, UTC) == (
        "deploy of badges finished with failures on badges-backend01.phx2, "
        "badges-backend01.stg.phx2 (groups/badges-backend.yml)"
    )


def test_fedora_messaging_sample_relative_playbook() -> None:
    """The fedora-messaging complete (relative ``playbooks/update_ticketkey.yml``, extra
    ``ignored``/``rescued`` counts) matches a plan listing ``update_ticketkey.yml`` and is
    judged at its ``sent-at``."""
    event = amqp_event(load_sample("fedora-messaging.ansible.playbook.complete.json"))
    sent = datetime(2026, 11, 27, 9, 17, 36, tzinfo=UTC)
    plan = pkgdb(id="proxies-1", service="proxies", playbooks=("update_ticketkey.yml",), when=sent)
    facts = interpret(event, [plan], sent + timedelta(minutes=2), "prod", UTC)
    assert facts == (DeployFinished(plan, "dudemcpants", "update_ticketkey.yml", True, (), event),)


# --- environments ------------------------------------------------------------------------


def test_other_environments_are_ignored() -> None:
    """With fedmsg_environment prod, stg and dev runs give nothing; with stg, prod runs give
    nothing and stg runs count."""
    plans = [pkgdb()]
    for environment in ("stg", "dev"):
        assert interpret(started(WHEN, environment=environment), plans, WHEN, "prod", UTC) == ()
    assert interpret(started(WHEN), plans, WHEN, "stg", UTC) == ()
    assert kinds(interpret(started(WHEN, environment="stg"), plans, WHEN, "stg", UTC)) == [
        ("OpenFirefighting", "pkgdb2-2.0"),
        ("DeployStarted", "pkgdb2-2.0"),
    ]


def test_the_stg_sample_topic_is_ignored() -> None:
    """The real complete sample re-sent on a stg topic gives no fact in prod."""
    envelope = load_sample("ansible.playbook.complete.json")
    envelope["topic"] = "org.fedoraproject.stg.ansible.playbook.complete"
    event = from_fedmsg_envelope(envelope, prefix=PREFIX)
    plan = badges(COMPLETE_SAMPLE_AT - timedelta(minutes=30))
    assert interpret(event, [plan], COMPLETE_SAMPLE_AT, "prod", UTC) == ()


def test_unknown_environment_is_ignored() -> None:
    """A topic without an environment word (environment "") never matches the config."""
    event = from_fedmsg_envelope(
        {
            "topic": "org.fedoraproject.ansible.playbook.start",
            "msg": {"playbook": "groups/pkgdb.yml"},
        },
        prefix=PREFIX,
    )
    assert interpret(event, [pkgdb()], WHEN, "prod", UTC) == ()


# --- windows -----------------------------------------------------------------------------


def test_unplanned_before_the_window() -> None:
    """A prod start two days before the window: ⚠ unplanned (no firefighting), with the
    window in the configured timezone."""
    plan = pkgdb()
    at = WHEN - timedelta(days=2)
    facts = interpret(started(at), [plan], at, "prod", UTC)
    assert kinds(facts) == [("UnplannedDeploy", "pkgdb2-2.0")]
    assert fact_text(facts[0], UTC) == (
        "⚠ unplanned deploy: groups/pkgdb.yml run by pingou outside the pkgdb2-2.0 window "
        "(Tue 2026-12-15 13:00–21:00 UTC)"
    )
    assert fact_text(facts[0], PARIS).endswith("(Tue 2026-12-15 14:00–22:00 CET)")


def test_unplanned_after_the_window() -> None:
    """A start at or after the window's end is unplanned and opens nothing."""
    plan = pkgdb()
    for at in (END, END + timedelta(hours=2), END + timedelta(hours=20)):
        assert kinds(interpret(started(at), [plan], at, "prod", UTC)) == [
            ("UnplannedDeploy", "pkgdb2-2.0")
        ]


def test_earlier_on_the_plans_day_opens_firefighting_and_warns() -> None:
    """A start in the morning of deploy day (well before when − EARLY_GRACE): the deploy
    has begun, so firefighting opens, and it is still outside the window, so it warns."""
    at = utc(2026, 12, 15, 8)
    facts = interpret(started(at), [pkgdb()], at, "prod", UTC)
    assert kinds(facts) == [("OpenFirefighting", "pkgdb2-2.0"), ("UnplannedDeploy", "pkgdb2-2.0")]


def test_the_plans_day_is_in_the_configured_timezone() -> None:
    """23:30 UTC the evening before a 08:00 UTC (09:00 Paris) deploy is the same day in
    Paris (opens firefighting) but the day before in UTC (only warns)."""
    plan = pkgdb(when=utc(2026, 12, 15, 8))
    at = utc(2026, 12, 14, 23, 30)
    assert kinds(interpret(started(at), [plan], at, "prod", PARIS)) == [
        ("OpenFirefighting", "pkgdb2-2.0"),
        ("UnplannedDeploy", "pkgdb2-2.0"),
    ]
    assert kinds(interpret(started(at), [plan], at, "prod", UTC)) == [
        ("UnplannedDeploy", "pkgdb2-2.0")
    ]


def test_window_edges() -> None:
    """``when − EARLY_GRACE`` is planned, a second earlier (on another day) is not; the last
    second of the window is planned, its end is not."""
    plan = pkgdb(when=utc(2026, 12, 15, 0, 30))
    edge = plan.when - EARLY_GRACE
    assert kinds(interpret(started(edge), [plan], edge, "prod", UTC))[1] == (
        "DeployStarted",
        "pkgdb2-2.0",
    )
    before = edge - timedelta(seconds=1)
    assert kinds(interpret(started(before), [plan], before, "prod", UTC)) == [
        ("UnplannedDeploy", "pkgdb2-2.0")
    ]
    last = plan.end - timedelta(seconds=1)
    assert kinds(interpret(started(last), [plan], last, "prod", UTC))[1][0] == "DeployStarted"


def test_runs_far_from_any_plan_are_routine() -> None:
    """Starts more than UNPLANNED_BEFORE before a window or UNPLANNED_AFTER after it are
    routine maintenance: no fact."""
    plan = pkgdb()
    for at in (WHEN - UNPLANNED_BEFORE - timedelta(seconds=1), END + UNPLANNED_AFTER):
        assert interpret(started(at), [plan], at, "prod", UTC) == ()
    inside = WHEN - UNPLANNED_BEFORE
    assert kinds(interpret(started(inside), [plan], inside, "prod", UTC)) == [
        ("UnplannedDeploy", "pkgdb2-2.0")
    ]


def test_completion_belongs_to_the_window_plus_finish_grace() -> None:
    """A completion up to FINISH_GRACE after the window's end is the deploy finishing; later,
    or before the window, it gives nothing (the start already warned)."""
    plan = pkgdb()
    late = END + FINISH_GRACE - timedelta(seconds=1)
    assert kinds(interpret(completed(late), [plan], late, "prod", UTC)) == [
        ("DeployFinished", "pkgdb2-2.0")
    ]
    for at in (END + FINISH_GRACE, WHEN - timedelta(hours=3), WHEN - timedelta(days=2)):
        assert interpret(completed(at), [plan], at, "prod", UTC) == ()


def test_check_mode_start_is_not_a_deploy() -> None:
    """A dry run (``check: true``) changes nothing: no fact, in or out of the window."""
    for at in (WHEN, WHEN - timedelta(days=1)):
        assert interpret(started(at, check=True), [pkgdb()], at, "prod", UTC) == ()
    assert len(interpret(started(WHEN, check=False), [pkgdb()], WHEN, "prod", UTC)) == 2


def test_complete_without_results_is_not_ok() -> None:
    """A completion without ``results`` is reported as finished with no results, not ok."""
    event = ansible("complete", WHEN)
    (fact,) = interpret(event, [pkgdb()], WHEN, "prod", UTC)
    assert isinstance(fact, DeployFinished)
    assert (fact.ok, fact.has_results, fact.failed_hosts) == (False, False, ())
    assert fact_text(fact, UTC) == (
        "deploy of pkgdb2 finished, no results reported (groups/pkgdb.yml)"
    )


def test_malformed_results_do_not_count_as_failures() -> None:
    """Per-host stats that are not objects, or counts that are not numbers (or booleans),
    are not failures; unreachable counts are."""
    results = {
        "a": "broken",
        "b": {"failures": "3", "unreachable": True},
        "c": {"failures": 0, "unreachable": 2},
    }
    (fact,) = interpret(completed(WHEN, results), [pkgdb()], WHEN, "prod", UTC)
    assert isinstance(fact, DeployFinished)
    assert fact.failed_hosts == ("c",)


# --- several plans -----------------------------------------------------------------------


def test_the_plan_whose_window_contains_the_run_wins() -> None:
    """One playbook in two plans: a run inside the first's window concerns only it (no
    unplanned warning about the second, five days later)."""
    first = pkgdb()
    second = pkgdb(id="pkgdb2-2.1", release="2.1", when=WHEN + timedelta(days=5))
    at = WHEN + timedelta(hours=1)
    assert kinds(interpret(started(at), [second, first], at, "prod", UTC)) == [
        ("OpenFirefighting", "pkgdb2-2.0"),
        ("DeployStarted", "pkgdb2-2.0"),
    ]


def test_overlapping_windows_each_get_their_facts() -> None:
    """Two plans whose windows both contain the run each get their facts, in id order."""
    a = pkgdb(id="a")
    b = pkgdb(id="b", when=WHEN + timedelta(hours=1))
    at = WHEN + timedelta(hours=2)
    assert kinds(interpret(completed(at), [b, a], at, "prod", UTC)) == [
        ("DeployFinished", "a"),
        ("DeployFinished", "b"),
    ]


def test_the_next_plan_of_the_day_beats_an_earlier_one() -> None:
    """Between two windows on the same day, a start concerns the upcoming one: firefighting
    for it opens and it warns about it, not about the one that ended."""
    morning = pkgdb(id="morning", when=utc(2026, 12, 15, 6), duration=timedelta(hours=2))
    evening = pkgdb(id="evening", when=utc(2026, 12, 15, 18), duration=timedelta(hours=2))
    at = utc(2026, 12, 15, 9)
    assert kinds(interpret(started(at), [morning, evening], at, "prod", UTC)) == [
        ("OpenFirefighting", "evening"),
        ("UnplannedDeploy", "evening"),
    ]


def test_otherwise_the_nearest_plan_is_named() -> None:
    """With no window containing the run and none later that day, the warning names the
    nearest plan (distance to its window)."""
    past = pkgdb(id="past", when=utc(2026, 12, 10, 13))
    soon = pkgdb(id="soon", when=utc(2026, 12, 13, 13))
    later = pkgdb(id="later", when=utc(2026, 12, 16, 13))
    at = utc(2026, 12, 14, 13)
    assert kinds(interpret(started(at), [past, soon, later], at, "prod", UTC)) == [
        ("UnplannedDeploy", "soon")
    ]


# --- time --------------------------------------------------------------------------------


def test_event_time() -> None:
    """The event's time is its sent_at; without one, or one beyond CLOCK_SKEW in the future,
    it is ``now``."""
    now = WHEN
    assert event_time(started(WHEN - timedelta(hours=3)), now) == WHEN - timedelta(hours=3)
    assert event_time(started(None), now) == now
    assert event_time(started(now + CLOCK_SKEW), now) == now + CLOCK_SKEW
    assert event_time(started(now + CLOCK_SKEW + timedelta(seconds=1)), now) == now


def test_a_late_delivered_message_is_judged_by_when_it_was_sent() -> None:
    """A start sent inside the window but delivered after it ended (a queue drained after a
    restart) is the planned deploy, not an unplanned one."""
    sent = WHEN + timedelta(hours=1)
    facts = interpret(started(sent), [pkgdb()], END + timedelta(hours=2), "prod", UTC)
    assert kinds(facts)[1] == ("DeployStarted", "pkgdb2-2.0")


@pytest.mark.parametrize(
    "sent_at", [datetime.min.replace(tzinfo=UTC), datetime.max.replace(tzinfo=UTC)]
)
def test_the_ends_of_time_do_not_break_the_rules(sent_at: datetime) -> None:
    """A message claiming year 1 or 9999 (valid fedmsg timestamps in range) is judged without
    error in a timezone where its local date does not exist: a far-future one at ``now``,
    a far-past one as a routine run."""
    headers = {"sent-at": sent_at.isoformat()}
    event = from_fedora_messaging(
        "org.fedoraproject.prod.ansible.playbook.start",
        {"playbook": "groups/pkgdb.yml"},
        headers,
        None,
        prefix=PREFIX,
    )
    expected = [] if sent_at.year == 1 else [("OpenFirefighting", "pkgdb2-2.0")]
    assert kinds(interpret(event, [pkgdb()], WHEN, "prod", NEW_YORK))[:1] == expected


def test_a_message_without_time_is_judged_now() -> None:
    """A message without a timestamp is judged at ``now``."""
    assert kinds(interpret(started(None), [pkgdb()], WHEN, "prod", UTC))[1][0] == "DeployStarted"
    assert kinds(interpret(started(None), [pkgdb()], END, "prod", UTC)) == [
        ("UnplannedDeploy", "pkgdb2-2.0")
    ]


# --- text --------------------------------------------------------------------------------


def test_texts_of_each_fact() -> None:
    """The one-line texts, as the brief spells them (with the playbook on finished lines)."""
    plan = pkgdb()
    event = started(WHEN)
    assert fact_text(DeployStarted(plan, "pingou", "groups/pkgdb.yml", event), UTC) == (
        "deploy of pkgdb2 started by pingou (groups/pkgdb.yml)"
    )
    assert fact_text(DeployStarted(plan, "", "groups/pkgdb.yml", event), UTC) == (
        "deploy of pkgdb2 started (groups/pkgdb.yml)"
    )
    finished = DeployFinished(plan, "pingou", "groups/pkgdb.yml", True, (), event)
    assert fact_text(finished, UTC) == "deploy of pkgdb2 finished ok (groups/pkgdb.yml)"
    failed = DeployFinished(
        plan, "pingou", "groups/pkgdb.yml", False, ("db01.phx2.fedoraproject.org", "app02"), event
    )
    assert fact_text(failed, UTC) == (
        "deploy of pkgdb2 finished with failures on db01.phx2, app02 (groups/pkgdb.yml)"
    )
    assert fact_text(OpenFirefighting(plan, event), UTC) == (
        "deploy of pkgdb2 began on the bus: opening firefighting for pkgdb2-2.0"
    )


def test_many_failed_hosts_are_summarised() -> None:
    """Only MAX_HOSTS_SHOWN hosts are named, then "and N more"."""
    hosts = tuple(f"app{n:02}" for n in range(MAX_HOSTS_SHOWN + 3))
    fact = DeployFinished(pkgdb(), "u", "groups/pkgdb.yml", False, hosts, started(WHEN))
    assert fact_text(fact, UTC).endswith("app03, app04 and 3 more (groups/pkgdb.yml)")


def test_hostile_values_never_make_a_multi_line_text() -> None:
    """CR, LF and NUL in the user, playbook or host names become spaces, and huge values
    are cut: every fact's text is one short line."""
    evil = "x\r\nPRIVMSG #fedora-admin :pwned\x00" + "y" * 10_000
    event = ansible("complete", WHEN, playbook="groups/pkgdb.yml", user=evil)
    plan = pkgdb(playbooks=("groups/pkgdb.yml",))
    facts: list[DeployFact] = [
        DeployStarted(plan, evil, evil, event),
        DeployFinished(plan, evil, evil, False, (evil, evil), event),
        UnplannedDeploy(plan, evil, evil, event),
        OpenFirefighting(plan, event),
    ]
    for fact in facts:
        text = fact_text(fact, UTC)
        assert not set(text) & {"\r", "\n", "\x00"}
        assert len(text) < 1000


def test_window_text_across_midnight() -> None:
    """A window ending on another day shows the end's date."""
    plan = pkgdb(when=utc(2026, 12, 15, 20), duration=timedelta(hours=8))
    assert window_text(plan, UTC) == "Tue 2026-12-15 20:00–2026-12-16 04:00 UTC"


# --- garbage never breaks the rules ------------------------------------------------------

ansible_bodies = st.fixed_dictionaries(
    {},
    optional={
        "playbook": st.sampled_from(
            ["groups/pkgdb.yml", "/srv/web/infra/ansible/playbooks/groups/pkgdb.yml", ""]
        )
        | json_values,
        "userid": st.text(max_size=20) | json_values,
        "check": json_values,
        "results": st.dictionaries(
            st.text(max_size=10),
            st.dictionaries(st.sampled_from(["failures", "unreachable", "ok"]), json_values)
            | json_values,
            max_size=4,
        )
        | json_values,
    },
)


@given(
    st.sampled_from(["start", "complete", "cancel"]),
    st.sampled_from(["prod", "stg", "dev"]),
    ansible_bodies,
    st.none()
    | st.timedeltas(min_value=timedelta(days=-10), max_value=timedelta(days=10))
    | st.integers(-240, 240).map(lambda hours: timedelta(hours=hours))
    | st.datetimes(timezones=st.sampled_from([UTC, PARIS, NEW_YORK])),
    st.datetimes(
        min_value=datetime(2000, 1, 1),
        max_value=datetime(2100, 1, 1),
        timezones=st.sampled_from([UTC, PARIS]),
    ),
    st.sampled_from([UTC, PARIS, NEW_YORK]),
)
def test_interpret_never_raises(
    kind: str,
    environment: str,
    body: dict[str, Any],
    sent: timedelta | datetime | None,
    now: datetime,
    tz: ZoneInfo,
) -> None:
    """Any ansible-like body, any sending time (near the plans, or anywhere from year 1 to
    9999), any environment and timezone: interpret returns a tuple of facts (never raises)
    and each fact's text is one line."""
    sent_at = now + sent if isinstance(sent, timedelta) else sent
    headers = {"sent-at": sent_at.isoformat()} if sent_at else None
    event = from_fedora_messaging(
        f"org.fedoraproject.{environment}.ansible.playbook.{kind}",
        body,
        headers,
        None,
        prefix=PREFIX,
    )
    plans = [
        pkgdb(id=f"p{h}", when=now.astimezone(UTC) + timedelta(hours=h)) for h in (-30, -2, 3, 120)
    ]
    facts = interpret(event, plans, now, "prod", tz)
    assert isinstance(facts, tuple)
    for fact in facts:
        text = fact_text(fact, tz)
        assert not set(text) & {"\r", "\n", "\x00"}


@given(st.binary(max_size=500) | json_values.map(lambda v: json.dumps(v).encode()))
def test_decode_then_interpret_pipeline(data: bytes) -> None:
    """The adapter's pipeline on garbage: decode (BadMessage counted) then interpret — no
    other exception escapes, and the counters add up."""
    stats = BusStats()
    stats.count_received("webhook")
    try:
        event = from_webhook(data, prefix=PREFIX)
    except BadMessage as error:
        stats.count_dropped(error)
    else:
        stats.count_decoded()
        stats.count_facts(interpret(event, [pkgdb()], WHEN, "prod", UTC))
    counts = stats.as_dict()
    assert counts["received_total"] == counts["decoded"] + counts["dropped_total"] == 1


# --- counters and the rate-limited log ---------------------------------------------------


def test_bus_stats() -> None:
    """Received per source, decoded, dropped per kind and facts per type are counted;
    as_dict has every known key from the start (0) and gives fresh dicts."""
    stats = BusStats()
    empty = stats.as_dict()
    assert empty["dropped"] == dict.fromkeys(KINDS, 0)
    assert empty["facts"] == {
        "OpenFirefighting": 0,
        "DeployStarted": 0,
        "DeployFinished": 0,
        "UnplannedDeploy": 0,
    }
    assert empty["received"] == {"fedmsg": 0, "fedora-messaging": 0, "webhook": 0}
    for source in ("fedmsg", "fedmsg", "fedora-messaging"):
        stats.count_received(source)
    stats.count_dropped(BadMessage("not-json", "x"))
    stats.count_decoded()
    stats.count_decoded()
    stats.count_facts(interpret(started(WHEN), [pkgdb()], WHEN, "prod", UTC))
    counts = stats.as_dict()
    assert counts["received"] == {"fedmsg": 2, "fedora-messaging": 1, "webhook": 0}
    assert counts["received_total"] == 3
    assert counts["decoded"] == 2
    assert counts["dropped_total"] == 1
    assert isinstance(counts["dropped"], dict) and counts["dropped"]["not-json"] == 1
    assert isinstance(counts["facts"], dict)
    assert counts["facts"]["OpenFirefighting"] == counts["facts"]["DeployStarted"] == 1
    counts["dropped"]["not-json"] = 99
    assert stats.as_dict()["dropped"] == {**dict.fromkeys(KINDS, 0), "not-json": 1}


def test_rate_limited_log(caplog: pytest.LogCaptureFixture) -> None:
    """The first drop of a kind is logged; more within the interval are only counted; the
    next line after the interval says how many were suppressed; kinds are independent."""
    caplog.set_level(logging.WARNING, logger="deploybot.bus")
    log = RateLimitedLog(logging.getLogger("deploybot.bus"), interval=60)
    assert log.dropped(BadMessage("not-json", "first"), now=1000.0, origin="tcp://a:9940")
    assert not log.dropped(BadMessage("not-json", "second"), now=1010.0)
    assert not log.dropped(BadMessage("not-json", "third"), now=1059.9)
    assert log.dropped(BadMessage("bad-topic", "other kind"), now=1020.0)
    assert log.suppressed() == {"not-json": 2}
    assert log.dropped(BadMessage("not-json", "fourth"), now=1060.0)
    assert log.suppressed() == {}
    messages = [record.getMessage() for record in caplog.records]
    assert messages == [
        "dropped a bus message from tcp://a:9940 (not-json): first",
        "dropped a bus message (bad-topic): other kind",
        "dropped a bus message (not-json): fourth (2 more like it since the last report)",
    ]
    assert all(record.levelno == logging.WARNING for record in caplog.records)


def test_rate_limited_log_flush(caplog: pytest.LogCaptureFixture) -> None:
    """flush() reports suppressed counts once their interval has passed (a burst followed
    by silence is not lost), and not before."""
    caplog.set_level(logging.WARNING, logger="deploybot.bus")
    log = RateLimitedLog(logging.getLogger("deploybot.bus"), interval=30)
    for second in range(5):
        log.dropped(BadMessage("too-large", "big"), now=float(second))
    assert log.flush(now=10.0) == 0
    assert log.flush(now=31.0) == 1
    assert log.flush(now=100.0) == 0
    assert caplog.records[-1].getMessage() == (
        "dropped 4 more bus message(s) (too-large) since the last report"
    )


def test_rate_limited_log_keeps_lines_single(caplog: pytest.LogCaptureFixture) -> None:
    """A detail or origin with newlines is logged on one line."""
    caplog.set_level(logging.WARNING, logger="deploybot.bus")
    log = RateLimitedLog(logging.getLogger("deploybot.bus"))
    log.dropped(BadMessage("wrong-type", "a\nb\r\nc"), now=0.0, origin="x\ny")
    assert "\n" not in caplog.records[0].getMessage()
