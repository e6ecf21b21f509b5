"""The examples in the core's docstrings are tests: every ``>>>`` example in every
``deploybot`` module runs here, one test per docstring (so they cannot rot unseen)."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import deploybot


def core_doctests() -> list[doctest.DocTest]:
    """Every docstring with examples in the ``deploybot`` package, by dotted name."""
    finder = doctest.DocTestFinder()
    found: list[doctest.DocTest] = []
    for info in pkgutil.walk_packages(deploybot.__path__, "deploybot."):
        found += [test for test in finder.find(importlib.import_module(info.name)) if test.examples]
    return sorted(found, key=lambda test: test.name)


DOCTESTS = core_doctests()


@pytest.mark.parametrize("test", DOCTESTS, ids=[test.name for test in DOCTESTS])
def test_docstring_examples_hold(test: doctest.DocTest) -> None:
    """The docstring's examples give what it says they give."""
    report: list[str] = []
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    result = runner.run(test, out=report.append)
    assert result.failed == 0, "".join(report)


def test_the_core_doctests_are_found() -> None:
    """The search reaches the subpackages and finds the examples (none found would pass)."""
    modules = {test.name.rsplit(".", 1)[0] for test in DOCTESTS}
    assert {"deploybot.config", "deploybot.durations", "deploybot.plans.schedule"} <= modules
    assert sum(len(test.examples) for test in DOCTESTS) >= 20
