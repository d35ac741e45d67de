"""Dependencies every route may ask for, declared once as `Annotated` aliases."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from api.context import RequestContext, request_context
from api.state import AppState
from db.sealed import SecretBox
from domain.errors import ServiceUnavailable
from settings import Settings
from storage.documents import DocumentStore


def get_state(request: Request) -> AppState:
    state: AppState = request.app.state.brokerflow
    return state


StateDep = Annotated[AppState, Depends(get_state)]


def get_settings_dep(state: StateDep) -> Settings:
    return state.settings


SettingsDep = Annotated[Settings, Depends(get_settings_dep)]


async def get_session(state: StateDep) -> AsyncIterator[AsyncSession]:
    """One transaction per request: committed when the route returns, rolled back if it raises."""
    async with state.sessions() as session, session.begin():
        yield session


# "function" scope: the commit happens before the response leaves, so a 2xx means it is stored.
SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]


def get_secret_box(state: StateDep) -> SecretBox:
    return state.secret_box


SecretBoxDep = Annotated[SecretBox, Depends(get_secret_box)]


def get_request_context(request: Request, settings: SettingsDep) -> RequestContext:
    return request_context(request, settings)


ContextDep = Annotated[RequestContext, Depends(get_request_context)]


def documents_of(state: AppState) -> DocumentStore:
    """The document store, or 503 on a server built without one."""
    if state.documents is None:
        raise ServiceUnavailable("the document store is not configured on this server")
    return state.documents
