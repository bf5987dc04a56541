"""The layout's promises: one public surface, no import cycles, documented import paths that work."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import quota_monitor
from tests.infra_support import REPO_ROOT

RUNTIME = REPO_ROOT / "lambdas" / "quota_monitor"
#: Packages that must use the runtime through ``quota_monitor`` alone.
CONSUMERS = ("src/quota_monitor_cli", "src/apigw_sandbox", "bench", "infra")


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO_ROOT / "lambdas").with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def runtime_modules() -> dict[str, Path]:
    return {module_name(path): path for path in sorted(RUNTIME.rglob("*.py"))}


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def imports(path: Path, modules: dict[str, Path]) -> tuple[set[str], set[str]]:
    """(runtime imports, type-checking-only imports) of one module, as runtime module names."""
    runtime: set[str] = set()
    typing_only: set[str] = set()

    def target(name: str, imported: str | None) -> str | None:
        if imported is not None and f"{name}.{imported}" in modules:
            return f"{name}.{imported}"
        return name if name in modules else None

    def visit(node: ast.AST, *, typing: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child):
                for inner in child.body:
                    visit_node(inner, typing=True)
                for inner in child.orelse:
                    visit_node(inner, typing=typing)
                continue
            visit_node(child, typing=typing)

    def visit_node(node: ast.AST, *, typing: bool) -> None:
        found: list[str | None] = []
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("quota_monitor"):
            found = [target(node.module, alias.name) for alias in node.names]
        elif isinstance(node, ast.Import):
            found = [
                target(alias.name, None) for alias in node.names if alias.name.startswith("quota_monitor")
            ]
        for name in found:
            if name is not None:
                (typing_only if typing else runtime).add(name)
        visit(node, typing=typing)

    visit(ast.parse(path.read_text(encoding="utf-8")), typing=False)
    return runtime, typing_only - runtime


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def walk(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state and (cycle := walk(nxt)) is not None:
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := walk(node)) is not None:
            return cycle
    return None


def graphs() -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    modules = runtime_modules()
    at_runtime: dict[str, set[str]] = {}
    when_typing: dict[str, set[str]] = {}
    for name, path in modules.items():
        if name == "quota_monitor":
            continue  # the public surface: it only re-exports, and nothing in the runtime imports it
        runtime, typing_only = imports(path, modules)
        at_runtime[name] = runtime - {name}
        when_typing[name] = (runtime | typing_only) - {name}
    return at_runtime, when_typing


def test_no_import_cycle_at_runtime_or_when_type_checking() -> None:
    at_runtime, when_typing = graphs()
    assert find_cycle(at_runtime) is None, find_cycle(at_runtime)
    assert find_cycle(when_typing) is None, find_cycle(when_typing)


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_nothing_in_the_runtime_imports_the_public_surface() -> None:
    _, when_typing = graphs()
    assert [name for name, targets in when_typing.items() if "quota_monitor" in targets] == []


@pytest.mark.parametrize("package", CONSUMERS)
def test_other_packages_use_the_runtime_through_its_public_surface(package: str) -> None:
    offenders = []
    for path in sorted((REPO_ROOT / package).rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("quota_monitor."):
                offenders.append(f"{path.relative_to(REPO_ROOT)}:{node.lineno} from {node.module}")
            elif isinstance(node, ast.Import):
                offenders += [
                    f"{path.relative_to(REPO_ROOT)}:{node.lineno} import {alias.name}"
                    for alias in node.names
                    if alias.name.startswith("quota_monitor.")
                ]
    assert offenders == []


def consumed_names() -> set[str]:
    """Every name the other packages import from ``quota_monitor``, its modules apart."""
    names: set[str] = set()
    for package in (*CONSUMERS, "app.py"):
        root = REPO_ROOT / package
        for path in [root] if root.is_file() else sorted(root.rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.ImportFrom) and node.module == "quota_monitor":
                    names.update(alias.name for alias in node.names)
    # A module of the package imported by name (the benchmark runs the handler) is not a name of it.
    return {name for name in names if f"quota_monitor.{name}" not in runtime_modules()}


def test_the_public_surface_is_exactly_what_other_packages_use_each_name_once() -> None:
    assert len(set(quota_monitor.__all__)) == len(quota_monitor.__all__)
    assert sorted(quota_monitor.__all__) == sorted(consumed_names())
    for name in quota_monitor.__all__:
        assert hasattr(quota_monitor, name), name


def test_the_documented_paginator_path_still_works() -> None:
    from quota_monitor.usage_pages import paginate_usage  # noqa: PLC0415

    assert paginate_usage is quota_monitor.paginate_usage


def test_importing_the_handler_loads_no_slack_code() -> None:
    """The Slack forwarder is a function of its own: the monitor's cold start never loads its code."""
    code = (
        "import sys, quota_monitor.handler; "
        "print(sorted(m for m in sys.modules if m.startswith('quota_monitor.deliver.slack')))"
    )
    env = {"AWS_DEFAULT_REGION": "us-east-1", "PATH": "/usr/bin:/bin", "POWERTOOLS_TRACE_DISABLED": "true"}
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO_ROOT,
        env={**env, "PYTHONPATH": str(REPO_ROOT / "lambdas")},
    )
    assert done.stdout.strip() == "[]"
