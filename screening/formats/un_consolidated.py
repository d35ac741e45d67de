"""The UN Security Council consolidated list, `consolidated.xml` (reference §3).

Name parts FIRST..FOURTH_NAME are joined for the primary name (the family name has no fixed
slot). `NAME_ORIGINAL_SCRIPT` (Arabic, Cyrillic...) is indexed as a strong name.
`ALIAS_NAME` may hold several names joined by "; ". QUALITY Low -> weak; Good, a.k.a.,
f.k.a. and empty -> strong (as OpenSanctions maps them; a former name is still screened).
Empty placeholders (`<QUALITY/>`, `<ALIAS_NAME/>`) are skipped. DOB TYPE_OF_DATE: EXACT (DATE
or YEAR), APPROXIMATELY (circa), BETWEEN (FROM_YEAR..TO_YEAR). NATIONALITY values are country
names -> ISO2.
"""

from __future__ import annotations

from datetime import date
from xml.etree.ElementTree import Element

from domain.screening import BirthDate, ListedName, ListedParty, ListSnapshot, ListSource, PartyKind
from screening.countries import country_to_iso2
from screening.formats._io import (
    ListFormatError,
    Notes,
    Source,
    parse_iso_date,
    read_xml_list,
    text,
    texts,
)

_PARTS = ("FIRST_NAME", "SECOND_NAME", "THIRD_NAME", "FOURTH_NAME")


def _year(value: str) -> int | None:
    return int(value) if value.isdigit() and len(value) == 4 else None


def parse_un_birthdate(elem: Element) -> BirthDate | None:
    kind = text(elem, "TYPE_OF_DATE").upper()
    full, year = text(elem, "DATE"), _year(text(elem, "YEAR"))
    first, last = _year(text(elem, "FROM_YEAR")), _year(text(elem, "TO_YEAR"))
    circa = kind == "APPROXIMATELY"
    try:
        if kind == "BETWEEN" or (full == "" and year is None and (first or last)):
            years = [y for y in (first, last) if y is not None]
            if not years:
                return None
            shown = f"{min(years)}-{max(years)}"
            return BirthDate.between(min(years), max(years), text=shown)
        if full:
            day = date.fromisoformat(full[:10])
            if circa:
                return BirthDate.year(day.year, circa=True, text=full)
            return BirthDate.exact(day, text=full)
        if year is not None:
            return BirthDate.year(year, circa=circa, text=str(year))
    except ValueError:
        return None
    return None


def _party(record: Element, kind: PartyKind, notes: Notes) -> ListedParty:
    key = text(record, "DATAID")
    if not key:
        raise ListFormatError(f"an {record.tag} has no DATAID")
    primary = " ".join(p for p in (text(record, part) for part in _PARTS) if p)
    if not primary:
        raise ListFormatError(f"{record.tag} {key}: no FIRST_NAME")
    names = [ListedName(text=primary)]
    original = text(record, "NAME_ORIGINAL_SCRIPT")
    if original:
        names.append(ListedName(text=original))
    alias_tag = "INDIVIDUAL_ALIAS" if kind == PartyKind.PERSON else "ENTITY_ALIAS"
    for alias in record.iterfind(alias_tag):
        strong = text(alias, "QUALITY").casefold() != "low"
        for name in text(alias, "ALIAS_NAME").split(";"):
            if name.strip():
                names.append(ListedName(text=" ".join(name.split()), strong=strong))
    births = []
    for elem in record.iterfind("INDIVIDUAL_DATE_OF_BIRTH"):
        parsed = parse_un_birthdate(elem)
        if parsed is not None:
            births.append(parsed)
        elif "".join(elem.itertext()).strip():
            shown = " ".join("".join(elem.itertext()).split())
            notes.add(f"{key}: unreadable date of birth {shown!r}")
    codes = []
    for country in texts(record, "NATIONALITY/VALUE"):
        code = country_to_iso2(country)
        if code is None:
            notes.add(f"{key}: unknown nationality {country!r}")
        else:
            codes.append(code)
    listed = text(record, "LISTED_ON")
    programme = text(record, "UN_LIST_TYPE")
    return ListedParty(
        source=ListSource.UN_SC,
        key=key,
        kind=kind,
        names=tuple(dict.fromkeys(names)),
        birth_dates=tuple(births),
        nationalities=tuple(codes),
        programmes=(programme,) if programme else (),
        listed_on=parse_iso_date(listed, f"{key} LISTED_ON") if listed else None,
        reference=text(record, "REFERENCE_NUMBER") or None,
    )


def parse_un_consolidated(source: Source) -> ListSnapshot:
    kinds = {"INDIVIDUAL": PartyKind.PERSON, "ENTITY": PartyKind.ENTITY}
    return read_xml_list(
        source,
        list_source=ListSource.UN_SC,
        label="UN consolidated",
        root="CONSOLIDATED_LIST",
        records=frozenset(kinds),
        date_attribute="dateGenerated",
        party_of=lambda elem, notes: _party(elem, kinds[elem.tag], notes),
    )
