"""The name normalisation pipeline of the reference (§5.2), applied identically to list names
and to the names screened against them.

1. NFKC (µ -> μ, full-width forms, ligatures), then transliterate non-Latin scripts with
   anyascii *before* stripping marks (NFD would turn й into и + U+0306 and change the letter).
2. NFD, drop combining marks, NFC; hand-map the letters that do not decompose
   (ø ł đ æ œ ß, dotless i, þ ð ħ); anything still outside ASCII goes through anyascii.
3. casefold.
4. apostrophes deleted (Mu'ammar -> muammar); hyphens split the token *and* the joined form is
   kept as a second form (al-qadhafi -> `al qadhafi` and `alqadhafi`); other punctuation
   separates tokens.
5. individuals: `SURNAME, Given` -> `Given SURNAME`.
6. individuals: honorifics dropped (Mr, Dr, Sheikh, Haji, General, ...); particles (abu, bin,
   al, de, van, ...) are kept with a low-weight role.
7. organisations: legal forms canonicalised (Joint Stock Company -> jsc, OOO -> llc, Limited ->
   ltd) and given a low-weight role.
Token order is kept for display; the matcher compares order-free.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

from anyascii import anyascii

from domain.screening import PartyKind
from screening.variants import is_patronymic

Role = Literal["name", "particle", "patronymic", "legal"]

_HAND_MAP = str.maketrans(
    {
        "ø": "o", "Ø": "O", "ł": "l", "Ł": "L", "đ": "d", "Đ": "D", "æ": "ae", "Æ": "AE",
        "œ": "oe", "Œ": "OE", "ß": "ss", "ẞ": "SS", "\u0131": "i", "þ": "th", "Þ": "TH",
        "ð": "d", "Ð": "D", "ħ": "h", "Ħ": "H",
    }
)  # fmt: skip
_APOSTROPHES = re.compile(r"['`\u00b4\u02b9\u02bb\u02bc\u02bd\u02be\u02bf\u2018\u2019\u201b]")
_SEGMENT = re.compile(r"[a-z0-9]+(?:-+[a-z0-9]+)*")

HONORIFICS = frozenset(
    {
        "mr", "mrs", "ms", "miss", "mx", "dr", "prof", "professor", "sheikh", "shaykh", "sheik",
        "shaikh", "haji", "hajji", "hadji", "mullah", "mulla", "maulavi", "mawlawi", "maulvi",
        "moulavi", "general", "gen", "colonel", "col", "major", "maj", "captain", "capt",
        "lieutenant", "brigadier", "sir", "dame", "lord", "rev", "reverend", "ayatollah", "hon",
        "jr", "junior", "sr", "senior",
    }
)  # fmt: skip
PERSON_PARTICLES = frozenset(
    {
        "abu", "abou", "abo", "bin", "ben", "ibn", "bn", "ebn", "bint", "binti", "binte", "al",
        "el", "ul", "ad", "ar", "as", "at", "az", "ed", "abd", "ould", "wuld", "van", "von",
        "der", "den", "de", "da", "di", "del", "della", "dos", "das", "do", "du", "la", "le",
        "los", "las", "y", "ogly", "oglu", "kyzy", "gizi", "uulu",
    }
)  # fmt: skip
ENTITY_STOPWORDS = frozenset(
    {
        "of", "the", "and", "for", "in", "on", "a", "an", "de", "del", "la", "le", "les", "des",
        "du", "da", "di", "y", "et", "und", "fur", "der", "die", "das",
    }
)  # fmt: skip
# Longest phrases first; every canonical form maps to itself, so the pipeline is idempotent.
_LEGAL_PHRASES: tuple[tuple[tuple[str, ...], str], ...] = tuple(
    sorted(
        {
            ("public", "joint", "stock", "company"): "pjsc",
            ("open", "joint", "stock", "company"): "ojsc",
            ("closed", "joint", "stock", "company"): "cjsc",
            ("joint", "stock", "company"): "jsc",
            ("limited", "liability", "company"): "llc",
            ("limited", "liability", "partnership"): "llp",
            ("public", "limited", "company"): "plc",
            ("limited", "partnership"): "lp",
            ("societe", "anonyme"): "sa",
            ("sociedad", "anonima"): "sa",
            ("s", "a"): "sa",
            ("l", "l", "c"): "llc",
            ("gesellschaft", "mit", "beschrankter", "haftung"): "gmbh",
            ("aktiengesellschaft",): "ag",
            ("limited",): "ltd",
            ("incorporated",): "inc",
            ("corporation",): "corp",
            ("company",): "co",
            ("ooo",): "llc",
            ("tov",): "llc",
            ("zao",): "cjsc",
            ("oao",): "ojsc",
            ("pao",): "pjsc",
            ("ao",): "jsc",
        }.items(),
        key=lambda item: -len(item[0]),
    )
)
LEGAL_FORMS = frozenset(
    {
        "ltd", "llc", "llp", "lp", "plc", "inc", "corp", "co", "jsc", "pjsc", "ojsc", "cjsc",
        "sa", "sarl", "srl", "spa", "bv", "nv", "gmbh", "ag", "kg", "pte", "pty", "fze", "fzco",
        "fzc", "doo", "ab", "oy", "as", "sas", "sl", "lda", "kft", "zrt", "sro",
    }
)  # fmt: skip


def _non_latin(ch: str) -> bool:
    return not unicodedata.name(ch, "").startswith("LATIN") and unicodedata.category(ch)[0] == "L"


def _syllabic(ch: str) -> bool:
    """Han and Hangul: a character is a syllable; anyascii glues them (김정은 -> GimJeongEun)."""
    code = ord(ch)
    return 0x3400 <= code <= 0x9FFF or 0xAC00 <= code <= 0xD7AF or 0xF900 <= code <= 0xFAFF


_ABJAD = re.compile("[\u0590-\u08ff\ufb1d-\ufdff\ufe70-\ufeff]")


def is_abjad(text: str) -> bool:
    """Arabic, Hebrew, Syriac, Thaana: short vowels are not written, see variants.skeleton."""
    return _ABJAD.search(text) is not None


@lru_cache(maxsize=32_768)
def fold(text: str) -> str:
    """Steps 1-4 except the hyphen: ASCII, casefolded, apostrophes deleted."""
    text = unicodedata.normalize("NFKC", text)
    if not text.isascii():
        out = []
        run: list[str] = []  # Han / Hangul syllables of one word

        def flush() -> None:  # family name, then the given name as one unit: Chen Wei-ling
            if run:
                out.append(f" {run[0]} {'-'.join(run[1:])} ")
                run.clear()

        for ch in text:
            if _syllabic(ch):
                run.append(anyascii(ch))
                continue
            flush()
            out.append(ch if ch.isascii() or not _non_latin(ch) else anyascii(ch))
        flush()
        text = unicodedata.normalize("NFD", "".join(out))
        text = unicodedata.normalize(
            "NFC", "".join(ch for ch in text if unicodedata.category(ch) != "Mn")
        )
        text = anyascii(text.translate(_HAND_MAP))
    return _APOSTROPHES.sub("", text.casefold())


def _reorder(text: str) -> str:
    """`MADURO MOROS, Nicolas` -> `Nicolas MADURO MOROS` (individuals, a single comma only)."""
    if text.count(",") != 1:
        return text
    surname, given = (part.strip() for part in text.split(","))
    return f"{given} {surname}" if surname and given else text


_LEGAL_BY_FIRST: dict[str, list[tuple[tuple[str, ...], str]]] = {}
for _phrase, _canonical in _LEGAL_PHRASES:  # longest first, kept in that order
    _LEGAL_BY_FIRST.setdefault(_phrase[0], []).append((_phrase, _canonical))


def _canonical_legal(tokens: list[str]) -> list[str]:
    out: list[str] = []
    i = 0
    while i < len(tokens):
        for phrase, canonical in _LEGAL_BY_FIRST.get(tokens[i], ()):
            if tuple(tokens[i : i + len(phrase)]) == phrase:
                out.extend(canonical.split())
                i += len(phrase)
                break
        else:
            out.append(tokens[i])
            i += 1
    return out


def _person_role(token: str) -> Role:
    if token in PERSON_PARTICLES:
        return "particle"
    return "patronymic" if is_patronymic(token) else "name"


def _entity_role(token: str) -> Role:
    if token in LEGAL_FORMS:
        return "legal"
    return "particle" if token in ENTITY_STOPWORDS else "name"


@dataclass(frozen=True, slots=True)
class NameForm:
    """One comparable form of a name: tokens, their roles, and whether it came from an abjad."""

    tokens: tuple[str, ...]
    roles: tuple[Role, ...]
    abjad: bool = False
    # Which hyphenated compound each token came from (Wei-Ling, Dubois-Lefevre): a compound
    # matched in part is not a "missing 2nd surname".
    compounds: tuple[int, ...] = ()

    @property
    def compact(self) -> str:
        """All tokens glued: `JSC ARGUMENT` and `JSCARGUMENT` meet here."""
        return "".join(self.tokens)

    @property
    def text(self) -> str:
        return " ".join(self.tokens)


def _is_person(kind: PartyKind) -> bool:
    return kind == PartyKind.PERSON


def _tokens(
    segments: list[str], kind: PartyKind, *, joined: bool
) -> tuple[tuple[str, ...], tuple[int, ...]]:
    """Tokens and, for each, the index of the hyphenated segment it came from."""
    if joined:
        pairs = [(s.replace("-", ""), i) for i, s in enumerate(segments)]
    else:
        pairs = [(t, i) for i, s in enumerate(segments) for t in s.split("-") if t]
    if _is_person(kind):
        kept = [p for p in pairs if p[0] not in HONORIFICS] or pairs
        return tuple(t for t, _ in kept), tuple(i for _, i in kept)
    tokens = _canonical_legal([t for t, _ in pairs])  # reshapes the sequence: no compounds
    return tuple(tokens), tuple(range(len(tokens)))


@lru_cache(maxsize=32_768)
def name_forms(text: str, kind: PartyKind = PartyKind.PERSON) -> tuple[NameForm, ...]:
    """The split form first, then the hyphen-joined form if it differs. Empty if no letters."""
    folded = fold(text)
    if _is_person(kind):
        folded = _reorder(folded)
    segments = _SEGMENT.findall(folded)
    if not segments:
        return ()
    abjad = is_abjad(text)
    role = _person_role if _is_person(kind) else _entity_role
    forms: list[NameForm] = []
    for joined in (False, True):
        tokens, compounds = _tokens(segments, kind, joined=joined)
        form = NameForm(tokens, tuple(role(t) for t in tokens), abjad, compounds)
        if tokens and form not in forms:
            forms.append(form)
    return tuple(forms)


def normalise(text: str, kind: PartyKind = PartyKind.PERSON) -> str:
    """The normalised split form as one string ('' if the name has no letters or digits)."""
    forms = name_forms(text, kind)
    return forms[0].text if forms else ""
