"""Exposure recomputation: `--positions` open positions (default 100,000) and `--orders` pending
orders (default 20,000) of `--positions / 20` accounts over 30 symbols of every computed
calculation mode, through the domain code the live view and `python -m risk.exposure` use
(`domain.exposure.compute` then `report`: buckets, every account's margin, the house).

    python -m bench.exposure --positions 10000 --orders 2000

Baseline, in the same run over the same rows: one SQL aggregation (positions and orders joined to
their accounts, volumes summed per symbol, group, country and book) on a throw-away embedded
PostgreSQL, what a report of lots without margin or conversion would cost. Both are timed as the
best of `--repeat` runs (the first domain run also builds the symbols' constants). Last line:
`RESULT seconds=… ratio_to_sql=… positions=… orders=…`.
"""

from __future__ import annotations

import argparse
import atexit
import io
import random
import shutil
import tempfile
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine as create_sync_engine
from sqlalchemy import pool

from bench.account_opening import bench_database
from domain.countries import region_of
from domain.exposure.compute import AccountTerms, Book, OrderRow, PositionRow, compute
from domain.exposure.market import Market, Quote, SymbolTerms
from domain.exposure.report import report

# name, CalcMode, base, profit, contract size, digits, bid, extra settings
SYMBOLS: list[tuple[str, int, str, str, str, int, str, dict[str, Any]]] = [
    ("EURUSD", 0, "EUR", "USD", "100000", 5, "1.10000", {}),
    ("GBPUSD", 0, "GBP", "USD", "100000", 5, "1.25000", {}),
    ("AUDUSD", 0, "AUD", "USD", "100000", 5, "0.66000", {}),
    ("NZDUSD", 0, "NZD", "USD", "100000", 5, "0.60000", {}),
    ("USDJPY", 0, "USD", "JPY", "100000", 3, "150.000", {}),
    ("USDCHF", 0, "USD", "CHF", "100000", 5, "0.88000", {}),
    ("USDCAD", 0, "USD", "CAD", "100000", 5, "1.36000", {}),
    ("EURGBP", 0, "EUR", "GBP", "100000", 5, "0.86000", {}),
    ("EURJPY", 0, "EUR", "JPY", "100000", 3, "165.000", {}),
    ("GBPJPY", 0, "GBP", "JPY", "100000", 3, "187.500", {}),
    ("EURCHF", 5, "EUR", "CHF", "100000", 5, "0.96800", {}),
    ("AUDJPY", 0, "AUD", "JPY", "100000", 3, "99.000", {}),
    ("XAUUSD", 4, "XAU", "USD", "100", 2, "2000.00", {"CurrencyMargin": "USD"}),
    ("XAGUSD", 4, "XAG", "USD", "5000", 3, "25.000", {"CurrencyMargin": "USD"}),
    ("US500", 2, "USD", "USD", "1", 2, "5000.00", {"rate": "0.05"}),
    ("US30", 2, "USD", "USD", "1", 2, "39000.00", {"rate": "0.05"}),
    ("NAS100", 2, "USD", "USD", "1", 2, "18000.00", {"rate": "0.05"}),
    ("GER40", 3, "EUR", "EUR", "1", 2, "18000.00", {"rate": "0.05", "tick": ("0.01", "0.01")}),
    ("UK100", 3, "GBP", "GBP", "1", 2, "7700.00", {"rate": "0.05", "tick": ("0.01", "0.01")}),
    ("JP225", 3, "JPY", "JPY", "1", 0, "38000", {"rate": "0.05", "tick": ("1", "1")}),
    ("USOIL", 4, "USD", "USD", "1000", 2, "78.00", {}),
    ("ES", 1, "USD", "USD", "50", 2, "5000.00", {"tick": ("0.25", "12.5"), "initial": "12000"}),
    ("NQ", 33, "USD", "USD", "20", 2, "18000.00", {"tick": ("0.25", "5"), "initial": "18000"}),
    ("AAPL", 32, "AAPL", "USD", "1", 2, "190.00", {"stock": True}),
    ("MSFT", 32, "MSFT", "USD", "1", 2, "410.00", {"stock": True}),
    ("TSLA", 32, "TSLA", "USD", "1", 2, "180.00", {"stock": True}),
    ("BTCUSD", 2, "BTC", "USD", "1", 2, "60000.00", {"rate": "0.5", "CurrencyMargin": "USD"}),
    ("ETHUSD", 2, "ETH", "USD", "1", 2, "3000.00", {"rate": "0.5", "CurrencyMargin": "USD"}),
    ("USDSGD", 0, "USD", "SGD", "100000", 5, "1.35000", {}),
    ("EURAUD", 0, "EUR", "AUD", "100000", 5, "1.65000", {}),
]
GROUPS = ("real\\standard", "real\\pro", "real\\raw", "real\\islamic", "real\\vip")
COUNTRIES = ("DE", "FR", "GB", "ES", "IT", "PL", "AE", "ZA", "SG", "AU", "JP", "BR")
CURRENCIES = ("USD", "USD", "USD", "EUR", "GBP", "JPY")
LEVERAGES = (30, 50, 100, 200, 500)


def market() -> tuple[Market, list[SymbolTerms]]:
    terms: list[SymbolTerms] = []
    quotes: dict[str, Quote] = {}
    for name, mode, base, profit, size, digits, bid, extra in SYMBOLS:
        point = Decimal(1).scaleb(-digits)
        rate = Decimal(extra.get("rate", "1"))
        tick_size, tick_value = (Decimal(v) for v in extra.get("tick", ("0", "0")))
        rates = (rate, rate) + ((Decimal("0.25"),) * 6 if extra.get("stock") else (Decimal(0),) * 6)
        terms.append(
            SymbolTerms(
                name=name,
                calc_mode=mode,
                base=base,
                profit=profit,
                margin=extra.get("CurrencyMargin", base if mode not in (32,) else profit),
                contract_size=Decimal(size),
                digits=digits,
                tick_size=tick_size,
                tick_value=tick_value,
                margin_initial=Decimal(extra.get("initial", "0")),
                margin_hedged=Decimal(size) / 2,
                margin_rates=rates,
            )
        )
        low = Decimal(bid)
        quotes[name] = Quote(low, low + 2 * point, low + point if extra.get("stock") else None)
    return Market("USD", terms, quotes), terms


def accounts(count: int, rng: random.Random) -> dict[int, AccountTerms]:
    books = (Book.B,) * 6 + (Book.A,) * 2 + (Book.HYBRID,) * 2
    found: dict[int, AccountTerms] = {}
    for n in range(count):
        login = 100000 + n
        book = books[rng.randrange(len(books))] if n >= 5 else Book.COVERAGE
        country = COUNTRIES[rng.randrange(len(COUNTRIES))]
        share = {Book.A: Decimal(1), Book.HYBRID: Decimal(rng.choice(("0.3", "0.5", "0.7")))}
        found[login] = AccountTerms(
            login=login,
            group="coverage\\lp" if book is Book.COVERAGE else GROUPS[rng.randrange(len(GROUPS))],
            country=country,
            region=region_of(country).value,
            currency=CURRENCIES[rng.randrange(len(CURRENCIES))],
            leverage=LEVERAGES[rng.randrange(len(LEVERAGES))],
            equity=Decimal(rng.randrange(100, 1_000_000)),
            hedging=rng.random() < 0.7,
            book=book,
            a_share=share.get(book, Decimal(0)),
        )
    return found


def rows(
    count: int, order_count: int, logins: dict[int, AccountTerms], rng: random.Random
) -> tuple[list[PositionRow], list[OrderRow]]:
    """Hedging accounts hold any positions; a netting account holds one per symbol (a symbol
    is not drawn twice for it)."""
    prices = {name: Decimal(bid) for name, _, _, _, _, _, bid, _ in SYMBOLS}
    digits = {name: d for name, _, _, _, _, d, _, _ in SYMBOLS}
    names = [s[0] for s in SYMBOLS]
    volumes = (100, 500, 1000, 5000, 10000, 20000, 50000)
    positions: list[PositionRow] = []
    all_logins = list(logins)
    held: set[tuple[int, str]] = set()
    while len(positions) < count:
        login = all_logins[rng.randrange(len(all_logins))]
        symbol = names[rng.randrange(len(names))]
        if not logins[login].hedging:
            if (login, symbol) in held:
                continue
            held.add((login, symbol))
        drift = Decimal(rng.randrange(-500, 500)).scaleb(-digits[symbol])
        positions.append(
            PositionRow(
                login,
                symbol,
                rng.randrange(2),
                volumes[rng.randrange(len(volumes))],
                prices[symbol] + drift,
            )
        )
    orders = [
        OrderRow(
            all_logins[rng.randrange(len(all_logins))],
            symbol := names[rng.randrange(len(names))],
            rng.randrange(2, 8),
            volumes[rng.randrange(len(volumes))],
            prices[symbol] + Decimal(rng.randrange(-2000, 2000)).scaleb(-digits[symbol]),
        )
        for _ in range(order_count)
    ]
    return positions, orders


SQL_SCHEMA = """
CREATE TABLE bench_accounts (login bigint PRIMARY KEY, grp text, country text, book text,
  a_share numeric);
CREATE TABLE bench_positions (login bigint, symbol text, action int, volume bigint,
  price_open numeric);
CREATE TABLE bench_orders (login bigint, symbol text, type int, volume_current bigint,
  price_order numeric);
"""
# The aggregation a lots-only report would run: client volumes per symbol, group, country and
# book, positions and pending orders by side, over the same rows.
SQL_BASELINE = """
SELECT r.symbol, a.grp, a.country, a.book,
  sum(CASE WHEN r.kind = 0 THEN r.volume ELSE 0 END) AS long_volume,
  sum(CASE WHEN r.kind = 1 THEN r.volume ELSE 0 END) AS short_volume,
  sum(CASE WHEN r.kind = 2 THEN r.volume ELSE 0 END) AS pending_buy_volume,
  sum(CASE WHEN r.kind = 3 THEN r.volume ELSE 0 END) AS pending_sell_volume,
  sum(r.volume * r.price) AS weighted
FROM (
  SELECT login, symbol, action AS kind, volume, price_open AS price FROM bench_positions
  UNION ALL
  SELECT login, symbol, 2 + type % 2, volume_current, price_order FROM bench_orders
) r JOIN bench_accounts a ON a.login = r.login
GROUP BY r.symbol, a.grp, a.country, a.book
"""


def _copy(cursor: Any, table: str, lines: list[str]) -> None:
    with cursor.copy(f"COPY {table} FROM STDIN") as copy:
        copy.write(io.StringIO("".join(lines)).getvalue())


def sql_seconds(
    url: str,
    logins: dict[int, AccountTerms],
    positions: list[PositionRow],
    orders: list[OrderRow],
    repeat: int,
) -> tuple[float, int]:
    engine = create_sync_engine(url, poolclass=pool.NullPool)
    connection = engine.raw_connection()
    try:
        cursor = connection.cursor()
        cursor.execute(SQL_SCHEMA)
        _copy(
            cursor,
            "bench_accounts",
            [
                f"{a.login}\t{a.group.replace(chr(92), chr(92) * 2)}\t{a.country}\t"
                f"{a.book.value}\t{a.a_share}\n"
                for a in logins.values()
            ],
        )
        _copy(cursor, "bench_positions", ["\t".join(map(str, p)) + "\n" for p in positions])
        _copy(cursor, "bench_orders", ["\t".join(map(str, o)) + "\n" for o in orders])
        cursor.execute("ANALYZE")
        connection.commit()
        best, found = float("inf"), 0
        for _ in range(repeat):
            begun = time.perf_counter()
            cursor.execute(SQL_BASELINE)
            found = len(cursor.fetchall())
            best = min(best, time.perf_counter() - begun)
        return best, found
    finally:
        connection.close()
        engine.dispose()


def best_of(repeat: int, run: Callable[[], Any]) -> tuple[float, float, Any]:
    """(best wall seconds, CPU seconds of that run, its result)."""
    best, cpu, result = float("inf"), 0.0, None
    for _ in range(repeat):
        begun, cpu_begun = time.perf_counter(), time.process_time()
        result = run()
        wall = time.perf_counter() - begun
        if wall < best:
            best, cpu = wall, time.process_time() - cpu_begun
    return best, cpu, result


def main(position_count: int, order_count: int, repeat: int, url: str) -> None:
    rng = random.Random(15)
    logins = accounts(max(10, position_count // 20), rng)
    positions, orders = rows(position_count, order_count, logins, rng)

    def domain() -> dict[str, Any]:
        built, _ = market()
        return report(compute(built, logins, positions, orders))

    seconds, cpu, answer = best_of(repeat, domain)
    compute_only, _, _ = best_of(repeat, lambda: compute(market()[0], logins, positions, orders))
    sql, groups = sql_seconds(url, logins, positions, orders, repeat)
    print(
        f"domain: {len(logins)} accounts, {len(answer['by_symbol'])} symbols,"
        f" total net {answer['total']['net_notional']} {answer['currency']},"
        f" house net {answer['house']['net_notional']}; compute {compute_only:.3f} s,"
        f" compute + report {seconds:.3f} s ({cpu:.3f} s CPU);"
        f" SQL baseline: {groups} rows in {sql:.3f} s"
    )
    print(
        f"RESULT seconds={seconds:.3f} ratio_to_sql={seconds / sql:.2f}"
        f" positions={len(positions)} orders={len(orders)}"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--positions", type=int, default=100_000, help="open positions")
    parser.add_argument("--orders", type=int, default=20_000, help="pending orders")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each, the best counts")
    args = parser.parse_args()
    # The server stops at exit (bench_database); exit handlers run last-registered first, so the
    # folder is removed after it stops, not under a running server.
    folder = tempfile.mkdtemp(prefix="bf-bench-exposure-")
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    main(args.positions, args.orders, args.repeat, bench_database(Path(folder)))
