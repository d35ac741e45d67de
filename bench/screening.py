"""Sanctions screening: subjects per second against a list of `--size` parties, and its quality.

    python -m bench.screening --size 20000

Builds a synthetic list by perturbing the sample lists' names (their given names, surnames and
organisation words, recombined, with syllable-built surnames added so the vocabulary grows with
the list like a real one), loads it into a `Screener` and screens `--subjects` subjects: half are
listed parties written differently (reordered, a transliteration variant, a one-letter typo, a
dropped middle name or patronymic, upper case, accents, a hyphen), half are near misses built
from listed names (another surname grown by a suffix - Petrov/Petrovich - or with two letters
inserted - Putin/Putilin -, or a different given name, or a fresh name), checked to have no
listed name within two edits. Baseline, measured in the same run on the same subjects: an exact
dict lookup of the normalised name (what a screening without fuzzy matching does).
"""

from __future__ import annotations

import argparse
import random
import time
from datetime import date

from rapidfuzz import process
from rapidfuzz.distance import Levenshtein

from domain.screening import (
    BirthDate,
    ListedName,
    ListedParty,
    ListSnapshot,
    ListSource,
    PartyKind,
    ScreeningSubject,
)
from screening.evaluation import sample_screener
from screening.matcher import Screener
from screening.normalise import name_forms, normalise
from screening.variants import _CLASSES

SYLLABLES = (
    "ka ro vin mel tor sha lan dri bek mur zan pol gre sti nov lev ash kir dun bal tam "
    "rez vol gan tuk hel sor mir dan jas fen cal bor lum nik ost pav ras sev tib ulm vey"
).split()
SUFFIXES = ("ov", "ev", "enko", "ski", "yan", "idze", "oglu", "ez", "ini", "sson", "man", "i")
GIVEN = (
    "john maria james anna peter elena david sofia michael laura thomas olga daniel irina "
    "carlos fatima omar aisha hamid leila ivan natasha pierre claire hans greta luca giulia "
    "wei ling jose carmen ali amir rashid karim samir nadia tariq yasmin hassan layla"
).split()
ORG_WORDS = (
    "trading export import shipping petroleum industrial holding capital energy logistics "
    "maritime finance investment technologies systems resources mining steel chemical agro "
    "global united eastern northern atlantic pacific golden star crescent"
).split()
LEGAL = ("LLC", "JSC", "Limited", "Co.", "S.A.", "GmbH", "Trading Company", "PJSC", "FZE")


def _surname(rng: random.Random) -> str:
    return "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 3))) + rng.choice(SUFFIXES)


def _pools(rng: random.Random) -> tuple[list[str], list[str], list[str]]:
    """Given names, surnames and organisation words taken from the sample lists, plus more."""
    given, surnames, org = set(GIVEN), set(), set(ORG_WORDS)
    for group in _CLASSES:
        if len(group[0]) > 3:
            given.update(group[:3])
    for party in sample_screener().parties:
        for name in party.names:
            forms = name_forms(name.text, party.kind)
            if not forms or not name.text.isascii():
                continue
            tokens = [
                t for t, r in zip(forms[0].tokens, forms[0].roles, strict=True) if r == "name"
            ]
            if party.kind == PartyKind.PERSON and len(tokens) >= 2:
                given.add(tokens[0])
                surnames.add(tokens[-1])
            elif party.kind == PartyKind.ENTITY:
                org.update(t for t in tokens if len(t) > 3)
    surnames.update(_surname(rng) for _ in range(15_000))
    return sorted(given), sorted(surnames), sorted(org)


def synthetic_list(size: int, rng: random.Random) -> tuple[ListSnapshot, list[str]]:
    given, surnames, org = _pools(rng)
    parties = []
    for i in range(size):
        if rng.random() < 0.8:
            parts = [rng.choice(given).title()]
            if rng.random() < 0.4:
                parts.append(rng.choice(given).title())
            if rng.random() < 0.2:
                parts.append(rng.choice(given).title() + rng.choice(("ovich", "evich", "ovna")))
            family = rng.choice(surnames).upper()
            if rng.random() < 0.25:
                family += " " + rng.choice(surnames).upper()
            name = f"{family}, {' '.join(parts)}"
            kind = PartyKind.PERSON
            births: tuple[BirthDate, ...] = (BirthDate.year(rng.randint(1940, 2000)),)
        else:
            brand = _surname(rng) if rng.random() < 0.7 else rng.choice(surnames)
            words = [brand, *rng.sample(org, rng.randint(1, 2))]
            name = " ".join(words).upper() + " " + rng.choice(LEGAL)
            kind, births = PartyKind.ENTITY, ()
        parties.append(
            ListedParty(
                source=ListSource.OFAC_SDN,
                key=str(100_000 + i),
                kind=kind,
                names=(ListedName(text=name),),
                birth_dates=births,
            )
        )
    snapshot = ListSnapshot(
        source=ListSource.OFAC_SDN,
        published_at=date(2026, 1, 1),
        parties=tuple(parties),
        digest="0" * 64,
    )
    return snapshot, surnames


_VARIANTS = {m: [x for x in g if x != m] for g in _CLASSES for m in g}


def _typo(token: str, rng: random.Random) -> str:
    if len(token) < 5:
        return token
    i = rng.randrange(1, len(token) - 1)
    return token[:i] + rng.choice("aeiourn") + token[i + 1 :]


def true_subject(party: ListedParty, rng: random.Random) -> str:
    tokens = list(name_forms(party.primary_name, party.kind)[0].tokens)
    roles = list(name_forms(party.primary_name, party.kind)[0].roles)
    how = rng.randrange(6)
    if how == 0 and party.kind == PartyKind.PERSON:
        rng.shuffle(tokens)
    elif how == 1:
        swappable = [i for i, t in enumerate(tokens) if _VARIANTS.get(t)]
        if swappable:
            i = rng.choice(swappable)
            tokens[i] = rng.choice(_VARIANTS[tokens[i]])
    elif how == 2:
        longest = max(range(len(tokens)), key=lambda i: len(tokens[i]))
        tokens[longest] = _typo(tokens[longest], rng)
    elif how == 3 and party.kind == PartyKind.PERSON and len(tokens) >= 3:
        droppable = [i for i, r in enumerate(roles) if r == "patronymic"] or [1]
        del tokens[rng.choice(droppable)]
    elif how == 4:
        return party.primary_name.upper()
    elif how == 5 and len(tokens) >= 2:
        return f"{tokens[0].title()}-{tokens[1].title()} " + " ".join(tokens[2:])
    return " ".join(t.title() for t in tokens)


def near_miss(
    party: ListedParty, surnames: list[str], vocabulary: list[str], rng: random.Random
) -> str | None:
    tokens = list(name_forms(party.primary_name, party.kind)[0].tokens)
    if party.kind != PartyKind.PERSON or len(tokens) < 2:
        return None
    last = tokens[-1]
    how = rng.randrange(3)
    if how == 0:
        tokens[-1] = last + rng.choice(("ich", "enko", "ovsky", "bank"))
    elif how == 1 and len(last) > 3:
        i = rng.randrange(2, len(last))
        tokens[-1] = last[:i] + rng.choice(("il", "ar", "ok")) + last[i:]
    else:
        tokens[-1] = rng.choice(surnames) + rng.choice(("berg", "stein", "wood"))
    fresh = tokens[-1]
    if process.extractOne(fresh, vocabulary, scorer=Levenshtein.distance, score_cutoff=2):
        return None  # too close to something listed to call it a miss
    return " ".join(t.title() for t in tokens)


def main(size: int, subjects: int, seed: int) -> None:
    rng = random.Random(seed)
    snapshot, surnames = synthetic_list(size, rng)
    started = time.perf_counter()
    screener = Screener([snapshot])
    built = time.perf_counter() - started
    vocabulary = sorted({t for p in snapshot.parties for t in normalise(p.primary_name).split()})
    exact: dict[str, list[str]] = {}
    for party in snapshot.parties:
        exact.setdefault(normalise(party.primary_name, party.kind), []).append(party.key)
    # (subject, the party it is, the parties listed under the very same name)
    cases: list[tuple[str, str | None, set[str]]] = []
    while len(cases) < subjects:
        party = rng.choice(snapshot.parties)
        if len(cases) % 2 == 0:
            twins = set(exact[normalise(party.primary_name, party.kind)])
            cases.append((true_subject(party, rng), party.key, twins))
        elif (name := near_miss(party, surnames, vocabulary, rng)) is not None:
            cases.append((name, None, set()))
    queries = [ScreeningSubject(full_name=name) for name, _, _ in cases]
    started = time.perf_counter()
    exact_found = [exact.get(normalise(q.full_name), []) for q in queries]
    exact_seconds = time.perf_counter() - started

    started = time.perf_counter()
    results = [screener.screen(q) for q in queries]
    fuzzy_seconds = time.perf_counter() - started

    tp = fp = fn = 0
    misses: list[str] = []
    for (name, expected, twins), hits in zip(cases, results, strict=True):
        alerted = {h.party_key for h in hits if h.is_alert}
        wrong = alerted - twins  # the same name listed twice by chance is no false positive
        if expected is not None:
            tp += expected in alerted
            fn += expected not in alerted
            if expected not in alerted:
                misses.append(f"FN {name!r} -> {expected}")
        fp += len(wrong)
        misses += [f"FP {name!r} -> {key}" for key in sorted(wrong)]
    listed = [e for _, e, _ in cases if e is not None]
    exact_recall = sum(
        1 for (_, e, _), f in zip(cases, exact_found, strict=True) if e is not None and e in f
    ) / max(1, len(listed))
    rate = subjects / fuzzy_seconds
    exact_rate = subjects / exact_seconds
    precision = tp / max(1, tp + fp)
    recall = tp / max(1, tp + fn)
    print(
        f"list of {size} parties indexed in {built:.2f} s; {subjects} subjects "
        f"({len(listed)} listed, written differently; the rest near misses)"
    )
    for line in misses[:20]:
        print(f"  {line}")
    print(f"exact lookup: {exact_rate:.0f} subjects/s, recall {exact_recall:.3f}")
    print(f"fuzzy screening: {rate:.0f} subjects/s, TP={tp} FP={fp} FN={fn}")
    print(
        f"RESULT subjects_per_s={rate:.0f} ratio_to_exact={rate / exact_rate:.4f} "
        f"precision={precision:.3f} recall={recall:.3f} size={size}"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size", type=int, default=20_000, help="parties in the synthetic list")
    parser.add_argument("--subjects", type=int, default=2_000, help="subjects to screen")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    main(args.size, args.subjects, args.seed)
