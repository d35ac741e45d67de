"""`python -m reconciliation.check` with the optional `waiting` key: the documented example
(lost webhooks and a stuck payout, computed by `domain.reconciliation.waiting` as the
scheduled run's matching step does), the defaults of `as_of` and `stuck_after_seconds`, a
document without the key answered as before, and bad waiting input refused with exit code 2."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path
from typing import Any

import pytest

from reconciliation.check import answer, main
from whatif.command import BAD_INPUT

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "docs" / "examples" / "reconciliation-waiting.json"
EXPECTED = ROOT / "docs" / "examples" / "reconciliation-waiting.out.json"
DAY_EXAMPLE = ROOT / "docs" / "examples" / "reconciliation-day.json"


def test_the_documented_waiting_example_gives_the_documented_breaks(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main([str(EXAMPLE)]) == 0
    found = json.loads(capsys.readouterr().out)
    assert found == json.loads(EXPECTED.read_text())
    # By hand (docs/reconciliation.md): 001 and 002 settled while waiting, 003 sent 39 h before
    # as_of and unreported; 004 waits 8.5 h only, 005 is a deposit, 006 is not waiting.
    assert [(b["type"], b["reference"][-3:], b["amount"]) for b in found["breaks"]] == [
        ("missing_in_ledger", "006", "60.00"),
        ("lost_webhook", "002", "-80.00"),
        ("lost_webhook", "001", "150.00"),
        ("stuck_at_processor", "003", "250.00"),
    ]
    assert "39 h ago" in found["breaks"][3]["detail"]


def test_as_of_defaults_to_the_periods_end_and_the_age_is_configurable() -> None:
    document: dict[str, Any] = json.loads(EXAMPLE.read_text())
    del document["as_of"]  # the period's end: 2026-12-08T00:00Z
    document["stuck_after_seconds"] = 8 * 3600
    stuck = [b for b in answer(document)["breaks"] if b["type"] == "stuck_at_processor"]
    # 003: 38.5 h; 004: since 16:00 the day before, 8 h at the end: stuck too.
    assert [(b["key"], b["detail"].split(" to bankco ")[1]) for b in stuck] == [
        (
            "stuck:bankco:BFAAAA00000000000000003",
            "38 h ago, still payout_sent, in no settlement report",
        ),
        (
            "stuck:bankco:BFAAAA00000000000000004",
            "8 h ago, still payout_sent, in no settlement report",
        ),
    ]


def test_an_empty_waiting_list_changes_nothing() -> None:
    document: dict[str, Any] = json.loads(DAY_EXAMPLE.read_text())
    assert answer(document | {"waiting": []}) == answer(document)


@pytest.mark.parametrize(
    ("waiting", "says"),
    [
        ({"since": "2026-12-07T10:00:00"}, "zone"),
        ({"status": "completed"}, "status"),
        ({"direction": "transfer"}, "direction"),
        ({"amount": "1.001"}, "more decimals"),
    ],
)
def test_bad_waiting_input_exits_2(
    waiting: dict[str, str],
    says: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    payment = {
        "reference": "BF1",
        "provider": "bankco",
        "direction": "withdrawal",
        "status": "payout_sent",
        "amount": "1.00",
        "currency": "USD",
        "since": "2026-12-07T10:00:00Z",
    }
    document = {"day": "2026-12-07", "waiting": [payment | waiting]}
    monkeypatch.setattr(sys, "stdin", io.StringIO(json.dumps(document)))
    assert main(["-"]) == BAD_INPUT
    err = capsys.readouterr().err
    assert says in err and "Traceback" not in err


def test_as_of_without_a_zone_is_refused(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    document = {"day": "2026-12-07", "waiting": [], "as_of": "2026-12-08T00:30:00"}
    monkeypatch.setattr(sys, "stdin", io.StringIO(json.dumps(document)))
    assert main(["-"]) == BAD_INPUT
    assert "as_of needs a zone" in capsys.readouterr().err
