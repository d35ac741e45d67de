"""Real child processes for tests: the MT5 and PSP simulators, the worker, the API."""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import httpx

from tests.support.waiting import NotWithin, until

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


# Ports handed to children are picked below the kernel's ephemeral range: a port bound to 0
# comes from that range, and any outgoing connection (the suite makes thousands) may take it as
# its source port before the child binds it (a full run failed so: "address already in use").
# Above the well-known ports a `make run` stack uses (all below 10000).
_CHILD_PORTS = range(20000, 32768)
_handed_out: set[int] = set()
_shuffle = random.Random()  # its own: a test seeding the shared one must not fix our picks


def _ephemeral_start() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return _CHILD_PORTS.stop


def free_port() -> int:
    """A port no one listens on, not handed out before in this run, outside the kernel's
    ephemeral range."""
    ports = range(_CHILD_PORTS.start, min(_CHILD_PORTS.stop, _ephemeral_start()))
    for port in _shuffle.sample(ports, len(ports)):
        if port in _handed_out:
            continue
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        _handed_out.add(port)
        return port
    raise RuntimeError(f"no free port in {ports}")


@dataclass
class Child:
    name: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def kill(self) -> None:
        """SIGKILL: no clean-up, as when a machine dies."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-5000:]


def spawn(name: str, args: list[str], env: Mapping[str, str], log_dir: Path) -> Child:
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{name}-{time.monotonic_ns()}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            args, cwd=ROOT, env={**os.environ, **env}, stdout=log, stderr=subprocess.STDOUT
        )
    return Child(name, process, log_path)


def wait_for_log(child: Child, text: str, timeout: float = 30) -> None:
    def printed() -> bool:
        _alive(child)
        return text in child.log_path.read_text(errors="replace")

    try:
        until(printed, f"{child.name} printing {text!r}", timeout)
    except NotWithin:
        raise TimeoutError(f"{child.name} did not print {text!r}:\n{child.log()}") from None


def wait_for_http(child: Child, url: str, timeout: float = 60) -> None:
    # One client for every look: each new one loads the CA certificates (~0.1 s of CPU, taken
    # from the process being waited for).
    with httpx.Client(timeout=2) as http:

        def answering() -> bool:
            _alive(child)
            try:
                return http.get(url).status_code < 500
            except httpx.HTTPError:
                return False

        try:
            until(answering, f"{child.name} answering at {url}", timeout)
        except NotWithin:
            raise TimeoutError(f"{child.name} did not answer at {url}:\n{child.log()}") from None


def _alive(child: Child) -> None:
    if child.process.poll() is not None:
        raise RuntimeError(f"{child.name} exited early:\n{child.log()}")


@dataclass
class Simulator:
    child: Child
    port: int
    manager: int
    password: str
    tls: bool

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        return f"{'https' if self.tls else 'http'}://{self.address}"

    def inject_faults(self, *rules: dict[str, object], seed: int = 7) -> None:
        """Replace the simulator's fault rules (its simulator-only `/_sim/faults`)."""
        response = httpx.post(
            f"{self.base_url}/_sim/faults", json={"rules": list(rules), "seed": seed}, verify=False
        )
        response.raise_for_status()

    def clear_faults(self) -> None:
        httpx.delete(f"{self.base_url}/_sim/faults", verify=False).raise_for_status()

    def fault_hits(self) -> int:
        rules = httpx.get(f"{self.base_url}/_sim/faults", verify=False).json()["rules"]
        return sum(int(rule["hits"]) for rule in rules)


def start_simulator(
    log_dir: Path,
    *,
    manager: int = 1000,
    password: str = "Manager#1",
    tls: bool = True,
    extra: list[str] | None = None,
) -> Simulator:
    port = free_port()
    args = [
        str(BIN / "python"),
        "-m",
        "simulators.mt5",
        "--port",
        str(port),
        "--manager",
        str(manager),
        "--password",
        password,
        *(["--tls"] if tls else []),
        # Tests run on any day of the week: markets never close under them.
        "--market-hours",
        "always",
        *(extra or []),
    ]
    child = spawn("mt5-sim", args, {}, log_dir)
    wait_for_log(child, "MT5 simulator listening")
    return Simulator(child, port, manager, password, tls)


@dataclass
class PspSimulator:
    """The payment-processor simulator, driven through its hosted page and `/_sim/` surface."""

    child: Child
    port: int
    # The simulator's own defaults (simulators/psp/__main__.py), which BrokerFlow must be given.
    card_api_key: str = "sk_card_dev"
    card_webhook_secret: str = "whsec_card_dev"
    bank_api_key: str = "sk_bank_dev"
    bank_webhook_secret: str = "whsec_bank_dev"
    # Kept for every helper call: a new client costs ~0.1 s (it loads CA certificates).
    http: httpx.Client = field(default_factory=lambda: httpx.Client(timeout=10), repr=False)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.http.close()
        self.child.stop()

    def _call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        response = self.http.request(method, f"{self.base_url}{path}", **kwargs)
        response.raise_for_status()
        return response

    def pay(self, intent_id: str, succeed: bool = True) -> None:
        """The customer pays (or declines) on CardCo's hosted page."""
        outcome = "succeeded" if succeed else "failed"
        self._call("POST", f"/cardco/pay/{intent_id}", data={"outcome": outcome})

    def incoming(
        self, reference: str, amount: str, currency: str, payer_name: str
    ) -> dict[str, Any]:
        """A bank transfer quoting `reference` arrives at BankCo."""
        body = {
            "reference": reference,
            "amount": amount,
            "currency": currency,
            "payer_name": payer_name,
        }
        transfer: dict[str, Any] = self._call("POST", "/_sim/bankco/incoming", json=body).json()
        return transfer

    def settle(
        self, payout_id: str, outcome: Literal["settled", "failed"] = "settled"
    ) -> dict[str, Any]:
        body = {"payout": payout_id, "outcome": outcome}
        payout: dict[str, Any] = self._call("POST", "/_sim/bankco/settle", json=body).json()
        return payout

    def webhook_faults(
        self,
        delay_ms: int = 0,
        duplicate_probability: float = 0.0,
        reorder_window: int = 0,
        drop_probability: float = 0.0,
    ) -> None:
        """Replace the delivery faults; the defaults switch them all off."""
        body = {
            "delay_ms": delay_ms,
            "duplicate_probability": duplicate_probability,
            "reorder_window": reorder_window,
            "drop_probability": drop_probability,
        }
        self._call("POST", "/_sim/webhooks", json=body)

    def flush_webhooks(self) -> None:
        """Send the events a reorder window still holds."""
        self._call("DELETE", "/_sim/webhooks")

    def deliveries(self) -> list[dict[str, Any]]:
        """The delivery log: one entry per copy sent, with attempts, status and outcome."""
        delivered: list[dict[str, Any]] = self._call("GET", "/_sim/webhooks").json()["delivered"]
        return delivered

    def auto_settle(self, after_ms: int | None, fail_probability: float = 0.0) -> None:
        """New BankCo payouts settle (or fail) by themselves; None or 0 turns it off."""
        body = {"after_ms": after_ms, "fail_probability": fail_probability}
        self._call("POST", "/_sim/bankco/auto_settle", json=body)

    def state(self) -> dict[str, Any]:
        """Every intent, deposit reference, transfer and payout the processors know of."""
        state: dict[str, Any] = self._call("GET", "/_sim/state").json()
        return state


def start_psp_simulator(
    log_dir: Path, webhook_url: str, *, extra: list[str] | None = None
) -> PspSimulator:
    port = free_port()
    args = [
        str(BIN / "python"),
        "-m",
        "simulators.psp",
        "--port",
        str(port),
        "--webhook-url",
        webhook_url,
        *(extra or []),
    ]
    child = spawn("psp-sim", args, {}, log_dir)
    simulator = PspSimulator(child, port)
    try:
        # The line is printed before uvicorn binds the port: wait for an answer too.
        wait_for_log(child, "PSP simulator listening")
        wait_for_http(child, f"{simulator.base_url}/_sim/state")
    except BaseException:
        simulator.stop()
        raise
    return simulator


@dataclass
class SmtpCatcher:
    """The SMTP catcher (`simulators.smtp`): BrokerFlow's mail lands here, read over HTTP."""

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
        """Every message caught (for `to` when given), oldest first."""
        params = {"to": to} if to is not None else None
        response = self.http.get(f"{self.base_url}/messages", params=params)
        response.raise_for_status()
        caught: list[dict[str, Any]] = response.json()
        return caught

    def wait_for(
        self, to: str, *, subject: str = "", count: int = 1, timeout: float = 60
    ) -> list[dict[str, Any]]:
        """The first `count` messages to `to` whose subject contains `subject` (case-insensitive),
        waiting for them to arrive."""

        def arrived() -> list[dict[str, Any]]:
            found = [m for m in self.messages(to) if subject.lower() in str(m["subject"]).lower()]
            return found[:count] if len(found) >= count else []

        try:
            mail: list[dict[str, Any]] = until(
                arrived, f"{count} mail {subject!r} to {to}", timeout
            )
        except NotWithin:
            seen = [m["subject"] for m in self.messages(to)]
            raise TimeoutError(f"no mail {subject!r} to {to} arrived; caught: {seen}") from None
        return mail

    def message(self, message_id: str) -> httpx.Response:
        return self.http.get(f"{self.base_url}/messages/{message_id}")

    def clear(self) -> int:
        """Forget every message; returns how many there were."""
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
        # Printed before uvicorn binds its port: wait for an HTTP answer too.
        wait_for_log(child, "SMTP catcher listening")
        wait_for_http(child, f"{catcher.base_url}/health")
    except BaseException:
        catcher.stop()
        raise
    return catcher
