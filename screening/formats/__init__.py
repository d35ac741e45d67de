"""List parsers, each `parse_<format>(source) -> ListSnapshot`, and `load_list` to dispatch.

A source is bytes, a path, or an open binary file. Malformed input raises
`ListFormatError` (an `InvalidInput`) and no snapshot at all: never a half-loaded list.
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable

from domain.screening import ListSnapshot, ListSource
from screening.formats._io import DECLARATION, ListFormatError, Source, root_name
from screening.formats.eu_fsf import parse_eu_fsf
from screening.formats.ofac_sdn import parse_ofac_sdn
from screening.formats.pep_csv import COLUMNS, parse_pep_csv
from screening.formats.un_consolidated import parse_un_consolidated

__all__ = [
    "ListFormatError",
    "load_list",
    "parse_eu_fsf",
    "parse_ofac_sdn",
    "parse_pep_csv",
    "parse_un_consolidated",
    "sniff",
]

PARSERS: dict[ListSource, Callable[[Source], ListSnapshot]] = {
    ListSource.OFAC_SDN: parse_ofac_sdn,
    ListSource.EU_FSF: parse_eu_fsf,
    ListSource.UN_SC: parse_un_consolidated,
    ListSource.PEP: parse_pep_csv,
}
_ROOTS = {
    "sdnList": ListSource.OFAC_SDN,
    "export": ListSource.EU_FSF,
    "CONSOLIDATED_LIST": ListSource.UN_SC,
}
_UNSUPPORTED = {
    "Sanctions": "OFAC SDN_ADVANCED.XML is not supported; load the classic SDN.XML",
    "Designations": "the UK sanctions list is not supported",
    "ArrayOfFinancialSanctionsTarget": "the OFSI consolidated list is not supported",
}
HEAD = 8192


class _Unsniffable(ListFormatError):
    """A stream that cannot be looked into before it is parsed."""


def _head(source: Source) -> bytes:
    if isinstance(source, bytes | bytearray):
        return bytes(source[:HEAD])
    if isinstance(source, str | os.PathLike):
        try:
            with open(source, "rb") as handle:
                return handle.read(HEAD)
        except OSError as error:
            raise ListFormatError(f"cannot open {os.fspath(source)!r}: {error.strerror}") from error
    if isinstance(source, io.IOBase) and source.seekable():  # a pipe is not
        position = source.tell()
        head = source.read(HEAD)
        source.seek(position)
        return bytes(head)
    raise _Unsniffable("cannot sniff a stream that does not seek: name the list source")


def sniff(source: Source) -> ListSource:
    """Which list a file is, from its root element (XML) or header row (PEP CSV)."""
    head = _head(source).removeprefix(b"\xef\xbb\xbf")
    if DECLARATION.search(head):
        raise ListFormatError("DOCTYPE/ENTITY declarations are refused (entity expansion)")
    root = root_name(head)
    if root is not None:
        if root in _ROOTS:
            return _ROOTS[root]
        raise ListFormatError(_UNSUPPORTED.get(root, f"unknown list format (root <{root}>)"))
    first_line = head.split(b"\n", 1)[0].strip().decode("utf-8", "replace")
    if [c.strip() for c in first_line.split(",")][: len(COLUMNS)] == list(COLUMNS):
        return ListSource.PEP
    raise ListFormatError("unknown list format: neither a known XML root nor the PEP CSV header")


def load_list(source: ListSource | str | None, data: Source) -> ListSnapshot:
    """Parse `data` as the list `source`; with `source=None` the format is sniffed. A file that
    sniffs as another list than the one named is refused (an EU file loaded as OFAC)."""
    if source is None:
        return PARSERS[sniff(data)](data)
    try:
        wanted = ListSource(source)
    except ValueError as error:
        raise ListFormatError(f"unknown list source {source!r}") from error
    try:
        found = sniff(data)
    except _Unsniffable:
        return PARSERS[wanted](data)  # cannot look ahead: the parser checks the root itself
    if found is not wanted:
        raise ListFormatError(f"the file is a {found.value} list, not {wanted.value}")
    return PARSERS[wanted](data)
