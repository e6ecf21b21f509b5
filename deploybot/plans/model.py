"""Deployment plans: typed, immutable, exactly the shape of SPEC §1.

Plans are built by :mod:`deploybot.plans.files` from YAML; everything else in the core
reads these objects and never the YAML.  All datetimes are timezone-aware UTC.
Shift ``start``/``end`` are resolved to aware datetimes at load time: a shift's
``from``/``to`` are wall-clock times on the day of ``when``, in the UTC offset that
``when`` was written with (a shift with no times covers the whole window).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta


@dataclass(frozen=True)
class ApiBreak:
    endpoint: str
    change: str
    migration: str = ""


@dataclass(frozen=True)
class Probe:
    """A GET question asked of staging and production alike (SPEC §1 ``probes``).

    ``path`` (with its query string) is appended to ``staging.url`` and
    ``production.url``; ``ignore`` holds JSON paths (``.date_updated``) never compared.
    """

    path: str
    ignore: tuple[str, ...] = ()

    @property
    def endpoint(self) -> str:
        """The path without its query string: what an API break's ``endpoint`` names."""
        return self.path.split("?", 1)[0]


@dataclass(frozen=True)
class Consumer:
    name: str
    team: str = ""
    contact: str = ""


@dataclass(frozen=True)
class Announcement:
    list: str
    date: date
    api_break: bool = False


@dataclass(frozen=True)
class Staging:
    url: str = ""
    call_for_testing: date | None = None


@dataclass(frozen=True)
class Production:
    url: str = ""


@dataclass(frozen=True)
class Shift:
    team: str
    people: tuple[str, ...]
    start: datetime
    end: datetime
    # The times as written ("13:00"), or None when the shift covers the whole window.
    written_from: str | None = None
    written_to: str | None = None

    def covers(self, moment: datetime) -> bool:
        return self.start <= moment < self.end


@dataclass(frozen=True)
class Roster:
    channel: str | None = None
    shifts: tuple[Shift, ...] = ()
    escalation: tuple[str, ...] = ()


#: The only reason a plan may skip the freeze rule: it fixes an outage.
OUTAGE_FIX = "outage-fix"


@dataclass(frozen=True)
class FreezeExemption:
    """``freeze_exempt: {kind: outage-fix, reason: …}``: an emergency fix deployed during a
    freeze without a freeze break (Fedora's freeze policy exempts outage fixes)."""

    kind: str
    reason: str


@dataclass(frozen=True)
class Source:
    """Where a plan came from: the file and the line of each key (dotted path → line)."""

    file: str
    lines: tuple[tuple[str, int], ...] = ()

    def line_of(self, key: str) -> int:
        """The line of ``key`` or of its nearest enclosing key; 1 if unknown."""
        known = dict(self.lines)
        while key:
            if key in known:
                return known[key]
            key = key.rpartition(".")[0] if "." in key else ""
        return 1


@dataclass(frozen=True)
class Plan:
    id: str
    service: str
    release: str
    title: str
    when: datetime  # aware, UTC
    duration: timedelta
    major: bool = False
    leaf: bool = False
    essential: bool = False
    owners: tuple[str, ...] = ()
    playbooks: tuple[str, ...] = ()
    staging: Staging = field(default_factory=Staging)
    production: Production = field(default_factory=Production)
    api_breaks: tuple[ApiBreak, ...] = ()
    probes: tuple[Probe, ...] = ()
    consumers: tuple[Consumer, ...] = ()
    announcements: tuple[Announcement, ...] = ()
    meetings: tuple[date, ...] = ()
    teams: tuple[str, ...] = ()
    roster: Roster = field(default_factory=Roster)
    freeze_exempt: FreezeExemption | None = None
    # The UTC offset `when` was written with; shift times are read in it.
    when_offset: timedelta = timedelta(0)
    source: Source = field(default_factory=lambda: Source(file="<memory>"), compare=False)

    @property
    def end(self) -> datetime:
        """End of the deploy window (and of firefighting)."""
        return self.when + self.duration

    @property
    def breaks_api(self) -> bool:
        return bool(self.api_breaks)

    def running_at(self, moment: datetime) -> bool:
        return self.when <= moment < self.end
