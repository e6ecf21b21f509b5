"""The ``deploybot`` command line (SPEC §8).

``deploybot check [PATH…]`` validates plans and reports readiness; ``deploybot announce
ID`` prints a plan's announcement e-mail; ``deploybot digest`` prints a day's digest;
``deploybot postmortem ID`` prints a deploy's post-mortem draft (Markdown or HTML);
``deploybot drift ID`` runs a plan's drift probe now, stores the run and prints it.
Expected problems (bad plans, bad config) are printed as they are and give exit status 1;
usage errors give 2 (argparse's convention).  ``deploybot drift`` is a gate for scripts
and its statuses say what it found: 0 no undeclared drift, 1 undeclared drift, 2 the
probe could not run (a probe failed, or the command could not start: unknown plan, no
probes, bad config, unusable database or token file).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import sys
from collections.abc import Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TextIO

from deploybot import __version__
from deploybot.announce import KINDS, announcement, default_kind
from deploybot.config import Config, database_password, load_bot_section, load_config
from deploybot.core import Core, freeze_standing, utc_now
from deploybot.deployday.digest import digest_for_day, full_lines
from deploybot.deployday.record import deploy_record
from deploybot.deployday.roster import NoFirefightChannelError, firefight_channel
from deploybot.drift.report import EXIT_CODES
from deploybot.drift.runs import DriftRunner, Fetch, drift_state
from deploybot.durations import parse_day, plural
from deploybot.errors import ConfigError, DateError, DeploybotError
from deploybot.plans.book import PlanBook
from deploybot.plans.files import load_paths
from deploybot.plans.freezes import FreezeBook
from deploybot.plans.policy import assess, format_readiness
from deploybot.postmortem import draft_html, draft_markdown
from deploybot.store import Store
from deploybot.texts import when_text
from deploybot.web.api import drift_document

DEFAULT_CONFIG = Path("bot.ini")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="deploybot",
        description="An IRC bot that makes risky deployments boring.",
    )
    parser.add_argument("--version", action="version", version=f"deploybot {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    check = commands.add_parser(
        "check",
        help="validate deployment plans and report their readiness",
        description=(
            "Load deployment plans, print each with its readiness under the policy, and "
            "every problem as file:line: key: message. Exit 0 only if there is no problem."
        ),
    )
    check.add_argument(
        "paths",
        nargs="*",
        metavar="PATH",
        help="plan files or directories (default: plans_dir from the config, deploy-plans/)",
    )
    _config_option(
        check, "whose [deploybot] section gives notice_days and timezone ([bot] is checked too)"
    )
    check.set_defaults(run=run_check)

    digest = commands.add_parser(
        "digest",
        help="print the incident digest of a day",
        description="Print the full incident digest of a day from the bot's database.",
    )
    digest.add_argument(
        "--date",
        type=_day,
        metavar="YYYY-MM-DD",
        help="the day, in the configured timezone (default: today)",
    )
    _config_option(digest, "naming the database, plans and timezone")
    digest.set_defaults(run=run_digest)

    announce = commands.add_parser(
        "announce",
        help="print the announcement e-mail of a plan",
        description=(
            "Print an announcement e-mail (To:, Subject:, body) for a plan: the loud, "
            "separate API-break notice, the staging call for testing, or the outage notice."
        ),
    )
    announce.add_argument("plan_id", metavar="ID", help="the plan's id (see deploybot check)")
    announce.add_argument(
        "--kind",
        choices=KINDS,
        help="which announcement (default: api-break when the plan breaks its API, else outage)",
    )
    _config_option(announce, "naming the plans, timezone and firefighting channel pattern")
    announce.set_defaults(run=run_announce)

    postmortem = commands.add_parser(
        "postmortem",
        help="print the post-mortem draft of a deploy",
        description=(
            "Print a post-mortem draft of a deploy from the bot's database and the plan: "
            "summary, timeline, numbers, API breaks declared vs observed, who was affected, "
            "open incidents, and empty sections to fill in."
        ),
    )
    postmortem.add_argument("plan_id", metavar="ID", help="the plan's id (see deploybot check)")
    postmortem.add_argument(
        "--format",
        choices=("md", "html"),
        default="md",
        help="Markdown (default) or an HTML page with the picture of the day",
    )
    _config_option(postmortem, "naming the database, plans, freezes and timezone")
    postmortem.set_defaults(run=run_postmortem)

    drift = commands.add_parser(
        "drift",
        help="run a plan's drift probe now: staging's API answers against production's",
        description=(
            "Ask staging and production every probe of the plan (production twice: what "
            "differs between its answers is noise), store the run in the bot's database "
            "and print the report. Exit 0: no undeclared drift, 1: an undeclared API "
            "break, 2: a probe could not run (or the command could not start)."
        ),
    )
    drift.add_argument("plan_id", metavar="ID", help="the plan's id (see deploybot check)")
    drift.add_argument(
        "--json",
        action="store_true",
        help="print the document GET /api/v1/deployments/ID/drift serves instead",
    )
    _config_option(drift, "naming the plans, database, timezone and probe_* settings")
    drift.set_defaults(run=run_drift)

    run = commands.add_parser(
        "run",
        help="run the bot (IRC, countdowns, incidents)",
        description="Run the bot with the [bot] and [deploybot] sections of a config file.",
    )
    run.add_argument(
        "config",
        nargs="?",
        type=Path,
        default=DEFAULT_CONFIG,
        metavar="bot.ini",
        help="config file (default: ./bot.ini)",
    )
    run.set_defaults(run=run_bot)

    demo = commands.add_parser(
        "demo",
        help="try it out: a local IRC server, the bot and a simulated deploy day",
        description=(
            "A self-contained try-out on 127.0.0.1: a built-in IRC server (or --server), "
            "the bot, and a pkgdb2 deploy day played on the fedmsg bus, sped up to about "
            "2.5 minutes. Prints how to connect an IRC client, then a transcript."
        ),
    )
    demo.add_argument(
        "--server",
        type=_host_port,
        metavar="HOST:PORT",
        help="use this IRC server instead of the built-in one (e.g. a local ngircd)",
    )
    demo.add_argument(
        "--port",
        type=_port,
        default=0,
        help="port of the built-in server on 127.0.0.1 (default: a free one)",
    )
    demo.add_argument(
        "--keep",
        action="store_true",
        help="keep the demo's directory (bot.ini, plan, database, bot.log) at the end",
    )
    # For the tests: seconds per second of the demo's script (1: about 2.5 minutes).
    demo.add_argument("--seconds-per-step", type=_step, default=1.0, help=argparse.SUPPRESS)
    demo.set_defaults(run=run_demo)
    return parser


def run_demo(args: argparse.Namespace, out: TextIO) -> int:
    if args.server is not None and args.port:
        print(
            "deploybot demo: --port is for the built-in server, not with --server", file=sys.stderr
        )
        return 2
    # The demo needs the IRC and bus stacks: loaded only here, as for `run`.
    demo = importlib.import_module("deploybot_plugins.demo")
    status: int = demo.main(args, out)
    return status


def _host_port(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    host = host.removeprefix("[").removesuffix("]")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise argparse.ArgumentTypeError(f"{text!r} is not HOST:PORT (e.g. 127.0.0.1:6667)")
    return host, int(port)


def _port(text: str) -> int:
    if not text.isdigit() or int(text) > 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port (0 to 65535)")
    return int(text)


def _step(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not 0.05 <= value <= 10:
        raise argparse.ArgumentTypeError(f"{text!r}: expected seconds from 0.05 to 10")
    return value


def _config_option(command: argparse.ArgumentParser, what: str) -> None:
    """``--config FILE``: the bot.ini a command reads (``what`` it takes from it)."""
    command.add_argument(
        "--config",
        type=Path,
        metavar="FILE",
        help=f"bot.ini {what} (default: ./bot.ini if it exists)",
    )


def run_bot(args: argparse.Namespace, out: TextIO) -> int:
    # The IRC and scheduling stack is loaded only here: the core never imports it.
    application = importlib.import_module("deploybot_plugins.application")
    status: int = application.run(args.config)
    return status


def _day(text: str) -> date:
    try:
        return parse_day(text)
    except DateError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def run_digest(args: argparse.Namespace, out: TextIO) -> int:
    config = _config(args.config)
    now = datetime.now(UTC)
    today = now.astimezone(config.timezone).date()
    day = args.date or today
    plans = load_paths([config.plans_dir]).plans
    try:
        store = Store.open(config.database, create=False, password=database_password(config))
    except DeploybotError as error:
        print(f"deploybot: {error}", file=sys.stderr)
        return 1
    with store:
        # Today's digest is "so far"; any other day is described whole.
        as_of = now if day == today else None
        digest = digest_for_day(store, plans, day, config.timezone, as_of=as_of)
    for line in full_lines(digest, config.timezone):
        print(line, file=out)
    return 0


def run_announce(args: argparse.Namespace, out: TextIO) -> int:
    config = _config(args.config)
    result = load_paths([config.plans_dir])
    plans = {plan.id: plan for plan in result.plans}
    plan = plans.get(args.plan_id)
    if plan is None:
        known = ", ".join(sorted(plans)) or "none"
        problems = (
            f"; {len(result.problems)} plan problem(s): deploybot check" if result.problems else ""
        )
        print(
            f"deploybot: no plan {args.plan_id!r} in {config.plans_dir} (plans: {known}){problems}",
            file=sys.stderr,
        )
        return 1
    kind = args.kind or default_kind(plan)
    try:
        channel = firefight_channel(plan, config)
        if channel is None:
            raise NoFirefightChannelError(plan, config)
        email = announcement(plan, kind, tz=config.timezone, firefight_channel=channel)
    except DeploybotError as error:
        print(f"deploybot: {error}", file=sys.stderr)
        return 1
    out.write(email.as_text())
    return 0


def run_postmortem(args: argparse.Namespace, out: TextIO) -> int:
    config = _config(args.config)
    result = load_paths([config.plans_dir])
    plan = next((p for p in result.plans if p.id == args.plan_id), None)
    if plan is None:
        known = ", ".join(sorted(p.id for p in result.plans)) or "none"
        print(
            f"deploybot: no plan {args.plan_id!r} in {config.plans_dir} (plans: {known})",
            file=sys.stderr,
        )
        return 1
    freezes = FreezeBook(config.freezes, config.timezone)
    freezes.reload()
    try:
        store = Store.open(config.database, create=False, password=database_password(config))
    except DeploybotError as error:
        print(f"deploybot: {error}", file=sys.stderr)
        return 1
    now = datetime.now(UTC)
    with store:
        record = deploy_record(store, plan, freeze_standing(plan, freezes, store), now)
    if args.format == "html":
        out.write(draft_html(record, config.timezone, now))
    else:
        out.write(draft_markdown(record, config.timezone))
    return 0


#: ``deploybot drift``'s status when it could not run (the verdict ``incomplete``).
DRIFT_CANNOT_RUN = EXIT_CODES["incomplete"]


def run_drift(args: argparse.Namespace, out: TextIO) -> int:
    try:
        config = _config(args.config)
        # The HTTP client is an adapter: loaded only here, as `run` loads the bot.
        adapter = importlib.import_module("deploybot_plugins.drift")
        fetch: Fetch = adapter.ProbeFetcher.from_config(config)  # reads the token files
        book = PlanBook(config.plans_dir)
        report = book.reload()
        plan = book.get(args.plan_id)
        if plan is None:
            known = ", ".join(sorted(p.id for p in book.plans)) or "none"
            problems = report.problems
            hint = f"; {plural(len(problems), 'plan problem')}: deploybot check" if problems else ""
            raise DeploybotError(
                f"no plan {args.plan_id!r} in {config.plans_dir} (plans: {known}){hint}"
            )
        store = Store.open(
            config.database,
            busy_timeout=config.database_busy_timeout,
            password=database_password(config),
        )
        with store:
            core = Core(config=config, store=store, book=book, clock=utc_now)
            run = asyncio.run(DriftRunner(store, fetch, utc_now).run(plan))
            if args.json:
                document = drift_document(core, plan.id)
                out.write(json.dumps(document, ensure_ascii=False, indent=2) + "\n")
            else:
                for line in run.lines(config.timezone):
                    print(line, file=out)
    except DeploybotError as error:  # ConfigError too: a bad config here is status 2
        print(f"deploybot: {error}", file=sys.stderr)
        return DRIFT_CANNOT_RUN
    return run.exit_code


def _config(path: Path | None, *, check_bot: bool = False) -> Config:
    """``[deploybot]`` of ``path`` (default: ./bot.ini if it exists, else the defaults);
    with ``check_bot``, the file's ``[bot]`` and ``[matrix]`` are checked too (an error:
    InvalidConfig)."""
    if path is None and not DEFAULT_CONFIG.is_file():
        return Config.defaults()
    file = path if path is not None else DEFAULT_CONFIG
    config = load_config(file)
    if check_bot:
        load_bot_section(file)
        # the chat adapters validate their own sections (loaded only here and in run)
        importlib.import_module("deploybot_plugins.matrix.settings").load_matrix_settings(file)
    return config


def run_check(args: argparse.Namespace, out: TextIO) -> int:
    config = _config(args.config, check_bot=True)
    paths = args.paths or [config.plans_dir]
    result = load_paths(paths)
    freezes = FreezeBook(config.freezes, config.timezone)
    freeze_problems = freezes.reload()
    # The bot's database, when it exists: freeze breaks, and the drift runs the rule reads.
    wanted = freezes.freezes or any(plan.probes for plan in result.plans)
    store = _existing_store(config) if wanted else None
    for plan in result.plans:
        print(
            f"{plan.id}: {plan.service} {plan.release} — {when_text(plan.when, config.timezone)}"
            f" ({plan.source.file})",
            file=out,
        )
        standing = freeze_standing(plan, freezes, store)
        drift = drift_state(store, plan) if store is not None else None
        readiness = assess(plan, config.notice_days, standing, drift)
        for line in format_readiness(readiness, config.timezone):
            print(f"  {line}", file=out)
    if store is not None:
        store.close()
    for problem in (*result.problems, *freeze_problems):
        print(problem, file=out)
    problems = len(result.problems) + len(freeze_problems)
    print(f"{plural(len(result.plans), 'plan')}, {plural(problems, 'problem')}", file=out)
    return 1 if problems else 0


def _existing_store(config: Config) -> Store | None:
    """The bot's database when it exists (for its freeze breaks and drift runs), else None."""
    try:
        return Store.open(config.database, create=False, password=database_password(config))
    except DeploybotError:
        return None


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        status: int = args.run(args, out)
    except ConfigError as error:
        print(f"deploybot: {error}", file=sys.stderr)
        return 1
    return status


if __name__ == "__main__":
    sys.exit(main())
