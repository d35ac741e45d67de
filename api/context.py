"""Per-request facts the audit trail needs: caller IP, request id, trace id."""

from __future__ import annotations

import ipaddress
import uuid
from dataclasses import dataclass

from fastapi import Request
from opentelemetry import trace

from settings import Settings


@dataclass(frozen=True)
class RequestContext:
    ip: str
    request_id: str
    trace_id: str | None


def client_ip(request: Request, settings: Settings) -> str:
    """The caller's address; X-Forwarded-For is believed only from a configured trusted proxy."""
    peer = request.client.host if request.client else "0.0.0.0"
    forwarded = request.headers.get("x-forwarded-for")
    if forwarded and _is_trusted_proxy(peer, settings.trusted_proxies):
        candidate = forwarded.split(",")[-1].strip()
        try:
            return str(ipaddress.ip_address(candidate))
        except ValueError:
            return peer
    return peer


def _is_trusted_proxy(peer: str, trusted: list[str]) -> bool:
    try:
        address = ipaddress.ip_address(peer)
    except ValueError:
        return False
    return any(address in ipaddress.ip_network(cidr, strict=False) for cidr in trusted)


def current_trace_id() -> str | None:
    context = trace.get_current_span().get_span_context()
    return format(context.trace_id, "032x") if context.is_valid else None


def request_context(request: Request, settings: Settings) -> RequestContext:
    request_id = request.headers.get("x-request-id") or uuid.uuid4().hex
    return RequestContext(
        ip=client_ip(request, settings), request_id=request_id[:64], trace_id=current_trace_id()
    )
