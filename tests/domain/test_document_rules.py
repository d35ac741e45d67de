"""KYC document rules: kinds, limits, the dates that make a document usable, and re-KYC timing."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from domain.documents import (
    ALLOWED_CONTENT_TYPES,
    EXTENSIONS,
    MAX_BYTES,
    MAX_PAGES,
    MIN_BYTES,
    DocumentKind,
    DocumentStatus,
    check_dates,
    is_expired,
    needs_renewal,
    normalise_content_type,
    valid_until,
)
from domain.errors import InvalidInput

TODAY = date(2025, 6, 15)
IDENTITY = [DocumentKind.PASSPORT, DocumentKind.NATIONAL_ID, DocumentKind.DRIVING_LICENCE]
POA = DocumentKind.PROOF_OF_ADDRESS


def refused(kind: DocumentKind, issued: date | None, expires: date | None) -> InvalidInput:
    with pytest.raises(InvalidInput) as caught:
        check_dates(kind, issued, expires, TODAY)
    return caught.value


def test_kinds_are_identity_or_address() -> None:
    assert [k for k in DocumentKind if k.is_identity] == IDENTITY
    assert [k for k in DocumentKind if k.is_address] == [POA]
    assert DocumentKind("driving_licence") is DocumentKind.DRIVING_LICENCE
    assert {s.value for s in DocumentStatus} == {"uploaded", "accepted", "rejected", "expired"}


def test_limits() -> None:
    assert ALLOWED_CONTENT_TYPES == {"application/pdf", "image/jpeg", "image/png"}
    assert set(EXTENSIONS) == ALLOWED_CONTENT_TYPES
    assert MAX_BYTES == 10 * 1024 * 1024
    assert 0 < MIN_BYTES < MAX_BYTES
    assert set(MAX_PAGES) == set(DocumentKind)
    assert all(MAX_PAGES[k] <= 4 for k in IDENTITY)
    assert MAX_PAGES[POA] == 10


@pytest.mark.parametrize(
    ("declared", "normalised"),
    [
        ("application/pdf", "application/pdf"),
        ("Application/PDF; charset=binary", "application/pdf"),
        ("image/jpg", "image/jpeg"),
        ("image/pjpeg", "image/jpeg"),
        (" image/png ", "image/png"),
        ("text/plain", "text/plain"),
    ],
)
def test_content_type_normalisation(declared: str, normalised: str) -> None:
    assert normalise_content_type(declared) == normalised


@pytest.mark.parametrize("kind", IDENTITY)
def test_identity_document_valid_in_the_future(kind: DocumentKind) -> None:
    check_dates(kind, date(2020, 1, 1), date(2030, 1, 1), TODAY)
    check_dates(kind, None, TODAY + timedelta(days=1), TODAY)  # the issue date is optional
    check_dates(kind, TODAY, TODAY + timedelta(days=1), TODAY)


@pytest.mark.parametrize("kind", IDENTITY)
def test_identity_document_needs_an_expiry_date(kind: DocumentKind) -> None:
    error = refused(kind, date(2020, 1, 1), None)
    assert error.extra == {"field": "expires_on"}
    assert "expiry date" in error.detail


@pytest.mark.parametrize("expires", [TODAY - timedelta(days=1), date(2001, 1, 1)])
def test_expired_identity_document_refused(expires: date) -> None:
    error = refused(DocumentKind.PASSPORT, None, expires)
    assert error.extra == {"field": "expires_on"}
    assert f"expired on {expires.isoformat()}" in error.detail


def test_identity_document_expiring_today_refused() -> None:
    error = refused(DocumentKind.DRIVING_LICENCE, None, TODAY)
    assert error.extra == {"field": "expires_on"}
    assert "expires today" in error.detail


def test_identity_issue_date_not_in_the_future() -> None:
    error = refused(DocumentKind.NATIONAL_ID, TODAY + timedelta(days=1), date(2035, 1, 1))
    assert error.extra == {"field": "issued_on"}
    assert "future" in error.detail


@pytest.mark.parametrize("age_days", [0, 1, 45, 89, 90])
def test_recent_proof_of_address_accepted(age_days: int) -> None:
    check_dates(POA, TODAY - timedelta(days=age_days), None, TODAY)


@pytest.mark.parametrize("age_days", [91, 365])
def test_old_proof_of_address_refused(age_days: int) -> None:
    error = refused(POA, TODAY - timedelta(days=age_days), None)
    assert error.extra == {"field": "issued_on"}
    assert "90 days" in error.detail


def test_proof_of_address_needs_an_issue_date_and_has_no_expiry() -> None:
    assert refused(POA, None, None).extra == {"field": "issued_on"}
    assert refused(POA, TODAY, TODAY + timedelta(days=30)).extra == {"field": "expires_on"}
    assert refused(POA, TODAY + timedelta(days=1), None).extra == {"field": "issued_on"}


def test_valid_until() -> None:
    assert valid_until(DocumentKind.PASSPORT, date(2020, 1, 1), date(2030, 1, 1)) == date(
        2030, 1, 1
    )
    assert valid_until(POA, date(2025, 6, 1), None) == date(2025, 8, 30)
    with pytest.raises(InvalidInput):
        valid_until(DocumentKind.DRIVING_LICENCE, date(2020, 1, 1), None)
    with pytest.raises(InvalidInput):
        valid_until(POA, None, None)


def test_accepted_dates_give_a_document_that_counts_today() -> None:
    for kind, issued, expires in [
        (DocumentKind.PASSPORT, None, TODAY + timedelta(days=1)),
        (POA, TODAY - timedelta(days=90), None),
    ]:
        check_dates(kind, issued, expires, TODAY)
        assert not is_expired(valid_until(kind, issued, expires), TODAY)


def test_needs_renewal() -> None:
    until = date(2025, 7, 15)  # 30 days after TODAY
    assert needs_renewal(until, TODAY)  # exactly at the notice
    assert not needs_renewal(until, TODAY - timedelta(days=1))
    assert needs_renewal(until, until)
    assert needs_renewal(until, until + timedelta(days=10))  # already expired
    assert not needs_renewal(until, TODAY, notice_days=29)
    assert needs_renewal(until, until, notice_days=0)
    assert not needs_renewal(until, until - timedelta(days=1), notice_days=0)
    with pytest.raises(ValueError):
        needs_renewal(until, TODAY, notice_days=-1)


def test_is_expired() -> None:
    assert not is_expired(TODAY, TODAY)
    assert is_expired(TODAY, TODAY + timedelta(days=1))
