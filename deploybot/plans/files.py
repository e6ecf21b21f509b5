"""Plan files: YAML in, :class:`~deploybot.plans.model.Plan` out (and back), per SPEC §1.

Loading reports *every* problem of a file at once, each naming file, line and dotted
key (``roster.shifts[0].from``), and never raises anything but
:class:`~deploybot.errors.PlanError`.  Values are read from the YAML text as written (see
:mod:`deploybot.plans.yamlnodes`): ``release: 2.0`` is the string ``"2.0"``, ``from: 13:00`` is
13:00 quoted or not, ``when`` must carry a UTC offset.

Shifts: ``from``/``to`` are wall-clock ``HH:MM`` on the date of ``when`` in the UTC
offset ``when`` was written with; without ``from`` a shift starts with the window,
without ``to`` it runs to the window's end.  A shift must lie inside the window and end
after it starts.  (So a window that crosses midnight, in that offset, can only have timed
shifts on its first day; untimed shifts still cover it all.)

:func:`dump_plan` writes the canonical file for a plan, with
``load_text(dump_plan(plan)) == plan``.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, timezone
from os import PathLike
from pathlib import Path
from typing import Any

import yaml

from deploybot.durations import format_duration
from deploybot.errors import PlanError, Problem
from deploybot.plans.model import (
    Announcement,
    ApiBreak,
    Consumer,
    FreezeExemption,
    Plan,
    Probe,
    Production,
    Roster,
    Shift,
    Source,
    Staging,
)
from deploybot.plans.yamlnodes import (
    IDENT,
    Field,
    Invalid,
    NodeReader,
    Schema,
    boolean,
    build_with,
    channel,
    clock_time,
    day,
    describe,
    ident,
    json_path,
    list_of,
    moment,
    name,
    nested,
    nick,
    optional_nick,
    optional_word,
    outage_fix,
    positive_duration,
    probe_path,
    read_mapping,
    text,
    url,
    word,
)

__all__ = [
    "LoadResult",
    "dump_plan",
    "load_paths",
    "load_plan",
    "load_text",
    "plan_files",
]

PLAN_SUFFIXES = (".yaml", ".yml")

#: A plan file larger than this is refused before it is parsed (the shipped plans are
#: under 3 KiB; PyYAML's pure-Python parser needs about a second for 256 KiB).
MAX_PLAN_BYTES = 256 * 1024
#: Lists and mappings nested deeper than this are refused (a plan nests 5 deep:
#: roster, shifts, a shift, people); PyYAML's parser slows down with every level.
MAX_PLAN_DEPTH = 20

#: libyaml's loader when PyYAML was built with it, else the pure-Python one.  Both give
#: the same nodes, tags, marks (line and character index) and error messages.
_FAST_LOADER: type[yaml.CSafeLoader] | None = getattr(yaml, "CSafeLoader", None)


@dataclass(frozen=True)
class LoadResult:
    """The good plans of some files (by ``when``, then id) and every problem found."""

    plans: tuple[Plan, ...] = ()
    problems: tuple[Problem, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.problems


# --- schema ------------------------------------------------------------------------------


@dataclass(frozen=True)
class _ShiftDraft:
    """A shift as written; its times become datetimes once the window is known."""

    key: str
    team: str
    people: tuple[str, ...]
    from_: time | None = None
    to: time | None = None

    def line(self, reader: NodeReader, key: str) -> int:
        return reader.lines.get(f"{self.key}.{key}", reader.lines.get(self.key, 0))


@dataclass(frozen=True)
class _RosterDraft:
    channel: str | None = None
    shifts: tuple[_ShiftDraft, ...] = ()
    escalation: tuple[str, ...] = ()


def _shift_draft(_reader: NodeReader, key: str, _node: yaml.Node, values: dict[str, Any]) -> Any:
    return _ShiftDraft(key=key, **values)


# The schema of SPEC §1: one table per mapping, keys in canonical (SPEC) order.
_nicks = list_of(nick, what="nicks")

STAGING = Schema(
    "staging",
    {"url": Field(url), "call_for_testing": Field(day)},
    build_with(Staging),
)
PRODUCTION = Schema("production", {"url": Field(url)}, build_with(Production))
API_BREAK = Schema(
    "an API break",
    {
        "endpoint": Field(name, required=True),
        "change": Field(name, required=True),
        "migration": Field(text),
    },
    build_with(ApiBreak),
)
PROBE = Schema(
    "a probe",
    {
        "path": Field(probe_path, required=True),
        "ignore": Field(list_of(json_path, what="JSON paths")),
    },
    build_with(Probe),
)


def _probe(reader: NodeReader, node: yaml.Node, key: str) -> Probe:
    """A probe: its path alone, or a mapping with ``path`` and ``ignore``."""
    if isinstance(node, yaml.MappingNode):
        probe: Probe = read_mapping(reader, node, key, PROBE)
        return probe
    if isinstance(node, yaml.SequenceNode):
        raise reader.fail(node, key, "expected a path or a mapping (path, ignore), got a list")
    return Probe(probe_path(reader, node, key))


CONSUMER = Schema(
    "a consumer",
    {
        "name": Field(name, required=True),
        "team": Field(optional_word),
        "contact": Field(optional_nick),
    },
    build_with(Consumer),
)
ANNOUNCEMENT = Schema(
    "an announcement",
    {
        "list": Field(word, required=True),
        "date": Field(day, required=True),
        "api_break": Field(boolean),
    },
    build_with(Announcement),
)
SHIFT = Schema(
    "a shift",
    {
        "team": Field(word, required=True),
        "people": Field(list_of(nick, what="nicks", non_empty=True), required=True),
        "from": Field(clock_time, attr="from_"),
        "to": Field(clock_time),
    },
    _shift_draft,
)
ROSTER = Schema(
    "roster",
    {
        "channel": Field(channel),
        "shifts": Field(list_of(nested(SHIFT), what="shifts")),
        "escalation": Field(_nicks),
    },
    build_with(_RosterDraft),
)

FREEZE_EXEMPT = Schema(
    "freeze_exempt",
    {"kind": Field(outage_fix, required=True), "reason": Field(name, required=True)},
    build_with(FreezeExemption),
)


def _check_plan(reader: NodeReader, _key: str, node: yaml.Node, values: dict[str, Any]) -> None:
    """Across keys: the default id, ``when`` to UTC, shifts placed in the window."""
    ok = True
    if "id" not in values:
        stem = Path(reader.file).stem
        if IDENT.fullmatch(stem):
            values["id"] = stem
        else:
            reader.fail(node, "id", f"missing: the file name {stem!r} cannot be the id; add id:")
            ok = False
    if "when" in values and "duration" in values:
        when: datetime = values["when"]
        offset = when.utcoffset() or timedelta(0)
        start = values["when"] = when.astimezone(UTC)
        values["when_offset"] = offset
        try:
            end = start + values["duration"]
            end.astimezone(timezone(offset))  # shift times are placed in this offset
        except OverflowError:
            line = reader.lines.get("duration", 0)
            raise reader.fail(line, "duration", "the window would end after year 9999") from None
        if "roster" in values:
            ok = _place_shifts(reader, values, start, end, offset) and ok
    ok = _check_probes(reader, values) and ok
    if not ok:
        raise Invalid("")


def _check_probes(reader: NodeReader, values: dict[str, Any]) -> bool:
    """Probes need both URLs, and each path once; False on problems."""
    probes: tuple[Probe, ...] = values.get("probes", ())
    ok = True
    missing = [
        f"{where}.url"
        for where, cls in (("staging", Staging), ("production", Production))
        if not values.get(where, cls()).url
    ]
    if probes and missing:
        reader.fail(
            reader.lines.get("probes", 0),
            "probes",
            f"probes need {' and '.join(missing)}: their paths are appended to it",
        )
        ok = False
    seen: dict[str, int] = {}
    for index, probe in enumerate(probes):
        if probe.path in seen:
            reader.fail(
                reader.lines.get(f"probes[{index}]", 0),
                f"probes[{index}]",
                f"{probe.path!r} is already probes[{seen[probe.path]}]",
            )
            ok = False
        seen.setdefault(probe.path, index)
    return ok


def _place_shifts(
    reader: NodeReader, values: dict[str, Any], start: datetime, end: datetime, offset: timedelta
) -> bool:
    """Turn the roster's shift drafts into shifts inside [start, end); False on problems."""
    draft: _RosterDraft = values["roster"]
    shifts = []
    for shift in draft.shifts:
        with contextlib.suppress(Invalid):  # recorded; the other shifts are checked too
            shifts.append(_place(reader, shift, start, end, offset))
    if len(shifts) < len(draft.shifts):
        return False
    values["roster"] = Roster(draft.channel, tuple(shifts), draft.escalation)
    return True


def _place(
    reader: NodeReader, draft: _ShiftDraft, start: datetime, end: datetime, offset: timedelta
) -> Shift:
    zone = timezone(offset)
    local_day = start.astimezone(zone).date()

    def at(clock: time) -> datetime:
        return datetime.combine(local_day, clock, zone).astimezone(UTC)

    begins = start if draft.from_ is None else at(draft.from_)
    ends = end if draft.to is None else at(draft.to)
    from_key, to_key = f"{draft.key}.from", f"{draft.key}.to"
    problems = len(reader.problems)
    if draft.from_ is not None and draft.to is not None and ends <= begins:
        reader.fail(
            draft.line(reader, "to"),
            to_key,
            f"the shift ends at {_hhmm(draft.to)}, not after it starts ({_hhmm(draft.from_)}); "
            f"shift times are on the day of when ({local_day}) and cannot cross midnight",
        )
    else:
        window = f"the window {_local(start, zone)} to {_local(end, zone)}"
        if not start <= begins < end:
            reader.fail(
                draft.line(reader, "from"),
                from_key,
                f"the shift starts at {_local(begins, zone)}, outside {window}",
            )
        if not start < ends <= end:
            reader.fail(
                draft.line(reader, "to"),
                to_key,
                f"the shift ends at {_local(ends, zone)}, outside {window}",
            )
    if len(reader.problems) > problems:
        raise Invalid(draft.key)
    return Shift(
        team=draft.team,
        people=draft.people,
        start=begins,
        end=ends,
        written_from=None if draft.from_ is None else _hhmm(draft.from_),
        written_to=None if draft.to is None else _hhmm(draft.to),
    )


def _hhmm(clock: time) -> str:
    return f"{clock.hour:02d}:{clock.minute:02d}"


def _local(moment: datetime, zone: timezone) -> str:
    """``2014-05-28 13:00 UTC`` or ``2014-05-28 15:00 UTC+02:00``, in the plan's offset."""
    name = "UTC" if zone.utcoffset(None) == timedelta(0) else f"UTC{_offset(zone)}"
    return f"{moment.astimezone(zone):%Y-%m-%d %H:%M} {name}"


def _offset(zone: timezone) -> str:
    minutes = int(zone.utcoffset(None).total_seconds()) // 60
    sign = "-" if minutes < 0 else "+"
    return f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def _source(reader: NodeReader) -> Source:
    """Where each key of the plan is, in file order."""
    lines = sorted(reader.lines.items(), key=lambda entry: entry[1])
    return Source(reader.file, tuple(lines))


def _list(item: Any, what: str) -> Field:
    return Field(list_of(item, what=what))


PLAN = Schema(
    "a plan",
    {
        "id": Field(ident),
        "service": Field(word, required=True),
        "release": Field(text, default=""),
        "title": Field(text, default=""),
        "when": Field(moment, required=True),
        "duration": Field(positive_duration, required=True),
        "major": Field(boolean),
        "leaf": Field(boolean),
        "essential": Field(boolean),
        "owners": Field(_nicks),
        "playbooks": _list(name, "playbooks"),
        "staging": Field(nested(STAGING)),
        "production": Field(nested(PRODUCTION)),
        "api_breaks": _list(nested(API_BREAK), "API breaks"),
        "probes": _list(_probe, "probes (GET paths)"),
        "consumers": _list(nested(CONSUMER), "consumers"),
        "announcements": _list(nested(ANNOUNCEMENT), "announcements"),
        "meetings": _list(day, "dates"),
        "teams": _list(word, "teams"),
        "roster": Field(nested(ROSTER)),
        "freeze_exempt": Field(nested(FREEZE_EXEMPT)),
    },
    build=lambda reader, _key, _node, values: Plan(**values, source=_source(reader)),
    check=_check_plan,
)


# --- loading -----------------------------------------------------------------------------


def load_text(text: str, file: str = "<string>") -> Plan:
    """The plan in ``text``; raise :class:`PlanError` with every problem in it.

    ``file`` names the text in problems, and gives the default id (its name without
    extension).
    """
    reader = NodeReader(file, text)
    node = _compose(reader, text) if _within_limits(reader, text) else None
    if node is not None:
        try:
            plan: Plan = read_mapping(reader, node, "", PLAN)
        except Invalid:
            pass
        else:
            if not reader.problems:
                return plan
    assert reader.problems, "a plan was refused without a reason"
    raise PlanError(sorted(reader.problems, key=lambda problem: problem.line))


def load_plan(path: str | PathLike[str]) -> Plan:
    """The plan in the file at ``path``; raise :class:`PlanError` with every problem."""
    file = str(path)
    try:
        with Path(path).open("rb") as handle:
            data = handle.read(MAX_PLAN_BYTES + 1)  # no more than the limit in memory
        if len(data) > MAX_PLAN_BYTES:
            raise PlanError([_too_large(file)])
        text = data.decode("utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise PlanError([Problem(file, 0, "", _unreadable(error))]) from None
    return load_text(text, file)


def load_paths(paths: Iterable[str | PathLike[str]]) -> LoadResult:
    """Plans from files and directories, e.g. for ``check``: good plans and all problems.

    A directory gives its ``*.yaml``/``*.yml`` files in name order (:func:`plan_files`); a
    plan whose id was already loaded from an earlier file is reported (naming that file)
    and dropped.
    """
    problems: list[Problem] = []
    files: list[Path] = []
    for entry in map(Path, paths):
        if entry.is_dir():
            try:
                files.extend(plan_files(entry))
            except OSError as error:
                problems.append(Problem(str(entry), 0, "", _unreadable(error)))
        elif entry.exists():
            files.append(entry)
        else:
            problems.append(Problem(str(entry), 0, "", "no such file or directory"))
    plans: dict[str, Plan] = {}
    seen: set[Path] = set()
    for file in files:
        if file.resolve() in seen:
            continue
        seen.add(file.resolve())
        try:
            plan = load_plan(file)
        except PlanError as error:
            problems.extend(error.problems)
            continue
        first = plans.get(plan.id)
        if first is not None:
            problems.append(
                Problem(
                    str(file),
                    plan.source.line_of("id"),
                    "id",
                    f"duplicate id {plan.id!r}: already used by {first.source.file}; "
                    "this plan is ignored",
                )
            )
            continue
        plans[plan.id] = plan
    ordered = sorted(plans.values(), key=lambda plan: (plan.when, plan.id))
    return LoadResult(plans=tuple(ordered), problems=tuple(problems))


def plan_files(directory: Path) -> list[Path]:
    """The plan files (``*.yaml``, ``*.yml``) of a directory, by name; raises OSError.

    Hidden files (editor lock and swap files such as ``.#pkgdb2.yaml``) are skipped.
    """
    return sorted(
        (
            path
            for path in directory.iterdir()
            if path.suffix in PLAN_SUFFIXES and not path.name.startswith(".") and path.is_file()
        ),
        key=lambda path: path.name,
    )


def _unreadable(error: OSError | UnicodeDecodeError) -> str:
    if isinstance(error, UnicodeDecodeError):
        return f"is not UTF-8 text (byte {error.start})"
    if isinstance(error, FileNotFoundError):
        return "no such file"
    if isinstance(error, IsADirectoryError):
        return "is a directory, not a plan file"
    return f"cannot be read: {error.strerror or error}"


def _too_large(file: str) -> Problem:
    return Problem(
        file,
        0,
        "",
        f"the file is larger than {MAX_PLAN_BYTES // 1024} KiB: not read (a plan "
        "needs a few KiB; split it or remove what is not part of the plan)",
    )


def _too_deep() -> str:
    return (
        f"lists and mappings nested more than {MAX_PLAN_DEPTH} deep: not read "
        "(a plan nests 5 deep at most)"
    )


def _within_limits(reader: NodeReader, text: str) -> bool:
    """Whether ``text`` is within the size and flow-nesting limits, before any parsing:
    a problem is recorded when it is not."""
    if len(text) > MAX_PLAN_BYTES or len(text.encode("utf-8")) > MAX_PLAN_BYTES:
        reader.problems.append(_too_large(reader.file))
        return False
    line = flow_depth_exceeded(text, MAX_PLAN_DEPTH)
    if line is not None:
        reader.fail(line, "", _too_deep())
        return False
    return True


# The flow-depth scan's tokens: a run of characters that mean nothing to it, or one that may.
_SCAN_TOKEN = re.compile(r"""[^\s#'"\[\]{},:?-]+|.""", re.DOTALL)
_DOUBLE_QUOTED = re.compile(r'"(?:[^"\\]|\\.)*"?', re.DOTALL)
_SINGLE_QUOTED = re.compile(r"'(?:[^']|'')*'?")
_BLANK = ("", " ", "\t", "\r", "\n")  # what follows an indicator: a blank or the end


def flow_depth_exceeded(text: str, limit: int) -> int | None:
    """The 1-based line where ``[`` and ``{`` nest deeper than ``limit``, or None.

    A cheap scan of the text, no YAML parsing: brackets inside quoted scalars, plain
    scalars and comments do not count.  Where a block scalar (``|``, ``>``) holds a line
    starting with ``[`` it may count one too many, which takes more than ``limit`` such
    lines to matter.  Block nesting is checked while parsing (:func:`_compose`).
    """
    depth, line, position = 0, 1, 0
    value_start = True  # where a scalar or a collection may begin
    after_space = True  # where a '#' begins a comment
    while position < len(text):
        quoted = None
        if value_start and text[position] in "'\"":
            pattern = _DOUBLE_QUOTED if text[position] == '"' else _SINGLE_QUOTED
            quoted = pattern.match(text, position)
        if quoted is not None:
            line += quoted.group().count("\n")
            position, value_start, after_space = quoted.end(), False, False
            continue
        token = _SCAN_TOKEN.match(text, position)
        assert token is not None  # "." matches any character
        position, char = token.end(), token.group()
        following = text[position : position + 1]
        if char == "\n":
            line += 1
            value_start = value_start or depth == 0
            after_space = True
        elif char in " \t\r":
            after_space = True
        elif char == "#" and after_space:
            end = text.find("\n", position)
            position = len(text) if end < 0 else end
        elif char in "[{" and (value_start or depth):
            depth += 1
            if depth > limit:
                return line
            value_start, after_space = True, True
        elif char in "]}" and depth:
            depth -= 1
            value_start = after_space = False
        elif char == "," and depth:
            value_start, after_space = True, False
        elif char in ":?-" and (following in _BLANK or (depth and char == ":")):
            value_start = value_start or char == ":"  # '- ' and '? ' keep a line's start
            after_space = False
        else:
            value_start = after_space = False
    return None


def _line(reader: NodeReader, event: yaml.Event) -> int:
    return 0 if event.start_mark is None else reader.line(event.start_mark)


def _compose(reader: NodeReader, text: str) -> yaml.Node | None:
    """The single YAML document of ``text`` as a mapping node, or None (problem recorded)."""
    before = len(reader.problems)
    node = _parse(reader, text)
    if len(reader.problems) > before:
        return None
    if node is None or describe(node) == "nothing":
        reader.fail(0, "", "the file is empty: a plan needs at least service, when and duration")
        return None
    if not isinstance(node, yaml.MappingNode):
        reader.fail(
            node,
            "",
            f"a plan file must be a mapping (service: ..., when: ...), got {describe(node)}",
        )
        return None
    return node


def _parse(reader: NodeReader, text: str) -> yaml.Node | None:
    """The single YAML document of ``text`` (None when empty or on a recorded problem)."""
    loader = _FAST_LOADER or yaml.SafeLoader
    try:
        documents = depth = 0
        for event in yaml.parse(text, Loader=loader):
            if isinstance(event, yaml.CollectionStartEvent):
                depth += 1
                if depth > MAX_PLAN_DEPTH:  # block nesting too (the scan saw only flow)
                    reader.fail(_line(reader, event), "", _too_deep())
                    return None
            elif isinstance(event, yaml.CollectionEndEvent):
                depth -= 1
            elif isinstance(event, yaml.DocumentStartEvent):
                documents += 1
                if documents > 1:
                    reader.fail(
                        _line(reader, event),
                        "",
                        "a second YAML document (---): a plan file holds exactly one plan",
                    )
                    return None
            elif isinstance(event, yaml.AliasEvent):
                reader.fail(
                    _line(reader, event),
                    "",
                    "YAML aliases (*name) are not supported in plan files; write the value out",
                )
                return None
        node = yaml.compose(text, Loader=loader) if documents else None
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        context = f" ({error.context})" if error.context else ""
        line = reader.line(mark) if mark is not None else 0
        reader.fail(line, "", f"YAML syntax error: {error.problem}{context}")
        return None
    except yaml.reader.ReaderError as error:
        line = text.count("\n", 0, error.position) + 1
        character = error.character if isinstance(error.character, int) else ord(error.character)
        reader.fail(line, "", f"contains a character YAML does not allow (U+{character:04X})")
        return None
    except RecursionError:
        reader.fail(0, "", "YAML nested too deeply")
        return None
    return node


def compose_document(reader: NodeReader, text: str) -> yaml.Node | None:
    """The single YAML document of ``text`` (any node; None for an empty text), within the
    plan files' size and nesting limits, without aliases; None with a problem recorded
    otherwise.  For the other YAML files the bot reads (the freezes file)."""
    if not _within_limits(reader, text):
        return None
    before = len(reader.problems)
    node = _parse(reader, text)
    if len(reader.problems) > before:
        return None
    return node


# --- dumping -----------------------------------------------------------------------------


def dump_plan(plan: Plan) -> str:
    """The canonical YAML for ``plan``: SPEC key order, defaults left out, strings quoted.

    ``when`` is written in the offset it was planned in (``Z`` for UTC), so shift times
    (written back only for shifts that had them) mean the same when read again.
    """
    zone = timezone(plan.when_offset)
    out = [f"{key}: {value}" for key, value in _strings(id=plan.id, service=plan.service)]
    out += [f"{key}: {value}" for key, value in _strings(release=plan.release, title=plan.title)]
    out.append(f"when: {plan.when.astimezone(zone):%Y-%m-%dT%H:%M:%S}{_zone_suffix(zone)}")
    out.append(f"duration: {format_duration(plan.duration)}")
    out += [f"{key}: true" for key in ("major", "leaf", "essential") if getattr(plan, key)]
    out += _flow_line("owners", [_q(owner) for owner in plan.owners])
    out += _flow_line("playbooks", [_q(book) for book in plan.playbooks])
    staging = plan.staging
    out += _block(
        "staging", _strings(url=staging.url) + _dates(call_for_testing=staging.call_for_testing)
    )
    out += _block("production", _strings(url=plan.production.url))
    breaks = [
        _strings(endpoint=b.endpoint, change=b.change, migration=b.migration)
        for b in plan.api_breaks
    ]
    out += _items("api_breaks", breaks)
    probes = [
        [*_strings(path=probe.path), *_flow_pair("ignore", [_q(p) for p in probe.ignore])]
        for probe in plan.probes
    ]
    out += _items("probes", probes)
    consumers = [_strings(name=c.name, team=c.team, contact=c.contact) for c in plan.consumers]
    out += _items("consumers", consumers)
    announcements = [
        [*_strings(list=a.list), ("date", a.date.isoformat()), *_flags(api_break=a.api_break)]
        for a in plan.announcements
    ]
    out += _items("announcements", announcements)
    out += _flow_line("meetings", [meeting.isoformat() for meeting in plan.meetings])
    out += _flow_line("teams", [_q(team) for team in plan.teams])
    roster = plan.roster
    roster_lines = [f"  channel: {_q(roster.channel)}"] if roster.channel is not None else []
    roster_lines += _items("shifts", [_shift(shift, zone) for shift in roster.shifts], indent=2)
    roster_lines += _flow_line("escalation", [_q(n) for n in roster.escalation], indent=2)
    if roster_lines:
        out += ["roster:", *roster_lines]
    if plan.freeze_exempt is not None:
        exempt = plan.freeze_exempt
        out += _block("freeze_exempt", _strings(kind=exempt.kind, reason=exempt.reason))
    return "\n".join(out) + "\n"


def _shift(shift: Shift, zone: timezone) -> list[tuple[str, str]]:
    row = [("team", _q(shift.team)), ("people", _flow([_q(p) for p in shift.people]))]
    if shift.written_from is not None:
        row.append(("from", _q(f"{shift.start.astimezone(zone):%H:%M}")))
    if shift.written_to is not None:
        row.append(("to", _q(f"{shift.end.astimezone(zone):%H:%M}")))
    return row


def _strings(**values: str) -> list[tuple[str, str]]:
    """(key, quoted value) for the values that are not empty (the default), in order."""
    return [(key, _q(value)) for key, value in values.items() if value]


def _flags(**values: bool) -> list[tuple[str, str]]:
    return [(key, "true") for key, value in values.items() if value]


def _dates(**values: date | None) -> list[tuple[str, str]]:
    return [(key, value.isoformat()) for key, value in values.items() if value is not None]


def _zone_suffix(zone: timezone) -> str:
    return "Z" if zone.utcoffset(None) == timedelta(0) else _offset(zone)


def _flow(items: list[str]) -> str:
    return "[" + ", ".join(items) + "]"


def _flow_line(key: str, items: list[str], indent: int = 0) -> list[str]:
    return [f"{' ' * indent}{key}: {_flow(items)}"] if items else []


def _flow_pair(key: str, items: list[str]) -> list[tuple[str, str]]:
    return [(key, _flow(items))] if items else []


def _block(key: str, pairs: list[tuple[str, str]]) -> list[str]:
    return [f"{key}:", *(f"  {k}: {v}" for k, v in pairs)] if pairs else []


def _items(key: str, rows: list[list[tuple[str, str]]], indent: int = 0) -> list[str]:
    """A block list of mappings, one ``- key: value`` group per row."""
    if not rows:
        return []
    pad = " " * indent
    out = [f"{pad}{key}:"]
    for row in rows:
        for index, (k, v) in enumerate(row):
            out.append(f"{pad}  {'- ' if index == 0 else '  '}{k}: {v}")
    return out


def _q(value: str) -> str:
    """``value`` as a YAML double-quoted scalar, so no implicit typing can touch it."""
    out = []
    for char in value:
        if char in '"\\':
            out.append("\\" + char)
        elif char.isprintable() and char != "\ufeff":
            out.append(char)
        else:
            code = ord(char)
            out.append(
                f"\\x{code:02x}"
                if code < 0x100
                else f"\\u{code:04x}"
                if code < 0x10000
                else f"\\U{code:08x}"
            )
    return '"' + "".join(out) + '"'
