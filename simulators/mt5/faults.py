"""Injected faults, set through `/_sim/faults` or `--fault`: the simulator-only test surface."""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass
from typing import Any

MODES = {"drop_after_commit", "drop_before_commit", "retcode", "latency", "http_403"}


@dataclass
class FaultRule:
    path: str
    mode: str
    retcode: int = 10
    times: int | None = None  # None: for ever
    probability: float = 1.0
    latency_ms: int = 0
    hits: int = 0

    @classmethod
    def parse(cls, raw: dict[str, Any]) -> FaultRule:
        rule = cls(
            path=str(raw["path"]),
            mode=str(raw["mode"]),
            retcode=int(raw.get("retcode", 10)),
            times=None if raw.get("times") is None else int(raw["times"]),
            probability=float(raw.get("probability", 1.0)),
            latency_ms=int(raw.get("latency_ms", 0)),
        )
        if rule.mode not in MODES or not 0 <= rule.probability <= 1:
            raise ValueError(f"bad fault rule {raw!r}")
        return rule

    @classmethod
    def from_flag(cls, flag: str) -> FaultRule:
        """`path=/api/user/add,mode=drop_after_commit,times=1`."""
        return cls.parse(dict(part.split("=", 1) for part in flag.split(",")))


class FaultPlan:
    def __init__(self, rules: list[FaultRule] | None = None, seed: int | None = None) -> None:
        self.rules = rules or []
        self.random = random.Random(seed)

    def replace(self, rules: list[FaultRule], seed: int | None) -> None:
        self.rules = rules
        self.random = random.Random(seed)

    def for_request(self, path: str) -> list[FaultRule]:
        """The rules that fire for this request (each firing counts against its `times`)."""
        fired = []
        for rule in self.rules:
            if rule.path != path or (rule.times is not None and rule.hits >= rule.times):
                continue
            if self.random.random() < rule.probability:
                rule.hits += 1
                fired.append(rule)
        return fired

    def describe(self) -> dict[str, Any]:
        return {"rules": [asdict(rule) for rule in self.rules]}
