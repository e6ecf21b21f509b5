"""The six kinds of deploybot message: topic, schema name, JSON Schema, and texts.

Standard library only (see the package documentation).  A :class:`Kind` is what the
fedora-messaging class of a message (:mod:`deploybot_messages.messages`) and the bot that
publishes it share:

========================== ============================== ==========================
topic (after the prefix)    schema name (entry point)       sent when
========================== ============================== ==========================
deploybot.deploy.start      deploybot.deploy.start.v1       a planned playbook started
deploybot.deploy.complete   deploybot.deploy.complete.v1    a planned playbook finished
deploybot.incident.new      deploybot.incident.new.v1       ``!broke``
deploybot.incident.fixed    deploybot.incident.fixed.v1     ``!fixed``
deploybot.page.escalated    deploybot.page.escalated.v1     a page went unacknowledged
deploybot.digest            deploybot.digest.v1             the day's incident digest
========================== ============================== ==========================

On the wire the topic is under the bot's ``fedmsg_topic_prefix`` and
``fedmsg_environment``: ``org.fedoraproject.prod.deploybot.deploy.start``.

The schemas are JSON Schema draft 4, as fedora-messaging's own.  They require every key
deploybot sends but allow more (``additionalProperties`` is left open): a consumer with
an older copy of this package must still accept a later version's messages, since
fedora-messaging validates every message it receives with the installed schema.  A new,
incompatible body is a new schema name (``….v2``).

Texts (:meth:`Kind.summary`, :meth:`Kind.text`) are made from the body on the
consumer's side, so they trust nothing in it: every value goes through :func:`one_line`
(no CR, LF, NUL or other control or format character, no Unicode line separator) and is
cut to a sane length; a summary is always exactly one line, and each line of the long
text holds one value.  Nothing here raises on a body that passed its schema.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "APP_NAME",
    "KINDS",
    "SCHEMA_PACKAGE",
    "Kind",
    "kind_of_schema",
    "kind_of_topic",
    "one_line",
]

#: ``Message.app_name`` of every deploybot message.
APP_NAME = "deploybot"
#: The distribution that ships these schemas (the ``fedora_messaging_schema_package``
#: header: what a consumer without them is told to install).
SCHEMA_PACKAGE = "deploybot"

Body = Mapping[str, Any]

# -- text that stays one line ---------------------------------------------------------------

_SPACES = re.compile(r"\s+")
#: Unicode categories removed from outside text: controls (C0, DEL, C1: CR, LF, NUL…),
#: format characters (bidirectional overrides), surrogates, unassigned, line and
#: paragraph separators.
_DROPPED = frozenset({"Cc", "Cf", "Cs", "Cn", "Co", "Zl", "Zp"})


def one_line(value: object, limit: int = 200) -> str:
    """``value`` as one line of at most ``limit`` characters (``…`` marks a cut).

    >>> one_line("the acl page\\r\\nPRIVMSG #x :returns\\x00 500")
    'the acl page PRIVMSG #x :returns 500'
    >>> one_line("x" * 10, 5)
    'xxxx…'
    >>> one_line(None)
    ''
    """
    if value is None:
        return ""
    text = value if isinstance(value, str) else str(value)
    kept = "".join(" " if unicodedata.category(char) in _DROPPED else char for char in text)
    clean = _SPACES.sub(" ", kept).strip()
    return clean if len(clean) <= limit else clean[: limit - 1] + "…"


#: What a username must look like to be listed in ``usernames`` (and so in a
#: ``fedora_messaging_user_NAME`` header): a FAS name or an IRC nick.
_USERNAME = re.compile(r"[A-Za-z0-9_.\-\[\]\\^{}|`]{1,64}")


def _usernames(*names: object) -> list[str]:
    """The distinct usernames among ``names`` (strings only, valid ones), sorted."""
    found: set[str] = set()
    for name in names:
        if isinstance(name, str) and _USERNAME.fullmatch(name):
            found.add(name)
    return sorted(found)


def _duration(seconds: object) -> str:
    """``45s``, ``5m``, ``1h20m``, ``2d3h`` (largest two units); ``?`` if not a number.

    >>> [_duration(s) for s in (45, 300, 4800, 183600, None)]
    ['45s', '5m', '1h20m', '2d3h', '?']
    """
    if isinstance(seconds, bool) or not isinstance(seconds, int | float) or seconds < 0:
        return "?"
    left = int(seconds)
    parts: list[str] = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        count, left = divmod(left, size)
        if count or (unit == "s" and not parts):
            parts.append(f"{count}{unit}")
    return "".join(parts[:2])


def _get(body: Body, *path: str) -> Any:
    """``body[path[0]][path[1]]…``, or None where a step is missing or not an object."""
    value: Any = body
    for key in path:
        if not isinstance(value, Mapping):
            return None
        value = value.get(key)
    return value


def _text(body: Body, *path: str, limit: int = 200) -> str:
    return one_line(_get(body, *path), limit)


def _list(value: object) -> list[Any]:
    return list(value) if isinstance(value, list | tuple) else []


# -- the schemas -----------------------------------------------------------------------------

_DRAFT = "http://json-schema.org/draft-04/schema#"
_STRING: dict[str, Any] = {"type": "string"}
_NAME: dict[str, Any] = {"type": "string", "minLength": 1}
_STRING_OR_NULL: dict[str, Any] = {"type": ["string", "null"]}
_COUNT: dict[str, Any] = {"type": "integer", "minimum": 0}
_NUMBER: dict[str, Any] = {"type": "integer", "minimum": 1}
_SECONDS_OR_NULL: dict[str, Any] = {"type": ["integer", "null"], "minimum": 0}
_TIME: dict[str, Any] = {
    "type": "string",
    "description": "UTC, ISO 8601 with Z, whole seconds",
    "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$",
}
_NAMES: dict[str, Any] = {"type": "array", "items": _NAME}


def _object(description: str, **properties: dict[str, Any]) -> dict[str, Any]:
    """An object schema requiring every property named (more are allowed)."""
    return {
        "type": "object",
        "description": description,
        "properties": properties,
        "required": sorted(properties),
    }


def _body_schema(title: str, description: str, **properties: dict[str, Any]) -> dict[str, Any]:
    return {"$schema": _DRAFT, "id": title, **_object(description, **properties)}


_DEPLOYMENT = _object(
    "the deploy, as its plan says",
    id=_NAME,
    service=_NAME,
    release=_STRING,
    title=_STRING,
    start=_TIME,
    end=_TIME,
    api_breaks={
        "type": "array",
        "items": _object(
            "an API break the plan declares",
            endpoint=_STRING,
            change=_STRING,
            migration=_STRING,
        ),
    },
    owners=_NAMES,
    firefight_channel=_STRING_OR_NULL,
)
_USER = {**_STRING_OR_NULL, "description": "the playbook's userid; null when it gave none"}

DEPLOY_START_SCHEMA = _body_schema(
    "deploybot.deploy.start.v1",
    "A planned deploy began: a playbook the plan lists started on the bus, in its window "
    "(or up to an hour early).",
    deployment=_DEPLOYMENT,
    playbook=_STRING,
    user=_USER,
    started_at=_TIME,
)
DEPLOY_COMPLETE_SCHEMA = _body_schema(
    "deploybot.deploy.complete.v1",
    "A planned deploy's playbook finished.",
    deployment=_DEPLOYMENT,
    playbook=_STRING,
    user=_USER,
    finished_at=_TIME,
    result={
        "enum": ["ok", "failed", "unknown"],
        "description": "unknown: the playbook reported no results",
    },
    failed_hosts={"type": "array", "items": _STRING},
)
_INCIDENT_FIELDS: dict[str, dict[str, Any]] = {
    "number": _NUMBER,
    "service": _NAME,
    "deployment_id": _STRING_OR_NULL,
    "text": _STRING,
    "reporter": _NAME,
    "reporter_account": _STRING_OR_NULL,
    "reported_at": _TIME,
}
INCIDENT_NEW_SCHEMA = _body_schema(
    "deploybot.incident.new.v1",
    "Someone reported an incident (!broke).",
    incident=_object(
        "the incident as recorded",
        **_INCIDENT_FIELDS,
        minutes_into_deploy={"type": ["integer", "null"]},
        channel=_STRING,
    ),
)
INCIDENT_FIXED_SCHEMA = _body_schema(
    "deploybot.incident.fixed.v1",
    "Someone marked an incident fixed (!fixed).",
    incident=_object(
        "the incident as recorded",
        **_INCIDENT_FIELDS,
        owner=_STRING_OR_NULL,
        fixed_by=_NAME,
        fixed_by_account=_STRING_OR_NULL,
        fixed_at=_TIME,
        repair_seconds=_COUNT,
    ),
    note={**_STRING_OR_NULL, "description": "what the fixer said about the fix, if anything"},
)
PAGE_ESCALATED_SCHEMA = _body_schema(
    "deploybot.page.escalated.v1",
    "A page went unacknowledged for page_escalate_after: it was repeated to its target "
    "and sent to the plan's escalation list.",
    page=_object(
        "the page that was not acknowledged",
        number=_NUMBER,
        target=_NAME,
        target_account=_STRING_OR_NULL,
        team=_STRING_OR_NULL,
        message=_STRING,
        sent_at=_TIME,
        deployment_id=_STRING_OR_NULL,
        incident={"type": ["integer", "null"], "minimum": 1},
    ),
    escalated_at=_TIME,
    waited_seconds=_COUNT,
    escalated_to={**_NAMES, "description": "the nicks paged in escalation; [] when none"},
)
_DIGEST_SECTION = _object(
    "one deploy of the day, the incidents outside deploys, or the totals",
    title=_STRING,
    deployment_id=_STRING_OR_NULL,
    reported=_COUNT,
    fixed=_COUNT,
    open=_COUNT,
    median_ack_seconds=_SECONDS_OR_NULL,
    median_repair_seconds=_SECONDS_OR_NULL,
)
DIGEST_SCHEMA = _body_schema(
    "deploybot.digest.v1",
    "The day's incident digest, posted at digest_time (SPEC §4).",
    date={"type": "string", "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2}$"},
    as_of=_TIME,
    complete={"type": "boolean"},
    sections={"type": "array", "items": _DIGEST_SECTION},
    totals=_DIGEST_SECTION,
)


# -- texts ----------------------------------------------------------------------------------


def _deploy_name(body: Body) -> str:
    service = _text(body, "deployment", "service", limit=60)
    release = _text(body, "deployment", "release", limit=30)
    plan = _text(body, "deployment", "id", limit=80)
    name = f"{service} {release}".strip() or "a deploy"
    return f"{name} ({plan})" if plan else name


def _breaks_mark(body: Body) -> str:
    return " ⚠ API BREAK" if _list(_get(body, "deployment", "api_breaks")) else ""


def _deploy_lines(body: Body) -> list[str]:
    lines = [
        f"Deploy: {_deploy_name(body)}",
        f"Title: {_text(body, 'deployment', 'title')}",
        f"Window: {_text(body, 'deployment', 'start')} to {_text(body, 'deployment', 'end')}",
        f"Playbook: {_text(body, 'playbook')}",
        f"User: {_text(body, 'user', limit=64) or '(not given)'}",
    ]
    owners = ", ".join(one_line(o, 64) for o in _list(_get(body, "deployment", "owners")))
    lines.append(f"Owners: {owners or '(none)'}")
    channel = _text(body, "deployment", "firefight_channel", limit=64)
    lines.append(f"Firefighting channel: {channel or '(none)'}")
    breaks = _list(_get(body, "deployment", "api_breaks"))
    lines.append(f"API breaks: {len(breaks) or 'none'}")
    for item in breaks:
        if isinstance(item, Mapping):
            lines.append(
                f"  ⚠ {_text(item, 'endpoint', limit=120)}: {_text(item, 'change')}"
                f" (migration: {_text(item, 'migration') or 'none given'})"
            )
    return lines


def _start_summary(body: Body) -> str:
    user = _text(body, "user", limit=64)
    if user:
        text = f"{user} started the deploy of {_deploy_name(body)}"
    else:
        text = f"the deploy of {_deploy_name(body)} started"
    return one_line(text + _breaks_mark(body), 300)


def _start_text(body: Body) -> str:
    return "\n".join([*_deploy_lines(body), f"Started at: {_text(body, 'started_at')}"])


def _hosts(body: Body, shown: int = 5) -> str:
    hosts = [one_line(host, 80) for host in _list(body.get("failed_hosts"))]
    more = len(hosts) - shown
    listed = ", ".join(hosts[:shown])
    return f"{listed} and {more} more" if more > 0 else listed


def _outcome(body: Body) -> str:
    result = body.get("result")
    if result == "ok":
        return "finished ok"
    if result == "failed":
        count = len(_list(body.get("failed_hosts")))
        word = "host" if count == 1 else "hosts"
        return f"finished with failures on {count} {word}: {_hosts(body)}"
    return "finished, no results reported"


def _complete_summary(body: Body) -> str:
    return one_line(f"the deploy of {_deploy_name(body)} {_outcome(body)}", 300)


def _complete_text(body: Body) -> str:
    return "\n".join(
        [
            *_deploy_lines(body),
            f"Finished at: {_text(body, 'finished_at')}",
            f"Result: {_outcome(body)}",
        ]
    )


def _during(body: Body) -> str:
    deploy = _text(body, "incident", "deployment_id", limit=80)
    return f" during {deploy}" if deploy else ""


def _person(body: Body, nick: str, account: str) -> str:
    """The account when known (a registered identity), else the nick."""
    return _text(body, "incident", account, limit=64) or _text(body, "incident", nick, limit=64)


def _incident_head(body: Body) -> str:
    number = _get(body, "incident", "number")
    service = _text(body, "incident", "service", limit=60)
    return f"incident #{number} on {service}{_during(body)}"


def _new_summary(body: Body) -> str:
    reporter = _text(body, "incident", "reporter", limit=64)
    text = _text(body, "incident", "text", limit=160)
    return one_line(f"{reporter} reported {_incident_head(body)}: {text}", 300)


def _incident_lines(body: Body) -> list[str]:
    account = _text(body, "incident", "reporter_account", limit=64)
    reporter = _text(body, "incident", "reporter", limit=64)
    return [
        f"Incident: #{_get(body, 'incident', 'number')}",
        f"Service: {_text(body, 'incident', 'service')}",
        f"Deploy: {_text(body, 'incident', 'deployment_id') or '(none)'}",
        f"What broke: {_text(body, 'incident', 'text', limit=1000)}",
        f"Reported by: {reporter}" + (f" (account {account})" if account else ""),
        f"Reported at: {_text(body, 'incident', 'reported_at')}",
    ]


def _new_text(body: Body) -> str:
    lines = _incident_lines(body)
    channel = _text(body, "incident", "channel", limit=64)
    if channel:
        lines.append(f"Reported in: {channel}")
    minutes = _get(body, "incident", "minutes_into_deploy")
    if isinstance(minutes, int) and not isinstance(minutes, bool):
        lines.append(f"Minutes into the deploy: {minutes}")
    return "\n".join(lines)


def _fixed_summary(body: Body) -> str:
    fixer = _text(body, "incident", "fixed_by", limit=64)
    after = _duration(_get(body, "incident", "repair_seconds"))
    text = _text(body, "incident", "text", limit=160)
    return one_line(f"{fixer} fixed {_incident_head(body)} after {after}: {text}", 300)


def _fixed_text(body: Body) -> str:
    lines = _incident_lines(body)
    owner = _text(body, "incident", "owner", limit=64)
    lines += [
        f"Owner: {owner or '(nobody took it)'}",
        f"Fixed by: {_text(body, 'incident', 'fixed_by', limit=64)}",
        f"Fixed at: {_text(body, 'incident', 'fixed_at')}",
        f"Time to repair: {_duration(_get(body, 'incident', 'repair_seconds'))}",
    ]
    note = _text(body, "note", limit=1000)
    if note:
        lines.append(f"Note: {note}")
    return "\n".join(lines)


def _escalated_to(body: Body) -> list[str]:
    return [one_line(nick, 64) for nick in _list(body.get("escalated_to"))]


def _page_summary(body: Body) -> str:
    number = _get(body, "page", "number")
    target = _text(body, "page", "target", limit=64)
    waited = _duration(body.get("waited_seconds"))
    escalated = _escalated_to(body)
    outcome = "repeated, no one else to page"
    if escalated:
        outcome = f"escalated to {', '.join(escalated)}"
    return one_line(f"page #{number} to {target} not acknowledged after {waited}: {outcome}", 300)


def _page_text(body: Body) -> str:
    incident = _get(body, "page", "incident")
    return "\n".join(
        [
            f"Page: #{_get(body, 'page', 'number')}",
            f"To: {_text(body, 'page', 'target', limit=64)}",
            f"Team: {_text(body, 'page', 'team', limit=64) or '(none)'}",
            f"Message: {_text(body, 'page', 'message', limit=1000)}",
            f"Sent at: {_text(body, 'page', 'sent_at')}",
            f"Deploy: {_text(body, 'page', 'deployment_id') or '(none)'}",
            f"Incident: {f'#{incident}' if incident is not None else '(none)'}",
            f"Escalated at: {_text(body, 'escalated_at')}, "
            f"after {_duration(body.get('waited_seconds'))}",
            f"Escalated to: {', '.join(_escalated_to(body)) or '(nobody: no escalation list)'}",
        ]
    )


def _counts(section: object) -> str:
    if not isinstance(section, Mapping):
        return "?"
    return (
        f"{section.get('reported')} reported, {section.get('fixed')} fixed, "
        f"{section.get('open')} open"
    )


def _digest_summary(body: Body) -> str:
    day = _text(body, "date", limit=10)
    return one_line(f"incident digest for {day}: {_counts(body.get('totals'))}", 300)


def _digest_text(body: Body) -> str:
    lines = [f"Incident digest for {_text(body, 'date', limit=10)} (as of {_text(body, 'as_of')})"]
    for section in [*_list(body.get("sections")), body.get("totals")]:
        if not isinstance(section, Mapping):
            continue
        ack = _duration(section.get("median_ack_seconds"))
        repair = _duration(section.get("median_repair_seconds"))
        lines.append(
            f"{_text(section, 'title', limit=120)}: {_counts(section)}; "
            f"median time to acknowledge {ack}, to repair {repair}"
        )
    return "\n".join(lines)


# -- the kinds ------------------------------------------------------------------------------


def _no_agent(body: Body) -> str | None:
    return None


def _deploy_agent(body: Body) -> str | None:
    names = _usernames(body.get("user"))
    return names[0] if names else None


def _deploy_users(body: Body) -> list[str]:
    return _usernames(body.get("user"), *_list(_get(body, "deployment", "owners")))


def _incident_agent(nick: str, account: str) -> Callable[[Body], str | None]:
    def agent(body: Body) -> str | None:
        names = _usernames(_get(body, "incident", account) or _get(body, "incident", nick))
        return names[0] if names else None

    return agent


def _new_users(body: Body) -> list[str]:
    incident = _get(body, "incident", "reporter_account") or _get(body, "incident", "reporter")
    return _usernames(incident)


def _fixed_users(body: Body) -> list[str]:
    return _usernames(
        _get(body, "incident", "reporter_account") or _get(body, "incident", "reporter"),
        _get(body, "incident", "fixed_by_account") or _get(body, "incident", "fixed_by"),
        _get(body, "incident", "owner"),
    )


def _page_users(body: Body) -> list[str]:
    target = _get(body, "page", "target_account") or _get(body, "page", "target")
    return _usernames(target, *_list(body.get("escalated_to")))


def _no_users(body: Body) -> list[str]:
    return []


@dataclass(frozen=True)
class Kind:
    """One kind of deploybot message (module documentation)."""

    #: Topic after the prefix and environment: ``deploybot.deploy.start``.
    topic: str
    #: The ``fedora_messaging_schema`` header and entry-point name: ``….v1``.
    schema_name: str
    #: JSON Schema (draft 4) of the body.
    body_schema: Mapping[str, Any]
    _summary: Callable[[Body], str]
    _text: Callable[[Body], str]
    _agent: Callable[[Body], str | None]
    _usernames: Callable[[Body], list[str]]

    def summary(self, body: Body) -> str:
        """One line: what happened (``Message.summary``)."""
        return self._summary(body)

    def text(self, body: Body) -> str:
        """Several lines, one value on each (``str(message)``)."""
        return self._text(body)

    def agent_name(self, body: Body) -> str | None:
        """Who caused it (``Message.agent_name``), None for the bot's own doing."""
        return self._agent(body)

    def usernames(self, body: Body) -> list[str]:
        """Who it concerns (``Message.usernames``): sorted, distinct, valid names only."""
        return self._usernames(body)


KINDS: Mapping[str, Kind] = {
    kind.topic: kind
    for kind in (
        Kind(
            "deploybot.deploy.start",
            "deploybot.deploy.start.v1",
            DEPLOY_START_SCHEMA,
            _start_summary,
            _start_text,
            _deploy_agent,
            _deploy_users,
        ),
        Kind(
            "deploybot.deploy.complete",
            "deploybot.deploy.complete.v1",
            DEPLOY_COMPLETE_SCHEMA,
            _complete_summary,
            _complete_text,
            _deploy_agent,
            _deploy_users,
        ),
        Kind(
            "deploybot.incident.new",
            "deploybot.incident.new.v1",
            INCIDENT_NEW_SCHEMA,
            _new_summary,
            _new_text,
            _incident_agent("reporter", "reporter_account"),
            _new_users,
        ),
        Kind(
            "deploybot.incident.fixed",
            "deploybot.incident.fixed.v1",
            INCIDENT_FIXED_SCHEMA,
            _fixed_summary,
            _fixed_text,
            _incident_agent("fixed_by", "fixed_by_account"),
            _fixed_users,
        ),
        Kind(
            "deploybot.page.escalated",
            "deploybot.page.escalated.v1",
            PAGE_ESCALATED_SCHEMA,
            _page_summary,
            _page_text,
            _no_agent,
            _page_users,
        ),
        Kind(
            "deploybot.digest",
            "deploybot.digest.v1",
            DIGEST_SCHEMA,
            _digest_summary,
            _digest_text,
            _no_agent,
            _no_users,
        ),
    )
}
"""Every kind, by topic (the order above)."""

_BY_SCHEMA: Mapping[str, Kind] = {kind.schema_name: kind for kind in KINDS.values()}


def kind_of_topic(topic: str) -> Kind:
    """The kind of ``deploybot.…`` topic ``topic`` (KeyError for another)."""
    return KINDS[topic]


def kind_of_schema(schema_name: str) -> Kind:
    """The kind whose schema name is ``schema_name`` (KeyError for another)."""
    return _BY_SCHEMA[schema_name]
