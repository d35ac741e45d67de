"""The client's side of onboarding through HTTP, against a real database and a stand-in Temporal:
email verification, the questionnaire, documents, the KYC submission and the information asked
for, and leverage and closure requests. Every refusal has a reason and leaves nothing behind."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from contracts.account_change import AccountChangeInput
from contracts.client_mail import ClientMailInput, MailTemplate
from contracts.kyc_review import ClientInfo, KycCaseInput
from db.models import (
    AccountApplication,
    AccountChange,
    AuditEntry,
    Client,
    ClientDocument,
    KycCase,
    Mt5Account,
    QuestionnaireResponse,
)
from domain.accounts import AccountChangeKind
from domain.appropriateness import QUESTIONS
from domain.documents import MAX_BYTES
from domain.email_verification import make_token
from domain.kyc import KycSla
from settings import Settings
from storage.documents import EncryptedDocumentStore, LocalFileStore
from tests.api.conftest import FakeTemporal
from tests.support.people import applicant, passport_pdf, utility_bill_png

TODAY = datetime.now(UTC).date()
IN_FIVE_YEARS = (TODAY + timedelta(days=5 * 365)).isoformat()
LAST_WEEK = (TODAY - timedelta(days=7)).isoformat()


@dataclass(frozen=True)
class Applicant:
    id: uuid.UUID
    email: str
    headers: dict[str, str]


@pytest.fixture
def store(api: httpx.AsyncClient, settings: Settings, tmp_path: Path) -> EncryptedDocumentStore:
    """This test's own document store, in place of the app's."""
    documents = EncryptedDocumentStore(
        LocalFileStore(tmp_path / "documents"), settings.documents_key
    )
    api._transport.app.state.brokerflow.documents = documents  # type: ignore[attr-defined]
    return documents


def stored_blobs(tmp_path: Path) -> list[Path]:
    root = tmp_path / "documents"
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


async def sign_up(api: httpx.AsyncClient, **overrides: Any) -> Applicant:
    body = applicant(**overrides)
    response = await api.post("/v1/signup", json=body)
    assert response.status_code == 202, response.text
    token = await api.post(
        "/v1/auth/client/login", json={"email": body["email"], "password": body["password"]}
    )
    assert token.status_code == 200, token.text
    return Applicant(
        uuid.UUID(response.json()["client_id"]),
        body["email"],
        {"Authorization": f"Bearer {token.json()['access_token']}"},
    )


def token_for(settings: Settings, who: Applicant, email: str | None = None, hours: int = 1) -> str:
    key = settings.jwt_secret.get_secret_value().encode()
    expires = datetime.now(UTC) + timedelta(hours=hours)
    return make_token(key, who.id, email or who.email, expires)


def answers(knowledge_right: int = 6, experience: str = "max") -> dict[str, str]:
    """Answers scoring `knowledge_right` knowledge questions right; experience "max" (40
    points), "some" (20) or "none"."""
    chosen: dict[str, str] = {}
    knowledge = [q for q in QUESTIONS if q.kind.value == "knowledge"]
    for index, q in enumerate(knowledge):
        best = max(q.options, key=lambda o: o.points)
        worst = next(o for o in q.options if o.points == 0)
        chosen[q.id] = (best if index < knowledge_right else worst).id
    some = {"e_trades_12m": "11_40", "e_years_trading": "1_3", "e_education_profession": "none"}
    for q in QUESTIONS:
        if q.kind.value == "experience":
            ranked = sorted(q.options, key=lambda o: o.points)
            chosen[q.id] = {
                "max": ranked[-1].id,
                "none": ranked[0].id,
                "some": some[q.id],
            }[experience]
    chosen.update(
        p_trade_frequency="no",
        p_portfolio="no",
        p_financial_sector="no",
        f_source_of_funds="salary",
        f_expected_deposits="up_to_10k",
    )
    return chosen


async def count(sessions: async_sessionmaker[AsyncSession], model: type, *where: Any) -> int:
    async with sessions() as session:
        query = select(func.count()).select_from(model)
        for condition in where:
            query = query.where(condition)
        return int(await session.scalar(query) or 0)


async def upload(
    api: httpx.AsyncClient,
    who: Applicant,
    kind: str,
    content: bytes,
    filename: str,
    content_type: str,
    **dates: str,
) -> httpx.Response:
    return await api.post(
        "/v1/me/documents",
        data={"kind": kind, **dates},
        files={"file": (filename, content, content_type)},
        headers=who.headers,
    )


async def upload_passport(api: httpx.AsyncClient, who: Applicant) -> httpx.Response:
    return await upload(
        api,
        who,
        "passport",
        passport_pdf(),
        "passport.pdf",
        "application/pdf",
        expires_on=IN_FIVE_YEARS,
        issued_on="2022-03-01",
    )


async def upload_bill(api: httpx.AsyncClient, who: Applicant) -> httpx.Response:
    return await upload(
        api,
        who,
        "proof_of_address",
        utility_bill_png(),
        "bill.png",
        "image/png",
        issued_on=LAST_WEEK,
    )


async def ready_for_kyc(api: httpx.AsyncClient, settings: Settings, **overrides: Any) -> Applicant:
    """Signed up, verified, questionnaire passed, passport and proof of address uploaded."""
    who = await sign_up(api, **overrides)
    assert (
        await api.get("/v1/verify-email", params={"token": token_for(settings, who)})
    ).status_code == 200
    put = await api.put("/v1/me/questionnaire", json={"answers": answers()}, headers=who.headers)
    assert put.status_code == 200, put.text
    assert (await upload_passport(api, who)).status_code == 201
    assert (await upload_bill(api, who)).status_code == 201
    return who


# -- email verification -------------------------------------------------------------------------


class TestVerifyEmail:
    async def test_the_link_verifies_once_and_is_idempotent(
        self,
        api: httpx.AsyncClient,
        settings: Settings,
        sessions: async_sessionmaker[AsyncSession],
        temporal: FakeTemporal,
    ) -> None:
        who = await sign_up(api)
        token = token_for(settings, who)
        first = await api.get("/v1/verify-email", params={"token": token})
        assert first.status_code == 200, first.text
        assert first.json()["newly_verified"] is True
        again = await api.get("/v1/verify-email", params={"token": token})
        assert again.status_code == 200
        assert again.json()["newly_verified"] is False
        assert again.json()["email_verified_at"] == first.json()["email_verified_at"]
        assert await count(sessions, AuditEntry, AuditEntry.action == "client.email_verified") == 1
        me = await api.get("/v1/me", headers=who.headers)
        assert me.json()["email_verified_at"] is not None

    @pytest.mark.parametrize(
        ("make", "status", "says"),
        [
            # Not the token's pattern: refused by the documented schema.
            (lambda s, w: "garbage", 422, "token"),
            (lambda s, w: "a.b.c", 422, "token"),
            # Well-formed, yet no link this server gave, or one past its time.
            (lambda s, w: token_for(s, w)[:-4] + "AAAA", 404, "not valid"),
            (lambda s, w: token_for(s, w, email="other@example.com"), 404, "not valid"),
            (lambda s, w: token_for(s, w, hours=-1), 410, "expired"),
            (
                lambda s, w: token_for(s, Applicant(uuid.uuid4(), w.email, w.headers)),
                404,
                "not valid",
            ),
        ],
    )
    async def test_a_bad_link_is_refused_with_a_reason(
        self,
        api: httpx.AsyncClient,
        settings: Settings,
        sessions: async_sessionmaker[AsyncSession],
        temporal: FakeTemporal,
        make: Any,
        status: int,
        says: str,
    ) -> None:
        who = await sign_up(api)
        response = await api.get("/v1/verify-email", params={"token": make(settings, who)})
        assert response.status_code == status, response.text
        assert says in response.json()["detail"]
        async with sessions() as session:
            client = await session.get(Client, who.id)
        assert client is not None and client.email_verified_at is None

    async def test_a_token_signed_with_another_key_is_refused(
        self, api: httpx.AsyncClient, temporal: FakeTemporal
    ) -> None:
        who = await sign_up(api)
        forged = make_token(
            b"not-the-key", who.id, who.email, datetime.now(UTC) + timedelta(hours=1)
        )
        response = await api.get("/v1/verify-email", params={"token": forged})
        assert response.status_code == 404

    async def test_the_token_is_required_and_bounded(self, api: httpx.AsyncClient) -> None:
        assert (await api.get("/v1/verify-email")).status_code == 422
        assert (await api.get("/v1/verify-email", params={"token": "x" * 201})).status_code == 422
        assert (await api.get("/v1/verify-email", params={"token": "a b"})).status_code == 422


class TestResendVerification:
    async def test_a_new_mail_each_time_at_most_five_an_hour(
        self,
        api: httpx.AsyncClient,
        sessions: async_sessionmaker[AsyncSession],
        temporal: FakeTemporal,
    ) -> None:
        who = await sign_up(api)
        temporal.started.clear()
        for n in range(1, 6):
            response = await api.post("/v1/me/email/verification", headers=who.headers)
            assert response.status_code == 202, response.text
            assert response.json()["remaining_this_hour"] == 5 - n
        keys = [arg.key for _, arg, _ in temporal.started]
        assert keys == [f"verify-{who.id}-{n}" for n in range(1, 6)]
        assert all(
            isinstance(arg, ClientMailInput) and arg.template is MailTemplate.VERIFY_EMAIL
            for _, arg, _ in temporal.started
        )
        sixth = await api.post("/v1/me/email/verification", headers=who.headers)
        assert sixth.status_code == 429
        assert 0 < int(sixth.headers["Retry-After"]) <= 3600
        assert "within the last hour" in sixth.json()["detail"]
        assert len(temporal.started) == 5

    async def test_refused_once_verified(
        self, api: httpx.AsyncClient, settings: Settings, temporal: FakeTemporal
    ) -> None:
        who = await sign_up(api)
        await api.get("/v1/verify-email", params={"token": token_for(settings, who)})
        response = await api.post("/v1/me/email/verification", headers=who.headers)
        assert response.status_code == 409
        assert "already verified" in response.json()["detail"]


# -- questionnaire ------------------------------------------------------------------------------


class TestQuestionnaire:
    async def test_the_questions_show_no_points(
        self, api: httpx.AsyncClient, temporal: FakeTemporal
    ) -> None:
        who = await sign_up(api)
        body = (await api.get("/v1/me/questionnaire", headers=who.headers)).json()
        assert [q["id"] for q in body["questions"]] == [q.id for q in QUESTIONS]
        assert "points" not in str(body) and "explanation" not in str(body)
        assert body["answers"] is None and body["result"] is None

    async def test_a_pass_gives_the_eu_retail_cap(
        self,
        api: httpx.AsyncClient,
        sessions: async_sessionmaker[AsyncSession],
        temporal: FakeTemporal,
    ) -> None:
        who = await sign_up(api)
        response = await api.put(
            "/v1/me/questionnaire", json={"answers": answers()}, headers=who.headers
        )
        assert response.status_code == 200, response.text
        result = response.json()
        assert result["outcome"] == "appropriate"
        assert result["score"] == result["max_score"] == 100
        assert result["category"] == "retail"
        assert result["leverage_cap"] == 30 and result["regulatory_leverage_cap"] == 30
        assert result["source_of_funds"] == "salary"
        assert result["product_refused"] is None
        shown = (await api.get("/v1/me/questionnaire", headers=who.headers)).json()
        assert shown["answers"] == answers() and shown["result"]["id"] == result["id"]
        assert await count(sessions, QuestionnaireResponse) == 1
        assert (
            await count(sessions, AuditEntry, AuditEntry.action == "client.questionnaire_answered")
            == 1
        )

    async def test_a_weak_pass_caps_leverage_at_ten_and_warns(
        self, api: httpx.AsyncClient, temporal: FakeTemporal
    ) -> None:
        who = await sign_up(api)
        body = {"answers": answers(knowledge_right=3, experience="some")}
        result = (await api.put("/v1/me/questionnaire", json=body, headers=who.headers)).json()
        assert result["outcome"] == "appropriate_with_warning"
        assert result["leverage_cap"] == 10
        assert "crypto" in result["refused_products"]
        assert any("1:10" in w for w in result["warnings"])

    async def test_a_fail_refuses_the_product(
        self, api: httpx.AsyncClient, temporal: FakeTemporal
    ) -> None:
        who = await sign_up(api)
        body = {"answers": answers(knowledge_right=0, experience="none")}
        result = (await api.put("/v1/me/questionnaire", json=body, headers=who.headers)).json()
        assert result["outcome"] == "not_appropriate"
        assert result["leverage_cap"] is None
        assert "not appropriate" in result["product_refused"]

    async def test_professional_when_asked_for_and_qualified(
        self,
        api: httpx.AsyncClient,
        sessions: async_sessionmaker[AsyncSession],
        temporal: FakeTemporal,
    ) -> None:
        who = await sign_up(api, account_type="pro")
        chosen = {
            **answers(),
            "p_trade_frequency": "yes",
            "p_portfolio": "yes",
            "p_financial_sector": "yes",
        }
        body = {"answers": chosen, "requested_professional": True}
        result = (await api.put("/v1/me/questionnaire", json=body, headers=who.headers)).json()
        assert result["category"] == "professional"
        assert result["leverage_cap"] == 500
        async with sessions() as session:
            client = await session.get(Client, who.id)
        assert client is not None and client.category == "professional"

    async def test_a_pro_account_for_a_retail_client_is_refused(
        self, api: httpx.AsyncClient, temporal: FakeTemporal
    ) -> None:
        who = await sign_up(api, account_type="pro")
        result = (
            await api.put("/v1/me/questionnaire", json={"answers": answers()}, headers=who.headers)
        ).json()
        assert "professional clients only" in result["product_refused"]

    @pytest.mark.parametrize(
        ("change", "says"),
        [
            ({"k_unknown": "a"}, "'k_unknown' is not a question"),
            ({"k_leverage": "z"}, "'z' is not an option of question 'k_leverage'"),
            ({"f_source_of_funds": "lottery"}, "f_source_of_funds"),
            ({"k_leverage": None}, "k_leverage"),
        ],
    )
    async def test_unknown_questions_and_options_are_refused(
        self,
        api: httpx.AsyncClient,
        sessions: async_sessionmaker[AsyncSession],
        temporal: FakeTemporal,
        change: dict[str, Any],
        says: str,
    ) -> None:
        who = await sign_up(api)
        chosen: dict[str, Any] = {**answers(), **change}
        response = await api.put(
            "/v1/me/questionnaire", json={"answers": chosen}, headers=who.headers
        )
        assert response.status_code == 422, response.text
        assert says in response.text
        assert await count(sessions, QuestionnaireResponse) == 0

    async def test_every_question_must_be_answered_in_the_current_version(
        self,
        api: httpx.AsyncClient,
        sessions: async_sessionmaker[AsyncSession],
        temporal: FakeTemporal,
    ) -> None:
        who = await sign_up(api)
        partial = answers()
        del partial["k_pnl"]
        response = await api.put(
            "/v1/me/questionnaire", json={"answers": partial}, headers=who.headers
        )
        assert response.status_code == 422 and "'k_pnl' is not answered" in response.text
        old = await api.put(
            "/v1/me/questionnaire",
            json={"answers": answers(), "version": "2020-01"},
            headers=who.headers,
        )
        assert old.status_code == 422 and "2020-01" in old.text
        assert await count(sessions, QuestionnaireResponse) == 0


# -- documents ----------------------------------------------------------------------------------


class TestDocuments:
    async def test_stored_encrypted_listed_and_idempotent(
        self,
        api: httpx.AsyncClient,
        sessions: async_sessionmaker[AsyncSession],
        temporal: FakeTemporal,
        store: EncryptedDocumentStore,
        tmp_path: Path,
    ) -> None:
        who = await sign_up(api)
        pdf = passport_pdf()
        first = await upload(
            api,
            who,
            "passport",
            pdf,
            "my passport.pdf",
            "application/pdf",
            expires_on=IN_FIVE_YEARS,
        )
        assert first.status_code == 201, first.text
        document = first.json()
        assert document["kind"] == "passport" and document["status"] == "uploaded"
        assert document["content_type"] == "application/pdf" and document["pages"] == 1
        assert document["valid_until"] == IN_FIVE_YEARS
        again = await upload(
            api, who, "passport", pdf, "renamed.pdf", "application/pdf", expires_on=IN_FIVE_YEARS
        )
        assert again.status_code == 200
        assert again.json()["id"] == document["id"]
        [blob] = stored_blobs(tmp_path)
        assert b"%PDF" not in blob.read_bytes()  # encrypted at rest
        async with sessions() as session:
            row = await session.get(ClientDocument, uuid.UUID(document["id"]))
        assert row is not None and await store.get(row.storage_key) == pdf
        assert str(who.id) in row.storage_key and row.sha256 not in row.storage_key
        listed = (await api.get("/v1/me/documents", headers=who.headers)).json()
        assert [d["id"] for d in listed] == [document["id"]]
        assert (
            await count(sessions, AuditEntry, AuditEntry.action == "client_document.uploaded") == 1
        )

    async def test_the_same_file_as_another_kind_is_a_conflict(
        self, api: httpx.AsyncClient, temporal: FakeTemporal, store: EncryptedDocumentStore
    ) -> None:
        who = await sign_up(api)
        png = utility_bill_png()
        assert (
            await upload(
                api, who, "proof_of_address", png, "a.png", "image/png", issued_on=LAST_WEEK
            )
        ).status_code == 201
        response = await upload(
            api, who, "national_id", png, "a.png", "image/png", expires_on=IN_FIVE_YEARS
        )
        assert response.status_code == 409
        assert "already uploaded as a proof of address" in response.json()["detail"]

    @pytest.mark.parametrize(
        ("kind", "content", "filename", "ctype", "dates", "says"),
        [
            (
                "passport",
                b"just some text\n" * 100,
                "p.pdf",
                "application/pdf",
                {"expires_on": IN_FIVE_YEARS},
                "text file",
            ),
            (
                "passport",
                b"GIF89a" + b"\0" * 2000,
                "p.gif",
                "image/gif",
                {"expires_on": IN_FIVE_YEARS},
                "GIF",
            ),
            (
                "passport",
                b"%PDF-1.7\n" + b"x" * 2000,
                "p.pdf",
                "application/pdf",
                {"expires_on": IN_FIVE_YEARS},
                "incomplete",
            ),
            (
                "passport",
                None,
                "p.png",
                "image/png",
                {"expires_on": IN_FIVE_YEARS},
                "file name ends in .png but the file is a PDF",
            ),
            (
                "passport",
                None,
                "p.pdf",
                "image/png",
                {"expires_on": IN_FIVE_YEARS},
                "sent as a PNG image but it is a PDF",
            ),
            ("passport", None, "p.pdf", "application/pdf", {}, "needs its expiry date"),
            (
                "passport",
                None,
                "p.pdf",
                "application/pdf",
                {"expires_on": (TODAY - timedelta(days=1)).isoformat()},
                "expired",
            ),
            (
                "proof_of_address",
                None,
                "p.pdf",
                "application/pdf",
                {"issued_on": (TODAY - timedelta(days=120)).isoformat()},
                "within the last 90 days",
            ),
            (
                "proof_of_address",
                None,
                "p.pdf",
                "application/pdf",
                {"issued_on": LAST_WEEK, "expires_on": IN_FIVE_YEARS},
                "no expiry date",
            ),
            ("visa", None, "p.pdf", "application/pdf", {}, "kind"),
            (
                "passport",
                None,
                "p.pdf",
                "application/pdf",
                {"expires_on": "31.12.2030"},
                "expires_on",
            ),
            ("passport", b"", "p.pdf", "application/pdf", {"expires_on": IN_FIVE_YEARS}, "empty"),
        ],
    )
    async def test_bad_uploads_are_refused_and_leave_nothing(
        self,
        api: httpx.AsyncClient,
        sessions: async_sessionmaker[AsyncSession],
        temporal: FakeTemporal,
        store: EncryptedDocumentStore,
        tmp_path: Path,
        kind: str,
        content: bytes | None,
        filename: str,
        ctype: str,
        dates: dict[str, str],
        says: str,
    ) -> None:
        who = await sign_up(api)
        data = passport_pdf() if content is None else content
        response = await upload(api, who, kind, data, filename, ctype, **dates)
        assert response.status_code == 422, response.text
        assert response.headers["content-type"] == "application/problem+json"
        assert says in response.text
        assert await count(sessions, ClientDocument) == 0
        assert stored_blobs(tmp_path) == []

    async def test_an_oversized_file_is_refused_without_storing_it(
        self,
        api: httpx.AsyncClient,
        sessions: async_sessionmaker[AsyncSession],
        temporal: FakeTemporal,
        store: EncryptedDocumentStore,
        tmp_path: Path,
    ) -> None:
        who = await sign_up(api)
        big = b"%PDF-1.7\n" + b"0" * MAX_BYTES
        response = await upload(
            api, who, "passport", big, "big.pdf", "application/pdf", expires_on=IN_FIVE_YEARS
        )
        assert response.status_code == 422
        assert "at most 10 MiB" in response.json()["detail"]
        assert await count(sessions, ClientDocument) == 0
        assert stored_blobs(tmp_path) == []

    async def test_a_declared_oversized_body_is_refused_before_it_is_read(
        self, api: httpx.AsyncClient, temporal: FakeTemporal, store: EncryptedDocumentStore
    ) -> None:
        who = await sign_up(api)
        sent = 0

        async def body() -> Any:
            nonlocal sent
            for _ in range(40):
                sent += 1
                yield b"x" * 1024 * 1024

        response = await api.post(
            "/v1/me/documents",
            content=body(),
            headers={
                **who.headers,
                "Content-Type": "multipart/form-data; boundary=xyz",
                "Content-Length": str(40 * 1024 * 1024),
            },
        )
        assert response.status_code == 422
        assert "at most 10 MiB" in response.json()["detail"]
        assert sent <= 1  # refused on the header

    async def test_a_streamed_oversized_body_stops_being_read(
        self, api: httpx.AsyncClient, temporal: FakeTemporal, store: EncryptedDocumentStore
    ) -> None:
        who = await sign_up(api)
        sent = 0

        async def body() -> Any:
            nonlocal sent
            for _ in range(40):
                sent += 1
                yield b"x" * 1024 * 1024

        response = await api.post(
            "/v1/me/documents",
            content=body(),
            headers={**who.headers, "Content-Type": "multipart/form-data; boundary=xyz"},
        )
        assert response.status_code == 422
        assert "at most 10 MiB" in response.json()["detail"]

    @pytest.mark.parametrize(
        ("request_kwargs", "says"),
        [
            ({"json": {"kind": "passport"}}, "multipart/form-data"),
            ({"data": {"kind": "passport", "expires_on": IN_FIVE_YEARS}}, "file"),
            (
                {
                    "data": {"kind": "passport", "colour": "blue"},
                    "files": {"file": ("p.pdf", b"%PDF-", "application/pdf")},
                },
                "unexpected form field",
            ),
            (
                {
                    "content": b"--xyz\r\nnot a part",
                    "headers": {"Content-Type": "multipart/form-data; boundary=xyz"},
                },
                "",
            ),
        ],
    )
    async def test_malformed_forms(
        self,
        api: httpx.AsyncClient,
        sessions: async_sessionmaker[AsyncSession],
        temporal: FakeTemporal,
        store: EncryptedDocumentStore,
        request_kwargs: dict[str, Any],
        says: str,
    ) -> None:
        who = await sign_up(api)
        headers = {**who.headers, **request_kwargs.pop("headers", {})}
        response = await api.post("/v1/me/documents", headers=headers, **request_kwargs)
        assert response.status_code == 422, response.text
        assert says in response.text
        assert await count(sessions, ClientDocument) == 0

    async def test_a_client_sees_only_its_own_documents(
        self, api: httpx.AsyncClient, temporal: FakeTemporal, store: EncryptedDocumentStore
    ) -> None:
        alice, bob = await sign_up(api), await sign_up(api)
        assert (await upload_passport(api, alice)).status_code == 201
        assert (await api.get("/v1/me/documents", headers=bob.headers)).json() == []


# -- KYC ----------------------------------------------------------------------------------------


class TestKycSubmission:
    async def test_everything_missing_is_named(
        self,
        api: httpx.AsyncClient,
        sessions: async_sessionmaker[AsyncSession],
        temporal: FakeTemporal,
    ) -> None:
        who = await sign_up(api)
        temporal.started.clear()
        response = await api.post("/v1/me/kyc", headers=who.headers)
        assert response.status_code == 409
        assert response.json()["missing"] == [
            "email_not_verified",
            "questionnaire_missing",
            "identity_document_missing",
            "proof_of_address_missing",
        ]
        overview = (await api.get("/v1/me/kyc", headers=who.headers)).json()
        assert overview["case"] is None and len(overview["missing"]) == 4
        assert await count(sessions, KycCase) == 0
        assert temporal.started == []

    async def test_submitted_once_and_the_open_case_returned_after(
        self,
        api: httpx.AsyncClient,
        settings: Settings,
        sessions: async_sessionmaker[AsyncSession],
        temporal: FakeTemporal,
        store: EncryptedDocumentStore,
    ) -> None:
        who = await ready_for_kyc(api, settings)
        temporal.started.clear()
        first = await api.post("/v1/me/kyc", headers=who.headers)
        assert first.status_code == 202, first.text
        case = first.json()
        assert case["status"] == "checking" and case["reason"] == "onboarding"
        [(name, argument, workflow_id)] = temporal.started
        assert name == "KycReview" and workflow_id == f"kyc-case-{case['id']}"
        assert argument == KycCaseInput(
            case_id=uuid.UUID(case["id"]),
            client_id=who.id,
            sla=KycSla(
                review=timedelta(hours=settings.kyc.review_sla_hours),
                client_reminder=timedelta(days=settings.kyc.client_reminder_days),
                client_reminders=settings.kyc.client_reminders,
            ),
        )
        again = await api.post("/v1/me/kyc", headers=who.headers)
        assert again.status_code == 200 and again.json()["id"] == case["id"]
        assert len(temporal.started) == 1
        async with sessions() as session:
            row = await session.get(KycCase, uuid.UUID(case["id"]))
        assert row is not None
        assert row.account_type == "standard" and row.mt5_server == settings.mt5.name
        overview = (await api.get("/v1/me/kyc", headers=who.headers)).json()
        assert overview["case"]["id"] == case["id"] and overview["missing"] == []

    async def test_an_idempotency_key_names_one_case(
        self,
        api: httpx.AsyncClient,
        settings: Settings,
        sessions: async_sessionmaker[AsyncSession],
        temporal: FakeTemporal,
        store: EncryptedDocumentStore,
    ) -> None:
        who = await ready_for_kyc(api, settings)
        headers = {**who.headers, "Idempotency-Key": "kyc-1"}
        first = await api.post("/v1/me/kyc", headers=headers)
        assert first.status_code == 202
        # The case closes (rejected); the same key still answers with it, not a new case.
        async with sessions.begin() as session:
            await session.execute(update(KycCase).values(status="rejected"))
        again = await api.post("/v1/me/kyc", headers=headers)
        assert again.status_code == 200 and again.json()["id"] == first.json()["id"]
        assert await count(sessions, KycCase) == 1

    async def test_refused_when_not_appropriate(
        self,
        api: httpx.AsyncClient,
        settings: Settings,
        sessions: async_sessionmaker[AsyncSession],
        temporal: FakeTemporal,
        store: EncryptedDocumentStore,
    ) -> None:
        who = await ready_for_kyc(api, settings)
        failed = {"answers": answers(knowledge_right=0, experience="none")}
        assert (
            await api.put("/v1/me/questionnaire", json=failed, headers=who.headers)
        ).status_code == 200
        response = await api.post("/v1/me/kyc", headers=who.headers)
        assert response.status_code == 409
        assert response.json()["missing"] == ["not_appropriate"]
        assert await count(sessions, KycCase) == 0

    async def test_refused_for_a_pro_account_of_a_retail_client(
        self,
        api: httpx.AsyncClient,
        settings: Settings,
        temporal: FakeTemporal,
        store: EncryptedDocumentStore,
    ) -> None:
        who = await ready_for_kyc(api, settings, account_type="pro")
        response = await api.post("/v1/me/kyc", headers=who.headers)
        assert response.status_code == 409
        assert response.json()["missing"] == ["product_refused"]
        assert "professional clients only" in response.json()["detail"]

    async def test_refused_once_decided(
        self,
        api: httpx.AsyncClient,
        settings: Settings,
        sessions: async_sessionmaker[AsyncSession],
        temporal: FakeTemporal,
        store: EncryptedDocumentStore,
    ) -> None:
        who = await ready_for_kyc(api, settings)
        async with sessions.begin() as session:
            await session.execute(update(Client).values(kyc_status="approved"))
        response = await api.post("/v1/me/kyc", headers=who.headers)
        assert response.status_code == 409 and "already verified" in response.json()["detail"]

    async def test_workflow_engine_down_leaves_no_case(
        self,
        api: httpx.AsyncClient,
        settings: Settings,
        sessions: async_sessionmaker[AsyncSession],
        temporal: FakeTemporal,
        store: EncryptedDocumentStore,
    ) -> None:
        who = await ready_for_kyc(api, settings)
        temporal.down = True
        assert (await api.post("/v1/me/kyc", headers=who.headers)).status_code == 503
        assert await count(sessions, KycCase) == 0

    async def test_the_questionnaire_is_frozen_while_under_review(
        self,
        api: httpx.AsyncClient,
        settings: Settings,
        temporal: FakeTemporal,
        store: EncryptedDocumentStore,
    ) -> None:
        who = await ready_for_kyc(api, settings)
        assert (await api.post("/v1/me/kyc", headers=who.headers)).status_code == 202
        response = await api.put(
            "/v1/me/questionnaire", json={"answers": answers()}, headers=who.headers
        )
        assert response.status_code == 409


class TestKycInformation:
    async def _case_waiting_for_info(
        self,
        api: httpx.AsyncClient,
        settings: Settings,
        sessions: async_sessionmaker[AsyncSession],
    ) -> tuple[Applicant, str]:
        who = await ready_for_kyc(api, settings)
        case = (await api.post("/v1/me/kyc", headers=who.headers)).json()
        async with sessions.begin() as session:
            await session.execute(
                update(KycCase).values(status="info_requested", info_needed="a clearer scan")
            )
        return who, case["id"]

    async def test_signalled_to_the_case_workflow(
        self,
        api: httpx.AsyncClient,
        settings: Settings,
        sessions: async_sessionmaker[AsyncSession],
        temporal: FakeTemporal,
        store: EncryptedDocumentStore,
    ) -> None:
        who, case_id = await self._case_waiting_for_info(api, settings, sessions)
        overview = (await api.get("/v1/me/kyc", headers=who.headers)).json()
        assert overview["case"]["info_needed"] == "a clearer scan"
        document = (await upload_bill(api, who)).json()
        response = await api.post(
            "/v1/me/kyc/info",
            json={"note": "a better scan", "document_ids": [document["id"]]},
            headers=who.headers,
        )
        assert response.status_code == 202, response.text
        assert temporal.signals == [
            (
                f"kyc-case-{case_id}",
                "info_submitted",
                ClientInfo(note="a better scan", document_ids=(uuid.UUID(document["id"]),)),
            )
        ]
        assert (
            await count(sessions, AuditEntry, AuditEntry.action == "kyc_case.info_submitted") == 1
        )

    async def test_refused_when_nothing_is_asked_for(
        self,
        api: httpx.AsyncClient,
        settings: Settings,
        temporal: FakeTemporal,
        store: EncryptedDocumentStore,
    ) -> None:
        who = await ready_for_kyc(api, settings)
        assert (await api.post("/v1/me/kyc", headers=who.headers)).status_code == 202
        response = await api.post("/v1/me/kyc/info", json={"note": "hello"}, headers=who.headers)
        assert response.status_code == 409
        assert temporal.signals == []

    async def test_only_own_documents_and_something_to_say(
        self,
        api: httpx.AsyncClient,
        settings: Settings,
        sessions: async_sessionmaker[AsyncSession],
        temporal: FakeTemporal,
        store: EncryptedDocumentStore,
    ) -> None:
        who, _ = await self._case_waiting_for_info(api, settings, sessions)
        other = await sign_up(api)
        theirs = (await upload_passport(api, other)).json()
        for body, says in (
            ({"document_ids": [theirs["id"]]}, "you have no document"),
            ({"document_ids": [str(uuid.uuid4())]}, "you have no document"),
            ({}, "give a note"),
            ({"note": "x" * 2001}, "note"),
        ):
            response = await api.post("/v1/me/kyc/info", json=body, headers=who.headers)
            assert response.status_code == 422, body
            assert says in response.text
        assert temporal.signals == []

    async def test_a_finished_workflow_is_a_conflict(
        self,
        api: httpx.AsyncClient,
        settings: Settings,
        sessions: async_sessionmaker[AsyncSession],
        temporal: FakeTemporal,
        store: EncryptedDocumentStore,
    ) -> None:
        who, case_id = await self._case_waiting_for_info(api, settings, sessions)
        temporal.closed.add(f"kyc-case-{case_id}")
        response = await api.post("/v1/me/kyc/info", json={"note": "x"}, headers=who.headers)
        assert response.status_code == 409
        assert (
            await count(sessions, AuditEntry, AuditEntry.action == "kyc_case.info_submitted") == 0
        )


# -- account changes ----------------------------------------------------------------------------

_logins = iter(range(5_300_001, 5_399_999))


async def live_account(
    sessions: async_sessionmaker[AsyncSession],
    who: Applicant,
    *,
    leverage: int = 30,
    kind: str = "live",
    status: str = "active",
    account_type: str = "standard",
    risk_level: str | None = "low",
) -> int:
    login = next(_logins)
    application_id = uuid.uuid4()
    async with sessions.begin() as session:
        session.add(
            AccountApplication(
                id=application_id,
                client_id=who.id,
                account_type=account_type,
                kind=kind,
                status="completed",
                workflow_id=f"account-opening-{application_id}",
                mt5_server="demo",
                mt5_login=login,
            )
        )
        await session.flush()
        session.add(
            Mt5Account(
                client_id=who.id,
                application_id=application_id,
                server="demo",
                login=login,
                group="real\\eu\\standard",
                leverage=leverage,
                currency="EUR",
                kind=kind,
                status=status,
            )
        )
        await session.execute(
            update(Client)
            .where(Client.id == who.id)
            .values(risk_level=risk_level, kyc_status="approved")
        )
    return login


async def approved_client(
    api: httpx.AsyncClient, knowledge_right: int = 6, experience: str = "max", **overrides: Any
) -> Applicant:
    who = await sign_up(api, **overrides)
    body = {"answers": answers(knowledge_right, experience)}
    assert (
        await api.put("/v1/me/questionnaire", json=body, headers=who.headers)
    ).status_code == 200
    return who


def key(value: str | None = None) -> dict[str, str]:
    return {"Idempotency-Key": value or str(uuid.uuid4())}


class TestLeverage:
    async def test_within_the_cap_it_is_applied_at_once(
        self,
        api: httpx.AsyncClient,
        sessions: async_sessionmaker[AsyncSession],
        temporal: FakeTemporal,
    ) -> None:
        who = await approved_client(api)
        login = await live_account(sessions, who)
        temporal.started.clear()
        response = await api.post(
            f"/v1/me/accounts/{login}/leverage",
            json={"leverage": 20},
            headers={**who.headers, **key()},
        )
        assert response.status_code == 202, response.text
        change = response.json()
        assert change["status"] == "applying" and change["kind"] == "leverage"
        assert change["requested"] == {"leverage": 20} and change["before"] == {"leverage": 30}
        assert change["login"] == login
        [(name, argument, workflow_id)] = temporal.started
        assert name == "AccountChange" and workflow_id == f"account-change-{change['id']}"
        assert isinstance(argument, AccountChangeInput)
        assert argument.kind is AccountChangeKind.LEVERAGE and argument.leverage == 20
        assert argument.needs_approval is False
        listed = (await api.get("/v1/me/account-changes", headers=who.headers)).json()
        assert [c["id"] for c in listed] == [change["id"]]

    async def test_above_the_appropriateness_cap_it_waits_for_compliance(
        self,
        api: httpx.AsyncClient,
        sessions: async_sessionmaker[AsyncSession],
        temporal: FakeTemporal,
    ) -> None:
        who = await approved_client(api, knowledge_right=3, experience="some")  # weak pass: 1:10
        login = await live_account(sessions, who, leverage=10)
        response = await api.post(
            f"/v1/me/accounts/{login}/leverage",
            json={"leverage": 20},
            headers={**who.headers, **key()},
        )
        assert response.status_code == 202, response.text
        assert response.json()["status"] == "pending_approval"
        [(_, argument, _)] = [s for s in temporal.started if s[0] == "AccountChange"]
        assert argument.needs_approval is True

    @pytest.mark.parametrize(
        ("leverage", "says"),
        [
            (50, "above the regulatory cap of 1:30 for retail clients in the EU region"),
            (500, "regulatory cap of 1:30"),
            (15, "not a leverage accounts are given"),
            (30, "already has leverage 1:30"),
            (0, "leverage"),
            ("thirty", "leverage"),
        ],
    )
    async def test_refused_with_the_reason(
        self,
        api: httpx.AsyncClient,
        sessions: async_sessionmaker[AsyncSession],
        temporal: FakeTemporal,
        leverage: Any,
        says: str,
    ) -> None:
        who = await approved_client(api)
        login = await live_account(sessions, who)
        temporal.started.clear()
        response = await api.post(
            f"/v1/me/accounts/{login}/leverage",
            json={"leverage": leverage},
            headers={**who.headers, **key()},
        )
        assert response.status_code == 422, response.text
        assert says in response.json()["detail"]
        assert temporal.started == []
        assert await count(sessions, AccountChange) == 0

    async def test_the_same_key_is_the_same_change(
        self,
        api: httpx.AsyncClient,
        sessions: async_sessionmaker[AsyncSession],
        temporal: FakeTemporal,
    ) -> None:
        who = await approved_client(api)
        login = await live_account(sessions, who)
        headers = {**who.headers, **key("lev-1")}
        path = f"/v1/me/accounts/{login}/leverage"
        first = await api.post(path, json={"leverage": 20}, headers=headers)
        again = await api.post(path, json={"leverage": 20}, headers=headers)
        assert first.status_code == 202 and again.status_code == 200
        assert again.json()["id"] == first.json()["id"]
        other = await api.post(path, json={"leverage": 10}, headers=headers)
        assert other.status_code == 422
        assert "Idempotency-Key was used for a different request" in other.json()["detail"]
        assert await count(sessions, AccountChange) == 1

    async def test_one_change_at_a_time(
        self,
        api: httpx.AsyncClient,
        sessions: async_sessionmaker[AsyncSession],
        temporal: FakeTemporal,
    ) -> None:
        who = await approved_client(api)
        login = await live_account(sessions, who)
        path = f"/v1/me/accounts/{login}/leverage"
        assert (
            await api.post(path, json={"leverage": 20}, headers={**who.headers, **key()})
        ).status_code == 202
        second = await api.post(path, json={"leverage": 10}, headers={**who.headers, **key()})
        assert second.status_code == 409 and "still applying" in second.json()["detail"]

    async def test_only_own_active_live_accounts(
        self,
        api: httpx.AsyncClient,
        sessions: async_sessionmaker[AsyncSession],
        temporal: FakeTemporal,
    ) -> None:
        who, other = await approved_client(api), await approved_client(api)
        theirs = await live_account(sessions, other)
        demo = await live_account(sessions, who, kind="demo")
        disabled = await live_account(sessions, who, status="trading_disabled")
        for login, status_code, says in (
            (theirs, 404, "you have no MT5 account"),
            (demo, 422, "demo account"),
            (disabled, 409, "trading disabled"),
        ):
            response = await api.post(
                f"/v1/me/accounts/{login}/leverage",
                json={"leverage": 20},
                headers={**who.headers, **key()},
            )
            assert response.status_code == status_code, response.text
            assert says in response.json()["detail"]
        assert await count(sessions, AccountChange) == 0

    async def test_the_key_is_required(
        self,
        api: httpx.AsyncClient,
        sessions: async_sessionmaker[AsyncSession],
        temporal: FakeTemporal,
    ) -> None:
        who = await approved_client(api)
        login = await live_account(sessions, who)
        response = await api.post(
            f"/v1/me/accounts/{login}/leverage", json={"leverage": 20}, headers=who.headers
        )
        assert response.status_code == 422 and "Idempotency-Key" in response.json()["detail"]


class TestClose:
    async def test_a_close_request_goes_to_the_workflow(
        self,
        api: httpx.AsyncClient,
        sessions: async_sessionmaker[AsyncSession],
        temporal: FakeTemporal,
    ) -> None:
        who = await approved_client(api)
        login = await live_account(sessions, who)
        headers = {**who.headers, **key()}
        response = await api.post(
            f"/v1/me/accounts/{login}/close", json={"reason": "moving on"}, headers=headers
        )
        assert response.status_code == 202, response.text
        assert response.json()["kind"] == "close" and response.json()["status"] == "applying"
        [(_, argument, _)] = [s for s in temporal.started if s[0] == "AccountChange"]
        assert argument.kind is AccountChangeKind.CLOSE
        again = await api.post(
            f"/v1/me/accounts/{login}/close", json={"reason": "moving on"}, headers=headers
        )
        assert again.status_code == 200 and again.json()["id"] == response.json()["id"]

    async def test_without_a_body(
        self,
        api: httpx.AsyncClient,
        sessions: async_sessionmaker[AsyncSession],
        temporal: FakeTemporal,
    ) -> None:
        who = await approved_client(api)
        login = await live_account(sessions, who)
        response = await api.post(
            f"/v1/me/accounts/{login}/close", headers={**who.headers, **key()}
        )
        assert response.status_code == 202, response.text

    async def test_a_closed_account_cannot_be_closed_again(
        self,
        api: httpx.AsyncClient,
        sessions: async_sessionmaker[AsyncSession],
        temporal: FakeTemporal,
    ) -> None:
        who = await approved_client(api)
        login = await live_account(sessions, who, status="closed")
        response = await api.post(
            f"/v1/me/accounts/{login}/close", json={}, headers={**who.headers, **key()}
        )
        assert response.status_code == 409 and "already closed" in response.json()["detail"]


def test_dates_used_here_are_consistent() -> None:
    assert date.fromisoformat(IN_FIVE_YEARS) > TODAY
