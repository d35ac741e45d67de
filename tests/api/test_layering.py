"""The layering inside `api/`: a route module is a leaf, and schemas live in schemas modules.

A route module (any module of `api/` that builds an `APIRouter`) only translates HTTP to a
service call. Nothing imports it but `api/app.py`, which mounts its router: a helper, a schema or
an error map that another module needs belongs in a service, a schemas module or a shared module
(`api.deps`, `api.problems`, `api.pages`). And no route module declares a pydantic model: the
shapes a route reads and answers with are in its package's `schemas.py`.
"""

from __future__ import annotations

import ast
import importlib
import inspect
from pathlib import Path

import pytest
from pydantic import BaseModel

ROOT = Path(__file__).resolve().parents[2]
API = ROOT / "api"
MOUNTS_ROUTERS = {"api.app"}


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _api_modules() -> dict[str, ast.Module]:
    return {_module_name(p): ast.parse(p.read_text(), str(p)) for p in sorted(API.rglob("*.py"))}


MODULES = _api_modules()


def _builds_a_router(tree: ast.Module) -> bool:
    for node in tree.body:
        value = node.value if isinstance(node, ast.Assign | ast.AnnAssign) else None
        if isinstance(value, ast.Call):
            func = value.func
            name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
            if name == "APIRouter":
                return True
    return False


ROUTE_MODULES = sorted(name for name, tree in MODULES.items() if _builds_a_router(tree))


def _imported(tree: ast.Module) -> set[str]:
    """Every module an import statement names, `from a import b` counted as `a` and `a.b`."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def test_the_route_modules_are_found() -> None:
    assert {"api.audit.routes", "api.kyc.routes", "api.console.compliance"} <= set(ROUTE_MODULES)
    assert "api.app" not in ROUTE_MODULES


def test_only_the_app_imports_a_route_module() -> None:
    offences = [
        f"{importer} imports {name}"
        for importer, tree in MODULES.items()
        if importer not in MOUNTS_ROUTERS
        for name in sorted(_imported(tree) & set(ROUTE_MODULES))
    ]
    assert offences == []


@pytest.mark.parametrize("module_name", ROUTE_MODULES)
def test_a_route_module_declares_no_pydantic_model(module_name: str) -> None:
    module = importlib.import_module(module_name)
    models = [
        name
        for name, value in vars(module).items()
        if inspect.isclass(value)
        and issubclass(value, BaseModel)
        and value.__module__ == module_name
    ]
    assert models == [], f"{module_name} declares {models}: move them to a schemas module"
