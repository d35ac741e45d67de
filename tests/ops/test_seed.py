"""`python -m ops.seed` is idempotent: a second run adds nobody, asks for no second payment and
prints no credentials.

The demo clients sign up through the API's own service, which starts their account-opening
workflow, and ask for the demo payments through the payment services, which start theirs, so the
seed runs against the session's real Temporal server, in a namespace of this test's own that no
worker polls: the workflows are started and left waiting (then terminated). Without a worker no
deposit is credited, so the demo withdrawals are refused (409, insufficient funds) and reported
as not done; what they reach on a real stack is `make smoke`'s to check.
"""

from __future__ import annotations

import asyncio
import stat
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from google.protobuf.duration_pb2 import Duration
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.api.workflowservice.v1 import RegisterNamespaceRequest
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode
from temporalio.testing import WorkflowEnvironment

from api.payments import service as payment_service
from db.models import (
    AccountApplication,
    AuditEntry,
    ClientDocument,
    IntroducingBroker,
    KycCase,
    Payment,
    StaffUser,
)
from db.models import Client as ClientRow
from db.sealed import SecretBox
from domain.roles import StaffRole
from ops.seed import DEMO_CLIENTS, DEMO_IB, DEMO_PAYMENTS, EXTRA_STAFF, print_report, seed
from ops.seed_kyc import DEMO_KYC_APPLICANTS
from settings import Settings
from tests.conftest import make_settings
from tests.support.database import ProvisionedDatabase

SEED_NAMESPACE = "seed-test"


async def namespace_client(env: WorkflowEnvironment, namespace: str) -> Client:
    """Register `namespace` on the dev server (once per server) and wait until it takes work."""
    try:
        await env.client.workflow_service.register_namespace(
            RegisterNamespaceRequest(
                namespace=namespace, workflow_execution_retention_period=Duration(seconds=86400)
            )
        )
    except RPCError as exc:
        if exc.status != RPCStatusCode.ALREADY_EXISTS:
            raise
    client = await Client.connect(
        env.client.service_client.config.target_host,
        namespace=namespace,
        data_converter=env.client.data_converter,
    )
    for _ in range(100):
        try:
            await client.count_workflows()
            return client
        except RPCError as exc:
            if exc.status != RPCStatusCode.NOT_FOUND:
                raise
            await asyncio.sleep(0.2)
    raise TimeoutError(f"namespace {namespace} never became usable")


@pytest.fixture
async def seed_temporal(temporal_env: WorkflowEnvironment) -> AsyncIterator[Client]:
    client = await namespace_client(temporal_env, SEED_NAMESPACE)
    yield client
    async for execution in client.list_workflows("ExecutionStatus = 'Running'"):
        await client.get_workflow_handle(execution.id).terminate("ops.seed test is over")


@pytest.fixture
def seed_settings(test_db: ProvisionedDatabase, seed_temporal: Client, tmp_path: Path) -> Settings:
    return make_settings(
        test_db.owner_url,
        documents_dir=tmp_path / "documents",
        temporal_address=seed_temporal.service_client.config.target_host,
        temporal_namespace=SEED_NAMESPACE,
    )


async def counts(sessions: async_sessionmaker[AsyncSession]) -> dict[str, int]:
    async with sessions() as session:
        return {
            table.__name__: int(await session.scalar(select(func.count()).select_from(table)) or 0)
            for table in (
                StaffUser,
                IntroducingBroker,
                ClientRow,
                AccountApplication,
                Payment,
                AuditEntry,
                KycCase,
                ClientDocument,
            )
        }


async def test_seeding_twice_creates_nothing_new_and_prints_credentials_once(
    seed_settings: Settings,
    seed_temporal: Client,
    sessions: async_sessionmaker[AsyncSession],
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # No worker: the demo activity does not wait for workflows that will not move, and a deposit
    # request does not wait 10 s for a payment page nobody will ask the processor for.
    monkeypatch.setattr(payment_service, "SESSION_WAIT_SECONDS", 0.2)
    first = await seed(seed_settings, activity_seconds=0)
    path = tmp_path / "dev-credentials.txt"
    print_report(first, path)
    first_output = capsys.readouterr().out
    written = path.read_text()
    after_first = await counts(sessions)

    second = await seed(seed_settings, activity_seconds=0)
    print_report(second, path)
    second_output = capsys.readouterr().out
    after_second = await counts(sessions)

    # First run: one staff user per role, the demo IB and the demo clients, each once.
    staff_emails = {f"{role.value}@brokerflow.example" for role in StaffRole}
    staff_emails |= {email for email, _ in EXTRA_STAFF}
    client_emails = {email for email, *_ in DEMO_CLIENTS}
    by_kind: dict[str, list[str]] = {}
    for credential in first.created:
        by_kind.setdefault(credential.kind, []).append(credential.email)
    assert sorted(by_kind["staff"]) == sorted(staff_emails)
    assert by_kind["ib"] == [DEMO_IB[0]]
    assert sorted(by_kind["client"]) == sorted(client_emails)
    assert after_first["StaffUser"] == len(StaffRole) + len(EXTRA_STAFF)
    assert after_first["IntroducingBroker"] == 1
    assert after_first["Client"] == after_first["AccountApplication"] == len(DEMO_CLIENTS)
    # Two officers of each four-eyes role, named apart.
    finance = [e for e in staff_emails if e.startswith("finance")]
    assert sorted(finance) == ["finance2@brokerflow.example", "finance@brokerflow.example"]

    # The demo payments were asked for once each, through the payment service (a row and an
    # audit row, its workflow started); the withdrawals, with no deposit credited, were refused.
    deposits = [d for d in DEMO_PAYMENTS if d.kind == "deposit"]
    assert after_first["Payment"] == len(deposits)
    assert len(first.activity) == len(second.activity) == len(DEMO_PAYMENTS)
    for line in first.activity:
        key = line.split()[0]
        if key in {d.key for d in deposits}:
            assert "is the worker running?" in line
        else:
            assert "not done (InsufficientFunds" in line

    # Credentials are written the first time to a file only its owner reads, never printed
    # (the stack copies what the seed prints into .data/logs/seed.log), and stored only as
    # hashes / sealed values.
    assert "Demo credentials" in first_output and str(path) in first_output
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    box = SecretBox(seed_settings.secrets_key)
    async with sessions() as session:
        staff = {s.email: s for s in await session.scalars(select(StaffUser))}
        clients = {c.email: c for c in await session.scalars(select(ClientRow))}
    for credential in first.created:
        assert credential.password in written
        assert credential.password not in first_output
        stored = staff.get(credential.email) or clients.get(credential.email)
        if stored is not None:
            assert credential.password not in stored.password_hash
            assert stored.password_hash.startswith("$argon2")
        if credential.totp_secret:
            assert credential.totp_secret in written
            assert credential.totp_secret not in first_output
            sealed = staff[credential.email].totp_secret_enc
            assert credential.totp_secret not in sealed
            assert box.open(sealed).get_secret_value() == credential.totp_secret

    # The KYC applicants applied as clients do (verified address, questionnaire, two documents
    # inspected and stored), once each: their cases are what the compliance queue shows.
    assert after_first["KycCase"] == len(DEMO_KYC_APPLICANTS)
    assert after_first["ClientDocument"] == 2 * len(DEMO_KYC_APPLICANTS)
    assert [line.split()[1] for line in first.kyc] == ["applied:"] * len(DEMO_KYC_APPLICANTS)
    assert any("open PEP screening hit" in line for line in first.kyc)
    assert all("has its case already" in line for line in second.kyc)
    assert "demo KYC applications" in first_output

    # Second run: nothing created, nothing audited, no credential printed; it says so instead.
    assert second.created == []
    assert after_second == after_first
    assert "already present" in second_output
    assert "Demo credentials" not in second_output
    assert "password" not in second_output
    for credential in first.created:
        assert credential.password not in second_output
        assert credential.email not in second_output

    # Each demo client's account opening and each demo deposit was started once, under its
    # row's id.
    async with sessions() as session:
        workflow_ids = list(await session.scalars(select(AccountApplication.workflow_id)))
        workflow_ids += list(await session.scalars(select(Payment.workflow_id)))
        workflow_ids += list(await session.scalars(select(KycCase.workflow_id)))
        keys = set(await session.scalars(select(Payment.idempotency_key)))
    assert keys == {d.key for d in deposits}
    for workflow_id in workflow_ids:
        description = await seed_temporal.get_workflow_handle(workflow_id).describe()
        assert description.status == WorkflowExecutionStatus.RUNNING


async def test_seed_refuses_a_prod_environment(test_db: ProvisionedDatabase) -> None:
    prod = make_settings(test_db.owner_url).model_copy(update={"env": "prod"})
    with pytest.raises(SystemExit, match="prod"):
        await seed(prod)
