"""The post-mortem draft (issue 13): a deploy day recorded through the real core (store
under ``tmp_path``, firefighting on a recording transport, bus events through the
reactor) gives a Markdown draft — read back with a CommonMark parser, markdown-it-py —
and an HTML draft whose SVG timeline parses as XML with one bar per incident.  Hostile
report texts (Markdown headers, backticks, ``</svg><script>``) change neither format.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterator
from datetime import UTC, timedelta
from pathlib import Path

import pytest
from markdown_it import MarkdownIt
from markdown_it.token import Token

from deploybot.bus.reactor import BusReactor
from deploybot.config import config_from_mapping
from deploybot.core import Core
from deploybot.deployday.day import DeployDay
from deploybot.deployday.record import DeployRecord, record_of
from deploybot.drift.report import judge
from deploybot.plans.book import PlanBook
from deploybot.postmortem import draft_html, draft_markdown, md, moment_time
from deploybot.store import Store
from deploybot.web.timeline import timeline_svg
from tests.driftdata import PROBES, plan_text
from tests.fakes import RecordingOutbox
from tests.planfactory import badges_plan, utc
from tests.test_busreactor import ansible
from tests.test_commands import Clock, make_core
from tests.test_drift_report import fetch_all

WHEN = utc(2026, 12, 15, 13)
HOSTILE = "## pwned `rm -rf` </svg><script>alert(1)</script> [x](javascript:alert(1)) | *b*"
SVG = "{http://www.w3.org/2000/svg}"
HEADINGS = [
    "Post-mortem draft: badges 1.0 (badges-1.0)",
    "Summary",
    "Timeline",
    "Numbers",
    "API breaks: declared vs observed",
    "Who was affected",
    "Open incidents",
    "What went well",
    "What went wrong",
    "Lessons",
]


@pytest.fixture
def recorded(tmp_path: Path) -> Iterator[Core]:
    """badges-1.0 (13:00–21:00 UTC; API break on /api/packager/acl): the playbook starts
    at 13:02 (firefighting opens, 3 pages); dgilmore acks at 13:05; pingou's page escalates
    at 13:12; #1 "the acl page returns 500 on /api/packager/acl" by dgilmore at 13:20,
    taken and fixed by pingou at 13:30/13:50; #2 with hostile text by alice at 14:00,
    still open; the playbook finishes at 14:30.  The clock stops at 15:00."""
    clock = Clock(WHEN)
    plan = badges_plan(WHEN)
    core = make_core(tmp_path, clock, [plan])
    outbox = RecordingOutbox()
    day = DeployDay(core, outbox)
    reactor = BusReactor(core, outbox, day)
    at = WHEN + timedelta(minutes=2)
    clock.now = at
    reactor.handle(ansible("start", "m-1", at=at), now=at)
    store = core.store
    clock.now = WHEN + timedelta(minutes=5)
    store.ack_pages("dgilmore", clock.now)
    pingou = next(p for p in store.list_pages(plan_id="badges-1.0") if p.target_nick == "pingou")
    store.mark_escalated(pingou.number, WHEN + timedelta(minutes=12))
    first = store.report_incident(
        service="badges",
        text="the acl page returns 500 on /api/packager/acl",
        reporter_nick="dgilmore",
        reporter_account="dgilmore",
        channel="#badges-firefight",
        now=WHEN + timedelta(minutes=20),
        deploy_id="badges-1.0",
        minutes_into_deploy=20,
    )
    store.take(first.number, "pingou", "pingou", WHEN + timedelta(minutes=30))
    store.fix(first.number, "pingou", "pingou", WHEN + timedelta(minutes=50), "rolled back")
    store.report_incident(
        service="badges",
        text=HOSTILE,
        reporter_nick="alice",
        reporter_account=None,
        channel="#badges-firefight",
        now=WHEN + timedelta(hours=1),
        deploy_id="badges-1.0",
        minutes_into_deploy=60,
    )
    done = WHEN + timedelta(hours=1, minutes=30)
    reactor.handle(ansible("complete", "m-2", at=done), now=done)
    clock.now = WHEN + timedelta(hours=2)
    yield core
    store.close()


def record(core: Core) -> DeployRecord:
    return record_of(core, core.plans[0])


def inline_children(tokens: list[Token]) -> list[Token]:
    return [child for token in tokens for child in (token.children or [])]


def test_the_timeline_has_every_event_in_order_with_its_time(recorded: Core) -> None:
    """Plan dates first, then the start, opening, pages, ack, escalation, the incidents'
    lives and the finish, each at the time it was recorded."""
    got = [(m.at, m.kind, m.who, m.text) for m in record(recorded).timeline]
    assert [at for at, *_ in got] == sorted(at for at, *_ in got)
    day = [(at, kind, who, text) for at, kind, who, text in got if at >= WHEN]
    texts = [text for *_, text in day]
    start = texts.index("deploy of badges started by ralph (groups/badges-backend.yml)")
    opened = next(i for i, t in enumerate(texts) if t.startswith("firefighting opened"))
    acked = next(i for i, t in enumerate(texts) if "acknowledged after 3m" in t)
    escalated = next(i for i, t in enumerate(texts) if t.endswith("not acknowledged: escalated"))
    reported = texts.index("#1 reported (badges): the acl page returns 500 on /api/packager/acl")
    taken, fixed = texts.index("#1 taken"), texts.index("#1 fixed: rolled back")
    finished = next(i for i, t in enumerate(texts) if "finished ok" in t)
    assert start < opened < acked < escalated < reported < taken < fixed < finished
    assert day[start][0] == WHEN + timedelta(minutes=2) and day[start][2] == "ralph"
    assert day[acked][0] == WHEN + timedelta(minutes=5) and day[acked][2] == "dgilmore"
    assert day[fixed][0] == WHEN + timedelta(minutes=50) and day[fixed][2] == "pingou"
    assert day[finished][0] == WHEN + timedelta(hours=1, minutes=30)


def test_the_markdown_renders_with_only_its_own_structure(recorded: Core) -> None:
    """Read back with a CommonMark parser: exactly the draft's headings (the report's
    "## pwned" is not one), no raw HTML, no code span and no link from the report, and the
    hostile text is there as text."""
    text = draft_markdown(record(recorded), recorded.config.timezone)
    tokens = MarkdownIt("commonmark").parse(text)
    headings = [
        "".join(c.content for c in tokens[i + 1].children or [])
        for i, t in enumerate(tokens)
        if t.type == "heading_open"
    ]
    assert headings == HEADINGS
    kinds = {t.type for t in tokens} | {t.type for t in inline_children(tokens)}
    assert not kinds & {"html_block", "html_inline", "code_inline", "link_open", "code_block"}
    rendered = MarkdownIt("commonmark").render(text)
    assert "<script" not in rendered and "</svg>" not in rendered
    assert "## pwned `rm -rf` &lt;/svg&gt;&lt;script&gt;alert(1)&lt;/script&gt;" in rendered
    for needed in (
        "Incidents: 2 reported, 1 fixed, 1 open.",
        "Time to repair (median): 30m (1 of 2 fixed).",
        "Pages: 2 sent, 1 acknowledged (median after 3m), 1 escalated.",
        "Declared: /api/packager/acl — returns null instead of [] when the packager has no "
        "ACLs — observed: incident #1.",
        "By team: rel-eng: 1 incident.",
        "Consumer rel-eng compose scripts: #1.",
    ):
        assert needed in rendered.replace("&quot;", '"'), needed
    assert "#2 badges (owner: nobody, open for 1h)" in rendered
    for section in ("What went well", "What went wrong", "Lessons"):
        assert f"<h2>{section}</h2>\n<p><em>(to be written" in rendered


def test_md_escapes_whatever_markdown_reads() -> None:
    hostile = ("# h", "`x`", "*a* _b_", "[l](u)", "<b>", "a | b", "![i](u)", "~~s~~", "1. x")
    for text in (*hostile, "- x", "> q", "2) y", "+ z", "&amp;"):
        for line in (f"- x {md(text)}", f"- {md(text)}"):
            tokens = MarkdownIt("commonmark").parse(line)
            assert [t.type for t in tokens][:2] == ["bullet_list_open", "list_item_open"]
            assert sum(t.type == "list_item_open" for t in tokens) == 1, line
            children = inline_children(tokens)
            assert [t.type for t in children] == ["text"], (line, children)
            assert children[0].content == line.split(" ", 1)[1].replace(md(text), text)


def test_times_are_in_the_zone_with_utc_beside() -> None:
    from zoneinfo import ZoneInfo

    at = utc(2026, 12, 15, 23, 30)
    assert moment_time(at, ZoneInfo("UTC")) == "2026-12-15 23:30 UTC"
    assert (
        moment_time(at, ZoneInfo("Europe/Paris")) == "2026-12-16 00:30 CET (2026-12-15 23:30 UTC)"
    )
    assert moment_time(at, ZoneInfo("Europe/Paris"), day_only=True) == "2026-12-15"


def test_the_svg_parses_as_xml_with_one_bar_per_incident(recorded: Core) -> None:
    """The hostile label is text inside the SVG, not an element."""
    tz = recorded.config.timezone
    svg = timeline_svg(record(recorded), tz, recorded.now())
    root = ET.fromstring(svg)
    assert root.tag == f"{SVG}svg"
    bars = [r for r in root.iter(f"{SVG}rect") if "incident" in r.get("class", "").split()]
    assert [(b.get("data-incident"), b.get("class")) for b in bars] == [
        ("1", "incident fixed"),
        ("2", "incident open"),
    ]
    assert not list(root.iter(f"{SVG}script")) and not list(root.iter("script"))
    labels = [t.text or "" for t in root.iter(f"{SVG}text")]
    assert any("</svg><script>" in label for label in labels)
    assert len(list(root.iter(f"{SVG}line"))) >= 4  # axis, marks, pages


def test_the_html_draft_embeds_the_picture_and_escapes_the_rest(recorded: Core) -> None:
    page = draft_html(record(recorded), recorded.config.timezone, recorded.now())
    assert page.count("<svg ") == 1 and page.count("</svg>") == 1
    assert "<script" not in page
    assert "&lt;/svg&gt;&lt;script&gt;" in page
    start = page.index("<svg ")
    ET.fromstring(page[start : page.index("</svg>") + len("</svg>")])


def test_drift_findings_of_the_latest_run_are_in_the_timeline(tmp_path: Path) -> None:
    """A plan with probes and a stored drift run: the run's summary and findings are in
    the timeline at the time it ran, and in the Markdown draft."""
    plans = tmp_path / "plans"
    plans.mkdir()
    text = plan_text("https://stg.example/pkgdb", "https://prod.example/pkgdb", PROBES)
    (plans / "pkgdb2-2.0.yaml").write_text(text, encoding="utf-8")
    book = PlanBook(plans)
    assert not book.reload().problems
    with Store.open(tmp_path / "db.sqlite3") as store:
        core = Core(
            config=config_from_mapping({"timezone": "UTC"}),
            store=store,
            book=book,
            clock=lambda: utc(2026, 12, 14, 13),
        )
        plan = core.plans[0]
        ran = utc(2026, 12, 14, 12, 55)
        run = judge(plan, fetch_all(plan, ""), ran)
        store.record_drift_run(plan.id, run.ran_at, run.verdict, run.dumps())
        drift = [m for m in record_of(core, plan).timeline if m.kind == "drift"]
        draft = draft_markdown(record_of(core, plan), core.config.timezone)
    assert drift and all(m.at == ran for m in drift)
    assert drift[0].text.startswith("drift probe, latest of 1 run: ")
    assert [m.text for m in drift[1:]] == run.lines(UTC)[1:]
    assert "No drift findings" not in draft
    assert "drift probe, latest of 1 run" in draft
