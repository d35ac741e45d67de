"""Transfers between a client's own wallets and live MT5 accounts, converted when the
currencies differ. Checked here, moved by the Transfer workflow.

A transfer out of the wallet takes its hold here, in the request's transaction, with the wallet
locked (as a withdrawal does): two requests that together exceed the balance get one 202 and one
409, never two acceptances, and the workflow's own hold step finds the hold booked. (Out of an
MT5 account the workflow checks free margin, which only MT5 knows.)"""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from api.fx.service import require_rate
from api.idempotency import earlier_request, first_request, request_hash, start_request
from api.me import service as me_service
from api.policy import Principal
from api.schemas import require_supported, supported_money
from api.temporal import TemporalConnector
from api.transfers.schemas import Mt5Side, TransferRequest
from api.wallets.service import hold_at_request, lock_available
from contracts.transfer import TRANSFER, TransferInput, transfer_workflow_id
from db import audit
from db.models import Transfer
from domain.errors import InvalidInput
from domain.money_flows import MovementKind, Mt5AccountRef, Pocket, reference_for
from domain.payment_checks import check_amount_within
from domain.payments import PaymentStatus
from settings import PaymentRules


async def request_transfer(
    session: AsyncSession,
    temporal: TemporalConnector,
    rules: PaymentRules,
    me: Principal,
    request: TransferRequest,
    key: str,
) -> Transfer:
    digest = request_hash("transfer", request)
    earlier = await earlier_request(session, Transfer, me.id, key, digest)
    if earlier is not None:
        return earlier
    amount = supported_money(request.amount, request.currency)
    check_amount_within(amount, rules.min_transfer, rules.max_transfer, "transfer")
    if isinstance(request.source, Mt5Side):
        account = await me_service.own_live_account(
            session, me.id, request.source.login, amount.currency, "source.login"
        )
        source = Pocket(
            currency=amount.currency, mt5=Mt5AccountRef(server=account.server, login=account.login)
        )
    else:
        source = Pocket(currency=amount.currency)
    if isinstance(request.destination, Mt5Side):
        account = await me_service.own_live_account(
            session, me.id, request.destination.login, None, "destination.login"
        )
        destination = Pocket(
            currency=account.currency,
            mt5=Mt5AccountRef(server=account.server, login=account.login),
        )
    else:
        require_supported(request.destination.currency, "destination.currency")
        destination = Pocket(currency=request.destination.currency)
    if source == destination:
        raise InvalidInput("source and destination are the same", field="destination")
    if source.currency != destination.currency:
        await require_rate(session, source.currency, destination.currency)
    # Locked until the commit: a concurrent request of the same wallet waits and sees our hold.
    wallet_has = await lock_available(session, me.id, amount) if source.mt5 is None else None

    transfer_id = uuid.uuid4()
    transfer, created = await first_request(
        session,
        Transfer,
        Transfer(
            id=transfer_id,
            client_id=me.id,
            reference=reference_for(MovementKind.TRANSFER, transfer_id),
            status=PaymentStatus.INITIATED.value,
            currency=amount.currency,
            amount_minor=amount.to_minor_units(),
            idempotency_key=key,
            request_hash=digest,
            workflow_id=transfer_workflow_id(transfer_id),
            source_server=source.mt5.server if source.mt5 else None,
            source_login=source.mt5.login if source.mt5 else None,
            destination_currency=destination.currency,
            destination_server=destination.mt5.server if destination.mt5 else None,
            destination_login=destination.mt5.login if destination.mt5 else None,
        ),
    )
    if not created:
        return transfer
    if wallet_has is not None:
        # The key the workflow's `take_from` books its hold under (`Saga.key("hold")`).
        await hold_at_request(session, me.id, f"{transfer.reference}:hold", amount, wallet_has)
    audit.record(
        session,
        me.actor(),
        audit.Change(
            action="transfer.requested",
            entity_type="transfer",
            entity_id=str(transfer.id),
            after={
                "reference": transfer.reference,
                "amount_minor": transfer.amount_minor,
                "currency": transfer.currency,
                "source": source.model_dump(mode="json"),
                "destination": destination.model_dump(mode="json"),
                "idempotency_key": key,
            },
        ),
    )
    return await start_request(
        session,
        temporal,
        transfer,
        TRANSFER,
        TransferInput(
            transfer_id=transfer.id,
            client_id=me.id,
            reference=transfer.reference,
            amount=amount,
            source=source,
            destination=destination,
        ),
    )
