"""Whether a PDF BrokerFlow rendered itself carries a mark in its text (the IB's copy of a
statement must not end with a page of the section for finance, whose margin says so). Only for
PDFs BrokerFlow made: an upload is judged by `storage.inspection`."""

from __future__ import annotations

import io

from pypdf import PdfReader


def last_page_has(pdf: bytes, mark: str) -> bool:
    """`mark` is in the text of `pdf`'s last page. CPU-bound: call it from a worker thread."""
    reader = PdfReader(io.BytesIO(pdf))
    return mark in (reader.pages[-1].extract_text() or "")
