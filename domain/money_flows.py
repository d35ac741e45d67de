"""What a movement of client money is, whatever process moves it (deposit, withdrawal,
transfer): its kind, the reference everybody sees, and the pockets it moves between. The
processes' contracts (inputs, steps, payloads) are in `contracts.funds` and its siblings.
"""

from __future__ import annotations

import uuid
from enum import StrEnum

from pydantic import Field

from domain.frozen import Frozen


class MovementKind(StrEnum):
    PAYMENT = "payment"
    TRANSFER = "transfer"


class Mt5AccountRef(Frozen):
    server: str
    login: int = Field(gt=0)


class Pocket(Frozen):
    """One side of a movement: the client's wallet in a currency, or one of its MT5 accounts."""

    currency: str
    mt5: Mt5AccountRef | None = None


def reference_for(kind: MovementKind, movement_id: uuid.UUID) -> str:
    """The reference processors, MT5 comments and statements show: `BF…` or `TR…`, 22 chars."""
    prefix = "BF" if kind is MovementKind.PAYMENT else "TR"
    return f"{prefix}{movement_id.hex[:20].upper()}"


def mt5_comment(purpose: str, reference: str) -> str:
    """A balance deal's comment: its purpose and the movement's reference. It is also the
    deal's idempotency key on MT5, so each purpose is used once per movement (max 31 chars)."""
    return f"{purpose} {reference}"
