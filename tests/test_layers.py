"""The house's rooms and stairs: which group of modules may import which, and no cycles.

Each group of ``deploybot/`` and ``plugins/`` has a rank; a module may import modules of
its own group or of a lower rank, never a higher one or another group of the same rank
(``plans`` and ``store`` know nothing of each other).  Imports are read from the source
with :mod:`ast` — including ``TYPE_CHECKING`` blocks and imports inside functions, since a
type-only cycle is still a cycle in the design — so the check needs no import side effect.

The ranks are the package docstrings' "may import" lines, as data: change both together.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
#: Installed name of each source directory (pyproject's package-dir mapping).
TOPS = {"deploybot": "deploybot", "plugins": "deploybot_plugins"}

#: Group → rank.  A group is a package or a flat module; the longest prefix names it.
RANKS: Mapping[str, int] = {
    # foundation: no deploybot imports but each other
    "deploybot": 0,
    "deploybot.errors": 0,
    "deploybot.casemapping": 0,
    "deploybot.lines": 0,
    "deploybot.durations": 0,
    "deploybot.jobs": 0,
    "deploybot.outbox": 0,
    "deploybot.config": 0,
    # pure JSON shapes and their diff (the plan key `probes` reads the path syntax)
    "deploybot.drift.shape": 0,
    "deploybot.drift.diff": 0,
    # the domain's nouns
    "deploybot.plans": 1,
    "deploybot.store": 1,
    "deploybot.texts": 2,
    "deploybot.drift": 2,
    "deploybot.publish": 2,
    "deploybot.core": 3,
    # what happens
    "deploybot.deployday": 4,
    "deploybot.bus": 5,
    "deploybot.web": 6,
    "deploybot.commands": 7,
    "deploybot.announce": 7,
    "deploybot.postmortem": 7,
    "deploybot.cli": 8,
    # adapters
    "deploybot_plugins": 10,
    "deploybot_plugins.irc": 10,
    "deploybot_plugins.matrix": 10,
    "deploybot_plugins.bus": 10,
    "deploybot_plugins.web": 10,
    "deploybot_plugins.drift": 10,
    "deploybot_plugins.application": 11,
    "deploybot_plugins.demo": 12,
}
#: Within the foundation, these are the only imports allowed (its own little order).
FOUNDATION_ORDER = (
    "deploybot.errors",
    "deploybot.casemapping",
    "deploybot.durations",
    "deploybot.config",
    "deploybot.drift.shape",
    "deploybot.drift.diff",
)


def module_files() -> dict[str, Path]:
    """Every module of the two trees by its installed dotted name."""
    found: dict[str, Path] = {}
    for directory, installed in TOPS.items():
        for path in sorted((REPO / directory).rglob("*.py")):
            parts = path.relative_to(REPO / directory).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join((installed, *parts))] = path
    return found


def imports_of(name: str, source: str, is_package: bool, known: Iterable[str]) -> set[str]:
    """The project modules that ``source`` (module ``name``) imports, anywhere in it."""
    known = set(known)
    package = name if is_package else name.rpartition(".")[0]
    targets: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            candidates = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join([*base, *([node.module] if node.module else [])])
            else:
                module = node.module or ""
            candidates = [module, *(f"{module}.{alias.name}" for alias in node.names)]
        else:
            continue
        targets.update(c for c in candidates if c in known and c != name)
    return targets


def import_graph() -> dict[str, set[str]]:
    files = module_files()
    return {
        name: imports_of(name, path.read_text("utf-8"), path.name == "__init__.py", files)
        for name, path in files.items()
    }


def group_of(module: str) -> str:
    parts = module.split(".")
    for end in range(len(parts), 0, -1):
        prefix = ".".join(parts[:end])
        if prefix in RANKS:
            return prefix
    raise KeyError(f"{module} belongs to no group: add it to RANKS")


def layer_violations(graph: Mapping[str, Iterable[str]]) -> list[str]:
    """Every import of a higher group, or of another group of the same rank."""
    bad = []
    for module, targets in sorted(graph.items()):
        source = group_of(module)
        for target in sorted(targets):
            group = group_of(target)
            if group == source or group == "deploybot":
                continue
            if RANKS[group] < RANKS[source]:
                continue
            if (
                source in FOUNDATION_ORDER
                and group in FOUNDATION_ORDER
                and FOUNDATION_ORDER.index(group) < FOUNDATION_ORDER.index(source)
            ):
                continue
            bad.append(f"{module} (rank {RANKS[source]}) imports {target} (rank {RANKS[group]})")
    return bad


def cycles(graph: Mapping[str, Iterable[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph.get(root, ()))))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_every_module_is_in_a_group() -> None:
    graph = import_graph()
    assert "deploybot.deployday.firefight" in graph
    assert "deploybot_plugins.irc.bot" in graph
    for module in graph:
        group_of(module)


def test_no_group_imports_a_higher_one() -> None:
    assert layer_violations(import_graph()) == []


def test_no_import_cycles_even_type_only() -> None:
    assert cycles(import_graph()) == []


def test_the_layer_check_sees_a_core_module_importing_upwards() -> None:
    source = (
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n"
        "    from deploybot.deployday.firefight import Firefight\n"
    )
    known = ["deploybot.core", "deploybot.deployday.firefight"]
    graph = {"deploybot.core": imports_of("deploybot.core", source, False, known)}
    assert graph["deploybot.core"] == {"deploybot.deployday.firefight"}
    assert layer_violations(graph) == [
        "deploybot.core (rank 3) imports deploybot.deployday.firefight (rank 4)"
    ]


def test_the_layer_check_refuses_a_sibling_group_of_the_same_rank() -> None:
    graph = {"deploybot.store.pages": {"deploybot.plans.model"}}
    assert layer_violations(graph) == [
        "deploybot.store.pages (rank 1) imports deploybot.plans.model (rank 1)"
    ]


def test_relative_imports_resolve_inside_their_package() -> None:
    known = ["deploybot_plugins.irc.bot", "deploybot_plugins.irc.accounts"]
    found = imports_of(
        "deploybot_plugins.irc.bot", "from .accounts import irc_lower\n", False, known
    )
    assert found == {"deploybot_plugins.irc.accounts"}


def test_the_cycle_check_finds_a_three_module_cycle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []
