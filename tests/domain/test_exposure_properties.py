"""Exposure invariants on random books: |net| <= gross in every bucket, a position and its mirror
net to zero, the order of positions changes nothing, and the A and B books add up to the
clients' total."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from domain.exposure.compute import (
    AccountTerms,
    Book,
    Exposure,
    Figures,
    OrderRow,
    PositionRow,
    compute,
)
from domain.exposure.market import Market, Quote, SymbolTerms
from domain.exposure.report import report

MARKET = Market(
    "USD",
    [
        SymbolTerms("EURUSD", 0, "EUR", "USD", "EUR", Decimal(100000)),
        SymbolTerms("USDJPY", 0, "USD", "JPY", "USD", Decimal(100000), digits=3),
        SymbolTerms("XAUUSD", 4, "XAU", "USD", "USD", Decimal(100), digits=2),
        SymbolTerms(
            "US500",
            2,
            "USD",
            "USD",
            "USD",
            Decimal(1),
            digits=2,
            margin_rates=(Decimal("0.05"),) * 8,
        ),
    ],
    {
        "EURUSD": Quote(Decimal("1.1000"), Decimal("1.1002")),
        "USDJPY": Quote(Decimal("149.90"), Decimal("150.10")),
        "XAUUSD": Quote(Decimal("2010"), Decimal("2011")),
        "US500": Quote(Decimal("5000"), Decimal("5001")),
    },
)
PRICES = {"EURUSD": "1.1", "USDJPY": "150", "XAUUSD": "2000", "US500": "5000"}
BOOKS = [
    (Book.A, Decimal(1)),
    (Book.B, Decimal(0)),
    (Book.HYBRID, Decimal("0.3")),
    (Book.HYBRID, Decimal("0.75")),
]


def accounts(books: list[int]) -> dict[int, AccountTerms]:
    return {
        login: AccountTerms(
            login=login,
            group=f"real\\g{login % 2}",
            country=("DE", "GB", "JP")[login % 3],
            region=("eu", "uk", "intl")[login % 3],
            currency=("USD", "EUR")[login % 2],
            leverage=(30, 100, 500)[login % 3],
            equity=Decimal(10000),
            hedging=True,
            book=BOOKS[book][0],
            a_share=BOOKS[book][1],
        )
        for login, book in enumerate(books, start=1)
    }


books = st.lists(st.integers(0, len(BOOKS) - 1), min_size=1, max_size=4)
position = st.tuples(
    st.integers(1, 4),
    st.sampled_from(sorted(PRICES)),
    st.integers(0, 1),
    st.integers(1, 500).map(lambda n: n * 100),
    st.integers(-50, 50),
)
order = st.tuples(
    st.integers(1, 4),
    st.sampled_from(sorted(PRICES)),
    st.integers(2, 7),
    st.integers(1, 100).map(lambda n: n * 100),
)


def rows(raw: list[tuple[int, str, int, int, int]], logins: int) -> list[PositionRow]:
    return [
        PositionRow((login - 1) % logins + 1, symbol, side, volume, Decimal(PRICES[symbol]) + drift)
        for login, symbol, side, volume, drift in raw
    ]


def orders(raw: list[tuple[int, str, int, int]], logins: int) -> list[OrderRow]:
    return [
        OrderRow((login - 1) % logins + 1, symbol, kind, volume, Decimal(PRICES[symbol]))
        for login, symbol, kind, volume in raw
    ]


def buckets(e: Exposure) -> list[Figures]:
    return [
        e.total,
        *e.by_symbol.values(),
        *e.by_group.values(),
        *e.by_country.values(),
        *e.by_region.values(),
        *e.by_book.values(),
    ]


CENT = Decimal("0.01")


@settings(max_examples=40, deadline=None)
@given(books, st.lists(position, max_size=25), st.lists(order, max_size=5))
def test_net_never_exceeds_gross(
    book_list: list[int],
    raw: list[tuple[int, str, int, int, int]],
    raw_orders: list[tuple[int, str, int, int]],
) -> None:
    e = compute(
        MARKET, accounts(book_list), rows(raw, len(book_list)), orders(raw_orders, len(book_list))
    )
    for f in buckets(e):
        assert abs(f.net_lots) <= f.gross_lots
        assert abs(f.net_notional) <= f.gross_notional + CENT


@settings(max_examples=40, deadline=None)
@given(books, st.lists(position, min_size=1, max_size=20))
def test_a_position_and_its_mirror_net_to_zero(
    book_list: list[int], raw: list[tuple[int, str, int, int, int]]
) -> None:
    mirrored = raw + [(login, symbol, 1 - side, v, d) for login, symbol, side, v, d in raw]
    e = compute(MARKET, accounts(book_list), rows(mirrored, len(book_list)))
    for f in buckets(e):
        assert f.net_lots == 0
        assert abs(f.net_notional) < CENT
    for h in e.house.values():
        assert h.house_net_lots == 0


@settings(max_examples=40, deadline=None)
@given(books, st.lists(position, max_size=20), st.lists(order, max_size=5), st.randoms())
def test_the_order_of_positions_changes_nothing(
    book_list: list[int],
    raw: list[tuple[int, str, int, int, int]],
    raw_orders: list[tuple[int, str, int, int]],
    rng: object,
) -> None:
    logins = accounts(book_list)
    positions, pending = rows(raw, len(book_list)), orders(raw_orders, len(book_list))
    shuffled, shuffled_orders = list(positions), list(pending)
    rng.shuffle(shuffled)  # type: ignore[attr-defined]
    rng.shuffle(shuffled_orders)  # type: ignore[attr-defined]
    assert report(compute(MARKET, logins, positions, pending)) == report(
        compute(MARKET, logins, shuffled, shuffled_orders)
    )


@settings(max_examples=40, deadline=None)
@given(books, st.lists(position, max_size=25), st.lists(order, max_size=5))
def test_the_a_and_b_books_add_up_to_the_clients(
    book_list: list[int],
    raw: list[tuple[int, str, int, int, int]],
    raw_orders: list[tuple[int, str, int, int]],
) -> None:
    e = compute(
        MARKET,
        accounts(book_list),
        rows(raw, len(book_list)),
        orders(raw_orders, len(book_list)),
    )
    zero = Figures(*([Decimal(0)] * len(Figures._fields)))
    a, b = e.by_book.get("A", zero), e.by_book.get("B", zero)
    for field, total in zip(Figures._fields, e.total, strict=True):
        both = getattr(a, field) + getattr(b, field)
        assert abs(both - total) < Decimal("1e-12"), field
    for h in e.house.values():
        assert h.a_book_net_lots + h.b_book_net_lots == h.client_net_lots
