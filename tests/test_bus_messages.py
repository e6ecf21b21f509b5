"""What deploybot publishes, read with fedora-messaging's own code (no broker here; the
broker tests are in tests/test_amqp_publish.py).

The samples are made by the bot's builders from real records (tests/busmessages.py),
stored by :class:`~deploybot.publish.BusOutbox` as they go on the wire, then handed to
``fedora_messaging.message.get_message`` — what a fedora-messaging consumer does with a
message from the broker: it finds the class through the ``fedora.messages`` entry points,
validates headers and body, and the tests read ``summary``, ``str()``, ``agent_name``,
``usernames``.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
import tomllib
import unicodedata
from collections.abc import Iterator, Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from fedora_messaging import message as fm
from fedora_messaging.exceptions import ValidationError
from hypothesis import given, settings
from hypothesis import strategies as st

from deploybot.publish import BusMessage, BusOutbox, wire
from deploybot.store import Store, StoredBusMessage
from deploybot_messages import KINDS, kind_of_schema, kind_of_topic, one_line
from deploybot_messages import messages as classes
from tests.busmessages import (
    ENVIRONMENT,
    PREFIX,
    TOPICS,
    WHEN,
    pika_properties,
    sample_messages,
)
from tests.fakes import HandedBusMessages
from tests.planfactory import make_plan

REPO = Path(__file__).resolve().parent.parent
CLASSES = {
    "deploybot.deploy.start": classes.DeployStartV1,
    "deploybot.deploy.complete": classes.DeployCompleteV1,
    "deploybot.incident.new": classes.IncidentNewV1,
    "deploybot.incident.fixed": classes.IncidentFixedV1,
    "deploybot.page.escalated": classes.PageEscalatedV1,
    "deploybot.digest": classes.DigestV1,
}


@pytest.fixture
def samples(tmp_path: Path) -> Iterator[dict[str, BusMessage]]:
    with sample_messages(tmp_path) as messages:
        yield messages


@pytest.fixture
def stored(tmp_path: Path, samples: dict[str, BusMessage]) -> Iterator[list[StoredBusMessage]]:
    """The samples as the bus outbox stores them (in one transaction, as a decision would)."""
    store = Store.open(tmp_path / "db.sqlite3")
    handed = HandedBusMessages()
    outbox = BusOutbox(
        store, prefix=PREFIX, environment=ENVIRONMENT, clock=lambda: WHEN, transport=handed
    )
    with store.transaction():
        for message in samples.values():
            outbox.publish(message)
        assert handed.messages == []  # not before the commit
    assert [m.id for m in handed.messages] == [m.id for m in store.pending_bus_messages()]
    yield handed.messages
    store.close()


def received(message: StoredBusMessage) -> fm.Message:
    """What a fedora-messaging consumer makes of ``message`` (validated)."""
    return fm.get_message(
        message.routing_key, pika_properties(message), message.body.encode("utf-8")
    )


def undeclared_keys(value: Any, schema: Mapping[str, Any], path: str = "") -> list[str]:
    """Keys of ``value`` its schema does not list (the schemas allow more, for later
    versions; deploybot must still declare everything it sends)."""
    found: list[str] = []
    if isinstance(value, Mapping):
        properties = schema.get("properties", {})
        for key, item in value.items():
            if key not in properties:
                found.append(f"{path}.{key}")
            else:
                found += undeclared_keys(item, properties[key], f"{path}.{key}")
    elif isinstance(value, list) and "items" in schema:
        for item in value:
            found += undeclared_keys(item, schema["items"], f"{path}[]")
    return found


# --- the package -----------------------------------------------------------------------


def test_every_kind_is_an_entry_point_fedora_messaging_finds() -> None:
    """pyproject's fedora.messages entry points are the six schema names, and
    fedora-messaging maps each to the class of that topic (and back)."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text("utf-8"))["project"]
    points = project["entry-points"]["fedora.messages"]
    assert sorted(points) == sorted(kind.schema_name for kind in KINDS.values())
    for topic, cls in CLASSES.items():
        kind = kind_of_topic(topic)
        assert fm.get_class(kind.schema_name) is cls
        assert fm.get_name(cls) == kind.schema_name
        assert cls.topic == topic and cls.body_schema == kind.body_schema


def test_every_schema_is_a_valid_draft_4_schema() -> None:
    for kind in KINDS.values():
        jsonschema.Draft4Validator.check_schema(kind.body_schema)
        assert kind.body_schema["id"] == kind.schema_name


def test_the_package_imports_nothing_of_the_bot() -> None:
    """deploybot_messages stands alone: no import of deploybot, its plugins or transports
    anywhere in its source (the e2e test below imports it in a fresh interpreter)."""
    forbidden = ("deploybot", "deploybot_plugins", "irc3", "aiohttp", "zmq", "aio_pika")
    files = sorted((REPO / "deploybot_messages").glob("*.py"))
    assert len(files) == 3
    for path in files:
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                names = [node.module]
            for name in names:
                assert name.split(".")[0] not in forbidden, f"{path.name} imports {name}"


@pytest.mark.e2e  # starts a Python process
def test_the_package_imports_in_a_fresh_interpreter_without_the_bot() -> None:
    """Importing the schemas loads no fedora-messaging; importing the classes loads
    fedora-messaging but nothing of deploybot."""
    program = (
        "import sys\n"
        "import deploybot_messages.schema\n"
        "before = sorted(m for m in sys.modules if m.startswith('fedora_messaging'))\n"
        "import deploybot_messages.messages\n"
        "bot = sorted(m for m in sys.modules if m.split('.')[0] in "
        "('deploybot', 'deploybot_plugins', 'irc3', 'aiohttp', 'aio_pika'))\n"
        "print(before, bot, 'fedora_messaging.message' in sys.modules)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[] [] True"


# --- what a consumer receives ------------------------------------------------------------


def test_every_message_is_read_and_validated_by_fedora_messaging(
    stored: list[StoredBusMessage],
) -> None:
    """Each stored message, as a consumer gets it, is an instance of its class, passes
    the class's schema, and says who and what."""
    assert len(stored) == len(TOPICS)
    for message, topic in zip(stored, TOPICS, strict=True):
        assert message.routing_key == f"{PREFIX}.{ENVIRONMENT}.{topic}"
        got = received(message)
        assert type(got) is CLASSES[topic]
        got.validate()
        assert got.id == message.message_id
        assert got.app_name == "deploybot"
        assert "\n" not in got.summary and got.summary
        assert len(str(got).splitlines()) >= 3
    summaries = [received(message).summary for message in stored]
    assert summaries == [
        "pingou started the deploy of pkgdb2 2.0 (pkgdb2-2.0) ⚠ API BREAK",
        "the deploy of pkgdb2 2.0 (pkgdb2-2.0) finished with failures on 1 host: "
        "pkgdb01.phx2.fedoraproject.org",
        "dgilmore reported incident #1 on pkgdb2 during pkgdb2-2.0: the acl page returns 500",
        "pingou fixed incident #1 on pkgdb2 during pkgdb2-2.0 after 15m: the acl page returns 500",
        "page #1 to tflink not acknowledged after 10m: escalated to nirik",
        "incident digest for 2026-12-15: 1 reported, 1 fixed, 0 open",
    ]
    agents = [received(message).agent_name for message in stored]
    assert agents == ["pingou", "pingou", "dgilmore", "pingou", None, None]
    users = [received(message).usernames for message in stored]
    owners = sorted({"pingou", *make_plan().owners})
    assert users == [owners, owners, ["dgilmore"], ["dgilmore", "pingou"], ["nirik", "tflink"], []]


def test_every_key_sent_is_declared_in_the_schema(samples: dict[str, BusMessage]) -> None:
    for topic, message in samples.items():
        kind = kind_of_topic(topic)
        jsonschema.validate(dict(message.body), kind.body_schema)
        assert undeclared_keys(message.body, kind.body_schema) == [], topic


def test_a_body_without_a_required_key_is_refused(stored: list[StoredBusMessage]) -> None:
    """The consumer's validation is real: the same message without ``incident.number``
    (or with a number as text) is refused by fedora-messaging."""
    new = stored[2]
    body = json.loads(new.body)
    del body["incident"]["number"]
    with pytest.raises(ValidationError):
        fm.get_message(new.routing_key, pika_properties(new), json.dumps(body).encode())
    body["incident"]["number"] = "1"
    with pytest.raises(ValidationError):
        fm.get_message(new.routing_key, pika_properties(new), json.dumps(body).encode())


def test_the_wire_form_is_what_fedora_messaging_itself_would_send(
    stored: list[StoredBusMessage],
) -> None:
    """Body bytes, properties and headers equal those of the same class's own message
    (``Message._build_properties``, ``_encoded_body``) but for ``sent-at`` (ours: the
    decision's time), the message id (uuid4 each) and ``fedora_messaging_schema_package``,
    which fedora-messaging cannot derive for a module not named like its distribution:
    ours says ``deploybot``, the package to install for the schemas."""
    for message, topic in zip(stored, TOPICS, strict=True):
        body = json.loads(message.body)
        severity = message.headers["fedora_messaging_severity"]
        assert isinstance(severity, int)
        theirs = CLASSES[topic](body=body, severity=severity)
        assert theirs._encoded_body == message.body.encode("utf-8")
        ours = pika_properties(message)
        for name in ("content_type", "content_encoding", "delivery_mode", "priority"):
            assert getattr(ours, name) == getattr(theirs._properties, name), name
        their_headers = {k: v for k, v in theirs._headers.items() if k != "sent-at"}
        our_headers = {k: v for k, v in message.headers.items() if k != "sent-at"}
        assert our_headers.pop("fedora_messaging_schema_package") == "deploybot"
        assert our_headers == their_headers
        assert message.headers["sent-at"] == "2026-12-15T13:00:00+00:00"
        assert len(message.message_id) == 36


def test_the_usernames_are_filter_headers(stored: list[StoredBusMessage]) -> None:
    (fixed,) = [m for m in stored if m.routing_key.endswith("incident.fixed")]
    users = sorted(k for k in fixed.headers if k.startswith("fedora_messaging_user_"))
    assert users == ["fedora_messaging_user_dgilmore", "fedora_messaging_user_pingou"]


def test_severity_follows_what_happened(stored: list[StoredBusMessage]) -> None:
    severities = [m.headers["fedora_messaging_severity"] for m in stored]
    assert severities == [fm.INFO, fm.WARNING, fm.WARNING, fm.INFO, fm.WARNING, fm.INFO]


# --- texts stay one line -----------------------------------------------------------------

_NASTY = st.text(
    alphabet=st.sampled_from(
        ["a", " ", "\r", "\n", "\x00", "\x85", "\u2028", "\u2029", "\u202e", "\t", "é", "#"]
    ),
    max_size=40,
)


def _strings_replaced(value: Any, text: str) -> Any:
    """``value`` with every string (but times and dates, kept valid) replaced by ``text``."""
    if isinstance(value, Mapping):
        return {
            key: item
            if key in {"start", "end", "date", "as_of"} or key.endswith("_at")
            else _strings_replaced(item, text)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [_strings_replaced(item, text) for item in value]
    if isinstance(value, str):
        return text
    return value


def _hostile(char: str) -> bool:
    return char in "\r\n\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029" or unicodedata.category(char) in {
        "Cc",
        "Cf",
        "Zl",
        "Zp",
    }


@settings(max_examples=60, deadline=None)
@given(text=_NASTY)
def test_summaries_are_one_line_and_texts_keep_their_lines_whatever_the_values(
    tmp_path_factory: pytest.TempPathFactory, text: str
) -> None:
    """Every string of every sample body replaced by text full of CR, LF, NUL, NEL,
    Unicode line separators and bidi overrides: the summary is still one line without
    them, and the long text has the lines it has with the same values cleaned."""
    with sample_messages(tmp_path_factory.mktemp("nasty")) as samples:
        for topic, message in samples.items():
            kind = kind_of_topic(topic)
            clean = _strings_replaced(message.body, one_line(text))
            nasty = _strings_replaced(message.body, text)
            summary = kind.summary(nasty)
            assert len(summary.splitlines()) <= 1
            assert not any(_hostile(char) for char in summary), repr(summary)
            assert summary == kind.summary(clean)
            lines = kind.text(nasty).splitlines()
            assert lines == kind.text(clean).splitlines(), topic
            assert not any(_hostile(char) for line in lines for char in line)


def test_one_line_cuts_and_cleans() -> None:
    assert one_line("a\r\nb\u2028c\x00d\u202ee", 50) == "a b c d e"
    assert one_line("y" * 300) == "y" * 199 + "…"


def test_texts_do_not_raise_on_a_minimal_valid_body() -> None:
    """A body with only what the schema requires, every list empty, every nullable
    null (what an older or other publisher could send)."""
    for kind in KINDS.values():
        body = _minimal(kind.body_schema)
        jsonschema.validate(body, kind.body_schema)
        assert kind.summary(body) and kind.text(body)
        kind.agent_name(body)
        kind.usernames(body)


def _minimal(schema: Mapping[str, Any]) -> Any:
    kind = schema.get("type")
    if "enum" in schema:
        return schema["enum"][-1]
    if isinstance(kind, list):
        return None
    if kind == "object":
        return {key: _minimal(schema["properties"][key]) for key in schema.get("required", [])}
    if kind == "array":
        return []
    if kind == "integer":
        return schema.get("minimum", 0)
    if kind == "boolean":
        return False
    if "pattern" in schema:
        return "2026-12-15" if "T" not in schema["pattern"] else "2026-12-15T13:00:00Z"
    return "x"


def test_kind_lookups() -> None:
    assert kind_of_schema("deploybot.digest.v1") is kind_of_topic("deploybot.digest")
    with pytest.raises(KeyError):
        kind_of_topic("bodhi.update.comment")


def test_wire_puts_the_topic_under_prefix_and_environment() -> None:
    routing_key, headers, body = wire(
        BusMessage("deploybot.digest", {"date": "2026-12-15"}),
        prefix="org.centos.",
        environment="stg",
        now=WHEN + timedelta(microseconds=5),
    )
    assert routing_key == "org.centos.stg.deploybot.digest"
    assert headers["sent-at"] == "2026-12-15T13:00:00+00:00"
    assert body == '{"date": "2026-12-15"}'
