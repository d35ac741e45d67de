"""The Jinja2 environment of the server-rendered pages (the staff console), shared by every
module that renders one."""

from __future__ import annotations

from pathlib import Path

from fastapi.templating import Jinja2Templates

templates = Jinja2Templates(directory=Path(__file__).resolve().parent / "templates")
