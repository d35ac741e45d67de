"""Business errors, each with the HTTP status the API answers and a reason a person can act on."""

from __future__ import annotations

from typing import Any, ClassVar


class BackOfficeError(Exception):
    status_code: ClassVar[int] = 400
    title: ClassVar[str] = "Bad request"

    def __init__(self, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra = extra


class InvalidInput(BackOfficeError):
    status_code = 422
    title = "Invalid input"


class NotAuthenticated(BackOfficeError):
    status_code = 401
    title = "Not authenticated"


class Forbidden(BackOfficeError):
    status_code = 403
    title = "Forbidden"


class NotFound(BackOfficeError):
    status_code = 404
    title = "Not found"


class Conflict(BackOfficeError):
    status_code = 409
    title = "Conflict"


class Gone(BackOfficeError):
    status_code = 410
    title = "Gone"


class ServiceUnavailable(BackOfficeError):
    status_code = 503
    title = "Service unavailable"
