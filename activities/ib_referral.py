"""A referred client's live MT5 login attributed to the IB that referred it, when the account is
recorded (`activities.account_opening.record_mt5_account`, in that step's transaction): the
sign-up's `referral_code` becomes the dated attribution the accrual reads (`ib_attributions`,
`source="referral"`), written by the one writer of attribution periods
(`db.queries.ib_management.open_attribution`, which the staff route uses too)."""

from __future__ import annotations

import time
import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from db import audit
from db.queries.clients import client_by_id
from db.queries.ib_management import open_attribution, open_attribution_of
from domain.errors import Conflict

# Attribution periods are on the trade server's clock (UTC + its offset), which this step does
# not know. A new login has no deal before its account was opened, so the period starts at the
# opening read on the westmost clock a server can keep (UTC-12): never after the login's first
# deal, whatever the server's offset.
WESTMOST_CLOCK_OFFSET = -12 * 3600


def referral_effective_from(now_utc: int) -> int:
    return now_utc + WESTMOST_CLOCK_OFFSET


async def attribute_referred_login(
    session: AsyncSession, *, client_id: uuid.UUID, server: str, login: int
) -> uuid.UUID | None:
    """Attributes a live login of a referred client to its IB from the account's opening; the IB
    attributed, or None (no referral, or the login has an attribution already: a staff
    assignment stands). Audited `ib_attribution.assigned` by the system, for the client."""
    client = await client_by_id(session, client_id)
    if client is None or client.referred_by_ib_id is None:
        return None
    if await open_attribution_of(session, server, login) is not None:
        return None
    effective_from = referral_effective_from(int(time.time()))
    try:
        await open_attribution(
            session,
            server=server,
            login=login,
            ib_id=client.referred_by_ib_id,
            effective_from=effective_from,
            source="referral",
        )
    except Conflict:
        return None  # the login has history BrokerFlow did not expect: left to staff
    audit.record(
        session,
        audit.system_actor(on_behalf_of=str(client_id)),
        audit.Change(
            action="ib_attribution.assigned",
            entity_type="mt5_login",
            entity_id=f"{server}:{login}",
            after={
                "ib_id": str(client.referred_by_ib_id),
                "effective_from": effective_from,
                "source": "referral",
            },
            reason="referred at sign-up",
        ),
    )
    return client.referred_by_ib_id
