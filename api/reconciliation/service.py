"""What finance does with the reconciliation runs: read runs and break cases, back-fill a day,
assign, comment, resolve a case by an adjusting entry two different finance officers agree
on (or reject the entry proposed), resolve it without one, reopen a closed case, sign a run
off, and the run's report (PDF, CSV). Every change writes its audit row in the
request's transaction; services only flush."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, date, datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from api.policy import Principal
from api.reconciliation.schemas import (
    AdjustmentRequest,
    AdjustmentView,
    BackfillAccepted,
    BackfillRequest,
    CaseComment,
    CaseDetail,
    CaseEvent,
    CasePage,
    CaseView,
    RunPage,
    RunView,
    StaffChoice,
)
from api.schemas import decimal_text
from api.temporal import TemporalConnector, start_once
from contracts.reconciliation import (
    RECONCILIATION,
    ReconciliationInput,
    day_to_reconcile,
    reconciliation_workflow_id,
)
from db import audit
from db.ledger import locked_balance, post_entry
from db.models import StaffUser
from db.models.reconciliation import ReconciliationRun
from db.models.reconciliation_cases import (
    ReconciliationCase,
    ReconciliationCaseComment,
    ReconciliationCaseProposal,
    ReconciliationSignoff,
)
from db.queries import reconciliation_cases as queries
from domain.errors import Conflict, InvalidInput, NotFound
from domain.ledger import AccountKind, transfer
from domain.money import Money
from reports.reconciliation import (
    RunReport,
    build_report,
    case_age_days,
    render_csv,
    render_pdf,
)
from settings import Settings
from storage.documents import DocumentMissing, DocumentStore

RUN_REPORT_URL = "/v1/reconciliation/runs/{id}/report.{format}"


def _today() -> date:
    return datetime.now(UTC).date()


def age_days(case: ReconciliationCase, today: date) -> int:
    """Days the case has been open (`reports.reconciliation.case_age_days`)."""
    return case_age_days(case, today)


def proposal_view(proposal: ReconciliationCaseProposal) -> AdjustmentView:
    return AdjustmentView(
        debit_account=proposal.debit_account,
        credit_account=proposal.credit_account,
        amount=decimal_text(proposal.amount_minor, proposal.currency),
        currency=proposal.currency,
        reason=proposal.reason,
        proposed_by=proposal.proposed_by,
        proposed_at=proposal.proposed_at,
        approved_by=proposal.decided_by if proposal.status == "approved" else None,
        entry_key=proposal.entry_key,
        number=proposal.number,
        status=proposal.status,
        decided_by=proposal.decided_by,
        decided_at=proposal.decided_at,
        decision_note=proposal.decision_note,
    )


def case_view(
    case: ReconciliationCase, today: date, proposal: ReconciliationCaseProposal | None
) -> CaseView:
    """The case, with `proposal` its latest adjusting entry (if it has one)."""
    return CaseView(
        id=case.id,
        server=case.server,
        key=case.key,
        type=case.type,
        status=case.status,
        amount=decimal_text(case.amount_minor, case.currency),
        currency=case.currency,
        reference=case.reference,
        login=case.login,
        deal=case.deal,
        provider=case.provider,
        detail=case.detail,
        first_day=case.first_day,
        last_day=case.last_day,
        age_days=age_days(case, today),
        alerted=case.alerted,
        assignee_id=case.assignee_id,
        first_run_id=case.first_run_id,
        last_run_id=case.last_run_id,
        closed_at=case.closed_at,
        resolution=case.resolution,
        resolved_by=case.resolved_by,
        adjustment=proposal_view(proposal) if proposal is not None else None,
        reopened_at=case.reopened_at,
        reopened_by=case.reopened_by,
        reopen_reason=case.reopen_reason,
    )


async def _run_view(
    session: AsyncSession, run: ReconciliationRun, signoff: ReconciliationSignoff | None
) -> RunView:
    return RunView(
        id=run.id,
        server=run.server,
        day=run.day,
        period_start=run.period_start,
        period_end=run.period_end,
        status=run.status,
        matched=run.matched,
        breaks=run.breaks,
        open_cases=await queries.run_cases_open(session, run.id),
        created_at=run.created_at,
        finished_at=run.finished_at,
        signed_off_by=signoff.staff_id if signoff else None,
        signed_off_at=signoff.signed_at if signoff else None,
        sign_off_note=signoff.note if signoff else None,
        report_pdf_url=RUN_REPORT_URL.format(id=run.id, format="pdf"),
        report_csv_url=RUN_REPORT_URL.format(id=run.id, format="csv"),
    )


async def runs(session: AsyncSession, server: str | None, limit: int, offset: int) -> RunPage:
    rows, total = await queries.runs_newest_first(session, server, limit, offset)
    return RunPage(items=[await _run_view(session, r, s) for r, s in rows], total=total)


async def _run_or_404(session: AsyncSession, run_id: uuid.UUID) -> ReconciliationRun:
    run = await session.get(ReconciliationRun, run_id)
    if run is None:
        raise NotFound("no such reconciliation run")
    return run


async def run(session: AsyncSession, run_id: uuid.UUID) -> RunView:
    found = await _run_or_404(session, run_id)
    return await _run_view(session, found, await session.get(ReconciliationSignoff, run_id))


async def backfill(
    session: AsyncSession,
    temporal: TemporalConnector,
    settings: Settings,
    officer: Principal,
    request: BackfillRequest,
) -> BackfillAccepted:
    """Start the reconciliation of `request.day` on `request.server` now (a back-fill, or a
    day run again): a new run of its own, with today's settings."""
    if request.server not in {server.name for server in settings.mt5_fleet()}:
        raise InvalidInput(f"no MT5 server {request.server!r} is configured", field="server")
    rules = settings.reconciliation
    offset = settings.server_clock_offset_of(request.server)
    running = day_to_reconcile(datetime.now(UTC), rules.cut_off, offset, today=True)
    if request.day > running:
        raise InvalidInput(f"{request.day} has not begun on {request.server}", field="day")
    tag = uuid.uuid4().hex[:12]
    workflow_id = reconciliation_workflow_id(request.server, request.day, tag)
    audit.record(
        session,
        officer.actor(),
        audit.Change(
            "reconciliation_run.requested",
            "reconciliation_run",
            workflow_id,
            after={"server": request.server, "day": request.day.isoformat()},
        ),
    )
    await session.flush()
    await start_once(
        temporal,
        RECONCILIATION,
        ReconciliationInput(
            server=request.server,
            day=request.day,
            today=request.day == running,
            cut_off=rules.cut_off,
            server_clock_offset=offset,
            window_seconds=rules.cut_off_window_seconds,
            match_window_seconds=rules.match_window_seconds,
            alert_above=rules.alert_above,
            default_currency=rules.default_currency,
            stuck_after_seconds=int(rules.stuck_after.total_seconds()),
        ),
        workflow_id,
    )
    return BackfillAccepted(workflow_id=workflow_id, server=request.server, day=request.day)


async def sign_off(
    session: AsyncSession,
    officer: Principal,
    run_id: uuid.UUID,
    note: str,
    documents: DocumentStore | None = None,
) -> RunView:
    found = await _run_or_404(session, run_id)
    if found.status != "matched":
        raise Conflict("the run has not finished matching: nothing to sign off yet")
    if await session.get(ReconciliationSignoff, run_id) is not None:
        raise Conflict("the run is signed off already")
    signoff = ReconciliationSignoff(
        run_id=run_id, staff_id=officer.id, note=note, signed_at=datetime.now(UTC)
    )
    session.add(signoff)
    audit.record(
        session,
        officer.actor(),
        audit.Change(
            "reconciliation_run.signed_off",
            "reconciliation_run",
            str(run_id),
            after={
                "breaks": found.breaks,
                "open_cases": await queries.run_cases_open(session, run_id),
            },
            reason=note,
        ),
    )
    await session.flush()
    await store_signed_report(session, documents, found)
    return await _run_view(session, found, signoff)


async def cases(
    session: AsyncSession, wanted: queries.CaseFilter, limit: int, offset: int
) -> CasePage:
    rows, total = await queries.cases_oldest_first(session, wanted, limit, offset)
    today = _today()
    latest = await queries.last_proposals(session, [c.id for c in rows])
    return CasePage(items=[case_view(c, today, latest.get(c.id)) for c in rows], total=total)


async def _case_or_404(
    session: AsyncSession, case_id: uuid.UUID, *, lock: bool = False
) -> ReconciliationCase:
    case = await session.get(ReconciliationCase, case_id, with_for_update=lock)
    if case is None:
        raise NotFound("no such break case")
    return case


async def case_detail(session: AsyncSession, case_id: uuid.UUID) -> CaseDetail:
    case = await _case_or_404(session, case_id)
    comments = await queries.case_comments(session, case_id)
    proposals = await queries.proposals_of(session, case_id)
    trail = await queries.case_trail(session, case_id)
    return CaseDetail(
        **case_view(case, _today(), proposals[-1] if proposals else None).model_dump(),
        comments=[
            CaseComment(staff_id=c.staff_id, body=c.body, created_at=c.created_at) for c in comments
        ],
        proposals=[proposal_view(p) for p in proposals],
        history=[
            CaseEvent(
                at=row.occurred_at,
                action=row.action,
                actor_kind=row.actor_kind,
                actor_id=row.actor_id,
                reason=row.reason,
                before=row.before,
                after=row.after,
            )
            for row in trail
        ],
    )


def _still_open(case: ReconciliationCase) -> None:
    if case.status not in queries.OPEN_STATUSES:
        raise Conflict(f"the case is {case.status}")


async def assign(
    session: AsyncSession, officer: Principal, case_id: uuid.UUID, staff_id: uuid.UUID
) -> CaseDetail:
    case = await _case_or_404(session, case_id, lock=True)
    _still_open(case)
    staff = await session.get(StaffUser, staff_id)
    if staff is None:
        raise InvalidInput("no such staff user", field="staff_id")
    before = str(case.assignee_id) if case.assignee_id else None
    case.assignee_id = staff_id
    audit.record(
        session,
        officer.actor(),
        audit.Change(
            "reconciliation_case.assigned",
            "reconciliation_case",
            str(case_id),
            before={"assignee_id": before},
            after={"assignee_id": str(staff_id)},
        ),
    )
    await session.flush()
    return await case_detail(session, case_id)


async def comment(
    session: AsyncSession, officer: Principal, case_id: uuid.UUID, body: str
) -> CaseDetail:
    await _case_or_404(session, case_id)
    session.add(
        ReconciliationCaseComment(
            case_id=case_id, staff_id=officer.id, body=body, created_at=datetime.now(UTC)
        )
    )
    audit.record(
        session,
        officer.actor(),
        audit.Change(
            "reconciliation_case.commented",
            "reconciliation_case",
            str(case_id),
            after={"body": body},
        ),
    )
    await session.flush()
    return await case_detail(session, case_id)


async def resolve_explained(
    session: AsyncSession, officer: Principal, case_id: uuid.UUID, explanation: str
) -> CaseDetail:
    """Resolve an open case without an adjusting entry: the break is explained and nothing
    is to be booked (a timing difference finance has seen settle, a known dealer correction).
    A case with a proposed entry is refused: that entry is approved, or rejected first."""
    case = await _case_or_404(session, case_id, lock=True)
    if case.status != "open":
        raise Conflict(
            "an adjusting entry is proposed on this case: approve or reject it"
            if case.status == "proposed"
            else f"the case is {case.status}"
        )
    case.status = "resolved"
    case.closed_at = datetime.now(UTC)
    case.resolution = f"explained, nothing booked: {explanation}"
    case.resolved_by = officer.id
    audit.record(
        session,
        officer.actor(),
        audit.Change(
            "reconciliation_case.resolved",
            "reconciliation_case",
            str(case_id),
            before={"status": "open"},
            after={"status": "resolved", "entry": None},
            reason=explanation,
        ),
    )
    await session.flush()
    return await case_detail(session, case_id)


def _check_account(code: str, currency: str, field: str) -> None:
    kind = code.partition(":")[0]
    if kind not in {k.value for k in AccountKind}:
        raise InvalidInput(f"ledger account {code!r} has no known kind", field=field)
    if not code.endswith(f":{currency}"):
        raise InvalidInput(f"ledger account {code!r} does not hold {currency}", field=field)


def adjustment_key(case_id: uuid.UUID, number: int = 1) -> str:
    """The journal key of the case's `number`-th proposal once approved: each posts once, and
    a reopened case's later entry is a new one."""
    base = f"recon-adjustment:{case_id}"
    return base if number == 1 else f"{base}:{number}"


def _proposed(proposal: ReconciliationCaseProposal) -> dict[str, object]:
    """What an audit row says of a proposal."""
    return {
        "number": proposal.number,
        "status": proposal.status,
        "debit_account": proposal.debit_account,
        "credit_account": proposal.credit_account,
        "amount": decimal_text(proposal.amount_minor, proposal.currency),
        "currency": proposal.currency,
        "proposed_by": str(proposal.proposed_by),
    }


async def propose_adjustment(
    session: AsyncSession, officer: Principal, case_id: uuid.UUID, request: AdjustmentRequest
) -> CaseDetail:
    """The first officer's half of the four-eyes: the entry is checked (balanced, exact in its
    currency, known account kinds in that currency) but not posted. A new proposal replaces
    (marks `replaced`) one nobody decided yet; every proposal is kept."""
    case = await _case_or_404(session, case_id, lock=True)
    _still_open(case)
    _check_account(request.debit_account, request.currency, "debit_account")
    _check_account(request.credit_account, request.currency, "credit_account")
    if request.debit_account == request.credit_account:
        raise InvalidInput(
            "debit and credit the same account: nothing moves", field="credit_account"
        )
    amount = Money.of(request.amount, request.currency)
    if not amount.is_exact():
        raise InvalidInput(
            f"{request.amount} is finer than {request.currency} allows", field="amount"
        )
    number = await queries.next_proposal_number(session, case_id)
    transfer(
        adjustment_key(case_id, number),
        request.reason,
        request.debit_account,
        request.credit_account,
        amount,
    )
    now = datetime.now(UTC)
    replaced = await queries.waiting_proposal(session, case_id)
    if replaced is not None:
        replaced.status = "replaced"
        replaced.decided_by = officer.id
        replaced.decided_at = now
        replaced.decision_note = f"replaced by proposal {number}"
        await session.flush()  # one waiting proposal per case: this one first
    proposal = ReconciliationCaseProposal(
        case_id=case_id,
        number=number,
        status="proposed",
        debit_account=request.debit_account,
        credit_account=request.credit_account,
        amount_minor=amount.to_minor_units(),
        currency=request.currency,
        reason=request.reason,
        proposed_by=officer.id,
        proposed_at=now,
    )
    session.add(proposal)
    before_status = case.status
    case.status = "proposed"
    audit.record(
        session,
        officer.actor(),
        audit.Change(
            "reconciliation_case.adjustment_proposed",
            "reconciliation_case",
            str(case_id),
            before={
                "status": before_status,
                "replaced": _proposed(replaced) if replaced is not None else None,
            },
            after={
                "status": "proposed",
                "number": number,
                "debit_account": request.debit_account,
                "credit_account": request.credit_account,
                "amount": str(amount.amount),
                "currency": request.currency,
            },
            reason=request.reason,
        ),
    )
    await session.flush()
    return await case_detail(session, case_id)


async def _waiting_or_409(
    session: AsyncSession, case: ReconciliationCase
) -> ReconciliationCaseProposal:
    waiting = (
        await queries.waiting_proposal(session, case.id) if case.status == "proposed" else None
    )
    if waiting is None:
        last = (await queries.last_proposals(session, [case.id])).get(case.id)
        why = f"proposal {last.number} was {last.status}" if last is not None else "none proposed"
        if case.status not in queries.OPEN_STATUSES:
            why += f", the case is {case.status}"
        raise Conflict(f"no adjusting entry waits for a decision on this case ({why})")
    return waiting


async def approve_adjustment(
    session: AsyncSession, officer: Principal, case_id: uuid.UUID, expected: int | None = None
) -> CaseDetail:
    """The second officer's half: the waiting proposal is posted through the ledger (balanced,
    once by its key) and the case resolved, in this request's transaction. A rejected,
    replaced or lapsed proposal is never approved; `expected` (the proposal the officer read)
    refuses one that another replaced meanwhile."""
    case = await _case_or_404(session, case_id, lock=True)
    proposal = await _waiting_or_409(session, case)
    if expected is not None and proposal.number != expected:
        raise Conflict(
            f"proposal {expected} is no longer the one waiting (proposal {proposal.number} is):"
            " read it before approving"
        )
    if proposal.proposed_by == officer.id:
        raise Conflict("four-eyes: another finance officer must approve the entry proposed")
    key = adjustment_key(case_id, proposal.number)
    entry = transfer(
        key,
        f"reconciliation adjustment {case.key}: {proposal.reason}"[:500],
        proposal.debit_account,
        proposal.credit_account,
        Money.from_minor_units(proposal.amount_minor, proposal.currency),
    )
    debited = proposal.debit_account
    if debited.startswith(f"{AccountKind.CLIENT_WALLET.value}:"):
        # The database refuses a wallet below zero at COMMIT (docs/ledger.md): refuse it here,
        # as a conflict with a reason, under the wallet's lock.
        owed = -(await locked_balance(session, debited, proposal.currency)).to_minor_units()
        if owed < proposal.amount_minor:
            raise Conflict(f"{debited} holds less than the entry debits from it")
    await post_entry(session, entry)
    now = datetime.now(UTC)
    proposal.status = "approved"
    proposal.decided_by = officer.id
    proposal.decided_at = now
    proposal.entry_key = key
    case.status = "resolved"
    case.closed_at = now
    case.resolution = f"adjusting entry {key}"
    case.resolved_by = officer.id
    audit.record(
        session,
        officer.actor(),
        audit.Change(
            "reconciliation_case.adjustment_approved",
            "reconciliation_case",
            str(case_id),
            before={"status": "proposed", "number": proposal.number},
            after={"status": "resolved", "number": proposal.number, "entry_key": key},
        ),
    )
    await session.flush()
    return await case_detail(session, case_id)


async def reject_adjustment(
    session: AsyncSession, officer: Principal, case_id: uuid.UUID, reason: str
) -> CaseDetail:
    """The waiting proposal rejected (withdrawn, when by its proposer): kept, marked
    `rejected` with the reason, never posted nor approvable; the case is open again, for a new
    proposal or a resolution without an entry."""
    case = await _case_or_404(session, case_id, lock=True)
    proposal = await _waiting_or_409(session, case)
    before = _proposed(proposal)
    proposal.status = "rejected"
    proposal.decided_by = officer.id
    proposal.decided_at = datetime.now(UTC)
    proposal.decision_note = reason
    case.status = "open"
    audit.record(
        session,
        officer.actor(),
        audit.Change(
            "reconciliation_case.adjustment_rejected",
            "reconciliation_case",
            str(case_id),
            before={"status": "proposed", "proposal": before},
            after={
                "status": "open",
                "proposal": {**before, "status": "rejected"},
                "withdrawn": proposal.proposed_by == officer.id,
            },
            reason=reason,
        ),
    )
    await session.flush()
    return await case_detail(session, case_id)


async def reopen(
    session: AsyncSession, officer: Principal, case_id: uuid.UUID, reason: str
) -> CaseDetail:
    """A closed case (resolved with or without an entry, or auto-closed) open again, to be
    worked like any open case. Its resolution leaves the case (its audit rows keep it); an
    entry posted for it stays posted (undoing it is a new proposal, the other way round)."""
    case = await _case_or_404(session, case_id, lock=True)
    if case.status in queries.OPEN_STATUSES:
        raise Conflict(f"the case is {case.status}: it is not closed")
    other = await queries.other_open_case(session, case)
    if other is not None:
        raise Conflict(
            f"case {other.id} is open on the same break key (a later run opened it): work that one"
        )
    now = datetime.now(UTC)
    posted = [p.entry_key for p in await queries.proposals_of(session, case_id) if p.entry_key]
    before = {
        "status": case.status,
        "closed_at": case.closed_at.isoformat() if case.closed_at else None,
        "resolution": case.resolution,
        "resolved_by": str(case.resolved_by) if case.resolved_by else None,
    }
    lapsed = await queries.lapse_waiting_proposals(
        session, [case_id], now, "the case was closed before anyone approved it"
    )
    case.status = "open"
    case.closed_at = None
    case.resolution = None
    case.resolved_by = None
    case.reopened_at = now
    case.reopened_by = officer.id
    case.reopen_reason = reason
    audit.record(
        session,
        officer.actor(),
        audit.Change(
            "reconciliation_case.reopened",
            "reconciliation_case",
            str(case_id),
            before=before,
            after={"status": "open", "entries_kept": posted, "proposals_lapsed": lapsed},
            reason=reason,
        ),
    )
    await session.flush()
    return await case_detail(session, case_id)


# -- the run's report ----------------------------------------------------------------------------

REPORT_KEYS = "reconciliation/runs/{id}/report{suffix}.{format}"


def report_key(run_id: uuid.UUID, extension: str, *, signed: bool = False) -> str:
    """Where a run's report is stored: at the end of the run, and again (signed) at sign-off."""
    return REPORT_KEYS.format(id=run_id, suffix="-signed" if signed else "", format=extension)


async def run_report(session: AsyncSession, run_id: uuid.UUID) -> RunReport:
    """The run's report as it stands now."""
    found = await _run_or_404(session, run_id)
    inputs = await queries.report_inputs(session, found)
    return build_report(
        inputs.run,
        inputs.breaks,
        inputs.cases,
        money=decimal_text,
        signed_off=inputs.signed_off,
        deals=inputs.deals,
        settlement_rows=inputs.settlement_rows,
        balances=inputs.balances,
        now=datetime.now(UTC),
    )


async def _stored(documents: DocumentStore | None, key: str | None) -> bytes | None:
    if documents is None or key is None:
        return None
    try:
        return await documents.get(key)
    except DocumentMissing:
        return None


async def run_report_pdf(
    session: AsyncSession, run_id: uuid.UUID, documents: DocumentStore | None = None
) -> bytes:
    """The report stored with the run (at its end, or at its sign-off); rendered now for a run
    that has none stored (a run of the code before, or a worker without a document store)."""
    found = await _run_or_404(session, run_id)
    stored = await _stored(documents, found.report_pdf_key)
    if stored is not None:
        return stored
    # WeasyPrint's layout is CPU-bound: off the event loop.
    return await asyncio.to_thread(render_pdf, await run_report(session, run_id))


async def run_report_csv(
    session: AsyncSession, run_id: uuid.UUID, documents: DocumentStore | None = None
) -> str:
    found = await _run_or_404(session, run_id)
    stored = await _stored(documents, found.report_csv_key)
    if stored is not None:
        return stored.decode()
    return render_csv(await run_report(session, run_id))


async def store_signed_report(
    session: AsyncSession, documents: DocumentStore | None, run: ReconciliationRun
) -> None:
    """The signed-off report stored and made the run's report (write-once keys: a sign-off
    happens once per run)."""
    if documents is None:
        return
    report = await run_report(session, run.id)
    pdf_key = report_key(run.id, "pdf", signed=True)
    csv_key = report_key(run.id, "csv", signed=True)
    if not await documents.exists(pdf_key):
        await documents.put(pdf_key, await asyncio.to_thread(render_pdf, report))
    if not await documents.exists(csv_key):
        await documents.put(csv_key, render_csv(report).encode())
    run.report_pdf_key, run.report_csv_key = pdf_key, csv_key


def report_filename(run: RunView | ReconciliationRun, extension: str) -> str:
    return f"reconciliation-{run.server}-{run.day.isoformat()}.{extension}"


async def finance_staff(session: AsyncSession) -> list[StaffChoice]:
    """Staff a case can be given to: finance officers and admins, by name."""
    rows = await session.scalars(
        select(StaffUser)
        .where(StaffUser.roles.overlap(["finance", "admin"]))
        .order_by(StaffUser.full_name)
    )
    return [StaffChoice(id=s.id, name=s.full_name) for s in rows]


async def staff_names(session: AsyncSession, ids: list[uuid.UUID | None]) -> dict[str, str]:
    wanted = [i for i in ids if i is not None]
    if not wanted:
        return {}
    rows = await session.execute(
        select(StaffUser.id, StaffUser.full_name).where(StaffUser.id.in_(wanted))
    )
    return {str(i): name for i, name in rows.tuples()}
