"""Fakes of the KYC, account-change and re-KYC steps (and of the account-opening steps the live
account child runs), registered under the real step names, with the helpers their tests share."""

from __future__ import annotations

import asyncio
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from temporalio.client import WorkflowHandle
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from contracts import account_change as changes
from contracts import account_opening as opening
from contracts import client_mail, mt5_task_queue
from contracts import kyc_review as review
from contracts import rekyc_sweep as sweep
from contracts import screening_refresh as refresh
from contracts.account_change import (
    AccountChangeFacts,
    ApplyChangeInput,
    ChangeRef,
    EscalateChangeInput,
    MarkChangeFailedInput,
    Mt5AccountRead,
    ReadMt5AccountInput,
    RecordChangeAppliedInput,
    RecordChangeDecisionInput,
)
from contracts.account_opening import (
    AccountOpeningInput,
    AccountTerms,
    CreateMt5UserInput,
    CreateMt5UserOutcome,
    CreditDemoDepositInput,
    DeleteMt5UserInput,
    MarkApplicationFailedInput,
    RecordMt5AccountInput,
    ReserveLoginInput,
)
from contracts.client_mail import ClientMailInput
from contracts.kyc import OfficerDecision, StaffActor
from contracts.kyc_review import (
    CaseView,
    ChecksResult,
    EscalateCaseInput,
    LiveAccountPlan,
    OpenedCase,
    OpenedCases,
    PrepareLiveAccountInput,
    RecordClientInfoInput,
    RecordDecisionInput,
    RecordReminderInput,
    RunChecksInput,
)
from contracts.rekyc_sweep import ExpirySweepInput
from contracts.screening_refresh import (
    LoadedList,
    OpenCasesInput,
    RescreenBatch,
    RescreenInput,
    ScreeningRefreshInput,
)
from contracts.steps import implements
from domain.accounts import AccountChangeStatus, AccountStatus
from domain.kyc import CaseReason, CaseStatus, Decision, ReviewAction
from domain.onboarding import AccountType

LIVE_TERMS = AccountTerms(group="real\\eu\\standard", leverage=30, currency="EUR")


@dataclass
class KycFakes:
    """Every call is recorded in `calls` as (step, detail) and its input in `inputs[step]`.

    `status`/`four_eyes` are what the automatic checks answer; `refuse` maps a step to the type
    of a non-retryable ApplicationError it raises; `paused` steps wait for their event.
    `account`, `positions` and `fail_apply` drive the account-change fakes; `expiry_batches` and
    `rescreen_batches` the re-KYC ones.
    """

    server: str = field(default_factory=lambda: f"mt5{uuid.uuid4().hex[:8]}")
    status: CaseStatus = CaseStatus.IN_REVIEW
    four_eyes: bool = False
    info_needed: str | None = None
    refuse: dict[str, str] = field(default_factory=dict)
    paused: dict[str, asyncio.Event] = field(default_factory=dict)
    calls: list[tuple[str, Any]] = field(default_factory=list)
    inputs: dict[str, list[Any]] = field(default_factory=lambda: defaultdict(list))
    application_id: uuid.UUID = field(default_factory=uuid.uuid4)
    has_live_account: bool = False
    # account changes
    account: Mt5AccountRead = field(
        default_factory=lambda: Mt5AccountRead(
            login=7001, group="real\\eu\\standard", leverage=30, rights=0x163
        )
    )
    account_status: AccountStatus = AccountStatus.ACTIVE
    positions: int = 0
    fail_apply: str | None = None
    # re-KYC
    rescreen_batches: list[RescreenBatch] = field(default_factory=list)
    expiry_batches: list[OpenedCases] = field(default_factory=list)
    mail_failures: int = 0

    def pause(self, step: str) -> asyncio.Event:
        self.paused[step] = asyncio.Event()
        return self.paused[step]

    def steps(self) -> list[str]:
        return [name for name, _ in self.calls]

    def count(self, step: str) -> int:
        return self.steps().count(step)

    def mails(self) -> list[str]:
        return [detail for name, detail in self.calls if name == client_mail.send_client_mail.name]

    async def called(self, step: str, times: int = 1) -> None:
        for _ in range(400):
            if self.count(step) >= times:
                return
            await asyncio.sleep(0.025)
        raise AssertionError(f"{step} was not called {times} time(s): {self.steps()}")

    async def _call(self, step: str, detail: Any, argument: Any) -> None:
        self.calls.append((step, detail))
        self.inputs[step].append(argument)
        if step in self.paused:
            await self.paused[step].wait()
        kind = self.refuse.get(step)
        if kind is not None:
            raise ApplicationError(f"{kind} (fake)", type=kind, non_retryable=True)

    def activities(self) -> tuple[list[Callable[..., Any]], list[Callable[..., Any]]]:
        """(the main task queue's steps, the MT5 server queue's steps)."""

        @implements(review.run_kyc_checks)
        async def run_checks(request: RunChecksInput) -> ChecksResult:
            await self._call(review.run_kyc_checks.name, None, request)
            return ChecksResult(
                status=self.status,
                requires_four_eyes=self.four_eyes,
                risk_score=60 if self.four_eyes else 10,
                risk_level="high" if self.four_eyes else "low",
                info_needed=self.info_needed,
            )

        @implements(review.record_kyc_decision)
        async def record_decision(request: RecordDecisionInput) -> None:
            detail = (request.decision.action.value, request.decision.officer_id)
            await self._call(review.record_kyc_decision.name, detail, request)

        @implements(review.record_kyc_client_info)
        async def record_client_info(request: RecordClientInfoInput) -> None:
            await self._call(review.record_kyc_client_info.name, request.info.note, request)

        @implements(review.record_kyc_reminder)
        async def record_reminder(request: RecordReminderInput) -> None:
            await self._call(review.record_kyc_reminder.name, request.reminders_sent, request)

        @implements(review.escalate_kyc_case)
        async def escalate_case(request: EscalateCaseInput) -> None:
            await self._call(review.escalate_kyc_case.name, request.reason, request)

        @implements(review.prepare_live_account)
        async def prepare_live_account(request: PrepareLiveAccountInput) -> LiveAccountPlan:
            await self._call(review.prepare_live_account.name, None, request)
            if self.has_live_account:
                return LiveAccountPlan()
            return LiveAccountPlan(
                opening=AccountOpeningInput(
                    application_id=self.application_id,
                    client_id=uuid.uuid4(),
                    account_type=AccountType.STANDARD,
                    mt5_server=self.server,
                    kind="live",
                    terms=LIVE_TERMS,
                )
            )

        @implements(client_mail.send_client_mail)
        async def send_client_mail(request: ClientMailInput) -> None:
            await self._call(client_mail.send_client_mail.name, request.template.value, request)
            if self.mail_failures:
                self.mail_failures -= 1
                raise RuntimeError("SMTP server busy (fake)")

        @implements(refresh.load_screening_list)
        async def load_screening_list(request: ScreeningRefreshInput) -> LoadedList:
            await self._call(refresh.load_screening_list.name, request.digest, request)
            return LoadedList(list_id=7, source=request.source, party_count=3, newly_loaded=True)

        @implements(refresh.rescreen_clients)
        async def rescreen_clients(request: RescreenInput) -> RescreenBatch:
            await self._call(refresh.rescreen_clients.name, request.after, request)
            return self.rescreen_batches.pop(0) if self.rescreen_batches else RescreenBatch()

        @implements(refresh.open_list_change_cases)
        async def open_list_change_cases(request: OpenCasesInput) -> OpenedCases:
            await self._call(refresh.open_list_change_cases.name, request.client_ids, request)
            return OpenedCases(
                cases=tuple(
                    OpenedCase(
                        case_id=uuid.uuid5(uuid.NAMESPACE_URL, f"{request.key}{client}"),
                        client_id=client,
                        reason=CaseReason.LIST_CHANGE,
                    )
                    for client in request.client_ids
                )
            )

        @implements(sweep.open_document_expiry_cases)
        async def open_document_expiry_cases(request: ExpirySweepInput) -> OpenedCases:
            await self._call(sweep.open_document_expiry_cases.name, request.key, request)
            return self.expiry_batches.pop(0) if self.expiry_batches else OpenedCases()

        # account changes
        @implements(changes.load_account_change)
        async def load_account_change(request: ChangeRef) -> AccountChangeFacts:
            await self._call(changes.load_account_change.name, None, request)
            return AccountChangeFacts(
                change_id=request.change_id,
                client_id=uuid.uuid4(),
                account_id=uuid.uuid4(),
                server=self.server,
                login=self.account.login,
                currency="EUR",
                account_status=self.account_status,
                status=AccountChangeStatus.APPLYING,
            )

        @implements(changes.record_account_change_decision)
        async def record_change_decision(request: RecordChangeDecisionInput) -> None:
            await self._call(changes.record_account_change_decision.name, request.approve, request)

        @implements(changes.escalate_account_change)
        async def escalate_change(request: EscalateChangeInput) -> None:
            await self._call(changes.escalate_account_change.name, None, request)

        @implements(changes.record_account_change_applied)
        async def record_change_applied(request: RecordChangeAppliedInput) -> None:
            await self._call(
                changes.record_account_change_applied.name, request.account_status, request
            )

        @implements(changes.mark_account_change_failed)
        async def mark_change_failed(request: MarkChangeFailedInput) -> None:
            await self._call(changes.mark_account_change_failed.name, request.error_type, request)

        @implements(changes.read_mt5_account)
        async def read_mt5_account(request: ReadMt5AccountInput) -> Mt5AccountRead:
            await self._call(changes.read_mt5_account.name, request.login, request)
            return self.account

        @implements(changes.apply_account_change)
        async def apply_account_change(request: ApplyChangeInput) -> Mt5AccountRead:
            await self._call(changes.apply_account_change.name, request.login, request)
            if request.require_empty and (
                self.positions or self.account.balance or self.account.credit
            ):
                raise ApplicationError(
                    f"{self.positions} open position(s)", type="AccountNotEmpty", non_retryable=True
                )
            if self.fail_apply:
                raise ApplicationError("refused (fake)", type=self.fail_apply, non_retryable=True)
            updates = {
                name: value
                for name, value in (
                    ("leverage", request.leverage),
                    ("group", request.group),
                    ("rights", request.rights),
                )
                if value is not None
            }
            self.account = self.account.model_copy(update=updates)
            return self.account

        # the live account's opening (the child workflow)
        @implements(opening.reserve_mt5_login)
        async def reserve(request: ReserveLoginInput) -> int:
            await self._call(opening.reserve_mt5_login.name, None, request)
            return 8_000_001

        @implements(opening.record_mt5_account)
        async def record(request: RecordMt5AccountInput) -> None:
            await self._call(opening.record_mt5_account.name, request.login, request)

        @implements(opening.mark_application_failed)
        async def mark_failed(request: MarkApplicationFailedInput) -> None:
            await self._call(opening.mark_application_failed.name, request.reason, request)

        @implements(opening.create_mt5_user)
        async def create(request: CreateMt5UserInput) -> CreateMt5UserOutcome:
            await self._call(opening.create_mt5_user.name, request.login, request)
            return CreateMt5UserOutcome.CREATED

        @implements(opening.credit_demo_deposit)
        async def credit(request: CreditDemoDepositInput) -> int:
            await self._call(opening.credit_demo_deposit.name, request.login, request)
            return 1

        @implements(opening.delete_mt5_user_if_ours)
        async def delete(request: DeleteMt5UserInput) -> None:
            await self._call(opening.delete_mt5_user_if_ours.name, None, request)

        main: list[Callable[..., Any]] = [
            run_checks,
            record_decision,
            record_client_info,
            record_reminder,
            escalate_case,
            prepare_live_account,
            send_client_mail,
            load_screening_list,
            rescreen_clients,
            open_list_change_cases,
            open_document_expiry_cases,
            load_account_change,
            record_change_decision,
            escalate_change,
            record_change_applied,
            mark_change_failed,
            reserve,
            record,
            mark_failed,
        ]
        mt5: list[Callable[..., Any]] = [
            read_mt5_account,
            apply_account_change,
            create,
            credit,
            delete,
        ]
        return main, mt5


@asynccontextmanager
async def kyc_workers(
    env: WorkflowEnvironment, fakes: KycFakes, *workflows: type
) -> AsyncIterator[str]:
    """Workers for `workflows` and the fakes on a fresh main queue and the fakes' MT5 queue."""
    queue = f"test-{uuid.uuid4()}"
    main, mt5 = fakes.activities()
    async with (
        Worker(env.client, task_queue=queue, workflows=list(workflows), activities=main),
        Worker(env.client, task_queue=mt5_task_queue(fakes.server), activities=mt5),
    ):
        yield queue


def officer(*roles: str) -> StaffActor:
    return StaffActor(
        staff_id=uuid.uuid4(),
        roles=roles or ("compliance",),
        ip="10.0.0.7",
        request_id=f"req-{uuid.uuid4().hex[:8]}",
    )


def decision(
    actor: StaffActor, action: ReviewAction, info_needed: str | None = None
) -> OfficerDecision:
    return OfficerDecision(
        actor=actor,
        decision=Decision(
            officer_id=str(actor.staff_id),
            action=action,
            reason=f"{action.value}: documents reviewed",
            info_needed=info_needed,
        ),
    )


async def until_status(
    handle: WorkflowHandle[Any, Any], status: Any, query: str = "state", view: type = CaseView
) -> Any:
    """Wait until the workflow's `state` query answers `status`."""
    current = None
    for _ in range(400):
        try:
            current = await handle.query(query, result_type=view)
        except Exception:  # not started yet
            current = None
        if current is not None and current.status == status:
            return current
        await asyncio.sleep(0.025)
    raise AssertionError(f"the workflow never reached {status} (last {current})")


ZERO = Decimal(0)
