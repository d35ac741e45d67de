"""Who reads the reports (finance and management, i.e. admins, and the auditor; read-only),
and the answers the reports' routes share."""

from __future__ import annotations

import re
from datetime import date
from typing import Annotated, Any

from fastapi import Depends
from fastapi.responses import Response
from pydantic import BeforeValidator, WithJsonSchema

from api.policy import ConsolePolicy, Policy, Principal
from domain.roles import StaffRole

REPORT_READERS = frozenset({StaffRole.ADMIN, StaffRole.FINANCE, StaffRole.AUDITOR})
report_readers = Policy("report readers", staff=REPORT_READERS)
console_report_readers = ConsolePolicy("console: report readers", staff=REPORT_READERS)
ReportReader = Annotated[Principal, Depends(report_readers)]
ConsoleReportReader = Annotated[Principal, Depends(console_report_readers)]

CSV_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"description": "the report as CSV", "content": {"text/csv": {}}},
}
PDF_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"description": "the management report", "content": {"application/pdf": {}}},
}


def csv_response(body: str, filename: str) -> Response:
    return Response(
        body,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


def _iso_day(value: object) -> object:
    """Only `YYYY-MM-DD` (the document's `format: date`): pydantic alone would also read a
    number as seconds since 1970."""
    if not isinstance(value, str) or not re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", value):
        raise ValueError("give a date as YYYY-MM-DD")
    return value


Day = Annotated[
    date, BeforeValidator(_iso_day), WithJsonSchema({"type": "string", "format": "date"})
]
