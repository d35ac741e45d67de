"""What the app builds at start-up and hands to every request (no module-level globals)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from api.temporal import TemporalConnector
from db.sealed import SecretBox
from psp_adapter.gateway import PaymentProvider
from settings import Settings
from storage.documents import DocumentStore


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class AppState:
    settings: Settings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    temporal: TemporalConnector
    secret_box: SecretBox
    # The payment processors by name; the API uses them only to verify their webhooks.
    providers: Mapping[str, PaymentProvider] = field(default_factory=dict)
    # Client documents (KYC uploads), encrypted at rest; None only in apps built without one.
    documents: DocumentStore | None = None
    # The one clock of throttles and sessions; tests replace it to move time on without sleeping.
    clock: Callable[[], datetime] = utc_now
