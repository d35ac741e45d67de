"""KYC documents: which kinds there are, which files are accepted, and when a document counts.

Pure rules, no I/O: the content of an upload is inspected by `storage.inspection`, which applies the
limits defined here.

`valid_until` is the last day a document counts (inclusive): for an identity document its printed
expiry date, for a proof of address its issue date + 90 days. Re-KYC tracks that date.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, timedelta
from enum import StrEnum
from types import MappingProxyType
from typing import Final

from domain.errors import InvalidInput


class DocumentKind(StrEnum):
    PASSPORT = "passport"
    NATIONAL_ID = "national_id"
    DRIVING_LICENCE = "driving_licence"
    PROOF_OF_ADDRESS = "proof_of_address"

    @property
    def is_identity(self) -> bool:
        """Proves who the client is (photo ID with an expiry date)."""
        return self in _IDENTITY_KINDS

    @property
    def is_address(self) -> bool:
        """Proves where the client lives (utility bill, bank statement), dated by issue."""
        return self is DocumentKind.PROOF_OF_ADDRESS

    @property
    def label(self) -> str:
        """How the kind is named to a person."""
        return _LABELS[self]


_IDENTITY_KINDS: Final = frozenset(
    {DocumentKind.PASSPORT, DocumentKind.NATIONAL_ID, DocumentKind.DRIVING_LICENCE}
)
_LABELS: Final[Mapping[DocumentKind, str]] = MappingProxyType(
    {
        DocumentKind.PASSPORT: "passport",
        DocumentKind.NATIONAL_ID: "national identity card",
        DocumentKind.DRIVING_LICENCE: "driving licence",
        DocumentKind.PROOF_OF_ADDRESS: "proof of address",
    }
)


class DocumentStatus(StrEnum):
    UPLOADED = "uploaded"
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    EXPIRED = "expired"


PDF: Final = "application/pdf"
JPEG: Final = "image/jpeg"
PNG: Final = "image/png"
ALLOWED_CONTENT_TYPES: Final = frozenset({PDF, JPEG, PNG})
# File-name extensions each accepted type may carry (lower case, with the dot).
EXTENSIONS: Final[Mapping[str, frozenset[str]]] = MappingProxyType(
    {
        PDF: frozenset({".pdf"}),
        JPEG: frozenset({".jpg", ".jpeg", ".jpe", ".jfif"}),
        PNG: frozenset({".png"}),
    }
)
# Content types some clients declare for an accepted type.
CONTENT_TYPE_ALIASES: Final[Mapping[str, str]] = MappingProxyType(
    {"image/jpg": JPEG, "image/pjpeg": JPEG, "image/x-png": PNG, "application/x-pdf": PDF}
)

MIB: Final = 1024 * 1024
MAX_BYTES: Final = 10 * MIB
# A real scan or photo of a document is never smaller than this.
MIN_BYTES: Final = 1024
# A 600 dpi A4 scan is ~35 MP and a high-end phone photo ~50 MP; anything larger is refused
# before it is decoded (a small file can claim enormous dimensions: a decompression bomb).
MAX_PIXELS: Final = 50_000_000
# Pages of one upload: an identity document is a few sides, a bank statement a few more.
MAX_PAGES: Final[Mapping[DocumentKind, int]] = MappingProxyType(
    {
        DocumentKind.PASSPORT: 4,
        DocumentKind.NATIONAL_ID: 4,
        DocumentKind.DRIVING_LICENCE: 4,
        DocumentKind.PROOF_OF_ADDRESS: 10,
    }
)

PROOF_OF_ADDRESS_MAX_AGE: Final = timedelta(days=90)
RENEWAL_NOTICE_DAYS: Final = 30


def normalise_content_type(content_type: str) -> str:
    """`Image/JPG; charset=binary` → `image/jpeg` (parameters dropped, aliases resolved)."""
    bare = content_type.split(";", 1)[0].strip().lower()
    return CONTENT_TYPE_ALIASES.get(bare, bare)


def check_dates(
    kind: DocumentKind, issued_on: date | None, expires_on: date | None, today: date
) -> None:
    """Refuse a document whose dates make it unusable today.

    Identity documents need an expiry date after today (a document expiring today would be out of
    date before anyone reviewed it), and an issue date, when given, not after today. A proof of
    address needs an issue date at most 90 days ago, and has no expiry date.
    """
    if issued_on is not None and issued_on > today:
        raise InvalidInput(
            f"the issue date {issued_on.isoformat()} is in the future", field="issued_on"
        )
    if kind.is_identity:
        if expires_on is None:
            raise InvalidInput(f"a {kind.label} needs its expiry date", field="expires_on")
        if expires_on < today:
            raise InvalidInput(
                f"this {kind.label} expired on {expires_on.isoformat()}; "
                "upload one that is still valid",
                field="expires_on",
            )
        if expires_on == today:
            raise InvalidInput(
                f"this {kind.label} expires today; upload one that is still valid",
                field="expires_on",
            )
        return
    if expires_on is not None:
        raise InvalidInput(
            "a proof of address has no expiry date; give only its issue date", field="expires_on"
        )
    if issued_on is None:
        raise InvalidInput("a proof of address needs its issue date", field="issued_on")
    if today - issued_on > PROOF_OF_ADDRESS_MAX_AGE:
        raise InvalidInput(
            f"a proof of address must be dated within the last {PROOF_OF_ADDRESS_MAX_AGE.days} "
            f"days; this one is dated {issued_on.isoformat()}",
            field="issued_on",
        )


def valid_until(kind: DocumentKind, issued_on: date | None, expires_on: date | None) -> date:
    """The last day the document counts: the expiry date, or a proof of address's issue + 90 d."""
    if kind.is_identity:
        if expires_on is None:
            raise InvalidInput(f"a {kind.label} needs its expiry date", field="expires_on")
        return expires_on
    if issued_on is None:
        raise InvalidInput("a proof of address needs its issue date", field="issued_on")
    return issued_on + PROOF_OF_ADDRESS_MAX_AGE


def is_expired(valid_until: date, today: date) -> bool:
    return today > valid_until


def needs_renewal(valid_until: date, today: date, notice_days: int = RENEWAL_NOTICE_DAYS) -> bool:
    """True once the document counts for `notice_days` days or fewer (or no longer counts)."""
    if notice_days < 0:
        raise ValueError("notice_days must not be negative")
    return (valid_until - today).days <= notice_days
