"""The demo's day (``deploybot demo``): who and where, when, the plan and the bot's config.

* who and where: the bot, the observer and the three scripted people (``pingou``,
  ``dgilmore``, ``tflink``), the two channels, the playbook the bus announces, all on
  127.0.0.1;
* when: :class:`Timeline`, the schedule **compressed rather than sped up**: the bot runs
  on real time (its scheduler does), so the plan starts about a minute after launch,
  countdowns are at ``1m`` and ``0``, ``page_escalate_after`` is 30 s, the window lasts
  70 s and ``digest_time`` (``HH:MM:SS``) is 5 s after it; ``--seconds-per-step`` scales
  every interval.  Also how long the demo waits for the bot (``START_TIMEOUT``,
  ``STEP_TIMEOUT``) and the time zone (:func:`demo_timezone`);
* the plan (:func:`demo_plan`): the story of ``deploy-plans/pkgdb2-2.0.yaml`` (three API
  breaks, a roster, consumers) with a smaller roster and a window of about a minute;
* the bot's ``bot.ini`` (:func:`bot_ini`).

Pure data: nothing here touches the network, a file or the clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from deploybot.durations import format_duration
from deploybot.plans.model import (
    Announcement,
    ApiBreak,
    Consumer,
    Plan,
    Production,
    Roster,
    Shift,
    Staging,
)

__all__ = [
    "ADMIN",
    "BOT_NICK",
    "DGILMORE",
    "FIREFIGHT",
    "HOST",
    "OBSERVER",
    "PEOPLE",
    "PINGOU",
    "PLAYBOOK",
    "START_TIMEOUT",
    "STEP_TIMEOUT",
    "TFLINK",
    "Timeline",
    "bot_ini",
    "demo_plan",
    "demo_timezone",
]

HOST = "127.0.0.1"
ADMIN = "#fedora-admin"
FIREFIGHT = "#pkgdb2-firefight"
BOT_NICK = "deploybot"
OBSERVER = "transcript"
PINGOU, DGILMORE, TFLINK = "pingou", "dgilmore", "tflink"
PEOPLE = (PINGOU, DGILMORE, TFLINK)
PLAYBOOK = "/srv/web/infra/ansible/playbooks/manual/upgrade/pkgdb2.yml"
START_TIMEOUT = 30.0  # the bot joining the admin channel, clients registering
STEP_TIMEOUT = 60.0  # the bot answering a scripted step (a paced real server is slow)


# -- the schedule ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Timeline:
    """When everything happens, for a plan starting at ``when``; ``step`` seconds per
    second of the default script (1.0: about 2½ minutes in all).

    The script's steps run in the order :meth:`deploybot_plugins.demo.script.Script.play`
    takes them, each not before its time below (a time already past when the previous
    step's answer came: at once)."""

    when: datetime
    step: float = 1.0

    # The script, in seconds relative to ``when`` at step 1.0.
    DEPLOYS = -45.0
    USES = -30.0
    BUS_START = -10.0
    ACK_DGILMORE = 5.0
    ACK_PINGOU = 8.0
    BROKE_DGILMORE = 15.0
    BROKE_TFLINK = 25.0
    TAKE = 30.0
    FIXED = 45.0
    BUS_COMPLETE = 55.0

    @staticmethod
    def countdown_offset(step: float) -> timedelta:
        return timedelta(seconds=max(10, round(60 * step)))

    @classmethod
    def lead(cls, step: float) -> timedelta:
        """From launch to the plan's start: the first countdown comes ≥ 8 s after launch,
        time enough for the bot to start and join."""
        return cls.countdown_offset(step) + timedelta(seconds=max(8, round(5 * step)))

    @classmethod
    def starting(cls, now: datetime, step: float = 1.0) -> Timeline:
        when = (now + cls.lead(step)).replace(microsecond=0) + timedelta(seconds=1)
        return cls(when=when, step=step)

    def at(self, offset: float) -> datetime:
        return self.when + timedelta(seconds=offset * self.step)

    @property
    def window(self) -> timedelta:
        return timedelta(seconds=max(12, round(70 * self.step)))

    @property
    def end(self) -> datetime:
        return self.when + self.window

    @property
    def escalate_after(self) -> timedelta:
        return timedelta(seconds=max(4, round(30 * self.step)))

    @property
    def digest_at(self) -> datetime:
        return self.end + timedelta(seconds=max(3, round(5 * self.step)))

    @property
    def countdowns(self) -> str:
        return f"{format_duration(self.countdown_offset(self.step))} 0"


def demo_timezone(start: datetime, finish: datetime) -> str:
    """UTC, unless the demo would cross midnight UTC (the digest is per day): then a zone
    where it is noon (UTC+12, ``Etc/GMT-12`` in POSIX's inverted sign)."""
    if start.astimezone(UTC).date() == finish.astimezone(UTC).date():
        return "UTC"
    return "Etc/GMT-12"


def demo_plan(timeline: Timeline) -> Plan:
    """deploy-plans/pkgdb2-2.0.yaml's story on the demo's schedule: the same API breaks,
    playbooks and policy facts (dated from today, so it is ready), a roster of the three
    scripted people (the whole window each), consumers whose contacts are paged, and the
    escalation list."""
    when, end = timeline.when, timeline.end
    day: date = when.astimezone(UTC).date()
    return Plan(
        id="pkgdb2-2.0",
        service="pkgdb2",
        release="2.0",
        title="pkgdb2 replaces pkgdb1",
        when=when,
        duration=timeline.window,
        major=True,
        essential=True,
        owners=(PINGOU, "abadger1999"),
        playbooks=("groups/pkgdb.yml", "manual/upgrade/pkgdb2.yml"),
        staging=Staging(
            url="https://admin.stg.fedoraproject.org/pkgdb",
            call_for_testing=day - timedelta(days=25),
        ),
        production=Production(url="https://admin.fedoraproject.org/pkgdb"),
        api_breaks=(
            ApiBreak(
                "/api/packager/acl",
                "returns null instead of [] when the packager has no ACLs",
                "treat null as an empty list (python-fedora >= 0.5 does)",
            ),
            ApiBreak(
                "/api/collections",
                "collection branch names are lowercase (f41, epel9) instead of F-41, EL-9",
                'compare branch names case-insensitively, or use the new "koji_name" field',
            ),
            ApiBreak(
                "/acls/name/<package>",
                "removed; replaced by /api/package/acl?pkgname=<package>",
                "switch to the new endpoint; the old URL answers 410 Gone from the deploy on",
            ),
        ),
        consumers=(
            Consumer("rel-eng compose and branching scripts", "rel-eng", DGILMORE),
            Consumer("blocker bugs app", "qa", TFLINK),
            Consumer("pkgdb-sync-git-branches cron job", "cvsadmins", "ralph"),
        ),
        announcements=(
            Announcement("infrastructure", day - timedelta(days=28), api_break=True),
            Announcement("devel", day - timedelta(days=27), api_break=True),
        ),
        meetings=(day - timedelta(days=26), day - timedelta(days=19)),
        teams=("rel-eng", "qa"),
        roster=Roster(
            channel=FIREFIGHT,
            shifts=(
                Shift("infrastructure", (PINGOU,), when, end),
                Shift("rel-eng", (DGILMORE,), when, end),
                Shift("qa", (TFLINK,), when, end),
            ),
            escalation=("nirik",),
        ),
    )


def bot_ini(
    *,
    irc: tuple[str, int],
    endpoint: str,
    timeline: Timeline,
    tz: str,
    fast: bool,
    web_port: int = 0,
) -> str:
    """The demo's bot.ini (SPEC §7); ``fast`` paces output for the built-in server only;
    ``web_port`` 0: no web server."""
    host, port = irc
    throttle = (
        ["throttle_burst = 20", "throttle_rate = 10"]
        if fast
        else ["# output pacing: the defaults (safe on a stock InspIRCd class)"]
    )
    digest_time = timeline.digest_at.astimezone(ZoneInfo(tz))
    return "\n".join(
        [
            "# Written by `deploybot demo`; run it again with: deploybot run bot.ini",
            "[bot]",
            f"nick = {BOT_NICK}",
            "username = deploybot",
            "realname = deploybot (demo)",
            f"host = {host}",
            f"port = {port}",
            "ssl = false",
            *throttle,
            "reconnect_delay = 1",
            "reconnect_max_delay = 5",
            "includes =",
            "    deploybot_plugins.irc.commands",
            "",
            "[deploybot]",
            "plans_dir = plans",
            "database = deploybot.sqlite3",
            f"timezone = {tz}",
            f"admin_channel = {ADMIN}",
            f"announce_channels = {ADMIN}",
            "firefight_channel = #{service}-firefight",
            f"countdowns = {timeline.countdowns}",
            f"digest_time = {digest_time:%H:%M:%S}",
            f"page_escalate_after = {format_duration(timeline.escalate_after)}",
            "; nobody is an admin: the demo server has no services accounts",
            "admins = account:pingou",
            f"fedmsg_endpoints = {endpoint}",
            "fedmsg_topic_prefix = org.fedoraproject",
            "fedmsg_environment = prod",
            "; the web pages, the API and the calendar (0: off); no webhook (no secret)",
            f"web_host = {HOST}",
            f"web_port = {web_port}",
            "",
        ]
    )
