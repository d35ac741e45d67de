"""`python -m api`: serve the API with uvicorn."""

from __future__ import annotations

import uvicorn

from api.app import create_app
from observability.logging import configure_logging
from settings import get_settings


def main() -> None:
    settings = get_settings()
    configure_logging(settings.log_level, settings.log_json)
    uvicorn.run(
        create_app(settings),
        host=settings.api_host,
        port=settings.api_port,
        log_config=None,
        proxy_headers=False,
    )


if __name__ == "__main__":
    main()
