"""The EU Financial Sanctions Files, XML 1.1 (reference §2.1).

Data lives in attributes. Every `nameAlias` is a name (`wholeName`, else first/middle/last);
translations are separate aliases (`nameLanguage`), all indexed. `strong="false"` or a remark
saying "low quality" makes a weak alias (as OpenSanctions does). `countryIso2Code="00"` means
unknown. Birth dates: `birthdate` (YYYY-MM-DD), else `year`/`monthOfYear`/`dayOfMonth`, else
`yearRangeFrom`/`yearRangeTo`; `circa="true"` widens. `listed_on` is `designationDate` when
present, else the earliest regulation `publicationDate` (our choice: the EU gives no single
listing date on older entries).
"""

from __future__ import annotations

from datetime import date
from xml.etree.ElementTree import Element

from domain.countries import is_iso_country
from domain.screening import BirthDate, ListedName, ListedParty, ListSnapshot, ListSource, PartyKind
from screening.formats._io import (
    ListFormatError,
    Notes,
    Source,
    parse_iso_date,
    read_xml_list,
)

_KINDS = {"person": PartyKind.PERSON, "enterprise": PartyKind.ENTITY}


def _attr(elem: Element, name: str) -> str:
    return (elem.get(name) or "").strip()


def _int(value: str) -> int | None:
    return int(value) if value.isdigit() and int(value) > 0 else None


def parse_eu_birthdate(elem: Element) -> BirthDate | None:
    circa = _attr(elem, "circa").casefold() == "true"
    full = _attr(elem, "birthdate")
    parts = [_attr(elem, a) for a in ("year", "monthOfYear", "dayOfMonth") if _attr(elem, a)]
    span = [_attr(elem, a) for a in ("yearRangeFrom", "yearRangeTo") if _attr(elem, a)]
    shown = full or "-".join(parts) or "..".join(span)
    shown = f"circa {shown}" if circa and shown else shown
    try:
        if full:
            day = date.fromisoformat(full[:10])
            if circa:
                return BirthDate.year(day.year, circa=True, text=full)
            return BirthDate.exact(day, text=full)
        year, month = _int(_attr(elem, "year")), _int(_attr(elem, "monthOfYear"))
        day_of_month = _int(_attr(elem, "dayOfMonth"))
        if year is not None:
            if month is not None and day_of_month is not None and not circa:
                return BirthDate.exact(date(year, month, day_of_month), text=shown)
            if month is not None and not circa:
                return BirthDate.year_month(year, month, text=shown)
            return BirthDate.year(year, circa=circa, text=shown)
        first, last = _int(_attr(elem, "yearRangeFrom")), _int(_attr(elem, "yearRangeTo"))
        years = [y for y in (first, last) if y is not None]
        if years:
            return BirthDate.between(min(years), max(years), circa=circa, text=shown)
    except ValueError:
        return None
    return None


def _is_weak(alias: Element) -> bool:
    if _attr(alias, "strong").casefold() == "false":
        return True
    remarks = " ".join((r.text or "") for r in alias.iter("remark"))
    return "low quality" in remarks.casefold()


def _party(entity: Element, notes: Notes) -> ListedParty:
    key = _attr(entity, "logicalId")
    if not key:
        raise ListFormatError("a sanctionEntity has no logicalId")
    subject = entity.find("subjectType")
    code = _attr(subject, "code") if subject is not None else ""
    kind = _KINDS.get(code.casefold())
    if kind is None:
        notes.add(f"sanctionEntity {key}: subject type {code!r} read as an entity")
        kind = PartyKind.ENTITY
    strong: list[ListedName] = []
    weak: list[ListedName] = []
    for alias in entity.iterfind("nameAlias"):
        whole = _attr(alias, "wholeName") or " ".join(
            p
            for p in (
                _attr(alias, "firstName"),
                _attr(alias, "middleName"),
                _attr(alias, "lastName"),
            )
            if p
        )
        if whole:
            (weak if _is_weak(alias) else strong).append(
                ListedName(text=whole, strong=not _is_weak(alias))
            )
    names = tuple(dict.fromkeys(strong + weak))  # a strong name first: it is the primary
    if not names:
        raise ListFormatError(f"sanctionEntity {key}: no nameAlias with a name")
    codes = []
    for citizenship in entity.iterfind("citizenship"):
        iso = _attr(citizenship, "countryIso2Code").upper()
        if iso and iso != "00":
            if is_iso_country(iso):
                codes.append(iso)
            else:
                notes.add(f"sanctionEntity {key}: unknown country code {iso!r}")
    births = []
    for elem in entity.iterfind("birthdate"):
        parsed = parse_eu_birthdate(elem)
        if parsed is not None:
            births.append(parsed)
        elif any(_attr(elem, a) for a in ("birthdate", "year", "yearRangeFrom", "yearRangeTo")):
            notes.add(f"sanctionEntity {key}: unreadable birthdate {dict(elem.attrib)!r}")
    regulations = list(entity.iterfind("regulation"))
    designated = _attr(entity, "designationDate")
    published = sorted(
        _attr(r, "publicationDate") for r in regulations if _attr(r, "publicationDate")
    )
    listed = designated or (published[0] if published else "")
    return ListedParty(
        source=ListSource.EU_FSF,
        key=key,
        kind=kind,
        names=names,
        birth_dates=tuple(births),
        nationalities=tuple(codes),
        programmes=tuple(
            dict.fromkeys(_attr(r, "programme") for r in regulations if _attr(r, "programme"))
        ),
        listed_on=parse_iso_date(listed, f"sanctionEntity {key} date") if listed else None,
        reference=_attr(entity, "euReferenceNumber") or None,
    )


def parse_eu_fsf(source: Source) -> ListSnapshot:
    return read_xml_list(
        source,
        list_source=ListSource.EU_FSF,
        label="EU FSF",
        root="export",
        records=frozenset({"sanctionEntity"}),
        date_attribute="generationDate",
        party_of=_party,
    )
