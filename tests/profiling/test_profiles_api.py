"""Client profiles over the API and the console: list (filters, paging), detail with its
explanation, the dealer's acceptance and override (audited with before/after, a `BookMove`
started with the book's MT5 group), one decision moving at a time, a refusal shown as failed.
The audit rows tests/api/test_audit_log.py leaves to this file are asserted here."""

from __future__ import annotations

import uuid
from datetime import timedelta

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.testing import ActivityEnvironment

from activities.client_profiling import BookMoveRecords, ClientProfiling
from contracts.client_profiling import BookMoveInput, MarkBookMoveFailedInput, ProfileServerInput
from db.models import AuditEntry
from domain.roles import StaffRole
from tests.api.conftest import FakeTemporal, people, temporal  # noqa: F401 (fixtures)
from tests.profiling.profiles_scene import ARBITRAGEUR, LOSER, SERVER, UNTIL, seed
from tests.support.people import People


async def profiled(sessions: async_sessionmaker[AsyncSession]) -> None:
    steps = ClientProfiling(SERVER, sessions, await seed(sessions), now=lambda: UNTIL)
    request = ProfileServerInput(server=SERVER, window=timedelta(days=1), until=UNTIL)
    await ActivityEnvironment().run(steps.profile_server_accounts, request)


async def audit_of(sessions: async_sessionmaker[AsyncSession], action: str) -> list[AuditEntry]:
    async with sessions() as session:
        return list(await session.scalars(select(AuditEntry).where(AuditEntry.action == action)))


async def test_dealer_reads_profiles_accepts_and_overrides_audited(
    api: httpx.AsyncClient,
    people: People,  # noqa: F811
    temporal: FakeTemporal,  # noqa: F811
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    await profiled(sessions)
    dealer = await people.staff(StaffRole.DEALER)
    auditor = await people.staff(StaffRole.AUDITOR)
    rid = {"X-Request-ID": "req-profiles-1"}

    listed = await api.get("/v1/profiles", params={"limit": 1}, headers=auditor.headers)
    assert listed.status_code == 200, listed.text
    assert (listed.json()["total"], len(listed.json()["items"])) == (2, 1)
    toxic = await api.get(
        "/v1/profiles",
        params={"profile": "latency_arbitrage", "server": SERVER},
        headers=dealer.headers,
    )
    [item] = toxic.json()["items"]
    assert (item["login"], item["suggested_book"], item["latest_decision"]) == (
        ARBITRAGEUR,
        "A",
        None,
    )
    assert "stale_quote_share = 1 >= 0.5: yes" in item["explanation"]
    bad_filter = await api.get("/v1/profiles", params={"profile": "x"}, headers=dealer.headers)
    assert bad_filter.status_code == 422
    assert bad_filter.headers["content-type"] == "application/problem+json"

    detail = await api.get(f"/v1/profiles/{SERVER}/{ARBITRAGEUR}", headers=auditor.headers)
    assert detail.status_code == 200, detail.text
    body = detail.json()
    assert body["current_book"] == {"book": "B", "a_share": None, "default": True}
    assert [c["metric"] for c in body["conditions"]] == ["stale_quote_share", "hold_median_s"]
    assert body["metrics"]["trades"] == 12
    missing = await api.get(f"/v1/profiles/{SERVER}/9999999", headers=auditor.headers)
    assert missing.status_code == 404

    # Acceptance: the suggested A, the MT5 group of A, a BookMove started, audited.
    accepted = await api.post(
        f"/v1/profiles/{SERVER}/{ARBITRAGEUR}/accept",
        json={"reason": "arbitrage confirmed"},
        headers={**dealer.headers, **rid},
    )
    assert accepted.status_code == 202, accepted.text
    decision = accepted.json()
    assert (decision["kind"], decision["book"], decision["status"]) == ("accept", "A", "moving")
    assert decision["target_group"] == "real\\a-book"
    [(name, argument, workflow_id)] = temporal.started
    assert name == "BookMove" and workflow_id == f"book-move-{decision['id']}"
    decision_id = uuid.UUID(decision["id"])
    assert argument == BookMoveInput(
        decision_id=decision_id, server=SERVER, login=ARBITRAGEUR, group="real\\a-book"
    )
    [row] = await audit_of(sessions, "profiling.book_accepted")
    assert (row.entity_id, row.actor_kind, row.request_id, row.reason) == (
        f"{SERVER}:{ARBITRAGEUR}",
        "staff",
        "req-profiles-1",
        "arbitrage confirmed",
    )
    assert row.before == {"book": "B", "a_share": None, "default": True, "group": None}
    after = row.after or {}
    assert (after["book"], after["group"], after["decision"]) == (
        "A",
        "real\\a-book",
        decision["id"],
    )
    again = await api.post(
        f"/v1/profiles/{SERVER}/{ARBITRAGEUR}/accept", json={}, headers=dealer.headers
    )
    assert again.status_code == 409

    # MT5 refuses the move: the decision shows as failed with the reason.
    await BookMoveRecords(sessions).mark_book_move_failed(
        MarkBookMoveFailedInput(
            decision_id=uuid.UUID(decision["id"]),
            reason="user/update: 8 Not enough permissions",
            error_type="Mt5PermissionDenied",
            at=UNTIL,
        )
    )
    shown = (await api.get(f"/v1/profiles/{SERVER}/{ARBITRAGEUR}", headers=dealer.headers)).json()
    assert shown["latest_decision"]["status"] == "failed"
    assert shown["latest_decision"]["failure_reason"].startswith("Mt5PermissionDenied: ")

    # Override: a hybrid needs its share; with it, the hybrid group.
    no_share = await api.post(
        f"/v1/profiles/{SERVER}/{LOSER}/override",
        json={"book": "hybrid", "reason": "large client"},
        headers=dealer.headers,
    )
    assert no_share.status_code == 422
    assert no_share.headers["content-type"] == "application/problem+json"
    overridden = await api.post(
        f"/v1/profiles/{SERVER}/{LOSER}/override",
        json={"book": "hybrid", "a_share": "0.25", "reason": "large client"},
        headers={**dealer.headers, **rid},
    )
    assert overridden.status_code == 202, overridden.text
    assert (overridden.json()["a_share"], overridden.json()["target_group"]) == (
        "0.25",
        "real\\hybrid",
    )
    [row] = await audit_of(sessions, "profiling.book_overridden")
    after = row.after or {}
    assert (row.request_id, after["book"], after["a_share"], after["suggested_book"]) == (
        "req-profiles-1",
        "hybrid",
        "0.25",
        "B",
    )
    assert row.reason == "large client"


async def test_the_console_page_shows_badges_and_its_forms_decide(
    api: httpx.AsyncClient,
    people: People,  # noqa: F811
    temporal: FakeTemporal,  # noqa: F811
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    await profiled(sessions)
    dealer = await people.staff(StaffRole.DEALER)
    auditor = await people.staff(StaffRole.AUDITOR)

    page = await api.get("/console/profiles", headers=dealer.headers)
    assert page.status_code == 200, page.text
    assert 'class="badge badge-latency_arbitrage"' in page.text
    assert "stale_quote_share = 1 &gt;= 0.5: yes" in page.text
    assert f"/console/profiles/{SERVER}/{ARBITRAGEUR}/accept" in page.text
    read_only = await api.get("/console/profiles", headers=auditor.headers)
    assert "/accept" not in read_only.text

    rid = {"X-Request-ID": "req-profiles-2"}
    accepted = await api.post(
        f"/console/profiles/{SERVER}/{ARBITRAGEUR}/accept",
        data={"csrf": ""},
        headers={**dealer.headers, **rid},
    )
    assert accepted.status_code == 303
    assert "moving+to+book+A" in accepted.headers["location"]
    overridden = await api.post(
        f"/console/profiles/{SERVER}/{LOSER}/override",
        data={"csrf": "", "book": "A", "reason": "consistently sized"},
        headers={**dealer.headers, **rid},
    )
    assert overridden.status_code == 303, overridden.text
    assert len(temporal.started) == 2
    for action in ("profiling.book_accepted", "profiling.book_overridden"):
        [row] = await audit_of(sessions, action)
        assert (row.actor_kind, row.request_id) == ("staff", "req-profiles-2") and row.after
    refused = await api.post(
        f"/console/profiles/{SERVER}/{LOSER}/override",
        data={"csrf": "", "book": "A", "reason": ""},
        headers=dealer.headers,
    )
    assert refused.status_code == 303 and "error=" in refused.headers["location"]
