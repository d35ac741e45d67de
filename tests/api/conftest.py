from __future__ import annotations

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.sealed import SecretBox
from settings import Settings
from tests.support.people import People


@pytest.fixture
def people(
    sessions: async_sessionmaker[AsyncSession], settings: Settings, api: httpx.AsyncClient
) -> People:
    return People(sessions, SecretBox(settings.secrets_key), api)
