from __future__ import annotations

import uuid

from sqlalchemy import BigInteger, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from db.base import RecordModel


class AccountApplication(RecordModel):
    """One request to open an MT5 account, driven by the account-opening workflow."""

    __tablename__ = "account_applications"
    __table_args__ = (UniqueConstraint("mt5_server", "mt5_login"),)

    client_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("clients.id"), index=True)
    account_type: Mapped[str] = mapped_column(String(32))
    kind: Mapped[str] = mapped_column(String(16), default="demo")
    status: Mapped[str] = mapped_column(String(16), default="pending")
    workflow_id: Mapped[str] = mapped_column(String(200), unique=True)
    mt5_server: Mapped[str] = mapped_column(String(64))
    mt5_login: Mapped[int | None] = mapped_column(BigInteger)
    # Fernet-encrypted MT5 passwords, kept only until the client has read them once.
    mt5_password_main_enc: Mapped[str | None] = mapped_column(Text)
    mt5_password_investor_enc: Mapped[str | None] = mapped_column(Text)
    failure_reason: Mapped[str | None] = mapped_column(Text)
