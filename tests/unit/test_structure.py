"""The layering holds: the domain's rules import only the standard library, dateutil and the
domain itself (import-linter checks the layers between packages; this checks the allow-list)."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

DOMAIN = Path(__file__).resolve().parents[2] / "domain"
ALLOWED = set(sys.stdlib_module_names) | {"dateutil", "domain", "__future__"}


def imported_roots(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    roots: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
    return roots


def rule_modules() -> list[Path]:
    return sorted(p for p in DOMAIN.glob("*.py"))


def test_the_domain_has_rule_modules_to_check() -> None:
    assert len(rule_modules()) >= 10


def test_the_domain_outside_its_adapters_imports_only_the_standard_library_and_dateutil() -> None:
    strays = {
        path.name: sorted(imported_roots(path) - ALLOWED)
        for path in rule_modules()
        if imported_roots(path) - ALLOWED
    }
    assert strays == {}


def test_the_domain_outside_its_adapters_never_imports_them() -> None:
    offenders = []
    for path in rule_modules():
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(
                "domain.adapters"
            ):
                offenders.append(f"{path.name}: from {node.module}")
    assert offenders == []
