"""BrokerFlow's `UserRights` against the reference's table (4.5), written out here as numbers."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.mt5 import (
    DEFAULT_LIVE_RIGHTS,
    UserRights,
    trading_enabled,
    with_login_disabled,
    with_login_enabled,
    with_trading_disabled,
    with_trading_enabled,
)

# ../shared/mt5-webapi-reference.md 4.5, USER_RIGHT_* without the prefix.
REFERENCE = {
    "ENABLED": 0x1,
    "PASSWORD": 0x2,
    "TRADE_DISABLED": 0x4,
    "INVESTOR": 0x8,
    "CONFIRMED": 0x10,
    "TRAILING": 0x20,
    "EXPERT": 0x40,
    "OBSOLETE": 0x80,
    "REPORTS": 0x100,
    "READONLY": 0x200,
    "RESET_PASS": 0x400,
    "OTP_ENABLED": 0x800,
    "SPONSORED_HOSTING": 0x2000,
    "API_ENABLED": 0x4000,
    "PUSH_NOTIFICATION": 0x8000,
    "TECHNICAL": 0x10000,
    "EXCLUDE_REPORTS": 0x20000,
}
FRESH = 483  # a fresh account's Rights in the reference's example (0x1E3)
masks = st.integers(min_value=0, max_value=2**64 - 1)


def test_every_bit_of_the_reference_and_no_other() -> None:
    assert {member.name: member.value for member in UserRights} == REFERENCE


def test_default_live_rights_is_the_reference_user_right_default() -> None:
    assert DEFAULT_LIVE_RIGHTS == 0x163  # ENABLED|PASSWORD|TRAILING|EXPERT|REPORTS
    assert trading_enabled(DEFAULT_LIVE_RIGHTS)


@pytest.mark.parametrize(
    ("helper", "expected"),
    [
        (with_trading_disabled, FRESH | 0x4),
        (with_trading_enabled, FRESH),
        (with_login_disabled, FRESH & ~0x1),
        (with_login_enabled, FRESH),
    ],
)
def test_each_helper_on_a_fresh_account(helper: Callable[[int], UserRights], expected: int) -> None:
    result = helper(FRESH)
    assert isinstance(result, UserRights) and int(result) == expected


def test_trading_needs_both_bits() -> None:
    assert trading_enabled(FRESH)
    assert not trading_enabled(with_trading_disabled(FRESH))
    assert not trading_enabled(with_login_disabled(FRESH))


@given(masks)
def test_helpers_change_only_their_bit_and_keep_unknown_ones(rights: int) -> None:
    for helper, bit, on in (
        (with_trading_disabled, 0x4, True),
        (with_trading_enabled, 0x4, False),
        (with_login_enabled, 0x1, True),
        (with_login_disabled, 0x1, False),
    ):
        result = int(helper(rights))
        assert result & ~bit == rights & ~bit  # bits of newer builds (0x1000, 0x40000...) too
        assert bool(result & bit) is on
        assert int(helper(result)) == result  # applying twice changes nothing more
    assert int(with_trading_enabled(with_trading_disabled(rights))) == rights & ~0x4
