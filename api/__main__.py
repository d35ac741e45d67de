"""`python -m api`: serve the API with uvicorn."""

from __future__ import annotations

import sys

import uvicorn

from api import redaction
from api.app import create_app
from api.startup import check_listen
from observability.logging import configure_logging
from settings import get_settings


def main() -> None:
    settings = get_settings()
    configure_logging(settings.log_level, settings.log_json)
    redaction.install("uvicorn.access", "uvicorn.error")
    warning = check_listen(settings)  # raises when dev secrets would face the network
    if warning:
        print(warning, file=sys.stderr, flush=True)
    uvicorn.run(
        create_app(settings),
        host=settings.api_host,
        port=settings.api_port,
        log_config=None,
        proxy_headers=False,
    )


if __name__ == "__main__":
    main()
