from __future__ import annotations

import hmac
import ipaddress
from pathlib import Path

import fastapi_offline
from fastapi import APIRouter, Depends, Request, Response
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from sqlalchemy import text

from api.console.ingestion_service import publish_ingestion_metrics
from api.deps import ContextDep, SessionDep, SettingsDep
from api.pages import templates
from api.policy import public
from api.problems import error_responses
from api.system.schemas import Health
from domain.errors import Forbidden, NotAuthenticated
from settings import Settings

router = APIRouter(tags=["system"], dependencies=[Depends(public)])
# Swagger UI's assets are served from a wheel, not a CDN: brokers' networks are often closed.
DOCS_ASSETS = StaticFiles(directory=Path(fastapi_offline.__file__).resolve().parent / "static")
DOCS_ASSETS_PATH = "/static/docs"


@router.get("/healthz")
async def health(session: SessionDep) -> Health:
    await session.execute(text("SELECT 1"))
    return Health(status="ok", database="ok")


@router.get(
    "/metrics",
    response_class=Response,
    responses=error_responses(
        {401: "the metrics token is missing or wrong", 403: "not from this host, no token set"}
    ),
)
async def metrics(request: Request, settings: SettingsDep, context: ContextDep) -> Response:
    """Prometheus exposition format: for this host's callers, or with the metrics token
    (`Authorization: Bearer <BROKERFLOW_METRICS_TOKEN>`) from elsewhere."""
    _metrics_allowed(request, settings, context.ip)
    await publish_ingestion_metrics(request)
    rendered: Response = request.app.state.metrics.render()
    return rendered


def _metrics_allowed(request: Request, settings: Settings, ip: str) -> None:
    try:
        if ipaddress.ip_address(ip).is_loopback:
            return
    except ValueError:
        pass
    token = settings.metrics_token
    if token is None:
        raise Forbidden(
            f"/metrics answers this host only; set BROKERFLOW_METRICS_TOKEN to scrape from {ip}"
        )
    given = request.headers.get("authorization", "")
    expected = f"Bearer {token.get_secret_value()}"
    if not hmac.compare_digest(given.encode(), expected.encode()):
        raise NotAuthenticated("/metrics needs the metrics token as a bearer token")


@router.get("/console", response_class=HTMLResponse)
async def console(request: Request, settings: SettingsDep) -> HTMLResponse:
    """The staff console's front door; the pages behind it arrive with their workflows."""
    return templates.TemplateResponse(
        request, "console.html", {"environment": settings.env, "mt5_server": settings.mt5.name}
    )


@router.get("/docs", response_class=HTMLResponse, include_in_schema=False)
async def api_reference(request: Request) -> HTMLResponse:
    return get_swagger_ui_html(
        openapi_url=request.app.openapi_url,
        title="BrokerFlow API",
        swagger_js_url=f"{DOCS_ASSETS_PATH}/swagger-ui-bundle.js",
        swagger_css_url=f"{DOCS_ASSETS_PATH}/swagger-ui.css",
        swagger_favicon_url=f"{DOCS_ASSETS_PATH}/favicon.png",
    )
