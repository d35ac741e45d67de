"""The money workflows' search attributes are registered wherever BrokerFlow's Temporal starts:
the dev server of `make run` and of the tests (`search_attribute_flags`), and the production
shape's registration step in docker-compose.yml, with the names and types of the contracts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from contracts.funds import SEARCH_ATTRIBUTES, search_attribute_flags, search_attribute_types

ROOT = Path(__file__).resolve().parents[2]


def test_the_dev_server_flags_name_each_attribute_with_its_type() -> None:
    flags = search_attribute_flags()
    assert flags[::2] == ["--search-attribute"] * len(SEARCH_ATTRIBUTES)
    assert dict(flag.split("=") for flag in flags[1::2]) == {
        "BrokerflowClientId": "Keyword",
        "BrokerflowPaymentReference": "Keyword",
        "BrokerflowMovementStatus": "Keyword",
        "BrokerflowStatusSince": "Datetime",
    }


def test_compose_registers_them_before_the_api_and_the_worker_start() -> None:
    services: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    step = services["temporal-search-attributes"]
    script = "\n".join(step["command"])
    for name, kind in search_attribute_types().items():
        assert f"{name}={kind}" in script
    assert "temporal operator search-attribute create" in script
    assert step["depends_on"]["temporal"]["condition"] == "service_healthy"
    for service in ("api", "worker"):
        waits = services[service]["depends_on"]["temporal-search-attributes"]
        assert waits["condition"] == "service_completed_successfully"


def test_the_stack_starts_its_dev_server_with_them() -> None:
    assert "*search_attribute_flags()" in (ROOT / "ops" / "stack.py").read_text()
    assert "*search_attribute_flags()" in (ROOT / "tests" / "conftest.py").read_text()
