"""PEPs in OpenSanctions' published `targets.simple.csv` format (our choice of PEP format).

Columns: id,schema,name,aliases,birth_date,countries,addresses,identifiers,sanctions,phones,
emails,dataset,first_seen,last_seen,last_change; a header row; multi-values separated by `;`.
Load the `peps` collection's file (https://data.opensanctions.org/datasets/latest/peps/
targets.simple.csv): every row of a PEP source is treated as a PEP. `countries` are lower-case
ISO2 codes (OpenSanctions' own `suhh`, `xk`, ... are dropped). `birth_date` values are
`YYYY-MM-DD`, `YYYY-MM` or `YYYY`. The file has no publication date, so `published_at` is the
latest `last_change` (else `last_seen`) of its rows. Schemas: Person -> person; Company,
Organization, LegalEntity, PublicBody -> entity; Vessel -> vessel; Airplane -> aircraft; other
schemas are skipped with a note.
"""

from __future__ import annotations

import csv
import io
from datetime import date, datetime

from domain.countries import is_iso_country
from domain.screening import BirthDate, ListedName, ListedParty, ListSnapshot, ListSource, PartyKind
from screening.formats._io import (
    HashingReader,
    ListFormatError,
    Notes,
    Source,
    check_unique,
    open_source,
    parse_iso_datetime,
)

COLUMNS = (
    "id", "schema", "name", "aliases", "birth_date", "countries", "addresses", "identifiers",
    "sanctions", "phones", "emails", "dataset", "first_seen", "last_seen", "last_change",
)  # fmt: skip
_KINDS = {
    "person": PartyKind.PERSON,
    "company": PartyKind.ENTITY,
    "organization": PartyKind.ENTITY,
    "legalentity": PartyKind.ENTITY,
    "publicbody": PartyKind.ENTITY,
    "vessel": PartyKind.VESSEL,
    "airplane": PartyKind.AIRCRAFT,
}


def _multi(value: str | None) -> list[str]:
    return [v.strip() for v in (value or "").split(";") if v.strip()]


def parse_pep_birthdate(value: str) -> BirthDate | None:
    try:
        parts = [int(p) for p in value.split("-")]
        if len(parts) == 3:
            return BirthDate.exact(date(*parts), text=value)
        if len(parts) == 2:
            return BirthDate.year_month(parts[0], parts[1], text=value)
        if len(parts) == 1:
            return BirthDate.year(parts[0], text=value)
    except ValueError:
        return None
    return None


def _party(row: dict[str, str], line: int, notes: Notes) -> ListedParty | None:
    key = (row.get("id") or "").strip()
    name = " ".join((row.get("name") or "").split())
    if not key or not name:
        raise ListFormatError(f"PEP CSV line {line}: id and name are required")
    schema = (row.get("schema") or "").strip()
    kind = _KINDS.get(schema.casefold())
    if kind is None:
        notes.add(f"{key}: schema {schema!r} skipped")
        return None
    names = [ListedName(text=name)]
    names += [ListedName(text=a) for a in _multi(row.get("aliases")) if a != name]
    births = []
    for value in _multi(row.get("birth_date")):
        parsed = parse_pep_birthdate(value)
        if parsed is None:
            notes.add(f"{key}: unreadable birth_date {value!r}")
        else:
            births.append(parsed)
    codes = [c.upper() for c in _multi(row.get("countries")) if is_iso_country(c.upper())]
    first_seen = (row.get("first_seen") or "").strip()
    return ListedParty(
        source=ListSource.PEP,
        key=key,
        kind=kind,
        names=tuple(dict.fromkeys(names)),
        birth_dates=tuple(births),
        nationalities=tuple(codes),
        programmes=tuple(_multi(row.get("dataset"))),
        listed_on=parse_iso_datetime(first_seen, f"{key} first_seen").date()
        if first_seen
        else None,
    )


def parse_pep_csv(source: Source) -> ListSnapshot:
    parties: list[ListedParty] = []
    keys: set[str] = set()
    notes = Notes()
    latest: datetime | None = None
    with open_source(source) as raw:
        reader = HashingReader(raw, xml=False)
        stream = io.TextIOWrapper(io.BufferedReader(reader), encoding="utf-8-sig", newline="")
        try:
            rows = csv.DictReader(stream)
            missing = [c for c in COLUMNS if c not in (rows.fieldnames or [])]
            if missing:
                raise ListFormatError(
                    f"not an OpenSanctions targets.simple.csv: missing columns {missing}"
                )
            for row in rows:
                if None in row:  # more cells than the header has columns
                    raise ListFormatError(f"PEP CSV line {rows.line_num}: too many cells")
                party = _party(row, rows.line_num, notes)
                stamp = (row.get("last_change") or row.get("last_seen") or "").strip()
                if stamp:
                    seen = parse_iso_datetime(stamp, f"line {rows.line_num} last_change")
                    latest = seen if latest is None or seen > latest else latest
                if party is not None:
                    check_unique(keys, party.key, "PEP CSV")
                    parties.append(party)
        except UnicodeDecodeError as error:
            raise ListFormatError(f"PEP CSV is not UTF-8: {error.reason}") from error
        except csv.Error as error:
            raise ListFormatError(f"malformed PEP CSV: {error}") from error
        reader.drain()
    if latest is None:
        raise ListFormatError("PEP CSV has no last_change/last_seen: cannot date the snapshot")
    return ListSnapshot(
        source=ListSource.PEP,
        published_at=latest,
        parties=tuple(parties),
        digest=reader.digest,
        notes=notes.freeze(),
    )
