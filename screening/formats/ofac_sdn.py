"""OFAC's classic `SDN.XML` (reference §1.1).

Both namespaces seen in the wild (`http://tempuri.org/sdnList.xsd` and the Sanctions List
Service's `.../exports/XML`) are accepted: elements are matched on local names. Names are kept
as OFAC writes them (`QADHAFI, Muammar`); the normaliser reorders `SURNAME, Given` for
individuals. `aka` with `category=weak` becomes a weak name (exact-match only); f.k.a./n.k.a.
are kept as strong names, a former name is still screened. Country names of nationality and
citizenship go through `screening.countries`.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from xml.etree.ElementTree import Element

from domain.screening import BirthDate, ListedName, ListedParty, ListSnapshot, ListSource, PartyKind
from screening.countries import country_to_iso2
from screening.formats._io import (
    ListFormatError,
    Notes,
    Source,
    XmlStream,
    check_unique,
    open_source,
    text,
    texts,
)

_KINDS = {
    "individual": PartyKind.PERSON,
    "entity": PartyKind.ENTITY,
    "vessel": PartyKind.VESSEL,
    "aircraft": PartyKind.AIRCRAFT,
}
_MONTHS = {m: i for i, m in enumerate("jan feb mar apr may jun jul aug sep oct nov dec".split(), 1)}
_DAY_MONTH_YEAR = re.compile(r"^(\d{1,2}) ([A-Za-z]{3})[a-z]* (\d{4})$")
_MONTH_YEAR = re.compile(r"^([A-Za-z]{3})[a-z]* (\d{4})$")
_YEAR = re.compile(r"^(\d{4})$")


def _point(value: str) -> BirthDate | None:
    """`14 Jun 1975`, `May 2006`, `1980` (also `14 June 1975`)."""
    if match := _DAY_MONTH_YEAR.match(value):
        month = _MONTHS.get(match.group(2).casefold())
        if month is None:
            return None
        try:
            day = date(int(match.group(3)), month, int(match.group(1)))
        except ValueError:
            return None
        return BirthDate.exact(day, text=value)
    if match := _MONTH_YEAR.match(value):
        month = _MONTHS.get(match.group(1).casefold())
        return None if month is None else BirthDate.year_month(int(match.group(2)), month, value)
    if match := _YEAR.match(value):
        return BirthDate.year(int(match.group(1)), text=value)
    return None


def parse_ofac_date(value: str) -> BirthDate | None:
    """OFAC DOB text -> BirthDate; also `circa 1951` and `1929 to 1930` (as in sdn.csv remarks,
    assumed identical in XML per the reference). None when unreadable."""
    value = " ".join(value.split())
    try:
        lowered = value.casefold()
        if lowered.startswith("circa "):
            inner = _point(value[6:].strip())
            if inner is None:
                return None
            return BirthDate.between(inner.year_from, inner.year_to, circa=True, text=value)
        if " to " in lowered:
            first, _, last = value.partition(" to ")
            start, end = _point(first.strip()), _point(last.strip())
            if start is None or end is None or start.year_from > end.year_to:
                return None
            return BirthDate.between(start.year_from, end.year_to, text=value)
        return _point(value)
    except ValueError:  # a year outside the model's range
        return None


def _name(entry: Element) -> str:
    last, first = text(entry, "lastName"), text(entry, "firstName")
    return f"{last}, {first}" if last and first else last or first


def _party(entry: Element, notes: Notes) -> ListedParty:
    uid = text(entry, "uid")
    if not uid:
        raise ListFormatError("an sdnEntry has no uid")
    kind = _KINDS.get(text(entry, "sdnType").casefold())
    if kind is None:
        raise ListFormatError(f"sdnEntry {uid}: unknown sdnType {text(entry, 'sdnType')!r}")
    primary = _name(entry)
    if not primary:
        raise ListFormatError(f"sdnEntry {uid}: no lastName")
    names = [ListedName(text=primary)]
    for aka in entry.iterfind("akaList/aka"):
        alias = _name(aka)
        if alias:
            names.append(ListedName(text=alias, strong=text(aka, "category").casefold() != "weak"))
    births = []
    for item in entry.iterfind("dateOfBirthList/dateOfBirthItem"):
        raw = text(item, "dateOfBirth")
        parsed = parse_ofac_date(raw) if raw else None
        if parsed is not None:
            births.append(parsed)
        elif raw:
            notes.add(f"sdnEntry {uid}: unreadable dateOfBirth {raw!r}")
    countries = texts(entry, "nationalityList/nationality/country") + texts(
        entry, "citizenshipList/citizenship/country"
    )
    codes = []
    for country in countries:
        code = country_to_iso2(country)
        if code is None:
            notes.add(f"sdnEntry {uid}: unknown country {country!r}")
        else:
            codes.append(code)
    return ListedParty(
        source=ListSource.OFAC_SDN,
        key=uid,
        kind=kind,
        names=tuple(names),
        birth_dates=tuple(births),
        nationalities=tuple(codes),
        programmes=tuple(dict.fromkeys(texts(entry, "programList/program"))),
    )


def parse_ofac_sdn(source: Source) -> ListSnapshot:
    parties: list[ListedParty] = []
    keys: set[str] = set()
    notes = Notes()
    published: date | None = None
    with open_source(source) as raw:
        stream = XmlStream(raw, root="sdnList")
        for elem in stream.records(frozenset({"sdnEntry", "publshInformation"})):
            if elem.tag == "publshInformation":
                stamp = text(elem, "Publish_Date")
                try:
                    published = datetime.strptime(stamp, "%m/%d/%Y").date()
                except ValueError as error:
                    raise ListFormatError(f"Publish_Date {stamp!r} is not MM/DD/YYYY") from error
                continue
            party = _party(elem, notes)
            check_unique(keys, party.key, "OFAC SDN")
            parties.append(party)
    if published is None:
        raise ListFormatError("OFAC SDN file without publshInformation/Publish_Date")
    return ListSnapshot(
        source=ListSource.OFAC_SDN,
        published_at=published,
        parties=tuple(parties),
        digest=stream.reader.digest,
        notes=notes.freeze(),
    )
