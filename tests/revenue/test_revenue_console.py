"""The console's dealer-revenue page (`/console/revenue`) over the simulator's deals of
tests/revenue/test_revenue_e2e.py, ingested and computed: the readers of the API see the same
figures (per currency and book, slippage by gateway and hour); other roles are refused."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.queries import revenue as queries
from db.sealed import SecretBox
from domain.roles import StaffRole
from settings import Settings
from tests.revenue.test_revenue_e2e import SERVER, ingest
from tests.support.people import People

DAY = {"server": SERVER, "first": "2026-12-01", "last": "2026-12-01"}


async def test_the_revenue_page_shows_the_apis_figures_to_its_readers(
    api: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], settings: Settings
) -> None:
    people = People(sessions, SecretBox(settings.secrets_key), api)
    dealer = await people.staff(StaffRole.DEALER)
    await ingest(sessions)
    async with sessions.begin() as session:
        await queries.refresh_deal_revenue(session, SERVER, datetime(2026, 12, 2, tzinfo=UTC))

    page = await api.get("/console/revenue", params=DAY, headers=dealer.headers)
    assert page.status_code == 200, page.text
    html = page.text
    assert f'<option value="{SERVER}" selected>' in html  # computed: offered in the list
    assert 'href="/console/revenue"' in html  # in the navigation
    # B-book: 3 deals, markup 10 + 10 + 0.30, the house lost the client's 80.00; the spread
    # captured 16 + 16 + 0.425, rounded half to even; A-book: 1 deal at the raw bid.
    b_book = html.split('data-book="USD-B"')[1].split("</tr>")[0]
    for figure in (">3<", ">20.30<", ">-80.00<", ">32.42<"):
        assert figure in b_book, (figure, b_book)
    a_book = html.split('data-book="USD-A"')[1].split("</tr>")[0]
    assert ">1<" in a_book and ">0.00<" in a_book
    # Slippage against the requested price: every deal exact (the simulator fills there).
    gateway = html.split('id="slippage-gateway"')[1].split("</table>")[0]
    assert 'data-key="(B-book)"' in gateway and 'data-key="LP-Prime"' in gateway
    assert 'data-key="09"' in html.split('id="slippage-hour"')[1].split("</table>")[0]

    another_day = await api.get(
        "/console/revenue", params=DAY | {"first": "2026-11-30", "last": "2026-11-30"},
        headers=dealer.headers,
    )  # fmt: skip
    assert "no computed trade deal in these days" in another_day.text
    refused = await api.get(
        "/console/revenue", params=DAY, headers=(await people.staff(StaffRole.SUPPORT)).headers
    )
    assert refused.status_code == 403
