"""deploybot.drift.diff: staging's answer against production's, by shape, noise subtracted."""

from __future__ import annotations

import json
import random
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from deploybot.drift.diff import (
    Answer,
    Difference,
    ProductionUnstableError,
    compare,
    read_answer,
)
from deploybot.drift.shape import format_path, parse_path

from .test_drift_shape import json_values


def answer(document: Any, status: int = 200, content_type: str = "application/json") -> Answer:
    return read_answer(status, content_type, json.dumps(document).encode())


def diff(
    production: Any, staging: Any, again: Any = None, ignore: tuple[str, ...] = ()
) -> list[str]:
    """The differences' texts; production asked twice (the same answer unless ``again``)."""
    found = compare(
        answer(production),
        answer(production if again is None else again),
        answer(staging),
        [parse_path(path) for path in ignore],
    )
    return [difference.text for difference in found]


# The answers of pkgdb1 (production) and pkgdb2 (staging) in May 2014, cut down.
PKGDB1_ACL = {"output": "ok", "acls": [], "title": "ACLs of toshio"}
PKGDB2_ACL = {"output": "ok", "acls": None, "title": "ACLs of toshio"}


def test_the_2014_case_a_list_became_null() -> None:
    """/api/packager/acl answered null where it used to answer []: a type change, breaking."""
    found = compare(answer(PKGDB1_ACL), answer(PKGDB1_ACL), answer(PKGDB2_ACL))
    assert found == (Difference("type-changed", ".acls", "array", "null"),)
    assert found[0].breaking
    assert found[0].text == ".acls: array → null"


def test_null_to_empty_object_and_back_are_changes_too() -> None:
    assert diff({"a": None}, {"a": {}}) == [".a: null → object"]
    assert diff({"a": {}}, {"a": []}) == [".a: object → array"]


def test_a_document_compared_with_itself_has_no_difference() -> None:
    assert diff(PKGDB1_ACL, PKGDB1_ACL) == []


def test_renamed_member_is_one_difference() -> None:
    """One member removed and one added under the same object, same shape: a rename."""
    production = {"collections": [{"koji_name": "f21", "version": "21", "branchname": "f21"}]}
    staging = {"collections": [{"dist_tag": "f21", "version": "21", "branchname": "f21"}]}
    found = compare(answer(production), answer(production), answer(staging))
    assert [d.kind for d in found] == ["key-renamed"]
    assert found[0].text == ".collections[].koji_name: renamed to .collections[].dist_tag (string)"
    assert found[0].breaking


def test_removed_and_added_members_of_other_shapes_are_not_a_rename() -> None:
    found = compare(answer({"a": 1, "b": 2}), answer({"a": 1, "b": 2}), answer({"a": 1, "c": "x"}))
    assert [(d.kind, d.text, d.breaking) for d in found] == [
        ("key-removed", ".b: removed (was number)", True),
        ("key-added", ".c: added (string)", False),
    ]


def test_members_are_not_removed_when_their_object_became_null() -> None:
    """Only the type change is reported, not every member it had."""
    assert diff({"pkg": {"name": "x", "acls": []}}, {"pkg": None}) == [".pkg: object → null"]


def test_empty_lists_say_nothing_about_their_elements() -> None:
    """[] on one side and [{...}] on the other is the same list type: no difference."""
    assert diff({"acls": [{"user": "x"}]}, {"acls": []}) == []


def test_nested_changes_are_found_with_their_path() -> None:
    production = {"packages": [{"acls": [{"status": "Approved", "since": 3}]}]}
    staging = {"packages": [{"acls": [{"status": ["Approved"], "since": 3}]}]}
    assert diff(production, staging) == [".packages[].acls[].status: string → array"]


def test_status_change_is_reported_alone() -> None:
    """An endpoint answering 410 on staging: the status, not the bodies."""
    found = compare(answer([1]), answer([1]), answer({"error": "gone"}, status=410))
    assert found == (Difference("status-changed", "", "200", "410"),)
    assert found[0].text == "status 200 → 410"


def test_json_to_not_json_and_content_type() -> None:
    html = read_answer(200, "text/html; charset=utf-8", b"<html>Internal error</html>")
    found = compare(answer([]), answer([]), html)
    assert [d.kind for d in found] == ["not-json"]
    assert found[0].text.startswith("JSON → not JSON (text/html): Expecting value")
    found = compare(answer([]), answer([]), answer([], content_type="text/plain"))
    assert [d.text for d in found] == ["content type application/json → text/plain"]


def test_invalid_utf8_and_empty_bodies_are_not_json() -> None:
    assert read_answer(200, "application/json", b'["\xff"]').not_json == "not UTF-8 text (byte 2)"
    assert read_answer(204, "", b"").not_json == "an empty body"
    assert read_answer(200, "", b"[" * 100_000).not_json.startswith("not JSON")


def test_format_change_is_reported_but_not_breaking() -> None:
    found = compare(
        answer({"at": "2014-05-28T13:00:00Z"}),
        answer({"at": "2014-05-28T13:00:00Z"}),
        answer({"at": "yesterday"}),
    )
    assert [(d.text, d.breaking) for d in found] == [(".at: strings date-time → text", False)]


def test_noise_between_productions_answers_is_never_reported() -> None:
    """A timestamp and a request id change on every call: production asked twice sees it,
    so their paths are noise, even where staging's shape differs there."""
    production = {"acls": [], "request_id": "a1", "generated": "2014-05-28T13:00:00Z"}
    again = {"acls": [], "request_id": "b2", "generated": "2014-05-28T13:00:01Z"}
    staging = {"acls": None, "request_id": 17, "generated": 1401282000}
    assert diff(production, staging, again=again) == [".acls: array → null"]


def test_noise_covers_everything_below_the_noisy_path() -> None:
    production = {"meta": {"took": 3}, "x": 1}
    again = {"meta": None, "x": 1}
    assert diff(production, {"meta": {"took": "3ms"}, "x": 1}, again=again) == []


def test_a_key_present_in_one_production_answer_only_is_noise() -> None:
    production = {"debug": {"sql": 3}, "x": 1}
    again = {"x": 1}
    assert diff(production, {"x": 1}, again=again) == []


def test_ignore_paths_are_never_reported() -> None:
    production = {"date_updated": "2014-05-28T13:00:00Z", "acls": []}
    staging = {"date_updated": None, "acls": None}
    assert diff(production, staging, ignore=(".date_updated",)) == [".acls: array → null"]
    assert diff(production, staging, ignore=(".",)) == []


def test_a_rename_into_an_ignored_member_is_ignored() -> None:
    assert diff({"a": 1}, {"b": 2}, ignore=(".b",)) == []


def test_list_order_is_not_a_difference_even_in_production() -> None:
    """A large list whose element order changes between calls: no noise, no difference."""
    items = [{"name": f"pkg{i}", "summary": "x" * (i % 7), "id": i} for i in range(2000)]
    shuffled = items[:]
    random.Random(4).shuffle(shuffled)
    staging = [{**item, "id": None} for item in shuffled]
    assert diff({"packages": items}, {"packages": staging}, again={"packages": shuffled}) == [
        ".packages[].id: number → null"
    ]


def test_production_answering_two_ways_is_an_error_not_a_report() -> None:
    with pytest.raises(ProductionUnstableError, match="production answered 200, then 503"):
        compare(answer([]), answer([], status=503), answer([]))
    html = read_answer(200, "text/html", b"<p>")
    with pytest.raises(ProductionUnstableError, match="JSON once"):
        compare(answer([]), html, answer([]))


# --- properties ---------------------------------------------------------------------------


def _doc(value: Any) -> Any:
    return json.loads(json.dumps(value))


@given(json_values)
def test_property_a_document_against_itself_differs_nowhere(document: Any) -> None:
    document = _doc(document)
    assert compare(answer(document), answer(document), answer(document)) == ()


_OTHER: dict[str, list[Any]] = {
    "null": [1, "x", [], {}],
    "boolean": [None, 0, "true"],
    "number": [None, "1", [], True],
    "string": [None, 0, [], {}],
    "array": [None, {}, "[]"],
    "object": [None, [], 0],
}


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    kinds: dict[type, str] = {str: "string", list: "array", dict: "object"}
    return kinds[type(value)]


def _member_paths(document: Any, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """The places reachable through members only (one value each: no list merges them)."""
    found = [path]
    if isinstance(document, dict):
        for key, value in document.items():
            found += _member_paths(value, (*path, key))
    return found


@given(json_values, st.data())
def test_property_one_changed_type_is_exactly_that_difference(
    document: Any, data: st.DataObject
) -> None:
    """The document against itself with the value at one random place replaced by one of
    another type: exactly one difference, a type change at that path."""
    document = _doc(document)
    path = data.draw(st.sampled_from(_member_paths(document)))
    old = document
    for key in path:
        old = old[key]
    new = data.draw(st.sampled_from(_OTHER[_kind(old)]))
    changed: Any = _doc(document)
    if path:
        target = changed
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = new
    else:
        changed = new
    found = compare(answer(document), answer(document), answer(changed))
    assert found == (Difference("type-changed", format_path(path), _kind(old), _kind(new)),)
