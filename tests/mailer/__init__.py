"""Tests of outgoing mail. `start_smtp_catcher` runs the SMTP catcher simulator as a child
process on free ports (a candidate for tests/support/processes.py)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests.support.processes import BIN, Child, free_port, spawn, wait_for_http, wait_for_log


@dataclass
class SmtpCatcher:
    child: Child
    smtp_port: int
    http_port: int
    http: httpx.Client = field(default_factory=lambda: httpx.Client(timeout=10), repr=False)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def stop(self) -> None:
        self.http.close()
        self.child.stop()

    def messages(self, to: str | None = None) -> list[dict[str, Any]]:
        params = {"to": to} if to is not None else {}
        response = self.http.get(f"{self.base_url}/messages", params=params)
        response.raise_for_status()
        found: list[dict[str, Any]] = response.json()
        return found

    def message(self, message_id: str) -> httpx.Response:
        return self.http.get(f"{self.base_url}/messages/{message_id}")

    def clear(self) -> int:
        response = self.http.delete(f"{self.base_url}/messages")
        response.raise_for_status()
        return int(response.json()["deleted"])


def start_smtp_catcher(log_dir: Path, *, extra: list[str] | None = None) -> SmtpCatcher:
    smtp_port, http_port = free_port(), free_port()
    args = [
        str(BIN / "python"),
        "-m",
        "simulators.smtp",
        "--smtp-port",
        str(smtp_port),
        "--http-port",
        str(http_port),
        *(extra or []),
    ]
    child = spawn("smtp-catcher", args, {}, log_dir)
    catcher = SmtpCatcher(child, smtp_port, http_port)
    try:
        wait_for_log(child, "SMTP catcher listening")
        wait_for_http(child, f"{catcher.base_url}/health")
    except BaseException:
        catcher.stop()
        raise
    return catcher
