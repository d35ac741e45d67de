"""Precision and recall of a Screener on labelled queries (screening/samples/labelled_queries.csv).

CSV columns: query, dob (YYYY-MM-DD or empty), nationality (ISO2 or empty), expected (qualified
party keys `source:key` separated by `|`, empty = "must not alert"), category (true_match |
transliteration | near_miss), kind (person | entity, optional, default person).

Counting is per alerted party: an alert on an expected party is a true positive, an alert on
any other party a false positive, an expected party without an alert a false negative. The
same person on several lists is several expected keys. `recall_on_listed_names` screens every
primary name and strong alias of every loaded party, as written, and asks for an alert on that
party.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Literal

from domain.screening import PartyKind, ScreeningSubject
from screening.formats import load_list
from screening.matcher import Screener

Category = Literal["true_match", "transliteration", "near_miss"]
CATEGORIES: tuple[Category, ...] = ("true_match", "transliteration", "near_miss")
SAMPLES = Path(__file__).resolve().parent / "samples"
LABELLED = SAMPLES / "labelled_queries.csv"


@dataclass(frozen=True)
class LabelledQuery:
    query: str
    dob: date | None
    nationality: str | None
    expected: frozenset[str]
    category: Category
    kind: PartyKind = PartyKind.PERSON

    def subject(self) -> ScreeningSubject:
        kind = PartyKind.ENTITY if self.kind != PartyKind.PERSON else PartyKind.PERSON
        return ScreeningSubject(
            full_name=self.query, date_of_birth=self.dob, nationality=self.nationality, kind=kind
        )


def read_labelled(path: Path = LABELLED) -> list[LabelledQuery]:
    rows = []
    with path.open(encoding="utf-8", newline="") as handle:
        for line in csv.DictReader(handle):
            category = line["category"].strip()
            if category not in CATEGORIES:
                raise ValueError(f"{path}: unknown category {category!r}")
            rows.append(
                LabelledQuery(
                    query=line["query"],
                    dob=date.fromisoformat(line["dob"]) if line["dob"].strip() else None,
                    nationality=line["nationality"].strip() or None,
                    expected=frozenset(k for k in line["expected"].split("|") if k.strip()),
                    category=category,  # checked against CATEGORIES above
                    kind=PartyKind((line.get("kind") or "person").strip() or "person"),
                )
            )
    return rows


@dataclass(frozen=True)
class Evaluation:
    precision: float
    recall: float
    recall_on_listed_names: float
    recall_by_category: dict[str, float]
    false_positives_by_category: dict[str, int]
    true_positives: int
    false_positives: int
    false_negatives: int
    queries: int
    listed_names: int
    confusion: tuple[str, ...] = field(default_factory=tuple)  # every FP and FN, explained
    listed_names_missed: tuple[str, ...] = field(default_factory=tuple)

    def report(self) -> str:
        lines = [
            f"queries={self.queries} precision={self.precision:.3f} recall={self.recall:.3f} "
            f"recall_on_listed_names={self.recall_on_listed_names:.3f} "
            f"(listed names screened: {self.listed_names})",
            f"TP={self.true_positives} FP={self.false_positives} FN={self.false_negatives}",
            "recall by category: "
            + ", ".join(f"{k}={v:.3f}" for k, v in sorted(self.recall_by_category.items())),
            "false positives by category: "
            + ", ".join(f"{k}={v}" for k, v in sorted(self.false_positives_by_category.items())),
        ]
        lines += [f"  {line}" for line in self.confusion]
        lines += [f"  listed name missed: {line}" for line in self.listed_names_missed]
        return "\n".join(lines)


def _ratio(hits: int, total: int) -> float:
    return hits / total if total else 1.0


def evaluate(screener: Screener, rows: Iterable[LabelledQuery]) -> Evaluation:
    tp = fp = fn = 0
    per_category: dict[str, list[int]] = {}
    wrong_by_category: dict[str, int] = dict.fromkeys(CATEGORIES, 0)
    confusion: list[str] = []
    count = 0
    for row in rows:
        count += 1
        hits = screener.screen(row.subject())
        alerted = {f"{h.source.value}:{h.party_key}": h for h in hits if h.is_alert}
        scores = {f"{h.source.value}:{h.party_key}": h.score for h in hits}
        found = row.expected & alerted.keys()
        tp += len(found)
        fn += len(row.expected - found)
        wrong = alerted.keys() - row.expected
        fp += len(wrong)
        wrong_by_category[row.category] += len(wrong)
        bucket = per_category.setdefault(row.category, [0, 0])
        bucket[0] += len(found)
        bucket[1] += len(row.expected)
        for key in sorted(row.expected - found):
            confusion.append(
                f"FN [{row.category}] {row.query!r}: {key} scored {scores.get(key, 'below floor')}"
            )
        for key in sorted(wrong):
            hit = alerted[key]
            confusion.append(
                f"FP [{row.category}] {row.query!r}: {key} {hit.listed_name!r} "
                f"score {hit.score} {hit.factors}"
            )
    missed: list[str] = []
    listed = 0
    for party in screener.parties:
        kind = PartyKind.PERSON if party.kind == PartyKind.PERSON else PartyKind.ENTITY
        for name in party.names:
            if not name.strong:
                continue
            listed += 1
            hits = screener.screen(ScreeningSubject(full_name=name.text, kind=kind))
            if not any(
                h.is_alert and (h.source, h.party_key) == (party.source, party.key) for h in hits
            ):
                missed.append(f"{party.qualified_key} {name.text!r}")
    return Evaluation(
        precision=_ratio(tp, tp + fp),
        recall=_ratio(tp, tp + fn),
        recall_on_listed_names=_ratio(listed - len(missed), listed),
        recall_by_category={k: _ratio(v[0], v[1]) for k, v in per_category.items() if v[1]},
        false_positives_by_category=wrong_by_category,
        true_positives=tp,
        false_positives=fp,
        false_negatives=fn,
        queries=count,
        listed_names=listed,
        confusion=tuple(confusion),
        listed_names_missed=tuple(missed),
    )


def sample_screener() -> Screener:
    """A Screener over the four sample files."""
    files = ("ofac_sdn_sample.xml", "eu_fsf_sample.xml", "un_consolidated_sample.xml")
    snapshots = [load_list(None, SAMPLES / name) for name in (*files, "pep_sample.csv")]
    return Screener(snapshots)
