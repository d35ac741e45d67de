"""The stack as real processes: API and worker on PostgreSQL, Temporal, the MT5 simulator, an
SMTP catcher for their mail, a document store of their own and, when given, the PSP simulator."""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import SecretStr

from settings import seal_secret
from tests.support.processes import (
    BIN,
    Child,
    PspSimulator,
    Simulator,
    SmtpCatcher,
    free_port,
    spawn,
    start_smtp_catcher,
    wait_for_http,
    wait_for_log,
)

TEST_SECRETS_KEY = "dGVzdC1vbmx5LXNlY3JldHMta2V5LTAxMjM0NTY3ODk="
WORKER_READY = "worker running on task queues"


def psp_env(psp: PspSimulator, key: SecretStr) -> dict[str, str]:
    return {
        "BROKERFLOW_PSP__BASE_URL": psp.base_url,
        "BROKERFLOW_PSP__TIMEOUT_SECONDS": "5",
        # Sealed, as production keeps them: the API and the worker must open them themselves.
        "BROKERFLOW_PSP__CARDCO_API_KEY": seal_secret(psp.card_api_key, key),
        "BROKERFLOW_PSP__CARDCO_WEBHOOK_SECRET": seal_secret(psp.card_webhook_secret, key),
        "BROKERFLOW_PSP__BANKCO_API_KEY": seal_secret(psp.bank_api_key, key),
        "BROKERFLOW_PSP__BANKCO_WEBHOOK_SECRET": seal_secret(psp.bank_webhook_secret, key),
        # A deposit whose webhook is lost asks the processor soon, so a test can see it happen.
        "BROKERFLOW_PAYMENTS__DEPOSIT_OUTCOME_POLL_AFTER": "PT2S",
        "BROKERFLOW_PAYMENTS__DEPOSIT_OUTCOME_POLL_EVERY": "PT1M",
    }


@dataclass
class Stack:
    owner_url: str
    temporal_address: str
    simulator: Simulator
    log_dir: Path
    api_port: int = field(default_factory=free_port)
    extra_env: dict[str, str] = field(default_factory=dict)
    psp: PspSimulator | None = None
    # Started with the first process when not given (and stopped with the stack then).
    smtp: SmtpCatcher | None = None
    # Encrypted client documents: a directory of this stack's own unless given.
    documents_dir: Path | None = None
    worker: Child | None = None
    api: Child | None = None
    _owns_smtp: bool = field(default=False, repr=False)
    _owns_documents_dir: bool = field(default=False, repr=False)

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    def env(self) -> dict[str, str]:
        key = SecretStr(TEST_SECRETS_KEY)
        return {
            "BROKERFLOW_ENV": "test",
            "BROKERFLOW_DATABASE_URL": self.owner_url,
            "BROKERFLOW_TEMPORAL_ADDRESS": self.temporal_address,
            "BROKERFLOW_API_PORT": str(self.api_port),
            "BROKERFLOW_SECRETS_KEY": TEST_SECRETS_KEY,
            "BROKERFLOW_JWT_SECRET": "test-only-jwt-secret-0123456789abcdef",
            "BROKERFLOW_MT5__ADDRESS": self.simulator.address,
            "BROKERFLOW_MT5__MANAGER_LOGIN": str(self.simulator.manager),
            # Sealed, as production keeps it: the worker must open it itself.
            "BROKERFLOW_MT5__MANAGER_PASSWORD": seal_secret(self.simulator.password, key),
            "BROKERFLOW_MT5__TLS": "true" if self.simulator.tls else "false",
            "BROKERFLOW_MT5__TIMEOUT_SECONDS": "5",
            "BROKERFLOW_LOG_LEVEL": "INFO",
            **(psp_env(self.psp, key) if self.psp else {}),
            **self._mail_and_documents_env(),
            **self.extra_env,
        }

    def _mail_and_documents_env(self) -> dict[str, str]:
        if self.smtp is None:
            self.smtp = start_smtp_catcher(self.log_dir)
            self._owns_smtp = True
        if self.documents_dir is None:
            self.documents_dir = Path(tempfile.mkdtemp(prefix="bf-stack-documents-"))
            self._owns_documents_dir = True
        return {
            "BROKERFLOW_MAIL__SMTP_HOST": "127.0.0.1",
            "BROKERFLOW_MAIL__SMTP_PORT": str(self.smtp.smtp_port),
            # Links in mails (email verification) point at this stack's API.
            "BROKERFLOW_MAIL__PUBLIC_BASE_URL": self.api_url,
            "BROKERFLOW_DOCUMENTS_DIR": str(self.documents_dir),
        }

    def start_worker(self) -> Child:
        self.worker = self._spawn_worker()
        wait_for_log(self.worker, WORKER_READY, timeout=60)
        return self.worker

    def start_api(self) -> Child:
        self.api = self._spawn_api()
        wait_for_http(self.api, f"{self.api_url}/healthz")
        return self.api

    def start(self, worker_timeout: float = 60) -> None:
        """Worker and API side by side: neither needs the other to come up, and each spends
        seconds importing, which two cores do at once."""
        self.env()  # the SMTP catcher and document store, once, before either process
        self.worker = self._spawn_worker()
        self.api = self._spawn_api()
        wait_for_log(self.worker, WORKER_READY, timeout=worker_timeout)
        wait_for_http(self.api, f"{self.api_url}/healthz")

    def _spawn_worker(self) -> Child:
        return spawn("worker", [str(BIN / "python"), "worker.py"], self.env(), self.log_dir)

    def _spawn_api(self) -> Child:
        return spawn("api", [str(BIN / "python"), "-m", "api"], self.env(), self.log_dir)

    def stop(self) -> None:
        for child in (self.api, self.worker):
            if child is not None:
                child.stop()
        if self._owns_smtp and self.smtp is not None:
            self.smtp.stop()
            self.smtp = None
            self._owns_smtp = False
        if self._owns_documents_dir and self.documents_dir is not None:
            shutil.rmtree(self.documents_dir, ignore_errors=True)
            self.documents_dir = None
            self._owns_documents_dir = False
