"""The risk desk's API and console forms: books, thresholds, alerts acknowledged and resolved,
the live exposure; every staff change audited (the audit rows tests/api/test_audit_log.py
leaves to this file), refusals as problems."""

from __future__ import annotations

from decimal import Decimal

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from activities.risk_exposure import RiskExposureSteps
from contracts.risk_exposure import RecordExposurePoint
from db.models import AuditEntry, RiskAlert
from db.sealed import SecretBox
from domain.roles import StaffRole
from settings import Settings
from tests.risk.scene import A_CLIENT, B_CLIENT, SERVER, seed
from tests.support.people import People


@pytest.fixture
def people(
    sessions: async_sessionmaker[AsyncSession], settings: Settings, api: httpx.AsyncClient
) -> People:
    return People(sessions, SecretBox(settings.secrets_key), api)


async def audit_of(sessions: async_sessionmaker[AsyncSession], action: str) -> list[AuditEntry]:
    async with sessions() as session:
        return list(await session.scalars(select(AuditEntry).where(AuditEntry.action == action)))


async def test_the_desk_sets_books_thresholds_and_works_alerts_audited(
    api: httpx.AsyncClient, people: People, sessions: async_sessionmaker[AsyncSession]
) -> None:
    dealer = await people.staff(StaffRole.DEALER)
    risk = await people.staff(StaffRole.RISK)
    auditor = await people.staff(StaffRole.AUDITOR)
    await seed(sessions)
    rid = {"X-Request-ID": "req-risk-1"}

    # The B client becomes hybrid, 25 % routed: the point's B book loses a quarter.
    book = await api.put(
        f"/v1/risk/books/{SERVER}/{B_CLIENT}",
        json={"book": "hybrid", "a_share": "0.25", "reason": "large, partly hedged"},
        headers={**dealer.headers, **rid},
    )
    assert book.status_code == 200, book.text
    assert (book.json()["book"], book.json()["a_share"]) == ("hybrid", "0.25")
    [row] = await audit_of(sessions, "risk.book_set")
    assert (row.entity_id, row.before, row.after, row.request_id) == (
        f"{SERVER}:{B_CLIENT}",
        {"book": "B", "a_share": None, "default": True},
        {"book": "hybrid", "a_share": "0.25"},
        "req-risk-1",
    )
    refused = await api.put(
        f"/v1/risk/books/{SERVER}/{A_CLIENT}",
        json={"book": "A", "a_share": "0.5"},
        headers=dealer.headers,
    )
    assert refused.status_code == 422
    assert refused.headers["content-type"] == "application/problem+json"
    listed = await api.get(f"/v1/risk/books/{SERVER}", headers=auditor.headers)
    assert [b["login"] for b in listed.json()] == [B_CLIENT, A_CLIENT]

    threshold = await api.post(
        "/v1/risk/thresholds",
        json={
            "scope": "symbol",
            "key": "XAUUSD",
            "metric": "net_notional",
            "raise_above": "200000",
            "clear_below": "150000",
        },
        headers={**risk.headers, **rid},
    )
    assert threshold.status_code == 201, threshold.text
    threshold_id = threshold.json()["id"]
    [created] = await audit_of(sessions, "risk.threshold_created")
    assert created.entity_id == threshold_id and created.after
    assert created.after["raise_above"] == "200000"
    backwards = await api.post(
        "/v1/risk/thresholds",
        json={
            "scope": "total",
            "key": "*",
            "metric": "net_notional",
            "raise_above": "1",
            "clear_below": "2",
        },
        headers=risk.headers,
    )
    assert backwards.status_code == 422
    # One account's margin utilisation (its login as the key; 6100001 is at 0.310020: quiet).
    watched = {
        "server": SERVER,
        "scope": "account",
        "key": f"0{B_CLIENT}",
        "metric": "margin_utilisation",
        "raise_above": "0.5",
        "clear_below": "0.4",
    }
    account = await api.post("/v1/risk/thresholds", json=watched, headers=risk.headers)
    assert account.status_code == 201, account.text
    assert account.json()["key"] == str(B_CLIENT)
    for wrong in ({"metric": "net_notional"}, {"key": "EURUSD"}, {"key": "0"}):
        answer = await api.post(
            "/v1/risk/thresholds", json={**watched, **wrong}, headers=risk.headers
        )
        assert answer.status_code == 422, (wrong, answer.text)
        assert answer.headers["content-type"] == "application/problem+json"

    result = await RiskExposureSteps(sessions).record_exposure_point(
        RecordExposurePoint(server=SERVER)
    )
    assert result.raised == ["symbol:XAUUSD:net_notional"]

    live = (await api.get("/v1/risk/exposure", headers=auditor.headers)).json()
    assert (live["server"], live["net_notional"], live["currency"]) == (SERVER, "90990.00", "USD")
    # Largest absolute net first: XAUUSD 201000, EURUSD -110010.
    assert [s["symbol"] for s in live["by_symbol"]] == ["XAUUSD", "EURUSD"]
    [alert] = live["alerts"]
    assert (alert["key"], alert["status"], alert["value"]) == ("XAUUSD", "open", "201000.00")

    ack = await api.post(
        f"/v1/risk/alerts/{alert['id']}/acknowledge",
        json={"note": "watching gold"},
        headers={**dealer.headers, **rid},
    )
    assert ack.status_code == 200 and ack.json()["status"] == "acknowledged"
    again = await api.post(
        f"/v1/risk/alerts/{alert['id']}/acknowledge", json={}, headers=dealer.headers
    )
    assert again.status_code == 409
    resolve = await api.post(
        f"/v1/risk/alerts/{alert['id']}/resolve", json={}, headers={**risk.headers, **rid}
    )
    assert resolve.status_code == 200 and resolve.json()["status"] == "resolved"
    [acked] = await audit_of(sessions, "risk.alert_acknowledged")
    [resolved] = await audit_of(sessions, "risk.alert_resolved")
    assert (acked.before, acked.reason, acked.actor_id) == (
        {"status": "open"},
        "watching gold",
        str(dealer.id),
    )
    assert resolved.before == {"status": "acknowledged"} and resolved.request_id == "req-risk-1"
    assert (await api.get("/v1/risk/alerts", headers=auditor.headers)).json() == []

    off = await api.post(
        f"/v1/risk/thresholds/{threshold_id}/deactivate", json={}, headers=risk.headers
    )
    assert off.status_code == 200 and off.json()["active"] is False
    [deactivated] = await audit_of(sessions, "risk.threshold_deactivated")
    assert deactivated.before and deactivated.before["active"] is True
    assert (
        await api.post(
            f"/v1/risk/thresholds/{threshold_id}/deactivate", json={}, headers=risk.headers
        )
    ).status_code == 409


async def test_the_console_forms_acknowledge_and_resolve(
    api: httpx.AsyncClient, people: People, sessions: async_sessionmaker[AsyncSession]
) -> None:
    dealer = await people.staff(StaffRole.DEALER)
    await seed(sessions)
    async with sessions.begin() as session:
        from db.models import RiskThreshold

        session.add(
            RiskThreshold(
                scope="book",
                key="B",
                metric="concentration",
                raise_above=Decimal("0.5"),
                clear_below=Decimal("0.4"),
                created_by="test",
            )
        )
    # Book B holds 311010 of |311010| + |-220020|: 0.586 > 0.5.
    result = await RiskExposureSteps(sessions).record_exposure_point(
        RecordExposurePoint(server=SERVER)
    )
    assert result.raised == ["book:B:concentration"]
    page = await api.get("/console/risk", headers=dealer.headers)
    assert page.status_code == 200
    assert "Risk desk" in page.text and "nonce-" in page.headers["content-security-policy"]
    async with sessions() as session:
        [alert] = (await session.scalars(select(RiskAlert))).all()
    for action, status in (("acknowledge", "acknowledged"), ("resolve", "resolved")):
        answer = await api.post(
            f"/console/risk/alerts/{alert.id}/{action}", data={"csrf": ""}, headers=dealer.headers
        )
        assert answer.status_code == 303
        assert status in answer.headers["location"]
    async with sessions() as session:
        assert (await session.get(RiskAlert, alert.id)).status == "resolved"  # type: ignore[union-attr]
    assert len(await audit_of(sessions, "risk.alert_resolved")) == 1
    live = await api.get("/console/risk/live", headers=dealer.headers)
    assert live.json()["alerts"] == []
