"""`python -m ops.seed`: idempotent demo data for `make run`.

Creates one staff user per role, a demo introducing broker and a few clients (signed up through
the same service the API uses, so each gets a real demo MT5 account from the workflow). Passwords
and TOTP seeds are generated, written once to `<data dir>/dev-credentials.txt` (mode 0600, never
printed: whatever the seed prints lands in `.data/logs/seed.log`), and stored only as hashes /
sealed values.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import secrets
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from api.context import RequestContext
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
from db.models import Client, FxRateRow, IntroducingBroker, StaffUser
from db.sealed import SecretBox
from db.session import create_engine, create_sessionmaker
from db.urls import app_database_url
from domain.onboarding import AccountType
from domain.payment_checks import KycStatus
from domain.roles import StaffRole
from domain.screening import ListSource
from settings import PROJECT_ROOT, Settings, get_settings
from storage.documents import EncryptedDocumentStore, LocalFileStore

LOCAL_ONLY = ["127.0.0.1/32", "::1/128"]
DEMO_IB = ("ib@brokerflow.example", "Acme Introducers", "ACME")
DEMO_CLIENTS = (
    ("alice@brokerflow.example", "Alice Martin", "FR", date(1985, 3, 14), AccountType.STANDARD),
    ("bob@brokerflow.example", "Bob Schmidt", "DE", date(1979, 11, 2), AccountType.PRO),
    ("chen@brokerflow.example", "Chen Wei", "SG", date(1992, 6, 30), AccountType.STANDARD),
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
}
# Four-eyes needs two different compliance officers.
EXTRA_STAFF = (("compliance2@brokerflow.example", StaffRole.COMPLIANCE),)
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
# The last demo client's KYC stays pending, so its deposits show the compliance hold.
KYC_PENDING = {"chen@brokerflow.example"}
DEMO_FX_RATES = (
    ("EUR", "USD", "1.0800", "1.0802"),
    ("GBP", "USD", "1.2700", "1.2703"),
    ("USD", "JPY", "150.10", "150.13"),
)


@dataclass(frozen=True)
class NewCredential:
    kind: str
    email: str
    password: str
    totp_secret: str | None = None


@dataclass
class SeedReport:
    created: list[NewCredential] = field(default_factory=list)


def dev_password() -> str:
    return f"Dev-{secrets.token_urlsafe(12)}"


async def seed_staff(session: AsyncSession, box: SecretBox, report: SeedReport) -> None:
    people = [(f"{role.value}@brokerflow.example", role) for role in StaffRole]
    for email, role in [*people, *EXTRA_STAFF]:
        if await session.scalar(select(StaffUser.id).where(StaffUser.email == email)):
            continue
        password, totp = dev_password(), new_totp_secret()
        staff = StaffUser(
            id=uuid.uuid4(),
            email=email,
            full_name=f"Demo {role.value.title()}",
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


async def seed_screening_lists(settings: Settings, temporal: TemporalConnector) -> None:
    """Store each sample list file and start its load; a file already loaded is a no-op (the
    workflow id is the file's digest)."""
    store = EncryptedDocumentStore(
        LocalFileStore(settings.documents_path()), settings.documents_key
    )
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


async def seed(settings: Settings, *, with_clients: bool = True) -> SeedReport:
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
