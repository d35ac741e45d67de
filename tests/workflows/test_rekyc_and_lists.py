"""Re-KYC: the list refresh and the daily sweep open cases and start their reviews; the client
mail workflow; the sweep's Temporal Schedule."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import (
    ScheduleActionStartWorkflow,
    WorkflowExecutionStatus,
    WorkflowFailureError,
)
from temporalio.testing import WorkflowEnvironment

from contracts import client_mail
from contracts import kyc_review as review
from contracts import rekyc_sweep as sweep
from contracts import screening_refresh as refresh
from contracts.client_mail import (
    CLIENT_MAIL,
    ClientMailInput,
    MailTemplate,
    client_mail_workflow_id,
)
from contracts.kyc_review import KycCaseInput, OpenedCase, OpenedCases, kyc_case_workflow_id
from contracts.rekyc_sweep import REKYC_SWEEP_SCHEDULE, ReKycSweepInput, ReKycSweepResult
from contracts.screening_refresh import (
    RescreenBatch,
    ScreeningRefreshInput,
    ScreeningRefreshResult,
    screening_refresh_workflow_id,
)
from domain.kyc import CaseReason, KycSla
from schedules import all_schedules, ensure_schedules
from settings import KycRules, Settings
from tests.workflows.kyc_fakes import KycFakes, kyc_workers
from tests.workflows.money_fakes import replay, start_environment
from workflows.client_mail import ClientMailWorkflow
from workflows.kyc_review import KycReviewWorkflow
from workflows.rekyc_sweep import ReKycSweepWorkflow
from workflows.screening_refresh import ScreeningListRefreshWorkflow

SLA = KycSla(review=timedelta(hours=8))
DIGEST = "ab" * 32


@pytest.fixture(scope="module")
async def env() -> AsyncIterator[WorkflowEnvironment]:
    environment = await start_environment()
    yield environment
    await environment.shutdown()


def opened(reason: CaseReason, count: int) -> tuple[OpenedCase, ...]:
    return tuple(
        OpenedCase(case_id=uuid.uuid4(), client_id=uuid.uuid4(), reason=reason)
        for _ in range(count)
    )


async def reviews_running(env: WorkflowEnvironment, cases: tuple[OpenedCase, ...]) -> None:
    """Each case's review runs (it outlives its parent); it is then stopped."""
    for case in cases:
        handle = env.client.get_workflow_handle(kyc_case_workflow_id(case.case_id))
        description = await handle.describe()
        assert description.status is WorkflowExecutionStatus.RUNNING
        assert description.workflow_type == "KycReview"
        await handle.terminate("test over")


class TestScreeningListRefresh:
    async def test_new_potential_matches_open_cases_whose_reviews_outlive_the_refresh(
        self, env: WorkflowEnvironment
    ) -> None:
        flagged_first, flagged_last = (uuid.uuid4(),), (uuid.uuid4(), uuid.uuid4())
        cursor = uuid.uuid4()
        fakes = KycFakes(
            rescreen_batches=[
                RescreenBatch(flagged=flagged_first, next_after=cursor),
                RescreenBatch(next_after=uuid.uuid4()),
                RescreenBatch(flagged=flagged_last),
            ]
        )
        request = ScreeningRefreshInput(
            source="ofac_sdn", storage_key="lists/ofac/1", digest=DIGEST, sla=SLA
        )
        async with kyc_workers(
            env, fakes, ScreeningListRefreshWorkflow, KycReviewWorkflow
        ) as queue:
            handle = await env.client.start_workflow(
                ScreeningListRefreshWorkflow.run,
                request,
                id=screening_refresh_workflow_id(DIGEST),
                task_queue=queue,
            )
            result: ScreeningRefreshResult = await handle.result()
            await replay(handle, ScreeningListRefreshWorkflow)
            await fakes.called(review.run_kyc_checks.name, 3)
            cases = tuple(
                case
                for opening in fakes.inputs[refresh.open_list_change_cases.name]
                for case in opened_for(opening.client_ids, opening.key)
            )
            await reviews_running(env, cases)

        assert result == ScreeningRefreshResult(
            list_id=7, clients_screened_batches=3, cases_opened=3
        )
        # The children's checks left out:
        own = [step for step in fakes.steps() if step != review.run_kyc_checks.name]
        assert own == [
            refresh.load_screening_list.name,
            refresh.rescreen_clients.name,
            refresh.open_list_change_cases.name,
            refresh.rescreen_clients.name,
            refresh.rescreen_clients.name,
            refresh.open_list_change_cases.name,
        ]
        assert [r.after for r in fakes.inputs[refresh.rescreen_clients.name]][:2] == [None, cursor]
        assert [o.client_ids for o in fakes.inputs[refresh.open_list_change_cases.name]] == [
            flagged_first,
            flagged_last,
        ]
        assert {o.key for o in fakes.inputs[refresh.open_list_change_cases.name]} == {DIGEST}
        children: list[object] = fakes.inputs[review.run_kyc_checks.name]
        assert all(c.sla == SLA for c in children)  # type: ignore[attr-defined]

    async def test_a_long_refresh_continues_as_new_and_picks_up_where_it_was(
        self, env: WorkflowEnvironment
    ) -> None:
        cursors = [uuid.uuid4() for _ in range(4)]
        flagged = [(uuid.uuid4(),), (uuid.uuid4(),)]
        fakes = KycFakes(
            rescreen_batches=[
                RescreenBatch(next_after=cursors[0]),
                RescreenBatch(flagged=flagged[0], next_after=cursors[1]),
                RescreenBatch(next_after=cursors[2]),
                RescreenBatch(next_after=cursors[3]),
                RescreenBatch(flagged=flagged[1]),
            ]
        )
        digest = "cd" * 32
        request = ScreeningRefreshInput(
            source="ofac_sdn", storage_key="lists/ofac/2", digest=digest, batches_per_run=2
        )
        async with kyc_workers(
            env, fakes, ScreeningListRefreshWorkflow, KycReviewWorkflow
        ) as queue:
            handle = await env.client.start_workflow(
                ScreeningListRefreshWorkflow.run,
                request,
                id=screening_refresh_workflow_id(digest),
                task_queue=queue,
            )
            result: ScreeningRefreshResult = await handle.result()  # follows the new runs
            await fakes.called(review.run_kyc_checks.name, 2)
            cases = tuple(
                case
                for opening in fakes.inputs[refresh.open_list_change_cases.name]
                for case in opened_for(opening.client_ids, opening.key)
            )
            await reviews_running(env, cases)
            first_run = env.client.get_workflow_handle(handle.id, run_id=handle.result_run_id)
            events = list((await first_run.fetch_history()).events)
            ended = events[-1]

        # Five batches over three runs (2 + 2 + 1), the list loaded once, counts carried over.
        assert result == ScreeningRefreshResult(
            list_id=7, clients_screened_batches=5, cases_opened=2
        )
        own = [step for step in fakes.steps() if step != review.run_kyc_checks.name]
        assert own.count(refresh.load_screening_list.name) == 1
        assert [r.after for r in fakes.inputs[refresh.rescreen_clients.name]] == [
            None,
            *cursors,
        ]
        assert ended.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW
        # Its long steps heartbeat: a dead worker is noticed in 30 s, not after 10 minutes.
        scheduled = [
            e.activity_task_scheduled_event_attributes
            for e in events
            if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
        ]
        bulk = {refresh.load_screening_list.name, refresh.rescreen_clients.name}
        assert {
            s.heartbeat_timeout.ToSeconds() for s in scheduled if s.activity_type.name in bulk
        } == {30}


def opened_for(client_ids: tuple[uuid.UUID, ...], key: str) -> tuple[OpenedCase, ...]:
    """The cases the fake opening answers (its ids are derived from key and client)."""
    return tuple(
        OpenedCase(
            case_id=uuid.uuid5(uuid.NAMESPACE_URL, f"{key}{client}"),
            client_id=client,
            reason=CaseReason.LIST_CHANGE,
        )
        for client in client_ids
    )


class TestReKycSweep:
    async def test_the_sweep_opens_cases_in_batches_and_starts_each_review_once(
        self, env: WorkflowEnvironment
    ) -> None:
        first, second = opened(CaseReason.DOCUMENT_EXPIRY, 2), opened(CaseReason.DOCUMENT_EXPIRY, 1)
        # The second batch also answers a case of the first again (a retried opening).
        fakes = KycFakes(
            expiry_batches=[
                OpenedCases(cases=first, more=True),
                OpenedCases(cases=(*second, first[0]), more=False),
            ],
        )
        async with kyc_workers(env, fakes, ReKycSweepWorkflow, KycReviewWorkflow) as queue:
            handle = await env.client.start_workflow(
                ReKycSweepWorkflow.run,
                ReKycSweepInput(sla=SLA),
                id=f"rekyc-sweep-{uuid.uuid4()}",
                task_queue=queue,
            )
            result: ReKycSweepResult = await handle.result()
            await replay(handle, ReKycSweepWorkflow)
            await fakes.called(review.run_kyc_checks.name, 3)
            await reviews_running(env, (*first, *second))

        assert result == ReKycSweepResult(cases_opened=3)
        keys = {run.key for run in fakes.inputs[sweep.open_document_expiry_cases.name]}
        assert keys == {handle.id}
        assert fakes.count(sweep.open_document_expiry_cases.name) == 2
        assert fakes.count(review.run_kyc_checks.name) == 3


class TestClientMail:
    async def test_a_mail_is_retried_while_the_server_is_unavailable(
        self, env: WorkflowEnvironment
    ) -> None:
        fakes = KycFakes(mail_failures=2)
        mail = ClientMailInput(
            key=f"signup-{uuid.uuid4()}:verify",
            client_id=uuid.uuid4(),
            template=MailTemplate.VERIFY_EMAIL,
        )
        async with kyc_workers(env, fakes, ClientMailWorkflow) as queue:
            handle = await env.client.start_workflow(
                CLIENT_MAIL.name,
                mail,
                id=client_mail_workflow_id(mail.key),
                task_queue=queue,
            )
            await handle.result()
            await replay(handle, ClientMailWorkflow)

        assert fakes.count(client_mail.send_client_mail.name) == 3
        assert all(m == mail for m in fakes.inputs[client_mail.send_client_mail.name])

    async def test_a_mail_refused_for_good_fails_the_workflow(
        self, env: WorkflowEnvironment
    ) -> None:
        fakes = KycFakes(refuse={client_mail.send_client_mail.name: "MailRejected"})
        mail = ClientMailInput(
            key=f"k-{uuid.uuid4()}", client_id=uuid.uuid4(), template=MailTemplate.KYC_APPROVED
        )
        async with kyc_workers(env, fakes, ClientMailWorkflow) as queue:
            handle = await env.client.start_workflow(
                ClientMailWorkflow.run, mail, id=client_mail_workflow_id(mail.key), task_queue=queue
            )
            with pytest.raises(WorkflowFailureError):
                await handle.result()

        assert fakes.count(client_mail.send_client_mail.name) == 1


class TestSchedule:
    async def test_the_sweep_schedule_is_created_then_updated(
        self, temporal_env: WorkflowEnvironment
    ) -> None:
        client = temporal_env.client
        settings = Settings(env="test", kyc=KycRules(review_sla_hours=12))
        await ensure_schedules(client, settings)
        try:
            updated = Settings(env="test", kyc=KycRules(review_sla_hours=6, client_reminders=1))
            await ensure_schedules(client, updated)  # exists already: brought up to date
            description = await client.get_schedule_handle(REKYC_SWEEP_SCHEDULE).describe()
            action = description.schedule.action
            assert isinstance(action, ScheduleActionStartWorkflow)
            assert action.workflow == "ReKycSweep"
            [argument] = action.args
            sweep = await client.data_converter.decode([argument], [ReKycSweepInput])
            assert sweep == [ReKycSweepInput(sla=updated.kyc.sla())]
            assert sweep[0].sla.review == timedelta(hours=6)
        finally:
            for schedule_id in all_schedules(settings):
                await client.get_schedule_handle(schedule_id).delete()


def test_case_input_carries_the_settings_service_levels() -> None:
    rules = KycRules(review_sla_hours=2, client_reminder_days=1.5, client_reminders=4)
    sla = rules.sla()
    assert sla == KycSla(
        review=timedelta(hours=2), client_reminder=timedelta(hours=36), client_reminders=4
    )
    assert KycCaseInput(case_id=uuid.uuid4(), client_id=uuid.uuid4(), sla=sla).sla == sla
