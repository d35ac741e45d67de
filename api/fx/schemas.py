from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict

from api.schemas import CurrencyCode, Rate
from db.models import FxRateRow
from domain.money import MINOR_UNITS

CURRENCIES = sorted(MINOR_UNITS)


class FxRateCreate(BaseModel):
    """A quote: units of `quote` per one `base`, e.g. EUR/USD bid 1.0840 ask 1.0844."""

    # Two different currencies; said in the document too, one branch per base currency.
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "anyOf": [
                {
                    "properties": {
                        "base": {"const": code},
                        "quote": {"enum": [other for other in CURRENCIES if other != code]},
                    }
                }
                for code in CURRENCIES
            ]
        },
    )

    base: CurrencyCode
    quote: CurrencyCode
    bid: Rate
    ask: Rate


class FxRateView(BaseModel):
    id: int
    base: str
    quote: str
    bid: str
    ask: str
    # When the quote was made (a feed's: the quote's own time, in UTC).
    as_of: datetime
    # `staff` (entered by finance) or `mt5:<server>:<symbol>` (the FX feed's MT5 quote).
    source: str

    @classmethod
    def of(cls, row: FxRateRow) -> FxRateView:
        return cls(
            id=row.id,
            base=row.base,
            quote=row.quote,
            bid=format(row.bid.normalize(), "f"),
            ask=format(row.ask.normalize(), "f"),
            as_of=row.as_of,
            source=row.source,
        )
