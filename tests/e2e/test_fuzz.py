"""Schemathesis, with every check, on the running stack: the OpenAPI document tells the truth.

Each operation is run anonymously, and each one again as every principal its policy admits (a
client, an IB, a staff user of each role), so the answers behind the policy are reached too.
Every check schemathesis has is on: no 5xx, only documented statuses, content types and headers,
answers matching their schemas, schema-valid input accepted and schema-invalid input refused (so
the document's limits are the server's), 405 with an `Allow` naming the path's methods.

The examples and fuzzing phases run with a bounded number of generated cases per operation
(`BROKERFLOW_FUZZ_EXAMPLES` raises it; `BROKERFLOW_FUZZ_PHASES` adds `coverage`, the exhaustive
boundary-value phase, too slow for every run). A failure shows schemathesis's own report: the
check, the request as a curl command and the answer.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import time
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import httpx
import pytest
from fastapi.routing import APIRoute

from api.app import create_app
from api.openapi import policy_of
from api.policy import Policy
from db.sealed import SecretBox
from db.session import create_engine, create_sessionmaker
from db.urls import app_database_url
from domain.roles import PrincipalKind, StaffRole
from tests.conftest import make_settings
from tests.support.people import People
from tests.support.processes import BIN
from tests.support.stack import Stack
from tests.support.waiting import until

pytestmark = pytest.mark.e2e
EXAMPLES = int(os.environ.get("BROKERFLOW_FUZZ_EXAMPLES", "2"))
PHASES = os.environ.get("BROKERFLOW_FUZZ_PHASES", "examples,fuzzing")
# Run anonymously only: as a principal they would end the very session the run goes on with.
SESSION_ENDERS = frozenset({"POST /v1/auth/logout", "POST /console/logout"})
PARALLEL = 3
DEADLINE = 270.0
# Rules no JSON Schema can state, so a schema-valid request may be refused with 422 and the
# rule's reason (each is in the operation's description): what a file's bytes are, numbers
# compared with each other or with settings, checksums, dates relative to today.
RULES_NO_SCHEMA_CAN_STATE = {
    "POST /v1/me/documents": "a PDF, PNG or JPEG of a person's papers, no active content",
    "POST /v1/compliance/screening/lists": "a sanctions or PEP list in its published format",
    "POST /v1/finance/fx-rates": "ask not below bid",
    "POST /v1/me/deposits": "amount within the configured limits, in whole minor units",
    "POST /v1/me/withdrawals": "the same, and the IBAN's check digits",
    "POST /v1/me/transfers": "the same, and the accounts' currencies",
    "POST /v1/signup": "adult today, a postal code where the country has them, a dialable phone",
    "POST /v1/auth/password-reset/confirm": "a token the server mailed, unspent and unexpired",
    "POST /v1/auth/staff/password-reset/confirm": "the same, and the staff user's TOTP code",
    "POST /v1/auth/ib/password-reset/confirm": "a token the server mailed, unspent and unexpired",
    "POST /console/reset-password": "the same as the staff confirmation, as a form",
    "POST /console/forgot-password": "an email address (the form is checked as the API's body)",
    "POST /console/ib/forgot-password": "an email address (the form is checked as the API's body)",
    "POST /console/ib/reset-password": "the same as the IB confirmation, as a form",
    "POST /v1/ibs/plans": "a pool's shares at most 1, a rule's fields fit its basis, a booked "
    "payout currency",
    "POST /v1/ibs/plans/{plan_id}/versions": "the same, and `from` after now and the newest",
    "POST /v1/ibs/plan-preview": "the document's cross-references: plans, IBs, accounts, "
    "symbols, rates, attributions that do not overlap",
    "POST /v1/reconciliation/runs": "a configured MT5 server, a day begun on its clock",
    "POST /v1/reconciliation/cases/{case_id}/adjustment": "ledger accounts of a known kind in "
    "the entry's currency, an amount exact in it",
    "POST /console/finance/unmatched/{item_id}/credit": "a known client's e-mail and, for an MT5 "
    "credit, one of that client's live accounts in the item's currency",
    "POST /v1/risk/thresholds": "a time window for the change metric, and only for it",
    "PUT /v1/risk/books/{server}/{login}": "an A-book share for a hybrid book, and only for it",
}
# Schemathesis signs itself up and logs in when it finds a sign-up flow: the anonymous run must
# stay anonymous, and each principal's run uses the token given.
CONFIG = "[auth]\nauto-signup = false\n" + "".join(
    f'\n[[operations]]\ninclude-name = "{name}"\n'
    "checks.positive_data_acceptance.expected-statuses = "
    '["2xx", "3xx", "401", "403", "404", "409", "422", "429"]\n'
    for name in RULES_NO_SCHEMA_CAN_STATE
)


@dataclass(frozen=True)
class Identity:
    name: str
    kind: PrincipalKind | None = None
    role: StaffRole | None = None

    def admitted(self, policy: object) -> bool:
        if self.kind is None:
            return True
        if not isinstance(policy, Policy):
            return False  # public: the anonymous run has it
        return policy.admits(self.kind, frozenset({self.role} if self.role else ()))


IDENTITIES = [
    Identity("anonymous"),
    Identity("client", PrincipalKind.CLIENT),
    Identity("ib", PrincipalKind.IB),
    *(Identity(role.value, PrincipalKind.STAFF, role) for role in StaffRole),
]


@cache
def documented_operations() -> list[tuple[str, object]]:
    """`METHOD /path` of every documented operation, with its policy."""
    app = create_app(make_settings("postgresql://fuzz@127.0.0.1:1/nowhere"))
    return [
        (f"{method} {route.path_format}", policy_of(route.dependant))
        for route in app.routes
        if isinstance(route, APIRoute) and route.include_in_schema
        for method in sorted(route.methods)
    ]


def operations_for(identity: Identity) -> list[str]:
    """The operations the identity's run covers."""
    return [
        name
        for name, policy in documented_operations()
        if identity.admitted(policy) and not (identity.kind and name in SESSION_ENDERS)
    ]


async def _log_in(stack: Stack, identity: Identity) -> dict[str, str]:
    settings = make_settings(stack.owner_url)
    engine = create_engine(app_database_url(stack.owner_url, settings), pool_size=1)
    try:
        async with httpx.AsyncClient(base_url=stack.api_url, timeout=30) as api:
            people = People(create_sessionmaker(engine), SecretBox(settings.secrets_key), api)
            if identity.kind is PrincipalKind.CLIENT:
                return (await people.client()).headers
            if identity.kind is PrincipalKind.IB:
                return (await people.ib()).headers
            assert identity.role is not None
            return (await people.staff(identity.role)).headers
    finally:
        await engine.dispose()


def headers_of(stack: Stack, identity: Identity) -> dict[str, str]:
    return {} if identity.kind is None else asyncio.run(_log_in(stack, identity))


def command_for(stack: Stack, identity: Identity, workdir: Path) -> list[str]:
    workdir.mkdir()
    config = workdir / "schemathesis.toml"
    config.write_text(CONFIG)
    command = [
        str(BIN / "st"),
        "--config-file",
        str(config),
        "run",
        f"{stack.api_url}/openapi.json",
        "--checks",
        "all",
        "--phases",
        PHASES,
        "--max-examples",
        str(EXAMPLES),
        # The answer itself is checked (a console form answers 303), not the page it leads to.
        "--max-redirects",
        "0",
        "--no-color",
        "--report",
        "json",
        "--report-json-path",
        str(workdir / "report.json"),
        "--generation-database",
        "none",
        *(argument for name in operations_for(identity) for argument in ("--include-name", name)),
    ]
    for header, value in headers_of(stack, identity).items():
        command += ["--header", f"{header}: {value}"]
    return command


# The stack's start counts too (pytest-timeout times setup with the test).
@pytest.mark.timeout(DEADLINE + 180)
def test_the_document_tells_the_truth(stack: Stack, tmp_path: Path) -> None:
    """Every identity, a few runs at a time: a run spends most of its time starting up and
    waiting for answers, not computing. All failures are reported together."""
    # Every identity logs in before any run starts: the runs' refused log-ins count against
    # this address, whose throttle would then refuse the harness's own (seen with many examples).
    commands = {i.name: command_for(stack, i, tmp_path / i.name) for i in IDENTITIES}
    pending = list(commands)
    running: dict[str, subprocess.Popen[bytes]] = {}
    failures = []
    started = time.monotonic()
    while pending or running:
        while pending and len(running) < PARALLEL:
            name = pending.pop(0)
            with (tmp_path / name / "output.txt").open("wb") as output:
                # In its own directory: schemathesis keeps a crash cache where it runs.
                running[name] = subprocess.Popen(
                    commands[name], cwd=tmp_path / name, stdout=output, stderr=subprocess.STDOUT
                )
        done = until(
            lambda: [name for name, run in running.items() if run.poll() is not None],
            "a schemathesis run to finish",
            timeout=max(1.0, DEADLINE - (time.monotonic() - started)),
        )
        for name in done:
            run = running.pop(name)
            failure = _outcome(name, run.returncode, tmp_path / name)
            print(f"{name}: {'failed' if failure else 'ok'} at {time.monotonic() - started:.0f}s")
            if failure:
                failures.append(failure)
    assert not failures, "\n".join(failures)


def _outcome(name: str, returncode: int, workdir: Path) -> str | None:
    """None when the run tested every operation it was given and found nothing; else why."""
    [identity] = [i for i in IDENTITIES if i.name == name]
    expected = len(operations_for(identity))
    report = workdir / "report.json"
    summary = json.loads(report.read_text()) if report.exists() else {}
    tested = summary.get("operations", {}).get("tested")
    if returncode == 0 and tested == expected:
        return None
    output = (workdir / "output.txt").read_text(errors="replace")
    return f"--- schemathesis as {name} ({tested}/{expected} operations tested):\n{output}"
