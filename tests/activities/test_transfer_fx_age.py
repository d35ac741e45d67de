"""A transfer between currencies whose newest rate is too old is refused with that reason and
undone, end to end on the real database, a real Temporal server and the MT5 simulator."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, tzinfo
from decimal import Decimal

import pytest
from sqlalchemy import select

from activities import ledger_steps
from db.models import Transfer
from domain.money import Money
from domain.payments import PaymentStatus
from tests.activities.test_transfer_saga import Books, books, on_mt5, usd_wallet  # noqa: F401


class TwoHoursLater(datetime):
    """The worker's clock two hours on: the rate stored at set-up is now two hours old."""

    @classmethod
    def now(cls, tz: tzinfo | None = None) -> TwoHoursLater:
        moment = datetime.now(tz or UTC) + timedelta(hours=2)
        return cls.fromtimestamp(moment.timestamp(), tz)


async def test_a_stale_rate_refuses_the_transfer_and_undoes_the_hold(
    books: Books,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(ledger_steps, "datetime", TwoHoursLater)

    result = await books.transfer(
        Money.of("108.01", "USD"), usd_wallet(), on_mt5(books.eur_login, "EUR")
    )

    assert result.status is PaymentStatus.REJECTED
    assert "EUR/USD rate" in (result.reason or "")
    assert "up to 1 h old" in (result.reason or "")
    assert await books.wallet_balance("USD") == Decimal("1000.00")
    assert await books.mt5_agrees_with_the_books(books.eur_login, "EUR") == Decimal(0)
    async with books.sessions() as session:
        [stored] = (await session.scalars(select(Transfer))).all()
    assert stored.status == PaymentStatus.REJECTED.value
    assert "EUR/USD rate" in (stored.failure_reason or "")
