"""A proposed adjusting entry rejected (withdrawn) and a closed case reopened, through the API
and the console: the rejected proposal is kept and can never be approved (nor changed in the
database), a new one is proposed and approved by another officer; a case resolved without an
entry, one resolved by an entry (not reversed by reopening: the reversal is a new proposal)
and an auto-closed one (its waiting proposal lapsed) are reopened, each with its history and
audit rows (before/after); refusals are 409s with a reason, 404, 422 and 403."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from activities.reconciliation import ReconciliationSteps
from contracts.reconciliation import FileCases
from db.ledger import balance
from db.models.reconciliation_cases import ReconciliationCaseProposal
from domain.roles import StaffRole
from tests.api.conftest import FakeTemporal, people, temporal  # noqa: F401 (fixtures)
from tests.reconciliation.test_cases_api import LOST, SERVER, TIMING, audited, seed_run
from tests.support.people import People, Person

MIRROR, SUSPENSE = f"mt5:{SERVER}-5000001:USD", "suspense:reconciliation:USD"
ENTRY = {
    "debit_account": SUSPENSE,
    "credit_account": MIRROR,
    "amount": "75.00",
    "currency": "USD",
    "reason": "book the dealer's manual deposit",
}


async def balances(sessions: async_sessionmaker[AsyncSession]) -> tuple[str, str]:
    async with sessions() as session:
        mirror = await balance(session, MIRROR, "USD")
        suspense = await balance(session, SUSPENSE, "USD")
    return str(mirror.amount), str(suspense.amount)


async def case_of(
    api: httpx.AsyncClient, headers: dict[str, str], key: str, status: str = "unresolved"
) -> dict[str, Any]:
    listed = await api.get("/v1/reconciliation/cases", params={"status": status}, headers=headers)
    return next(c for c in listed.json()["items"] if c["key"] == key)


async def lost_deposit_case(
    api: httpx.AsyncClient, staff: People, sessions: async_sessionmaker[AsyncSession]
) -> tuple[dict[str, Any], Person, Person]:
    """Yesterday's run with one lost deposit filed as an open case, and two finance officers."""
    run = await seed_run(
        sessions, datetime.now(UTC).date() - timedelta(days=1), [("missing_in_ledger", LOST, 7500)]
    )
    await ReconciliationSteps(sessions, {}).file_reconciliation_cases(FileCases(run_id=run))
    first, second = await staff.staff(StaffRole.FINANCE), await staff.staff(StaffRole.FINANCE)
    return await case_of(api, first.headers, LOST), first, second


async def test_a_rejected_entry_is_kept_never_approved_and_a_new_one_is(
    api: httpx.AsyncClient,
    people: People,  # noqa: F811
    sessions: async_sessionmaker[AsyncSession],
    temporal: FakeTemporal,  # noqa: F811
) -> None:
    case, first, second = await lost_deposit_case(api, people, sessions)
    auditor = await people.staff(StaffRole.AUDITOR)
    url = f"/v1/reconciliation/cases/{case['id']}"
    why = {"reason": "wrong account: the deposit went to the wallet"}

    nothing = await api.post(f"{url}/adjustment/reject", json=why, headers=first.headers)
    assert nothing.status_code == 409 and "no adjusting entry waits" in nothing.json()["detail"]
    assert (await api.post(f"{url}/adjustment", json=ENTRY, headers=first.headers)).is_success
    refused = await api.post(f"{url}/adjustment/reject", json=why, headers=auditor.headers)
    assert refused.status_code == 403
    short = await api.post(f"{url}/adjustment/reject", json={"reason": "x"}, headers=first.headers)
    assert short.status_code == 422
    unknown = f"/v1/reconciliation/cases/{uuid.uuid4()}/adjustment/reject"
    assert (await api.post(unknown, json=why, headers=first.headers)).status_code == 404

    # The second officer rejects it: kept, marked rejected, the case open again.
    rejected = await api.post(f"{url}/adjustment/reject", json=why, headers=second.headers)
    assert rejected.status_code == 200, rejected.text
    body = rejected.json()
    assert body["status"] == "open"
    adjustment = body["adjustment"]
    assert (adjustment["number"], adjustment["status"], adjustment["decision_note"]) == (
        1,
        "rejected",
        why["reason"],
    )
    assert adjustment["decided_by"] == str(second.id) and adjustment["approved_by"] is None
    row = await audited(sessions, "reconciliation_case.adjustment_rejected", case["id"])
    assert row.actor_id == str(second.id) and row.reason == why["reason"]
    assert row.before and row.before["status"] == "proposed"
    assert row.before["proposal"]["amount"] == "75.00"
    assert row.after == {
        "status": "open",
        "proposal": {**row.before["proposal"], "status": "rejected"},
        "withdrawn": False,
    }
    # A rejected proposal is never approved: not through the API, not in the database.
    for who in (first, second):
        again = await api.post(f"{url}/adjustment/approve", headers=who.headers)
        assert again.status_code == 409 and "proposal 1 was rejected" in again.json()["detail"]
    async with sessions.begin() as session:
        stored = await session.scalar(
            select(ReconciliationCaseProposal).where(
                ReconciliationCaseProposal.case_id == uuid.UUID(case["id"])
            )
        )
        assert stored is not None and stored.status == "rejected"
        with pytest.raises(DBAPIError, match="final"):
            await session.execute(
                text("UPDATE reconciliation_case_proposals SET status = 'approved' WHERE id = :id"),
                {"id": stored.id},
            )
    assert await balances(sessions) == ("0.00", "0.00")

    # Proposed anew (2), withdrawn by its proposer, proposed again (3) and replaced (4) by the
    # other officer; the first approves 4, not a proposal they have not read.
    assert (await api.post(f"{url}/adjustment", json=ENTRY, headers=first.headers)).is_success
    withdrawn = await api.post(f"{url}/adjustment/reject", json=why, headers=first.headers)
    assert withdrawn.json()["adjustment"]["status"] == "rejected"
    rejections = [
        e for e in withdrawn.json()["history"] if e["action"].endswith(".adjustment_rejected")
    ]
    assert [(e["actor_id"], e["after"]["withdrawn"]) for e in rejections] == [
        (str(second.id), False),
        (str(first.id), True),
    ]
    assert (await api.post(f"{url}/adjustment", json=ENTRY, headers=first.headers)).is_success
    replaced = await api.post(f"{url}/adjustment", json=ENTRY, headers=second.headers)
    assert replaced.json()["adjustment"]["number"] == 4
    stale = await api.post(f"{url}/adjustment/approve", json={"proposal": 3}, headers=first.headers)
    assert stale.status_code == 409 and "proposal 4" in stale.json()["detail"]
    own = await api.post(f"{url}/adjustment/approve", json={"proposal": 4}, headers=second.headers)
    assert own.status_code == 409  # four-eyes still holds
    approved = await api.post(
        f"{url}/adjustment/approve", json={"proposal": 4}, headers=first.headers
    )
    assert approved.status_code == 200, approved.text
    done = approved.json()
    assert (done["status"], done["resolved_by"]) == ("resolved", str(first.id))
    assert done["adjustment"]["entry_key"] == f"recon-adjustment:{case['id']}:4"
    assert [(p["number"], p["status"]) for p in done["proposals"]] == [
        (1, "rejected"),
        (2, "rejected"),
        (3, "replaced"),
        (4, "approved"),
    ]
    assert [e["action"] for e in done["history"]] == [
        "reconciliation_case.opened",
        *["reconciliation_case.adjustment_proposed", "reconciliation_case.adjustment_rejected"] * 2,
        "reconciliation_case.adjustment_proposed",
        "reconciliation_case.adjustment_proposed",
        "reconciliation_case.adjustment_approved",
    ]
    assert done["history"][-2]["before"]["replaced"]["number"] == 3
    assert await balances(sessions) == ("-75.00", "75.00")


async def test_closed_cases_are_reopened_with_their_history_and_entries_kept(
    api: httpx.AsyncClient,
    people: People,  # noqa: F811
    sessions: async_sessionmaker[AsyncSession],
    temporal: FakeTemporal,  # noqa: F811
) -> None:
    today = datetime.now(UTC).date()
    steps = ReconciliationSteps(sessions, {})
    first_run = await seed_run(
        sessions,
        today - timedelta(days=3),
        [("missing_in_ledger", LOST, 7500), ("cut_off_timing", TIMING, 1000)],
    )
    await steps.file_reconciliation_cases(FileCases(run_id=first_run))
    finance, second = await people.staff(StaffRole.FINANCE), await people.staff(StaffRole.FINANCE)
    auditor = await people.staff(StaffRole.AUDITOR)
    lost = await case_of(api, finance.headers, LOST)
    url = f"/v1/reconciliation/cases/{lost['id']}"
    why = {"reason": "the dealer says the deposit was never made"}

    # Resolved without an entry, reopened, resolved again.
    opened = await api.post(f"{url}/reopen", json=why, headers=finance.headers)
    assert opened.status_code == 409 and "not closed" in opened.json()["detail"]
    explained = {"explanation": "a test deposit, reversed on MT5"}
    assert (await api.post(f"{url}/resolve", json=explained, headers=finance.headers)).is_success
    assert (await api.post(f"{url}/reopen", json=why, headers=auditor.headers)).status_code == 403
    short = await api.post(f"{url}/reopen", json={"reason": "  x "}, headers=finance.headers)
    assert short.status_code == 422
    unknown = f"/v1/reconciliation/cases/{uuid.uuid4()}/reopen"
    assert (await api.post(unknown, json=why, headers=finance.headers)).status_code == 404
    reopened = await api.post(f"{url}/reopen", json=why, headers=second.headers)
    assert reopened.status_code == 200, reopened.text
    case = reopened.json()
    assert (case["status"], case["resolution"], case["closed_at"], case["resolved_by"]) == (
        "open",
        None,
        None,
        None,
    )
    assert (case["reopened_by"], case["reopen_reason"]) == (str(second.id), why["reason"])
    resolved_event = next(e for e in case["history"] if e["action"].endswith(".resolved"))
    assert resolved_event["reason"] == explained["explanation"]
    row = await audited(sessions, "reconciliation_case.reopened", lost["id"])
    assert row.actor_id == str(second.id) and row.reason == why["reason"]
    assert row.before and row.before["status"] == "resolved"
    assert row.before["resolution"] == "explained, nothing booked: a test deposit, reversed on MT5"
    assert row.before["resolved_by"] == str(finance.id)
    assert row.after == {"status": "open", "entries_kept": [], "proposals_lapsed": 0}
    twice = await api.post(f"{url}/reopen", json=why, headers=second.headers)
    assert twice.status_code == 409
    again = await api.post(
        f"{url}/resolve", json={"explanation": "confirmed: never made"}, headers=finance.headers
    )
    assert again.status_code == 200 and again.json()["status"] == "resolved"

    # Resolved by an approved entry, reopened: the entry stays posted; undoing it is a new
    # proposal (the opposite entry), posted under a key of its own.
    timing = await case_of(api, finance.headers, TIMING)
    turl = f"/v1/reconciliation/cases/{timing['id']}"
    entry = {**ENTRY, "amount": "10.00"}
    assert (await api.post(f"{turl}/adjustment", json=entry, headers=finance.headers)).is_success
    assert (await api.post(f"{turl}/adjustment/approve", headers=second.headers)).is_success
    assert await balances(sessions) == ("-10.00", "10.00")
    back = await api.post(f"{turl}/reopen", json=why, headers=finance.headers)
    assert back.status_code == 200 and back.json()["status"] == "open"
    assert back.json()["adjustment"]["status"] == "approved"  # still shown, still posted
    assert await balances(sessions) == ("-10.00", "10.00")
    row = await audited(sessions, "reconciliation_case.reopened", timing["id"])
    assert (
        row.before
        and row.before["resolution"] == f"adjusting entry recon-adjustment:{timing['id']}"
    )
    assert row.after and row.after["entries_kept"] == [f"recon-adjustment:{timing['id']}"]
    reverse = {**entry, "debit_account": MIRROR, "credit_account": SUSPENSE, "reason": "undo"}
    assert (await api.post(f"{turl}/adjustment", json=reverse, headers=second.headers)).is_success
    undone = await api.post(f"{turl}/adjustment/approve", headers=finance.headers)
    assert undone.json()["adjustment"]["entry_key"] == f"recon-adjustment:{timing['id']}:2"
    assert await balances(sessions) == ("0.00", "0.00")

    # Auto-closed by a later run with an entry waiting: the entry lapses (never approvable),
    # the case is reopened; and a closed case whose key a later run opened anew stays closed.
    key = "mt5:5000001:BF9:in"
    third = await seed_run(sessions, today - timedelta(days=2), [("cut_off_timing", key, 500)])
    await steps.file_reconciliation_cases(FileCases(run_id=third))
    auto = await case_of(api, finance.headers, key)
    aurl = f"/v1/reconciliation/cases/{auto['id']}"
    assert (
        await api.post(
            f"{aurl}/adjustment", json={**entry, "amount": "5.00"}, headers=second.headers
        )
    ).is_success
    fourth = await seed_run(sessions, today - timedelta(days=1), [])
    await steps.file_reconciliation_cases(FileCases(run_id=fourth, cleared=[key]))
    closed = (await api.get(aurl, headers=finance.headers)).json()
    assert (closed["status"], closed["adjustment"]["status"]) == ("auto_closed", "lapsed")
    assert (
        await api.post(f"{aurl}/adjustment/approve", headers=finance.headers)
    ).status_code == 409
    reopened = await api.post(f"{aurl}/reopen", json=why, headers=finance.headers)
    assert reopened.json()["status"] == "open"
    assert (
        await api.post(f"{aurl}/adjustment/approve", headers=finance.headers)
    ).status_code == 409
    assert (
        await api.post(
            f"{aurl}/resolve", json={"explanation": "it cleared"}, headers=finance.headers
        )
    ).is_success
    fifth = await seed_run(sessions, today, [("cut_off_timing", key, 500)])
    await steps.file_reconciliation_cases(FileCases(run_id=fifth))
    blocked = await api.post(f"{aurl}/reopen", json=why, headers=finance.headers)
    assert blocked.status_code == 409 and "open on the same break key" in blocked.json()["detail"]


async def test_the_console_rejects_and_reopens_through_the_same_service(
    api: httpx.AsyncClient,
    people: People,  # noqa: F811
    sessions: async_sessionmaker[AsyncSession],
    temporal: FakeTemporal,  # noqa: F811
) -> None:
    case, finance, second = await lost_deposit_case(api, people, sessions)
    page = f"/console/reconciliation/cases/{case['id']}"
    proposed = await api.post(f"{page}/adjustment", data=ENTRY, headers=finance.headers)
    assert "notice=" in proposed.headers["location"]
    shown = (await api.get(page, headers=second.headers)).text
    assert 'id="reject-form"' in shown and 'name="proposal" value="1"' in shown
    assert 'id="reopen-form"' not in shown
    mine = (await api.get(page, headers=finance.headers)).text
    assert "Withdraw the entry" in mine and 'id="approve-form"' not in mine

    short = await api.post(f"{page}/reject", data={"note": "x"}, headers=second.headers)
    assert "error=" in short.headers["location"]
    rejected = await api.post(
        f"{page}/reject", data={"note": "wrong account"}, headers=second.headers
    )
    assert "notice=" in rejected.headers["location"]
    await audited(sessions, "reconciliation_case.adjustment_rejected", case["id"])
    after = (await api.get(page, headers=second.headers)).text
    assert 'id="adjustment-outcome"' in after and "wrong account" in after
    assert 'id="resolve-form"' in after  # open again

    # A stale approval (the page read proposal 1, proposal 2 waits) comes back as an error.
    await api.post(f"{page}/adjustment", data=ENTRY, headers=finance.headers)
    stale = await api.post(f"{page}/approve", data={"proposal": "1"}, headers=second.headers)
    assert "error=" in stale.headers["location"]
    approved = await api.post(f"{page}/approve", data={"proposal": "2"}, headers=second.headers)
    assert "notice=" in approved.headers["location"]
    closed = (await api.get(page, headers=finance.headers)).text
    assert 'id="reopen-form"' in closed and 'id="proposals"' in closed

    refused = await api.post(f"{page}/reopen", data={"note": ""}, headers=finance.headers)
    assert "error=" in refused.headers["location"]
    reopened = await api.post(
        f"{page}/reopen", data={"note": "the dealer reversed it on MT5"}, headers=finance.headers
    )
    assert "notice=" in reopened.headers["location"]
    await audited(sessions, "reconciliation_case.reopened", case["id"])
    shown = (await api.get(page, headers=finance.headers)).text
    assert 'id="reopened"' in shown and "the dealer reversed it on MT5" in shown
    history = shown.split('id="history"')[1]
    assert "adjustment approved" in history and "reopened" in history
    assert 'id="reopen-form"' not in shown
    again = await api.post(f"{page}/reopen", data={"note": "once more"}, headers=finance.headers)
    assert "error=" in again.headers["location"]
