"""The API contract in the tests: every answer checked against its JSON Schema in
``docs/api/`` (the files the server ships and serves at ``/api/v1/schemas/``).

:func:`check_answer` picks the schema of an answer by method, route and status (an
error status: ``error``; else the schema :data:`deploybot.web.api.ROUTES` names) and
validates it with jsonschema (Draft 2020-12, formats checked).  The schemas allow no key
they do not list (``additionalProperties: false``), so an answer with a new key fails
here until the schema — and the README — say it.
"""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from deploybot.web.api import ROUTES, SCHEMAS

SCHEMA_DIR = Path(__file__).resolve().parent.parent / "docs" / "api"


def schema_uri(name: str) -> str:
    return (SCHEMA_DIR / f"{name}.schema.json").as_uri()


def load_schema(name: str) -> dict[str, Any]:
    document = json.loads((SCHEMA_DIR / f"{name}.schema.json").read_text("utf-8"))
    assert isinstance(document, dict)
    return document


@cache
def registry() -> Registry[Any]:
    """Every schema file under its file: URI, so relative refs resolve between them."""
    resources: list[tuple[str, Resource[Any]]] = [
        (schema_uri(name), DRAFT202012.create_resource(load_schema(name))) for name in SCHEMAS
    ]
    return Registry().with_resources(resources)


@cache
def validator(name: str) -> Draft202012Validator:
    return Draft202012Validator(
        {"$ref": schema_uri(name)},
        registry=registry(),
        format_checker=Draft202012Validator.FORMAT_CHECKER,
    )


def schema_errors(name: str, document: Any) -> list[str]:
    """Every way ``document`` breaks schema ``name``, one line each (none: it fits)."""
    return [
        f"{'/'.join(map(str, error.absolute_path)) or '$'}: {error.message}"
        for error in validator(name).iter_errors(document)
    ]


def _pattern(path: str) -> re.Pattern[str]:
    return re.compile(re.sub(r"\\\{[a-z]+\\\}", "[^/]+", re.escape(path)) + "/?")


def schema_of(method: str, path: str, status: int) -> str | None:
    """The schema of an answer: ``error`` for a status of 400 or more (but /healthz's
    503, a health document), the route's for the others; None for a path that is not a
    JSON route."""
    bare = path.partition("?")[0]
    if bare == "/healthz" and status in (200, 503):
        return "health"
    if status >= 400:
        return "error"
    for route_method, route, name in ROUTES:
        if method == route_method and _pattern(route).fullmatch(bare):
            return name
    if bare == "/api/v1":
        return "index"
    return None


def check_answer(method: str, path: str, status: int, document: Any) -> None:
    """Assert that a JSON answer fits the schema of its route and status."""
    name = schema_of(method, path, status)
    assert name is not None, f"{method} {path} answered JSON but names no schema"
    errors = schema_errors(name, document)
    assert not errors, f"{method} {path} ({status}) does not fit {name}.schema.json: {errors}"
