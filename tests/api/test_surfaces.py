"""Headers and surfaces: console pages carry a CSP, no framing and no referrer; the one-time
MT5 credentials are never cached; /metrics answers this host or the metrics token only."""

from __future__ import annotations

import re

import httpx
from pydantic import SecretStr

from api.app import create_app
from domain.roles import StaffRole
from settings import Settings
from tests.conftest import app_client
from tests.support.people import People


async def test_console_pages_carry_a_csp_and_refuse_framing(
    api: httpx.AsyncClient, people: People
) -> None:
    finance = await people.staff(StaffRole.FINANCE)
    compliance = await people.staff(StaffRole.COMPLIANCE)
    pages = [
        await api.get("/console/login"),
        await api.get("/console/finance", headers=finance.headers),
        await api.get("/console/compliance", headers=compliance.headers),
    ]
    for page in pages:
        assert page.status_code == 200
        csp = page.headers["content-security-policy"]
        assert "frame-ancestors 'none'" in csp and "default-src 'none'" in csp
        assert "form-action 'self'" in csp and "'unsafe-inline'" not in csp.split("style-src")[0]
        assert page.headers["x-frame-options"] == "DENY"
        assert page.headers["referrer-policy"] == "no-referrer"
        assert page.headers["cache-control"] == "no-store"
        assert page.headers["x-content-type-options"] == "nosniff"
    # The queue's one script runs under the page's nonce, a new one for every page.
    queue = pages[2]
    [nonce] = re.findall(r"script-src 'nonce-([^']+)'", queue.headers["content-security-policy"])
    assert f'<script nonce="{nonce}">' in queue.text
    again = await api.get("/console/compliance", headers=compliance.headers)
    assert nonce not in again.headers["content-security-policy"]
    # The API's JSON answers get no page policy, but nosniff and no referrer all the same.
    health = await api.get("/v1/me", headers=(await people.client()).headers)
    assert "content-security-policy" not in health.headers
    assert health.headers["referrer-policy"] == "no-referrer"


async def test_the_one_time_credentials_are_not_cached(
    api: httpx.AsyncClient, people: People
) -> None:
    client = await people.client()
    await people.mt5_account(client, 5_100_123)
    response = await api.post("/v1/me/accounts/5100123/credentials", headers=client.headers)
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["pragma"] == "no-cache"


async def test_metrics_answer_this_host_or_the_token(settings: Settings) -> None:
    async for local in app_client(create_app(settings)):
        assert (await local.get("/metrics")).status_code == 200
    async for outsider in app_client(create_app(settings), ip="192.0.2.9"):
        refused = await outsider.get("/metrics")
        assert refused.status_code == 403
        assert refused.headers["content-type"] == "application/problem+json"
    with_token = settings.model_copy(update={"metrics_token": SecretStr("scrape-me-0123456789")})
    async for outsider in app_client(create_app(with_token), ip="192.0.2.9"):
        assert (await outsider.get("/metrics")).status_code == 401
        wrong = {"Authorization": "Bearer nope"}
        assert (await outsider.get("/metrics", headers=wrong)).status_code == 401
        right = {"Authorization": "Bearer scrape-me-0123456789"}
        scraped = await outsider.get("/metrics", headers=right)
        assert scraped.status_code == 200 and "brokerflow_http_requests_total" in scraped.text
