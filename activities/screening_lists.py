"""Sanctions and PEP lists: loading a published file as the active list of its source, and
re-screening every client against the active lists when one changes."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, date, datetime
from typing import Any

from pydantic import ValidationError
from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.exceptions import ApplicationError

from activities.kyc_checks import ScreenerCache, subject_of
from activities.kyc_records import staff_actor
from contracts import screening_refresh as refresh
from contracts.screening_refresh import (
    LoadedList,
    RescreenBatch,
    RescreenInput,
    ScreeningRefreshInput,
)
from contracts.steps import implements
from db import audit
from db.models import ScreeningHit, ScreeningList, ScreeningParty
from db.queries.clients import clients_to_screen
from domain.errors import BackOfficeError
from domain.screening import ListSnapshot
from screening.formats import load_list
from storage.documents import DocumentMissing, DocumentStore

log = logging.getLogger(__name__)

PARTY_ROWS_PER_INSERT = 1000


def _published(moment: datetime | date) -> datetime:
    if isinstance(moment, datetime):
        return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return datetime(moment.year, moment.month, moment.day, tzinfo=UTC)


class ScreeningLists:
    """List steps, on the main task queue. `store` holds the uploaded list files."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        store: DocumentStore,
        screeners: ScreenerCache,
    ) -> None:
        self._sessions = sessions
        self._store = store
        self._screeners = screeners

    @implements(refresh.load_screening_list)
    async def load_screening_list(self, request: ScreeningRefreshInput) -> LoadedList:
        """Store the list file's parties once (by digest) and make it the active list of its
        source; the older lists of that source stop being active."""
        async with self._sessions() as session:
            known = await session.scalar(
                select(ScreeningList).where(ScreeningList.digest == request.digest)
            )
        snapshot = None if known is not None else await self._parse(request)
        async with self._sessions.begin() as session:
            listed = await self._insert(session, snapshot) if snapshot is not None else None
            newly_loaded = listed is not None
            if listed is None:
                listed = await session.scalar(
                    select(ScreeningList)
                    .where(ScreeningList.digest == request.digest)
                    .with_for_update()
                )
            if listed is None:  # pragma: no cover - inserted or found above
                raise ApplicationError("the list vanished while loading", non_retryable=False)
            was_active = listed.active
            await session.execute(
                update(ScreeningList)
                .where(ScreeningList.source == listed.source)
                .values(active=ScreeningList.id == listed.id)
            )
            if newly_loaded or not was_active:
                actor = (
                    staff_actor(request.uploaded_by)
                    if request.uploaded_by is not None
                    else audit.system_actor()
                )
                audit.record(
                    session,
                    actor,
                    audit.Change(
                        action="screening_list.loaded",
                        entity_type="screening_list",
                        entity_id=str(listed.id),
                        after={
                            "source": listed.source,
                            "digest": listed.digest,
                            "party_count": listed.party_count,
                            "published_at": _iso(listed.published_at),
                            "storage_key": request.storage_key,
                            "active": True,
                            "newly_loaded": newly_loaded,
                        },
                    ),
                )
            return LoadedList(
                list_id=listed.id,
                source=listed.source,
                party_count=listed.party_count,
                newly_loaded=newly_loaded,
            )

    async def _parse(self, request: ScreeningRefreshInput) -> ListSnapshot:
        try:
            data = await self._store.get(request.storage_key)
        except DocumentMissing as missing:
            raise ApplicationError(
                f"no list file is stored under {request.storage_key!r}",
                type="ListFileMissing",
                non_retryable=True,
            ) from missing
        try:
            snapshot = await asyncio.to_thread(load_list, request.source, data)
        except BackOfficeError as refused:
            raise ApplicationError(
                refused.detail, type="ListFormatError", non_retryable=True
            ) from None
        if snapshot.digest != request.digest:
            raise ApplicationError(
                f"the stored file's digest {snapshot.digest} is not {request.digest}",
                type="ListDigestMismatch",
                non_retryable=True,
            )
        return snapshot

    @staticmethod
    async def _insert(session: AsyncSession, snapshot: ListSnapshot) -> ScreeningList | None:
        """The new list row with its parties; None if another attempt stored it first."""
        list_id = await session.scalar(
            pg_insert(ScreeningList)
            .values(
                source=snapshot.source.value,
                published_at=_published(snapshot.published_at),
                digest=snapshot.digest,
                party_count=len(snapshot.parties),
                active=False,
            )
            .on_conflict_do_nothing(index_elements=["digest"])
            .returning(ScreeningList.id)
        )
        if list_id is None:
            return None
        rows: list[dict[str, Any]] = [
            {
                "list_id": list_id,
                "key": party.key,
                "kind": party.kind.value,
                "primary_name": party.primary_name,
                "data": party.model_dump(mode="json"),
            }
            for party in snapshot.parties
        ]
        for start in range(0, len(rows), PARTY_ROWS_PER_INSERT):
            await session.execute(
                pg_insert(ScreeningParty)
                .values(rows[start : start + PARTY_ROWS_PER_INSERT])
                .on_conflict_do_nothing()
            )
        return await session.get(ScreeningList, list_id, with_for_update=True)

    @implements(refresh.rescreen_clients)
    async def rescreen_clients(self, request: RescreenInput) -> RescreenBatch:
        """Screen one batch of clients (KYC approved or pending, in id order) against the active
        lists; answer those with a potential match none of their cases holds yet."""
        async with self._sessions() as session:
            clients = await clients_to_screen(session, after=request.after, limit=request.limit)
            if not clients:
                return RescreenBatch()
            active = await self._screeners.get(session)
            known_rows = (
                await session.execute(
                    select(
                        ScreeningHit.client_id, ScreeningHit.source, ScreeningHit.party_key
                    ).where(ScreeningHit.client_id.in_([client.id for client in clients]))
                )
            ).all()
        known: set[tuple[Any, ...]] = {tuple(row) for row in known_rows}

        def screen_all() -> list[Any]:
            flagged = []
            for client in clients:
                try:
                    subject = subject_of(client)
                except ValidationError:  # a blank name: nothing to screen
                    log.warning("client %s cannot be screened: invalid data", client.id)
                    continue
                alerts = {
                    (client.id, hit.source.value, hit.party_key)
                    for hit in active.screener.screen(subject)
                    if hit.is_alert
                }
                if alerts - known:
                    flagged.append(client.id)
            return flagged

        flagged = await asyncio.to_thread(screen_all)
        last = clients[-1].id if len(clients) >= request.limit else None
        return RescreenBatch(flagged=tuple(flagged), next_after=last)


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()
