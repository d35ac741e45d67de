"""Pages cut from a PDF BrokerFlow rendered itself: a trailing section, found by its bookmark,
left out of the copy another reader gets (the IB's copy of its statement has no section for
finance). Only for PDFs BrokerFlow made: an upload is judged by `storage.inspection`."""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

from pypdf import PdfReader, PdfWriter
from pypdf.generic import Destination


def _bookmarks(outline: list[Any]) -> Iterator[Destination]:
    for item in outline:
        if isinstance(item, list):
            yield from _bookmarks(item)
        else:
            yield item


def without_trailing_section(pdf: bytes, title: str) -> bytes:
    """`pdf` without the pages from the one the bookmark `title` points to up to the end (a
    last section that starts on a page of its own); `pdf` itself when it has no such
    bookmark. CPU-bound: call it from a worker thread."""
    reader = PdfReader(io.BytesIO(pdf))
    start = next(
        (
            reader.get_destination_page_number(item)
            for item in _bookmarks(reader.outline)
            if item.title == title
        ),
        None,
    )
    if start is None:
        return pdf
    writer = PdfWriter()
    for page in reader.pages[:start]:
        writer.add_page(page)
    if reader.metadata:
        writer.add_metadata(dict(reader.metadata))
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()
