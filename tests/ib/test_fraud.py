"""IB fraud signals (`domain.ib.fraud`): hand-made cases for each rule and its thresholds, and
properties (the order facts come in changes nothing; one more just-above round trip never
removes a farming flag)."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from domain.ib.fraud import (
    ClientFacts,
    FarmingThresholds,
    FraudRule,
    IbFacts,
    LoginTrades,
    commission_farming,
    comparable_ip,
    detect,
    email_key,
    holds,
    name_key,
    self_referral,
)

IB = IbFacts(
    ib_id="ib-1",
    email="John.Doe+ib@GMail.com",
    name="Jan Müller",
    ips=frozenset({"203.0.113.7", "127.0.0.1", "10.1.2.3"}),
    instruments=frozenset({"DE89 3704 0044 0532 0130 00"}),
    own_client_ids=frozenset({"c-own"}),
)


def client(client_id: str, **facts: Any) -> ClientFacts:
    base: dict[str, Any] = {
        "ib_id": "ib-1",
        "email": f"{client_id}@example.com",
        "name": f"Client {client_id}",
    }
    return ClientFacts(client_id=client_id, **{**base, **facts})


def test_normalised_identity() -> None:
    assert email_key("John.Doe+ib@GMail.com") == email_key("johndoe@googlemail.com")
    assert email_key("a.b@example.com") != email_key("ab@example.com")  # dots count elsewhere
    assert name_key("Müller, Jan") == name_key("jan MULLER") == "jan muller"
    assert not comparable_ip("127.0.0.1") and not comparable_ip("10.1.2.3")
    assert not comparable_ip("192.168.1.1") and not comparable_ip("not an ip")
    assert comparable_ip("203.0.113.7") and comparable_ip("2001:db8::1")


def test_self_referral_golden() -> None:
    clients = [
        client("c-mail", email="johndoe@gmail.com"),
        client("c-name", name="MÜLLER Jan"),
        client("c-own"),
        client("c-bank", instruments=frozenset({"de89370400440532013000"})),
        client("c-ip", ips=frozenset({"203.0.113.7"})),
        # Shares only addresses that prove nothing, and is another IB's client otherwise.
        client("c-lan", ips=frozenset({"127.0.0.1", "10.1.2.3"})),
        client("c-other", ib_id="ib-2", email="johndoe@gmail.com"),
        client("c-clean"),
    ]
    flags = self_referral(IB, clients)
    assert [(f.client_id, f.rule, f.evidence_key) for f in flags] == [
        ("c-bank", FraudRule.SELF_REFERRAL_PAYMENT, "client:c-bank"),
        ("c-ip", FraudRule.SELF_REFERRAL_IP, "client:c-ip"),
        ("c-mail", FraudRule.SELF_REFERRAL_IDENTITY, "client:c-mail"),
        ("c-name", FraudRule.SELF_REFERRAL_IDENTITY, "client:c-name"),
        ("c-own", FraudRule.SELF_REFERRAL_IDENTITY, "client:c-own"),
    ]
    by_client = {f.client_id: f for f in flags}
    assert by_client["c-bank"].evidence == {"instruments": ["****3000"]}  # masked
    assert by_client["c-ip"].evidence == {"ips": ["203.0.113.7"]}
    assert by_client["c-own"].evidence == {"matches": ["payout_account_owner"]}


def trip(n: int, held: int, *, login: int = 1001, start: int = 1000) -> list[dict[str, Any]]:
    """Round trip `n`: a 1-lot buy and its close `held` seconds later, in its own position."""
    t = start + n * 1000
    common = {"Login": login, "Symbol": "EURUSD", "Volume": 10000, "PositionID": 50_000 + n}
    return [
        {**common, "Deal": 2 * n + 1, "Time": t, "Action": 0, "Entry": 0},
        {**common, "Deal": 2 * n + 2, "Time": t + held, "Action": 1, "Entry": 1},
    ]


def trades(holds_s: list[int], min_hold: int = 60) -> LoginTrades:
    deals = [d for n, held in enumerate(holds_s) for d in trip(n, held)]
    return LoginTrades(
        ib_id="ib-1", server="demo", login=1001, min_hold_seconds=min_hold, deals=deals
    )


END = 1000 + 1000 * 100


def test_holds_fifo_partial_close_and_reversal() -> None:
    deals = [
        {"Deal": 1, "Time": 0, "Action": 0, "Entry": 0, "Volume": 10000, "PositionID": 7},
        {"Deal": 2, "Time": 50, "Action": 0, "Entry": 0, "Volume": 10000, "PositionID": 7},
        # closes 1.5 lots: all of deal 1 (held 100) and half of deal 2 (held 50)
        {"Deal": 3, "Time": 100, "Action": 1, "Entry": 1, "Volume": 15000, "PositionID": 7},
        # netting reversal: closes the other 0.5 (held 150), opens 1.0 short
        {
            "Deal": 4,
            "Time": 200,
            "Action": 1,
            "Entry": 2,
            "Volume": 15000,
            "VolumeClosed": 5000,
            "PositionID": 7,
        },
        {"Deal": 5, "Time": 270, "Action": 0, "Entry": 1, "Volume": 10000, "PositionID": 7},
        # a close whose opening is not in the deals is not a piece
        {"Deal": 6, "Time": 300, "Action": 0, "Entry": 1, "Volume": 10000, "PositionID": 8},
    ]
    assert holds(deals, 0, 1000) == [(100, 100), (100, 50), (200, 150), (270, 70)]
    assert holds(deals, 150, 1000) == [(200, 150), (270, 70)]


def test_commission_farming_thresholds() -> None:
    # min hold 60: "just above" is 60..74 s (window max(0.25 x 60, 10) = 15).
    assert FarmingThresholds().window(60) == 15
    assert FarmingThresholds().window(20) == 10
    farmed = commission_farming(trades([65] * 10 + [600] * 10), 0, END)
    assert farmed is not None
    assert farmed.rule is FraudRule.COMMISSION_FARMING
    assert farmed.evidence_key == "login:demo:1001:1970-01"
    assert farmed.evidence["just_above"] == 10 and farmed.evidence["cleared"] == 20
    assert farmed.evidence["share"] == "0.50"
    # 9 are too few; below half of what cleared the rule is trading, not farming.
    assert commission_farming(trades([65] * 9), 0, END) is None
    assert commission_farming(trades([65] * 10 + [600] * 11), 0, END) is None
    # At 75 s a trip is no longer just above; under 60 s it does not pay and is not counted.
    assert commission_farming(trades([75] * 12), 0, END) is None
    assert commission_farming(trades([30] * 12), 0, END) is None
    assert commission_farming(trades([74] * 12), 0, END) is not None
    # No minimum hold, no line to farm above.
    assert commission_farming(trades([65] * 12, min_hold=0), 0, END) is None


def test_detect_keeps_one_flag_per_evidence() -> None:
    two_logins = [client("c-mail", email="johndoe@gmail.com", login=n) for n in (1, 2)]
    flags = detect([IB], two_logins, [trades([65] * 12)], 0, END)
    assert [(f.rule, f.evidence_key) for f in flags] == [
        (FraudRule.SELF_REFERRAL_IDENTITY, "client:c-mail"),
        (FraudRule.COMMISSION_FARMING, "login:demo:1001:1970-01"),
    ]


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.integers(min_value=0, max_value=400), min_size=0, max_size=40),
    st.randoms(use_true_random=False),
)
def test_the_order_of_the_deals_changes_nothing(held: list[int], shuffle: Any) -> None:
    login = trades(held)
    shuffled = list(login.deals)
    shuffle.shuffle(shuffled)
    again = LoginTrades(
        ib_id=login.ib_id,
        server=login.server,
        login=login.login,
        min_hold_seconds=login.min_hold_seconds,
        deals=shuffled,
    )
    assert commission_farming(login, 0, END) == commission_farming(again, 0, END)
    assert sorted(holds(login.deals, 0, END)) == sorted(holds(shuffled, 0, END))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=400), min_size=0, max_size=40))
def test_one_more_trip_just_above_never_removes_a_flag(held: list[int]) -> None:
    before = commission_farming(trades(held), 0, END)
    after = commission_farming(trades([*held, 62]), 0, END)
    assert before is None or after is not None
