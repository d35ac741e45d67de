"""Break cases as finance works them, through the API: cases filed by the run's step (a timing
case auto-closed by the next run that clears it, a case carried from run to run, an alert at
the threshold), listed with their age, assigned, commented, resolved by an adjusting entry two
different finance officers agree on (posted, balanced, through the ledger), the run signed off
once, its report as PDF and CSV, and a back-fill started; each change with its audit row."""

from __future__ import annotations

import csv
import io
import uuid
from datetime import UTC, date, datetime, time, timedelta

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from activities.reconciliation import ReconciliationSteps
from contracts.reconciliation import FileCases, period_bounds
from db.ledger import balance
from db.models import AuditEntry
from db.models.reconciliation import ReconciliationBreak, ReconciliationRun
from domain.roles import StaffRole
from tests.api.conftest import FakeTemporal, people, temporal  # noqa: F401 (fixtures)
from tests.support.people import People

SERVER = "demo"
TIMING, LOST = "mt5:5000001:BF1:in", "mt5:5000001:BF2:in"


async def seed_run(
    sessions: async_sessionmaker[AsyncSession], day: date, breaks: list[tuple[str, str, int]]
) -> uuid.UUID:
    run_id = uuid.uuid4()
    start, end = period_bounds(day, time(0), 0)
    async with sessions.begin() as session:
        session.add(
            ReconciliationRun(
                id=run_id,
                server=SERVER,
                day=day,
                period_start=start,
                period_end=end,
                window_seconds=300,
                match_window_seconds=3600,
                status="matched",
                matched=10,
                breaks=len(breaks),
                finished_at=end,
            )
        )
        await session.flush()
        for kind, key, amount in breaks:
            session.add(
                ReconciliationBreak(
                    run_id=run_id,
                    type=kind,
                    key=key,
                    amount_minor=amount,
                    currency="USD",
                    reference=key.split(":")[2],
                    login=5000001,
                    found_in="mt5",
                    missing_from="ledger",
                    detail=f"{kind} test",
                )
            )
    return run_id


async def audited(
    sessions: async_sessionmaker[AsyncSession], action: str, entity_id: str
) -> AuditEntry:
    async with sessions() as session:
        [row] = list(
            await session.scalars(
                select(AuditEntry).where(
                    AuditEntry.action == action, AuditEntry.entity_id == entity_id
                )
            )
        )
    return row


async def test_finance_works_a_case_from_the_run_to_its_adjusting_entry(
    api: httpx.AsyncClient,
    people: People,  # noqa: F811
    sessions: async_sessionmaker[AsyncSession],
    temporal: FakeTemporal,  # noqa: F811
) -> None:
    today = datetime.now(UTC).date()
    first_day, second_day = today - timedelta(days=3), today - timedelta(days=2)
    steps = ReconciliationSteps(sessions, {})
    first = await seed_run(
        sessions, first_day, [("cut_off_timing", TIMING, 1000), ("missing_in_ledger", LOST, 7500)]
    )
    filed = await steps.file_reconciliation_cases(FileCases(run_id=first, alert_above=50))
    assert (filed.opened, filed.alerted) == (2, 1)  # 75.00 >= 50, 10.00 is not
    # The next day: the timing break's other side arrived (cleared), the lost deposit is still lost.
    second = await seed_run(sessions, second_day, [("missing_in_ledger", LOST, 7500)])
    filed = await steps.file_reconciliation_cases(
        FileCases(run_id=second, cleared=[TIMING], alert_above=50)
    )
    assert (filed.opened, filed.carried, filed.auto_closed, filed.alerted) == (0, 1, 1, 0)

    finance, second_officer = (
        await people.staff(StaffRole.FINANCE),
        await people.staff(StaffRole.FINANCE),
    )
    auditor = await people.staff(StaffRole.AUDITOR)

    runs = (await api.get("/v1/reconciliation/runs", headers=auditor.headers)).json()
    assert [r["id"] for r in runs["items"]] == [str(second), str(first)]
    assert runs["items"][0]["open_cases"] == 1 and runs["items"][0]["signed_off_at"] is None

    listed = (await api.get("/v1/reconciliation/cases", headers=auditor.headers)).json()
    [case] = listed["items"]
    assert (case["key"], case["status"], case["amount"], case["currency"]) == (
        LOST,
        "open",
        "75.00",
        "USD",
    )
    assert (case["age_days"], case["alerted"], case["last_run_id"]) == (3, True, str(second))
    closed = await api.get(
        "/v1/reconciliation/cases", params={"status": "auto_closed"}, headers=auditor.headers
    )
    [timing] = closed.json()["items"]
    assert (timing["key"], timing["type"], timing["age_days"]) == (TIMING, "cut_off_timing", 3)
    await audited(sessions, "reconciliation_case.auto_closed", timing["id"])
    by_type = await api.get(
        "/v1/reconciliation/cases",
        params={"status": "", "type": "cut_off_timing"},
        headers=auditor.headers,
    )
    assert by_type.status_code == 422  # "" is no status; filters are checked

    case_url = f"/v1/reconciliation/cases/{case['id']}"
    assert (
        await api.post(
            f"{case_url}/assign", json={"staff_id": str(finance.id)}, headers=auditor.headers
        )
    ).status_code == 403
    assigned = await api.post(
        f"{case_url}/assign", json={"staff_id": str(second_officer.id)}, headers=finance.headers
    )
    assert assigned.status_code == 200 and assigned.json()["assignee_id"] == str(second_officer.id)
    commented = await api.post(
        f"{case_url}/comments",
        json={"body": "dealer confirms a manual deposit"},
        headers=finance.headers,
    )
    assert commented.status_code == 201
    assert [c["body"] for c in commented.json()["comments"]] == ["dealer confirms a manual deposit"]

    entry = {  # money MT5 has and the books lack: the mirror credited, as into_mt5 books it
        "debit_account": "suspense:reconciliation:USD",
        "credit_account": f"mt5:{SERVER}-5000001:USD",
        "amount": "75.00",
        "currency": "USD",
        "reason": "book the dealer's manual deposit",
    }
    bad = await api.post(
        f"{case_url}/adjustment",
        json={**entry, "credit_account": "nowhere:x:USD"},
        headers=finance.headers,
    )
    assert bad.status_code == 422
    proposed = await api.post(f"{case_url}/adjustment", json=entry, headers=finance.headers)
    assert proposed.status_code == 200 and proposed.json()["status"] == "proposed"
    # Four-eyes: the officer who proposed it cannot approve it.
    same = await api.post(f"{case_url}/adjustment/approve", headers=finance.headers)
    assert same.status_code == 409
    approved = await api.post(f"{case_url}/adjustment/approve", headers=second_officer.headers)
    assert approved.status_code == 200
    resolved = approved.json()
    assert resolved["status"] == "resolved"
    assert resolved["adjustment"]["approved_by"] == str(second_officer.id)
    async with sessions() as session:
        mirror = await balance(session, f"mt5:{SERVER}-5000001:USD", "USD")
        suspense = await balance(session, "suspense:reconciliation:USD", "USD")
    assert (str(mirror.amount), str(suspense.amount)) == ("-75.00", "75.00")
    again = await api.post(f"{case_url}/adjustment/approve", headers=second_officer.headers)
    assert again.status_code == 409

    for action in (
        "reconciliation_case.assigned",
        "reconciliation_case.commented",
        "reconciliation_case.adjustment_proposed",
        "reconciliation_case.adjustment_approved",
    ):
        row = await audited(sessions, action, case["id"])
        assert row.actor_kind == "staff" and row.request_id and row.after

    signed = await api.post(
        f"/v1/reconciliation/runs/{second}/sign-off",
        json={"note": "reviewed, the lost deposit booked"},
        headers=finance.headers,
    )
    assert signed.status_code == 200 and signed.json()["signed_off_by"] == str(finance.id)
    twice = await api.post(
        f"/v1/reconciliation/runs/{second}/sign-off",
        json={"note": "again"},
        headers=second_officer.headers,
    )
    assert twice.status_code == 409
    await audited(sessions, "reconciliation_run.signed_off", str(second))

    pdf = await api.get(f"/v1/reconciliation/runs/{second}/report.pdf", headers=auditor.headers)
    assert pdf.headers["content-type"] == "application/pdf" and pdf.content.startswith(b"%PDF")
    report = await api.get(f"/v1/reconciliation/runs/{first}/report.csv", headers=auditor.headers)
    rows = list(csv.DictReader(io.StringIO(report.text)))
    assert [(r["type"], r["key"], r["amount"], r["case_status"]) for r in rows] == [
        ("cut_off_timing", TIMING, "10.00", "auto_closed"),
        ("missing_in_ledger", LOST, "75.00", "resolved"),
    ]
    missing = await api.get(f"/v1/reconciliation/runs/{uuid.uuid4()}", headers=auditor.headers)
    assert missing.status_code == 404


async def test_a_past_day_is_back_filled_through_the_workflow(
    api: httpx.AsyncClient,
    people: People,  # noqa: F811
    sessions: async_sessionmaker[AsyncSession],
    temporal: FakeTemporal,  # noqa: F811
) -> None:
    finance = await people.staff(StaffRole.FINANCE)
    day = datetime.now(UTC).date() - timedelta(days=30)
    started = await api.post(
        "/v1/reconciliation/runs",
        json={"server": SERVER, "day": day.isoformat()},
        headers=finance.headers,
    )
    assert started.status_code == 202
    workflow_id = started.json()["workflow_id"]
    [(name, argument, started_id)] = temporal.started
    assert name == "Reconciliation"
    assert (started_id, argument.server, argument.day, argument.today) == (
        workflow_id,
        SERVER,
        day,
        False,
    )
    await audited(sessions, "reconciliation_run.requested", workflow_id)
    for refused in (
        {"server": "nowhere", "day": day.isoformat()},
        {"server": SERVER, "day": (day + timedelta(days=60)).isoformat()},
    ):
        answer = await api.post("/v1/reconciliation/runs", json=refused, headers=finance.headers)
        assert answer.status_code == 422
    temporal.down = True
    down = await api.post(
        "/v1/reconciliation/runs",
        json={"server": SERVER, "day": day.isoformat()},
        headers=finance.headers,
    )
    assert down.status_code == 503


async def test_the_console_pages_and_forms_act_through_the_same_service(
    api: httpx.AsyncClient,
    people: People,  # noqa: F811
    sessions: async_sessionmaker[AsyncSession],
    temporal: FakeTemporal,  # noqa: F811
) -> None:
    day = datetime.now(UTC).date() - timedelta(days=1)
    run_id = await seed_run(
        sessions, day, [("missing_in_ledger", LOST, 7500), ("cut_off_timing", TIMING, 1000)]
    )
    await ReconciliationSteps(sessions, {}).file_reconciliation_cases(FileCases(run_id=run_id))
    finance, second_officer = (
        await people.staff(StaffRole.FINANCE),
        await people.staff(StaffRole.FINANCE),
    )
    runs = await api.get("/console/reconciliation", headers=finance.headers)
    assert runs.status_code == 200 and str(run_id) in runs.text
    run_page = await api.get(f"/console/reconciliation/runs/{run_id}", headers=finance.headers)
    assert run_page.status_code == 200 and LOST in run_page.text
    listed = await api.get(
        "/console/reconciliation/cases",
        params={"type": "missing_in_ledger"},
        headers=finance.headers,
    )
    assert listed.status_code == 200 and LOST in listed.text
    items = (await api.get("/v1/reconciliation/cases", headers=finance.headers)).json()["items"]
    case, timing = (next(c for c in items if c["key"] == key) for key in (LOST, TIMING))
    page = f"/console/reconciliation/cases/{case['id']}"
    shown = await api.get(page, headers=finance.headers)
    assert shown.status_code == 200 and 'id="resolve-form"' in shown.text  # an open case

    # Resolved without an entry through the case page's form: explained, audited.
    explained = f"/console/reconciliation/cases/{timing['id']}/resolve"
    short = await api.post(explained, data={"note": "x"}, headers=finance.headers)
    assert "error=" in short.headers["location"]
    done = await api.post(explained, data={"note": "settled the next day"}, headers=finance.headers)
    assert done.status_code == 303 and "notice=" in done.headers["location"]
    await audited(sessions, "reconciliation_case.resolved", timing["id"])
    after = await api.get(f"/console/reconciliation/cases/{timing['id']}", headers=finance.headers)
    assert "explained, nothing booked: settled the next day" in after.text
    assert 'id="resolve-form"' not in after.text

    forms: list[tuple[str, dict[str, str], str]] = [
        (f"{page}/assign", {"staff_id": str(second_officer.id)}, "reconciliation_case.assigned"),
        (f"{page}/comment", {"body": "looking at it"}, "reconciliation_case.commented"),
        (
            f"{page}/adjustment",
            {
                "debit_account": "suspense:reconciliation:USD",
                "credit_account": f"mt5:{SERVER}-5000001:USD",
                "amount": "75.00",
                "currency": "USD",
                "reason": "book it",
            },
            "reconciliation_case.adjustment_proposed",
        ),
    ]
    for url, form, action in forms:
        answer = await api.post(url, data=form, headers=finance.headers)
        assert answer.status_code == 303 and "notice=" in answer.headers["location"], url
        await audited(sessions, action, case["id"])
    refused = await api.post(f"{page}/approve", data={}, headers=finance.headers)
    assert "error=" in refused.headers["location"]  # four-eyes
    approved = await api.post(f"{page}/approve", data={}, headers=second_officer.headers)
    assert "notice=" in approved.headers["location"]
    await audited(sessions, "reconciliation_case.adjustment_approved", case["id"])
    signed = await api.post(
        f"/console/reconciliation/runs/{run_id}/sign-off",
        data={"note": "all reviewed"},
        headers=finance.headers,
    )
    assert "notice=" in signed.headers["location"]
    await audited(sessions, "reconciliation_run.signed_off", str(run_id))
    started = await api.post(
        "/console/reconciliation/runs",
        data={"server": SERVER, "day": day.isoformat()},
        headers=finance.headers,
    )
    assert "notice=" in started.headers["location"] and len(temporal.started) == 1
    pdf = await api.get(
        f"/console/reconciliation/runs/{run_id}/report.pdf", headers=finance.headers
    )
    assert pdf.content.startswith(b"%PDF")
    report = await api.get(
        f"/console/reconciliation/runs/{run_id}/report.csv", headers=finance.headers
    )
    assert LOST in report.text
