"""Exposure and margin golden cases, each figure computed by hand in the comments: calculation
modes (forex, forex no leverage, CFD, CFD index, CFD leverage, futures, exchange stocks),
currencies (USDJPY, EURGBP, a JPY index in USD, a JPY account), netting and hedging, pending
orders, and the A / B / hybrid books with the house's net position.

Quotes used throughout (mid = (bid + ask) / 2, values exposure; margin converts at the side
less favourable to the client: a direct pair's ask, an inverse pair's 1 / bid):
EURUSD 1.1000 / 1.1002 (mid 1.1001), USDJPY 149.90 / 150.10 (mid 150.00), EURGBP 0.8600 / 0.8602
(mid 0.8601), GBPUSD 1.2500 / 1.2502 (mid 1.2501), XAUUSD 2010 / 2011 (mid 2010.5), US500
5000 / 5001 (mid 5000.5), JP225 38000 / 38020 (mid 38010), ES 5010 / 5010.5 (mid 5010.25),
AAPL 189.98 / 190.02 (mid 190.00), Last 190.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import pytest

from domain.errors import InvalidInput
from domain.exposure.compute import compute
from domain.exposure.document import ExposureDocument
from domain.exposure.report import report

SYMBOLS: list[dict[str, Any]] = [
    {
        "Symbol": "EURUSD",
        "CalcMode": 0,
        "CurrencyBase": "EUR",
        "CurrencyProfit": "USD",
        "ContractSize": "100000",
    },
    {
        "Symbol": "USDJPY",
        "CalcMode": 0,
        "CurrencyBase": "USD",
        "CurrencyProfit": "JPY",
        "ContractSize": "100000",
        "Digits": 3,
    },
    {
        "Symbol": "EURGBP",
        "CalcMode": 0,
        "CurrencyBase": "EUR",
        "CurrencyProfit": "GBP",
        "ContractSize": "100000",
    },
    {
        "Symbol": "GBPUSD",
        "CalcMode": 0,
        "CurrencyBase": "GBP",
        "CurrencyProfit": "USD",
        "ContractSize": "100000",
    },
    {
        "Symbol": "EURUSD.nl",
        "CalcMode": 5,
        "CurrencyBase": "EUR",
        "CurrencyProfit": "USD",
        "ContractSize": "100000",
    },
    {
        "Symbol": "EURUSD.h0",
        "CalcMode": 0,
        "CurrencyBase": "EUR",
        "CurrencyProfit": "USD",
        "ContractSize": "100000",
        "MarginHedged": "0",
    },
    {
        "Symbol": "XAUUSD",
        "CalcMode": 4,
        "CurrencyBase": "XAU",
        "CurrencyProfit": "USD",
        "CurrencyMargin": "USD",
        "ContractSize": "100",
        "Digits": 2,
        "MarginHedged": "50",
    },
    {
        "Symbol": "XAUUSD.ll",
        "CalcMode": 4,
        "CurrencyBase": "XAU",
        "CurrencyProfit": "USD",
        "CurrencyMargin": "USD",
        "ContractSize": "100",
        "Digits": 2,
        "MarginFlags": 4,
    },
    {
        "Symbol": "US500",
        "CalcMode": 2,
        "CurrencyBase": "USD",
        "CurrencyProfit": "USD",
        "ContractSize": "1",
        "Digits": 2,
        "MarginRateInitial": "0.05",
    },
    {
        "Symbol": "JP225",
        "CalcMode": 3,
        "CurrencyBase": "JPY",
        "CurrencyProfit": "JPY",
        "ContractSize": "1",
        "Digits": 0,
        "TickSize": "1",
        "TickValue": "1",
        "MarginRateInitial": "0.05",
    },
    {
        "Symbol": "ES",
        "CalcMode": 1,
        "CurrencyBase": "USD",
        "CurrencyProfit": "USD",
        "ContractSize": "50",
        "Digits": 2,
        "TickSize": "0.25",
        "TickValue": "12.5",
        "MarginInitial": "12000",
    },
    {
        "Symbol": "AAPL",
        "CalcMode": 32,
        "CurrencyBase": "AAPL",
        "CurrencyProfit": "USD",
        "CurrencyMargin": "USD",
        "ContractSize": "1",
        "Digits": 2,
        "MarginRateInitial": ["0.25", "0.5", "0.25", "0.25", "0.25", "0.25", "0.25", "0.25"],
    },
]
QUOTES: list[dict[str, Any]] = [
    {"Symbol": name, "Bid": bid, "Ask": ask, **extra}
    for name, bid, ask, extra in (
        ("EURUSD", "1.1000", "1.1002", {}),
        ("EURUSD.nl", "1.1000", "1.1002", {}),
        ("EURUSD.h0", "1.1000", "1.1002", {}),
        ("USDJPY", "149.90", "150.10", {}),
        ("EURGBP", "0.8600", "0.8602", {}),
        ("GBPUSD", "1.2500", "1.2502", {}),
        ("XAUUSD", "2010", "2011", {}),
        ("XAUUSD.ll", "2010", "2011", {}),
        ("US500", "5000", "5001", {}),
        ("JP225", "38000", "38020", {}),
        ("ES", "5010", "5010.5", {}),
        ("AAPL", "189.98", "190.02", {"Last": "190"}),
    )
]
NETTING, HEDGING = 0, 2


def account(login: int, **fields: Any) -> dict[str, Any]:
    return {
        "Login": login,
        "Group": "real\\standard",
        "Leverage": 100,
        "Country": "DE",
        "Equity": "10000",
        "MarginMode": NETTING,
        "book": "B",
    } | fields


def position(
    ticket: int, login: int, symbol: str, side: int, lots: str, price: str
) -> dict[str, Any]:
    volume = int(Decimal(lots) * 10000)  # "1.5" lots -> Volume 15000
    return {
        "Position": ticket,
        "Login": login,
        "Symbol": symbol,
        "Action": side,
        "Volume": volume,
        "PriceOpen": price,
    }


BUY, SELL = 0, 1


def run(
    accounts: list[dict[str, Any]],
    positions: list[dict[str, Any]],
    orders: Sequence[dict[str, Any]] = (),
) -> dict[str, Any]:
    doc = ExposureDocument.model_validate(
        {
            "currency": "USD",
            "symbols": SYMBOLS,
            "quotes": QUOTES,
            "accounts": accounts,
            "positions": positions,
            "orders": list(orders),
        }
    )
    return report(compute(doc.market(), doc.account_terms(), doc.position_rows(), doc.order_rows()))


def only_account(result: dict[str, Any]) -> dict[str, Any]:
    [row] = result["accounts"]
    assert isinstance(row, dict)
    return row


class TestCalculationModes:
    def test_forex_eurusd(self) -> None:
        result = run([account(1)], [position(1, 1, "EURUSD", BUY, "1", "1.1000")])
        eurusd = result["by_symbol"]["EURUSD"]
        # notional: 1 lot x 100000 x mid 1.1001 (USD is the reporting currency) = 110010.00
        assert (eurusd["net_lots"], eurusd["net_notional"]) == ("1", "110010.00")
        # margin: 1 x 100000 / 100 x rate 1 = 1000 EUR, x EURUSD ask 1.1002 = 1100.20 USD
        row = only_account(result)
        assert (row["margin"], row["currency"]) == ("1100.20", "USD")
        # utilisation 1100.20 / 10000 = 0.110020; margin level 10000 / 1100.20 x 100 = 908.93 %
        assert (row["utilisation"], row["margin_level"]) == ("0.110020", "908.93")
        assert eurusd["margin"] == "1100.20"

    def test_usdjpy_on_a_jpy_account(self) -> None:
        result = run(
            [account(1, Currency="JPY", Equity="3000000")],
            [position(1, 1, "USDJPY", SELL, "2", "150.00")],
        )
        usdjpy = result["by_symbol"]["USDJPY"]
        # notional: 2 x 100000 x mid 150.00 = 30,000,000 JPY x (1 / mid 150.00) = 200000.00 USD
        assert (usdjpy["short_lots"], usdjpy["short_notional"]) == ("2", "200000.00")
        assert usdjpy["net_notional"] == "-200000.00"
        # margin: 2 x 100000 / 100 = 2000 USD (margin currency = base), to JPY at the USDJPY
        # ask 150.10 = 300200 JPY (JPY has no minor unit)
        row = only_account(result)
        assert (row["margin"], row["currency"]) == ("300200", "JPY")
        # 300200 / 3000000 = 0.1000667; in USD at the mid: 300200 / 150 = 2001.33,
        # equity 3000000 / 150 = 20000.00
        assert row["utilisation"] == "0.100067"
        assert (row["margin_reporting"], row["equity_reporting"]) == ("2001.33", "20000.00")

    def test_eurgbp_on_a_eur_account(self) -> None:
        result = run(
            [account(1, Currency="EUR", Leverage=30)],
            [position(1, 1, "EURGBP", BUY, "1", "0.8600")],
        )
        # notional: 100000 x mid 0.8601 GBP = 86010 GBP x GBPUSD mid 1.2501 = 107521.101
        assert result["by_symbol"]["EURGBP"]["long_notional"] == "107521.10"
        # margin: 100000 / 30 = 3333.33 EUR (the margin currency is the deposit currency);
        # in USD at the EURUSD mid: 3333.333... x 1.1001 = 3667.00
        row = only_account(result)
        assert (row["margin"], row["margin_reporting"]) == ("3333.33", "3667.00")

    def test_forex_no_leverage(self) -> None:
        result = run([account(1)], [position(1, 1, "EURUSD.nl", BUY, "0.5", "1.1000")])
        # 0.5 x 100000 x rate 1 = 50000 EUR (the leverage is not applied) x 1.1002 = 55010.00
        assert only_account(result)["margin"] == "55010.00"

    def test_cfd(self) -> None:
        result = run([account(1)], [position(1, 1, "US500", BUY, "2", "5000")])
        # margin: 2 x 1 x open price 5000 x 0.05 = 500 USD; notional: 2 x 1 x mid 5000.5
        assert only_account(result)["margin"] == "500.00"
        assert result["by_symbol"]["US500"]["net_notional"] == "10001.00"

    def test_cfd_leverage(self) -> None:
        result = run([account(1)], [position(1, 1, "XAUUSD", BUY, "1", "2000")])
        # margin: 1 x 100 x 2000 / 100 = 2000 USD; notional: 1 x 100 x mid 2010.5 = 201050
        assert only_account(result)["margin"] == "2000.00"
        assert result["by_symbol"]["XAUUSD"]["net_notional"] == "201050.00"

    def test_cfd_index_in_jpy_converted_to_usd(self) -> None:
        result = run([account(1)], [position(1, 1, "JP225", SELL, "10", "38000")])
        # margin: 10 x 1 x 38000 x TickValue 1 / TickSize 1 x 0.05 = 19000 JPY, to USD through
        # the inverse pair USDJPY at 1 / bid: 19000 / 149.90 = 126.7511... = 126.75 USD
        assert only_account(result)["margin"] == "126.75"
        # notional: 10 x 1 x mid 38010 = 380100 JPY / mid 150.00 = 2534.00 USD, short
        assert result["by_symbol"]["JP225"]["net_notional"] == "-2534.00"

    def test_futures(self) -> None:
        result = run([account(1)], [position(1, 1, "ES", BUY, "2", "5000")])
        # margin: 2 lots x MarginInitial 12000 x rate 1 = 24000 USD (no leverage, no price)
        assert only_account(result)["margin"] == "24000.00"
        # notional: 2 x (TickValue 12.5 / TickSize 0.25 = 50 per point) x mid 5010.25
        assert result["by_symbol"]["ES"]["net_notional"] == "501025.00"

    def test_exchange_stocks_with_a_charged_pending_order(self) -> None:
        result = run(
            [account(1, Equity="50000")],
            [position(1, 1, "AAPL", BUY, "100", "180")],
            [
                {
                    "Order": 9,
                    "Login": 1,
                    "Symbol": "AAPL",
                    "Type": 3,
                    "VolumeCurrent": 100000,
                    "PriceOrder": "200",
                }
            ],
        )
        row = only_account(result)
        # position: 100 x 1 x Last 190 (not the open price 180) x buy rate 0.25 = 4750 USD
        assert row["margin_positions"] == "4750.00"
        # sell limit 10 lots: 10 x 1 x Last 190 x sell-limit rate 0.25 = 475 USD
        assert (row["margin_pending"], row["margin"]) == ("475.00", "5225.00")
        aapl = result["by_symbol"]["AAPL"]
        # notional 100 x 1 x mid 190.00; pending at its own price: 10 x 1 x 200 = 2000
        assert (aapl["net_notional"], aapl["pending"]["sell_notional"]) == ("19000.00", "2000.00")
        assert aapl["pending"]["sell_lots"] == "10"


class TestNettingAndHedging:
    def test_a_hedged_pair_nets_to_zero_and_is_charged_once(self) -> None:
        result = run(
            [account(1, MarginMode=HEDGING)],
            [
                position(1, 1, "EURUSD", BUY, "1", "1.1000"),
                position(2, 1, "EURUSD", SELL, "1", "1.1010"),
            ],
        )
        eurusd = result["by_symbol"]["EURUSD"]
        # net 1 - 1 = 0 lots, gross 2; notional 0 net, 2 x 110010 gross
        assert (eurusd["net_lots"], eurusd["gross_lots"]) == ("0", "2")
        assert (eurusd["net_notional"], eurusd["gross_notional"]) == ("0.00", "220020.00")
        # hedged 1 lot x MarginHedged (absent: ContractSize) / ContractSize = 1 lot charged:
        # 1 x 100000 / 100 = 1000 EUR x 1.1002 = 1100.20 USD (not 2200.40)
        assert only_account(result)["margin"] == "1100.20"

    def test_uncovered_volume_plus_hedged_volume(self) -> None:
        result = run(
            [account(1, MarginMode=HEDGING)],
            [
                position(1, 1, "EURUSD", BUY, "1.5", "1.1000"),
                position(2, 1, "EURUSD", SELL, "1", "1.1010"),
                position(3, 1, "EURUSD.h0", BUY, "1.5", "1.1000"),
                position(4, 1, "EURUSD.h0", SELL, "1", "1.1010"),
            ],
        )
        # EURUSD: uncovered 0.5 x 1000 = 500 EUR + hedged 1 lot 1000 EUR = 1500 EUR
        # EURUSD.h0 (MarginHedged 0): only the uncovered 500 EUR
        # (1500 + 500) x 1.1002 = 2200.40 USD
        assert only_account(result)["margin"] == "2200.40"
        assert result["by_symbol"]["EURUSD"]["net_lots"] == "0.5"

    def test_hedged_cfd_at_the_mean_of_both_legs(self) -> None:
        result = run(
            [account(1, MarginMode=HEDGING)],
            [
                position(1, 1, "XAUUSD", BUY, "1", "2000"),
                position(2, 1, "XAUUSD", SELL, "1", "2020"),
            ],
        )
        # hedged 1 lot x MarginHedged 50 / ContractSize 100 = 0.5 lot at (2000 + 2020) / 2:
        # 0.5 x 100 x 2010 / 100 = 1005 USD
        assert only_account(result)["margin"] == "1005.00"

    def test_large_leg_flag(self) -> None:
        result = run(
            [account(1, MarginMode=HEDGING)],
            [
                position(1, 1, "XAUUSD.ll", BUY, "2", "2000"),
                position(2, 1, "XAUUSD.ll", SELL, "1", "2020"),
            ],
        )
        # max(buy 2 x 100 x 2000 / 100 = 4000, sell 1 x 100 x 2020 / 100 = 2020) = 4000
        assert only_account(result)["margin"] == "4000.00"

    def test_netting_with_both_sides_is_refused(self) -> None:
        with pytest.raises(InvalidInput, match="nets its positions"):
            run(
                [account(1)],
                [
                    position(1, 1, "EURUSD", BUY, "1", "1.1000"),
                    position(2, 1, "EURUSD", SELL, "1", "1.1010"),
                ],
            )

    def test_netting_and_hedging_accounts_side_by_side(self) -> None:
        result = run(
            [account(1), account(2, MarginMode=HEDGING)],
            [
                position(1, 1, "EURUSD", BUY, "1", "1.1000"),
                position(2, 2, "EURUSD", BUY, "1", "1.1000"),
                position(3, 2, "EURUSD", SELL, "1", "1.1000"),
            ],
        )
        # login 1: 1000 EUR; login 2 (hedged pair): 1000 EUR; both 1100.20 USD
        assert [a["margin"] for a in result["accounts"]] == ["1100.20", "1100.20"]
        # the group: 2200.40 / (10000 + 10000) = 0.110020
        group = result["groups"]["real\\standard"]
        assert (group["margin"], group["utilisation"], group["accounts"]) == (
            "2200.40",
            "0.110020",
            2,
        )
        # exposure: net 1 + 1 - 1 = 1 lot, gross 3
        eurusd = result["by_symbol"]["EURUSD"]
        assert (eurusd["net_lots"], eurusd["gross_lots"]) == ("1", "3")


class TestPendingOrders:
    def test_pending_orders_are_potential_exposure_only(self) -> None:
        result = run(
            [account(1)],
            [position(1, 1, "EURUSD", BUY, "1", "1.1000")],
            [
                {
                    "Order": 7,
                    "Login": 1,
                    "Symbol": "EURUSD",
                    "Type": 2,
                    "VolumeCurrent": 5000,
                    "PriceOrder": "1.0900",
                },  # buy limit 0.5
                {
                    "Order": 8,
                    "Login": 1,
                    "Symbol": "EURUSD",
                    "Type": 5,
                    "VolumeCurrent": 20000,
                    "PriceOrder": "1.0950",
                },  # sell stop 2
                {"Order": 9, "Login": 1, "Symbol": "EURUSD", "Type": 0, "VolumeCurrent": 10000},
                {"Order": 10, "Login": 1, "Symbol": "EURUSD", "Type": 8, "VolumeCurrent": 10000},
            ],
        )
        eurusd = result["by_symbol"]["EURUSD"]
        pending = eurusd["pending"]
        # buy limit 0.5 x 100000 x 1.0900 = 54500; sell stop 2 x 100000 x 1.0950 = 219000;
        # the market order in flight (Type 0) and the close-by (Type 8) are not pending
        assert pending == {
            "buy_lots": "0.5",
            "sell_lots": "2",
            "buy_notional": "54500.00",
            "sell_notional": "219000.00",
        }
        # net exposure is the position's alone; a forex symbol charges no margin on pendings
        assert eurusd["net_lots"] == "1"
        assert only_account(result)["margin_pending"] == "0.00"


class TestBooks:
    def test_a_b_hybrid_and_coverage(self) -> None:
        result = run(
            [
                account(1, book="A", Country="GB"),
                account(2, book="B", Country="DE"),
                account(3, book="hybrid", a_share="0.4", Country="JP"),
                account(9, book="coverage", Group="coverage\\lp"),
            ],
            [
                position(1, 1, "EURUSD", BUY, "2", "1.1000"),
                position(2, 2, "EURUSD", BUY, "3", "1.1000"),
                position(3, 3, "EURUSD", SELL, "1", "1.1000"),
                position(4, 9, "EURUSD", BUY, "1", "1.1000"),
            ],
        )
        # clients: 2 + 3 - 1 = 4 lots net (the coverage account is the broker's, not a client)
        assert result["total"]["net_lots"] == "4"
        a, b = result["by_book"]["A"], result["by_book"]["B"]
        # A: login 1's 2 long, 0.4 of login 3's short 1 -> 1.6 net
        # B: login 2's 3 long, 0.6 of login 3's short 1 -> 2.4 net; A + B = 4
        assert (a["long_lots"], a["short_lots"], a["net_lots"]) == ("2", "0.4", "1.6")
        assert (b["long_lots"], b["short_lots"], b["net_lots"]) == ("3", "0.6", "2.4")
        house = result["house"]["by_symbol"]["EURUSD"]
        # house = coverage 1 - B-book 2.4 = -1.4 lots; notional 110010 x (1 - 2.4) = -154014
        assert (house["b_book_net_lots"], house["house_net_lots"]) == ("2.4", "-1.4")
        assert house["house_net_notional"] == "-154014.00"
        assert result["house"]["net_notional"] == "-154014.00"
        # regions from the client's country (domain.countries): GB -> uk, DE -> eu, JP -> intl
        assert {k: v["net_lots"] for k, v in result["by_region"].items()} == {
            "eu": "3",
            "intl": "-1",
            "uk": "2",
        }
        assert set(result["by_country"]) == {"DE", "GB", "JP"}


class TestRefusals:
    @pytest.mark.parametrize(
        ("change", "message"),
        [
            ({"CalcMode": 37}, r"CalcMode 37 \(exchange bonds\) is not computed"),
            ({"Symbol": "NOQUOTE"}, "no quote"),
        ],
    )
    def test_symbol_refusals(self, change: dict[str, Any], message: str) -> None:
        symbols = [dict(SYMBOLS[0], **change)]
        doc = ExposureDocument.model_validate(
            {
                "currency": "USD",
                "symbols": symbols,
                "quotes": QUOTES[:1],
                "accounts": [account(1)],
                "positions": [position(1, 1, symbols[0]["Symbol"], BUY, "1", "1.1")],
            }
        )
        with pytest.raises(InvalidInput, match=message):
            compute(doc.market(), doc.account_terms(), doc.position_rows())

    def test_a_missing_conversion_is_named(self) -> None:
        with pytest.raises(InvalidInput, match="no quote converts GBP to USD"):
            doc = ExposureDocument.model_validate(
                {
                    "currency": "USD",
                    "symbols": [SYMBOLS[2]],
                    "quotes": [q for q in QUOTES if q["Symbol"] == "EURGBP"],
                    "accounts": [account(1, Currency="EUR")],
                    "positions": [position(1, 1, "EURGBP", BUY, "1", "0.86")],
                }
            )
            compute(doc.market(), doc.account_terms(), doc.position_rows())
