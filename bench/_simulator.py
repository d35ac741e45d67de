"""Starting the simulators for a benchmark: each its own process on a free loopback port."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

BIN = Path(sys.executable).parent
MANAGER, PASSWORD = 1000, "Manager#1"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start_simulator(*extra: str) -> tuple[subprocess.Popen[bytes], int]:
    """The running MT5 simulator (plain HTTP) and its port, once it says it is listening. Markets
    are always open, so a benchmark measures the same on a Sunday."""
    port = free_port()
    command = [str(BIN / "python"), "-m", "simulators.mt5", "--port", str(port)]
    command += ["--manager", str(MANAGER), "--password", PASSWORD, "--market-hours", "always"]
    command += extra
    process = subprocess.Popen(command, stdout=subprocess.PIPE)  # noqa: S603
    assert process.stdout is not None
    process.stdout.readline()  # "MT5 simulator listening on ..."
    return process, port


def start_psp_simulator(webhook_url: str, *extra: str) -> tuple[subprocess.Popen[bytes], int]:
    """The running payment-processor simulator (CardCo and BankCo with their default keys and
    secrets) and its port, once it answers; its webhooks go to `webhook_url`/{provider}."""
    port = free_port()
    command = [str(BIN / "python"), "-m", "simulators.psp", "--port", str(port)]
    command += ["--webhook-url", webhook_url, *extra]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL)  # noqa: S603
    # It says it is listening before uvicorn has bound the port: wait for an answer.
    deadline = time.monotonic() + 30
    while True:
        try:
            httpx.get(f"http://127.0.0.1:{port}/_sim/state", timeout=1).raise_for_status()
            return process, port
        except httpx.HTTPError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.terminate()
                raise RuntimeError("the PSP simulator did not start") from None
            time.sleep(0.1)
