"""`deal/update` (reference 3.4): a dealer's correction of a deal's money, prices or comment is
what every later read of the deal answers; what it cannot be is refused, changing nothing."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from simulators.mt5 import retcodes as rc
from simulators.mt5.commands import Call, Commands
from simulators.mt5.history import generate_history
from simulators.mt5.retcodes import Refusal
from simulators.mt5.state import Books

START = int(datetime(2026, 3, 2, tzinfo=UTC).timestamp() * 1000)


def commands() -> Commands:
    books = Books()
    generate_history(
        books, deals=200, accounts=5, seed=3, start_msc=START, end_msc=START + 86_400_000
    )
    return Commands(books, lambda _: None)


def test_a_correction_is_what_every_read_answers() -> None:
    server = commands()
    deal = server.books.deals[-1]
    ticket = str(deal.deal)
    # Read once, so the encoded record is cached, as after any history read.
    batch = Call(params={"ticket": ticket}, body=None)
    assert '"Commission"' in server.deal_get_batch(batch)["answer"][0]
    answer = server.deal_update(
        Call(params={}, body={"Deal": ticket, "Commission": "-7.25", "Comment": "corrected"})
    )["answer"]
    assert answer["Commission"] == "-7.25" and answer["Comment"] == "corrected"
    got = server.deal_get(Call(params={"ticket": ticket}, body=None))["answer"]
    assert got["Commission"] == "-7.25" and got["Profit"] == deal.profit
    assert '"Commission": "-7.25"' in server.deal_get_batch(batch)["answer"][0]
    assert server.books.replaced  # persisted by the next snapshot


@pytest.mark.parametrize(
    "body",
    [
        {"Deal": "999999999", "Commission": "1"},
        {"Commission": "1"},
        {"Deal": "{ticket}", "Commission": "lots"},
        {"Deal": "{ticket}", "Profit": "NaN"},
        {"Deal": "{ticket}", "Comment": "x" * 32},
    ],
)
def test_what_cannot_be_corrected_is_refused(body: dict[str, str]) -> None:
    server = commands()
    deal = server.books.deals[-1]
    before = (deal.commission, deal.profit, deal.comment)
    body = {k: v.replace("{ticket}", str(deal.deal)) for k, v in body.items()}
    with pytest.raises(Refusal) as refused:
        server.deal_update(Call(params={}, body=body))
    assert refused.value.code in (rc.ERR_NOTFOUND, rc.ERR_PARAMS)
    assert (deal.commission, deal.profit, deal.comment) == before
