"""`python -m ops.seed`: idempotent demo data for `make run`.

Creates one staff user per role (two compliance and two finance officers, for four-eyes), a
demo introducing broker and a few clients (signed up through the same service the API uses, so
each gets a real demo MT5 account from the workflow), then demo money activity through the same
payment services and workflows (`DEMO_PAYMENTS`) and two applications for a live account
(ops/seed_kyc.py: one awaiting review, one high-risk with an open PEP hit), so the first look at
each console has something to work on. Passwords and TOTP seeds are generated, written once to
`<data dir>/dev-credentials.txt` (mode 0600, never printed: whatever the seed prints lands in
`.data/logs/seed.log`), and stored only as hashes / sealed values.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import secrets
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

import httpx
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from api.context import RequestContext
from api.payments.schemas import DepositRequest, WithdrawalRequest
from api.payments.service import request_deposit, request_withdrawal
from api.policy import Principal
from api.security import hash_password, new_totp_secret, totp_provisioning_uri
from api.signup.schemas import Address, SignupRequest
from api.signup.service import sign_up
from api.temporal import TemporalConnector, start_once
from contracts.screening_refresh import (
    SCREENING_REFRESH,
    ScreeningRefreshInput,
    screening_refresh_workflow_id,
)
from db import audit
from db.embedded import owner_database_url
from db.models import Client, FxRateRow, IntroducingBroker, Payment, StaffUser
from db.sealed import SecretBox
from db.session import create_engine, create_sessionmaker
from db.urls import app_database_url
from domain.errors import BackOfficeError
from domain.onboarding import AccountType
from domain.payment_checks import KycStatus
from domain.payments import PaymentStatus, Provider
from domain.roles import PrincipalKind, StaffRole
from domain.screening import ListSource
from ops.seed_kyc import DEMO_KYC_APPLICANTS, DemoKyc
from settings import PROJECT_ROOT, Settings, get_settings
from storage.documents import EncryptedDocumentStore, LocalFileStore

LOCAL_ONLY = ["127.0.0.1/32", "::1/128"]
DEMO_IB = ("ib@brokerflow.example", "Acme Introducers", "ACME")
DEMO_CLIENTS = (
    ("alice@brokerflow.example", "Alice Martin", "FR", date(1985, 3, 14), AccountType.STANDARD),
    ("bob@brokerflow.example", "Bob Schmidt", "DE", date(1979, 11, 2), AccountType.PRO),
    ("chen@brokerflow.example", "Chen Wei", "SG", date(1992, 6, 30), AccountType.STANDARD),
    # Applicants for a live account (ops/seed_kyc.py): their cases fill the compliance queue.
    ("lena@brokerflow.example", "Lena Vogel", "DE", date(1988, 4, 9), AccountType.STANDARD),
    (
        "maria@brokerflow.example",
        "Maria Elena Fernandez Ruiz",
        "ES",
        date(1974, 12, 1),
        AccountType.STANDARD,
    ),
)
DEMO_CONTACT = {
    "FR": (
        "+33 1 42 68 53 00",
        Address(line1="8 Rue de Rivoli", city="Paris", postal_code="75004"),
    ),
    "DE": (
        "+49 30 2273 2152",
        Address(line1="Unter den Linden 12", city="Berlin", postal_code="10117"),
    ),
    "SG": ("+65 6123 4567", Address(line1="10 Anson Road", city="Singapore", postal_code="079903")),
    "ES": (
        "+34 914 56 78 90",
        Address(line1="Calle de Alcala 45", city="Madrid", postal_code="28014"),
    ),
}
# Four-eyes needs two different officers: of compliance (high-risk KYC, held deposits) and of
# finance (large withdrawals).
EXTRA_STAFF = (
    ("compliance2@brokerflow.example", StaffRole.COMPLIANCE),
    ("finance2@brokerflow.example", StaffRole.FINANCE),
)
# The sample sanctions and PEP lists, in their published formats, loaded through the same
# workflow an officer's upload starts.
SAMPLE_LISTS = PROJECT_ROOT / "screening" / "samples"
SAMPLE_LIST_FILES = (
    (ListSource.OFAC_SDN, "ofac_sdn_sample.xml"),
    (ListSource.EU_FSF, "eu_fsf_sample.xml"),
    (ListSource.UN_SC, "un_consolidated_sample.xml"),
    (ListSource.PEP, "pep_sample.csv"),
)
SEEDER = audit.Actor(kind="system", id="ops.seed")
# Chen's KYC stays pending, so its deposits show the compliance hold; Lena and Maria apply for
# a live account (ops/seed_kyc.py), so the compliance queue has cases.
KYC_PENDING = {"chen@brokerflow.example", *(a.email for a in DEMO_KYC_APPLICANTS)}
DEMO_FX_RATES = (
    ("EUR", "USD", "1.0800", "1.0802"),
    ("GBP", "USD", "1.2700", "1.2703"),
    ("USD", "JPY", "150.10", "150.13"),
)

# A withdrawal's beneficiary: the client's own name (no third-party flag) and a valid IBAN.
DEMO_IBAN = "DE89 3704 0044 0532 0130 00"


@dataclass(frozen=True)
class DemoPayment:
    """One payment the seed asks for as its client would, and what the customer then does on
    the processor simulator's page (`pay`, `decline`, or nothing: the payment waits)."""

    key: str  # the Idempotency-Key: the same request every run, so a re-run replays it
    email: str
    kind: Literal["deposit", "withdrawal"]
    provider: Provider
    amount: str
    customer: Literal["pay", "decline", "none"] = "none"


# What the consoles show on a fresh `make run` (the state each reaches, with the seed's
# settings): a completed card deposit and, from it, a withdrawal above
# `auto_approve_withdrawal_up_to` waiting for two finance officers (Alice); a completed deposit,
# a declined one (failed), a small withdrawal paid out by the processor (payout_sent) and a bank
# deposit waiting for its transfer (awaiting_funds) (Bob); a card deposit held for compliance,
# her KYC being pending (Chen). One client's payments run in this order, the clients at once.
DEMO_PAYMENTS = (
    DemoPayment(
        "demo-alice-card", DEMO_CLIENTS[0][0], "deposit", Provider.CARDCO, "2500.00", "pay"
    ),
    DemoPayment(
        "demo-alice-four-eyes", DEMO_CLIENTS[0][0], "withdrawal", Provider.BANKCO, "1500.00"
    ),
    DemoPayment("demo-bob-card", DEMO_CLIENTS[1][0], "deposit", Provider.CARDCO, "400.00", "pay"),
    DemoPayment(
        "demo-bob-declined", DEMO_CLIENTS[1][0], "deposit", Provider.CARDCO, "300.00", "decline"
    ),
    DemoPayment("demo-bob-payout", DEMO_CLIENTS[1][0], "withdrawal", Provider.BANKCO, "100.00"),
    DemoPayment("demo-bob-bank", DEMO_CLIENTS[1][0], "deposit", Provider.BANKCO, "750.00"),
    DemoPayment("demo-chen-held", DEMO_CLIENTS[2][0], "deposit", Provider.CARDCO, "1200.00", "pay"),
)
# States a demo payment passes through on its own; the seed waits until it is past them.
IN_FLIGHT = {
    PaymentStatus.INITIATED.value,
    PaymentStatus.RECEIVED.value,
    PaymentStatus.CREDITING.value,
    PaymentStatus.FUNDS_RESERVED.value,
}
# Seconds the demo activity may take in all (the stack gives the whole seed two minutes): a
# slow worker leaves some payments further back, never a failed `make run`.
ACTIVITY_SECONDS = 60.0


@dataclass(frozen=True)
class NewCredential:
    kind: str
    email: str
    password: str
    totp_secret: str | None = None


@dataclass
class SeedReport:
    created: list[NewCredential] = field(default_factory=list)
    # One line per demo payment: its key and the state it reached (no secrets).
    activity: list[str] = field(default_factory=list)
    # One line per demo KYC applicant: what their application became (no secrets).
    kyc: list[str] = field(default_factory=list)


def dev_password() -> str:
    return f"Dev-{secrets.token_urlsafe(12)}"


async def seed_staff(session: AsyncSession, box: SecretBox, report: SeedReport) -> None:
    people = [(f"{role.value}@brokerflow.example", role, "") for role in StaffRole]
    extra = [(email, role, " (second officer)") for email, role in EXTRA_STAFF]
    for email, role, suffix in [*people, *extra]:
        if await session.scalar(select(StaffUser.id).where(StaffUser.email == email)):
            continue
        password, totp = dev_password(), new_totp_secret()
        staff = StaffUser(
            id=uuid.uuid4(),
            email=email,
            full_name=f"Demo {role.value.title()}{suffix}",
            password_hash=await hash_password(password),
            totp_secret_enc=box.seal(totp),
            roles=[role.value],
            ip_allowlist=LOCAL_ONLY,
            active=True,
        )
        session.add(staff)
        audit.record(
            session,
            SEEDER,
            audit.Change(
                action="staff.created",
                entity_type="staff_user",
                entity_id=str(staff.id),
                after={"email": email, "roles": [role.value], "ip_allowlist": LOCAL_ONLY},
            ),
        )
        report.created.append(NewCredential("staff", email, password, totp))


async def seed_ib(session: AsyncSession, report: SeedReport) -> None:
    email, name, code = DEMO_IB
    if await session.scalar(select(IntroducingBroker.id).where(IntroducingBroker.email == email)):
        return
    password = dev_password()
    ib = IntroducingBroker(
        id=uuid.uuid4(),
        email=email,
        name=name,
        password_hash=await hash_password(password),
        referral_code=code,
    )
    session.add(ib)
    audit.record(
        session,
        SEEDER,
        audit.Change(action="ib.created", entity_type="introducing_broker", entity_id=str(ib.id)),
    )
    report.created.append(NewCredential("ib", email, password))


async def seed_clients(
    sessions: async_sessionmaker[AsyncSession],
    temporal: TemporalConnector,
    mt5_server: str,
    report: SeedReport,
) -> None:
    context = RequestContext(ip="127.0.0.1", request_id="ops.seed", trace_id=None)
    for email, name, country, birth, account_type in DEMO_CLIENTS:
        async with sessions.begin() as session:
            if await session.scalar(select(Client.id).where(Client.email == email)):
                continue
            password = dev_password()
            phone, address = DEMO_CONTACT[country]
            request = SignupRequest(
                email=email,
                password=password,
                full_name=name,
                country=country,
                nationality=country,
                phone=phone,
                address=address,
                date_of_birth=birth,
                account_type=account_type,
                referral_code=DEMO_IB[2],
            )
            accepted = await sign_up(session, temporal, request, context, mt5_server)
            if email not in KYC_PENDING:
                await approve_demo_kyc(session, accepted.client_id)
        report.created.append(NewCredential("client", email, password))


async def approve_demo_kyc(session: AsyncSession, client_id: uuid.UUID) -> None:
    verdict = {"kyc_status": KycStatus.APPROVED.value, "screening_status": "clear"}
    await session.execute(update(Client).where(Client.id == client_id).values(**verdict))
    audit.record(
        session,
        SEEDER,
        audit.Change(
            action="client.kyc_decided",
            entity_type="client",
            entity_id=str(client_id),
            before={"kyc_status": "pending", "screening_status": "unscreened"},
            after=verdict,
            reason="demo data",
        ),
    )


async def seed_fx_rates(session: AsyncSession) -> None:
    if await session.scalar(select(FxRateRow.id).limit(1)):
        return
    now = datetime.now(UTC)
    for base, quote, bid, ask in DEMO_FX_RATES:
        session.add(
            FxRateRow(base=base, quote=quote, bid=Decimal(bid), ask=Decimal(ask), as_of=now)
        )
    audit.record(
        session,
        SEEDER,
        audit.Change(
            action="fx_rates.seeded",
            entity_type="fx_rate",
            entity_id="demo",
            after={f"{b}{q}": f"{bid}/{ask}" for b, q, bid, ask in DEMO_FX_RATES},
        ),
    )


def documents(settings: Settings) -> EncryptedDocumentStore:
    return EncryptedDocumentStore(LocalFileStore(settings.documents_path()), settings.documents_key)


async def seed_screening_lists(settings: Settings, temporal: TemporalConnector) -> None:
    """Store each sample list file and start its load; a file already loaded is a no-op (the
    workflow id is the file's digest)."""
    store = documents(settings)
    sla = settings.kyc.sla()
    for source, name in SAMPLE_LIST_FILES:
        data = (SAMPLE_LISTS / name).read_bytes()
        digest = hashlib.sha256(data).hexdigest()
        key = f"lists/{digest}"
        if not await store.exists(key):
            await store.put(key, data)
        await start_once(
            temporal,
            SCREENING_REFRESH,
            ScreeningRefreshInput(source=source, storage_key=key, digest=digest, sla=sla),
            screening_refresh_workflow_id(digest),
        )


class DemoActivity:
    """Asks for the demo payments through the payment services (as each client's request would,
    with its Idempotency-Key), lets the workflows run, and plays the customer on the processor
    simulator. Never fails the seed: what did not get far enough in time is reported."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        temporal: TemporalConnector,
        settings: Settings,
        report: SeedReport,
        seconds: float,
    ) -> None:
        self.sessions = sessions
        self.temporal = temporal
        self.rules = settings.payments
        self.report = report
        self.deadline = time.monotonic() + seconds
        psp = urlsplit(settings.psp.base_url)
        # Only the simulator has a page the seed may click on; a real processor is left alone.
        self.simulator = (
            settings.psp.base_url.rstrip("/")
            if psp.scheme == "http" and psp.hostname in {"127.0.0.1", "localhost", "::1"}
            else None
        )

    async def run(self, payments: Iterable[DemoPayment]) -> None:
        chains: dict[str, list[DemoPayment]] = {}
        for payment in payments:
            chains.setdefault(payment.email, []).append(payment)
        async with httpx.AsyncClient(timeout=10) as http:
            await asyncio.gather(*(self._chain(http, chain) for chain in chains.values()))

    async def _chain(self, http: httpx.AsyncClient, chain: list[DemoPayment]) -> None:
        for demo in chain:
            try:
                status = await self._one(http, demo)
            except (BackOfficeError, LookupError, httpx.HTTPError) as exc:
                status = f"not done ({type(exc).__name__}: {exc})"
            self.report.activity.append(f"{demo.key:<22} {demo.kind:<10} {status}")

    async def _one(self, http: httpx.AsyncClient, demo: DemoPayment) -> str:
        payment_id = await self._request(demo)
        if demo.customer != "none":
            row = await self._wait(payment_id, lambda p: p.redirect_url is not None)
            if row is None:
                return "waiting for the processor page (is the worker running?)"
            if row.status == PaymentStatus.AWAITING_FUNDS.value and self.simulator is not None:
                intent = row.redirect_url.rsplit("/", 1)[-1] if row.redirect_url else ""
                outcome = "succeeded" if demo.customer == "pay" else "failed"
                answer = await http.post(
                    f"{self.simulator}/cardco/pay/{intent}", data={"outcome": outcome}
                )
                answer.raise_for_status()
        waits_for_funds = demo.kind == "deposit" and demo.customer == "none"
        row = await self._wait(
            payment_id,
            lambda p: (
                p.status not in IN_FLIGHT
                and (p.status != PaymentStatus.AWAITING_FUNDS.value or waits_for_funds)
            ),
        )
        if row is None:
            return "still on its way (is the worker running?)"
        return row.status

    async def _request(self, demo: DemoPayment) -> uuid.UUID:
        context = RequestContext(ip="127.0.0.1", request_id="ops.seed", trace_id=None)
        async with self.sessions.begin() as session:
            client = await session.scalar(select(Client).where(Client.email == demo.email))
            if client is None:
                raise LookupError(demo.email)
            me = Principal(PrincipalKind.CLIENT, client.id, client.email, frozenset(), context)
            if demo.kind == "deposit":
                # Validated as the route validates the client's JSON (amounts are text).
                deposit = DepositRequest.model_validate(
                    {"provider": demo.provider, "amount": demo.amount, "currency": "USD"}
                )
                row = await request_deposit(
                    session, self.temporal, self.rules, me, deposit, demo.key
                )
            else:
                withdrawal = WithdrawalRequest.model_validate(
                    {
                        "provider": demo.provider,
                        "amount": demo.amount,
                        "currency": "USD",
                        "beneficiary_name": client.full_name,
                        "beneficiary_account": DEMO_IBAN,
                    }
                )
                row = await request_withdrawal(
                    session, self.temporal, self.rules, me, withdrawal, demo.key
                )
            return row.id

    async def _wait(self, payment_id: uuid.UUID, done: Callable[[Payment], bool]) -> Payment | None:
        """The payment once `done` says so; None when the activity's time is up first."""
        while True:
            async with self.sessions() as session:
                row = await session.get(Payment, payment_id)
            if row is not None and done(row):
                return row
            if time.monotonic() >= self.deadline:
                return None
            await asyncio.sleep(0.5)


async def seed(
    settings: Settings, *, with_clients: bool = True, activity_seconds: float = ACTIVITY_SECONDS
) -> SeedReport:
    assert_dev(settings)
    engine = create_engine(app_database_url(owner_database_url(settings), settings), pool_size=2)
    sessions = create_sessionmaker(engine)
    report = SeedReport()
    try:
        async with sessions.begin() as session:
            await seed_staff(session, SecretBox(settings.secrets_key), report)
            await seed_ib(session, report)
            await seed_fx_rates(session)
        if with_clients:
            temporal = TemporalConnector(settings.temporal_address, settings.temporal_namespace)
            await seed_screening_lists(settings, temporal)
            await seed_clients(sessions, temporal, settings.mt5.name, report)
            activity = DemoActivity(sessions, temporal, settings, report, activity_seconds)
            kyc = DemoKyc(
                sessions,
                temporal,
                settings,
                documents(settings),
                activity_seconds,
                report.kyc.append,
            )
            await asyncio.gather(activity.run(DEMO_PAYMENTS), kyc.run())
    finally:
        await engine.dispose()
    return report


def assert_dev(settings: Settings) -> None:
    if settings.env == "prod":
        raise SystemExit("refusing to seed demo users into a prod environment")


CREDENTIALS_FILE = "dev-credentials.txt"


def credentials_path(settings: Settings) -> Path:
    """Where the first seed writes the demo credentials: `<data dir>/dev-credentials.txt`."""
    return settings.data_dir / CREDENTIALS_FILE


def write_credentials(report: SeedReport, path: Path) -> None:
    """The credentials in a file only its owner may read (0600), never on stdout: the stack
    copies every line a child prints into `.data/logs/*.log`."""
    lines = ["# BrokerFlow demo credentials (dev only), written once by the first seed.", ""]
    for credential in report.created:
        lines.append(f"{credential.kind:<6} {credential.email:<28} password {credential.password}")
        if credential.totp_secret:
            uri = totp_provisioning_uri(credential.totp_secret, credential.email)
            lines.append(f"       TOTP secret {credential.totp_secret}  ({uri})")
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(descriptor, 0o600)  # an older file of wider mode is narrowed too
    with os.fdopen(descriptor, "w", encoding="utf-8") as out:
        out.write("\n".join(lines) + "\n")


def print_report(report: SeedReport, path: Path) -> None:
    if report.activity:
        print("demo activity (payment key, kind, state reached):")
        for line in report.activity:
            print(f"  {line}")
    if report.kyc:
        print("demo KYC applications (what each became):")
        for line in report.kyc:
            print(f"  {line}")
    if not report.created:
        print(
            "demo data already present; its credentials were written when it was first seeded"
            f" ({path})"
        )
        return
    write_credentials(report, path)
    print(
        f"\nDemo credentials for {len(report.created)} users written to {path}"
        " (mode 0600; not printed, not logged)\n"
    )


def main() -> None:
    settings = get_settings()
    print_report(asyncio.run(seed(settings)), credentials_path(settings))


if __name__ == "__main__":
    main()
