"""Reading list files safely and in constant memory.

* Every byte goes through a sha256 (the snapshot digest) as it is read.
* XML: defusedxml is not available, so a DOCTYPE or ENTITY declaration anywhere in the input is
  refused before the parser sees it (no published list uses one; entity expansion needs one).
  Input that is not UTF-8/ASCII-compatible (a UTF-16/32 BOM or NUL bytes) is refused too, so
  the declaration cannot hide in another encoding.
* `XmlStream.records` yields the wanted elements one at a time with namespaces stripped, then
  clears them (an empty shell stays in the parent): a 100 MB OFAC file is parsed with the memory
  of one record plus the parties built from it.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from typing import Protocol

from domain.errors import InvalidInput
from domain.screening import ListedParty, ListSnapshot, ListSource


class Readable(Protocol):
    """An open binary stream: a file, a socket's makefile, a pipe. Only `read` is used."""

    def read(self, size: int = -1, /) -> bytes: ...


Source = bytes | bytearray | str | os.PathLike[str] | Readable

DECLARATION = re.compile(rb"<!(?i:doctype|entity)")
_BOMS = (b"\xff\xfe", b"\xfe\xff", b"\x00\x00\xfe\xff")
CHUNK = 1 << 16


class ListFormatError(InvalidInput):
    """A list file that cannot be loaded; nothing of it is kept."""

    title = "Invalid list file"


class HashingReader(io.RawIOBase):
    """A read-only stream that hashes what passes and, for XML, refuses DTD declarations."""

    def __init__(self, raw: Readable, *, xml: bool, root: str | None = None) -> None:
        self._raw = raw
        self._xml = xml
        self._root = root
        self._sha = hashlib.sha256()
        self._tail = b""
        self._first = True
        self.size = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        chunk = self._raw.read(len(buffer))
        if not chunk:
            return 0
        self._check(chunk)
        buffer[: len(chunk)] = chunk
        return len(chunk)

    def read(self, size: int | None = -1) -> bytes:
        chunk = self._raw.read(size if size is not None and size >= 0 else CHUNK)
        if chunk:
            self._check(chunk)
        return bytes(chunk)

    def _check(self, chunk: bytes) -> None:
        self._sha.update(chunk)
        self.size += len(chunk)
        if self._first:
            self._first = False
            if chunk.startswith(_BOMS):
                raise ListFormatError("only UTF-8 list files are accepted (UTF-16/32 BOM found)")
            found = root_name(chunk) if self._root else None
            if found is not None and found != self._root:  # fail before parsing 100 MB
                raise ListFormatError(f"root element is <{found}>, expected <{self._root}>")
        if not self._xml:
            return
        if b"\x00" in chunk:
            raise ListFormatError("only UTF-8 list files are accepted (NUL byte found)")
        window = self._tail + chunk
        if DECLARATION.search(window):
            raise ListFormatError("DOCTYPE/ENTITY declarations are refused (entity expansion)")
        self._tail = window[-10:]

    def drain(self) -> None:
        while self.read(CHUNK):
            pass

    @property
    def digest(self) -> str:
        return self._sha.hexdigest()


@contextmanager
def open_source(source: Source) -> Iterator[Readable]:
    """bytes, a path (str or PathLike), or an open binary file (left open)."""
    if isinstance(source, bytes | bytearray):
        yield io.BytesIO(bytes(source))
    elif isinstance(source, str | os.PathLike):
        try:
            handle = open(source, "rb")
        except OSError as error:
            raise ListFormatError(f"cannot open {os.fspath(source)!r}: {error.strerror}") from error
        with handle:
            yield handle
    elif hasattr(source, "read"):
        yield source
    else:
        raise ListFormatError(f"cannot read a list from a {type(source).__name__}")


def local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


# The first element after the XML declaration, comments and processing instructions.
ROOT = re.compile(rb"^(?:\s|<\?.*?\?>|<!--.*?-->)*<([A-Za-z_][\w.:-]*)", re.DOTALL)


def root_name(head: bytes) -> str | None:
    match = ROOT.match(head.removeprefix(b"\xef\xbb\xbf"))
    return local(match.group(1).decode("ascii", "replace").split(":")[-1]) if match else None


class XmlStream:
    """Only `end` events are asked of the parser (a start event per element doubles the cost):
    the root is checked on the first chunk read, its attributes are read at the end."""

    def __init__(self, raw: Readable, root: str) -> None:
        self.reader = HashingReader(raw, xml=True, root=root)
        self.expected_root = root
        self.root_attrib: dict[str, str] = {}

    def records(self, tags: frozenset[str]) -> Iterator[ET.Element]:
        """Each element named in `tags` once complete, namespaces stripped; cleared after the
        consumer is done with it (an empty shell stays in its parent: ~100 bytes a record)."""
        names: dict[str, str] = {}  # qualified tag -> local name, a handful of entries
        last: ET.Element | None = None
        try:
            for _, elem in ET.iterparse(self.reader, events=("end",)):  # noqa: S314
                tag = elem.tag
                name = names.get(tag)
                if name is None:
                    name = names[tag] = local(tag)
                last = elem
                if name in tags:
                    for child in elem.iter():
                        child.tag = names.get(child.tag) or names.setdefault(
                            child.tag, local(child.tag)
                        )
                    yield elem
                    elem.clear()
        except ET.ParseError as error:
            raise ListFormatError(f"malformed XML: {error}") from error
        if last is None or names.get(last.tag, last.tag) != self.expected_root:
            found = names.get(last.tag, last.tag) if last is not None else "nothing"
            raise ListFormatError(f"root element is <{found}>, expected <{self.expected_root}>")
        self.root_attrib = dict(last.attrib)
        self.reader.drain()


def text(elem: ET.Element, path: str) -> str:
    """Stripped text of the first match, '' when absent or empty (`<QUALITY/>` placeholders)."""
    found = elem.find(path)
    return (found.text or "").strip() if found is not None else ""


def texts(elem: ET.Element, path: str) -> list[str]:
    return [(e.text or "").strip() for e in elem.iterfind(path) if (e.text or "").strip()]


def parse_iso_date(value: str, what: str) -> date:
    try:
        return date.fromisoformat(value.strip()[:10])
    except ValueError as error:
        raise ListFormatError(f"{what}: {value!r} is not a YYYY-MM-DD date") from error


def parse_iso_datetime(value: str, what: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError as error:
        raise ListFormatError(f"{what}: {value!r} is not an ISO 8601 date-time") from error
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


class Notes:
    """Data quirks skipped while parsing, kept on the snapshot (bounded)."""

    LIMIT = 50

    def __init__(self) -> None:
        self.items: list[str] = []
        self.dropped = 0

    def add(self, note: str) -> None:
        if len(self.items) < self.LIMIT:
            self.items.append(note)
        else:
            self.dropped += 1

    def freeze(self) -> tuple[str, ...]:
        extra = (f"... and {self.dropped} more",) if self.dropped else ()
        return (*self.items, *extra)


def check_unique(keys: set[str], key: str, what: str) -> None:
    if key in keys:
        raise ListFormatError(f"{what}: key {key!r} appears twice")
    keys.add(key)


def read_xml_list(
    source: Source,
    *,
    list_source: ListSource,
    label: str,
    root: str,
    records: frozenset[str],
    date_attribute: str,
    party_of: Callable[[ET.Element, Notes], ListedParty],
) -> ListSnapshot:
    """A list whose records are elements under `root` and whose publication time is an ISO
    attribute of `root` (EU FSF, UN consolidated)."""
    parties: list[ListedParty] = []
    keys: set[str] = set()
    notes = Notes()
    with open_source(source) as raw:
        stream = XmlStream(raw, root=root)
        for elem in stream.records(records):
            party = party_of(elem, notes)
            check_unique(keys, party.key, label)
            parties.append(party)
    generated = stream.root_attrib.get(date_attribute, "")
    if not generated:
        raise ListFormatError(f"{label} file without {root}/@{date_attribute}")
    return ListSnapshot(
        source=list_source,
        published_at=parse_iso_datetime(generated, date_attribute),
        parties=tuple(parties),
        digest=stream.reader.digest,
        notes=notes.freeze(),
    )
