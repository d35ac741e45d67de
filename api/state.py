"""What the app builds at start-up and hands to every request (no module-level globals)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from api.temporal import TemporalConnector
from db.sealed import SecretBox
from settings import Settings


@dataclass
class AppState:
    settings: Settings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    temporal: TemporalConnector
    secret_box: SecretBox
