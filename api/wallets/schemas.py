from __future__ import annotations

from pydantic import BaseModel


class WalletView(BaseModel):
    """A client's wallet in one currency: what it may use, and what pending withdrawals and
    transfers have reserved."""

    currency: str
    available: str
    held: str
