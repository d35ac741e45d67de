"""How the app's own database role connects: the owner's URL with the app role swapped in."""

from __future__ import annotations

from sqlalchemy.engine import make_url

from settings import Settings


def app_database_url(owner_url: str, settings: Settings) -> str:
    password = settings.database_app_password
    url = make_url(owner_url).set(
        username=settings.database_app_role,
        password=password.get_secret_value() if password else None,
    )
    return url.render_as_string(hide_password=False)
