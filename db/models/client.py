from __future__ import annotations

import uuid
from datetime import date, datetime

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
    phone: Mapped[str | None] = mapped_column(String(32))  # E.164
    nationality: Mapped[str | None] = mapped_column(String(2))
    address_line1: Mapped[str | None] = mapped_column(String(200))
    address_line2: Mapped[str | None] = mapped_column(String(200))
    city: Mapped[str | None] = mapped_column(String(100))
    postal_code: Mapped[str | None] = mapped_column(String(16))
    # Lower-cased, accent-folded name: the same person signing up twice is found by it and the
    # date of birth.
    name_key: Mapped[str | None] = mapped_column(String(200), index=True)
    email_verified_at: Mapped[datetime | None]
    # Retail unless classified professional (MiFID II Annex II); set from the questionnaire.
    category: Mapped[str] = mapped_column(String(16), default="retail", server_default="retail")
    # The live account asked for at sign-up: provisioned once KYC approves.
    account_type: Mapped[str] = mapped_column(
        String(32), default="standard", server_default="standard"
    )
    risk_level: Mapped[str | None] = mapped_column(String(16))
    risk_score: Mapped[int | None]
