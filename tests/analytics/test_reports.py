"""Each report's figures against an independent SQL query over the raw tables (deals, account
books, symbols, payments, the ledger, account states, the IB tree), on a small seeded day; the
aggregate refresh is idempotent; the PDF carries the figures (pdftotext)."""

from __future__ import annotations

import shutil
import subprocess
import uuid
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from activities.analytics import AnalyticsSteps
from api.analytics import service
from api.analytics.schemas import ClientMoneyRow, ClientMoneyStatement
from contracts.analytics import RefreshAggregates
from db.ledger import post_entry
from db.sealed import SecretBox
from domain.ledger import JournalEntry, Posting
from domain.money import Money
from domain.roles import StaffRole
from settings import Settings
from tests.ib_payout.scene import SERVER, Scene
from tests.support.people import People

DAY = date(2026, 3, 2)
T = int(datetime(2026, 3, 2, 9, tzinfo=UTC).timestamp())
NEXT = T + 86400  # the next day


def deal(
    ticket: int, login: int, symbol: str, action: int, at: int, **fields: Any
) -> dict[str, Any]:
    return {
        "Deal": ticket, "Login": login, "Time": at, "Symbol": symbol, "Action": action,
        "Entry": fields.pop("entry", 0), "Volume": fields.pop("volume", 10000),
        "Price": fields.pop("price", "1.1"), "PositionID": ticket,
        "ContractSize": fields.pop("cs", "100000"), "Digits": 5, **fields,
    }  # fmt: skip


async def seed(sessions: async_sessionmaker[AsyncSession]) -> dict[str, uuid.UUID]:
    scene = Scene(sessions)
    for login in (7001, 7002, 7003):
        await scene.account(login)
    ib = await scene.ib("Atlas", await _plan(scene))
    await scene.attribute(7001, ib, T - 86400 * 30)
    await scene.write_deals(
        [
            deal(1, 7001, "EURUSD", 0, T, Commission="-3.5", Storage="0", Fee="-0.1"),
            deal(2, 7001, "EURUSD", 1, T + 60, entry=1, Commission="-3.5", Profit="120",
                 Storage="-1.2", VolumeClosed=10000),
            deal(3, 7002, "XAUUSD", 0, T + 100, volume=5000, cs="100", price="2000",
                 Commission="-7"),
            deal(4, 7002, "XAUUSD", 1, T + 200, entry=1, volume=5000, cs="100", price="1990",
                 Profit="-50", VolumeClosed=5000),
            deal(5, 7003, "EURUSD", 1, T + 300, volume=20000, Commission="-4", Profit="-80",
                 entry=1, VolumeClosed=20000),
            deal(6, 7003, "", 7, T + 400, volume=0, Profit="-2.5"),  # a commission deal
            deal(7, 7001, "", 2, T + 500, volume=0, Profit="1000"),  # a balance deal: not trade
            deal(8, 7001, "EURUSD", 0, NEXT, Commission="-1"),  # the next day
        ]
    )  # fmt: skip
    async with sessions.begin() as session:
        rows = await session.execute(text("SELECT login, client_id FROM mt5_accounts"))
        clients = {f"c{login}": client for login, client in rows.all()}
        await session.execute(
            text("UPDATE clients SET country = 'FR', created_at = '2026-01-15' WHERE id = :c"),
            {"c": clients["c7002"]},
        )
        await session.execute(
            text("UPDATE clients SET created_at = '2026-02-10' WHERE id <> :c"),
            {"c": clients["c7002"]},
        )
        await session.execute(
            text(
                "INSERT INTO account_books (server, login, book, a_share, set_by, updated_at) "
                "VALUES (:s, 7002, 'A', NULL, 'test', now()),"
                " (:s, 7003, 'hybrid', 0.25, 'test', now())"
            ),
            {"s": SERVER},
        )
        await session.execute(
            text(
                "INSERT INTO symbols (server, symbol, path, calc_mode, digits, spread,"
                " contract_size,"
                " point, currency_base, currency_profit, currency_margin, raw, seen_at) VALUES"
                " (:s, 'EURUSD', 'Forex\\Majors\\EURUSD', 0, 5, 0, 100000, 0.00001, 'EUR', 'USD',"
                " 'EUR', '{}', now()),"
                " (:s, 'XAUUSD', 'Metals\\XAUUSD', 2, 2, 0, 100, 0.01, 'XAU', 'USD', 'XAU', '{}',"
                " now())"
            ),
            {"s": SERVER},
        )
        for i, (client, direction, amount) in enumerate(
            [
                ("c7001", "deposit", 150000),
                ("c7001", "withdrawal", 20000),
                ("c7002", "deposit", 90000),
            ]
        ):
            await session.execute(
                text(
                    "INSERT INTO payments (id, client_id, reference, status, currency,"
                    " amount_minor,"
                    " idempotency_key, request_hash, workflow_id, direction, provider,"
                    " requested_minor, compliance_status, risk_flags, completed_at) VALUES"
                    " (:id, :c, :ref, 'completed', 'USD', :a, :ref, 'h', 'w', :d, 'cardco', :a,"
                    " 'not_checked', '{}', :at)"
                ),
                {"id": uuid.uuid4(), "c": clients[client], "ref": f"r{i}", "a": amount,
                 "d": direction, "at": datetime(2026, 3, 1, tzinfo=UTC)},
            )  # fmt: skip
        wallet = f"wallet:{clients['c7001']}:USD"
        await post_entry(
            session,
            JournalEntry(
                idempotency_key="seed-wallet",
                description="deposit to wallet",
                postings=(
                    Posting(account="psp:cardco:USD", amount=Money.of("1300.00", "USD")),
                    Posting(account=wallet, amount=Money.of("-1000.00", "USD")),
                    Posting(account=f"mt5:{SERVER}:7002:USD", amount=Money.of("-300.00", "USD")),
                ),
            ),
        )  # fmt: skip
        await session.execute(text("SELECT create_account_states_month('2026-03-01')"))
        states = (
            (7002, "250", "2026-03-02 10:00"),
            (7002, "240", "2026-03-02 20:00"),
            (7003, "999", "2026-03-03 10:00"),
        )
        for login, balance, at in states:
            await session.execute(
                text(
                    "INSERT INTO account_state_history (server, login, taken_at, currency_digits,"
                    " balance, credit, equity, margin, margin_free, margin_level, profit, storage,"
                    " floating) VALUES (:s, :l, :at, 2, :b, 0, :b, 0, :b, 0, 0, 0, 0)"
                ),
                {"s": SERVER, "l": login, "at": datetime.fromisoformat(at).replace(tzinfo=UTC),
                 "b": Decimal(balance)},
            )  # fmt: skip
    return clients | {"ib": ib}


async def _plan(scene: Scene) -> str:
    from tests.ib_payout.scene import version

    await scene.plan("analytics-plan", version(1, 0, "1", "0"))
    return "analytics-plan"


async def aggregate_rows(session: AsyncSession) -> list[tuple[Any, ...]]:
    result = await session.execute(text("SELECT * FROM analytics_daily ORDER BY 1, 2, 3, 4"))
    return [tuple(r) for r in result.all()]


# The independent query: revenue per symbol straight from the deals and the books.
REVENUE_BY_SYMBOL_SQL = """
    SELECT d.symbol,
           sum(-d.commission - d.storage - d.fee
               - d.profit * CASE b.book WHEN 'A' THEN 0 WHEN 'hybrid' THEN 1 - b.a_share ELSE 1 END)
    FROM deals d LEFT JOIN account_books b ON (b.server, b.login) = (d.server, d.login)
    WHERE d.action IN (0, 1) AND d.time >= '2026-03-02' AND d.time < '2026-03-03'
    GROUP BY d.symbol ORDER BY d.symbol
"""


async def test_reports_equal_independent_sql(
    sessions: async_sessionmaker[AsyncSession], artifacts_dir: Path
) -> None:
    ids = await seed(sessions)
    steps = AnalyticsSteps(sessions)
    first = await steps.run(RefreshAggregates(servers=[SERVER]))
    assert first.days == {SERVER: "2026-03-02..2026-03-03"}
    async with sessions() as session:
        once = await aggregate_rows(session)
    # Idempotent: a refresh of the same days, and a back-fill of them, write the same rows.
    await steps.run(RefreshAggregates(servers=[SERVER]))
    await steps.run(RefreshAggregates(servers=[SERVER], first=DAY, last=date(2026, 3, 3)))
    async with sessions() as session:
        assert await aggregate_rows(session) == once

        by_symbol = await service.revenue(session, "symbol", DAY, DAY)
        expected = dict((await session.execute(text(REVENUE_BY_SYMBOL_SQL))).tuples().all())
        assert {r.key: r.revenue for r in by_symbol.rows} == expected
        # Hand check: EURUSD = 3.5+3.5+0.1+1.2-120 (B) + 4 + 80*0.75 (hybrid) = -47.7
        assert expected["EURUSD"] == Decimal("-47.7")
        # The commission deal (no symbol) counts in the day's breakdown, not in a symbol.
        by_day = await service.revenue(session, "day", DAY, DAY)
        day_sql = await session.scalar(
            text(
                "SELECT sum(CASE WHEN action IN (0, 1) THEN -commission ELSE -profit END)"
                " FROM deals"
                " WHERE action IN (0, 1, 7, 8, 9) AND time >= '2026-03-02' AND time < '2026-03-03'"
            )
        )
        assert by_day.rows[0].commission_income == day_sql == Decimal("20.5")

        groups = await service.revenue(session, "symbol_group", DAY, DAY)
        assert {r.key: r.revenue for r in groups.rows} == {
            "Forex\\Majors": expected["EURUSD"],
            "Metals": expected["XAUUSD"],
        }
        books = await service.revenue(session, "book", DAY, DAY)
        book_sql = dict(
            (
                await session.execute(
                    text(
                        "SELECT coalesce(b.book, 'B'), sum(d.volume::numeric / 10000) FROM deals d"
                        " LEFT JOIN account_books b ON (b.server, b.login) = (d.server, d.login)"
                        " WHERE d.action IN (0, 1) AND d.time < '2026-03-03' GROUP BY 1"
                    )
                )
            )
            .tuples()
            .all()
        )
        assert {r.key: r.volume_lots for r in books.rows} == book_sql

        ltv = await service.lifetime_value(session, DAY, DAY)
        net_sql = dict(
            (
                await session.execute(
                    text(
                        "SELECT client_id, sum(CASE direction WHEN 'deposit' THEN amount_minor"
                        " ELSE -amount_minor END) / 100.0 FROM payments WHERE status = 'completed'"
                        " GROUP BY client_id"
                    )
                )
            )
            .tuples()
            .all()
        )
        assert {c.client_id: c.net_deposits for c in ltv.clients if c.net_deposits} == net_sql
        assert {(c.cohort, c.country) for c in ltv.cohorts} >= {
            ("2026-01", "FR"),
            ("2026-02", "DE"),
        }

        ibs = await service.ib_contribution(session, DAY, DAY)
        ib_sql = await session.scalar(
            text(
                "SELECT sum(-d.commission - d.storage - d.fee - d.profit) FROM deals d"
                " JOIN ib_attributions a ON (a.server, a.login) = (d.server, d.login)"
                " WHERE a.ib_id = :ib AND d.action IN (0, 1) AND d.time < '2026-03-03'"
            ),
            {"ib": ids["ib"]},
        )
        assert [(r.ib_id, r.revenue) for r in ibs.rows] == [(ids["ib"], ib_sql)]

        booked = await session.scalar(text("SELECT max(booked_at) FROM journal_entries"))
        assert await service.client_money(session, DAY) == ClientMoneyStatement(
            day=DAY,
            rows=[
                ClientMoneyRow(
                    currency="USD",
                    wallets=0,
                    holds=0,
                    mt5_ledger=0,
                    ledger_client_money=0,
                    mt5_balances=240,
                    mt5_accounts=1,
                    mt5_difference=240,
                    client_money_requirement=240,
                )
            ],
        )  # fmt: skip  (before the entry was booked; 7002's last state of the day)
        money = await service.client_money(session, booked.date())
        [usd] = money.rows
        wallets_sql = await session.scalar(
            text(
                "SELECT -sum(p.amount_minor) / 100.0 FROM postings p JOIN ledger_accounts a"
                " ON a.id = p.account_id WHERE a.code LIKE 'wallet:%'"
            )
        )
        assert usd.wallets == wallets_sql == Decimal("1000.00")
        assert usd.mt5_ledger == Decimal("300.00")
        assert usd.mt5_balances == Decimal("1239") and usd.mt5_accounts == 2
        assert usd.client_money_requirement == Decimal("2239.00")

        csv_text = await service.export_csv(session, service.Export.TRANSACTIONS, DAY, DAY)
        lines = csv_text.strip().split("\n")
        count = await session.scalar(
            text(
                "SELECT count(*) FROM deals WHERE action IN (0, 1)"
                " AND time >= '2026-03-02' AND time < '2026-03-03'"
            )
        )
        assert len(lines) - 1 == count == 5
        assert lines[0].split(",") == list(service.TRANSACTION_FIELDS)
        assert lines[3].split(",")[7:13] == ["XAUUSD", "USD", "BUY", "IN", "0.5", "50"]

        if shutil.which("pdftotext"):
            pdf = await service.report_pdf(session, DAY, DAY, "USD")
            (artifacts_dir / "analytics-report.pdf").write_bytes(pdf)
            words = subprocess.run(
                ["pdftotext", "-layout", str(artifacts_dir / "analytics-report.pdf"), "-"],
                check=True, capture_output=True, text=True, timeout=60,
            ).stdout  # fmt: skip
            assert "Management report" in words
            assert "-47.7" in words and "Forex\\Majors" in words


async def test_the_api_answers_every_report_to_finance(
    sessions: async_sessionmaker[AsyncSession], settings: Settings, api: httpx.AsyncClient
) -> None:
    """The routes over the same seeded day: JSON equal to the service's, CSV and PDF served,
    and dates at the ends of the calendar answered (no 500), `first` after `last` empty."""
    await seed(sessions)
    await AnalyticsSteps(sessions).run(RefreshAggregates(servers=[SERVER]))
    people = People(sessions, SecretBox(settings.secrets_key), api)
    finance = (await people.staff(StaffRole.FINANCE)).headers
    answer = await api.get(
        "/v1/analytics/revenue", params={"by": "symbol_group", "first": DAY, "last": DAY},
        headers=finance,
    )  # fmt: skip
    assert answer.status_code == 200
    assert {r["key"]: Decimal(r["revenue"]) for r in answer.json()["rows"]} == {
        "Forex\\Majors": Decimal("-47.7"),
        "Metals": Decimal("7"),  # 7002 is A-book: its commission only
    }
    for path in (
        "/v1/analytics/lifetime-value", "/v1/analytics/regions", "/v1/analytics/ib-contribution",
        "/v1/analytics/client-money", "/v1/analytics/export/transactions",
        "/v1/analytics/export/cohorts",
    ):  # fmt: skip
        for params in ({}, {"first": "9999-12-31", "last": "9999-12-31", "day": "9999-12-31"},
                       {"first": "0001-01-01", "last": "0001-01-01", "day": "0001-01-01"},
                       {"first": "2026-03-03", "last": "2026-03-01"}):  # fmt: skip
            assert (await api.get(path, params=params, headers=finance)).status_code == 200, path
    pdf = await api.get(
        "/v1/analytics/report.pdf", params={"first": DAY, "last": DAY}, headers=finance
    )
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF-")
    page = await api.get(
        "/console/reports", params={"first": DAY, "last": DAY, "currency": "USD"}, headers=finance
    )
    assert page.status_code == 200
    assert page.text.count("<svg") == 5 and page.text.count('class="bar"') >= 2
    dealer = (await people.staff(StaffRole.DEALER)).headers
    assert (await api.get("/v1/analytics/revenue", headers=dealer)).status_code == 403
