"""The console's pay-again form on an IB payout's page (`POST /console/ib-payouts/{id}/pay-again`)
over the API's service and a real `IbPayoutAgain` run: shown to finance officers only, for a
payout that needs attention; anti-forgery checked; the first officer told a second approver is
needed, the page then saying who asked; the same officer refused; the second officer's approval
paying it once; each approval audited by the workflow with its officer."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from decimal import Decimal

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.ib_management import IbManagementSteps
from api.app import create_app
from api.temporal import TemporalConnector
from contracts import TASK_QUEUE
from contracts.steps import Step, implementations
from db.models import AuditEntry
from db.models.ib import IbPayout
from db.sealed import SecretBox
from domain.roles import StaffRole
from settings import IbRules, Settings
from tests.conftest import FLEET_NAMESPACE, app_client
from tests.ib_payout.opened import REFUSED, first_week_payouts, own_namespace, refused_by_mt5
from tests.support.people import People
from tests.support.waiting import eventually
from workflows.ib_payout import IbPayoutAgainWorkflow


@pytest.fixture
async def console(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """The app with four-eyes above 50: D's 106.50 USD needs two officers."""
    app = create_app(settings.model_copy(update={"ib": IbRules(four_eyes_above=Decimal(50))}))
    async for client in app_client(app):
        yield client


def shown(response: httpx.Response, start: str, end: str = "</") -> str:
    """The page's HTML from `start` to the next `end`."""
    return response.text.split(start, 1)[1].split(end, 1)[0]


def element(name: str) -> str:
    return f'id="{name}"'


async def test_two_officers_pay_a_payout_again_from_its_page(
    console: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    temporal_env: WorkflowEnvironment,
) -> None:
    opened = await first_week_payouts(sessions, settings)
    temporal = await own_namespace(temporal_env)
    steps, d_payout = opened.steps, opened.of("D")
    other = next(p for p in opened.payouts.values() if p != d_payout)
    await refused_by_mt5(sessions, d_payout)
    people = People(sessions, SecretBox(settings.secrets_key), console)
    first, second = await people.staff(StaffRole.FINANCE), await people.staff(StaffRole.FINANCE)
    auditor = await people.staff(StaffRole.AUDITOR)
    console._transport.app.state.brokerflow.temporal = TemporalConnector(  # type: ignore[attr-defined]
        "unused", FLEET_NAMESPACE, client=temporal
    )
    page_url = f"/console/ib-payouts/{d_payout}"
    form_url = f"{page_url}/pay-again"
    # The first officer works in the console's session: its cookie, the forms' anti-forgery value.
    cookie = {"bf_console": first.headers["Authorization"].removeprefix("Bearer ")}
    reason = {"reason": "IB's destination corrected to its wallet"}

    read_only = await console.get(page_url, headers=auditor.headers)
    assert read_only.status_code == 200 and "pay-again-readers-note" in read_only.text
    assert "pay-again-form" not in read_only.text and REFUSED in shown(
        read_only, element("payout-reason")
    )
    page = await console.get(page_url, cookies=cookie)
    assert f'action="{form_url}"' in shown(page, element("pay-again"), "</section>")
    assert "four-eyes" in shown(page, "<h2>Pay again</h2>", "</p>")
    match = re.search(
        r'name="csrf" value="(\w+)"', shown(page, element("pay-again-form"), "</form>")
    )
    assert match is not None
    csrf = match.group(1)

    async with Worker(
        temporal,
        task_queue=TASK_QUEUE,
        workflows=[IbPayoutAgainWorkflow],
        activities=list(implementations(Step, steps, IbManagementSteps(sessions)).values()),
    ):
        forged = await console.post(form_url, data=reason | {"csrf": ""}, cookies=cookie)
        assert forged.status_code == 403
        reader = await console.post(form_url, data=reason, headers=auditor.headers)
        assert reader.status_code == 403
        short = await console.post(form_url, data={"reason": "x", "csrf": csrf}, cookies=cookie)
        assert "error=give+a+reason" in short.headers["location"]
        not_waiting = await console.post(
            f"/console/ib-payouts/{other}/pay-again", data=reason, headers=second.headers
        )
        assert "only+one+that+needs+attention" in not_waiting.headers["location"]

        asked = await console.post(form_url, data=reason | {"csrf": csrf}, cookies=cookie)
        assert asked.status_code == 303 and asked.headers["location"].startswith(f"{page_url}?")
        after = await console.get(asked.headers["location"], cookies=cookie)
        notice = shown(after, 'class="notice" role="status">')
        assert "(1 of 2): it needs a second approver, a different finance officer" in notice
        assert "You asked to pay it again" in shown(after, element("pay-again-waiting"))
        assert "asked to pay it again" in shown(after, element("decisions"), "</table>")
        twice = await console.post(form_url, data=reason | {"csrf": csrf}, cookies=cookie)
        assert "a+second+officer+must" in twice.headers["location"]

        seconded_page = await console.get(page_url, headers=second.headers)
        assert "your approval, as a second finance officer, pays it" in seconded_page.text
        seconded = await console.post(form_url, data=reason, headers=second.headers)
        assert "is+approved+%282+of+2%29" in seconded.headers["location"], seconded.headers

        async def paid() -> bool:
            async with sessions() as session:
                payout = await session.get(IbPayout, d_payout)
                return payout is not None and payout.status == "paid"

        await eventually(paid, "the payout paid again", timeout=30)

    done = await console.get(page_url, headers=second.headers)
    assert shown(done, element("payout-status")) == ">paid" and "pay-again-form" not in done.text
    decisions = shown(done, element("decisions"), "</table>")
    assert "approved paying it again" in decisions and decisions.count("asked to pay it") == 1
    # The workflow's step wrote each approval's audit row, with its officer (none by the page).
    async with sessions() as session:
        rows = await session.execute(
            select(AuditEntry.action, AuditEntry.actor_id, AuditEntry.reason)
            .where(AuditEntry.entity_id == str(d_payout), AuditEntry.action.like("%pay_again%"))
            .order_by(AuditEntry.id)
        )
    assert [tuple(row) for row in rows] == [
        ("ib_payout.pay_again_requested", str(first.id), reason["reason"]),
        ("ib_payout.pay_again_approved", str(second.id), reason["reason"]),
    ]
