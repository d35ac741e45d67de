"""Transliteration variants (reference §5.3), phonetic keys (§5.4) and patronymics.

Lists publish many transliterations but never all of them; these tables bridge the common
ones (`Mohamed`/`Muhammad` is only 0.80 Jaro-Winkler, so a lower threshold is not the answer).
Every token is already folded by `screening.normalise` (ASCII, casefolded).
"""

from __future__ import annotations

import re
from functools import lru_cache

import jellyfish

# Each tuple is one equivalence class; the first member is its canonical key.
_CLASSES: tuple[tuple[str, ...], ...] = (
    # Arabic
    (
        "muhammad",
        "mohammed",
        "mohamed",
        "mohammad",
        "mohamad",
        "muhamad",
        "muhammed",
        "muhamed",
        "mohamud",
        "mohd",
        "mhd",
        "mehmet",
        "mehmed",
        "mahomed",
        "muhammet",
    ),
    ("ahmad", "ahmed", "ahmet", "achmed", "akhmed"),
    ("usama", "osama", "ousama", "oussama", "usamah", "osamah"),
    ("bin", "ben", "ibn", "bn", "ebn"),
    ("bint", "binti", "binte"),
    ("abd", "abdul", "abdel", "abdal", "abdoul", "abdol", "abdil"),
    ("al", "el", "ul"),
    ("abu", "abou", "abo"),
    (
        "husayn",
        "hussein",
        "hussain",
        "husain",
        "husein",
        "hosein",
        "hossein",
        "houssein",
        "hussien",
        "huseyin",
        "hasayn",
    ),
    ("hasan", "hassan", "hassane", "hasen"),
    (
        "qadhafi",
        "gaddafi",
        "kadhafi",
        "gadhafi",
        "khadafy",
        "khadafi",
        "qaddafi",
        "gadafi",
        "kadafi",
        "ghadafi",
        "ghaddafi",
        "ghadaffi",
        "gathafi",
        "ghathafi",
        "qathafi",
        "kaddafi",
        "qadafi",
        "kazzafi",
        "gheddafi",
        "qadhdhafi",
    ),
    ("yusuf", "youssef", "yousef", "yousuf", "yusef", "youssouf", "yousif", "yusif", "jusuf"),
    ("umar", "omar", "omer", "oumar"),
    ("abdullah", "abdallah", "abdulla", "abdalla", "abdollah"),
    ("ibrahim", "ebrahim", "ibraheem", "ibrahima"),
    ("mustafa", "mostafa", "moustafa", "mustapha", "mostapha"),
    ("mahmud", "mahmoud", "mahmood"),
    ("ali", "aly"),
    ("khalid", "khaled"),
    ("said", "saeed", "sayed", "sayyid", "saiid", "sayid", "seyed", "seyyed"),
    ("muammar", "moammar", "muammer", "moamar", "muamar", "moammer", "muamer"),
    ("mutassim", "mutassem", "moatassam", "moatassim", "muatassim", "mutasim", "muatesem"),
    ("ladin", "laden"),
    ("hizballah", "hezbollah", "hizbullah", "hizbollah", "hezbullah"),
    ("qaida", "qaeda", "qaidah"),
    ("taliban", "taleban"),
    ("abdulrahman", "abdurrahman", "abdelrahman", "abdalrahman", "abderrahmane", "abdurahman"),
    ("yunus", "younis", "younes", "yunis"),
    ("jamal", "gamal", "djamel"),
    ("jafar", "jaafar", "gafar"),
    ("faisal", "faysal", "feisal"),
    # Cyrillic (Russian / Ukrainian / Belarusian renderings)
    (
        "yevgeny",
        "yevgeniy",
        "evgeny",
        "evgeniy",
        "evgenii",
        "yevgenii",
        "evgenij",
        "jevgenij",
        "yevhen",
        "eugene",
        "evgueni",
    ),
    ("sergei", "sergey", "sergej", "serguei", "serhiy", "serhii", "siarhei"),
    (
        "aleksandr",
        "alexander",
        "alexandr",
        "aleksander",
        "oleksandr",
        "olexandr",
        "alexandre",
        "aleksandar",
        "alyaksandr",
        "aliaksandr",
    ),
    ("yuri", "yury", "yuriy", "iurii", "jurij", "yurii", "iouri", "youri", "yurij"),
    ("dmitry", "dmitri", "dmitriy", "dmitrii", "dmytro", "dmitrij"),
    ("vladimir", "volodymyr", "wladimir", "uladzimir"),
    ("mikhail", "mykhailo", "michail", "mihail", "mikhael"),
    ("nikolai", "nikolay", "mykola", "nicolai", "nikolaj"),
    ("andrei", "andrey", "andriy", "andrii", "andrej"),
    ("alexei", "alexey", "aleksei", "aleksey", "oleksiy", "oleksii", "alexej", "aliaksei"),
    ("igor", "ihor"),
    ("pyotr", "petr", "petro", "piotr", "pyetr"),
    ("fyodor", "fedor", "feodor", "fiodor"),
    ("grigory", "grigori", "grigoriy", "hryhoriy", "grigorii"),
    ("viktor", "victor"),
    ("yakov", "iakov", "jakov"),
    ("ilya", "ilia", "illia", "ilja"),
    ("arkady", "arkadiy", "arkadi", "arkadii"),
    ("gennady", "gennadiy", "gennadi", "hennadiy", "gennadii"),
    ("vyacheslav", "viacheslav", "vjacheslav"),
    ("vitaly", "vitaliy", "vitali", "vitalii"),
    ("anatoly", "anatoliy", "anatoli", "anatolii"),
    ("valery", "valeriy", "valeri", "valerii"),
    ("vasily", "vasiliy", "vasili", "vasilii", "vasyl"),
    ("georgy", "georgiy", "georgi", "georgii", "heorhiy"),
    ("yulia", "yuliya", "iuliia", "julia", "yuliia"),
    ("natalia", "natalya", "nataliya", "natalja"),
    ("tatiana", "tatyana", "tetiana"),
    ("olga", "olha"),
    ("yelena", "elena", "olena", "jelena"),
    ("semyon", "semen", "semion"),
    ("matvei", "matvey"),
    ("timofei", "timofey"),
    ("alexandrovich", "aleksandrovich", "oleksandrovych"),
    # Korean (North `Ri` vs South `Lee`/`Yi`/`Rhee`) and McCune-Reischauer vs Revised
    # (anyascii gives the Revised Romanization: 김정은 -> gim jeong eun)
    ("ri", "lee", "yi", "rhee", "li", "rhie"),
    ("kim", "gim"),
    ("jong", "chong", "jeong", "jung", "chung"),
    ("un", "eun"),
    ("pak", "park", "bak"),
    ("choe", "choi"),
    ("jang", "chang"),
    ("kang", "gang"),
    ("cho", "jo"),
)

_CANONICAL: dict[str, str] = {member: group[0] for group in _CLASSES for member in group}

# Given names a patronymic can be built on, besides the classes above.
_GIVEN_NAMES = frozenset(
    {
        "ivan",
        "pavel",
        "boris",
        "oleg",
        "roman",
        "maksim",
        "maxim",
        "denis",
        "artem",
        "anton",
        "kirill",
        "konstantin",
        "leonid",
        "stanislav",
        "stepan",
        "ruslan",
        "rustam",
        "vadim",
        "vasili",
        "yaroslav",
        "zakhar",
        "eduard",
        "arkadi",
        "gleb",
        "lev",
        "mark",
        "nikita",
        "filipp",
        "gavriil",
        "german",
        "ilyas",
        "emil",
        "artur",
        "albert",
        "rinat",
        "ramzan",
        "akhmat",
        "adam",
        "ibragim",
        "magomed",
        "murad",
        "timur",
        "marat",
        "kamil",
    }
)

_PATRONYMIC = re.compile(
    r"^([a-z]{2,}?)(ovich|evich|yevich|ievich|ovna|evna|yevna|ich|ichna|ovych|ovycha|ivna)$"
)
# Surname endings that transliterate several ways: -ский -> -skiy/-skii/-skyy/-ski/-sky.
_SKY = re.compile(r"(s|ts|z|c)k(?:iy|ii|yy|yi|ij|i|y)$")


@lru_cache(maxsize=65_536)
def variant_class(token: str) -> str | None:
    """The canonical key of the token's equivalence class, or None if it has none."""
    if token in _CANONICAL:
        return _CANONICAL[token]
    for article in ("al", "el", "ul"):  # ELKADDAFI, ALQADHAFI: an article glued on
        rest = token[len(article) :]
        if token.startswith(article) and len(rest) >= 4 and rest in _CANONICAL:
            return _CANONICAL[rest]
    if len(token) >= 6 and _SKY.search(token):
        return _SKY.sub(r"\1ky", token)
    if len(token) >= 6 and token.endswith(("off", "eff")):  # SMIRNOFF / SMIRNOV
        return token[:-2] + "v"
    if len(token) >= 5 and token.endswith(("ov", "ev")):
        return token
    return None


# Classes above that are not given names (a patronymic is never built on them).
_NOT_GIVEN = frozenset(
    {
        "bin", "bint", "abd", "al", "abu", "qadhafi", "ladin", "hizballah", "qaida", "taliban",
        "alexandrovich", "ri", "kim", "jong", "un", "pak", "choe", "jang", "kang", "cho",
    }
)  # fmt: skip


def is_given_name(token: str) -> bool:
    canonical = _CANONICAL.get(token)
    if canonical is not None:
        return canonical not in _NOT_GIVEN
    return token in _GIVEN_NAMES


@lru_cache(maxsize=65_536)
def is_patronymic(token: str) -> bool:
    """ALEKSANDROVICH (built on a known given name), not MALKEVICH (a surname ending -evich)."""
    match = _PATRONYMIC.match(token)
    if not match:  # (DAVUTOGLU is a surname; a standalone `ogly` is a particle)
        return False
    stem = match.group(1)
    candidates = {stem, stem + "y", stem + "i", stem + "iy", stem + "ei", stem + "a", stem + "o"}
    candidates |= {stem[:-1] + "ei"} if stem.endswith("e") else set()
    return any(is_given_name(c) for c in candidates)


_PREMAP = (
    ("kh", "k"), ("gh", "g"), ("dh", "d"), ("th", "t"), ("ph", "f"), ("ck", "k"),
    ("q", "k"), ("w", "v"), ("ou", "u"),
)  # fmt: skip


def _premap(token: str) -> str:
    for old, new in _PREMAP:
        token = token.replace(old, new)
    return token


@lru_cache(maxsize=65_536)
def phonetic_key(token: str) -> str:
    """Metaphone after folding the digraphs that transliterations disagree on.

    qadhafi, gaddafi, khadafy, kadhafi, gadhafi -> KTF; osama, usama -> ASM; yevgeny, evgeniy
    -> AFJN; putin PTN but putilin PTLN. A feature and a candidate key, never a verdict.
    """
    if not token.isalpha():
        return token
    key = jellyfish.metaphone(_premap(token))
    if not key:
        return ""
    if key[0] in "AEIOUY":  # vowel-initial spellings (Yevgeny/Evgeniy, Osama/Usama)
        key = "A" + key[1:]
    if key[0] == "K" and token[0] in "gq":  # Gaddafi / Qadhafi / Kadhafi
        key = "K" + key[1:]
    key = key.replace("0", "T")
    return key[0] + key[1:].replace("H", "")  # KHADAFY / KADAFY; an initial H stays


_VOWELS = re.compile(r"[aeiouyw]")
_DOUBLE = re.compile(r"(.)\1+")


@lru_cache(maxsize=65_536)
def skeleton(token: str) -> str:
    """Consonant skeleton for abjad scripts: Arabic is written without short vowels, so محمد
    transliterates to `mhmd`. `mohamed` -> mhmd, `saddam` -> sdm, `usama`/`smh` -> sm."""
    bare = _DOUBLE.sub(r"\1", _VOWELS.sub("", _premap(token)))
    bare = bare.replace("g", "k")
    if len(bare) > 1 and bare.endswith("h"):  # ta marbuta: أسامة -> smh
        bare = bare[:-1]
    return bare
