"""`.env.example` names every setting, so nobody has to read settings.py to configure BrokerFlow."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from pydantic import AliasChoices, BaseModel

from ops.stack import StackSettings
from settings import Settings

ROOT = Path(__file__).resolve().parents[2]


def env_names(model: type[BaseModel], prefix: str, delimiter: str = "__") -> Iterator[str]:
    for name, field in model.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            yield from env_names(annotation, f"{prefix}{name.upper()}{delimiter}", delimiter)
        elif isinstance(field.validation_alias, str):
            yield field.validation_alias.upper()
        elif isinstance(field.validation_alias, AliasChoices):
            # Any one of the accepted names will do; the first is the one to document.
            first = field.validation_alias.choices[0]
            yield str(first).upper()
        else:
            yield f"{prefix}{name.upper()}"


def documented() -> set[str]:
    names = set()
    for line in (ROOT / ".env.example").read_text().splitlines():
        text = line.lstrip("# ").strip()
        if "=" in text:
            names.add(text.split("=", 1)[0].strip())
    return names


def test_every_setting_is_documented() -> None:
    prefix = Settings.model_config.get("env_prefix", "")
    delimiter = Settings.model_config.get("env_nested_delimiter") or "__"
    wanted = set(env_names(Settings, prefix, delimiter))
    assert "BROKERFLOW_MT5__ADDRESS" in wanted  # nested fields are walked
    missing = sorted(wanted - documented())
    assert not missing, f".env.example does not document: {missing}"


def test_stack_knobs_are_documented() -> None:
    prefix = StackSettings.model_config.get("env_prefix", "")
    missing = sorted(set(env_names(StackSettings, prefix)) - documented())
    assert not missing, f".env.example does not document: {missing}"


def test_example_changes_nothing_when_copied() -> None:
    """Copied to .env for `make run`, it must not replace a default with a placeholder."""
    active = [
        line
        for line in (ROOT / ".env.example").read_text().splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    assert not active, f"uncommented lines in .env.example: {active}"
