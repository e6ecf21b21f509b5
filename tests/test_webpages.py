"""deploybot.web.pages: the / and /digest/{date} pages are well-formed HTML5, show what
SPEC §6 promises, and never let a value from a plan or an incident out of its text."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from html.parser import HTMLParser
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from deploybot.deployday.digest import Digest, build_digest, full_lines
from deploybot.plans.model import ApiBreak, Plan
from deploybot.store import Incident, Store
from deploybot.web import pages
from deploybot.web.pages import (
    deployment_page,
    digest_page,
    front_page_incidents,
    index_page,
    templates,
)
from tests.planfactory import DEFAULT_WHEN, make_plan

PARIS = ZoneInfo("Europe/Paris")
NOW = DEFAULT_WHEN - timedelta(days=3)  # 2026-12-12 13:00 UTC, three days before the deploy
DAY = date(2026, 12, 15)  # make_plan's deploy day
EVIL = '<script>alert("x")</script>" onmouseover="alert(1)'
VOID = {"meta", "br", "hr", "img", "input", "link", "wbr", "col", "area", "base", "source"}


def make_incident(**overrides: Any) -> Incident:
    reported = DEFAULT_WHEN + timedelta(minutes=20)
    fields: dict[str, Any] = {
        "number": 3,
        "service": "pkgdb2",
        "deploy_id": "pkgdb2-2.0",
        "minutes_into_deploy": 20,
        "text": "the acl page returns 500",
        "reporter_nick": "alice",
        "reporter_account": "alice",
        "channel": "#pkgdb2-firefight",
        "reported_at": reported,
        "acknowledged_at": None,
        "acknowledged_by": None,
        "owner": None,
        "fixed_at": None,
        "fixed_by": None,
        "timeline": (),
    }
    fields.update(overrides)
    return Incident(**fields)


class Document(HTMLParser):
    """Reads a page, checking that every tag is closed in order; keeps the text."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.tags: list[str] = []
        self.errors: list[str] = []
        self.text: list[str] = []
        self.doctype = ""
        self.charset = ""
        self.title = ""

    def handle_decl(self, decl: str) -> None:
        self.doctype = decl

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        if tag == "meta" and dict(attrs).get("charset"):
            self.charset = dict(attrs)["charset"] or ""
        if tag not in VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.errors.append(f"self-closing <{tag}/>")

    def handle_endtag(self, tag: str) -> None:
        if tag in VOID:
            self.errors.append(f"end tag for void <{tag}>")
        elif not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1:] or 'nothing'}")
        else:
            self.stack.pop()

    def handle_data(self, data: str) -> None:
        if self.stack and self.stack[-1] == "title":
            self.title += data
        self.text.append(data)

    @property
    def all_text(self) -> str:
        return "".join(self.text)


def parse(page: str) -> Document:
    """The page parsed, after checking it is a well-formed HTML5 document."""
    document = Document()
    document.feed(page)
    document.close()
    assert document.errors == []
    assert document.stack == [], f"unclosed {document.stack}"
    assert document.doctype.lower() == "doctype html"
    assert document.charset.lower() == "utf-8"
    assert document.tags[:2] == ["html", "head"]
    assert "body" in document.tags
    assert document.title
    return document


def index(
    plans: list[Plan] | None = None,
    incidents: list[Incident] | None = None,
    now: datetime = NOW,
) -> str:
    return index_page(plans or [], incidents or [], now=now, tz=UTC)


def digest_of(incidents: list[Incident], plans: list[Plan], **kwargs: Any) -> Digest:
    return build_digest(incidents, plans, DAY, UTC, **kwargs)


# -- / ----------------------------------------------------------------------------------


def test_index_empty_says_so() -> None:
    """No plans and no incidents: two plain lines, in a valid page."""
    document = parse(index())
    assert "no upcoming deploys" in document.all_text
    assert "no incidents today" in document.all_text
    assert "table" not in document.tags


def test_index_shows_an_upcoming_deploy_with_its_api_breaks() -> None:
    """A plan with API breaks: ⚠ API BREAK, each endpoint, change and migration, its window
    in the display timezone, its countdown and its readiness."""
    plan = make_plan(
        api_breaks=(
            ApiBreak("/api/packager/acl", "returns null instead of []", "treat null as []"),
            ApiBreak("/api/collections", "lower-case names"),
        )
    )
    page = index_page([plan], [], now=NOW, tz=PARIS)
    text = parse(page).all_text
    assert "⚠ API BREAK" in text
    assert "/api/packager/acl — returns null instead of []" in text
    assert "migration: treat null as []" in text
    assert "/api/collections — lower-case names" in text
    assert "no migration note" in text
    assert "Tue 2026-12-15 14:00 CET" in text
    assert "in 3 days" in text
    assert "READY (6 of 6 rules met)" in text


def test_index_shows_what_is_missing_for_readiness() -> None:
    """A plan not ready lists each missing rule with its reason; notice_days is used."""
    plan = make_plan(meetings=())
    text = parse(index([plan])).all_text
    assert "NOT READY (5 of 6 rules met)" in text
    assert "discussed in a weekly infrastructure meeting: not discussed" in text
    relaxed = make_plan(staging=replace(make_plan().staging, call_for_testing=date(2026, 12, 5)))
    assert "NOT READY" in parse(index([relaxed])).all_text
    page = index_page([relaxed], [], now=NOW, tz=UTC, notice_days=7)
    assert "READY (6 of 6 rules met)" in parse(page).all_text


def test_index_exempt_and_break_free_plan() -> None:
    """A minor release without API breaks shows no ⚠ and says it is exempt."""
    plan = make_plan(api_breaks=(), major=False)
    text = parse(index([plan])).all_text
    assert "⚠" not in text
    assert "exempt: minor release without API breaks" in text


def test_index_lists_running_then_upcoming_and_hides_finished() -> None:
    """Running deploys first, then upcoming by start time; finished ones are gone."""
    now = DEFAULT_WHEN + timedelta(hours=2)
    plans = [
        make_plan(id="later", service="later", when=now + timedelta(days=2)),
        make_plan(id="done", service="done", when=now - timedelta(days=2)),
        make_plan(id="soon", service="soon", when=now + timedelta(hours=1)),
        make_plan(id="now", service="now"),
    ]
    text = parse(index(plans, now=now)).all_text
    assert "done" not in text
    assert text.index("now 2.0") < text.index("soon 2.0") < text.index("later 2.0")
    assert "running: started 2h ago, ends 21:00 UTC" in text
    assert "in 1h" in text


def test_index_shows_incidents_with_state_people_and_ages() -> None:
    """Each incident: number, service and deploy, summary, state, reporter, owner,
    report time and ages; by number."""
    reported = DEFAULT_WHEN + timedelta(minutes=20)
    open_one = make_incident(number=4, owner="bob", acknowledged_at=reported + timedelta(minutes=4))
    fixed_one = make_incident(
        number=2,
        text="login loops",
        fixed_at=reported + timedelta(minutes=70),
        fixed_by="carol",
        acknowledged_at=reported + timedelta(minutes=1),
    )
    now = DEFAULT_WHEN + timedelta(hours=3)
    text = parse(index([], [open_one, fixed_one], now=now)).all_text
    assert text.index("#2") < text.index("#4")
    assert "deploy pkgdb2-2.0 +20 min" in text
    assert "the acl page returns 500" in text
    assert "open 2h 40m" in text
    assert "acknowledged after 4m" in text
    assert "fixed after 1h 10m by carol" in text
    assert "bob" in text
    assert "alice" in text
    assert "13:20 UTC" in text
    assert "nobody" in text  # the fixed one has no owner


def test_index_escapes_every_plan_and_incident_value() -> None:
    """<script> and quotes from a plan or an incident never reach the page unescaped:
    no script element, no attribute, and the text reads back exactly."""
    plan = make_plan(
        id=EVIL,
        service=EVIL,
        release=EVIL,
        title=EVIL,
        api_breaks=(ApiBreak(EVIL, EVIL, EVIL),),
        consumers=(replace(make_plan().consumers[0], contact="", name=EVIL),),
    )
    incident = make_incident(
        service=EVIL, text=EVIL, reporter_nick=EVIL, owner=EVIL, deploy_id=EVIL
    )
    page = index([plan], [incident])
    assert "<script" not in page
    assert 'onmouseover="' not in page
    assert '"x"' not in page
    document = parse(page)
    assert "script" not in document.tags
    assert document.all_text.count(EVIL) >= 10
    assert f"no contact for {EVIL}" in document.all_text


@given(st.text(), st.text())
def test_any_text_stays_text(title: str, summary: str) -> None:
    """Whatever a plan title or an incident text holds, the page stays well-formed and
    shows it as it is (line breaks aside, which HTML may normalize)."""
    page = index([make_plan(title=title)], [make_incident(text=summary)])
    text = parse(page).all_text
    for value in (title, summary):
        assert value.replace("\r", "\n") in text.replace("\r", "\n")


def test_links_are_relative() -> None:
    """The pages link to each other and to the calendar relatively (path-prefix safe)."""
    page = index_page([], [], now=NOW, tz=PARIS)
    assert '<a href="digest/2026-12-12">' in page
    assert '<a href="calendar.ics">' in page
    digest = build_digest([], [], date(2026, 12, 1), UTC)
    assert '<a href="../">' in digest_page(digest, tz=UTC)


def test_index_links_each_deploy_to_its_page_quoting_the_id() -> None:
    """Each deploy's name links to deployments/{id}, the id quoted as one path segment."""
    page = index([make_plan(id="pkgdb2-2.0"), make_plan(id="a/b c", when=DEFAULT_WHEN)])
    assert '<a href="deployments/pkgdb2-2.0">' in page
    assert '<a href="deployments/a%2Fb%20c">' in page


# -- /deployments/{id} --------------------------------------------------------------------


def deployment(
    plan: Plan | None = None, incidents: list[Incident] | None = None, now: datetime = NOW
) -> str:
    return deployment_page(
        plan or make_plan(), incidents or [], now=now, tz=UTC, channel="#pkgdb2-firefight"
    )


def test_deployment_page_shows_the_plan_breaks_readiness_and_roster() -> None:
    """Before the deploy: its window and countdown, what the plan says, each API break,
    every readiness rule with its reason, the roster's shifts and escalation."""
    document = parse(deployment())
    text = document.all_text
    assert document.title == "deploy pkgdb2-2.0"
    assert "Tue 2026-12-15 13:00 UTC to 21:00 UTC (8h)" in text
    assert "upcoming: in 3 days" in text
    assert "⚠ API BREAK" in text
    assert "/api/packager/acl — returns null instead of []" in text
    assert "READY (6 of 6 rules met, 14 days' notice)" in text
    assert "discussed at the weekly meeting on 2026-12-02" in text
    assert "rel-eng compose scripts (rel-eng): dgilmore" in text
    assert "Firefighting channel: #pkgdb2-firefight." in text
    assert "17:00–21:00 UTC" in text and "abadger1999" in text
    assert "Escalation: nirik." in text
    assert "On shift now" not in text  # not started yet
    assert "no incidents reported during this deploy" in text
    assert '<a href="../">' in deployment()


def test_deployment_page_says_who_is_on_shift_during_the_deploy() -> None:
    """During the window: running, and the people whose shift covers now, by team."""
    text = parse(deployment(now=DEFAULT_WHEN + timedelta(hours=5))).all_text
    assert "running: started 5h ago, ends 21:00 UTC" in text
    assert "On shift now: abadger1999 (infrastructure), dgilmore (rel-eng)." in text
    assert "pingou (infrastructure)" not in text


def test_deployment_page_lists_missing_rules_and_the_deploys_incidents() -> None:
    """A plan not ready: each rule met or missing; the incidents passed, by number."""
    incidents = [make_incident(number=7, text="second"), make_incident(number=5, text="first")]
    text = parse(
        deployment(make_plan(meetings=()), incidents, now=DEFAULT_WHEN + timedelta(hours=9))
    ).all_text
    assert "NOT READY (5 of 6 rules met" in text
    assert "✘ missing" in text and "not discussed" in text
    assert "finished Tue 2026-12-15 21:00 UTC" in text
    assert text.index("#5") < text.index("#7")
    assert "deploy pkgdb2-2.0 +20 min" in text


def test_deployment_page_escapes_every_plan_and_incident_value() -> None:
    """No value from a plan or an incident leaves its text on the deploy page either."""
    plan = make_plan(
        id=EVIL,
        service=EVIL,
        release=EVIL,
        title=EVIL,
        owners=(EVIL,),
        playbooks=(EVIL,),
        api_breaks=(ApiBreak(EVIL, EVIL, EVIL),),
        consumers=(replace(make_plan().consumers[0], contact=EVIL, name=EVIL),),
    )
    incident = make_incident(service=EVIL, text=EVIL, reporter_nick=EVIL, owner=EVIL)
    page = deployment(plan, [incident])
    assert "<script" not in page
    assert 'onmouseover="' not in page
    document = parse(page)
    assert "script" not in document.tags
    assert document.all_text.count(EVIL) >= 10


@given(st.text(), st.text())
def test_any_text_stays_text_on_the_deploy_page(title: str, summary: str) -> None:
    """Whatever a plan title or an incident text holds, the deploy page stays well-formed."""
    page = deployment(make_plan(title=title), [make_incident(text=summary)])
    text = parse(page).all_text
    for value in (title, summary):
        assert value.replace("\r", "\n") in text.replace("\r", "\n")


def test_templates_autoescape_and_refuse_undefined_names() -> None:
    """The environment escapes by default and a typo in a template is an error, not an
    empty string."""
    environment = templates()
    assert environment.from_string("{{ x }}").render(x="<b>") == "&lt;b&gt;"
    with pytest.raises(Exception, match="undefined"):
        environment.from_string("{{ nothing.here }}").render()


# -- /digest/{date} ---------------------------------------------------------------------


def test_digest_page_empty() -> None:
    """No deploy and no incident that day: the header and one plain line."""
    digest = build_digest([], [], date(2026, 12, 1), UTC)
    document = parse(digest_page(digest, tz=UTC))
    assert "incident digest" in document.title
    assert "no deploys, no incidents" in document.all_text


def test_digest_page_has_the_sections_and_the_full_text() -> None:
    """A section per deploy with its numbers and open incidents, and every full line."""
    reported = DEFAULT_WHEN + timedelta(minutes=20)
    incidents = [
        make_incident(
            number=1,
            acknowledged_at=reported + timedelta(minutes=4),
            fixed_at=reported + timedelta(hours=1),
            fixed_by="bob",
        ),
        make_incident(number=2, text="login loops", owner="nirik"),
        make_incident(number=3, deploy_id=None, service="wiki", text="wiki slow"),
    ]
    digest = digest_of(incidents, [make_plan()])
    document = parse(digest_page(digest, tz=UTC))
    text = document.all_text
    for line in full_lines(digest, UTC):
        assert line in text
    assert "h2" in document.tags
    assert "pkgdb2-2.0" in text
    assert "outside deploys" in text
    assert "all incidents" in text  # totals, as there are two sections
    assert "median 4m, mean 4m (1 of 2 acknowledged)" in text
    assert "median 1h, mean 1h (1 of 2 fixed)" in text
    assert "login loops" in text
    assert "nirik" in text


def test_digest_page_quiet_deploy() -> None:
    """A deploy with no incident: its section says so."""
    digest = digest_of([], [make_plan()])
    text = parse(digest_page(digest, tz=PARIS)).all_text
    assert "pkgdb2-2.0" in text
    assert "no incidents" in text


def test_digest_page_escapes_incident_values() -> None:
    """Incident text, service, reporter and owner are escaped in the tables and the text."""
    incidents = [
        make_incident(number=1, text=EVIL, service=EVIL, reporter_nick=EVIL, owner=EVIL),
        make_incident(number=2, deploy_id=EVIL, text=EVIL),
    ]
    page = digest_page(digest_of(incidents, [make_plan(id=EVIL, title=EVIL)]), tz=UTC)
    assert "<script" not in page
    assert 'onmouseover="' not in page
    document = parse(page)
    assert "script" not in document.tags
    assert EVIL in document.all_text


# -- what the front page shows --------------------------------------------------------------


def test_front_page_shows_todays_incidents_and_older_open_ones_newest_capped(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Today's incidents (in the display timezone), fixed or not, and the ones still open
    from earlier days; an older fixed one is not news.  At most MAX_PAGE_INCIDENTS, the
    newest, by number."""
    now = datetime(2026, 12, 15, 12, tzinfo=UTC)
    midnight_paris = datetime(2026, 12, 14, 23, tzinfo=UTC)
    with Store.open(":memory:") as store:

        def report(at: datetime, fixed: bool = False) -> int:
            number = store.report_incident(
                service="pkgdb2",
                text="x",
                reporter_nick="alice",
                reporter_account=None,
                channel="#c",
                now=at,
            ).number
            if fixed:
                store.fix(number, "bob", None, at + timedelta(minutes=1))
            return number

        old_open = report(midnight_paris - timedelta(days=3))
        report(midnight_paris - timedelta(hours=2), fixed=True)  # yesterday, fixed: left out
        today_fixed = report(midnight_paris + timedelta(minutes=5), fixed=True)
        today_open = report(now - timedelta(hours=1))
        shown = front_page_incidents(store, now, PARIS)
        assert [i.number for i in shown] == [old_open, today_fixed, today_open]
        monkeypatch.setattr(pages, "MAX_PAGE_INCIDENTS", 2)
        capped = front_page_incidents(store, now, PARIS)
        assert [i.number for i in capped] == [today_fixed, today_open]
