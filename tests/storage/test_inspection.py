"""Upload inspection on real files: PDFs rendered by WeasyPrint and reshaped with pypdf, JPEG and
PNG images drawn by Pillow, and the hostile or broken files a KYC upload form receives."""

from __future__ import annotations

import functools
import hashlib
import io
import os
import struct
import zlib
from collections.abc import Callable

import pytest
from PIL import Image
from pypdf import PdfReader, PdfWriter
from pypdf.generic import ArrayObject, DictionaryObject, NameObject, TextStringObject

from domain.documents import MAX_BYTES, MIN_BYTES, DocumentKind
from domain.errors import InvalidInput
from storage.inspection import InspectedFile, inspect_upload, inspect_upload_async

PASSPORT = DocumentKind.PASSPORT
POA = DocumentKind.PROOF_OF_ADDRESS


@functools.cache
def rendered_page() -> bytes:
    """One real A4 page with text and fonts, as a scanner's OCR'd PDF would have."""
    from weasyprint import HTML  # slow to import: only for the tests that need it

    page: bytes = HTML(
        string="<h1>PASSPORT</h1><p>Surname: EXAMPLE</p><p>Given names: ANN</p>"
        "<p>Document No. P1234567 &middot; Date of expiry 01 JAN 2030</p>"
    ).write_pdf()
    return page


def pdf(
    pages: int = 1,
    *,
    javascript: bool = False,
    hidden_javascript: bool = False,
    launch: bool = False,
    attachment: bool = False,
    password: str | None = None,
) -> bytes:
    page = PdfReader(io.BytesIO(rendered_page())).pages[0]
    writer = PdfWriter()
    for _ in range(pages):
        writer.add_page(page)
    if javascript:  # a document-level script, as Acrobat writes one
        script = DictionaryObject(
            {
                NameObject("/S"): NameObject("/JavaScript"),
                NameObject("/JS"): TextStringObject("app.alert('hello');"),
            }
        )
        names = ArrayObject([TextStringObject("greeting"), writer._add_object(script)])
        writer._root_object[NameObject("/Names")] = DictionaryObject(
            {NameObject("/JavaScript"): DictionaryObject({NameObject("/Names"): names})}
        )
    if hidden_javascript:
        # An action on opening the page, its name escaped so the literal "/JavaScript" is not in
        # the file: only a parser sees it.
        action = DictionaryObject(
            {
                NameObject("/S"): NameObject("/JavaScript"),
                NameObject("/JS"): TextStringObject("app.alert(1)"),
            }
        )
        writer.pages[0][NameObject("/AA")] = DictionaryObject({NameObject("/O"): action})
    if launch:
        writer._root_object[NameObject("/OpenAction")] = DictionaryObject(
            {NameObject("/S"): NameObject("/Launch"), NameObject("/F"): TextStringObject("a.exe")}
        )
    if attachment:
        writer.add_attachment("invoice.txt", b"hello")
    if password is not None:
        writer.encrypt(user_password=password, algorithm="AES-256")
    out = io.BytesIO()
    writer.write(out)
    data = out.getvalue()
    if hidden_javascript:
        data = data.replace(b"/JavaScript", b"/J#61vaScript")
    return data


def noise(size: tuple[int, int]) -> Image.Image:
    return Image.effect_noise(size, 60).convert("RGB")


def jpeg(size: tuple[int, int] = (800, 600)) -> bytes:
    out = io.BytesIO()
    noise(size).save(out, "JPEG", quality=85)
    return out.getvalue()


def png(size: tuple[int, int] = (400, 300)) -> bytes:
    out = io.BytesIO()
    noise(size).save(out, "PNG")
    return out.getvalue()


def png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png_claiming(width: int, height: int) -> bytes:
    """A small, well-formed PNG whose header claims enormous dimensions."""
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0))
        + png_chunk(b"tEXt", b"Comment\x00" + b"x" * 2048)
        + png_chunk(b"IDAT", zlib.compress(b"\x00" * 1024))
        + png_chunk(b"IEND", b"")
    )


def refusal(
    data: bytes,
    filename: str = "scan.pdf",
    declared: str | None = None,
    kind: DocumentKind = PASSPORT,
) -> str:
    with pytest.raises(InvalidInput) as caught:
        inspect_upload(data, filename=filename, declared_content_type=declared, kind=kind)
    assert caught.value.extra == {"field": "file"}
    return caught.value.detail


# -- accepted -------------------------------------------------------------------------------------


def test_pdf_accepted() -> None:
    data = pdf()
    found = inspect_upload(
        data, filename="passport.pdf", declared_content_type="application/pdf", kind=PASSPORT
    )
    assert found == InspectedFile(
        content_type="application/pdf",
        size=len(data),
        pages=1,
        sha256=hashlib.sha256(data).hexdigest(),
    )


def test_page_counts_up_to_the_kinds_limit() -> None:
    assert (
        inspect_upload(
            pdf(4), filename="id.pdf", declared_content_type=None, kind=DocumentKind.NATIONAL_ID
        ).pages
        == 4
    )
    assert (
        inspect_upload(
            pdf(10), filename="statement.pdf", declared_content_type=None, kind=POA
        ).pages
        == 10
    )


@pytest.mark.parametrize(
    ("filename", "declared"),
    [
        ("photo.jpg", "image/jpeg"),
        ("PHOTO.JPEG", "image/jpg"),
        ("IMG_0001.jpg", None),
        ("blob", "application/octet-stream"),
        ("photo.jfif", "image/jpeg; charset=binary"),
    ],
)
def test_jpeg_accepted(filename: str, declared: str | None) -> None:
    data = jpeg()
    found = inspect_upload(data, filename=filename, declared_content_type=declared, kind=POA)
    assert (found.content_type, found.pages, found.size) == ("image/jpeg", 1, len(data))


def test_png_accepted() -> None:
    data = png()
    found = inspect_upload(
        data, filename="licence.png", declared_content_type="image/png", kind=PASSPORT
    )
    assert (found.content_type, found.pages) == ("image/png", 1)
    assert found.sha256 == hashlib.sha256(data).hexdigest()


async def test_async_inspection() -> None:
    found = await inspect_upload_async(
        pdf(2), filename="p.pdf", declared_content_type="application/pdf", kind=PASSPORT
    )
    assert found.pages == 2
    with pytest.raises(InvalidInput):
        await inspect_upload_async(b"", filename="p.pdf", declared_content_type=None, kind=POA)


# -- size -----------------------------------------------------------------------------------------


def test_empty_file_refused() -> None:
    assert refusal(b"") == "the file is empty"


def test_oversized_file_refused_before_parsing() -> None:
    data = b"%PDF-1.7\n" + b"\x00" * MAX_BYTES
    assert "at most 10 MiB" in refusal(data)


def test_tiny_file_refused() -> None:
    out = io.BytesIO()
    writer = PdfWriter()
    writer.add_blank_page(595, 842)
    writer.write(out)
    assert len(out.getvalue()) < MIN_BYTES
    assert "too small" in refusal(out.getvalue())


# -- what the content is --------------------------------------------------------------------------


def test_text_file_refused() -> None:
    text = ("Name: Ann Example\nPassport: P1234567\n" * 100).encode()
    assert "a text file" in refusal(text, filename="passport.txt", declared="text/plain")
    assert "a text file" in refusal(text, filename="passport.pdf", declared="application/pdf")


def test_windows_program_refused() -> None:
    exe = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00" + os.urandom(8192)
    assert "Windows program" in refusal(exe, filename="passport.pdf")
    assert "Windows program" in refusal(exe, filename="setup.exe")


@pytest.mark.parametrize(
    ("data", "named"),
    [
        (b"GIF89a" + os.urandom(4096), "GIF image"),
        (b"PK\x03\x04" + os.urandom(4096), "Office document"),
        (b"\x00\x00\x00\x18ftypheic" + os.urandom(4096), "HEIC"),
        (b"%PDX-1.7\n" + os.urandom(4096), "not a PDF, JPEG or PNG"),
        (b"\x00" + jpeg(), "not a PDF, JPEG or PNG"),
    ],
)
def test_wrong_magic_refused(data: bytes, named: str) -> None:
    reason = refusal(data, filename="scan.jpg")
    assert named in reason
    assert "upload a PDF, JPEG or PNG" in reason


def test_png_named_pdf_refused() -> None:
    reason = refusal(png(), filename="passport.pdf")
    assert reason.startswith("the file name ends in .pdf but the file is a PNG image")


def test_unaccepted_extension_refused() -> None:
    assert "ending in .exe" in refusal(pdf(), filename="passport.pdf.exe")
    assert "ending in .html" in refusal(jpeg(), filename="photo.html")


@pytest.mark.parametrize(
    ("make", "filename", "declared", "expected"),
    [
        (jpeg, "scan.jpg", "image/png", "sent as a PNG image but it is a JPEG image"),
        (png, "scan.png", "application/pdf", "sent as a PDF but it is a PNG image"),
        (pdf, "scan.pdf", "image/jpeg", "sent as a JPEG image but it is a PDF"),
        (pdf, "scan.pdf", "text/html", "files of type text/html are not accepted"),
    ],
)
def test_declared_type_must_match(
    make: Callable[[], bytes], filename: str, declared: str, expected: str
) -> None:
    assert expected in refusal(make(), filename=filename, declared=declared)


# -- PDFs -----------------------------------------------------------------------------------------


def test_truncated_pdf_refused() -> None:
    data = pdf(3)
    assert "incomplete" in refusal(data[: len(data) // 2])
    assert "incomplete" in refusal(data[:-10])


def test_unparsable_pdf_refused() -> None:
    garbage = b"%PDF-1.7\n" + os.urandom(8192) + b"\n%%EOF\n"
    assert refusal(garbage) == "the file is not a readable PDF"


def test_encrypted_pdf_refused() -> None:
    assert "password-protected" in refusal(pdf(password="secret"))
    assert "password-protected" in refusal(pdf(password=""))  # opens, but encrypted


def test_pdf_with_javascript_refused() -> None:
    assert "JavaScript" in refusal(pdf(javascript=True))


def test_pdf_with_javascript_under_an_escaped_name_refused() -> None:
    data = pdf(hidden_javascript=True)
    assert b"/JavaScript" not in data
    assert "JavaScript" in refusal(data)


def test_pdf_launching_a_program_refused() -> None:
    assert "launch programs" in refusal(pdf(launch=True))


def test_pdf_with_an_embedded_file_refused() -> None:
    assert "embedded files" in refusal(pdf(attachment=True), kind=POA)


def test_too_many_pages_refused() -> None:
    assert refusal(pdf(5)) == "a passport may have at most 4 pages; this file has 5"
    assert (
        refusal(pdf(11), kind=POA)
        == "a proof of address may have at most 10 pages; this file has 11"
    )
    inspect_upload(pdf(5), filename="bill.pdf", declared_content_type=None, kind=POA)


# -- images --------------------------------------------------------------------------------------


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
def test_decompression_bomb_refused() -> None:
    out = io.BytesIO()
    Image.new("1", (10_000, 10_000)).save(out, "PNG")  # 100 megapixels in ~12 KB
    data = out.getvalue()
    assert len(data) < 100_000
    assert "10000 x 10000 pixels" in refusal(data, filename="scan.png")


def test_image_claiming_absurd_dimensions_refused() -> None:
    assert "megapixels" in refusal(png_claiming(100_000, 100_000), filename="scan.png")
    assert "megapixels" in refusal(png_claiming(60_000, 1_000), filename="scan.png")


def test_truncated_images_refused() -> None:
    data = jpeg()
    assert "not a readable image" in refusal(data[: len(data) // 2], filename="a.jpg")
    data = png()
    assert "not a readable image" in refusal(data[: len(data) // 2], filename="a.png")


def test_damaged_png_refused() -> None:
    data = bytearray(png())
    data[len(data) // 2] ^= 0xFF  # breaks a chunk's checksum
    assert "not a readable image" in refusal(bytes(data), filename="a.png")


def test_animated_png_refused() -> None:
    out = io.BytesIO()
    noise((300, 200)).save(out, "PNG", save_all=True, append_images=[noise((300, 200))])
    assert "animated" in refusal(out.getvalue(), filename="a.png")


def encoded(image: Image.Image, image_format: str, **options: object) -> bytes:
    out = io.BytesIO()
    image.save(out, image_format, **options)
    return out.getvalue()


@pytest.mark.parametrize(
    ("make", "filename"),
    [
        (lambda: encoded(noise((640, 480)), "JPEG", progressive=True), "a.jpg"),
        (lambda: encoded(noise((640, 480)), "JPEG", optimize=True, quality=95), "a.jpg"),
        (lambda: encoded(noise((640, 480)).convert("L"), "JPEG"), "a.jpg"),
        (lambda: encoded(noise((640, 480)).convert("CMYK"), "JPEG"), "a.jpg"),
        (lambda: encoded(noise((640, 480)), "JPEG", restart_marker_blocks=4), "a.jpg"),
        (lambda: encoded(noise((640, 480)), "JPEG", exif=exif_with_thumbnail()), "a.jpg"),
        (lambda: encoded(noise((640, 480)), "JPEG") + b"\x00trailer after EOI" * 10, "a.jpg"),
        (lambda: encoded(noise((300, 200)), "PNG", interlace=1), "a.png"),
        (lambda: encoded(noise((300, 200)).convert("P"), "PNG"), "a.png"),
        (lambda: encoded(noise((300, 200)).convert("I;16"), "PNG"), "a.png"),
        (lambda: encoded(noise((300, 200)).convert("RGBA"), "PNG", compress_level=0), "a.png"),
    ],
)
def test_image_variants_accepted(make: Callable[[], bytes], filename: str) -> None:
    data = make()
    found = inspect_upload(data, filename=filename, declared_content_type=None, kind=POA)
    assert found.pages == 1


def exif_with_thumbnail() -> bytes:
    """EXIF holding a JPEG thumbnail: an EOI marker long before the image's own."""
    exif = Image.Exif()
    exif[0x010F] = "ScannerCo"
    return exif.tobytes() + encoded(noise((64, 48)), "JPEG")


def test_structure_checked_even_when_pillow_tolerates_truncation(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """WeasyPrint sets ImageFile.LOAD_TRUNCATED_IMAGES for the whole process on import, which
    turns off Pillow's own truncation and CRC checks."""
    from PIL import ImageFile

    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)
    data = jpeg()
    for cut in (len(data) // 2, len(data) - 2):
        assert "not a readable image" in refusal(data[:cut], filename="a.jpg")
    data = png()
    assert "not a readable image" in refusal(data[: len(data) // 2], filename="a.png")
    damaged = bytearray(data)
    damaged[len(damaged) // 2] ^= 0xFF
    assert "not a readable image" in refusal(bytes(damaged), filename="a.png")
    without_iend = data[:-12]
    assert "not a readable image" in refusal(without_iend, filename="a.png")
