"""PDF uploads whose actions reach outside the document are refused as JavaScript and Launch
are: SubmitForm, GoToR, ImportData, a URI opened by itself (on open or on an event), embedded
files. A link the reader clicks stays allowed."""

from __future__ import annotations

import io
from collections.abc import Callable

import pytest
from pypdf import PdfReader, PdfWriter
from pypdf.generic import (
    ArrayObject,
    DictionaryObject,
    NameObject,
    NumberObject,
    TextStringObject,
)

from domain.documents import DocumentKind
from domain.errors import InvalidInput
from storage.inspection import inspect_upload
from tests.storage.test_inspection import rendered_page

Build = Callable[[PdfWriter], None]


def action(kind: str, **entries: object) -> DictionaryObject:
    values = {NameObject("/S"): NameObject(kind)}
    for key, value in entries.items():
        values[NameObject(f"/{key}")] = (
            TextStringObject(value) if isinstance(value, str) else value  # type: ignore[assignment]
        )
    return DictionaryObject(values)


def document(build: Build, escape: bytes | None = None) -> bytes:
    writer = PdfWriter()
    writer.add_page(PdfReader(io.BytesIO(rendered_page())).pages[0])
    build(writer)
    out = io.BytesIO()
    writer.write(out)
    data = out.getvalue()
    if escape is not None:  # the name spelled with #xx escapes: only a parser sees it
        name = escape.lstrip(b"/")
        data = data.replace(escape, b"/" + name[:1] + b"#" + f"{name[1]:02x}".encode() + name[2:])
    return data


def open_action(value: DictionaryObject) -> Build:
    def build(writer: PdfWriter) -> None:
        writer._root_object[NameObject("/OpenAction")] = value

    return build


def page_event(value: DictionaryObject) -> Build:
    def build(writer: PdfWriter) -> None:
        writer.pages[0][NameObject("/AA")] = DictionaryObject({NameObject("/O"): value})

    return build


def link(value: DictionaryObject) -> Build:
    def build(writer: PdfWriter) -> None:
        annotation = DictionaryObject(
            {
                NameObject("/Type"): NameObject("/Annot"),
                NameObject("/Subtype"): NameObject("/Link"),
                NameObject("/Rect"): ArrayObject([NumberObject(n) for n in (10, 10, 100, 30)]),
                NameObject("/A"): value,
            }
        )
        writer.pages[0][NameObject("/Annots")] = ArrayObject([writer._add_object(annotation)])

    return build


def attachment(writer: PdfWriter) -> None:
    writer.add_attachment("payload.txt", b"hello")


def refusal(data: bytes) -> str:
    with pytest.raises(InvalidInput) as caught:
        inspect_upload(
            data, filename="scan.pdf", declared_content_type=None, kind=DocumentKind.PASSPORT
        )
    return caught.value.detail


URI = "https://attacker.example/beacon"


@pytest.mark.parametrize(
    ("build", "reason"),
    [
        (open_action(action("/URI", URI=URI)), "open a web address by themselves"),
        (page_event(action("/URI", URI=URI)), "open a web address by themselves"),
        (
            open_action(action("/GoTo", Next=action("/URI", URI=URI))),
            "open a web address by themselves",
        ),
        (open_action(action("/SubmitForm", F=URI)), "SubmitForm"),
        (link(action("/SubmitForm", F=URI)), "SubmitForm"),
        (link(action("/GoToR", F="other.pdf")), "GoToR"),
        (open_action(action("/ImportData", F="data.fdf")), "ImportData"),
        (attachment, "embedded files"),
    ],
    ids=[
        "openaction-uri",
        "page-open-uri",
        "uri-in-next-chain",
        "openaction-submitform",
        "link-submitform",
        "gotor",
        "importdata",
        "embedded-file",
    ],
)
def test_outbound_actions_are_refused(build: Build, reason: str) -> None:
    detail = refusal(document(build))
    assert "are not accepted" in detail and reason in detail


@pytest.mark.parametrize("name", [b"/SubmitForm", b"/GoToR", b"/ImportData"])
def test_escaped_names_are_seen_as_a_viewer_sees_them(name: bytes) -> None:
    kind = name.decode()
    data = document(link(action(kind, F="x")), escape=name)
    assert name not in data
    assert kind.lstrip("/") in refusal(data)


def test_a_link_the_reader_clicks_is_accepted() -> None:
    data = document(link(action("/URI", URI="https://www.bank.example/statement")))
    inspected = inspect_upload(
        data, filename="scan.pdf", declared_content_type=None, kind=DocumentKind.PASSPORT
    )
    assert inspected.pages == 1


def test_opening_at_a_page_with_a_link_is_accepted() -> None:
    def build(writer: PdfWriter) -> None:
        link(action("/URI", URI="https://www.bank.example/"))(writer)
        page = writer.pages[0].indirect_reference
        writer._root_object[NameObject("/OpenAction")] = ArrayObject([page, NameObject("/Fit")])

    inspected = inspect_upload(
        document(build), filename="scan.pdf", declared_content_type=None, kind=DocumentKind.PASSPORT
    )
    assert inspected.pages == 1
