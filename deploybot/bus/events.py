"""Bus events: one internal type for every way a deploy event reaches the bot (SPEC §5).

The transports (fedmsg over ZeroMQ, fedora-messaging over AMQP, the HTTP webhook) live
outside the core; they hand what they received to one of the decoders here and get a
:class:`BusEvent` back, or a :class:`BadMessage` whose ``kind`` they count and log
(see :class:`~deploybot.bus.rules.BusStats`).  Decoders never raise anything else for
any input, however malformed.

The wire formats
    **fedmsg** (ZeroMQ PUB/SUB): a two-frame message ``[topic, body]``.  The topic frame is
    the UTF-8 topic (ZeroMQ subscriptions match on it); the body frame is the *envelope*,
    UTF-8 JSON written by ``fedmsg.encoding.dumps`` (the standard ``json`` encoder with
    ``sort_keys=True`` and compact separators; datetimes already turned into epoch
    seconds)::

        {"topic": "org.fedoraproject.prod.ansible.playbook.start", "msg": {...},
         "timestamp": 1375753735.3, "msg_id": "2014-…", "i": 1, "username": "root",
         "crypto": "x509", "signature": "…", "certificate": "…"}

    ``topic`` and ``msg`` (an object) are required; ``timestamp`` (epoch seconds) and
    ``msg_id`` are optional — old messages lack ``msg_id``.  The topic frame must equal
    the envelope's ``topic`` (``topic-mismatch`` otherwise).

    **fedora-messaging** (AMQP): routing key = topic, message id in the AMQP properties,
    ``headers`` (``sent-at``: ISO 8601 time of sending) and a JSON body, which is the
    old ``msg``.

    **Webhook** (``POST /api/v1/events``): the body is one JSON object in the
    fedora-messaging shape, ``{"topic": str, "body": object, "id": str,
    "headers"?: object}``; any other top-level key is refused (``unknown-field``), so a
    sender that posts a fedmsg envelope (``msg`` instead of ``body``) is told so.  The
    ``id`` is required (``missing-field``; 1 to :data:`MAX_WEBHOOK_ID` characters, else
    ``wrong-type``): it is what makes a replayed request recognisable.  The HTTP layer
    checks the HMAC signature before calling :func:`from_webhook`.

Topics
    ``PREFIX.ENV.SHORT`` e.g. ``org.fedoraproject.prod.ansible.playbook.start``; see
    :func:`split_topic`.  A topic is 1–255 printable ASCII characters without spaces
    (AMQP routing keys are at most 255 bytes), made of non-empty dot-separated words.

Limits
    Bytes longer than ``max_bytes`` are refused before parsing (``too-large``).  JSON must
    be UTF-8 (``not-json`` otherwise); ``NaN``/``Infinity`` and numbers that overflow a
    float are refused.  JSON nested so deeply that the parser gives up (a depth bomb,
    ``RecursionError``) is ``not-json``; a parsed value nested deeper than
    :data:`MAX_DEPTH` is ``too-deep`` (this also stops a cyclic mapping handed in by an
    adapter).  Lone UTF-16 surrogates in strings (``"\\ud800"``, valid JSON but not
    encodable as UTF-8) are replaced by ``?``.  Other strings are kept exactly, including
    CR, LF and NUL: the body is data, and whatever shows it on IRC cleans it
    (:mod:`deploybot.lines`).

The body
    :attr:`BusEvent.body` is a deep-frozen copy: objects are read-only mappings
    (:class:`types.MappingProxyType`), arrays are tuples, and scalars are ``str``,
    ``int``, ``float``, ``bool`` or ``None``.  :func:`thaw` gives back plain JSON-ready
    ``dict``/``list`` values (e.g. for the API or the store).
"""

from __future__ import annotations

import functools
import json
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any, Literal, NoReturn, get_args

from deploybot.errors import DeploybotError

__all__ = [
    "DEFAULT_MAX_BYTES",
    "ENVIRONMENTS",
    "KINDS",
    "MAX_DEPTH",
    "MAX_WEBHOOK_ID",
    "BadKind",
    "BadMessage",
    "BusEvent",
    "Source",
    "Verifier",
    "from_fedmsg_envelope",
    "from_fedmsg_frames",
    "from_fedora_messaging",
    "from_webhook",
    "split_topic",
    "thaw",
]

#: Why a message was dropped; stable strings, used as counter and log keys.
BadKind = Literal[
    "not-json",  # not UTF-8, not JSON, NaN/Infinity, or nested beyond the parser's limit
    "not-object",  # the document is JSON but not an object
    "missing-field",  # a required key is absent
    "wrong-type",  # a key has a value of the wrong type (or out of range)
    "unknown-field",  # a webhook payload has a key the format does not define
    "too-large",  # more than max_bytes
    "too-deep",  # parsed, but nested deeper than MAX_DEPTH
    "bad-topic",  # not a well-formed topic, or not under the configured prefix
    "topic-mismatch",  # fedmsg topic frame differs from the envelope's topic
    "wrong-frames",  # a fedmsg ZeroMQ message without exactly two frames [topic, body]
    "bad-signature",  # the signature check (when enabled) refused the message
]
KINDS: tuple[BadKind, ...] = get_args(BadKind)

Source = Literal["fedmsg", "fedora-messaging", "webhook"]

#: Environments a topic may name after the prefix (fedmsg's own list).
ENVIRONMENTS = ("prod", "stg", "dev")

DEFAULT_MAX_BYTES = 1_000_000
#: Longest ``id`` a webhook event may have.
MAX_WEBHOOK_ID = 200
#: Deepest nesting kept in a body (real messages nest fewer than ten levels).
MAX_DEPTH = 64

#: A signature check for fedmsg envelopes (e.g. ``fedmsg.crypto.validate`` bound to its
#: config): given the envelope as received, True when the signature is good.
Verifier = Callable[[Mapping[str, Any]], bool]

_TOPIC = re.compile(r"[!-~]{1,255}")
_BYTES = (bytes, bytearray, memoryview)
_SHOWN = 80


class BadMessage(DeploybotError):
    """A message that cannot become a :class:`BusEvent`; ``kind`` is one of :data:`KINDS`.

    ``detail`` is one line of at most a few hundred characters: values from the message
    appear as (shortened) ``repr``, never raw.
    """

    def __init__(self, kind: BadKind, detail: str) -> None:
        self.kind: BadKind = kind
        self.detail = detail
        super().__init__(f"bad bus message ({kind}): {detail}")


@dataclass(frozen=True)
class BusEvent:
    """One message from the bus (or the webhook), whatever transport carried it.

    ``topic`` is the full topic; ``short_topic`` and ``environment`` come from
    :func:`split_topic` (``environment`` is ``""`` when the word after the prefix is not
    one of :data:`ENVIRONMENTS`).  ``body`` is the deep-frozen message body (the fedmsg
    ``msg``); ``id`` is the fedmsg ``msg_id`` or the fedora-messaging message id (``""``
    when there is none); ``sent_at`` is when the sender says it sent the message (aware
    UTC), or None when it does not say.  ``body`` takes no part in hashing (mappings are
    not hashable) but does in equality.
    """

    topic: str
    short_topic: str
    environment: str
    body: Mapping[str, object] = field(hash=False)
    id: str
    sent_at: datetime | None
    source: Source


# --- helpers -----------------------------------------------------------------------------


def _show(value: object) -> str:
    """A shortened ``repr`` of a value from a message, safe for a one-line log."""
    text = repr(value)
    return text if len(text) <= _SHOWN else text[: _SHOWN - 1] + "…"


def _type_name(value: object) -> str:
    """The JSON name of a value's type (``object``, ``array``…), else its Python name."""
    if isinstance(value, Mapping):
        return "object"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    names = {list: "array", tuple: "array", str: "string", type(None): "null"}
    return names.get(type(value), type(value).__name__)


def _bad(kind: BadKind, detail: str) -> NoReturn:
    raise BadMessage(kind, detail)


def _reject_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not JSON")


def _finite_float(text: str) -> float:
    """A JSON number with a fraction or exponent, refused when it overflows a float."""
    value = float(text)
    if math.isinf(value):
        _bad("wrong-type", f"{_show(text)} is not a finite JSON number")
    return value


def _frozen_array(items: list[object]) -> tuple[object, ...]:
    return tuple(_frozen_array(item) if type(item) is list else item for item in items)


def _frozen_object(pairs: dict[str, object]) -> Mapping[str, object]:
    """The decoder's object hook when the document has arrays: they become tuples (objects
    inside them were frozen already: the parser builds inner values first)."""
    for key, value in pairs.items():
        if type(value) is list:
            pairs[key] = _frozen_array(value)
    return MappingProxyType(pairs)


#: Parsers shared by every call (building one per call costs as much as a small parse).
#: ``_PLAIN`` gives dicts and lists; the other two give the frozen body directly.
_PLAIN = json.JSONDecoder(parse_constant=_reject_constant, parse_float=_finite_float)
_FROZEN_NO_ARRAYS = json.JSONDecoder(
    object_hook=MappingProxyType, parse_constant=_reject_constant, parse_float=_finite_float
)
_FROZEN = json.JSONDecoder(
    object_hook=_frozen_object, parse_constant=_reject_constant, parse_float=_finite_float
)


def _clean_text(text: str) -> str:
    """``text``, with lone surrogates (not encodable as UTF-8) replaced by ``?``."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "replace").decode("utf-8")
    return text


def _freeze(value: object, where: str, depth: int = 0) -> object:
    """A deep, read-only copy of a JSON-like value; :class:`BadMessage` if it is not one."""
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, str):
        return _clean_text(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            _bad("wrong-type", f"{where}: {value!r} is not a JSON number")
        return value
    if depth >= MAX_DEPTH:
        _bad("too-deep", f"{where}: nested deeper than {MAX_DEPTH} levels")
    if isinstance(value, Mapping):
        frozen: dict[str, object] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                _bad("wrong-type", f"{where}: key {_show(key)} is not a string")
            frozen[_clean_text(key)] = _freeze(item, where, depth + 1)
        return MappingProxyType(frozen)
    if isinstance(value, list | tuple):
        return tuple(_freeze(item, where, depth + 1) for item in value)
    _bad("wrong-type", f"{where}: {type(value).__name__} is not a JSON value")


def _freeze_object(value: object, where: str) -> Mapping[str, object]:
    if not isinstance(value, Mapping):
        _bad("wrong-type", f"{where} must be an object, not {_type_name(value)}")
    frozen = _freeze(value, where)
    assert isinstance(frozen, Mapping)
    return frozen


def thaw(value: object) -> Any:
    """A plain, mutable, JSON-serialisable copy of a frozen body (mappings → ``dict``,
    tuples → ``list``)."""
    if isinstance(value, Mapping):
        return {key: thaw(item) for key, item in value.items()}
    if isinstance(value, tuple | list):
        return [thaw(item) for item in value]
    return value


def _json_text(data: bytes, max_bytes: int, what: str) -> str:
    """The text of UTF-8 JSON bytes, refusing oversized or non-UTF-8 input."""
    if not isinstance(data, _BYTES):
        _bad("wrong-type", f"{what} must be bytes, not {type(data).__name__}")
    if len(data) > max_bytes:
        _bad("too-large", f"{what} is {len(data)} bytes, more than {max_bytes}")
    try:
        return bytes(data).decode("utf-8")
    except UnicodeDecodeError as error:
        _bad("not-json", f"{what} is not UTF-8 (byte {error.start})")


def _parse(decoder: json.JSONDecoder, text: str, what: str) -> object:
    try:
        if text[:1] == "{" and text[-1:] == "}":  # no white space around: decode's two
            document, end = decoder.raw_decode(text)  # regex scans are not needed
            if end == len(text):
                return document
        return decoder.decode(text)
    except RecursionError:
        _bad("not-json", f"{what} is nested too deeply to parse")
    except ValueError as error:  # JSONDecodeError, NaN/Infinity, huge integers
        _bad("not-json", f"{what}: {_show(str(error))}")


def _load_object(data: bytes, max_bytes: int, what: str) -> Mapping[str, Any]:
    """Parse UTF-8 JSON bytes that must hold an object, as plain dicts and lists."""
    document = _parse(_PLAIN, _json_text(data, max_bytes, what), what)
    if not isinstance(document, dict):
        _bad("not-object", f"{what} is JSON {_type_name(document)}, not an object")
    return document


def _load_frozen(data: bytes, max_bytes: int, what: str) -> Mapping[str, Any]:
    """Parse UTF-8 JSON bytes that must hold an object, deep-frozen as :func:`_freeze`
    would freeze it.

    Most messages are frozen by the parser itself (its object hook), which is several
    times cheaper than a walk afterwards.  Only when the text could need the walk's
    checks — an escaped surrogate (``\\ud…``) or more brackets than :data:`MAX_DEPTH`
    (the nesting is at most their number) — is it parsed plainly and then walked.  (This
    runs for every message on the bus: the common case is kept to a few C calls.)"""
    if type(data) is bytes and len(data) <= max_bytes:
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            text = _json_text(data, max_bytes, what)  # its error
    else:
        text = _json_text(data, max_bytes, what)
    if ("\\u" in text and ("\\ud" in text or "\\uD" in text)) or (
        text.count("{") + text.count("[") > MAX_DEPTH
    ):
        document = _parse(_PLAIN, text, what)
        if type(document) is dict:  # depth counts from its values, as for a body
            top = {_clean_text(key): _freeze(value, what) for key, value in document.items()}
            return MappingProxyType(top)
    else:
        document = _parse(_FROZEN if "[" in text else _FROZEN_NO_ARRAYS, text, what)
        if type(document) is MappingProxyType:
            return document
    _bad("not-object", f"{what} is JSON {_type_name(document)}, not an object")


def _check_topic(topic: object) -> str:
    if not isinstance(topic, str):
        _bad("bad-topic", f"topic must be a string, not {_type_name(topic)}")
    if not _TOPIC.fullmatch(topic) or "" in topic.split("."):
        _bad("bad-topic", f"{_show(topic)} is not a topic (dot-separated words, no spaces)")
    return topic


def split_topic(topic: str, prefix: str) -> tuple[str, str]:
    """``(environment, short_topic)`` of ``topic`` under ``prefix``.

    >>> split_topic("org.fedoraproject.prod.ansible.playbook.start", "org.fedoraproject")
    ('prod', 'ansible.playbook.start')

    The prefix must match whole words (``org.fedoraprojectx.…`` is not under
    ``org.fedoraproject``); a trailing dot on it is ignored and an empty prefix matches
    every topic.  When the word after the prefix is not one of :data:`ENVIRONMENTS` the
    environment is ``""`` and the short topic is everything after the prefix.  A
    malformed topic, one outside the prefix, or one with nothing after the prefix and
    environment raises :class:`BadMessage` ``bad-topic``.
    """
    if not isinstance(topic, str):
        _check_topic(topic)  # the error for a topic that is not a string
    return _split_topic(topic, prefix)


@functools.lru_cache(maxsize=1024)
def _split_topic(topic: str, prefix: str) -> tuple[str, str]:
    """:func:`split_topic`, remembered: a bus carries few distinct topics, and a topic's
    checks cost as much as a small body's parse.  Refusals are not remembered."""
    topic = _check_topic(topic)
    head = prefix.rstrip(".")
    if head:
        if not topic.startswith(head + "."):
            _bad("bad-topic", f"{_show(topic)} is not under the prefix {_show(head)}")
        rest = topic[len(head) + 1 :]
    else:
        rest = topic
    environment, _, short = rest.partition(".")
    if environment not in ENVIRONMENTS:
        return "", rest
    if not short:
        _bad("bad-topic", f"{_show(topic)} has nothing after the environment")
    return environment, short


def _optional_str(container: Mapping[str, object], key: str, where: str) -> str:
    value = container.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        _bad("wrong-type", f"{where}.{key} must be a string, not {_type_name(value)}")
    return _clean_text(value)


def _epoch_time(value: object) -> datetime | None:
    """fedmsg's ``timestamp``: epoch seconds (int or float), or absent."""
    if value is None:
        return None
    if type(value) is not float and (isinstance(value, bool) or not isinstance(value, int)):
        _bad("wrong-type", f"timestamp must be a number, not {_type_name(value)}")
    try:
        return datetime.fromtimestamp(value, UTC)
    except (OverflowError, OSError, ValueError):
        _bad("wrong-type", f"timestamp {_show(value)} is out of range")


def _iso_time(value: object) -> datetime | None:
    """fedora-messaging's ``sent-at`` header: ISO 8601 (naive means UTC), or absent."""
    if value is None:
        return None
    if not isinstance(value, str):
        _bad("wrong-type", f"headers.sent-at must be a string, not {_type_name(value)}")
    try:
        moment = datetime.fromisoformat(value)
        if moment.tzinfo is None:
            return moment.replace(tzinfo=UTC)
        return moment.astimezone(UTC)
    except (ValueError, OverflowError):
        _bad("wrong-type", f"headers.sent-at {_show(value)} is not an ISO 8601 time")


def _event(
    topic: object,
    body: Mapping[str, object],
    event_id: str,
    sent_at: datetime | None,
    source: Source,
    prefix: str,
) -> BusEvent:
    if not isinstance(topic, str):
        _check_topic(topic)  # the error for a topic that is not a string
    environment, short = _split_topic(topic, prefix)
    # What the frozen dataclass's __init__ would do, in one step: its seven
    # object.__setattr__ calls cost a fifth of a message's decoding on a busy bus.
    event = object.__new__(BusEvent)
    vars(event).update(
        topic=topic,
        short_topic=short,
        environment=environment,
        body=body,
        id=event_id,
        sent_at=sent_at,
        source=source,
    )
    return event


# --- fedmsg ------------------------------------------------------------------------------


def from_fedmsg_envelope(
    envelope: Mapping[str, Any], *, prefix: str, verify: Verifier | None = None
) -> BusEvent:
    """The event in a decoded fedmsg envelope (see the module doc for its keys).

    ``verify``, when given, is called with the envelope as received (signature and
    certificate included) before anything else is trusted; False — or an exception from
    it — refuses the message as ``bad-signature``.
    """
    if not isinstance(envelope, Mapping):
        _bad("not-object", f"a fedmsg envelope must be an object, not {_type_name(envelope)}")
    for key in ("topic", "msg"):
        if key not in envelope:
            _bad("missing-field", f"the fedmsg envelope has no {key!r}")
    if verify is not None:
        try:
            good = verify(envelope)
        except Exception as error:  # a validator that chokes on garbage: drop, don't crash
            _bad("bad-signature", f"the signature check failed: {type(error).__name__}")
        if not good:
            _bad("bad-signature", "the signature does not verify")
    return _envelope_event(envelope, _freeze_object(envelope["msg"], "msg"), prefix)


def _envelope_event(envelope: Mapping[str, Any], body: object, prefix: str) -> BusEvent:
    """The event of an envelope that has its ``topic`` and ``msg`` (frozen: ``body``)."""
    if type(body) is not MappingProxyType:
        _bad("wrong-type", f"msg must be an object, not {_type_name(body)}")
    return _event(
        envelope["topic"],
        body,
        _optional_str(envelope, "msg_id", "envelope"),
        _epoch_time(envelope.get("timestamp")),
        "fedmsg",
        prefix,
    )


def from_fedmsg_frames(
    topic_frame: bytes,
    body_frame: bytes,
    *,
    prefix: str,
    max_bytes: int = DEFAULT_MAX_BYTES,
    verify: Verifier | None = None,
) -> BusEvent:
    """The event in a fedmsg ZeroMQ message, given its two frames as received.

    The body frame is checked for size and parsed as UTF-8 JSON; the envelope is then read
    as by :func:`from_fedmsg_envelope`, and the topic frame must equal its topic.  Without
    ``verify`` the parser freezes the envelope as it goes (the common, fast case); the
    signature check needs the envelope as plain JSON, so with it the body is frozen after.
    """
    what = "the fedmsg body frame"
    if verify is not None:
        event = from_fedmsg_envelope(
            _load_object(body_frame, max_bytes, what), prefix=prefix, verify=verify
        )
    else:
        envelope = _load_frozen(body_frame, max_bytes, what)
        if "topic" not in envelope or "msg" not in envelope:
            _bad(
                "missing-field",
                f"the fedmsg envelope has no {'topic' if 'topic' not in envelope else 'msg'!r}",
            )
        event = _envelope_event(envelope, envelope["msg"], prefix)
    if type(topic_frame) is not bytes and not isinstance(topic_frame, _BYTES):
        _bad("wrong-type", f"the topic frame must be bytes, not {type(topic_frame).__name__}")
    if topic_frame != event.topic.encode():
        _bad(
            "topic-mismatch",
            f"topic frame {_show(bytes(topic_frame))} but envelope topic {_show(event.topic)}",
        )
    return event


# --- fedora-messaging and the webhook ----------------------------------------------------


def from_fedora_messaging(
    topic: str,
    body: bytes | Mapping[str, Any],
    headers: Mapping[str, Any] | None,
    message_id: str | None,
    *,
    prefix: str,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> BusEvent:
    """The event in a fedora-messaging (AMQP) message.

    ``topic`` is the routing key; ``body`` the raw body bytes (UTF-8 JSON) or an already
    decoded object; ``headers`` the AMQP headers (only ``sent-at`` is read; a naive time
    is taken as UTC); ``message_id`` the AMQP message id.
    """
    if isinstance(body, Mapping):
        frozen = _freeze_object(body, "body")
    else:
        frozen = _load_frozen(body, max_bytes, "the body")
    if headers is None:
        headers = {}
    if not isinstance(headers, Mapping):
        _bad("wrong-type", f"headers must be an object, not {_type_name(headers)}")
    if message_id is not None and not isinstance(message_id, str):
        _bad("wrong-type", f"the message id must be a string, not {_type_name(message_id)}")
    sent_at = _iso_time(headers.get("sent-at"))
    return _event(topic, frozen, _clean_text(message_id or ""), sent_at, "fedora-messaging", prefix)


_WEBHOOK_KEYS = ("topic", "body", "id", "headers")


def from_webhook(payload: bytes, *, prefix: str, max_bytes: int = DEFAULT_MAX_BYTES) -> BusEvent:
    """The event POSTed to the webhook: ``{"topic", "body", "id", "headers"?}`` as JSON.

    The same shape and rules as a fedora-messaging message (``headers.sent-at`` is the
    sending time), but the ``id`` is required (1 to :data:`MAX_WEBHOOK_ID` characters);
    unknown top-level keys are refused as ``unknown-field``.
    """
    document = _load_frozen(payload, max_bytes, "the webhook payload")
    unknown = sorted(key for key in document if key not in _WEBHOOK_KEYS)
    if unknown:
        hint = " (send 'body', not the fedmsg 'msg')" if "msg" in unknown else ""
        _bad(
            "unknown-field",
            f"unknown key(s) {_show(unknown)}; valid keys: {', '.join(_WEBHOOK_KEYS)}{hint}",
        )
    for key in ("topic", "body"):
        if key not in document:
            _bad("missing-field", f"the webhook payload has no {key!r}")
    body = document["body"]
    if not isinstance(body, Mapping):
        _bad("wrong-type", f"body must be an object, not {_type_name(body)}")
    headers = document.get("headers")
    if headers is not None and not isinstance(headers, Mapping):
        _bad("wrong-type", f"headers must be an object, not {_type_name(headers)}")
    sent_at = _iso_time(headers.get("sent-at")) if headers is not None else None
    event = _event(
        document["topic"],
        body,
        _optional_str(document, "id", "payload"),
        sent_at,
        "webhook",
        prefix,
    )
    if "id" not in document:
        _bad(
            "missing-field", "the webhook payload has no 'id' (one per event; repeats are dropped)"
        )
    if not 0 < len(event.id) <= MAX_WEBHOOK_ID:
        _bad("wrong-type", f"id must be 1 to {MAX_WEBHOOK_ID} characters, not {len(event.id)}")
    return event
