"""The list parsers on the sample files (real formats) and on the corners that break parsers."""

from __future__ import annotations

import hashlib
import io
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from domain.countries import ISO_COUNTRIES
from domain.errors import InvalidInput
from domain.screening import BirthDate, ListedParty, ListSnapshot, ListSource, PartyKind
from screening import countries
from screening.countries import country_to_iso2
from screening.formats import (
    ListFormatError,
    load_list,
    parse_eu_fsf,
    parse_ofac_sdn,
    parse_pep_csv,
    parse_un_consolidated,
    sniff,
)
from screening.formats.ofac_sdn import parse_ofac_date
from screening.load import main as load_main

SAMPLES = Path(__file__).resolve().parents[2] / "screening" / "samples"
OFAC = SAMPLES / "ofac_sdn_sample.xml"
EU = SAMPLES / "eu_fsf_sample.xml"
UN = SAMPLES / "un_consolidated_sample.xml"
PEP = SAMPLES / "pep_sample.csv"


def by_key(snapshot: ListSnapshot) -> dict[str, ListedParty]:
    return {p.key: p for p in snapshot.parties}


class NoSeek(io.RawIOBase):
    """A pipe-like stream: read() in small pieces, no seek, no len."""

    def __init__(self, data: bytes, piece: int = 1000) -> None:
        self._data, self._pos, self._piece = data, 0, piece

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        size = self._piece if size is None or size < 0 else min(size, self._piece)
        chunk = self._data[self._pos : self._pos + size]
        self._pos += len(chunk)
        return chunk


# ---------------------------------------------------------------- OFAC SDN.XML


def test_ofac_sample_parses_with_names_aliases_and_strength() -> None:
    snapshot = parse_ofac_sdn(OFAC)
    parties = by_key(snapshot)
    assert snapshot.source is ListSource.OFAC_SDN
    assert snapshot.published_at == date(2018, 12, 19)
    assert len(snapshot.parties) == 16
    assert snapshot.digest == hashlib.sha256(OFAC.read_bytes()).hexdigest()
    qadhafi = parties["12606"]
    assert qadhafi.kind is PartyKind.PERSON
    assert qadhafi.primary_name == "QADHAFI, Muammar"
    assert [n.text for n in qadhafi.names][2] == "GADDAFI, Mu'ammar"
    assert all(n.strong for n in qadhafi.names)
    assert qadhafi.birth_dates == (BirthDate.year(1942, text="1942"),)
    assert qadhafi.programmes == ("LIBYA2",)
    khamis = parties["12607"]
    assert ("AL-QADHAFI", True) in [(n.text, n.strong) for n in khamis.names]  # surname only
    bank = parties["306"]
    assert [(n.text, n.strong) for n in bank.names] == [
        ("BANCO NACIONAL DE CUBA", True),
        ("NATIONAL BANK OF CUBA", True),
        ("BNC", False),
    ]
    assert parties["36"].names[1].text == "AERO-CARIBBEAN"


def test_ofac_dates_countries_and_kinds() -> None:
    parties = by_key(parse_ofac_sdn(OFAC))
    malkevich = parties["26235"]
    assert malkevich.birth_dates == (BirthDate.exact(date(1975, 6, 14), text="14 Jun 1975"),)
    assert malkevich.nationalities == ("RU",)
    assert parties["20093"].nationalities == ("KP",)  # "Korea, North"
    assert parties["6365"].nationalities == ("SA", "AF")  # nationality then citizenship
    circa = parties["990004"].birth_dates[0]
    assert (circa.year_from, circa.year_to, circa.circa) == (1951, 1951, True)
    ranged, month = parties["990009"].birth_dates
    assert (ranged.year_from, ranged.year_to) == (1929, 1930)
    assert (month.year_from, month.month, month.day) == (1931, 5, None)
    assert parties["990009"].nationalities == ("CD",)  # "Congo, Democratic Republic of the"
    assert parties["27795"].kind is PartyKind.VESSEL
    assert parties["990001"].kind is PartyKind.AIRCRAFT
    assert parties["27795"].names[1].text == "GRACE 1"  # f.k.a. kept, strong


def test_ofac_unknown_country_is_a_note_not_a_crash() -> None:
    snapshot = parse_ofac_sdn(OFAC)
    assert any("Region: Kurdistan" in note for note in snapshot.notes)


@pytest.mark.parametrize(
    ("namespace"),
    [
        'xmlns="https://sanctionslistservice.ofac.treas.gov/api/PublicationPreview/exports/XML"',
        "",
    ],
)
def test_ofac_other_namespaces_read_the_same(namespace: str) -> None:
    data = OFAC.read_bytes().replace(b'xmlns="http://tempuri.org/sdnList.xsd"', namespace.encode())
    assert parse_ofac_sdn(data).parties == parse_ofac_sdn(OFAC).parties


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("14 Jun 1975", (1975, 1975, 6, 14, False)),
        ("05 June 1975", (1975, 1975, 6, 5, False)),
        ("May 2006", (2006, 2006, 5, None, False)),
        ("1980", (1980, 1980, None, None, False)),
        ("circa 1951", (1951, 1951, None, None, True)),
        ("circa 14 Jun 1975", (1975, 1975, None, None, True)),
        ("1929 to 1930", (1929, 1930, None, None, False)),
        ("Jan 1960 to Dec 1962", (1960, 1962, None, None, False)),
        ("  14  Jun   1975 ", (1975, 1975, 6, 14, False)),
    ],
)
def test_ofac_date_forms(text: str, expected: tuple[object, ...]) -> None:
    parsed = parse_ofac_date(text)
    assert parsed is not None
    assert (parsed.year_from, parsed.year_to, parsed.month, parsed.day, parsed.circa) == expected


@pytest.mark.parametrize("text", ["31 Feb 1970", "14 Foo 1975", "1931 to 1929", "unknown", "75"])
def test_ofac_unreadable_dates_answer_none(text: str) -> None:
    assert parse_ofac_date(text) is None


def test_ofac_inputs_path_bytes_file_and_pipe_agree() -> None:
    data = OFAC.read_bytes()
    reference = parse_ofac_sdn(OFAC)
    with OFAC.open("rb") as handle:
        from_file = parse_ofac_sdn(handle)
    for snapshot in (parse_ofac_sdn(data), from_file, parse_ofac_sdn(NoSeek(data))):
        assert snapshot == reference


def test_ofac_malformed_xml_is_refused_whole() -> None:
    data = OFAC.read_bytes()
    with pytest.raises(ListFormatError, match="malformed XML"):
        parse_ofac_sdn(data[: len(data) // 2])
    with pytest.raises(InvalidInput):  # ListFormatError is the API's InvalidInput (422)
        parse_ofac_sdn(b"<sdnList><sdnEntry><uid>1</uid></sdnList>")


def test_ofac_entry_without_uid_or_with_unknown_type_is_refused() -> None:
    head = (
        b"<sdnList><publshInformation><Publish_Date>01/02/2026</Publish_Date></publshInformation>"
    )
    with pytest.raises(ListFormatError, match="no uid"):
        parse_ofac_sdn(head + b"<sdnEntry><lastName>X</lastName></sdnEntry></sdnList>")
    with pytest.raises(ListFormatError, match="unknown sdnType"):
        parse_ofac_sdn(
            head + b"<sdnEntry><uid>1</uid><lastName>X</lastName><sdnType>Ship</sdnType>"
            b"</sdnEntry></sdnList>"
        )
    with pytest.raises(ListFormatError, match="appears twice"):
        entry = b"<sdnEntry><uid>1</uid><lastName>X</lastName><sdnType>Entity</sdnType></sdnEntry>"
        parse_ofac_sdn(head + entry + entry + b"</sdnList>")
    with pytest.raises(ListFormatError, match="Publish_Date"):
        parse_ofac_sdn(b"<sdnList></sdnList>")


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
]>
<sdnList><publshInformation><Publish_Date>01/02/2026</Publish_Date></publshInformation>
<sdnEntry><uid>1</uid><lastName>&lol3;</lastName><sdnType>Entity</sdnType></sdnEntry></sdnList>"""


@pytest.mark.parametrize("parse", [parse_ofac_sdn, parse_eu_fsf, parse_un_consolidated])
def test_entity_expansion_is_refused_before_parsing(parse) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ListFormatError, match="DOCTYPE/ENTITY"):
        parse(BILLION_LAUGHS)
    with pytest.raises(ListFormatError, match="DOCTYPE/ENTITY"):
        load_list(None, BILLION_LAUGHS)


def test_a_declaration_split_across_read_chunks_is_still_seen() -> None:
    # a comment pushes "<!ENTITY" across a read boundary (reads of 4096 bytes)
    prefix = b'<?xml version="1.0"?><!--'
    padding = b"x" * (65536 - 3 - len(prefix) - len(b"-->"))
    data = prefix + padding + b'--><!ENTITY a "b"><sdnList></sdnList>'
    assert data.index(b"<!ENTITY") < 65536 < data.index(b"<!ENTITY") + 8
    with pytest.raises(ListFormatError, match="DOCTYPE/ENTITY"):
        parse_ofac_sdn(NoSeek(data, piece=4096))


def test_non_utf8_encodings_are_refused() -> None:
    utf16 = OFAC.read_text(encoding="utf-8").replace('standalone="yes"', 'encoding="UTF-16"')
    with pytest.raises(ListFormatError, match="UTF-8"):
        parse_ofac_sdn(utf16.encode("utf-16"))


def test_a_file_of_another_list_is_refused_at_the_root() -> None:
    with pytest.raises(ListFormatError, match="root element is <export>"):
        parse_ofac_sdn(EU)
    with pytest.raises(ListFormatError, match="expected <CONSOLIDATED_LIST>"):
        parse_un_consolidated(OFAC)


# ---------------------------------------------------------------- EU FSF XML 1.1


def test_eu_sample_parses() -> None:
    snapshot = parse_eu_fsf(EU)
    parties = by_key(snapshot)
    assert snapshot.published_at == datetime(2024, 12, 11, 16, 31, 36, 531000, tzinfo=UTC)
    assert len(parties) == 6
    saddam = parties["13"]
    assert [n.text for n in saddam.names] == ["Saddam Hussein Al-Tikriti", "Abu Ali", "Abou Ali"]
    assert saddam.nationalities == ("IQ",)
    assert saddam.birth_dates == (BirthDate.exact(date(1937, 4, 28), text="1937-04-28"),)
    assert saddam.reference == "EU.27.28"
    assert saddam.listed_on == date(2003, 7, 8)  # no designationDate: first publication
    assert saddam.programmes == ("IRQ",)
    enterprise = parties["207"]
    assert enterprise.kind is PartyKind.ENTITY
    assert len(enterprise.names) == 4
    assert "µ" in enterprise.names[3].text  # the Greek mu is MICRO SIGN in the real file
    assert parties["139880"].listed_on == date(2022, 2, 25)  # designationDate


def test_eu_weak_aliases_unknown_country_and_birthdate_forms() -> None:
    parties = by_key(parse_eu_fsf(EU))
    rustam = parties["900001"]
    assert [(n.text, n.strong) for n in rustam.names] == [
        ("Rustam Aliyevich Khamrayev", True),
        ("Rustam Khamraev", True),
        ("Abu Rustam", False),  # strong="false"
        ("Khamrai", False),  # strong="true" but remarked "low quality alias"
    ]
    assert rustam.nationalities == ("UZ",)  # "00" dropped
    (ranged,) = rustam.birth_dates
    assert (ranged.year_from, ranged.year_to, ranged.circa) == (1965, 1967, True)
    assert rustam.listed_on == date(2019, 3, 15)
    parts_only = parties["900002"]
    assert parts_only.primary_name == "Aliaksandr Ryhoravich Zhukouski"
    assert (parts_only.birth_dates[0].year_from, parts_only.birth_dates[0].month) == (1971, 8)


def test_eu_without_logical_id_or_generation_date_is_refused() -> None:
    with pytest.raises(ListFormatError, match="no logicalId"):
        parse_eu_fsf(b'<export generationDate="2026-01-01T00:00:00Z"><sanctionEntity/></export>')
    with pytest.raises(ListFormatError, match="generationDate"):
        parse_eu_fsf(b"<export></export>")


# ---------------------------------------------------------------- UN consolidated


def test_un_sample_parses() -> None:
    snapshot = parse_un_consolidated(UN)
    parties = by_key(snapshot)
    assert snapshot.published_at == datetime(2026, 2, 27, 10, 0, 3, 250000, tzinfo=UTC)
    assert len(parties) == 7
    mutassim = parties["690775"]
    assert mutassim.reference == "LYi.014"
    assert mutassim.listed_on == date(2011, 2, 26)
    assert [(n.text, n.strong) for n in mutassim.names] == [
        ("MUTASSIM QADHAFI", True),
        ("Almuatesem Bellah Muammer Qadhafi", True),
        ("Mutassim Billah Abuminyar Qadhafi", True),
        ("Moatassam", False),
    ]
    assert mutassim.birth_dates == (
        BirthDate.year(1976, text="1976"),
        BirthDate.exact(date(1974, 2, 5), text="1974-02-05"),
    )
    assert mutassim.nationalities == ("LY",)
    assert mutassim.programmes == ("Libya",)


def test_un_quirks() -> None:
    parties = by_key(parse_un_consolidated(UN))
    gaston = parties["2975498"]
    assert [(n.text, n.strong) for n in gaston.names] == [
        ("GASTON IYAMUREMYE", True),
        ("Rumuli", False),
        ("Victor Rumuri", True),
    ]  # the empty <QUALITY/><ALIAS_NAME/> placeholder is skipped
    assert (gaston.birth_dates[0].year_from, gaston.birth_dates[0].year_to) == (1973, 1974)
    assert gaston.nationalities == ("RW",)
    amiri = parties["990001"]
    assert [n.text for n in amiri.names][1:3] == [
        "Abdulrahman Yousef al-Amiri",
        "Abd al-Rahman Yusuf al-Ameri",
    ]  # "; "-joined names, trailing space dropped
    assert amiri.birth_dates[0].circa  # APPROXIMATELY
    assert amiri.nationalities == ("YE", "SY")  # "Syrian Arab Republic"
    assert parties["6908556"].nationalities == ("KP",)  # "Democratic People's Republic of Korea"
    assert parties["110006"].names[1].text == "صدام حسين التكريتي"  # NAME_ORIGINAL_SCRIPT
    adf = parties["6908402"]
    assert adf.kind is PartyKind.ENTITY
    assert [(n.text, n.strong) for n in adf.names] == [
        ("ADF", True),
        ("Allied Democratic Forces", True),
        ("ADF/NALU", True),  # f.k.a.: a former name is still screened
    ]


def test_un_without_dataid_is_refused() -> None:
    with pytest.raises(ListFormatError, match="no DATAID"):
        parse_un_consolidated(
            b'<CONSOLIDATED_LIST dateGenerated="2026-01-01T00:00:00Z"><INDIVIDUALS><INDIVIDUAL>'
            b"<FIRST_NAME>A</FIRST_NAME></INDIVIDUAL></INDIVIDUALS></CONSOLIDATED_LIST>"
        )


# ---------------------------------------------------------------- PEP CSV (OpenSanctions)


def test_pep_sample_parses() -> None:
    snapshot = parse_pep_csv(PEP)
    parties = by_key(snapshot)
    assert snapshot.source is ListSource.PEP
    assert snapshot.published_at == datetime(2025, 11, 3, 10, 11, 9, tzinfo=UTC)  # last_change
    assert len(parties) == 14
    assert any("CryptoWallet" in note for note in snapshot.notes)
    putin = parties["Q7747"]
    assert putin.names[2].text == "Владимир Владимирович Путин"
    assert putin.nationalities == ("RU",)
    assert putin.listed_on == date(2021, 9, 26)
    kim = parties["Q56226"]
    assert [b.year_from for b in kim.birth_dates] == [1984, 1983, 1982]
    assert parties["fixture-pep-004"].birth_dates[0].month == 9  # "1966-09"
    assert parties["fixture-pep-004"].nationalities == ("PK", "GB")
    assert parties["fixture-pep-007"].nationalities == ("EG",)  # OpenSanctions' "suhh" dropped
    assert parties["fixture-pep-011"].kind is PartyKind.ENTITY


def test_pep_malformed_files_are_refused() -> None:
    header = PEP.read_bytes().split(b"\n", 1)[0]
    with pytest.raises(ListFormatError, match="missing columns"):
        parse_pep_csv(b"id,name\n1,x\n")
    with pytest.raises(ListFormatError, match="too many cells"):
        parse_pep_csv(header + b"\n1,Person,X,,,,,,,,,,,2026-01-01T00:00:00,,extra\n")
    with pytest.raises(ListFormatError, match="not UTF-8"):
        parse_pep_csv(header + b"\n1,Person,\xff\xfe,,,,,,,,,,,2026-01-01T00:00:00,\n")
    row = b"\n1,Person,X,,,,,,,,,,,2026-01-01T00:00:00,"
    with pytest.raises(ListFormatError, match="appears twice"):
        parse_pep_csv(header + row + row + b"\n")
    with pytest.raises(ListFormatError, match="cannot date"):
        parse_pep_csv(header + b"\n1,Person,X,,,,,,,,,,,,\n")


# ---------------------------------------------------------------- dispatch and sniffing


@pytest.mark.parametrize("path", [OFAC, EU, UN, PEP])
def test_snapshots_survive_a_json_round_trip(path: Path) -> None:
    # They travel as Temporal payloads (pydantic JSON); dates must stay dates.
    snapshot = load_list(None, path)
    assert ListSnapshot.model_validate_json(snapshot.model_dump_json()) == snapshot


@pytest.mark.parametrize(
    ("path", "source"),
    [
        (OFAC, ListSource.OFAC_SDN),
        (EU, ListSource.EU_FSF),
        (UN, ListSource.UN_SC),
        (PEP, ListSource.PEP),
    ],
)
def test_load_list_sniffs_and_dispatches(path: Path, source: ListSource) -> None:
    assert sniff(path) is source
    assert sniff(path.read_bytes()) is source
    assert load_list(None, path).source is source
    assert load_list(source, path.read_bytes()).source is source
    assert load_list(source.value, path).digest == hashlib.sha256(path.read_bytes()).hexdigest()


def test_load_list_refuses_a_mismatch_and_unknown_formats() -> None:
    with pytest.raises(ListFormatError, match="is a eu_fsf list, not ofac_sdn"):
        load_list(ListSource.OFAC_SDN, EU)
    with pytest.raises(ListFormatError, match="SDN_ADVANCED"):
        load_list(None, b'<?xml version="1.0"?><Sanctions xmlns="x"></Sanctions>')
    with pytest.raises(ListFormatError, match="unknown list format"):
        load_list(None, b"hello,world\n")
    with pytest.raises(ListFormatError, match="unknown list source"):
        load_list("uk_hmt", OFAC)
    with pytest.raises(ListFormatError, match="cannot open"):
        load_list(None, SAMPLES / "no-such-file.xml")
    # a pipe cannot be sniffed, but a named source is parsed from it directly
    assert load_list(ListSource.OFAC_SDN, NoSeek(OFAC.read_bytes())).source is ListSource.OFAC_SDN


def test_loader_cli_prints_count(capsys: pytest.CaptureFixture[str]) -> None:
    assert load_main([str(UN), "--screen", "Mutassim Gaddafi"]) == 0
    out = capsys.readouterr().out
    assert "un_sc: 7 parties" in out
    assert "690775" in out
    assert load_main([str(EU), "--source", "ofac_sdn"]) == 2


# ---------------------------------------------------------------- country names


@pytest.mark.parametrize(
    ("name", "code"),
    [
        ("Russia", "RU"),
        ("Russian Federation", "RU"),
        ("Iran", "IR"),
        ("Iran (Islamic Republic of)", "IR"),
        ("Democratic People's Republic of Korea", "KP"),
        ("Korea, North", "KP"),
        ("Korea, South", "KR"),
        ("Libya", "LY"),
        ("Iraq", "IQ"),
        ("Cuba", "CU"),
        ("Venezuela", "VE"),
        ("Venezuela (Bolivarian Republic of)", "VE"),
        ("Syrian Arab Republic", "SY"),
        ("Syria", "SY"),
        ("Democratic Republic of the Congo", "CD"),
        ("Congo, Democratic Republic of the", "CD"),
        ("Congo", "CG"),
        ("Burma", "MM"),
        ("Cote d Ivoire", "CI"),
        ("Côte d'Ivoire", "CI"),
        ("Türkiye", "TR"),
        ("Bahamas, The", "BS"),
        ("United Kingdom of Great Britain and Northern Ireland", "GB"),
        ("UK", "GB"),
        ("  united states  ", "US"),
        ("de", "DE"),
    ],
)
def test_country_names(name: str, code: str) -> None:
    assert country_to_iso2(name) == code


@pytest.mark.parametrize("name", ["Soviet Union", "Region: Crimea", "Atlantis", "", None, "XX"])
def test_unknown_country_names_are_none(name: str | None) -> None:
    assert country_to_iso2(name) is None


def test_every_iso_code_has_a_name() -> None:
    assert set(countries._NAMES) == ISO_COUNTRIES
