"""The KYC review workflow's logic, with its steps replaced by fakes of the same name."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHandle, WorkflowUpdateFailedError
from temporalio.testing import WorkflowEnvironment

from contracts import account_opening as opening
from contracts import client_mail
from contracts import kyc_review as review
from contracts.account_opening import AccountOpeningResult, account_opening_workflow_id
from contracts.client_mail import ClientMailInput
from contracts.kyc import OfficerDecision, StaffActor
from contracts.kyc_review import (
    KYC_DECIDE,
    KYC_INFO_SUBMITTED,
    CaseView,
    ClientInfo,
    KycCaseInput,
    RecordDecisionInput,
    kyc_case_workflow_id,
)
from domain.kyc import CaseReason, CaseStatus, KycSla, ReviewAction
from domain.mt5 import DEFAULT_LIVE_RIGHTS
from tests.workflows.kyc_fakes import LIVE_TERMS, KycFakes, decision, kyc_workers, officer
from tests.workflows.kyc_fakes import until_status as _until_status
from tests.workflows.money_fakes import replay, start_environment
from workflows.account_opening import AccountOpeningWorkflow
from workflows.kyc_review import REJECTION_NOTICE, KycReviewWorkflow

Handle = WorkflowHandle[KycReviewWorkflow, CaseView]
SLA = KycSla(review=timedelta(hours=24), client_reminder=timedelta(days=3), client_reminders=2)


@pytest.fixture(scope="module")
async def env() -> AsyncIterator[WorkflowEnvironment]:
    environment = await start_environment()
    yield environment
    await environment.shutdown()


def case_input(reason: CaseReason = CaseReason.ONBOARDING) -> KycCaseInput:
    return KycCaseInput(case_id=uuid.uuid4(), client_id=uuid.uuid4(), reason=reason, sla=SLA)


async def start(env: WorkflowEnvironment, queue: str, request: KycCaseInput) -> Handle:
    return await env.client.start_workflow(
        KycReviewWorkflow.run, request, id=kyc_case_workflow_id(request.case_id), task_queue=queue
    )


async def decide(handle: Handle, request: OfficerDecision) -> CaseView:
    view: CaseView = await handle.execute_update(KYC_DECIDE.name, request, result_type=CaseView)
    return view


async def until_status(handle: Handle, status: CaseStatus) -> CaseView:
    view: CaseView = await _until_status(handle, status)
    return view


async def finish(handle: Handle) -> CaseView:
    result = await handle.result()
    await replay(handle, KycReviewWorkflow)
    return result


def mail_keys(fakes: KycFakes) -> list[str]:
    return [m.key.rsplit(":", 1)[-1] for m in fakes.inputs[client_mail.send_client_mail.name]]


class TestApproval:
    async def test_a_low_risk_case_approved_once_opens_the_live_account(
        self, env: WorkflowEnvironment
    ) -> None:
        fakes = KycFakes()
        request = case_input()
        async with kyc_workers(env, fakes, KycReviewWorkflow, AccountOpeningWorkflow) as queue:
            handle = await start(env, queue, request)
            await until_status(handle, CaseStatus.IN_REVIEW)
            view = await decide(handle, decision(officer(), ReviewAction.APPROVE))
            assert view.status is CaseStatus.APPROVED
            result = await finish(handle)
            child = env.client.get_workflow_handle(
                account_opening_workflow_id(fakes.application_id),
                result_type=AccountOpeningResult,
            )
            opened = await child.result()
            await replay(child, AccountOpeningWorkflow)

        assert result.status is CaseStatus.APPROVED
        assert opened.login == 8_000_001
        assert fakes.steps() == [
            review.run_kyc_checks.name,
            review.record_kyc_decision.name,
            client_mail.send_client_mail.name,
            review.prepare_live_account.name,
            opening.reserve_mt5_login.name,
            opening.create_mt5_user.name,
            opening.record_mt5_account.name,
            client_mail.send_client_mail.name,
        ]
        assert fakes.mails() == ["kyc_approved", "account_ready"]
        [created] = fakes.inputs[opening.create_mt5_user.name]
        assert (created.group, created.leverage) == (LIVE_TERMS.group, LIVE_TERMS.leverage)
        assert created.rights == int(DEFAULT_LIVE_RIGHTS)
        [recorded] = fakes.inputs[opening.record_mt5_account.name]
        assert (recorded.currency, recorded.rights) == ("EUR", int(DEFAULT_LIVE_RIGHTS))
        ready: ClientMailInput = fakes.inputs[client_mail.send_client_mail.name][-1]
        assert ready.context == {"login": "8000001", "server": fakes.server}
        assert "password" not in str(ready.context).lower()
        assert ready.key == f"{kyc_case_workflow_id(request.case_id)}:account-ready"

    async def test_four_eyes_needs_a_second_different_officer(
        self, env: WorkflowEnvironment
    ) -> None:
        fakes = KycFakes(four_eyes=True)
        first, second = officer(), officer()
        async with kyc_workers(env, fakes, KycReviewWorkflow, AccountOpeningWorkflow) as queue:
            handle = await start(env, queue, case_input())
            await until_status(handle, CaseStatus.IN_REVIEW)

            view = await decide(handle, decision(first, ReviewAction.APPROVE))
            assert view.status is CaseStatus.AWAITING_SECOND_APPROVAL
            assert view.approvals == (str(first.staff_id),)

            with pytest.raises(WorkflowUpdateFailedError) as same_officer:
                await decide(handle, decision(first, ReviewAction.APPROVE))
            assert "different compliance officer" in str(same_officer.value.cause)
            assert fakes.count(review.record_kyc_decision.name) == 1  # nothing recorded for it

            view = await decide(handle, decision(second, ReviewAction.APPROVE))
            assert view.status is CaseStatus.APPROVED
            assert view.approvals == (str(first.staff_id), str(second.staff_id))
            await finish(handle)
            # The refused update was rejected by the validator: it never reached history.
            accepted = [
                e
                for e in (await handle.fetch_history()).events
                if e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED
            ]
            assert len(accepted) == 2

        decisions: list[RecordDecisionInput] = fakes.inputs[review.record_kyc_decision.name]
        assert [(d.actor.staff_id, d.status) for d in decisions] == [
            (first.staff_id, CaseStatus.AWAITING_SECOND_APPROVAL),
            (second.staff_id, CaseStatus.APPROVED),
        ]
        assert decisions[0].actor.request_id == first.request_id
        assert fakes.count(opening.create_mt5_user.name) == 1  # the live provisioning child ran

    async def test_an_approved_re_kyc_case_provisions_nothing(
        self, env: WorkflowEnvironment
    ) -> None:
        fakes = KycFakes()
        async with kyc_workers(env, fakes, KycReviewWorkflow, AccountOpeningWorkflow) as queue:
            handle = await start(env, queue, case_input(CaseReason.LIST_CHANGE))
            await until_status(handle, CaseStatus.IN_REVIEW)
            await decide(handle, decision(officer(), ReviewAction.APPROVE))
            await finish(handle)

        assert review.prepare_live_account.name not in fakes.steps()
        assert fakes.mails() == ["kyc_approved"]


class TestRefusals:
    async def test_a_rejected_case_tells_the_client_without_the_officers_reason(
        self, env: WorkflowEnvironment
    ) -> None:
        fakes = KycFakes()
        async with kyc_workers(env, fakes, KycReviewWorkflow) as queue:
            handle = await start(env, queue, case_input())
            await until_status(handle, CaseStatus.IN_REVIEW)
            view = await decide(handle, decision(officer(), ReviewAction.REJECT))
            assert view.status is CaseStatus.REJECTED
            result = await finish(handle)

        assert result.status is CaseStatus.REJECTED
        assert fakes.steps() == [
            review.run_kyc_checks.name,
            review.record_kyc_decision.name,
            client_mail.send_client_mail.name,
        ]
        [mail] = fakes.inputs[client_mail.send_client_mail.name]
        assert mail.context == {"reason": REJECTION_NOTICE}

    async def test_a_decision_on_a_closed_case_is_refused(self, env: WorkflowEnvironment) -> None:
        fakes = KycFakes()
        provisioning = fakes.pause(review.prepare_live_account.name)
        async with kyc_workers(env, fakes, KycReviewWorkflow, AccountOpeningWorkflow) as queue:
            handle = await start(env, queue, case_input())
            await until_status(handle, CaseStatus.IN_REVIEW)
            await decide(handle, decision(officer(), ReviewAction.APPROVE))
            await fakes.called(review.prepare_live_account.name)
            with pytest.raises(WorkflowUpdateFailedError) as closed:
                await decide(handle, decision(officer(), ReviewAction.REJECT))
            assert "the case is closed" in str(closed.value.cause)
            provisioning.set()
            await finish(handle)

        assert fakes.count(review.record_kyc_decision.name) == 1

    async def test_only_compliance_decides_and_not_while_checks_run(
        self, env: WorkflowEnvironment
    ) -> None:
        fakes = KycFakes()
        checking = fakes.pause(review.run_kyc_checks.name)
        async with kyc_workers(env, fakes, KycReviewWorkflow) as queue:
            handle = await start(env, queue, case_input())
            await fakes.called(review.run_kyc_checks.name)
            with pytest.raises(WorkflowUpdateFailedError) as early:
                await decide(handle, decision(officer(), ReviewAction.APPROVE))
            assert "still running" in str(early.value.cause)
            checking.set()
            await until_status(handle, CaseStatus.IN_REVIEW)
            with pytest.raises(WorkflowUpdateFailedError) as not_compliance:
                await decide(handle, decision(officer("finance"), ReviewAction.APPROVE))
            assert "only a compliance officer" in str(not_compliance.value.cause)
            impostor = officer()
            forged = decision(impostor, ReviewAction.APPROVE)
            forged = forged.model_copy(
                update={"actor": StaffActor(staff_id=uuid.uuid4(), roles=("compliance",))}
            )
            with pytest.raises(WorkflowUpdateFailedError):
                await decide(handle, forged)
            await decide(handle, decision(officer(), ReviewAction.REJECT))
            await finish(handle)

        assert fakes.count(review.record_kyc_decision.name) == 1


class TestInformation:
    async def test_a_request_for_information_goes_back_to_review_when_the_client_answers(
        self, env: WorkflowEnvironment
    ) -> None:
        fakes = KycFakes()
        reviewer = officer()
        async with kyc_workers(env, fakes, KycReviewWorkflow, AccountOpeningWorkflow) as queue:
            handle = await start(env, queue, case_input())
            await until_status(handle, CaseStatus.IN_REVIEW)
            asked = await decide(
                handle,
                decision(reviewer, ReviewAction.REQUEST_INFO, "a bank statement\na payslip"),
            )
            assert (asked.status, asked.review_round) == (CaseStatus.INFO_REQUESTED, 2)
            assert asked.info_needed == "a bank statement\na payslip"
            await fakes.called(client_mail.send_client_mail.name)

            with pytest.raises(WorkflowUpdateFailedError) as waiting:
                await decide(handle, decision(reviewer, ReviewAction.APPROVE))
            assert "waits for the client" in str(waiting.value.cause)

            await handle.signal(KYC_INFO_SUBMITTED.name, ClientInfo(note="uploaded both"))
            await until_status(handle, CaseStatus.IN_REVIEW)
            # The same officer may approve in the new round.
            view = await decide(handle, decision(reviewer, ReviewAction.APPROVE))
            assert view.status is CaseStatus.APPROVED
            await finish(handle)

        assert fakes.steps()[:5] == [
            review.run_kyc_checks.name,
            review.record_kyc_decision.name,
            client_mail.send_client_mail.name,
            review.record_kyc_client_info.name,
            review.record_kyc_decision.name,
        ]
        info_mail: ClientMailInput = fakes.inputs[client_mail.send_client_mail.name][0]
        assert info_mail.template.value == "kyc_info_requested"
        assert info_mail.context == {"missing": "a bank statement\na payslip"}
        [answer] = fakes.inputs[review.record_kyc_client_info.name]
        assert answer.info.note == "uploaded both"
        rounds = [
            (d.review_round, d.next_round) for d in fakes.inputs[review.record_kyc_decision.name]
        ]
        assert rounds == [(1, 2), (2, 2)]

    async def test_a_document_expiry_case_starts_by_asking_the_client(
        self, env: WorkflowEnvironment
    ) -> None:
        fakes = KycFakes(
            status=CaseStatus.INFO_REQUESTED, info_needed="a new passport (valid until 2026-12-01)"
        )
        async with kyc_workers(env, fakes, KycReviewWorkflow, AccountOpeningWorkflow) as queue:
            handle = await start(env, queue, case_input(CaseReason.DOCUMENT_EXPIRY))
            view = await until_status(handle, CaseStatus.INFO_REQUESTED)
            assert view.info_needed == "a new passport (valid until 2026-12-01)"
            await fakes.called(client_mail.send_client_mail.name)
            await handle.signal(KYC_INFO_SUBMITTED.name, ClientInfo(document_ids=(uuid.uuid4(),)))
            await until_status(handle, CaseStatus.IN_REVIEW)
            await decide(handle, decision(officer(), ReviewAction.APPROVE))
            await finish(handle)

        assert fakes.mails() == ["kyc_info_requested", "kyc_approved"]
        assert review.prepare_live_account.name not in fakes.steps()


class TestServiceLevels:
    async def test_an_untouched_case_is_escalated_once(self, env: WorkflowEnvironment) -> None:
        fakes = KycFakes()
        async with kyc_workers(env, fakes, KycReviewWorkflow) as queue:
            handle = await start(env, queue, case_input())
            await until_status(handle, CaseStatus.IN_REVIEW)
            await env.sleep(timedelta(hours=23))
            assert fakes.count(review.escalate_kyc_case.name) == 0
            await env.sleep(timedelta(hours=2))
            await fakes.called(review.escalate_kyc_case.name)
            view = await until_status(handle, CaseStatus.IN_REVIEW)
            assert view.escalated
            await env.sleep(timedelta(days=5))  # still untouched: not escalated again
            assert fakes.count(review.escalate_kyc_case.name) == 1

            # An officer's action starts a new waiting period, which may be escalated again.
            asked = await decide(handle, decision(officer(), ReviewAction.REQUEST_INFO, "x"))
            assert not asked.escalated
            await decide(handle, decision(officer(), ReviewAction.REJECT))
            await finish(handle)

        [escalation] = fakes.inputs[review.escalate_kyc_case.name]
        assert "24" in escalation.reason

    async def test_a_silent_client_is_reminded_up_to_the_cap_then_escalated(
        self, env: WorkflowEnvironment
    ) -> None:
        fakes = KycFakes()
        async with kyc_workers(env, fakes, KycReviewWorkflow) as queue:
            handle = await start(env, queue, case_input())
            await until_status(handle, CaseStatus.IN_REVIEW)
            await decide(handle, decision(officer(), ReviewAction.REQUEST_INFO, "a payslip"))
            await fakes.called(client_mail.send_client_mail.name)  # the request itself
            await env.sleep(timedelta(days=3, hours=1))
            await fakes.called(review.record_kyc_reminder.name, 1)
            await env.sleep(timedelta(days=3))
            await fakes.called(review.record_kyc_reminder.name, 2)
            await env.sleep(timedelta(days=3))
            await fakes.called(review.escalate_kyc_case.name)
            await env.sleep(timedelta(days=30))
            view = await until_status(handle, CaseStatus.INFO_REQUESTED)
            assert (view.reminders_sent, view.escalated) == (2, True)
            await decide(handle, decision(officer(), ReviewAction.REJECT))
            await finish(handle)

        assert fakes.count(review.record_kyc_reminder.name) == SLA.client_reminders
        assert fakes.count(review.escalate_kyc_case.name) == 1
        assert [r.reminders_sent for r in fakes.inputs[review.record_kyc_reminder.name]] == [1, 2]
        assert mail_keys(fakes)[1:3] == ["1", "2"]  # reminder:<period>:<n>
        reminder: ClientMailInput = fakes.inputs[client_mail.send_client_mail.name][1]
        assert reminder.template.value == "kyc_reminder"
        assert reminder.context["waiting_for"] == "a payslip"
        [escalation] = fakes.inputs[review.escalate_kyc_case.name]
        assert "2 reminder" in escalation.reason

    async def test_a_mail_the_server_refuses_does_not_stop_the_case(
        self, env: WorkflowEnvironment
    ) -> None:
        fakes = KycFakes(refuse={client_mail.send_client_mail.name: "MailRejected"})
        async with kyc_workers(env, fakes, KycReviewWorkflow) as queue:
            handle = await start(env, queue, case_input())
            await until_status(handle, CaseStatus.IN_REVIEW)
            await decide(handle, decision(officer(), ReviewAction.REJECT))
            result = await finish(handle)

        assert result.status is CaseStatus.REJECTED
        assert fakes.count(client_mail.send_client_mail.name) == 1  # not retried: refused for good
