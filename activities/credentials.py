"""MT5 passwords BrokerFlow generates for a new account."""

from __future__ import annotations

import secrets
import string

# MT5 wants 8-16 characters with lower case, upper case, digits and a special character.
_SPECIAL = "#@!$%&*"
_CLASSES = (string.ascii_lowercase, string.ascii_uppercase, string.digits, _SPECIAL)


def generate_mt5_password(length: int = 14) -> str:
    alphabet = "".join(_CLASSES)
    chars = [secrets.choice(cls) for cls in _CLASSES]
    chars += [secrets.choice(alphabet) for _ in range(length - len(chars))]
    secrets.SystemRandom().shuffle(chars)
    return "".join(chars)
