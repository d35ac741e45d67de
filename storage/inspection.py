"""What an upload really is, judged by its content — never by its name or declared type alone.

Every refusal is `InvalidInput(reason, field="file")` with a reason the client can act on. The
checks, in order: size bounds; magic bytes (PDF, JPEG or PNG only); the file name's extension and
the declared content type agree with the content; the file parses (pypdf for PDFs, Pillow for
images); PDFs carry no active content and no password; images are not decompression bombs; the
page count fits the document kind.

Parsing is CPU-bound and may take a while on a large file: from async code call
`inspect_upload_async`, which runs it in a worker thread.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import re
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any, Final

from PIL import Image, UnidentifiedImageError
from pypdf import PdfReader
from pypdf.generic import ArrayObject, DictionaryObject, IndirectObject

from domain.documents import (
    ALLOWED_CONTENT_TYPES,
    EXTENSIONS,
    JPEG,
    MAX_BYTES,
    MAX_PAGES,
    MAX_PIXELS,
    MIB,
    MIN_BYTES,
    PDF,
    PNG,
    DocumentKind,
    normalise_content_type,
)
from domain.errors import InvalidInput

FIELD: Final = "file"
_DESCRIPTION: Final = {PDF: "a PDF", JPEG: "a JPEG image", PNG: "a PNG image"}
_PILLOW_FORMAT: Final = {JPEG: "JPEG", PNG: "PNG"}
# Declared types that say nothing (a browser that does not know the file sends these).
_UNINFORMATIVE_TYPES: Final = frozenset({"", "application/octet-stream", "binary/octet-stream"})
# A PDF's object graph larger than this is refused rather than walked (scans have a few hundred).
MAX_PDF_OBJECTS: Final = 200_000
# Where a complete PDF ends: `%%EOF` within its last bytes (a truncated upload has none).
_PDF_TAIL_BYTES: Final = 4096
# Long names of active content, found even in objects pypdf would not reach. Short `/JS` is only
# looked for in the parsed graph: three bytes occur by chance in a large compressed stream.
_RAW_ACTIVE: Final = re.compile(
    rb"/(JavaScript|Launch|EmbeddedFiles?|RichMedia|SubmitForm|GoToR|ImportData)"
    rb"(?=[\s()<>\[\]{}/%]|$)"
)


@dataclass(frozen=True, slots=True)
class InspectedFile:
    content_type: str
    size: int
    pages: int
    sha256: str


def refuse(reason: str) -> InvalidInput:
    return InvalidInput(reason, field=FIELD)


def inspect_upload(
    data: bytes, *, filename: str, declared_content_type: str | None, kind: DocumentKind
) -> InspectedFile:
    """Check an upload of `kind` and say what it is; InvalidInput(field="file") when refused."""
    size = len(data)
    if size == 0:
        raise refuse("the file is empty")
    if size > MAX_BYTES:
        raise refuse(
            f"the file is {size / MIB:.1f} MiB; at most {MAX_BYTES // MIB} MiB is accepted"
        )
    if size < MIN_BYTES:
        raise refuse(
            f"the file is only {size} bytes, too small to be a scan or photo of a document"
        )
    content_type = sniff(data)
    _check_extension(filename, content_type)
    _check_declared(declared_content_type, content_type)
    if content_type == PDF:
        pages = _inspect_pdf(data)
    else:
        pages = _inspect_image(data, content_type)
    limit = MAX_PAGES[kind]
    if pages > limit:
        raise refuse(f"a {kind.label} may have at most {limit} pages; this file has {pages}")
    return InspectedFile(
        content_type=content_type, size=size, pages=pages, sha256=hashlib.sha256(data).hexdigest()
    )


async def inspect_upload_async(
    data: bytes, *, filename: str, declared_content_type: str | None, kind: DocumentKind
) -> InspectedFile:
    """`inspect_upload` in a worker thread, so parsing never blocks the event loop."""
    return await asyncio.to_thread(
        inspect_upload,
        data,
        filename=filename,
        declared_content_type=declared_content_type,
        kind=kind,
    )


# -- what the bytes are ---------------------------------------------------------------------------


def sniff(data: bytes) -> str:
    """The accepted content type the magic bytes announce; anything else is refused, named."""
    if data.startswith(b"%PDF-"):
        return PDF
    if data.startswith(b"\xff\xd8\xff"):
        return JPEG
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return PNG
    raise refuse(f"the file is {_describe_unaccepted(data)}; upload a PDF, JPEG or PNG")


def _describe_unaccepted(data: bytes) -> str:
    head = data[:16]
    if head.startswith(b"MZ"):
        return "a Windows program"
    if head.startswith(b"\x7fELF"):
        return "a program"
    if head.startswith(b"PK\x03\x04"):
        return "a ZIP archive or an Office document (save it as PDF first)"
    if head.startswith(b"\xd0\xcf\x11\xe0"):
        return "an Office document (save it as PDF first)"
    if head.startswith(b"{\\rtf"):
        return "a rich-text document (save it as PDF first)"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "a GIF image"
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        return "a WebP image"
    if head[4:8] == b"ftyp" and head[8:12] in {b"heic", b"heix", b"mif1", b"msf1", b"hevc"}:
        return "a HEIC photo (set the camera to 'Most Compatible' or export it as JPEG)"
    if head[4:8] == b"ftyp" and head[8:12] == b"avif":
        return "an AVIF image"
    if head.startswith((b"II*\x00", b"MM\x00*")):
        return "a TIFF image"
    if _looks_like_text(data[:4096]):
        return "a text file"
    return "not a PDF, JPEG or PNG file"


def _looks_like_text(sample: bytes) -> bool:
    if b"\x00" in sample:
        return False
    try:
        sample.decode("utf-8")
    except UnicodeDecodeError as exc:
        # A multi-byte character cut by the sample's end is still text.
        return exc.start >= len(sample) - 3
    return True


def _check_extension(filename: str, content_type: str) -> None:
    suffix = PurePosixPath(filename.replace("\\", "/")).suffix.lower()
    if not suffix:
        return  # e.g. "blob" from a camera capture: the content decides
    if suffix in EXTENSIONS[content_type]:
        return
    known = any(suffix in extensions for extensions in EXTENSIONS.values())
    if not known:
        raise refuse(f"files ending in {suffix[:16]} are not accepted; upload a PDF, JPEG or PNG")
    raise refuse(
        f"the file name ends in {suffix} but the file is {_DESCRIPTION[content_type]}; "
        "rename it or upload the intended file"
    )


def _check_declared(declared: str | None, content_type: str) -> None:
    if declared is None:
        return
    normalised = normalise_content_type(declared)
    if normalised in _UNINFORMATIVE_TYPES or normalised == content_type:
        return
    if normalised not in ALLOWED_CONTENT_TYPES:
        raise refuse(f"files of type {normalised[:64]} are not accepted; upload a PDF, JPEG or PNG")
    raise refuse(
        f"the file was sent as {_DESCRIPTION[normalised]} but it is {_DESCRIPTION[content_type]}"
    )


# -- PDF ------------------------------------------------------------------------------------------


def _inspect_pdf(data: bytes) -> int:
    if b"%%EOF" not in data[-_PDF_TAIL_BYTES:]:
        raise refuse("the PDF is incomplete (was the upload cut short?)")
    try:
        reader = PdfReader(io.BytesIO(data), strict=False)
        if reader.is_encrypted:
            raise refuse(
                "password-protected or encrypted PDFs are not accepted; "
                "upload it without a password"
            )
        pages = len(reader.pages)
        active = _active_content(reader)
    except InvalidInput:
        raise
    except Exception as exc:  # pypdf raises many kinds on a damaged file
        raise refuse("the file is not a readable PDF") from exc
    if active is None:
        found = _RAW_ACTIVE.search(data)
        if found is not None:
            active = _RAW_REASON[found.group(1).decode()]
    if active is not None:
        raise refuse(f"PDFs containing {active} are not accepted; upload a plain scan or export")
    if pages == 0:
        raise refuse("the PDF has no pages")
    return pages


_JAVASCRIPT: Final = "JavaScript"
_LAUNCH: Final = "actions that launch programs"
_EMBEDDED: Final = "embedded files"
_MEDIA: Final = "embedded media"
_XFA: Final = "XFA forms (which can run scripts)"
_SUBMIT: Final = "form actions that send data out (SubmitForm)"
_REMOTE: Final = "links that open other files (GoToR)"
_IMPORT: Final = "actions that import data (ImportData)"
_AUTO_URI: Final = "actions that open a web address by themselves (URI on open or on an event)"
_RAW_REASON: Final = {
    "JavaScript": _JAVASCRIPT,
    "Launch": _LAUNCH,
    "EmbeddedFiles": _EMBEDDED,
    "EmbeddedFile": _EMBEDDED,
    "RichMedia": _MEDIA,
    "SubmitForm": _SUBMIT,
    "GoToR": _REMOTE,
    "ImportData": _IMPORT,
}
_ACTIVE_KEYS: Final = {
    "/JS": _JAVASCRIPT,
    "/JavaScript": _JAVASCRIPT,
    "/Launch": _LAUNCH,
    "/EmbeddedFiles": _EMBEDDED,
    "/EF": _EMBEDDED,
    "/RichMedia": _MEDIA,
    "/XFA": _XFA,
}
_ACTIVE_VALUES: Final = {
    ("/S", "/JavaScript"): _JAVASCRIPT,
    ("/S", "/Launch"): _LAUNCH,
    ("/S", "/GoToE"): _EMBEDDED,
    ("/S", "/SubmitForm"): _SUBMIT,
    ("/S", "/GoToR"): _REMOTE,
    ("/S", "/ImportData"): _IMPORT,
    ("/Type", "/EmbeddedFile"): _EMBEDDED,
    ("/Subtype", "/FileAttachment"): _EMBEDDED,
    ("/Subtype", "/RichMedia"): _MEDIA,
}


def _active_content(reader: PdfReader) -> str | None:
    """Walk every object reachable from the trailer; the first kind of active content found.

    Names are compared after parsing, so `/J#61vaScript` and objects inside compressed object
    streams are seen as what a viewer sees.
    """
    try:
        for item in _dictionaries(reader.trailer, _composites):
            for name, value in dict.items(item):
                reason = _ACTIVE_KEYS.get(str(name))
                if reason is None and isinstance(value, str):
                    reason = _ACTIVE_VALUES.get((str(name), str(value)))
                if reason is None and str(name) in _AUTOMATIC_TRIGGERS:
                    reason = _AUTO_URI if _opens_uri(value) else None
                if reason is not None:
                    return reason
    except _TooComplex:
        raise refuse("the PDF is too complex to check; upload a simpler scan or export") from None
    return None


# A link the reader clicks may point to a web address; an action that runs by itself (when the
# document or a page opens, or on a form or mouse event) must not.
_AUTOMATIC_TRIGGERS: Final = frozenset({"/OpenAction", "/AA"})
# Back to the page tree from an action: not part of the action.
_PAGE_LINKS: Final = frozenset({"/Parent", "/P", "/Pg"})


def _opens_uri(trigger: Any) -> bool:
    """Whether an automatic action (with its `/Next` chain and, for `/AA`, every event's
    action) opens a URI. One too tangled to clear counts as opening one."""
    try:
        return any(
            str(dict.get(item, "/S", "")) == "/URI"
            for item in _dictionaries(trigger, _action_parts)
            if not _is_page(item)
        )
    except _TooComplex:
        return True


class _TooComplex(Exception):
    """More than MAX_PDF_OBJECTS objects to look at."""


def _dictionaries(
    root: Any, children: Callable[[DictionaryObject], Iterable[Any]]
) -> Iterator[DictionaryObject]:
    """Every dictionary reachable from `root` (through `children` of dictionaries and every
    composite in arrays), each indirect object resolved and looked at once."""
    stack: list[Any] = [root]
    seen: set[tuple[int, int]] = set()
    walked = 0
    while stack:
        item = stack.pop()
        if isinstance(item, IndirectObject):
            ref = (item.idnum, item.generation)
            if ref in seen:
                continue
            seen.add(ref)
            item = item.get_object()
        walked += 1
        if walked > MAX_PDF_OBJECTS:
            raise _TooComplex
        if isinstance(item, DictionaryObject):  # stream objects included (their dictionary)
            yield item
            stack.extend(children(item))
        elif isinstance(item, ArrayObject):
            stack.extend(value for value in list.__iter__(item) if _is_composite(value))


def _is_composite(value: Any) -> bool:
    return isinstance(value, DictionaryObject | ArrayObject | IndirectObject)


def _composites(item: DictionaryObject) -> Iterator[Any]:
    return (value for value in dict.values(item) if _is_composite(value))


def _is_page(item: DictionaryObject) -> bool:
    return str(dict.get(item, "/Type", "")) in ("/Page", "/Pages")


def _action_parts(item: DictionaryObject) -> Iterator[Any]:
    """An action's parts; a destination names a page, whose links are the reader's to click."""
    if _is_page(item):
        return iter(())
    return (
        value
        for name, value in dict.items(item)
        if str(name) not in _PAGE_LINKS and _is_composite(value)
    )


# -- images ---------------------------------------------------------------------------------------


def _inspect_image(data: bytes, content_type: str) -> int:
    image_format = _PILLOW_FORMAT[content_type]
    description = _DESCRIPTION[content_type]
    unreadable = f"the file is not a readable image (damaged or incomplete {description}?)"
    try:
        with Image.open(io.BytesIO(data), formats=[image_format]) as image:
            width, height = image.size
            _check_pixels(width, height)
            if getattr(image, "n_frames", 1) > 1:
                raise refuse("animated images are not accepted; upload a still photo or scan")
            image.verify()  # structure and checksums, without decoding the pixels
        if content_type == JPEG:
            # Decoded at 1/8 scale: cheap, yet every byte of the entropy-coded data is read.
            with Image.open(io.BytesIO(data), formats=[image_format]) as image:
                image.draft(None, (max(1, width // 8), max(1, height // 8)))
                image.load()
    except InvalidInput:
        raise
    except Image.DecompressionBombError as exc:
        raise refuse(
            f"the image's dimensions are implausibly large; at most {MAX_PIXELS // 1_000_000} "
            "megapixels are accepted"
        ) from exc
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError) as exc:
        raise refuse(unreadable) from exc
    # Pillow skips its truncation and checksum checks once any code in the process has set
    # ImageFile.LOAD_TRUNCATED_IMAGES (WeasyPrint does, on import): check the structure here.
    complete = _jpeg_is_complete(data) if content_type == JPEG else _png_is_complete(data)
    if width < 1 or height < 1 or not complete:
        raise refuse(unreadable)
    return 1


def _check_pixels(width: int, height: int) -> None:
    if width * height > MAX_PIXELS:
        raise refuse(
            f"the image is {width} x {height} pixels; at most {MAX_PIXELS // 1_000_000} "
            "megapixels are accepted (resize it, or scan at 300 dpi)"
        )


def _jpeg_is_complete(data: bytes) -> bool:
    """Marker segments from SOI through the entropy-coded scans to EOI (data after it is fine)."""
    size = len(data)
    position = 2  # after SOI
    while position + 2 <= size:
        if data[position] != 0xFF:
            return False
        marker = data[position + 1]
        if marker == 0xFF:  # fill byte
            position += 1
            continue
        if marker == 0xD9:  # EOI
            return True
        if 0xD0 <= marker <= 0xD7 or marker == 0x01:  # markers without a segment
            position += 2
            continue
        if position + 4 > size:
            return False
        length = int.from_bytes(data[position + 2 : position + 4], "big")
        if length < 2:
            return False
        position += 2 + length
        if marker != 0xDA:  # not SOS
            continue
        # Entropy-coded data runs to the next marker other than a stuffed 0xFF00 or a restart.
        while True:
            position = data.find(b"\xff", position)
            if position < 0 or position + 1 >= size:
                return False
            following = data[position + 1]
            if following == 0x00 or 0xD0 <= following <= 0xD7:
                position += 2
            elif following == 0xFF:
                position += 1
            else:
                break
    return False


_INFLATE_STEP: Final = 1 << 20


def _png_is_complete(data: bytes) -> bool:
    """Every chunk whole with a right CRC, through IEND, and the image data one complete zlib
    stream of plausible size (inflated piecewise and discarded, never held)."""
    size = len(data)
    position = 8  # after the signature
    inflater = zlib.decompressobj()
    inflated = 0
    # 16-bit RGBA (8 bytes a pixel) plus one filter byte a row is the most a PNG may need.
    limit = MAX_PIXELS * 8 + MAX_PIXELS
    while position + 12 <= size:
        length = int.from_bytes(data[position : position + 4], "big")
        end = position + 12 + length
        if end > size:
            return False
        kind = data[position + 4 : position + 8]
        body = data[position + 8 : position + 8 + length]
        if zlib.crc32(kind + body) != int.from_bytes(data[end - 4 : end], "big"):
            return False
        if kind == b"IDAT":
            try:
                pending = body
                while pending and not inflater.eof:
                    inflated += len(inflater.decompress(pending, _INFLATE_STEP))
                    pending = inflater.unconsumed_tail
                    if inflated > limit:
                        return False
            except zlib.error:
                return False
        if kind == b"IEND":
            return inflater.eof
        position = end
    return False
