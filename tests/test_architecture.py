"""The import rules of docs/architecture.md, checked on every module's import statements."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BROKERFLOW = {
    "activities",
    "api",
    "db",
    "domain",
    "mailer",
    "mt5_adapter",
    "observability",
    "ops",
    "psp_adapter",
    "reports",
    "screening",
    "settings",
    "storage",
    "worker",
    "workflows",
}
# Adapters to the outside world (mail, files) and the screening engine: below the database and
# the workflow engine, beside the other adapters.
_ADAPTER_MUST_NOT = {"db", "simulators", "api", "activities", "workflows", "sqlalchemy", "settings"}
FORBIDDEN: dict[str, set[str]] = {
    "domain": BROKERFLOW - {"domain"} | {"sqlalchemy", "httpx", "temporalio", "fastapi", "psycopg"},
    "workflows": {
        "db",
        "mt5_adapter",
        "api",
        "activities",
        "settings",
        "sqlalchemy",
        "httpx",
        "psycopg",
        "random",
        "uuid",
        "time",
    },
    "api": {"mt5_adapter", "simulators", "activities"},
    "activities": {"simulators", "api", "workflows"},
    "mt5_adapter": {"db", "simulators", "api", "activities", "workflows", "sqlalchemy"},
    "psp_adapter": {
        "db",
        "simulators",
        "api",
        "activities",
        "workflows",
        "sqlalchemy",
        "mt5_adapter",
    },
    "db": {"api", "activities", "workflows", "mt5_adapter", "simulators"},
    "reports": {"api", "activities", "workflows", "mt5_adapter", "db", "simulators"},
    "mailer": _ADAPTER_MUST_NOT | {"mt5_adapter", "psp_adapter", "storage", "screening"},
    "storage": _ADAPTER_MUST_NOT | {"mt5_adapter", "psp_adapter", "mailer", "screening"},
    "screening": _ADAPTER_MUST_NOT | {"mt5_adapter", "psp_adapter", "mailer", "storage", "httpx"},
    "simulators": BROKERFLOW,
}


def imported_roots(path: Path) -> set[str]:
    roots: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


def violations(package: str) -> list[str]:
    found = []
    for path in sorted((ROOT / package).rglob("*.py")):
        for root in sorted(imported_roots(path) & FORBIDDEN[package]):
            found.append(f"{path.relative_to(ROOT)} imports {root}")
    return found


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_package_keeps_its_import_rules(package: str) -> None:
    assert violations(package) == []


def test_the_checker_catches_a_forbidden_import(tmp_path: Path) -> None:
    module = tmp_path / "bad.py"
    module.write_text("from db.models import Client\nimport httpx\n")
    assert imported_roots(module) & FORBIDDEN["workflows"] == {"db", "httpx"}


def test_domain_is_mypy_strict_clean() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "domain"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout


def test_ruff_is_clean() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "."], cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout
