"""Precision and recall on the labelled queries against the four sample lists.

Run with -s to see the figures; they are also written to test-artifacts/screening-quality.txt.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from screening.evaluation import Evaluation, evaluate, read_labelled, sample_screener

ARTIFACT = Path(__file__).resolve().parents[2] / "test-artifacts" / "screening-quality.txt"


@pytest.fixture(scope="module")
def evaluation() -> Evaluation:
    rows = read_labelled()
    result = evaluate(sample_screener(), rows)
    report = result.report()
    print("\n" + report)
    ARTIFACT.parent.mkdir(parents=True, exist_ok=True)
    ARTIFACT.write_text(report + "\n", encoding="utf-8")
    return result


def test_the_labelled_set_covers_every_category() -> None:
    rows = read_labelled()
    assert len(rows) >= 40
    counts = {
        c: sum(1 for r in rows if r.category == c)
        for c in ("true_match", "transliteration", "near_miss")
    }
    assert min(counts.values()) >= 10, counts


def test_every_listed_name_alerts_on_its_party(evaluation: Evaluation) -> None:
    assert evaluation.listed_names > 100
    assert evaluation.recall_on_listed_names == 1.0, evaluation.listed_names_missed


def test_true_matches_and_transliterations_all_alert(evaluation: Evaluation) -> None:
    assert evaluation.recall_by_category["true_match"] == 1.0, evaluation.confusion
    assert evaluation.recall_by_category["transliteration"] == 1.0, evaluation.confusion
    assert evaluation.recall == 1.0


def test_precision(evaluation: Evaluation) -> None:
    assert evaluation.precision >= 0.9, evaluation.confusion
