"""From sign-up to a live MT5 account, through HTTP, on the real stack: the verification mail
read from the SMTP catcher and its link followed, the questionnaire, a real PDF passport and a
PNG proof of address, the KYC submission, a compliance officer's decision, the live account in
the MT5 simulator with the group and leverage the rules give, and the credentials handed over
once. Then the other endings (rejection, information asked for), and bad input of every kind,
each refused with a reason and leaving no row and no file behind."""

from __future__ import annotations

import asyncio
import os
import re
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import httpx
import pyotp
import pytest
import sqlalchemy as sa
from pydantic import SecretStr
from sqlalchemy.orm import Session

from api.security import hash_password
from contracts.kyc import OfficerDecision, StaffActor
from contracts.kyc_review import KYC_DECIDE, CaseView
from db.models import StaffUser
from db.sealed import SecretBox
from domain.appropriateness import QUESTIONS
from domain.documents import MAX_BYTES
from domain.kyc import Decision, ReviewAction
from tests.e2e.helpers import new_applicant, simulator_users
from tests.support.people import PASSWORD, passport_pdf, utility_bill_png
from tests.support.processes import SmtpCatcher
from tests.support.stack import TEST_SECRETS_KEY, Stack

pytestmark = pytest.mark.e2e

# The switch for compliance decisions. True: through the staff API
# (`POST /v1/compliance/kyc/cases/{case_id}/decision`), as an officer does. False: straight
# through the KYC review workflow's `decide` Temporal update (for when the staff API is absent).
DECIDE_THROUGH_HTTP = True

T = TypeVar("T")
TODAY = datetime.now(UTC).date()
IN_FIVE_YEARS = (TODAY + timedelta(days=5 * 365)).isoformat()
LAST_WEEK = (TODAY - timedelta(days=7)).isoformat()
VERIFY_LINK = re.compile(r"https?://[^\s\"'<>]+/v1/verify-email\?token=[A-Za-z0-9._-]+")


@pytest.fixture
def api(stack: Stack) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=stack.api_url, timeout=30) as client:
        yield client


# -- the database and the staff, for what HTTP does not show -----------------------------------


@pytest.fixture(scope="module")
def db(stack: Stack) -> Iterator[sa.Engine]:
    engine = sa.create_engine(stack.owner_url, poolclass=sa.pool.NullPool)
    yield engine
    engine.dispose()


def rows(db: sa.Engine, table: str) -> int:
    with db.connect() as connection:
        return int(connection.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one())


def stored_files(stack: Stack) -> int:
    assert stack.documents_dir is not None
    return sum(1 for p in stack.documents_dir.rglob("*") if p.is_file())


@dataclass(frozen=True)
class Officer:
    id: uuid.UUID
    headers: dict[str, str]


@pytest.fixture(scope="module")
def officer(stack: Stack, db: sa.Engine) -> Officer:
    """A compliance officer, written into the stack's database and logged in with TOTP."""
    staff_id, email, secret = (
        uuid.uuid4(),
        f"officer-{uuid.uuid4().hex[:8]}@example.com",
        pyotp.random_base32(),
    )
    box = SecretBox(SecretStr(TEST_SECRETS_KEY))
    password_hash = asyncio.run(hash_password(PASSWORD))
    with Session(db) as session, session.begin():
        session.add(
            StaffUser(
                id=staff_id,
                email=email,
                full_name="Olga Officer",
                password_hash=password_hash,
                totp_secret_enc=box.seal(secret),
                roles=["compliance"],
                ip_allowlist=["127.0.0.1/32"],
                active=True,
            )
        )
    response = httpx.post(
        f"{stack.api_url}/v1/auth/staff/login",
        json={"email": email, "password": PASSWORD, "totp_code": pyotp.TOTP(secret).now()},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    return Officer(staff_id, {"Authorization": f"Bearer {response.json()['access_token']}"})


def decide(
    api: httpx.Client,
    stack: Stack,
    officer: Officer,
    case_id: str,
    action: ReviewAction,
    reason: str,
    info_needed: str | None = None,
) -> None:
    if DECIDE_THROUGH_HTTP:
        body: dict[str, Any] = {"action": action.value, "reason": reason}
        if info_needed is not None:
            body["info_needed"] = info_needed
        response = api.post(
            f"/v1/compliance/kyc/cases/{case_id}/decision", json=body, headers=officer.headers
        )
        assert response.status_code == 200, response.text
        return
    asyncio.run(_decide_through_temporal(stack, officer, case_id, action, reason, info_needed))


async def _decide_through_temporal(
    stack: Stack,
    officer: Officer,
    case_id: str,
    action: ReviewAction,
    reason: str,
    info_needed: str | None,
) -> None:
    from api.temporal import connect_temporal

    client = await connect_temporal(stack.temporal_address, "default")
    await client.get_workflow_handle(f"kyc-case-{case_id}").execute_update(
        KYC_DECIDE.name,
        OfficerDecision(
            actor=StaffActor(staff_id=officer.id, roles=("compliance",)),
            decision=Decision(
                officer_id=str(officer.id), action=action, reason=reason, info_needed=info_needed
            ),
        ),
        result_type=CaseView,
    )


# -- the client's steps ------------------------------------------------------------------------


def wait_until(check: Callable[[], T | None], what: str, timeout: float = 90) -> T:
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        if time.monotonic() > deadline:
            raise TimeoutError(f"waited {timeout:.0f} s for {what}")
        time.sleep(0.3)


@dataclass
class Client:
    email: str
    headers: dict[str, str]
    body: dict[str, Any]


def sign_up(api: httpx.Client, **overrides: Any) -> Client:
    body = new_applicant(**overrides)
    response = api.post("/v1/signup", json=body)
    assert response.status_code == 202, response.text
    token = api.post(
        "/v1/auth/client/login", json={"email": body["email"], "password": body["password"]}
    )
    assert token.status_code == 200, token.text
    return Client(body["email"], {"Authorization": f"Bearer {token.json()['access_token']}"}, body)


def follow_verification_link(api: httpx.Client, smtp: SmtpCatcher, client: Client) -> None:
    [mail] = smtp.wait_for(client.email, subject="confirm your email")
    link = VERIFY_LINK.search(mail["text"] or "")
    assert link is not None, mail["text"]
    # The link names this stack's API; it is followed as the client's browser would.
    response = httpx.get(link.group(0), timeout=30)
    assert response.status_code == 200, response.text
    assert response.json()["newly_verified"] is True
    assert api.get("/v1/me", headers=client.headers).json()["email_verified_at"] is not None


def passing_answers() -> dict[str, str]:
    chosen = {q.id: max(q.options, key=lambda o: o.points).id for q in QUESTIONS if q.scored}
    chosen.update(
        p_trade_frequency="no",
        p_portfolio="no",
        p_financial_sector="no",
        f_source_of_funds="salary",
        f_expected_deposits="up_to_10k",
    )
    return chosen


def upload(
    api: httpx.Client,
    client: Client,
    kind: str,
    content: bytes,
    filename: str,
    content_type: str,
    **dates: str,
) -> httpx.Response:
    return api.post(
        "/v1/me/documents",
        data={"kind": kind, **dates},
        files={"file": (filename, content, content_type)},
        headers=client.headers,
    )


def upload_passport(api: httpx.Client, client: Client) -> dict[str, Any]:
    response = upload(
        api,
        client,
        "passport",
        passport_pdf(client.body["full_name"]),
        "passport.pdf",
        "application/pdf",
        issued_on="2021-06-01",
        expires_on=IN_FIVE_YEARS,
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


def ready_and_submitted(
    api: httpx.Client, smtp: SmtpCatcher, **overrides: Any
) -> tuple[Client, str]:
    """Signed up, verified, questionnaire passed, documents uploaded, application submitted and
    through the automatic checks; the case id."""
    client = sign_up(api, **overrides)
    follow_verification_link(api, smtp, client)
    result = api.put(
        "/v1/me/questionnaire", json={"answers": passing_answers()}, headers=client.headers
    )
    assert result.status_code == 200, result.text
    assert result.json()["outcome"] == "appropriate"
    upload_passport(api, client)
    bill = upload(
        api,
        client,
        "proof_of_address",
        utility_bill_png(),
        "bill.png",
        "image/png",
        issued_on=LAST_WEEK,
    )
    assert bill.status_code == 201, bill.text
    submitted = api.post("/v1/me/kyc", headers=client.headers)
    assert submitted.status_code == 202, submitted.text
    case_id = str(submitted.json()["id"])
    wait_for_case(api, client, "in_review")
    return client, case_id


def wait_for_case(api: httpx.Client, client: Client, status: str) -> dict[str, Any]:
    def case() -> dict[str, Any] | None:
        overview = api.get("/v1/me/kyc", headers=client.headers)
        assert overview.status_code == 200, overview.text
        found = overview.json()["case"]
        return dict(found) if found and found["status"] == status else None

    return wait_until(case, f"the KYC case to be {status}")


def wait_for_live_account(api: httpx.Client, client: Client) -> dict[str, Any]:
    def live() -> dict[str, Any] | None:
        accounts = api.get("/v1/me/accounts", headers=client.headers).json()
        return next((dict(a) for a in accounts if a["kind"] == "live"), None)

    return wait_until(live, "the live MT5 account", timeout=120)


def mt5_user(stack: Stack, login: int) -> dict[str, Any]:
    [user] = [u for u in simulator_users(stack.simulator.base_url) if int(u["Login"]) == login]
    return user


# -- the paths ---------------------------------------------------------------------------------


class TestApproval:
    def test_a_german_retail_client_gets_a_live_account_on_eu_retail_terms(
        self, api: httpx.Client, stack: Stack, smtp_catcher: SmtpCatcher, officer: Officer
    ) -> None:
        client, case_id = ready_and_submitted(api, smtp_catcher)
        decide(api, stack, officer, case_id, ReviewAction.APPROVE, "passport and bill match")

        account = wait_for_live_account(api, client)
        assert account["group"] == "real\\eu\\standard"
        assert account["leverage"] == 30
        assert account["currency"] == "EUR"
        user = mt5_user(stack, account["login"])
        assert user["Group"] == "real\\eu\\standard"
        assert int(user["Leverage"]) == 30

        overview = api.get("/v1/me/kyc", headers=client.headers).json()
        assert overview["kyc_status"] == "approved"
        assert overview["case"]["status"] == "approved"
        smtp_catcher.wait_for(client.email, subject="your account is verified")
        smtp_catcher.wait_for(client.email, subject=f"live trading account {account['login']}")

        login = account["login"]
        first = api.post(f"/v1/me/accounts/{login}/credentials", headers=client.headers)
        assert first.status_code == 200, first.text
        assert first.json()["login"] == login and len(first.json()["password"]) >= 8
        again = api.post(f"/v1/me/accounts/{login}/credentials", headers=client.headers)
        assert again.status_code == 410

        # The account's later life: a lower leverage applies at once; above the regulatory cap
        # it is refused; then the (empty) account is closed.
        path = f"/v1/me/accounts/{login}/leverage"
        refused = api.post(
            path, json={"leverage": 100}, headers={**client.headers, "Idempotency-Key": "l-0"}
        )
        assert refused.status_code == 422
        assert "regulatory cap of 1:30" in refused.json()["detail"]
        lower = api.post(
            path, json={"leverage": 20}, headers={**client.headers, "Idempotency-Key": "l-1"}
        )
        assert lower.status_code == 202, lower.text
        change_id = lower.json()["id"]

        def applied() -> dict[str, Any] | None:
            changes = api.get("/v1/me/account-changes", headers=client.headers).json()
            change = next(c for c in changes if c["id"] == change_id)
            assert change["status"] not in ("failed", "rejected"), change
            return dict(change) if change["status"] == "applied" else None

        wait_until(applied, "the leverage change to be applied")
        assert int(mt5_user(stack, login)["Leverage"]) == 20
        assert api.get(f"/v1/me/accounts/{login}", headers=client.headers).json()["leverage"] == 20

        close = api.post(
            f"/v1/me/accounts/{login}/close",
            json={"reason": "end of the test"},
            headers={**client.headers, "Idempotency-Key": "close-1"},
        )
        assert close.status_code == 202, close.text
        wait_until(
            lambda: (
                api.get(f"/v1/me/accounts/{login}", headers=client.headers).json()["status"]
                == "closed"
            ),
            "the account to be closed",
        )


class TestRejection:
    def test_a_rejected_client_is_told_and_gets_no_live_account(
        self, api: httpx.Client, stack: Stack, smtp_catcher: SmtpCatcher, officer: Officer
    ) -> None:
        client, case_id = ready_and_submitted(api, smtp_catcher)
        decide(api, stack, officer, case_id, ReviewAction.REJECT, "the passport is not genuine")
        wait_for_case(api, client, "rejected")
        smtp_catcher.wait_for(client.email, subject="could not verify")
        overview = api.get("/v1/me/kyc", headers=client.headers).json()
        assert overview["kyc_status"] == "rejected"
        time.sleep(2)  # a live account would have been asked for by now
        accounts = api.get("/v1/me/accounts", headers=client.headers).json()
        assert [a["kind"] for a in accounts if a["kind"] == "live"] == []
        again = api.post("/v1/me/kyc", headers=client.headers)
        assert again.status_code == 409


class TestInformationRequested:
    def test_the_client_answers_and_is_approved(
        self, api: httpx.Client, stack: Stack, smtp_catcher: SmtpCatcher, officer: Officer
    ) -> None:
        client, case_id = ready_and_submitted(api, smtp_catcher)
        decide(
            api,
            stack,
            officer,
            case_id,
            ReviewAction.REQUEST_INFO,
            "the scan is blurred",
            info_needed="a sharper scan of your passport's photo page",
        )
        case = wait_for_case(api, client, "info_requested")
        assert case["info_needed"] == "a sharper scan of your passport's photo page"
        [mail] = smtp_catcher.wait_for(client.email, subject="need more information")
        assert "sharper scan" in str(mail["text"])

        document = upload_passport(api, client)
        answer = api.post(
            "/v1/me/kyc/info",
            json={"note": "here is a sharper scan", "document_ids": [document["id"]]},
            headers=client.headers,
        )
        assert answer.status_code == 202, answer.text
        wait_for_case(api, client, "in_review")
        decide(api, stack, officer, case_id, ReviewAction.APPROVE, "sharp scan matches")
        account = wait_for_live_account(api, client)
        assert account["group"] == "real\\eu\\standard"


# -- bad input ---------------------------------------------------------------------------------


class TestBadUploadsLeaveNothing:
    @pytest.mark.parametrize(
        ("make", "filename", "content_type", "says"),
        [
            (lambda: passport_pdf()[:-200], "passport.pdf", "application/pdf", "incomplete"),
            (lambda: b"MZ" + b"\x90" * 4096, "passport.pdf", "application/pdf", "Windows program"),
            (lambda: b"GIF89a" + b"\x00" * 4096, "passport.gif", "image/gif", "GIF"),
            (lambda: utility_bill_png()[:300] + b"\x00" * 2000, "p.png", "image/png", "readable"),
            (lambda: b"%PDF-1.7\n" + b"0" * MAX_BYTES, "big.pdf", "application/pdf", "10 MiB"),
        ],
    )
    def test_refused_with_a_reason(
        self,
        api: httpx.Client,
        stack: Stack,
        db: sa.Engine,
        make: Callable[[], bytes],
        filename: str,
        content_type: str,
        says: str,
    ) -> None:
        client = sign_up(api)
        before = (rows(db, "client_documents"), stored_files(stack))
        response = upload(
            api, client, "passport", make(), filename, content_type, expires_on=IN_FIVE_YEARS
        )
        assert response.status_code == 422, response.text
        assert response.headers["content-type"] == "application/problem+json"
        assert says in response.json()["detail"]
        assert (rows(db, "client_documents"), stored_files(stack)) == before

    def test_an_expired_passport(self, api: httpx.Client, stack: Stack, db: sa.Engine) -> None:
        client = sign_up(api)
        before = (rows(db, "client_documents"), stored_files(stack))
        response = upload(
            api,
            client,
            "passport",
            passport_pdf(),
            "p.pdf",
            "application/pdf",
            expires_on=(TODAY - timedelta(days=3)).isoformat(),
        )
        assert response.status_code == 422 and "expired" in response.json()["detail"]
        assert (rows(db, "client_documents"), stored_files(stack)) == before


class TestBadSignUpsLeaveNothing:
    @pytest.mark.parametrize(
        ("override", "says"),
        [
            ({"country": "XX"}, "country"),
            ({"nationality": "QQ"}, "nationality"),
            ({"date_of_birth": (TODAY - timedelta(days=17 * 365)).isoformat()}, "at least 18"),
            ({"phone": "+4912"}, "phone"),
            ({"address": {"line1": "Heidestr. 17", "city": "Koeln"}}, "postal code"),
        ],
    )
    def test_refused_with_a_reason(
        self, api: httpx.Client, db: sa.Engine, override: dict[str, Any], says: str
    ) -> None:
        before = (rows(db, "clients"), rows(db, "account_applications"))
        response = api.post("/v1/signup", json=new_applicant(**override))
        assert response.status_code == 422, response.text
        assert says in response.text
        assert (rows(db, "clients"), rows(db, "account_applications")) == before

    def test_the_same_email_or_the_same_person_again(
        self, api: httpx.Client, db: sa.Engine
    ) -> None:
        first = new_applicant(full_name="Jörg Weiß")
        assert api.post("/v1/signup", json=first).status_code == 202
        before = (rows(db, "clients"), rows(db, "account_applications"))
        # A known email is answered as a new one would be (the answer does not tell who has an
        # account; the owner is notified), and nothing is opened.
        same_email = api.post("/v1/signup", json=new_applicant(email=first["email"]))
        assert same_email.status_code == 202, same_email.text
        same_person = api.post(
            "/v1/signup",
            json=new_applicant(full_name="WEISS jörg", date_of_birth=first["date_of_birth"]),
        )
        assert same_person.status_code == 409, same_person.text
        assert "name and date of birth" in same_person.json()["detail"]
        assert (rows(db, "clients"), rows(db, "account_applications")) == before


# -- fuzzing -----------------------------------------------------------------------------------

ONBOARDING_PATHS = (
    "/v1/signup",
    "/v1/verify-email",
    "/v1/me/email/verification",
    "/v1/me/questionnaire",
    "/v1/me/documents",
    "/v1/me/kyc",
    "/v1/me/kyc/info",
    "/v1/me/accounts/{login}/leverage",
    "/v1/me/accounts/{login}/close",
    "/v1/me/account-changes",
)


def test_no_input_to_the_onboarding_routes_causes_a_server_error(
    api: httpx.Client, stack: Stack
) -> None:
    """The whole-API fuzz reaches these routes only as anonymous or staff (refused at the
    door); here they are fuzzed as a signed-up client, so the checks behind the policy run."""
    import schemathesis
    from hypothesis import HealthCheck, given, settings
    from schemathesis.checks import not_a_server_error

    examples = int(os.environ.get("BROKERFLOW_FUZZ_EXAMPLES", "25"))
    client = sign_up(api)
    schema = schemathesis.openapi.from_url(f"{stack.api_url}/openapi.json")
    schema.config.update(base_url=stack.api_url)
    operations = [
        result.ok()  # type: ignore[union-attr]
        for result in schema.get_all_operations()
        if result.ok().path in ONBOARDING_PATHS  # type: ignore[union-attr]
    ]
    assert {o.path for o in operations} == set(ONBOARDING_PATHS)
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=examples, deadline=None, suppress_health_check=list(HealthCheck))
        def call(case: Any) -> None:
            case.call_and_validate(headers=client.headers, checks=[not_a_server_error])

        call()
