"""deploybot.drift.shape: JSON paths and the shape of a JSON document."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from deploybot.drift.shape import (
    MAX_DEPTH,
    describe_kinds,
    format_path,
    infer,
    parse_path,
    under,
)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner, max_size=4)
    ),
    max_leaves=25,
)


@given(st.lists(st.one_of(st.none(), st.text(max_size=8)), max_size=6))
def test_paths_round_trip_through_their_text(parts: list[str | None]) -> None:
    """Any path, member names of any text included, is read back from what it is written as."""
    path = tuple(parts)
    assert parse_path(format_path(path)) == path
    assert format_path(path).isprintable()  # so a plan (one line, no controls) can hold it


@pytest.mark.parametrize(
    ("written", "path"),
    [
        (".", ()),
        (".acls", ("acls",)),
        ("acls[].packager", ("acls", None, "packager")),
        (".[]", (None,)),
        ('.["fas name"][]', ("fas name", None)),
        ('.a["b.c"].d', ("a", "b.c", "d")),
    ],
)
def test_paths_as_people_write_them(written: str, path: tuple[str | None, ...]) -> None:
    """jq's way of writing paths, the leading dot optional."""
    assert parse_path(written) == path


@pytest.mark.parametrize("written", ["", ".a b", ".a[", '.a["b"', ".a[0]", ".a..b", ".1a"])
def test_bad_paths_say_what_is_wrong(written: str) -> None:
    with pytest.raises(ValueError, match=r"\w"):
        parse_path(written)


def test_under_is_the_path_or_inside_it() -> None:
    assert under(("a", None, "b"), ("a",))
    assert under(("a",), ("a",))
    assert not under(("ab",), ("a",))
    assert not under(("a",), ("a", None))


def test_null_is_not_an_empty_list_nor_an_empty_object() -> None:
    """The 2014 case: [] and null are different types; {} is a third."""
    assert infer([])[()].kinds == {"array"}
    assert infer(None)[()].kinds == {"null"}
    assert infer({})[()].kinds == {"object"}
    assert describe_kinds(frozenset({"null", "array"})) == "array or null"


def test_list_elements_are_merged_into_one_shape() -> None:
    """Elements of a list share one path; members seen in any element are listed."""
    shape = infer(
        {"acls": [{"user": "toshio", "acl": "commit"}, {"user": "pingou", "group": None}]}
    )
    assert set(map(format_path, shape)) == {
        ".",
        ".acls",
        ".acls[]",
        ".acls[].user",
        ".acls[].acl",
        ".acls[].group",
    }
    assert shape[("acls",)].filled
    assert shape[("acls", None)].keys == {"user", "acl", "group"}
    assert shape[("acls", None, "group")].kinds == {"null"}


def test_string_formats_tell_timestamps_from_text() -> None:
    shape = infer({"at": "2014-05-28T13:00:00Z", "py": "2014-05-28 13:00:00.123", "x": "soon"})
    assert shape[("at",)].formats == {"date-time"}
    assert shape[("py",)].formats == {"date-time"}
    assert shape[("x",)].formats == {"text"}


def test_value_fingerprints_ignore_list_order_but_not_values() -> None:
    names = [{"name": f"pkg{i}", "id": i} for i in range(50)]
    one = infer({"packages": names})
    two = infer({"packages": list(reversed(names))})
    assert one == two
    changed = infer({"packages": [*names[:-1], {"name": "other", "id": 49}]})
    assert changed[("packages", None, "name")].values != one[("packages", None, "name")].values
    assert changed[("packages", None, "id")].values == one[("packages", None, "id")].values


def test_numbers_and_booleans_are_told_apart() -> None:
    """True == 1 in Python; in JSON they are different types with different values."""
    assert infer([True])[(None,)].kinds == {"boolean"}
    assert infer([1])[(None,)].values != infer([True])[(None,)].values
    assert infer([1, 2.5])[(None,)].kinds == {"number"}


def test_nothing_below_the_depth_limit_is_looked_at() -> None:
    """Deep nesting costs MAX_DEPTH paths at most, and says it was cut."""
    document: object = "leaf"
    for _ in range(MAX_DEPTH + 30):
        document = [document]
    shape = infer(document)
    assert len(shape) == MAX_DEPTH + 1
    assert shape[(None,) * MAX_DEPTH].truncated


@given(json_values)
def test_any_document_has_a_shape_with_its_root(document: object) -> None:
    shape = infer(json.loads(json.dumps(document)))
    assert () in shape
    assert all(parse_path(format_path(path)) == path for path in shape)
