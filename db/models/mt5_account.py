from __future__ import annotations

import uuid

from sqlalchemy import BigInteger, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from db.base import Base, RecordModel


class Mt5Account(RecordModel):
    """A client's MT5 login on one MT5 server."""

    __tablename__ = "mt5_accounts"
    __table_args__ = (UniqueConstraint("server", "login"),)

    client_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("clients.id"), index=True)
    application_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("account_applications.id"), unique=True
    )
    server: Mapped[str] = mapped_column(String(64))
    login: Mapped[int] = mapped_column(BigInteger)
    group: Mapped[str] = mapped_column(String(128))
    leverage: Mapped[int]
    currency: Mapped[str] = mapped_column(String(3))
    kind: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), default="active", server_default="active")
    rights: Mapped[int | None] = mapped_column(BigInteger)


class Mt5LoginCounter(Base):
    """Next MT5 login BrokerFlow hands out on a server (BrokerFlow owns its login range)."""

    __tablename__ = "mt5_login_counters"

    server: Mapped[str] = mapped_column(String(64), primary_key=True)
    next_login: Mapped[int] = mapped_column(BigInteger)
