from __future__ import annotations

from sqlalchemy import BigInteger, String, Text
from sqlalchemy.dialects.postgresql import ARRAY, CIDR
from sqlalchemy.orm import Mapped, mapped_column

from db.base import RecordModel


class StaffUser(RecordModel):
    __tablename__ = "staff_users"

    email: Mapped[str] = mapped_column(String(254), unique=True)
    full_name: Mapped[str] = mapped_column(String(200))
    password_hash: Mapped[str] = mapped_column(Text)
    # Fernet-encrypted TOTP seed: a leaked row must not give away the second factor.
    totp_secret_enc: Mapped[str] = mapped_column(Text)
    # The last TOTP time step used to log in: a code is accepted once only.
    totp_last_step: Mapped[int | None] = mapped_column(BigInteger)
    roles: Mapped[list[str]] = mapped_column(ARRAY(String(32)))
    ip_allowlist: Mapped[list[str]] = mapped_column(ARRAY(CIDR))
    active: Mapped[bool] = mapped_column(default=True)
