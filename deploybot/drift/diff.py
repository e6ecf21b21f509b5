"""One probe: production's two answers and staging's, compared by shape (pure).

:func:`read_answer` turns what an HTTP answer was (status, content type, body) into an
:class:`Answer`: its shape when the body is JSON, else why it is not.  :func:`compare`
reports how staging's answer differs from production's:

``status-changed``  200 → 410 (then nothing else is compared: the bodies mean other things);
``not-json``  production answered JSON, staging something else (or the reverse);
``content-type-changed``  ``application/json`` → ``text/html``;
``type-changed``  the types found at a path differ (``array → null``: the 2014 case);
``key-removed`` / ``key-added``  a member present on one side only (under an object seen on
both sides, so a member is not "removed" when its object became ``null``);
``key-renamed``  one member removed and one added under the same object with the same
shape below them;
``format-changed``  the strings at a path changed format (``date-time`` → ``text``).

``key-added`` and ``format-changed`` do not break a client that ignores what it does not
know: they are reported but not *breaking*.  The rest are.

Noise: a path whose shape or values differ between production's two answers — a
timestamp, a request id — and everything under it is never reported; nor is anything at
or under the probe's ``ignore`` paths.  When production's two answers differ in status or
in being JSON at all, the probe cannot be judged: :class:`ProductionUnstableError`.
A list's element order is never a difference (elements are merged; value fingerprints
are order-free).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass

from deploybot.drift.shape import (
    Path,
    PathShape,
    Shape,
    describe_kinds,
    format_path,
    infer,
    under,
)

__all__ = [
    "BREAKING",
    "Answer",
    "Difference",
    "ProductionUnstableError",
    "compare",
    "diff_shapes",
    "noise",
    "read_answer",
]

#: The kinds of difference that break a client.
BREAKING = frozenset(
    {
        "status-changed",
        "not-json",
        "content-type-changed",
        "type-changed",
        "key-removed",
        "key-renamed",
    }
)


@dataclass(frozen=True)
class Answer:
    """What one HTTP answer was, as far as drift is concerned."""

    status: int
    #: The media type, lower case, without parameters (``application/json``); "" if none.
    content_type: str
    #: The body's shape when it is JSON, else None.
    shape: Shape | None
    #: Why the body is not JSON ("" when it is).
    not_json: str = ""


@dataclass(frozen=True)
class Difference:
    """One way staging's answer differs from production's."""

    kind: str
    #: The JSON path, as written by :func:`~deploybot.drift.shape.format_path`; "" for the
    #: status, the content type and JSON-ness.
    path: str
    production: str
    staging: str
    #: For a rename: the new member's path.
    renamed_to: str = ""

    @property
    def breaking(self) -> bool:
        return self.kind in BREAKING

    @property
    def text(self) -> str:
        """One line for people, production first: ``.acls: array → null``."""
        was, now = self.production, self.staging
        match self.kind:
            case "status-changed":
                return f"status {was} → {now}"
            case "content-type-changed":
                return f"content type {was} → {now}"
            case "not-json":
                return f"{was} → {now}"
            case "type-changed":
                return f"{self.path}: {was} → {now}"
            case "format-changed":
                return f"{self.path}: strings {was} → {now}"
            case "key-removed":
                return f"{self.path}: removed (was {was})"
            case "key-added":
                return f"{self.path}: added ({now})"
            case "key-renamed":
                return f"{self.path}: renamed to {self.renamed_to} ({was})"
        return f"{self.path}: {self.kind} {was} → {now}"


class ProductionUnstableError(Exception):
    """Production's two answers differ in status or JSON-ness: nothing can be compared."""


def read_answer(status: int, content_type: str, body: bytes) -> Answer:
    """An :class:`Answer` from an HTTP status, ``Content-Type`` header and body.

    The body is JSON when it is UTF-8 text that :func:`json.loads` reads, whatever the
    content type says (an API that answers ``text/html`` with JSON is still compared).

    >>> read_answer(200, "application/json; charset=utf-8", b'{"acls": null}').content_type
    'application/json'
    >>> read_answer(200, "text/html", b"<html>").not_json
    'not JSON (text/html): Expecting value at character 1'
    """
    media = content_type.split(";", 1)[0].strip().lower()
    if not body.strip():
        return Answer(status, media, None, "an empty body")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as error:
        return Answer(status, media, None, f"not UTF-8 text (byte {error.start})")
    try:
        document = json.loads(text)
    except RecursionError:
        return Answer(status, media, None, "not JSON: nested too deeply to read")
    except ValueError as error:
        why = error.msg if isinstance(error, json.JSONDecodeError) else str(error)
        where = f" at character {error.pos + 1}" if isinstance(error, json.JSONDecodeError) else ""
        return Answer(status, media, None, f"not JSON ({media or 'no content type'}): {why}{where}")
    return Answer(status, media, infer(document))


def noise(first: Shape, second: Shape) -> frozenset[Path]:
    """The paths whose shape or values differ between two answers to the same question."""
    noisy = set()
    for path in first.paths.keys() | second.paths.keys():
        one, two = first.paths.get(path), second.paths.get(path)
        if one is None or two is None or _facts(one) != _facts(two):
            noisy.add(path)
    return frozenset(noisy)


def _facts(shape: PathShape) -> tuple[object, ...]:
    return (shape.kinds, shape.formats, shape.keys, shape.filled, shape.values)


def compare(
    production: Answer,
    production_again: Answer,
    staging: Answer,
    ignore: Iterable[Path] = (),
) -> tuple[Difference, ...]:
    """How ``staging`` differs from ``production``, without the noise (see the module).

    Raises :class:`ProductionUnstableError` when production's two answers differ in status
    or in being JSON.
    """
    if production.status != production_again.status:
        raise ProductionUnstableError(
            f"production answered {production.status}, then {production_again.status}"
        )
    if (production.shape is None) != (production_again.shape is None):
        raise ProductionUnstableError("production answered JSON once and not JSON once")
    if production.status != staging.status:
        return (Difference("status-changed", "", str(production.status), str(staging.status)),)
    if (production.shape is None) != (staging.shape is None):
        was = "JSON" if production.shape is not None else production.not_json
        now = "JSON" if staging.shape is not None else staging.not_json
        return (Difference("not-json", "", was, now),)
    found: list[Difference] = []
    if production.content_type != staging.content_type:
        found.append(
            Difference(
                "content-type-changed",
                "",
                production.content_type or "none",
                staging.content_type or "none",
            )
        )
    if production.shape is None or staging.shape is None or production_again.shape is None:
        return tuple(found)
    skip = [*noise(production.shape, production_again.shape), *ignore]
    for paths, difference in diff_shapes(production.shape, staging.shape):
        if not any(under(path, quiet) for path in paths for quiet in skip):
            found.append(difference)
    return tuple(found)


#: A difference with the paths it is about (two for a rename: the old and the new member).
_Found = list[tuple[tuple[Path, ...], Difference]]


def diff_shapes(production: Shape, staging: Shape) -> _Found:
    """Every difference between two shapes with the paths it is about, document first."""
    found: _Found = []
    _diff_at((), production, staging, found)
    return found


def _diff_at(path: Path, production: Shape, staging: Shape, found: _Found) -> None:
    was, now = production[path], staging[path]
    where = format_path(path)
    if was.kinds != now.kinds:
        kinds = describe_kinds(was.kinds), describe_kinds(now.kinds)
        found.append(((path,), Difference("type-changed", where, *kinds)))
    elif was.formats != now.formats and was.formats and now.formats:
        formats = _formats(was.formats), _formats(now.formats)
        found.append(((path,), Difference("format-changed", where, *formats)))
    if was.truncated or now.truncated:
        return
    if "object" in was.kinds and "object" in now.kinds:
        _diff_members(path, was, now, production, staging, found)
    if was.filled and now.filled:
        _diff_at((*path, None), production, staging, found)


def _diff_members(
    path: Path,
    was: PathShape,
    now: PathShape,
    production: Shape,
    staging: Shape,
    found: _Found,
) -> None:
    removed = sorted(was.keys - now.keys)
    added = sorted(now.keys - was.keys)
    for key in removed:
        old = production[(*path, key)]
        twin = next(
            (new for new in added if staging[(*path, new)].signature == old.signature), None
        )
        kinds = describe_kinds(old.kinds)
        where = format_path((*path, key))
        if twin is not None:
            added.remove(twin)
            new = format_path((*path, twin))
            renamed = Difference("key-renamed", where, kinds, kinds, renamed_to=new)
            found.append((((*path, key), (*path, twin)), renamed))
        else:
            found.append((((*path, key),), Difference("key-removed", where, kinds, "")))
    for key in added:
        kinds = describe_kinds(staging[(*path, key)].kinds)
        where = format_path((*path, key))
        found.append((((*path, key),), Difference("key-added", where, "", kinds)))
    for key in sorted(was.keys & now.keys):
        _diff_at((*path, key), production, staging, found)


def _formats(formats: frozenset[str]) -> str:
    return " or ".join(sorted(formats))
