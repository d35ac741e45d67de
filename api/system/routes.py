from __future__ import annotations

from pathlib import Path

import fastapi_offline
from fastapi import APIRouter, Depends, Request, Response
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from sqlalchemy import text

from api.deps import SessionDep, SettingsDep
from api.pages import templates
from api.policy import public
from api.system.schemas import Health

router = APIRouter(tags=["system"], dependencies=[Depends(public)])
# Swagger UI's assets are served from a wheel, not a CDN: brokers' networks are often closed.
DOCS_ASSETS = StaticFiles(directory=Path(fastapi_offline.__file__).resolve().parent / "static")
DOCS_ASSETS_PATH = "/static/docs"


@router.get("/healthz")
async def health(session: SessionDep) -> Health:
    await session.execute(text("SELECT 1"))
    return Health(status="ok", database="ok")


@router.get("/metrics", response_class=Response)
async def metrics(request: Request) -> Response:
    """Prometheus exposition format."""
    rendered: Response = request.app.state.metrics.render()
    return rendered


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
