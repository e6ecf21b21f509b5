"""The package list in pyproject.toml names every package of the source tree.

setuptools installs only the packages listed in ``[tool.setuptools] packages`` (the
list is explicit because ``plugins/`` installs as ``deploybot_plugins``).  An editable
install hides a missing entry — the tests import from the tree — while a plain
``pip install .`` would ship a bot without, say, its commands.  Found so: the wheel had
no ``deploybot/commands/``.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_every_package_directory_is_listed_for_setuptools() -> None:
    setuptools = tomllib.loads((REPO / "pyproject.toml").read_text("utf-8"))["tool"]["setuptools"]
    listed = set(setuptools["packages"])
    installed_as = {directory: name for name, directory in setuptools["package-dir"].items()}
    found = set()
    for top, name in installed_as.items():
        for init in (REPO / top).rglob("__init__.py"):
            relative = init.parent.relative_to(REPO / top)
            found.add(".".join((name, *relative.parts)))
    assert found == listed
    assert {"deploybot.commands", "deploybot_plugins.demo.ircd"} <= found


def test_every_template_and_schema_is_package_data() -> None:
    """The page templates and the API's schemas ship in the wheel: each file under
    deploybot/web/templates/ and deploybot/web/schemas/ (a link to docs/api/) matches a
    package-data pattern (an editable install would hide a missing one)."""
    setuptools = tomllib.loads((REPO / "pyproject.toml").read_text("utf-8"))["tool"]["setuptools"]
    patterns = setuptools["package-data"]["deploybot.web"]
    package = REPO / "deploybot" / "web"
    assert (package / "schemas").resolve() == REPO / "docs" / "api"
    files = sorted([*(package / "templates").iterdir(), *(package / "schemas").iterdir()])
    assert {"base.html", "deployments.schema.json"} <= {path.name for path in files}
    for path in files:
        relative = path.relative_to(package)
        assert any(relative.match(pattern) for pattern in patterns), relative
