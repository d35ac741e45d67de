"""Injected faults, set through `/_sim/faults` or `--fault`: the simulator-only test surface."""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass, replace
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
    # With `latency_ms_max`, each firing waits a uniform draw in [latency_ms, latency_ms_max]
    # (whole milliseconds) from the plan's seeded random; without it, exactly `latency_ms`.
    latency_ms_max: int | None = None
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
            latency_ms_max=(
                None if raw.get("latency_ms_max") is None else int(raw["latency_ms_max"])
            ),
        )
        if (
            rule.mode not in MODES
            or not 0 <= rule.probability <= 1
            or rule.latency_ms < 0
            or (rule.latency_ms_max is not None and rule.latency_ms_max < rule.latency_ms)
        ):
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
        """The rules that fire for this request (each firing counts against its `times`).

        A latency rule with a range fires as a copy whose `latency_ms` is this request's draw,
        so the caller waits `latency_ms` whichever kind of latency rule fired."""
        fired = []
        for rule in self.rules:
            if rule.path != path or (rule.times is not None and rule.hits >= rule.times):
                continue
            if self.random.random() < rule.probability:
                rule.hits += 1
                fired.append(self._drawn(rule))
        return fired

    def _drawn(self, rule: FaultRule) -> FaultRule:
        if rule.mode != "latency" or rule.latency_ms_max is None:
            return rule
        delay = self.random.randint(rule.latency_ms, rule.latency_ms_max)
        return replace(rule, latency_ms=delay, latency_ms_max=None)

    def describe(self) -> dict[str, Any]:
        return {"rules": [asdict(rule) for rule in self.rules]}
