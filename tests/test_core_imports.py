"""The domain core stays free of the IRC and HTTP stacks (design card)."""

from __future__ import annotations

import pkgutil
import subprocess
import sys

import pytest

import deploybot

FORBIDDEN = ("irc3", "aiohttp", "zmq")


def core_modules() -> list[str]:
    return sorted(
        info.name for info in pkgutil.walk_packages(deploybot.__path__, prefix="deploybot.")
    )


def test_core_has_modules() -> None:
    """The walk below sees the real core modules (so the import test cannot pass vacuously)."""
    names = core_modules()
    assert "deploybot.plans.model" in names
    assert "deploybot.durations" in names


@pytest.mark.e2e  # starts a Python process
def test_importing_every_core_module_loads_neither_irc3_nor_aiohttp() -> None:
    """Importing all of deploybot/ in a fresh interpreter pulls in no irc3, aiohttp or zmq."""
    program = (
        "import importlib, sys\n"
        f"for name in {core_modules()!r}:\n"
        "    importlib.import_module(name)\n"
        f"bad = sorted(m for m in sys.modules if m.split('.')[0] in {FORBIDDEN!r})\n"
        "print(','.join(bad))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "", f"core imports forbidden modules: {result.stdout}"


@pytest.mark.e2e  # starts a Python process
def test_the_check_itself_detects_a_forbidden_import() -> None:
    """Sanity: the same probe reports irc3 when something does import it."""
    program = (
        "import sys, irc3\n"
        f"print(','.join(sorted(m for m in sys.modules if m.split('.')[0] in {FORBIDDEN!r})))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, check=True
    )
    assert "irc3" in result.stdout
