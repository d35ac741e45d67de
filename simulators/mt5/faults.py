"""Injected faults, set through `/_sim/faults` or `--fault`: the simulator-only test surface."""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass, replace
from typing import Any

MODES = {
    "drop_after_commit",
    "drop_before_commit",
    "refuse_after_commit",
    "retcode",
    "latency",
    "http_403",
}
FIELDS = {"path", "mode", "retcode", "times", "probability", "latency_ms", "latency_ms_max", "hits"}
MAX_LATENCY_MS = 3_600_000
MAX_WHOLE = 2**31 - 1


def _whole(value: Any, what: str, high: int = MAX_WHOLE) -> int:
    """A whole number from 0 to `high`, from JSON or from a flag's text."""
    try:
        if isinstance(value, bool) or not isinstance(value, int | str):
            raise ValueError
        number = int(value)
    except ValueError:
        raise ValueError(f"{what} must be a whole number, not {value!r}") from None
    if not 0 <= number <= high:
        raise ValueError(f"{what} must be from 0 to {high}, not {number}")
    return number


def _fraction(value: Any, what: str) -> float:
    """A number from 0 to 1, from JSON or from a flag's text."""
    try:
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise ValueError
        number = float(value)
    except ValueError:
        raise ValueError(f"{what} must be a number, not {value!r}") from None
    if not 0 <= number <= 1:  # NaN fails too
        raise ValueError(f"{what} must be from 0 to 1, not {value!r}")
    return number


@dataclass
class FaultRule:
    path: str
    mode: str
    # The answer of `retcode` and `refuse_after_commit` (the latter applies the command first:
    # the nastiest real case, a write on the books answered "10006 Request rejected" or "2").
    retcode: int = 10
    times: int | None = None  # None: for ever
    probability: float = 1.0
    latency_ms: int = 0
    # With `latency_ms_max`, each firing waits a uniform draw in [latency_ms, latency_ms_max]
    # (whole milliseconds) from the plan's seeded random; without it, exactly `latency_ms`.
    latency_ms_max: int | None = None
    hits: int = 0

    @classmethod
    def parse(cls, raw: Any) -> FaultRule:
        """A rule from JSON or from a `--fault` flag (where every value is a string); ValueError
        says what is wrong. `hits` is accepted (so a described rule can be sent back) and reset."""
        if not isinstance(raw, dict):
            raise ValueError(f"a fault rule is an object, not {raw!r}")
        if unknown := sorted(set(raw) - FIELDS):
            raise ValueError(f"unknown fault rule fields {unknown}; known: {sorted(FIELDS)}")
        path, mode = raw.get("path"), raw.get("mode")
        if not isinstance(path, str) or not path.startswith("/"):
            raise ValueError(f"path must be a request path such as /api/user/add, not {path!r}")
        if mode not in MODES:
            raise ValueError(f"mode must be one of {sorted(MODES)}, not {mode!r}")
        rule = cls(
            path=path,
            mode=mode,
            retcode=_whole(raw.get("retcode", 10), "retcode"),
            times=None if raw.get("times") is None else _whole(raw["times"], "times"),
            probability=_fraction(raw.get("probability", 1.0), "probability"),
            latency_ms=_whole(raw.get("latency_ms", 0), "latency_ms", MAX_LATENCY_MS),
            latency_ms_max=(
                None
                if raw.get("latency_ms_max") is None
                else _whole(raw["latency_ms_max"], "latency_ms_max", MAX_LATENCY_MS)
            ),
        )
        if rule.latency_ms_max is not None and rule.latency_ms_max < rule.latency_ms:
            raise ValueError("latency_ms_max must not be under latency_ms")
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

    @staticmethod
    def refusal_after_commit(rules: list[FaultRule]) -> int | None:
        """The retcode to answer a command that was applied all the same (`refuse_after_commit`),
        or None when no such rule fired for this request."""
        return next((r.retcode for r in rules if r.mode == "refuse_after_commit"), None)

    def describe(self) -> dict[str, Any]:
        return {"rules": [asdict(rule) for rule in self.rules]}
