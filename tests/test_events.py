"""deploybot.bus.events: every transport's message becomes one BusEvent, or a counted BadMessage."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from deploybot.bus.events import (
    KINDS,
    MAX_DEPTH,
    BadMessage,
    BusEvent,
    from_fedmsg_envelope,
    from_fedmsg_frames,
    from_fedora_messaging,
    from_webhook,
    split_topic,
    thaw,
)
from deploybot.errors import DeploybotError

PREFIX = "org.fedoraproject"
T = "org.fedoraproject.prod.a.b"  # any well-formed topic under the prefix
HEAD = b'{"topic": "org.fedoraproject.prod.a.b", '  # the start of a JSON object with it
SAMPLES_DIR = Path(__file__).parent / "data" / "bus-samples"
SAMPLE_NAMES = sorted(path.name for path in SAMPLES_DIR.glob("*.json"))
FEDMSG_SAMPLES = [name for name in SAMPLE_NAMES if not name.startswith("fedora-messaging.")]
AMQP_SAMPLES = [name for name in SAMPLE_NAMES if name.startswith("fedora-messaging.")]


def load_sample(name: str) -> dict[str, Any]:
    """A sample message as a plain dict, without its ``_source`` note."""
    document: dict[str, Any] = json.loads((SAMPLES_DIR / name).read_text(encoding="utf-8"))
    document.pop("_source")
    return document


def fedmsg_dumps(envelope: Mapping[str, Any]) -> bytes:
    """The body frame as fedmsg writes it (``fedmsg.encoding.dumps``, then UTF-8)."""
    return json.dumps(envelope, sort_keys=True, separators=(",", ":")).encode("utf-8")


def frames(envelope: Mapping[str, Any]) -> tuple[bytes, bytes]:
    return str(envelope["topic"]).encode("utf-8"), fedmsg_dumps(envelope)


def amqp_event(document: Mapping[str, Any]) -> BusEvent:
    """A fedora-messaging-shaped sample decoded as the AMQP adapter will (body as bytes)."""
    return from_fedora_messaging(
        document["topic"],
        json.dumps(document["body"]).encode("utf-8"),
        document.get("headers"),
        document.get("id"),
        prefix=PREFIX,
    )


def kind_of(call: Any, *args: Any, **kwargs: Any) -> str:
    with pytest.raises(BadMessage) as caught:
        call(*args, **kwargs)
    return caught.value.kind


json_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=25,
)
topics = st.sampled_from(
    [
        "org.fedoraproject.prod.ansible.playbook.start",
        "org.fedoraproject.prod.ansible.playbook.complete",
        "org.fedoraproject.stg.ansible.playbook.start",
        "org.fedoraproject.dev.announce.announcement",
        "org.fedoraproject.ansible.playbook.start",
        "org.fedoraproject.prod",
        "org.centos.prod.ansible.playbook.start",
        "org.fedoraproject..x",
        "",
    ]
) | st.text(max_size=40)


# --- the real samples --------------------------------------------------------------------


def test_the_samples_are_here() -> None:
    """The samples are copied into the repository (no ../shared at test time), each with
    its ``_source`` note, and both shapes are present."""
    assert len(FEDMSG_SAMPLES) >= 6
    assert AMQP_SAMPLES == ["fedora-messaging.ansible.playbook.complete.json"]
    for name in SAMPLE_NAMES:
        assert "_source" in json.loads((SAMPLES_DIR / name).read_text(encoding="utf-8"))
    assert (SAMPLES_DIR / "README.md").is_file()


@pytest.mark.parametrize("name", FEDMSG_SAMPLES)
def test_fedmsg_samples_decode_from_envelope_and_frames_alike(name: str) -> None:
    """Each real fedmsg envelope decodes, from the dict and from fedmsg's two ZeroMQ frames,
    to the same event: topic split, body equal to ``msg``, ``msg_id`` and timestamp kept."""
    envelope = load_sample(name)
    from_dict = from_fedmsg_envelope(envelope, prefix=PREFIX)
    from_wire = from_fedmsg_frames(*frames(envelope), prefix=PREFIX)
    assert from_dict == from_wire
    assert from_dict.source == "fedmsg"
    assert from_dict.topic == envelope["topic"]
    environment, _, short = envelope["topic"].removeprefix(PREFIX + ".").partition(".")
    assert (from_dict.environment, from_dict.short_topic) == (environment, short)
    assert thaw(from_dict.body) == envelope["msg"]
    assert from_dict.id == envelope.get("msg_id", "")
    assert from_dict.sent_at == datetime.fromtimestamp(envelope["timestamp"], UTC)


def test_the_ansible_start_sample_in_detail() -> None:
    """The ansible start sample: prod, short topic, 2013-08-06 01:48:55 UTC, no msg_id (old
    fedmsg), and the absolute playbook path in its body."""
    event = from_fedmsg_envelope(load_sample("ansible.playbook.start.json"), prefix=PREFIX)
    assert event.environment == "prod"
    assert event.short_topic == "ansible.playbook.start"
    assert event.id == ""
    assert event.sent_at == datetime(2013, 8, 6, 1, 48, 55, 324270, tzinfo=UTC)
    assert event.body["playbook"] == "/srv/web/infra/ansible/playbooks/groups/badges-backend.yml"


@pytest.mark.parametrize("name", AMQP_SAMPLES)
def test_fedora_messaging_sample_decodes(name: str) -> None:
    """The fedora-messaging sample decodes from body bytes and from a decoded body alike:
    the id from the message id, ``sent_at`` from the ``sent-at`` header."""
    document = load_sample(name)
    from_bytes = amqp_event(document)
    from_mapping = from_fedora_messaging(
        document["topic"], document["body"], document["headers"], document["id"], prefix=PREFIX
    )
    assert from_bytes == from_mapping
    assert from_bytes.source == "fedora-messaging"
    assert from_bytes.short_topic == "ansible.playbook.complete"
    assert from_bytes.environment == "prod"
    assert from_bytes.id == "33659d09-b851-4393-be57-5835fc2863a8"
    assert from_bytes.sent_at == datetime(2026, 11, 27, 9, 17, 36, tzinfo=UTC)
    assert thaw(from_bytes.body) == document["body"]


@pytest.mark.parametrize("name", AMQP_SAMPLES)
def test_webhook_accepts_the_fedora_messaging_shape(name: str) -> None:
    """A webhook POST body is the fedora-messaging shape: the sample, as JSON, decodes to
    the same event as over AMQP (only the source differs)."""
    document = load_sample(name)
    event = from_webhook(json.dumps(document).encode("utf-8"), prefix=PREFIX)
    assert event.source == "webhook"
    amqp = amqp_event(document)
    assert (event.topic, event.id, event.sent_at, thaw(event.body)) == (
        amqp.topic,
        amqp.id,
        amqp.sent_at,
        thaw(amqp.body),
    )


# --- topics ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("topic", "prefix", "expected"),
    [
        (
            "org.fedoraproject.prod.ansible.playbook.start",
            PREFIX,
            ("prod", "ansible.playbook.start"),
        ),
        ("org.fedoraproject.stg.ansible.playbook.end", PREFIX, ("stg", "ansible.playbook.end")),
        ("org.fedoraproject.dev.announce.announcement", PREFIX, ("dev", "announce.announcement")),
        ("org.fedoraproject.prod.a.b", PREFIX + ".", ("prod", "a.b")),
        ("org.fedoraproject.ansible.playbook.start", PREFIX, ("", "ansible.playbook.start")),
        ("org.fedoraproject.test.x", PREFIX, ("", "test.x")),
        ("prod.ansible.playbook.start", "", ("prod", "ansible.playbook.start")),
        ("org.centos.prod.buildsys.tag", "org.centos", ("prod", "buildsys.tag")),
    ],
)
def test_split_topic(topic: str, prefix: str, expected: tuple[str, str]) -> None:
    """The prefix and a known environment are split off; an unknown environment word is
    left in the short topic and the environment is empty."""
    assert split_topic(topic, prefix) == expected


@pytest.mark.parametrize(
    "topic",
    [
        "org.fedoraprojectx.prod.ansible.playbook.start",  # prefix must match whole words
        "org.centos.prod.ansible.playbook.start",
        "org.fedoraproject",
        "org.fedoraproject.prod",
        "org.fedoraproject.prod.",
        "org.fedoraproject.prod..start",
        "org.fedoraproject.prod.ansible playbook",
        "org.fedoraproject.prod.ansible\nplaybook",
        "org.fedoraproject.prod.ansible.pläybook",
        "org.fedoraproject.prod." + "x" * 250,
        "",
    ],
)
def test_split_topic_refuses(topic: str) -> None:
    """Topics outside the prefix, empty words, nothing after the environment, spaces,
    controls, non-ASCII or over 255 characters: ``bad-topic``."""
    assert kind_of(split_topic, topic, PREFIX) == "bad-topic"


# --- the body ----------------------------------------------------------------------------


def test_body_is_a_read_only_deep_copy() -> None:
    """The body cannot be changed, nested objects neither, arrays become tuples, and
    changing the envelope afterwards does not change the event."""
    envelope = load_sample("ansible.playbook.complete.json")
    event = from_fedmsg_envelope(envelope, prefix=PREFIX)
    with pytest.raises(TypeError):
        event.body["playbook"] = "x"  # type: ignore[index]
    results = event.body["results"]
    assert isinstance(results, Mapping)
    with pytest.raises(TypeError):
        results["evil"] = {}  # type: ignore[index]
    envelope["msg"]["userid"] = "mallory"
    assert event.body["userid"] == "ralph"
    listed = from_fedmsg_envelope(
        {"topic": "org.fedoraproject.prod.a.b", "msg": {"x": [1, [2]]}}, prefix=PREFIX
    )
    assert listed.body["x"] == (1, (2,))
    assert thaw(listed.body) == {"x": [1, [2]]}


def test_events_are_hashable_and_compare_by_value() -> None:
    """Events (and so facts) can go in sets; two decodings of one message are equal."""
    envelope = load_sample("nagios.service.state.change.json")
    first = from_fedmsg_envelope(envelope, prefix=PREFIX)
    second = from_fedmsg_frames(*frames(envelope), prefix=PREFIX)
    assert first == second
    assert len({first, second}) == 1


def test_control_characters_are_kept_in_the_body() -> None:
    """CR, LF and NUL in strings are data: kept as they are (the IRC side cleans them)."""
    msg = {"userid": "evil\r\nPRIVMSG #x :hi\x00", "playbook": "a\nb"}
    envelope = {"topic": "org.fedoraproject.prod.ansible.playbook.start", "msg": msg}
    event = from_fedmsg_frames(*frames(envelope), prefix=PREFIX)
    assert event.body == msg


def test_lone_surrogates_are_replaced() -> None:
    r"""``"\ud800"`` is valid JSON but not encodable as UTF-8: it becomes ``?`` so nothing
    downstream (IRC, SQLite, logs) fails to encode the body."""
    body = b'{"topic": "org.fedoraproject.prod.a.b", "id": "1", "body": {"u\\ud800": "x\\udfff"}}'
    event = from_webhook(body, prefix=PREFIX)
    assert thaw(event.body) == {"u?": "x?"}


# --- refusals ----------------------------------------------------------------------------


def test_bad_message_is_an_expected_error_with_a_stable_kind() -> None:
    """BadMessage is a DeploybotError (shown as is), its kind one of KINDS, its text one line
    naming the kind."""
    with pytest.raises(BadMessage) as caught:
        from_fedmsg_frames(b"t", b"{", prefix=PREFIX)
    error = caught.value
    assert isinstance(error, DeploybotError)
    assert error.kind in KINDS
    assert "(not-json)" in str(error)
    assert "\n" not in str(error)


def test_too_large_is_refused_before_parsing() -> None:
    """A body over max_bytes is ``too-large`` even when it is not JSON at all: the size is
    checked before the parser sees it."""
    huge = b"\xff" * 1001
    assert kind_of(from_fedmsg_frames, b"t", huge, prefix=PREFIX, max_bytes=1000) == "too-large"
    assert kind_of(from_webhook, huge, prefix=PREFIX, max_bytes=1000) == "too-large"
    too_large = kind_of(from_fedora_messaging, T, huge, None, None, prefix=PREFIX, max_bytes=1000)
    assert too_large == "too-large"


@pytest.mark.parametrize("depth", [2_000, 100_000, 900_000])
def test_depth_bomb_is_not_json(depth: int) -> None:
    """JSON nested far beyond the parser's limit is ``not-json``, not a crash."""
    bomb = b"[" * depth + b"]" * depth
    assert kind_of(from_fedmsg_frames, b"t", bomb, prefix=PREFIX, max_bytes=2_000_000) == "not-json"
    inner = HEAD + b'"body": ' + b'{"a":' * depth + b"1" + b"}" * depth + b"}"
    assert kind_of(from_webhook, inner, prefix=PREFIX, max_bytes=20_000_000) == "not-json"


def test_parsed_but_too_deep_is_refused() -> None:
    """A body the parser accepts but nested deeper than MAX_DEPTH is ``too-deep``; so is a
    cyclic mapping handed in by an adapter (it would never end)."""
    nested: Any = 1
    for _ in range(MAX_DEPTH + 5):
        nested = [nested]
    envelope = {"topic": "org.fedoraproject.prod.a.b", "msg": {"x": nested}}
    assert kind_of(from_fedmsg_frames, *frames(envelope), prefix=PREFIX) == "too-deep"
    cyclic: dict[str, Any] = {}
    cyclic["self"] = cyclic
    assert kind_of(from_fedmsg_envelope, {"topic": T, "msg": cyclic}, prefix=PREFIX) == "too-deep"


@pytest.mark.parametrize(
    ("body_frame", "kind"),
    [
        (b"", "not-json"),
        (b"{", "not-json"),
        (b"\xff\xfe{}", "not-json"),
        ('{"topic": "é"}'.encode("utf-16"), "not-json"),
        (HEAD + b'"msg": {"x": NaN}}', "not-json"),
        (HEAD + b'"msg": {"x": -Infinity}}', "not-json"),
        (HEAD + b'"msg": {"x": ' + b"9" * 5000 + b"}}", "not-json"),  # over int digits limit
        (HEAD + b'"msg": {"x": 1e400}}', "wrong-type"),
        (b"[]", "not-object"),
        (b'"text"', "not-object"),
        (b"null", "not-object"),
        (b'{"msg": {}}', "missing-field"),
        (b'{"topic": "org.fedoraproject.prod.a.b"}', "missing-field"),
        (HEAD + b'"msg": []}', "wrong-type"),
        (HEAD + b'"msg": "hello"}', "wrong-type"),
        (HEAD + b'"msg": {}, "timestamp": "now"}', "wrong-type"),
        (HEAD + b'"msg": {}, "timestamp": true}', "wrong-type"),
        (HEAD + b'"msg": {}, "timestamp": 1e300}', "wrong-type"),
        (HEAD + b'"msg": {}, "msg_id": 7}', "wrong-type"),
        (b'{"topic": 7, "msg": {}}', "bad-topic"),
        (b'{"topic": "org.centos.prod.a.b", "msg": {}}', "bad-topic"),
    ],
)
def test_fedmsg_refusals(body_frame: bytes, kind: str) -> None:
    """Each malformed fedmsg body frame is refused with its kind (the topic frame matches
    whenever the envelope has a string topic)."""
    try:
        topic = json.loads(body_frame).get("topic", "")
    except (ValueError, AttributeError):
        topic = ""
    topic_frame = topic.encode() if isinstance(topic, str) else b""
    assert kind_of(from_fedmsg_frames, topic_frame, body_frame, prefix=PREFIX) == kind


def test_topic_frame_must_match_the_envelope() -> None:
    """A topic frame that differs from the envelope's topic is ``topic-mismatch`` (a
    subscriber matched on one topic and got another)."""
    envelope = load_sample("ansible.playbook.start.json")
    body = fedmsg_dumps(envelope)
    wrong = b"org.fedoraproject.prod.ansible.playbook.complete"
    assert kind_of(from_fedmsg_frames, wrong, body, prefix=PREFIX) == "topic-mismatch"
    assert kind_of(from_fedmsg_frames, b"\xff", body, prefix=PREFIX) == "topic-mismatch"


def test_signature_hook() -> None:
    """With ``verify``, a message whose check fails — or whose check raises — is
    ``bad-signature``; the check sees the envelope as received, signature included."""
    signed = {"signature": "c2ln", "certificate": "Y2VydA=="}
    envelope = load_sample("ansible.playbook.start.json") | signed
    seen: list[Mapping[str, Any]] = []

    def good(received: Mapping[str, Any]) -> bool:
        seen.append(received)
        return True

    def boom(received: Mapping[str, Any]) -> bool:
        raise KeyError("certificate")

    event = from_fedmsg_frames(*frames(envelope), prefix=PREFIX, verify=good)
    assert event.short_topic == "ansible.playbook.start"
    assert seen == [envelope]
    refused = kind_of(from_fedmsg_envelope, envelope, prefix=PREFIX, verify=lambda _: False)
    assert refused == "bad-signature"
    assert kind_of(from_fedmsg_envelope, envelope, prefix=PREFIX, verify=boom) == "bad-signature"
    assert "signature" not in event.body  # the body is the msg, not the envelope


def test_fedora_messaging_headers_and_ids() -> None:
    """``sent-at`` is read as ISO 8601 (a naive time is UTC, an offset is converted); no
    headers or no id are fine; a bad ``sent-at`` or a non-string id is ``wrong-type``."""
    topic = "org.fedoraproject.prod.ansible.playbook.start"
    plain = from_fedora_messaging(topic, b"{}", None, None, prefix=PREFIX)
    assert (plain.id, plain.sent_at) == ("", None)
    naive = from_fedora_messaging(topic, {}, {"sent-at": "2026-12-15T13:00:00"}, "x", prefix=PREFIX)
    assert naive.sent_at == datetime(2026, 12, 15, 13, tzinfo=UTC)
    paris = from_fedora_messaging(
        topic, {}, {"sent-at": "2026-12-15T14:00:00+01:00"}, "x", prefix=PREFIX
    )
    assert paris.sent_at == datetime(2026, 12, 15, 13, tzinfo=UTC)
    assert paris.sent_at is not None and paris.sent_at.utcoffset() == timedelta(0)
    for headers in ({"sent-at": "yesterday"}, {"sent-at": 12}, ["sent-at"]):
        assert (
            kind_of(from_fedora_messaging, topic, {}, headers, None, prefix=PREFIX) == "wrong-type"
        )
    assert kind_of(from_fedora_messaging, topic, {}, None, 12, prefix=PREFIX) == "wrong-type"
    assert kind_of(from_fedora_messaging, topic, b"[1]", None, None, prefix=PREFIX) == "not-object"
    assert kind_of(from_fedora_messaging, topic, "{}", None, None, prefix=PREFIX) == "wrong-type"
    assert kind_of(from_fedora_messaging, "a.b", {}, None, None, prefix=PREFIX) == "bad-topic"
    assert kind_of(from_fedora_messaging, topic, {1: 2}, None, None, prefix=PREFIX) == "wrong-type"
    odd = {"x": object()}
    assert kind_of(from_fedora_messaging, topic, odd, None, None, prefix=PREFIX) == "wrong-type"
    nan = {"x": float("nan")}
    assert kind_of(from_fedora_messaging, topic, nan, None, None, prefix=PREFIX) == "wrong-type"


@pytest.mark.parametrize(
    ("payload", "kind"),
    [
        ({"topic": T, "msg": {}}, "unknown-field"),
        ({"topic": T, "body": {}, "extra": 1}, "unknown-field"),
        ({"body": {}}, "missing-field"),
        ({"topic": "org.fedoraproject.prod.a.b"}, "missing-field"),
        ({"topic": T, "body": [1]}, "wrong-type"),
        ({"topic": T, "body": {}, "id": 5}, "wrong-type"),
        ({"topic": T, "body": {}, "headers": "x"}, "wrong-type"),
        ({"topic": T, "body": {}, "headers": {"sent-at": "?"}}, "wrong-type"),
        ({"topic": "ansible.playbook.start", "body": {}}, "bad-topic"),
        ({"topic": None, "body": {}}, "bad-topic"),
        ({"topic": T, "body": {}}, "missing-field"),
        ({"topic": T, "body": {}, "id": None}, "wrong-type"),
        ({"topic": T, "body": {}, "id": ""}, "wrong-type"),
        ({"topic": T, "body": {}, "id": "x" * 201}, "wrong-type"),
    ],
)
def test_webhook_refusals(payload: dict[str, Any], kind: str) -> None:
    """Malformed webhook payloads are refused with their kind; unknown keys are refused so
    the sender learns the format; an event without an id (or an empty or over-long one)
    is refused: a replay could not be told from a new event."""
    assert kind_of(from_webhook, json.dumps(payload).encode(), prefix=PREFIX) == kind


def test_webhook_tells_a_fedmsg_sender_to_use_body() -> None:
    """Posting a fedmsg envelope (``msg``) gets an error that names the valid keys and says
    to send ``body``."""
    with pytest.raises(BadMessage) as caught:
        from_webhook(HEAD + b'"msg": {}}', prefix=PREFIX)
    assert "send 'body'" in caught.value.detail
    assert "topic, body, id, headers" in caught.value.detail


def test_details_show_values_shortened_and_on_one_line() -> None:
    """Values from the message appear in a detail as a short repr: a 10 kB topic with
    newlines cannot flood or split a log line."""
    topic = "x\n" * 5000
    with pytest.raises(BadMessage) as caught:
        from_webhook(json.dumps({"topic": topic, "body": {}}).encode(), prefix=PREFIX)
    assert "\n" not in str(caught.value)
    assert len(str(caught.value)) < 300


# --- garbage in, BadMessage or BusEvent out ----------------------------------------------


def decodes_or_refuses(call: Any, *args: Any, **kwargs: Any) -> BusEvent | None:
    try:
        event = call(*args, **kwargs)
    except BadMessage as error:
        assert error.kind in KINDS
        return None
    assert isinstance(event, BusEvent)
    return event


@given(st.binary(max_size=300), st.binary(max_size=2000))
def test_random_bytes(topic_frame: bytes, body: bytes) -> None:
    """Random bytes into every bytes decoder: a BusEvent or a BadMessage, nothing else."""
    decodes_or_refuses(from_fedmsg_frames, topic_frame, body, prefix=PREFIX)
    decodes_or_refuses(from_webhook, body, prefix=PREFIX)
    decodes_or_refuses(
        from_fedora_messaging, topic_frame.decode("latin-1"), body, None, None, prefix=PREFIX
    )


@given(json_values)
def test_random_json_documents(value: Any) -> None:
    """Any JSON document in a fedmsg frame, a webhook or an AMQP body: event or BadMessage."""
    data = json.dumps(value).encode("utf-8")
    decodes_or_refuses(from_fedmsg_frames, b"org.fedoraproject.prod.a.b", data, prefix=PREFIX)
    decodes_or_refuses(from_webhook, data, prefix=PREFIX)
    decodes_or_refuses(
        from_fedora_messaging, "org.fedoraproject.prod.a.b", data, None, None, prefix=PREFIX
    )


envelopes = st.fixed_dictionaries(
    {},
    optional={
        "topic": topics | json_values,
        "msg": st.dictionaries(st.text(max_size=10), json_values, max_size=5) | json_values,
        "timestamp": st.floats() | st.integers() | json_values,
        "msg_id": st.text(max_size=30) | json_values,
        "i": json_values,
        "username": json_values,
        "signature": json_values,
    },
)


@given(envelopes)
def test_random_envelopes(envelope: dict[str, Any]) -> None:
    """Random dicts with fedmsg's keys (any values, NaN and infinities included), as a
    mapping and as frames: a BusEvent or a BadMessage; a decoded one keeps the topic."""
    event = decodes_or_refuses(from_fedmsg_envelope, envelope, prefix=PREFIX)
    if event is not None:
        assert event.topic == envelope["topic"]
        assert event.topic.startswith(PREFIX + ".")
    topic = envelope.get("topic")
    topic_frame = topic.encode("utf-8", "replace") if isinstance(topic, str) else b""
    decodes_or_refuses(
        from_fedmsg_frames, topic_frame, json.dumps(envelope).encode("utf-8"), prefix=PREFIX
    )


@given(
    topics,
    st.dictionaries(st.text(max_size=10), json_values, max_size=5) | json_values,
    st.none() | st.dictionaries(st.sampled_from(["sent-at", "priority"]), json_values | st.text()),
    st.none() | st.text(max_size=10) | st.integers(),
)
def test_random_fedora_messaging(topic: str, body: Any, headers: Any, message_id: Any) -> None:
    """Random AMQP messages (topic, body as mapping or bytes, headers, id): event or
    BadMessage, whatever the types."""
    decodes_or_refuses(from_fedora_messaging, topic, body, headers, message_id, prefix=PREFIX)
    decodes_or_refuses(
        from_fedora_messaging,
        topic,
        json.dumps(body).encode("utf-8"),
        headers,
        message_id,
        prefix=PREFIX,
    )
    payload = {"topic": topic, "body": body, "headers": headers, "id": message_id}
    decodes_or_refuses(from_webhook, json.dumps(payload).encode("utf-8"), prefix=PREFIX)


@given(st.integers(1, 3000), st.sampled_from(["[", '{"a":']))
def test_random_nesting(depth: int, opener: str) -> None:
    """Nesting of any depth, shallow or bomb, in a body: event, ``too-deep`` or ``not-json``."""
    closer = "]" if opener == "[" else "}"
    body = opener * depth + "1" + closer * depth
    text = '{"topic": "org.fedoraproject.prod.a.b", "id": "1", "body": {"x": ' + body + "}}"
    event = decodes_or_refuses(from_webhook, text.encode(), prefix=PREFIX)
    # The body is level 0, so the innermost container is at level ``depth``.
    assert (event is not None) == (depth < MAX_DEPTH)


@pytest.mark.parametrize("depth", [MAX_DEPTH - 1, MAX_DEPTH])
def test_depth_limit_boundary(depth: int) -> None:
    """Containers down to level MAX_DEPTH - 1 under the body are kept; one more is
    ``too-deep``."""
    data = HEAD + b'"id": "1", "body": {"x": ' + b"[" * depth + b"]" * depth + b"}}"
    event = decodes_or_refuses(from_webhook, data, prefix=PREFIX)
    assert (event is not None) == (depth < MAX_DEPTH)


def _shape(value: object) -> object:
    """``value`` with each container's type made explicit, to compare two frozen bodies
    exactly (``==`` alone would not tell a tuple from a list inside a mapping proxy)."""
    if isinstance(value, Mapping):
        return (type(value).__name__, {key: _shape(item) for key, item in value.items()})
    if isinstance(value, tuple | list):
        return (type(value).__name__, [_shape(item) for item in value])
    return (type(value).__name__, value)


#: Text around the UTF-16 surrogate range (lone surrogates included: st.text leaves them out).
near_surrogates = st.text(st.characters(min_codepoint=0xD7F0, max_codepoint=0xE010), max_size=3)


@given(
    st.dictionaries(
        st.text(max_size=10) | near_surrogates, json_values | near_surrogates, max_size=5
    ),
    st.booleans(),
    st.booleans(),
)
def test_frames_freeze_like_the_envelope_walk(
    msg: dict[str, Any], ascii_only: bool, spaced: bool
) -> None:
    """The frame decoder freezes while parsing (fast path) or walks after (surrogates,
    deep nesting); either way the body is exactly what freezing the parsed envelope gives:
    read-only mappings and tuples all the way down, same values."""
    envelope = {"topic": T, "msg": msg}
    data = json.dumps(envelope, ensure_ascii=ascii_only, indent=1 if spaced else None)
    try:
        frame = data.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate with ensure_ascii off: not UTF-8
        return
    from_frames = decodes_or_refuses(from_fedmsg_frames, T.encode(), frame, prefix=PREFIX)
    from_envelope = decodes_or_refuses(from_fedmsg_envelope, json.loads(data), prefix=PREFIX)
    assert (from_frames is None) == (from_envelope is None)
    if from_frames is not None and from_envelope is not None:
        assert _shape(from_frames.body) == _shape(from_envelope.body)
        assert from_frames == from_envelope
