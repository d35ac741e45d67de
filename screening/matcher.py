"""Fuzzy name screening against list snapshots (reference §5.4-5.7).

Scoring, per (query name form, listed name form), both normalised by `screening.normalise`:

* Token alignment, order-free. Each query token looks for a partner among the listed tokens
  (two adjacent tokens may be glued, so `Abdul Rahman` meets `Abdulrahman`). A pair of tokens
  are partners when they are equal (1.0); in one variant class, Mohamed/Muhammad,
  Qadhafi/Gaddafi (0.95); an abjad-script side's consonant skeletons agree, mhmd/mohamed
  (0.90); a near spelling - Levenshtein <= 1, or <= 2 from 9 letters, with Jaro-Winkler >= 0.80
  (>= 0.85 after a x0.9 penalty when the first letters differ) - (the Jaro-Winkler, at most
  0.94); or equal phonetic keys of 3+ letters with Levenshtein <= max(2, length/4) (0.88-0.94).
  Tokens of 3 letters or fewer match only exactly or by variant class. Whole-string similarity
  never decides: it is what over-scores Kim Jong Un / Kim Jong Il, Putin / Putilin,
  Petrov / Petrovich and Gazprom / Gazprombank, whose odd token finds no partner here.
* A query token with the role `name` left without a partner rejects the pair outright.
* name score = 100 x the weighted mean similarity of the aligned pairs (particles 0.3,
  patronymics 0.5, legal forms 0.2), minus points for what stayed unmatched:
  - query particle or patronymic 4, legal form 2;
  - listed particle 4 (1 for an organisation's stopword), patronymic 6, legal form 2;
  - the first listed name token: 8 for people (a 2nd surname, a nisba), 15 for organisations,
    10 when the query holds a single name token; 30 instead when it is half of a hyphenated
    compound whose other half matched (Chen Wei / Chen Wei-Ling) or when a person is compared
    with an organisation's name; every further missing name token 30;
  - 20 more when a single name token carries the match and the listed name has more to it.
* Weak aliases never enter the fuzzy index: an exact normalised match scores WEAK_ALIAS_SCORE,
  below the alert threshold, so DOB or nationality must agree to raise it (OFAC FAQ 1646).
* A party's score is its best name's score adjusted by DOB and nationality
  (`domain.screening.secondary_adjustment`). People are never compared with vessels/aircraft.

Candidates come from an inverted index (token, glued pair, variant class, phonetic key,
single-deletion neighbours, consonant skeleton, compact form): a listed name is scored only if
every name token of the query reaches it, so one subject against ~20k parties scores a handful
of names rather than the whole list.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from itertools import pairwise

from rapidfuzz.distance import JaroWinkler, Levenshtein

from domain.screening import (
    COUNTRY_AGREE_BONUS,
    DOB_AGREE_BONUS,
    NATIONALITY_AGREE_BONUS,
    REPORT_FLOOR,
    ListedParty,
    ListSnapshot,
    ListSource,
    PartyKind,
    ScreeningHit,
    ScreeningSubject,
    dob_compatible,
    nationality_compatible,
    secondary_adjustment,
)
from screening.normalise import NameForm, Role, name_forms
from screening.variants import phonetic_key, skeleton, variant_class

WEAK_ALIAS_SCORE = 75
COMPACT_SCORE = 97  # `JSC ARGUMENT` vs `JSCARGUMENT`: same letters, different spacing

_WEIGHT: dict[Role, float] = {"name": 1.0, "patronymic": 0.5, "particle": 0.3, "legal": 0.2}
_QUERY_MINOR_PENALTY = {"particle": 4, "patronymic": 4, "legal": 2}
_LIST_MINOR_PENALTY = {
    "person": {"particle": 4, "patronymic": 6, "legal": 2},
    # "The Group for the Preservation of the Holy Sites": stopwords carry nothing
    "entity": {"particle": 1, "patronymic": 6, "legal": 2},
}
_FIRST_MISSING = {"person": 8, "entity": 15}
_FIRST_MISSING_THIN = 10  # the query has a single name token
_FURTHER_MISSING = 30
_THIN_QUERY = 20  # one name token carries the match and the listed name has more
_MAX_BONUS = DOB_AGREE_BONUS + NATIONALITY_AGREE_BONUS + COUNTRY_AGREE_BONUS
_EXPANSION_CACHE = 200_000  # query tokens remembered with their listed partners


def _group(kind: PartyKind) -> str:
    return "person" if kind == PartyKind.PERSON else "entity"


def _pipeline_kind(group: str) -> PartyKind:
    return PartyKind.PERSON if group == "person" else PartyKind.ENTITY


@lru_cache(maxsize=500_000)
def token_similarity(a: str, b: str, skeleton_ok: bool = False) -> tuple[float, str]:
    """(similarity 0..1, how) for two folded tokens; 0 means "not partners"."""
    if a == b:
        return 1.0, "exact"
    variant = variant_class(a)
    if variant is not None and variant == variant_class(b):
        return 0.95, "variant"
    if skeleton_ok and a.isalpha() and b.isalpha():
        bare = skeleton(a)
        short = len(a) <= 4 and len(b) <= 4
        if bare and bare == skeleton(b) and (len(bare) >= 2 or short):
            return 0.9, "skeleton"
    longer = max(len(a), len(b))
    if min(len(a), len(b)) <= 3 or not (a.isalpha() and b.isalpha()):
        return 0.0, ""
    edits = Levenshtein.distance(a, b)
    jw = JaroWinkler.similarity(a, b)
    need = 0.8
    if a[0] != b[0]:  # watchman's different-first-letter penalty, and a higher bar (Yong/Jong)
        jw, need = jw * 0.9, 0.85
    if edits <= (1 if longer <= 8 else 2) and jw >= need:
        return min(jw, 0.94), "fuzzy"
    key = phonetic_key(a)
    if len(key) >= 3 and key == phonetic_key(b) and edits <= max(2, longer // 4):
        return max(0.88, min(jw, 0.94)), "phonetic"
    return 0.0, ""


def _deletions(token: str) -> set[str]:
    return {token[:i] + token[i + 1 :] for i in range(len(token))}


@dataclass(frozen=True, slots=True)
class _Entry:
    """One indexed form of one strong name."""

    party: int
    name_index: int
    form: NameForm
    group: str


@dataclass(frozen=True, slots=True)
class _Scored:
    score: int
    method: str
    detail: str
    missing: str
    thin: bool


def _units(form: NameForm, positions: Iterable[int]) -> list[tuple[tuple[int, ...], str]]:
    chosen = sorted(positions)
    units: list[tuple[tuple[int, ...], str]] = [((i,), form.tokens[i]) for i in chosen]
    units += [
        ((i, i + 1), form.tokens[i] + form.tokens[i + 1]) for i, j in pairwise(chosen) if j == i + 1
    ]
    return units


def _align(
    query: NameForm, listed: NameForm, group: str, cross_kind: bool = False
) -> _Scored | None:
    """Score one query form against one listed form; None when a query name token is left
    without a partner. `cross_kind`: a person's name against an organisation's, where a
    partial cover is no evidence, so every missing listed name token costs the full 30."""
    if query.tokens == listed.tokens:
        return _Scored(100, "exact", "all tokens equal", "", False)
    if query.compact == listed.compact:
        return _Scored(COMPACT_SCORE, "compact", f"{query.compact} joined", "", False)
    skeleton_ok = query.abjad or listed.abjad
    pairs: list[tuple[float, str, tuple[int, ...], tuple[int, ...]]] = []
    for qi, qt in enumerate(query.tokens):
        for li, lt in enumerate(listed.tokens):
            sim, how = token_similarity(qt, lt, skeleton_ok)
            if sim > 0:
                pairs.append((sim, how, (qi,), (li,)))
    q_used: set[int] = set()
    l_used: set[int] = set()
    chosen: list[tuple[float, str, tuple[int, ...], tuple[int, ...]]] = []

    def take(candidates: list[tuple[float, str, tuple[int, ...], tuple[int, ...]]]) -> None:
        for pair in sorted(candidates, key=lambda p: -p[0]):
            if q_used.isdisjoint(pair[2]) and l_used.isdisjoint(pair[3]):
                chosen.append(pair)
                q_used.update(pair[2])
                l_used.update(pair[3])

    take(pairs)
    q_free = set(range(len(query.tokens))) - q_used
    l_free = set(range(len(listed.tokens))) - l_used
    if q_free and l_free:  # second pass: glue adjacent leftovers (Abdul Rahman / Abdulrahman)
        glued = []
        for q_pos, q_text in _units(query, q_free):
            for l_pos, l_text in _units(listed, l_free):
                if len(q_pos) + len(l_pos) == 3:
                    sim, how = token_similarity(q_text, l_text, skeleton_ok)
                    if sim > 0:
                        glued.append((sim, how + "+glued", q_pos, l_pos))
        take(glued)
    q_missing = [i for i in range(len(query.tokens)) if i not in q_used]
    if any(query.roles[i] == "name" for i in q_missing):
        return None
    if not chosen:
        return None
    weighted = total = 0.0
    for sim, _, q_pos, _l in chosen:
        weight = max(_WEIGHT[query.roles[i]] for i in q_pos)
        weighted += sim * weight
        total += weight
    points = 100.0 * weighted / total
    points -= sum(_QUERY_MINOR_PENALTY[query.roles[i]] for i in q_missing)
    l_missing = [i for i in range(len(listed.tokens)) if i not in l_used]
    names_matched = sum(1 for i in q_used if query.roles[i] == "name")
    thin = names_matched <= 1
    missing_names = [i for i in l_missing if listed.roles[i] == "name"]
    minor = _LIST_MINOR_PENALTY[group]
    points -= sum(minor[listed.roles[i]] for i in l_missing if i not in missing_names)
    # Half a hyphenated compound (Chen Wei vs Chen Wei-Ling) is no missing 2nd surname.
    matched_compounds = {listed.compounds[i] for i in l_used} if listed.compounds else set()
    split = [
        i for i in missing_names if listed.compounds and listed.compounds[i] in matched_compounds
    ]
    if missing_names:
        first = _FIRST_MISSING_THIN if thin else _FIRST_MISSING[group]
        waived = not cross_kind and len(split) < len(missing_names)
        points -= first if waived else _FURTHER_MISSING
        points -= _FURTHER_MISSING * (len(missing_names) - 1)
    if thin and any(listed.roles[i] != "legal" for i in l_missing):
        points -= _THIN_QUERY
    detail = ", ".join(
        f"{'+'.join(query.tokens[i] for i in q)}~{'+'.join(listed.tokens[i] for i in li)} {how}"
        for _, how, q, li in sorted(chosen, key=lambda p: p[2])
    )
    missing = " ".join(listed.tokens[i] for i in l_missing)
    return _Scored(max(0, round(points)), "tokens", detail, missing, thin)


class Screener:
    """Built once from list snapshots (one per source); `screen` is then cheap. Safe to share
    between threads: the only mutation after construction is a memo of query-token lookups."""

    def __init__(self, snapshots: Iterable[ListSnapshot]) -> None:
        self._parties: list[ListedParty] = []
        self._entries: list[_Entry] = []
        self._postings: dict[str, list[int]] = defaultdict(list)
        self._compact: dict[str, list[int]] = defaultdict(list)
        self._by_variant: dict[str, set[str]] = defaultdict(set)
        self._by_phonetic: dict[str, set[str]] = defaultdict(set)
        self._by_deletion: dict[str, set[str]] = defaultdict(set)
        self._by_skeleton: dict[str, set[str]] = defaultdict(set)
        self._by_abjad_skeleton: dict[str, set[str]] = defaultdict(set)
        self._weak: dict[tuple[str, str], list[tuple[int, int]]] = defaultdict(list)
        self._abjad_tokens: set[str] = set()
        self._indexed: set[tuple[str, bool]] = set()
        self._expansions: dict[tuple[str, bool], frozenset[str]] = {}
        self.sources: dict[ListSource, ListSnapshot] = {}
        for snapshot in snapshots:
            if snapshot.source in self.sources:
                raise ValueError(f"two {snapshot.source.value} snapshots: give the newest only")
            self.sources[snapshot.source] = snapshot
            for party in snapshot.parties:
                self._add(party)
        # Freeze the defaultdicts so a lookup of an unknown key does not grow them.
        for attr in ("_postings", "_compact", "_by_variant", "_by_phonetic", "_by_deletion"):
            setattr(self, attr, dict(getattr(self, attr)))
        self._by_skeleton = dict(self._by_skeleton)
        self._by_abjad_skeleton = dict(self._by_abjad_skeleton)
        self._weak = dict(self._weak)

    def __len__(self) -> int:
        return len(self._parties)

    @property
    def parties(self) -> tuple[ListedParty, ...]:
        return tuple(self._parties)

    def _add(self, party: ListedParty) -> None:
        index = len(self._parties)
        self._parties.append(party)
        group = _group(party.kind)
        for name_index, name in enumerate(party.names):
            forms = name_forms(name.text, _pipeline_kind(group))
            if not name.strong:
                for form in forms:
                    self._weak[(group, _weak_key(form, group))].append((index, name_index))
                continue
            for form in forms:
                entry = len(self._entries)
                self._entries.append(_Entry(index, name_index, form, group))
                self._compact[form.compact].append(entry)
                glued = {a + b for a, b in zip(form.tokens, form.tokens[1:], strict=False)}
                for unit in glued | set(form.tokens):
                    postings = self._postings[unit]
                    if not postings or postings[-1] != entry:
                        postings.append(entry)
                for token in form.tokens:
                    self._index_token(token, form.abjad)
                for unit in glued:  # glued pairs: found as such or by variant class only
                    variant = variant_class(unit)
                    if variant is not None:
                        self._by_variant[variant].add(unit)

    def _index_token(self, token: str, abjad: bool) -> None:
        if (token, abjad) in self._indexed:
            return
        self._indexed.add((token, abjad))
        variant = variant_class(token)
        if variant is not None:
            self._by_variant[variant].add(token)
        key = phonetic_key(token)
        if len(key) >= 3:
            self._by_phonetic[key].add(token)
        if len(token) >= 4 and token.isalpha():
            self._by_deletion[token].add(token)
            for deleted in _deletions(token):
                self._by_deletion[deleted].add(token)
        bare = skeleton(token)
        if bare:
            self._by_skeleton[bare].add(token)
            if abjad:
                self._by_abjad_skeleton[bare].add(token)
                self._abjad_tokens.add(token)

    def _expand(self, token: str, abjad: bool) -> frozenset[str]:
        """Listed tokens that may be partners of a query token (cached: names repeat)."""
        cached = self._expansions.get((token, abjad))
        if cached is None:
            if len(self._expansions) > _EXPANSION_CACHE:
                self._expansions.clear()
            cached = self._expansions[(token, abjad)] = frozenset(self._lookup(token, abjad))
        return cached

    def _lookup(self, token: str, abjad: bool) -> set[str]:
        found = {token}
        variant = variant_class(token)
        if variant is not None:
            found |= self._by_variant.get(variant, set())
        key = phonetic_key(token)
        if len(key) >= 3:
            found |= self._by_phonetic.get(key, set())
        if len(token) >= 4 and token.isalpha():
            neighbours = _deletions(token) | {token}
            if len(token) >= 9 and token not in self._postings:
                # two edits are allowed from 9 letters; only worth the search for a token the
                # list does not have as such (a misspelling)
                neighbours |= {d2 for d1 in _deletions(token) for d2 in _deletions(d1)}
            for neighbour in neighbours:
                found |= self._by_deletion.get(neighbour, set())
        bare = skeleton(token)
        skeletons = self._by_skeleton if abjad else self._by_abjad_skeleton
        found |= skeletons.get(bare, set())
        return {
            t
            for t in found
            if t in self._postings
            and token_similarity(token, t, abjad or t in self._abjad_tokens)[0] > 0
        }

    def _entries_for(self, unit: str, abjad: bool, memo: dict[str, set[int]]) -> set[int]:
        """Entries holding a partner of `unit` (memoised for the duration of one screening)."""
        found = memo.get(unit)
        if found is None:
            found = memo[unit] = set().union(
                *(self._postings[partner] for partner in self._expand(unit, abjad))
            )
        return found

    def _candidates(self, form: NameForm, memo: dict[str, set[int]]) -> set[int]:
        """Entries where every name token of the query can find a partner (alone or glued to
        its neighbour), plus those with the same compact form. Rarest token first."""
        names = [i for i, r in enumerate(form.roles) if r == "name"]
        if not names:  # only particles ("Al", "Abu"): the whole name must be listed as such
            return set(self._compact.get(form.compact, ()))
        per_position: list[set[int]] = []
        for i in names:
            reach = set(self._entries_for(form.tokens[i], form.abjad, memo))
            for j in (i - 1, i + 1):
                if 0 <= j < len(form.tokens):
                    pair = form.tokens[min(i, j)] + form.tokens[max(i, j)]
                    reach |= self._entries_for(pair, form.abjad, memo)
            per_position.append(reach)
        per_position.sort(key=len)
        found = set(per_position[0]) if per_position else set()
        for reach in per_position[1:]:
            found &= reach
            if not found:
                break
        found.update(self._compact.get(form.compact, ()))
        return found

    def _weak_hits(self, forms: Iterable[NameForm], group: str) -> Iterator[tuple[int, int]]:
        for form in forms:
            yield from self._weak.get((group, _weak_key(form, group)), ())

    def screen(self, subject: ScreeningSubject, floor: int = REPORT_FLOOR) -> list[ScreeningHit]:
        """Hits scoring `floor` or more, best first."""
        best: dict[int, tuple[int, int, _Scored]] = {}  # party -> (score, name_index, why)
        memo: dict[str, set[int]] = {}
        for group in ("person", "entity"):
            forms = name_forms(subject.full_name, _pipeline_kind(group))
            cross = subject.kind == PartyKind.PERSON and group == "entity"
            for form in forms:
                for entry_id in self._candidates(form, memo):
                    entry = self._entries[entry_id]
                    if entry.group != group or not self._kind_allowed(entry.party, subject):
                        continue
                    scored = _align(form, entry.form, group, cross)
                    if scored is not None:
                        self._keep(best, entry.party, entry.name_index, scored)
            for party, name_index in self._weak_hits(forms, group):
                if self._kind_allowed(party, subject):
                    weak = _Scored(WEAK_ALIAS_SCORE, "weak_alias", "exact", "", False)
                    self._keep(best, party, name_index, weak)
        hits = [
            hit
            for party, (_, name_index, why) in best.items()
            if (hit := self._hit(party, name_index, why, subject, floor)) is not None
        ]
        hits.sort(key=lambda h: (-h.score, -h.name_score, h.source.value, h.party_key))
        return hits

    def _kind_allowed(self, party: int, subject: ScreeningSubject) -> bool:
        kind = self._parties[party].kind
        return subject.kind != PartyKind.PERSON or kind in (PartyKind.PERSON, PartyKind.ENTITY)

    @staticmethod
    def _keep(
        best: dict[int, tuple[int, int, _Scored]], party: int, name_index: int, why: _Scored
    ) -> None:
        current = best.get(party)
        # Ties go to the earlier name: the primary name before aliases.
        if current is None or (why.score, -name_index) > (current[0], -current[1]):
            best[party] = (why.score, name_index, why)

    def _hit(
        self, index: int, name_index: int, why: _Scored, subject: ScreeningSubject, floor: int
    ) -> ScreeningHit | None:
        party = self._parties[index]
        if why.score + _MAX_BONUS < floor:
            return None
        factors: dict[str, str | int] = {"name_score": why.score, "method": why.method}
        if why.detail:
            factors["tokens" if why.method == "tokens" else "detail"] = why.detail
        if why.missing:
            factors["unmatched_listed"] = why.missing
        if why.thin:
            factors["generic"] = "a single distinctive token carries the match"
        if not party.names[name_index].strong:
            factors["weak_alias"] = "exact match on a weak alias only"
        adjustment = 0
        if party.kind == PartyKind.PERSON and subject.kind == PartyKind.PERSON:
            dob = dob_compatible(party.birth_dates, subject.date_of_birth)
            nationality = nationality_compatible(party.nationalities, subject)
            country = subject.country is not None and subject.country in party.nationalities
            adjustment = secondary_adjustment(dob, nationality, country)
            factors["dob"] = dob
            factors["nationality"] = nationality
            if country:
                factors["country"] = "agree"
            factors["adjustment"] = adjustment
        score = min(100, max(0, why.score + adjustment))
        if score < floor:
            return None
        return ScreeningHit(
            source=party.source,
            party_key=party.key,
            kind=party.kind,
            listed_name=party.names[name_index].text,
            primary_name=party.primary_name,
            reference=party.reference,
            score=score,
            name_score=why.score,
            is_pep=party.source == ListSource.PEP,
            factors=factors,
        )


def _weak_key(form: NameForm, group: str) -> str:
    """Order-free for people (the list may say `SURNAME Given`), as written for organisations."""
    return " ".join(sorted(form.tokens) if group == "person" else form.tokens)
