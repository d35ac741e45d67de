from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from pydantic import BaseModel
from sqlalchemy import text

from api.deps import SessionDep, SettingsDep
from api.policy import public

router = APIRouter(tags=["system"], dependencies=[Depends(public)])
templates = Jinja2Templates(directory=Path(__file__).resolve().parent.parent / "templates")


class Health(BaseModel):
    status: str
    database: str


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
