"""docs/api/: the API's JSON Schemas are valid, complete and strict, and the checker the
API tests use (tests/apischema.py) really refuses an answer that leaves its shape."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from deploybot.web.api import ROUTES, SCHEMAS, ApiError, index_document, schema_bytes
from tests.apischema import SCHEMA_DIR, check_answer, load_schema, schema_errors, schema_of


def object_schemas(node: Any, where: str = "$") -> Iterator[tuple[str, dict[str, Any]]]:
    """Every sub-schema that lists ``properties``, with where it is."""
    if isinstance(node, dict):
        if "properties" in node:
            yield where, node
        for key, value in node.items():
            yield from object_schemas(value, f"{where}/{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from object_schemas(value, f"{where}/{index}")


def test_one_file_per_shape_and_nothing_else() -> None:
    """docs/api/ holds exactly the schemas the API names, each valid Draft 2020-12."""
    files = sorted(path.name for path in SCHEMA_DIR.iterdir())
    assert files == sorted(f"{name}.schema.json" for name in SCHEMAS)
    for name in SCHEMAS:
        Draft202012Validator.check_schema(load_schema(name))


@pytest.mark.parametrize("name", SCHEMAS)
def test_every_object_requires_every_key_and_allows_no_other(name: str) -> None:
    """Every key is always present (required lists them all) and no other key may appear
    (additionalProperties: false) — the two rules that make a shape change visible."""
    found = list(object_schemas(load_schema(name)))
    assert found
    for where, schema in found:
        assert schema.get("additionalProperties") is False, f"{name} {where}"
        assert sorted(schema["required"]) == sorted(schema["properties"]), f"{name} {where}"


def test_every_route_has_a_schema() -> None:
    assert {name for _, _, name in ROUTES} | {"error", "definitions"} == set(SCHEMAS)
    for method, path, name in ROUTES:
        assert schema_of(method, path.replace("{", "").replace("}", ""), 200) == name


def test_a_key_the_schema_lacks_fails_the_check() -> None:
    """An answer with one key more (at the top or deep inside) does not pass; nor does a
    missing key, a null list or a time without Z."""
    good = {"error": {"code": "not-found", "message": "no incident 9"}}
    assert schema_errors("error", good) == []
    assert schema_errors("error", {**good, "hint": "x"})
    assert schema_errors("error", {"error": {**good["error"], "detail": "x"}})
    assert schema_errors("error", {"error": {"code": "not-found"}})
    health: dict[str, object] = {
        "ok": True,
        "irc_connected": None,
        "irc": None,
        "networks": {},
        "role": "standby",
        "instance": "host-b:42",
        "ha": {
            "backend": "postgresql",
            "active": {"instance": "host-a:7", "since": "2026-12-15T12:00:00Z", "epoch": 2},
            "standbys_last_minute": 1,
        },
        "plans": 1,
        "store_error": None,
        "as_of": "2026-12-15T13:00:00Z",
    }
    assert schema_errors("health", health) == []
    assert schema_errors("health", {**health, "role": "leader"})
    assert schema_errors("health", {k: v for k, v in health.items() if k != "ha"})
    ha = health["ha"]
    assert isinstance(ha, dict)
    assert schema_errors("health", {**health, "ha": {**ha, "active": None}}) == []
    assert schema_errors("health", {**health, "ha": {**ha, "standbys_last_minute": None}})
    assert schema_errors("health", {**health, "ha": {**ha, "backend": "mysql"}})
    assert schema_errors("health", {**health, "ha": {**ha, "active": {"instance": "a:1"}}})
    assert schema_errors("health", {**health, "as_of": "2026-12-15T13:00:00+00:00"})
    with pytest.raises(AssertionError, match=r"does not fit error\.schema\.json"):
        check_answer("GET", "/api/v1/incidents", 404, {**good, "hint": "x"})


def test_the_index_links_every_schema_and_fits_its_own() -> None:
    document = index_document()
    check_answer("GET", "/api/v1/", 200, document)
    assert document["schemas"]["deployments"] == "/api/v1/schemas/deployments.schema.json"
    assert set(document["schemas"]) == set(SCHEMAS)
    assert {route["schema"] for route in document["routes"]} <= set(document["schemas"].values())


def test_the_shipped_schemas_are_the_files_of_docs_api() -> None:
    """The package's schemas/ (a link to docs/api/) serves the same bytes; other names,
    and paths, are refused."""
    for name in SCHEMAS:
        file_name = f"{name}.schema.json"
        assert schema_bytes(file_name) == (SCHEMA_DIR / file_name).read_bytes()
    for bad in ("nothing.schema.json", "../api.py", "error.json", "error.schema.json/x"):
        with pytest.raises(ApiError) as caught:
            schema_bytes(bad)
        assert caught.value.status == 404
