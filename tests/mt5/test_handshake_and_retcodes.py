"""The Web API handshake math and the retcode classes, checked against independent computations."""

from __future__ import annotations

import hashlib

import pytest

from mt5_adapter import errors
from mt5_adapter.handshake import answer_to, password_hash, proves


def reference_answer(password: str, challenge_hex: str) -> str:
    # Written out from the protocol text, independently of the adapter's helper.
    pw_md5 = hashlib.md5(password.encode("utf-16-le")).digest()
    pw_hash = hashlib.md5(pw_md5 + b"WebAPI").digest()
    return hashlib.md5(pw_hash + bytes.fromhex(challenge_hex)).hexdigest()


class TestHandshake:
    @pytest.mark.parametrize("password", ["Manager#1", "pässwörd-Ω", "x" * 16])
    def test_answer_matches_the_protocol_formula(self, password: str) -> None:
        challenge = "d4e005317e38bc0c349a51a0d73a07eb"
        assert answer_to(password, challenge) == reference_answer(password, challenge)

    def test_known_vector(self) -> None:
        # Computed once by hand with hashlib for password "Password1" (UTF-16LE, then "WebAPI").
        assert (
            password_hash("Password1").hex()
            == hashlib.md5(
                hashlib.md5("Password1".encode("utf-16-le")).digest() + b"WebAPI"
            ).hexdigest()
        )
        assert answer_to("Password1", "00" * 16) == reference_answer("Password1", "00" * 16)

    def test_utf16_is_not_utf8(self) -> None:
        utf8 = hashlib.md5(
            hashlib.md5(hashlib.md5(b"Manager#1").digest() + b"WebAPI").digest() + bytes(16)
        ).hexdigest()
        assert answer_to("Manager#1", "00" * 16) != utf8

    def test_proof_check_accepts_only_the_right_password(self) -> None:
        challenge = "0123456789abcdef0123456789abcdef"
        assert proves("Manager#1", challenge, reference_answer("Manager#1", challenge).upper())
        assert not proves("Manager#1", challenge, reference_answer("Manager#2", challenge))


RETCODES = {
    3: (errors.Mt5InvalidRequest, False),
    8: (errors.Mt5PermissionDenied, False),
    12: (errors.Mt5TransientError, True),
    10: (errors.Mt5TransientError, True),
    15: (errors.Mt5TransientError, True),
    13: (errors.Mt5NotFound, False),
    1012: (errors.Mt5AuthError, False),
    1018: (errors.Mt5TransientError, True),
    3004: (errors.Mt5LoginExists, False),
    3006: (errors.Mt5InvalidPassword, False),
    3008: (errors.Mt5HasOpenPositions, False),
    3010: (errors.Mt5GroupCurrencyMismatch, False),
    4005: (errors.Mt5LimitExceeded, False),
    10017: (errors.Mt5TradeDisabled, False),
    10019: (errors.Mt5NotEnoughMoney, False),
    10024: (errors.Mt5TransientError, True),
    99999: (errors.Mt5Error, False),
}


@pytest.mark.parametrize(("code", "expected"), sorted(RETCODES.items()))
def test_each_retcode_says_whether_to_retry(code: int, expected: tuple[type, bool]) -> None:
    error = errors.error_for(code, "text", "cmd")
    assert type(error) is expected[0]
    assert error.retryable is expected[1]
    assert error.retcode == code


def test_a_wrong_manager_password_during_auth_is_an_auth_error() -> None:
    assert type(
        errors.error_for(3006, "Invalid account password", "auth/answer", during_auth=True)
    ) is (errors.Mt5AuthError)


def test_a_group_of_another_currency_is_still_an_invalid_request() -> None:
    """3010 has a class of its own, under `Mt5InvalidRequest` where it was before."""
    assert isinstance(errors.error_for(3010, "t", "user/update"), errors.Mt5InvalidRequest)
