"""The console's trade-ingestion page and the /metrics figures, in process: a healthy server's
figures, a follower whose MT5 server is gone (its poll fails: `failing`), and a follower that
stopped polling (`stuck`)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.testing import ActivityEnvironment

from activities.trade_ingestion import DealIngestion
from contracts.trade_ingestion import FollowDeals
from db.models.trading import IngestionState
from db.sealed import SecretBox
from domain.roles import StaffRole
from mt5_adapter.errors import Mt5Error
from mt5_adapter.webapi import gateway_for
from settings import Mt5ServerSettings, Settings
from tests.support.people import People
from tests.support.processes import free_port


@pytest.fixture
def people(
    sessions: async_sessionmaker[AsyncSession], settings: Settings, api: httpx.AsyncClient
) -> People:
    return People(sessions, SecretBox(settings.secrets_key), api)


async def state(sessions: async_sessionmaker[AsyncSession], **values: object) -> None:
    async with sessions.begin() as session:
        await session.execute(insert(IngestionState).values(**values))


async def test_the_page_shows_each_servers_figures(
    api: httpx.AsyncClient, people: People, sessions: async_sessionmaker[AsyncSession]
) -> None:
    now = datetime.now(UTC)
    await state(
        sessions,
        server="alpha",
        watermark=datetime(2026, 12, 6, 21, 0, 5, tzinfo=UTC),
        lag_seconds=Decimal("0.250"),
        rows_per_second=Decimal("1234.5"),
        deals_ingested=987_654,
        last_poll_at=now,
        orders_watermark=datetime(2026, 12, 6, 20, 59, 0, tzinfo=UTC),
        positions_at=now,
        accounts_at=now,
    )
    dealer = await people.staff(StaffRole.DEALER)
    page = await api.get("/console/ingestion", headers=dealer.headers)
    assert page.status_code == 200, page.text
    figures = ("alpha", "2026-12-06 21:00:05", "0.250", "1234.5", "987,654", "2026-12-06 20:59:00")
    for figure in figures:
        assert figure in page.text, figure
    assert 'id="no-alerts"' in page.text and 'role="alert"' not in page.text
    # Finance has no business here.
    finance = await people.staff(StaffRole.FINANCE)
    assert (await api.get("/console/ingestion", headers=finance.headers)).status_code == 403

    scraped = (await api.get("/metrics")).text
    assert 'brokerflow_ingestion_rows_per_second{server="alpha"} 1234.5' in scraped
    assert 'brokerflow_ingestion_lag_seconds{server="alpha"} 0.25' in scraped
    assert 'brokerflow_ingestion_deals_ingested{server="alpha"} 987654.0' in scraped
    assert 'brokerflow_ingestion_alerts{kind="failing",server="alpha"} 0.0' in scraped
    assert 'brokerflow_ingestion_alerts{kind="stuck",server="alpha"} 0.0' in scraped


async def test_a_failing_or_stuck_ingestion_raises_an_alert(
    api: httpx.AsyncClient, people: People, sessions: async_sessionmaker[AsyncSession]
) -> None:
    # The trade server is gone (nothing listens on its port): the follower's first poll fails,
    # and the step notes why before it fails (Temporal then retries it).
    gone = gateway_for(
        Mt5ServerSettings(
            address=f"127.0.0.1:{free_port()}",
            tls=False,
            manager_login=1000,
            manager_password=SecretStr("Manager#1"),
            timeout_seconds=2,
        )
    )
    ingestion = DealIngestion("gone", sessions, gone)
    request = FollowDeals(start_from=datetime.now(UTC), run_seconds=5)
    try:
        with pytest.raises(Mt5Error):
            await ActivityEnvironment().run(ingestion.follow_deals, request)
    finally:
        await gone.aclose()
    # A second server whose follower stopped polling ten minutes ago.
    await state(
        sessions,
        server="quiet",
        watermark=datetime.now(UTC) - timedelta(minutes=11),
        last_poll_at=datetime.now(UTC) - timedelta(minutes=10),
    )

    auditor = await people.staff(StaffRole.AUDITOR)
    page = await api.get("/console/ingestion", headers=auditor.headers)
    assert page.status_code == 200, page.text
    # `gone` never polled successfully: stuck as well as failing.
    assert 'role="alert"' in page.text and "3 alerts" in page.text
    assert 'data-server="gone" data-kind="failing"' in page.text
    assert 'data-server="gone" data-kind="stuck"' in page.text
    assert "Mt5ConnectionError" in page.text  # the last error, as the step noted it
    assert 'data-server="quiet" data-kind="stuck"' in page.text
    assert "no poll since" in page.text

    scraped = (await api.get("/metrics")).text
    assert 'brokerflow_ingestion_alerts{kind="failing",server="gone"} 1.0' in scraped
    assert 'brokerflow_ingestion_alerts{kind="stuck",server="quiet"} 1.0' in scraped
    assert 'brokerflow_ingestion_alerts{kind="failing",server="quiet"} 0.0' in scraped
    assert 'brokerflow_ingestion_last_error_seconds{server="gone"}' in scraped
