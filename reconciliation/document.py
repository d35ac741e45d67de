"""The what-if document: one day's MT5 balance deals (Web API field names), ledger movements and
processors' settlement rows, turned into `domain.reconciliation` sides, and optionally the
payments waiting on a processor (`domain.reconciliation.waiting`). Format:
docs/reconciliation.md."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from domain.errors import InvalidInput
from domain.money import Money
from domain.reconciliation.records import (
    SETTLEMENT_KINDS,
    AccountBalance,
    Flow,
    LedgerMt5Movement,
    LedgerPspMovement,
    Mt5Deal,
    Period,
    PspRow,
    Sides,
    period_of,
)
from domain.reconciliation.waiting import WaitingPayment


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DealIn(BaseModel):
    """An MT5 deal as `deal/get_batch` answers it; fields beyond these are ignored."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    Deal: int
    Login: int
    Time: int = Field(ge=0, le=32503680000, description="Unix seconds (UTC)")
    Action: int
    Profit: Decimal
    Comment: str = ""
    Currency: str | None = None  # not a Web API field: the account's currency, if not below


class AccountIn(_Strict):
    login: int
    currency: str
    mt5_balance: Decimal | None = None
    # what the ledger says BrokerFlow put on the account: its mirror's balance negated
    ledger_balance: Decimal | None = None
    trading: Decimal = Decimal(0)


class LedgerIn(_Strict):
    key: str
    reference: str
    side: Literal["mt5", "psp"]
    time: datetime
    # side mt5: money onto the MT5 account (negative off it), i.e. the mirror posting negated
    # (the ledger credits the mirror for money onto MT5); side psp: the clearing posting
    amount: Decimal
    currency: str
    login: int | None = None  # side mt5
    provider: str | None = None  # side psp
    flow: Flow | None = None  # side psp
    fee: Decimal | None = None  # side psp, when the ledger expects a fee

    @model_validator(mode="after")
    def _side_fields(self) -> LedgerIn:
        if self.time.tzinfo is None:
            raise ValueError("time needs a zone (e.g. 2026-12-07T10:00:00Z)")
        if self.side == "mt5" and (self.login is None or self.provider or self.flow or self.fee):
            raise ValueError("an mt5 movement has a login (no provider, flow or fee)")
        if self.side == "psp" and (self.provider is None or self.flow is None or self.login):
            raise ValueError("a psp movement has a provider and a flow (no login)")
        return self


class SettlementIn(_Strict):
    """A settlement report row, as the processors' CSVs name them, amounts as decimals."""

    provider: str
    date: date
    payment_id: str
    reference: str
    type: str
    currency: str
    gross: Decimal
    fee: Decimal = Decimal(0)
    net: Decimal | None = None  # default gross - fee

    @model_validator(mode="after")
    def _known_type(self) -> SettlementIn:
        if self.type not in SETTLEMENT_KINDS:
            raise ValueError(f"type must be one of {', '.join(sorted(SETTLEMENT_KINDS))}")
        return self


class WaitingIn(_Strict):
    """A payment BrokerFlow waits on its processor for, as the scheduled run snapshots it
    (`reconciliation_waiting`): a deposit `awaiting_funds` or a withdrawal `payout_sent`."""

    reference: str
    provider: str
    direction: Literal["deposit", "withdrawal"]
    status: Literal["awaiting_funds", "payout_sent"]
    amount: Decimal  # positive, in the payment's currency
    currency: str
    since: datetime  # when it started waiting (its last change of status)

    @model_validator(mode="after")
    def _zoned(self) -> WaitingIn:
        if self.since.tzinfo is None:
            raise ValueError("since needs a zone (e.g. 2026-12-06T09:30:00Z)")
        return self


class Document(_Strict):
    day: date
    cut_off: time = time(0, tzinfo=UTC)
    cut_off_window_seconds: int = Field(default=300, ge=0)
    match_window_seconds: int = Field(default=3600, ge=0)
    currency: str | None = None  # of deals whose account is not listed
    accounts: list[AccountIn] = []
    mt5_deals: list[DealIn] = []
    ledger: list[LedgerIn] = []
    psp: list[SettlementIn] = []
    # Optional: the payments waiting on a processor (lost_webhook, stuck_at_processor). Absent,
    # the answer is the matching's alone, as before.
    waiting: list[WaitingIn] | None = None
    as_of: datetime | None = None  # the run's moment; default the period's end
    stuck_after_seconds: int = Field(default=86400, ge=0)

    @model_validator(mode="after")
    def _zoned_as_of(self) -> Document:
        if self.as_of is not None and self.as_of.tzinfo is None:
            raise ValueError("as_of needs a zone (e.g. 2026-12-08T06:00:00Z)")
        return self

    def period(self) -> Period:
        cut_off = self.cut_off if self.cut_off.tzinfo else self.cut_off.replace(tzinfo=UTC)
        return period_of(
            self.day,
            cut_off,
            timedelta(seconds=self.cut_off_window_seconds),
            timedelta(seconds=self.match_window_seconds),
        )


def _minor(amount: Decimal, currency: str, where: str) -> int:
    try:
        return Money(amount=amount, currency=currency).to_minor_units()
    except ValueError as e:
        raise InvalidInput(f"{where}: {e}") from e


def sides_of(document: Document) -> Sides:
    """The document's sides in minor units; an amount finer than its currency, an unknown
    currency or a deal whose account currency is not given is refused (InvalidInput)."""
    currencies = {account.login: account.currency for account in document.accounts}
    deals: list[Mt5Deal] = []
    for n, deal in enumerate(document.mt5_deals):
        currency = deal.Currency or currencies.get(deal.Login) or document.currency
        if currency is None:
            raise InvalidInput(
                f"mt5_deals.{n}: no currency for login {deal.Login}"
                " (give Currency, an accounts entry or the document's currency)"
            )
        deals.append(
            Mt5Deal(
                deal.Deal,
                deal.Login,
                datetime.fromtimestamp(deal.Time, UTC),
                deal.Action,
                _minor(deal.Profit, currency, f"mt5_deals.{n}"),
                currency,
                deal.Comment,
            )
        )
    ledger_mt5: list[LedgerMt5Movement] = []
    ledger_psp: list[LedgerPspMovement] = []
    for n, item in enumerate(document.ledger):
        amount = _minor(item.amount, item.currency, f"ledger.{n}")
        if item.login is not None:  # side mt5 (validated)
            ledger_mt5.append(
                LedgerMt5Movement(
                    item.key, item.reference, item.login, item.time, amount, item.currency
                )
            )
        elif item.provider is not None and item.flow is not None:  # side psp
            ledger_psp.append(
                LedgerPspMovement(
                    item.key,
                    item.reference,
                    item.provider,
                    item.flow,
                    item.time,
                    amount,
                    item.currency,
                    None if item.fee is None else _minor(item.fee, item.currency, f"ledger.{n}"),
                )
            )
    rows = []
    for n, row in enumerate(document.psp):
        where = f"psp.{n}"
        net = row.gross - row.fee if row.net is None else row.net
        rows.append(
            PspRow(
                row.provider,
                row.payment_id,
                row.reference,
                SETTLEMENT_KINDS[row.type],
                row.date,
                _minor(row.gross, row.currency, where),
                _minor(row.fee, row.currency, where),
                _minor(net, row.currency, where),
                row.currency,
            )
        )
    balances = [
        AccountBalance(
            account.login,
            account.currency,
            _minor(account.mt5_balance, account.currency, f"accounts.{n}"),
            _minor(account.ledger_balance, account.currency, f"accounts.{n}"),
            _minor(account.trading, account.currency, f"accounts.{n}"),
        )
        for n, account in enumerate(document.accounts)
        if account.mt5_balance is not None and account.ledger_balance is not None
    ]
    return Sides(deals, ledger_mt5, ledger_psp, rows, balances)


def waiting_of(document: Document) -> list[WaitingPayment]:
    """The document's waiting payments as the scheduled run's snapshot gives them (amounts in
    minor units, `since` in UTC); none when the document has no `waiting`."""
    return [
        WaitingPayment(
            item.reference,
            item.provider,
            item.direction,
            item.status,
            item.since.astimezone(UTC),
            _minor(item.amount, item.currency, f"waiting.{n}"),
            item.currency,
        )
        for n, item in enumerate(document.waiting or [])
    ]
