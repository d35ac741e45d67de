from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import JSONResponse

from api.deps import ContextDep, SessionDep, StateDep
from api.policy import public
from api.problems import error_responses, problem
from api.webhooks import service
from api.webhooks.schemas import WebhookAck, WebhookOutcome
from domain.errors import NotFound

router = APIRouter(prefix="/v1/webhooks", tags=["payment processors"])


@router.post(
    "/{provider}",
    dependencies=[Depends(public)],
    response_model=WebhookAck,
    responses=error_responses(
        {
            400: "forged, stale or malformed: stored as rejected, not acted upon",
            404: "no such processor",
            429: "too many rejected webhooks from this address (Retry-After)",
            503: "workflow engine down: nothing stored, deliver again",
        }
    ),
)
async def receive_webhook(
    provider: Annotated[str, Path(max_length=32)],
    request: Request,
    session: SessionDep,
    state: StateDep,
    context: ContextDep,
) -> WebhookAck | JSONResponse:
    """A processor's signed event. Outcomes: `accepted` (signalled to its payment's workflow),
    `duplicate` (seen before, acted on once), `unmatched` and `needs_review` (for finance).
    An address that keeps sending badly signed ones is answered 429 for a while."""
    processor = state.providers.get(provider)
    if processor is None:
        raise NotFound(f"no payment processor {provider!r}")
    await service.check_rejections(session, state, context.ip)
    received = await service.receive(
        session,
        state.temporal,
        processor,
        request.headers,
        await _body_up_to(request, service.MAX_BODY_BYTES + 1),
        datetime.now(UTC),
        source_ip=context.ip,
    )
    if received.outcome is WebhookOutcome.REJECTED:
        await service.count_rejection(state, context)
    metrics = getattr(request.app.state, "metrics", None)
    if received.queued is not None and metrics is not None:
        metrics.unmatched_funds_queued(processor.name, received.queued.value)
    if received.outcome is WebhookOutcome.REJECTED:
        # Answered, not raised: the rejected row is evidence and must be committed.
        return problem(400, "Webhook rejected", received.reason or "webhook rejected")
    return WebhookAck(outcome=received.outcome, event_id=received.event_id)


async def _body_up_to(request: Request, limit: int) -> bytes:
    """The body, read no further than `limit` bytes (a longer one is refused as malformed)."""
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) >= limit:
            break
    return bytes(body)
