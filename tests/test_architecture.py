"""The import rules of docs/architecture.md, read from its table and checked on every module.

The table is an allow-list: a package may import only the BrokerFlow packages and the libraries
its row names (the standard library always, except what its last column forbids), and every
BrokerFlow arrow the table names must still be used, so the table and the code cannot drift.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RULES_DOC = ROOT / "docs" / "architecture.md"
ANY = "*"


@dataclass(frozen=True)
class Rule:
    package: str
    may_import: frozenset[str]  # BrokerFlow packages, or {ANY} minus `except_`
    except_: frozenset[str]
    may_use: frozenset[str]  # libraries, or {ANY}
    never: frozenset[str]  # standard-library modules


def _names(cell: str) -> frozenset[str]:
    cell = cell.strip()
    if cell in {"", "—", "-"}:
        return frozenset()
    return frozenset(name.strip(" `") for name in cell.split(","))


def parse_rules(text: str) -> dict[str, Rule]:
    """The rows between the import-rules markers of docs/architecture.md."""
    block = re.search(r"<!-- import-rules:start -->(.*?)<!-- import-rules:end -->", text, re.S)
    if block is None:
        raise AssertionError(f"{RULES_DOC} has no import-rules table")
    rules: dict[str, Rule] = {}
    for line in block.group(1).strip().splitlines()[2:]:
        package, may_import, may_use, never = (cell.strip() for cell in line.strip("|").split("|"))
        allowed, _, excepted = may_import.partition(" except ")
        rules[package.strip("`")] = Rule(
            package=package.strip("`"),
            may_import=_names(allowed),
            except_=_names(excepted),
            may_use=_names(may_use),
            never=_names(never),
        )
    return rules


RULES = parse_rules(RULES_DOC.read_text())


def brokerflow_packages() -> set[str]:
    """Every top-level package and module of the project (what an import can name)."""
    packages = {path.parent.name for path in ROOT.glob("*/__init__.py")}
    modules = {path.stem for path in ROOT.glob("*.py")}
    return packages | modules | {"simulators", "bench", "tests"}


def modules_of(package: str) -> list[Path]:
    single = ROOT / f"{package}.py"
    return [single] if single.exists() else sorted((ROOT / package).rglob("*.py"))


def imported_roots(path: Path) -> set[str]:
    roots: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots - {"__future__"}


def breaks_of(rule: Rule, path: Path, ours: set[str]) -> list[str]:
    where = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
    found = []
    for root in sorted(imported_roots(path) - {rule.package}):
        if root in ours:
            allowed = (ANY in rule.may_import and root not in rule.except_) or (
                root in rule.may_import
            )
            if not allowed:
                found.append(f"{where} imports {root}, which its row does not allow")
        elif root in sys.stdlib_module_names:
            if root in rule.never:
                found.append(f"{where} imports {root}, which its row forbids")
        elif ANY not in rule.may_use and root not in rule.may_use:
            found.append(f"{where} uses the library {root}, which its row does not name")
    return found


def test_every_package_has_a_row() -> None:
    assert brokerflow_packages() - {"conftest"} == set(RULES)


@pytest.mark.parametrize("package", sorted(RULES))
def test_package_imports_only_what_its_row_allows(package: str) -> None:
    ours = brokerflow_packages()
    rule = RULES[package]
    assert [b for path in modules_of(package) for b in breaks_of(rule, path, ours)] == []


@pytest.mark.parametrize("package", sorted(RULES))
def test_every_arrow_in_the_table_is_still_used(package: str) -> None:
    used = set().union(*(imported_roots(path) for path in modules_of(package)))
    named = RULES[package].may_import - {ANY}
    assert named - used == set(), f"docs/architecture.md names arrows {package} no longer uses"


# Workflow code replays: it reads the time from `workflow.now()`, never from the machine's clock.
WALL_CLOCK_CALLS = {"now", "utcnow", "today", "time", "monotonic", "perf_counter"}
WALL_CLOCK_OWNERS = {"datetime", "date", "time"}


def wall_clock_calls(path: Path) -> list[str]:
    """`datetime.now()`, `date.today()`, `time.time()` and the like, by line."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        owner = node.func.value
        name = owner.id if isinstance(owner, ast.Name) else getattr(owner, "attr", None)
        if node.func.attr in WALL_CLOCK_CALLS and name in WALL_CLOCK_OWNERS:
            found.append(f"{path.name}:{node.lineno} {name}.{node.func.attr}()")
    return found


def test_workflow_code_never_reads_the_wall_clock() -> None:
    assert [call for path in modules_of("workflows") for call in wall_clock_calls(path)] == []


def test_the_clock_checker_sees_the_usual_spellings(tmp_path: Path) -> None:
    module = tmp_path / "clocky.py"
    module.write_text(
        "import datetime, time\nfrom datetime import date\n"
        "a = datetime.datetime.now()\nb = date.today()\nc = time.time()\n"
        "d = workflow.now()\n"
    )
    assert wall_clock_calls(module) == [
        "clocky.py:3 datetime.now()",
        "clocky.py:4 date.today()",
        "clocky.py:5 time.time()",
    ]


def test_the_checker_catches_what_a_row_does_not_allow(tmp_path: Path) -> None:
    module = tmp_path / "bad.py"
    module.write_text("from db.models import Client\nimport httpx\nimport random\nimport json\n")
    breaks = breaks_of(RULES["workflows"], module, brokerflow_packages())
    assert [b.split(" ", 1)[1] for b in breaks] == [
        "imports db, which its row does not allow",
        "uses the library httpx, which its row does not name",
        "imports random, which its row forbids",
    ]


def test_the_table_parser_reads_wildcards_and_exceptions() -> None:
    rules = parse_rules(
        "<!-- import-rules:start -->\n| a | b | c | d |\n|---|---|---|---|\n"
        "| `bench` | * except tests, simulators | * | — |\n<!-- import-rules:end -->"
    )
    assert rules["bench"].may_import == {ANY}
    assert rules["bench"].except_ == {"tests", "simulators"}
    assert rules["bench"].never == frozenset()


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
