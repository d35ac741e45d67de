from __future__ import annotations

from sqlalchemy import String, Text
from sqlalchemy.orm import Mapped, mapped_column

from db.base import RecordModel


class IntroducingBroker(RecordModel):
    __tablename__ = "introducing_brokers"

    email: Mapped[str] = mapped_column(String(254), unique=True)
    password_hash: Mapped[str] = mapped_column(Text)
    name: Mapped[str] = mapped_column(String(200))
    referral_code: Mapped[str] = mapped_column(String(32), unique=True)
