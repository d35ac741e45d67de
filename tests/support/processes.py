"""Real child processes for tests: the MT5 simulator, the worker, the API."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


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
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if text in child.log_path.read_text(errors="replace"):
            return
        if child.process.poll() is not None:
            raise RuntimeError(f"{child.name} exited early:\n{child.log()}")
        time.sleep(0.1)
    raise TimeoutError(f"{child.name} did not print {text!r}:\n{child.log()}")


def wait_for_http(child: Child, url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if child.process.poll() is not None:
            raise RuntimeError(f"{child.name} exited early:\n{child.log()}")
        try:
            if httpx.get(url, timeout=2).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"{child.name} did not answer at {url}:\n{child.log()}")


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
        *(extra or []),
    ]
    child = spawn("mt5-sim", args, {}, log_dir)
    wait_for_log(child, "MT5 simulator listening")
    return Simulator(child, port, manager, password, tls)
