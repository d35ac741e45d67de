"""The IB's copy of a payout statement is rendered with finance's copy and stored beside it:
finance's copy ends with the section for finance (the IB's open fraud flags), the IB's copy is
written without it and is what the portal serves. A payout rendered before the IB's copy was
stored gets it cut from finance's copy once, and never finance's pages if the cut misses."""

from __future__ import annotations

import subprocess
import uuid
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.testing import ActivityEnvironment

from activities.ib_payout import IbPayoutSteps, accrue, statement_key
from api.ib import payouts_service
from contracts.ib_payout import (
    PayoutFrequency,
    PayoutPeriod,
    PayoutRef,
    ib_statement_copy_key,
)
from db.models.ib import IbFraudFlag, IbPayout
from domain.errors import NotFound
from storage.documents import LocalFileStore
from tests.ib_payout.scene import T0, example_scene
from tests.ib_payout.test_accrual import PERIOD

WEEK = 7 * 86400
SECTION = "For finance: open fraud flags of this IB"
EVIDENCE_IP = "203.0.113.7"


def text_of(pdf: bytes, directory: Path) -> str:
    path = directory / f"{uuid.uuid4()}.pdf"
    path.write_bytes(pdf)
    return subprocess.run(
        ["pdftotext", "-layout", str(path), "-"],
        check=True,
        timeout=60,
        capture_output=True,
        text=True,
    ).stdout


async def flagged_payout(
    sessions: async_sessionmaker[AsyncSession], store: LocalFileStore
) -> tuple[IbPayoutSteps, uuid.UUID]:
    """D's payout of the example's week, D with an open fraud flag, its statement rendered."""
    ibs = await example_scene(sessions)
    async with sessions.begin() as session:
        session.add(
            IbFraudFlag(
                ib_id=ibs["D"],
                rule="self_referral_ip",
                evidence_key="client:test",
                detail="a client of the IB logged in from the IB's address",
                evidence={"ips": [EVIDENCE_IP]},
            )
        )
    steps = IbPayoutSteps(sessions, store)
    await accrue(sessions, PERIOD)
    opened = await steps.open_ib_payouts(
        PayoutPeriod(frequency=PayoutFrequency.WEEKLY, start=T0, end=T0 + WEEK)
    )
    async with sessions() as session:
        payout = await session.scalar(
            select(IbPayout.id).where(IbPayout.id.in_(opened.payouts), IbPayout.ib_id == ibs["D"])
        )
    assert payout is not None
    await ActivityEnvironment().run(steps.render_ib_statement, PayoutRef(payout_id=payout))
    return steps, payout


async def test_the_ibs_copy_is_stored_at_rendering_without_the_section_for_finance(
    sessions: async_sessionmaker[AsyncSession], tmp_path: Path
) -> None:
    store = LocalFileStore(tmp_path / "documents")
    steps, payout_id = await flagged_payout(sessions, store)
    finance = await store.get(statement_key(payout_id))
    ib_copy = await store.get(ib_statement_copy_key(payout_id))
    finance_text, ib_text = text_of(finance, tmp_path), text_of(ib_copy, tmp_path)
    assert SECTION in finance_text and EVIDENCE_IP in finance_text
    assert "for finance, not in the IB" in finance_text
    assert SECTION not in ib_text and EVIDENCE_IP not in ib_text
    assert "for finance" not in ib_text.lower()
    # The same statement otherwise: the IB's copy is finance's pages before the section.
    assert ib_text.split("\f")[:-1] == finance_text.split("\f")[: len(ib_text.split("\f")) - 1]
    # A retried step finds both and stores nothing new.
    await ActivityEnvironment().run(steps.render_ib_statement, PayoutRef(payout_id=payout_id))
    assert await store.get(ib_statement_copy_key(payout_id)) == ib_copy

    async with sessions() as session:
        payout = await session.get(IbPayout, payout_id)
        assert payout is not None
        _, served = await payouts_service.statement(session, store, payout_id, payout.ib_id)
        assert served == ib_copy
        _, to_finance = await payouts_service.statement(session, store, payout_id, None)
        assert to_finance == finance


async def test_a_statement_rendered_before_gets_its_copy_cut_once_or_refused(
    sessions: async_sessionmaker[AsyncSession], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = LocalFileStore(tmp_path / "documents")
    _, payout_id = await flagged_payout(sessions, store)
    copy_key = ib_statement_copy_key(payout_id)
    await store.delete(copy_key)  # as rendered before the IB's copy was stored
    async with sessions() as session:
        payout = await session.get(IbPayout, payout_id)
        assert payout is not None
        # The section's bookmark renamed: nothing would be cut, so nothing is served.
        monkeypatch.setattr(payouts_service, "FINANCE_SECTION_TITLE", "For finance (renamed)")
        with pytest.raises(NotFound, match="not available"):
            await payouts_service.statement(session, store, payout_id, payout.ib_id)
        assert not await store.exists(copy_key)
        monkeypatch.undo()
        _, served = await payouts_service.statement(session, store, payout_id, payout.ib_id)
    assert await store.get(copy_key) == served
    text = text_of(served, tmp_path)
    assert SECTION not in text and EVIDENCE_IP not in text
    assert "Commission statement" in text or "commission" in text.lower()
