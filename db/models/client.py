from __future__ import annotations

import uuid
from datetime import date

from sqlalchemy import Date, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from db.base import RecordModel


class Client(RecordModel):
    __tablename__ = "clients"

    email: Mapped[str] = mapped_column(String(254), unique=True)
    password_hash: Mapped[str] = mapped_column(Text)
    full_name: Mapped[str] = mapped_column(String(200))
    country: Mapped[str] = mapped_column(String(2))
    date_of_birth: Mapped[date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(32), default="active")
    # Set by compliance; money may arrive before approval but waits for it (domain.payment_checks).
    kyc_status: Mapped[str] = mapped_column(String(16), default="pending", server_default="pending")
    screening_status: Mapped[str] = mapped_column(
        String(16), default="unscreened", server_default="unscreened"
    )
    referred_by_ib_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("introducing_brokers.id"), index=True
    )
