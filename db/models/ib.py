"""Introducing brokers and what they earn: the IB tree, the account an IB is paid to, client
attribution with effective dates, versioned commission plans, the commission ledger and payouts.

Times that the commission calculation compares with deals (plan versions, attribution, payout
periods, a row's deal time) are Unix seconds on the trade server's clock, as MT5 stamps deals
(`Time`) and as `domain.ib` reads them: one clock, no conversion on the way.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    Text,
    UniqueConstraint,
    Uuid,
    cast,
    func,
    literal_column,
    null,
    select,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, column_property, mapped_column

from db.base import Base, RecordModel


class IntroducingBroker(RecordModel):
    __tablename__ = "introducing_brokers"

    email: Mapped[str] = mapped_column(String(254), unique=True)
    password_hash: Mapped[str] = mapped_column(Text)
    name: Mapped[str] = mapped_column(String(200))
    referral_code: Mapped[str] = mapped_column(String(32), unique=True)
    # The tree: null at the top, any depth (a cycle is refused where the parent is set).
    parent_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("introducing_brokers.id"), index=True
    )
    plan_id: Mapped[str | None] = mapped_column(ForeignKey("ib_plans.id"))
    # How often its payout cycle runs: daily, weekly or monthly (a Temporal Schedule each).
    payout_frequency: Mapped[str] = mapped_column(String(8), server_default="monthly")
    # Where it is paid: its BrokerFlow wallet (`wallet:ib-<id>:<ccy>`), or an MT5 login when set.
    payout_mt5_server: Mapped[str | None] = mapped_column(String(64))
    payout_mt5_login: Mapped[int | None] = mapped_column(BigInteger)


class IbPlan(Base):
    """A commission plan; its terms are its versions."""

    __tablename__ = "ib_plans"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())


class IbPlanVersion(Base):
    """One version of a plan, `terms` exactly as `domain.ib.document.PlanVersion` reads it
    (with its `version` and `from`); never changed once a commission row names it."""

    __tablename__ = "ib_plan_versions"
    __table_args__ = (
        UniqueConstraint("plan_id", "version"),
        UniqueConstraint("plan_id", "effective_from", name="uq_ib_plan_versions_plan_from"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    plan_id: Mapped[str] = mapped_column(ForeignKey("ib_plans.id"))
    version: Mapped[int] = mapped_column(Integer)
    effective_from: Mapped[int] = mapped_column(BigInteger)  # server-clock seconds
    terms: Mapped[dict[str, Any]] = mapped_column(JSONB)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())


class IbAttribution(Base):
    """An MT5 login is the IB's client from `effective_from` to `effective_to` (open when
    null). A reassignment closes the open period and opens the next: deals keep the IB they
    had at their time, so paid history never moves."""

    __tablename__ = "ib_attributions"
    __table_args__ = (
        CheckConstraint("effective_to IS NULL OR effective_to > effective_from", name="ordered"),
        Index("ix_ib_attributions_login", "server", "login", "effective_from"),
        # At most one open period per login.
        Index(
            "uq_ib_attributions_open",
            "server",
            "login",
            unique=True,
            postgresql_where=text("effective_to IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    server: Mapped[str] = mapped_column(String(64))
    login: Mapped[int] = mapped_column(BigInteger)
    ib_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("introducing_brokers.id"), index=True)
    effective_from: Mapped[int] = mapped_column(BigInteger)
    effective_to: Mapped[int | None] = mapped_column(BigInteger)
    source: Mapped[str] = mapped_column(String(16))  # referral | staff
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())


class IbCommissionTrace(Base):
    """A commission row's trace without what is the row's own (its deal, beneficiary,
    `volume_why`): the same for every deal priced alike, stored once, keyed by a hash of its
    JSON (`activities.ib_accrual.template_key`). Never changed."""

    __tablename__ = "ib_commission_traces"

    key: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    body: Mapped[dict[str, Any]] = mapped_column(JSONB)


class IbCommission(Base):
    """The commission ledger: one row per deal and beneficiary (`revision` 0), and one per
    later adjustment of it (a clawback or top-up after the deal was corrected, revision 1, 2,
    ...). Rows are never rewritten. `trace` is `domain.ib`'s row (or adjustment) as JSON:
    stored whole (`stored_trace`, adjustments and rows written before migration 0025) or by
    reference (`trace_ref`, see `COMMISSION_TRACE`); reading `trace` gives the same JSONB."""

    __tablename__ = "ib_commissions"
    __table_args__ = (
        UniqueConstraint(
            "server", "deal", "ib_id", "plan_id", "version", "revision", name="uq_ib_commissions"
        ),
        CheckConstraint("(trace IS NULL) <> (trace_ref IS NULL)", name="one_trace"),
        Index("ix_ib_commissions_ib_time", "ib_id", "deal_time"),
        # Rows in a payout only (those waiting for one are found by IB): a row is written
        # without a payout, so its insert does not touch this index.
        Index(
            "ix_ib_commissions_payout",
            "payout_id",
            postgresql_where=text("payout_id IS NOT NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    server: Mapped[str] = mapped_column(String(64))
    deal: Mapped[int] = mapped_column(BigInteger)
    # An IB of the tree (not a foreign key since migration 0025: checking it cost the accrual
    # a look-up per row; an IB with rows cannot be deleted or renumbered, a trigger on
    # `introducing_brokers` refuses it, and the accrual writes the ids of the tree it read).
    ib_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    plan_id: Mapped[str] = mapped_column(String(64))
    version: Mapped[int] = mapped_column(Integer)
    revision: Mapped[int] = mapped_column(Integer, server_default="0")
    level: Mapped[int] = mapped_column(Integer)
    login: Mapped[int] = mapped_column(BigInteger)
    symbol: Mapped[str] = mapped_column(String(64))
    deal_time: Mapped[int] = mapped_column(BigInteger)  # server-clock seconds
    amount: Mapped[Decimal] = mapped_column(Numeric(20, 8))
    currency: Mapped[str] = mapped_column(String(3))
    stored_trace: Mapped[dict[str, Any] | None] = mapped_column("trace", JSONB)
    # The template's key (32 hex digits), the direct IB's length (3 digits), the direct IB and
    # `volume_why` (`activities.ib_accrual.batch_rows`).
    trace_ref: Mapped[str | None] = mapped_column(Text)
    payout_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("ib_payouts.id"))
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())

    if TYPE_CHECKING:
        trace: Mapped[dict[str, Any]]


def _rebuilt_trace() -> Any:
    """The whole trace of a row stored by reference: its template with the row's own keys,
    `{"row": …, "adjustment": null}` as one JSONB, so its keys come in the order (and its
    values with the types) the whole JSONB had. (Constants as SQL literals: a key sent as a
    parameter has no type `jsonb_build_object` can take.)"""
    c = IbCommission.__table__.c
    ref = c.trace_ref

    def sql(value: str) -> Any:
        return literal_column(value)

    size = cast(func.substr(ref, sql("33"), sql("3")), Integer)
    own = []
    for key, value in (
        ("deal", c.deal),
        ("login", c.login),
        ("time", c.deal_time),
        ("symbol", c.symbol),
        ("ib", cast(c.ib_id, Text)),
        ("level", c.level),
        ("direct_ib", func.substr(ref, sql("36"), size)),
        ("volume_why", func.substr(ref, sql("36") + size)),
    ):
        own += [sql(f"'{key}'"), value]
    row = IbCommissionTrace.body.op("||")(func.jsonb_build_object(*own))
    return (
        select(func.jsonb_build_object(sql("'row'"), row, sql("'adjustment'"), null()))
        .where(IbCommissionTrace.key == cast(func.substr(ref, sql("1"), sql("32")), Uuid))
        .scalar_subquery()
    )


# What `IbCommission.trace` reads: the stored trace, else the one its reference rebuilds.
COMMISSION_TRACE = func.coalesce(IbCommission.__table__.c.trace, _rebuilt_trace())
IbCommission.trace = column_property(COMMISSION_TRACE)


class IbPayout(RecordModel):
    """What one IB is paid for one period in one currency: accrued → statement_ready →
    approved → paid, or rejected (its rows are then released to the next period)."""

    __tablename__ = "ib_payouts"
    __table_args__ = (
        UniqueConstraint("ib_id", "period_start", "period_end", "currency", name="uq_ib_payouts"),
        Index("ix_ib_payouts_status", "status"),
    )

    ib_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("introducing_brokers.id"), index=True)
    period_start: Mapped[int] = mapped_column(BigInteger)
    period_end: Mapped[int] = mapped_column(BigInteger)
    amount: Mapped[Decimal] = mapped_column(Numeric(20, 8))
    currency: Mapped[str] = mapped_column(String(3))
    rows: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16))
    statement_key: Mapped[str | None] = mapped_column(String(512))
    approved_by: Mapped[list[str]] = mapped_column(JSONB, server_default="[]")
    decision_reason: Mapped[str | None] = mapped_column(Text)
    ledger_key: Mapped[str | None] = mapped_column(String(200))
    # Paid to an MT5 account: the balance deal's ticket (migration 0023).
    mt5_ticket: Mapped[int | None] = mapped_column(BigInteger)


class IbFraudFlag(Base):
    """A fraud signal on an IB (`domain.ib.fraud`): self-referral (identity, payment instrument,
    IP shared with a client it is paid for) or commission farming. One row per IB, rule and
    evidence key, so a signal seen again by the next cycle is not stored twice; a cleared flag
    stays cleared for that evidence (new evidence is a new flag). Shown to finance with the
    IB's payouts; it never blocks a payout by itself."""

    __tablename__ = "ib_fraud_flags"
    __table_args__ = (
        UniqueConstraint("ib_id", "rule", "evidence_key", name="uq_ib_fraud_flags"),
        Index("ix_ib_fraud_flags_open", "ib_id", postgresql_where=text("cleared_at IS NULL")),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    ib_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("introducing_brokers.id"))
    rule: Mapped[str] = mapped_column(String(32))
    evidence_key: Mapped[str] = mapped_column(String(200))
    server: Mapped[str | None] = mapped_column(String(64))
    login: Mapped[int | None] = mapped_column(BigInteger)
    client_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("clients.id"))
    detail: Mapped[str] = mapped_column(Text)
    evidence: Mapped[dict[str, Any]] = mapped_column(JSONB)
    detected_at: Mapped[datetime] = mapped_column(server_default=func.now())
    cleared_at: Mapped[datetime | None]
    cleared_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("staff_users.id"))
    cleared_reason: Mapped[str | None] = mapped_column(Text)
