"""A KYC case, from the automatic checks to the officers' decision and the live account.

1. automatic checks: screening against the active sanctions and PEP lists, the risk score, and
   four-eyes for a HIGH risk; the case then waits for compliance (IN_REVIEW), or for the
   client when it was opened because a document runs out (INFO_REQUESTED);
2. review: officers act through the `decide` update (approve, reject, request information),
   checked by `domain.kyc.check_decision` before anything is written; the client answers a
   request through the `info_submitted` signal;
3. service levels: a case compliance leaves untouched for `sla.review` is escalated, once per
   waiting period; a client who owes information is reminded every `sla.client_reminder`, at
   most `sla.client_reminders` times, and then the case is escalated to compliance;
4. approved: the client's KYC status becomes approved (with the decision, in one transaction);
   an onboarding case opens the live MT5 account (`ACCOUNT_OPENING`, live, as a child)
   and tells the client to collect the credentials in the portal. Rejected: the client is told.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from functools import partial

from temporalio import workflow
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import (
    ActivityError,
    ApplicationError,
    ChildWorkflowError,
    WorkflowAlreadyStartedError,
)

with workflow.unsafe.imports_passed_through():
    from contracts import kyc_review as review
    from contracts.account_opening import ACCOUNT_OPENING, account_opening_workflow_id
    from contracts.client_mail import ClientMailInput, MailTemplate
    from contracts.kyc import OfficerDecision
    from contracts.kyc_review import (
        KYC_DECIDE,
        KYC_INFO_SUBMITTED,
        KYC_REVIEW,
        KYC_STATE,
        CaseView,
        ClientInfo,
        EscalateCaseInput,
        KycCaseInput,
        PrepareLiveAccountInput,
        RecordClientInfoInput,
        RecordDecisionInput,
        RecordReminderInput,
        RunChecksInput,
        kyc_case_workflow_id,
    )
    from domain.errors import BackOfficeError
    from domain.kyc import (
        WAITING_ON_COMPLIANCE,
        CaseReason,
        CaseState,
        CaseStatus,
        KycSla,
        apply_decision,
        check_decision,
        info_received,
    )
    from domain.roles import StaffRole

# Checked by the workflow sandbox like this module (not passed through): workflow code.
from workflows.client_mail import send_mail

# Said to a rejected client. The officer's own reason stays in the case: it may name a list
# match, and telling the client would be tipping-off.
REJECTION_NOTICE = "your application does not meet the requirements for an account with us"

__all__ = ["REJECTION_NOTICE", "KycReviewWorkflow"]


@workflow.defn(name=KYC_REVIEW.name)
class KycReviewWorkflow:
    @workflow.init
    def __init__(self, request: KycCaseInput) -> None:
        self._request = request
        self._id = kyc_case_workflow_id(request.case_id)
        self._state = CaseState(status=CaseStatus.CHECKING, requires_four_eyes=False)
        self._info_needed: str | None = None
        # A waiting period starts whenever the case starts waiting anew (checks done, an
        # officer acted, the client answered); escalation happens at most once per period.
        self._period = 0
        self._waiting_since: datetime | None = None
        self._escalated = False
        self._reminders = 0
        self._info_mailed_for = -1
        self._info: ClientInfo | None = None
        # One change of the case at a time: two officers racing cannot both pass the checks.
        self._lock = asyncio.Lock()
        self._busy = False

    # -- what the API reaches ------------------------------------------------------------------

    @workflow.query(name=KYC_STATE.name)
    def state(self) -> CaseView:
        return CaseView(
            case_id=self._request.case_id,
            status=self._state.status,
            requires_four_eyes=self._state.requires_four_eyes,
            approvals=self._state.approvals,
            escalated=self._escalated,
            reminders_sent=self._reminders,
            review_round=self._state.review_round,
            info_needed=self._info_needed
            if self._state.status is CaseStatus.INFO_REQUESTED
            else None,
        )

    @workflow.update(name=KYC_DECIDE.name)
    async def decide(self, request: OfficerDecision) -> CaseView:
        async with self._lock:
            self._busy = True
            try:
                # Checked again under the lock: an update accepted together with another one
                # was validated against the case as it was before the other.
                after = self._accepted(request)
                decision = request.decision
                now = workflow.now()
                await review.record_kyc_decision(
                    RecordDecisionInput(
                        case_id=self._request.case_id,
                        client_id=self._request.client_id,
                        actor=request.actor,
                        decision=decision,
                        review_round=self._state.review_round,
                        status=after.status,
                        next_round=after.review_round,
                        at=now,
                        due_at=self._due(after.status, now),
                    )
                )
                self._state = after
                if after.status is CaseStatus.INFO_REQUESTED:
                    self._info_needed = decision.info_needed
                self._start_waiting(now)
            finally:
                self._busy = False
        return self.state()

    @decide.validator
    def _validate_decision(self, request: OfficerDecision) -> None:
        if self._busy:
            raise ApplicationError(
                "another change of this case is being recorded; try again in a moment",
                type="Conflict",
            )
        self._accepted(request)

    @workflow.signal(name=KYC_INFO_SUBMITTED.name)
    def info_submitted(self, info: ClientInfo) -> None:
        # Kept only while information is (or is about to be) asked for; the loop takes it.
        if self._state.status in (CaseStatus.CHECKING, CaseStatus.INFO_REQUESTED):
            self._info = info
        else:
            workflow.logger.info("client information ignored: the case is %s", self._state.status)

    # -- the case ------------------------------------------------------------------------------

    @workflow.run
    async def run(self, request: KycCaseInput) -> CaseView:
        started = workflow.now()
        checks = await review.run_kyc_checks(
            RunChecksInput(
                case_id=request.case_id, client_id=request.client_id, at=started, sla=request.sla
            )
        )
        self._state = CaseState(status=checks.status, requires_four_eyes=checks.requires_four_eyes)
        self._info_needed = checks.info_needed
        self._start_waiting(started)

        await self._review()
        await workflow.wait_condition(workflow.all_handlers_finished)

        if self._state.status is CaseStatus.APPROVED:
            await self._mail(MailTemplate.KYC_APPROVED, "approved")
            if request.reason is CaseReason.ONBOARDING:
                await self._open_live_account()
        else:
            await self._mail(MailTemplate.KYC_REJECTED, "rejected", reason=REJECTION_NOTICE)
        return self.state()

    async def _review(self) -> None:
        """Wait for officers and the client until the case is closed, chasing whoever is late."""
        while not self._state.closed:
            if self._info is not None:
                await self._take_info()
                continue
            if (
                self._state.status is CaseStatus.INFO_REQUESTED
                and self._info_mailed_for != self._period
            ):
                self._info_mailed_for = self._period
                await self._mail_info_request()
                continue
            period = self._period
            deadline = self._next_deadline()
            if deadline is None or deadline > workflow.now():
                timeout = None if deadline is None else deadline - workflow.now()
                try:
                    await workflow.wait_condition(
                        partial(self._moved_on, period),
                        timeout=timeout,
                    )
                    continue
                except TimeoutError:
                    pass
            if self._busy:
                # An officer is acting right now: that starts a new period.
                await workflow.wait_condition(lambda: not self._busy)
                continue
            await self._chase()

    def _moved_on(self, period: int) -> bool:
        """Something happened since `period` began: a new period, or the client's answer."""
        return self._period != period or self._info is not None

    def _next_deadline(self) -> datetime | None:
        """When someone is chased next in this waiting period; None: nobody is."""
        sla = self._request.sla
        if self._escalated or self._waiting_since is None:
            return None
        if self._state.status in WAITING_ON_COMPLIANCE:
            return self._waiting_since + sla.review
        if self._state.status is CaseStatus.INFO_REQUESTED:
            # Reminders 1..n, then (one interval after the last) the escalation.
            return self._waiting_since + sla.client_reminder * (self._reminders + 1)
        return None

    async def _chase(self) -> None:
        sla = self._request.sla
        period = self._period
        now = workflow.now()
        if (
            self._state.status is CaseStatus.INFO_REQUESTED
            and self._reminders < sla.client_reminders
        ):
            self._reminders += 1
            sent = self._reminders
            await review.record_kyc_reminder(
                RecordReminderInput(
                    case_id=self._request.case_id,
                    client_id=self._request.client_id,
                    reminders_sent=sent,
                    at=now,
                )
            )
            since = (self._waiting_since or now).date().isoformat()
            await self._mail(
                MailTemplate.KYC_REMINDER,
                f"reminder:{period}:{sent}",
                waiting_for=self._info_needed or "the information we asked for",
                since=since,
            )
            return
        self._escalated = True
        if self._state.status is CaseStatus.INFO_REQUESTED:
            why = (
                f"the client has not provided the information asked for after "
                f"{sla.client_reminders} reminder(s)"
            )
        else:
            why = f"no compliance decision within {_hours(sla.review)} hours"
        await review.escalate_kyc_case(
            EscalateCaseInput(
                case_id=self._request.case_id,
                client_id=self._request.client_id,
                at=now,
                reason=why,
            )
        )

    async def _take_info(self) -> None:
        info, self._info = self._info, None
        if info is None:
            return
        async with self._lock:
            if self._state.status is not CaseStatus.INFO_REQUESTED:
                return  # the case moved on meanwhile (e.g. an officer rejected it)
            self._busy = True
            try:
                after = info_received(self._state)
                now = workflow.now()
                await review.record_kyc_client_info(
                    RecordClientInfoInput(
                        case_id=self._request.case_id,
                        client_id=self._request.client_id,
                        info=info,
                        at=now,
                        due_at=now + self._request.sla.review,
                    )
                )
                self._state = after
                self._start_waiting(now)
            finally:
                self._busy = False

    def _accepted(self, request: OfficerDecision) -> CaseState:
        """The case after `request`, or an ApplicationError saying why it is refused (the
        validator's refusal rejects the update: nothing reaches history or the database)."""
        actor, decision = request.actor, request.decision
        if StaffRole.COMPLIANCE.value not in actor.roles:
            raise ApplicationError(
                "only a compliance officer decides on a KYC case", type="Forbidden"
            )
        if decision.officer_id != str(actor.staff_id):
            raise ApplicationError(
                "the decision's officer is not the staff member sending it", type="InvalidInput"
            )
        try:
            check_decision(self._state, decision)
            return apply_decision(self._state, decision)
        except BackOfficeError as refused:
            raise ApplicationError(refused.detail, type=type(refused).__name__) from None

    def _start_waiting(self, now: datetime) -> None:
        self._period += 1
        self._waiting_since = now
        self._escalated = False
        self._reminders = 0

    def _due(self, status: CaseStatus, now: datetime) -> datetime | None:
        sla = self._request.sla
        if status in WAITING_ON_COMPLIANCE:
            return now + sla.review
        if status is CaseStatus.INFO_REQUESTED:
            return now + sla.client_reminder
        return None

    # -- approval ------------------------------------------------------------------------------

    async def _open_live_account(self) -> None:
        try:
            plan = await review.prepare_live_account(
                PrepareLiveAccountInput(case_id=self._request.case_id)
            )
            if plan.opening is None:
                return
            opening = plan.opening
            account = await ACCOUNT_OPENING.run_as_child(
                opening, id=account_opening_workflow_id(opening.application_id)
            )
        except (ActivityError, ChildWorkflowError) as failure:
            # The case stays approved. A refused application (e.g. ProductRefused) or a failed
            # opening (MT5 user removed, reason kept on the application) is for operations.
            workflow.logger.error(
                "live account for case %s not opened: %s", self._request.case_id, failure.cause
            )
            return
        await self._mail(
            MailTemplate.ACCOUNT_READY,
            "account-ready",
            login=str(account.login),
            server=account.server,
        )

    # -- mail ----------------------------------------------------------------------------------

    async def _mail_info_request(self) -> None:
        await self._mail(
            MailTemplate.KYC_INFO_REQUESTED,
            f"info-requested:{self._state.review_round}:{self._period}",
            missing=self._info_needed or "further information about you",
        )

    async def _mail(self, template: MailTemplate, step: str, **context: str) -> None:
        await send_mail(
            ClientMailInput(
                key=f"{self._id}:{step}",
                client_id=self._request.client_id,
                template=template,
                context=context,
            )
        )


def _hours(span: timedelta) -> str:
    return f"{span.total_seconds() / 3600:g}"


async def start_case_reviews(cases: tuple[review.OpenedCase, ...], sla: KycSla) -> int:
    """From inside a workflow: start the review of each newly opened case as a child that
    outlives its parent (a sweep or a list refresh is done once its cases are open); answers how
    many were started. A case whose review already runs (a retried opening) is left to it."""
    started = 0
    for case in cases:
        try:
            await review.KYC_REVIEW.start_as_child(
                KycCaseInput(
                    case_id=case.case_id, client_id=case.client_id, reason=case.reason, sla=sla
                ),
                id=kyc_case_workflow_id(case.case_id),
                parent_close_policy=workflow.ParentClosePolicy.ABANDON,
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            )
            started += 1
        except WorkflowAlreadyStartedError:
            workflow.logger.info("the review of case %s already runs", case.case_id)
    return started
