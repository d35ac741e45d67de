"""BrokerFlow split into processes as it is deployed, for `bench/deposits.py`: the API, the
worker, the baseline's worker, each its own child process (`bench/_metered.py`), configured
through the environment like the `make run` and compose stacks, against the bench's own
services only (no default port); the CPU each process, and each kind of thread in it, spends."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil
from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client

from bench._simulator import free_port
from settings import Settings

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
STARTUP_S = 60.0


def app_environment(settings: Settings, api_port: int, folder: Path) -> dict[str, str]:
    """The settings the API and the worker read, as environment variables (what compose sets).
    Every address is one of the bench's own; data (documents) stays under `folder`."""
    assert settings.database_url
    return {
        **os.environ,
        "BROKERFLOW_ENV": settings.env,
        "BROKERFLOW_DATA_DIR": str(folder / "data"),
        "BROKERFLOW_DATABASE_URL": settings.database_url,
        "BROKERFLOW_TEMPORAL_ADDRESS": settings.temporal_address,
        "BROKERFLOW_MT5__ADDRESS": settings.mt5.address,
        "BROKERFLOW_MT5__TLS": "false",
        "BROKERFLOW_PSP__BASE_URL": settings.psp.base_url,
        "BROKERFLOW_MAIL__SMTP_HOST": settings.mail.smtp_host,
        "BROKERFLOW_MAIL__SMTP_PORT": str(settings.mail.smtp_port),
        "BROKERFLOW_MAIL__PUBLIC_BASE_URL": f"http://127.0.0.1:{api_port}",
        "BROKERFLOW_PAYMENTS__MAX_DEPOSITS_PER_HOUR": str(settings.payments.max_deposits_per_hour),
        "BROKERFLOW_PAYMENTS__DAILY_DEPOSIT_LIMIT": str(settings.payments.daily_deposit_limit),
        "BROKERFLOW_ACCESS_TOKEN_MINUTES": str(settings.access_token_minutes),
        "BROKERFLOW_API_HOST": "127.0.0.1",
        "BROKERFLOW_API_PORT": str(api_port),
        "BROKERFLOW_LOG_LEVEL": "WARNING",
        "BROKERFLOW_LOG_JSON": "false",
    }


@dataclass
class Role:
    """One metered child process (`python -m bench._metered <role>`)."""

    name: str
    process: subprocess.Popen[bytes]
    meter_file: Path
    log: Path

    def alive(self) -> None:
        if self.process.poll() is not None:
            tail = self.log.read_text(errors="replace")[-3000:]
            raise RuntimeError(f"the {self.name} process exited:\n{tail}")

    def reset(self) -> None:
        """Zero its per-label counts (and start its cProfile, if asked for)."""
        self.alive()
        self.process.send_signal(signal.SIGUSR1)

    async def counts(self) -> dict[str, list[float]]:
        """Its per-label counts since the last reset (and its cProfile written)."""
        self.meter_file.unlink(missing_ok=True)
        self.process.send_signal(signal.SIGUSR2)
        for _ in range(200):
            if self.meter_file.exists():
                counts: dict[str, list[float]] = json.loads(self.meter_file.read_text())
                return counts
            await asyncio.sleep(0.05)
        raise RuntimeError(f"the {self.name} process wrote no counts")

    async def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                await asyncio.to_thread(self.process.wait, 30)
            except subprocess.TimeoutExpired:
                self.process.kill()


def spawn(
    name: str, args: list[str], environment: dict[str, str], folder: Path, profile: bool = False
) -> Role:
    meter_file = folder / f"{name}.meter.json"
    log = folder / f"{name}.log"
    environment = {**environment, "BENCH_METER_FILE": str(meter_file)}
    if profile:
        environment["BENCH_CPROFILE"] = str(folder / f"{name}.prof")
    with log.open("wb") as out:
        process = subprocess.Popen(  # noqa: S603
            [str(BIN / "python"), "-m", "bench._metered", *args],
            cwd=ROOT,
            env=environment,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    return Role(name, process, meter_file, log)


async def wait_for_pollers(client: Client, queue: str, role: Role) -> None:
    """Until a worker polls `queue` for workflow tasks (the worker process is up)."""
    deadline = time.monotonic() + STARTUP_S
    request = DescribeTaskQueueRequest(
        namespace=client.namespace,
        task_queue=TaskQueue(name=queue),
        task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
    )
    while time.monotonic() < deadline:
        role.alive()
        described = await client.workflow_service.describe_task_queue(request)
        if described.pollers:
            return
        await asyncio.sleep(0.2)
    raise RuntimeError(f"no worker polls {queue} after {STARTUP_S:.0f} s")


async def wait_for_api(port: int, role: Role) -> None:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as probe:
        deadline = time.monotonic() + STARTUP_S
        while time.monotonic() < deadline:
            role.alive()
            try:
                if (await probe.get("/healthz")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.1)
    raise RuntimeError(f"the API did not answer within {STARTUP_S:.0f} s")


def start_smtp_catcher() -> tuple[subprocess.Popen[bytes], int]:
    """The SMTP catcher (`simulators.smtp`) on free ports, for the sign-ups' mail: never the
    default port, where a `make run` stack's catcher may listen. Returns it and its SMTP port."""
    smtp_port, http_port = free_port(), free_port()
    command = [str(BIN / "python"), "-m", "simulators.smtp"]
    command += ["--smtp-port", str(smtp_port), "--http-port", str(http_port)]
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL)  # noqa: S603
    deadline = time.monotonic() + 30
    while True:
        try:
            httpx.get(f"http://127.0.0.1:{http_port}/health", timeout=1).raise_for_status()
            return process, smtp_port
        except httpx.HTTPError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.terminate()
                raise RuntimeError("the SMTP catcher did not start") from None
            time.sleep(0.1)


def _thread_kind(pid: int, tid: int) -> str:
    """The event loop (the main thread), Temporal's core (Rust threads, named by tokio) or
    other Python threads (workflow activations, `to_thread`)."""
    if tid == pid:
        return "loop"
    try:
        name = Path(f"/proc/{pid}/task/{tid}/comm").read_text().strip()
    except OSError:
        return "threads"
    return "core" if name.startswith("tokio") else "threads"


class CpuMeter:
    """CPU seconds by part, from /proc (psutil): each of BrokerFlow's processes (and the bench,
    the load client) split by thread kind, the Temporal server, PostgreSQL, the simulators.
    Unlike wall time it barely moves with what else runs on the machine."""

    def __init__(self, pgdata: Path, roles: dict[str, Role]) -> None:
        self._me = psutil.Process()
        self._pgdata = pgdata
        self._roles = {role.process.pid: name for name, role in roles.items()}

    def _split(self, process: psutil.Process, name: str, seconds: dict[str, float]) -> None:
        try:
            for thread in process.threads():
                kind = _thread_kind(process.pid, thread.id)
                seconds[f"{name}: {kind}"] += thread.user_time + thread.system_time
        except psutil.Error:
            pass

    def snapshot(self) -> dict[str, float]:
        seconds: dict[str, float] = defaultdict(float)
        self._split(self._me, "load client (bench)", seconds)
        for child in self._me.children(recursive=True):
            role = self._roles.get(child.pid)
            if role is not None:
                self._split(child, role, seconds)
                continue
            try:
                line = " ".join(child.cmdline())
                times = child.cpu_times()
            except psutil.Error:
                continue
            if "temporal" in child.name() or "start-dev" in line:
                group = "temporal server"
            elif "simulators" in line:
                group = "simulators"
            else:
                continue
            seconds[group] += times.user + times.system
        try:
            postmaster = psutil.Process(
                int((self._pgdata / "postmaster.pid").read_text().split()[0])
            )
            for process in [postmaster, *postmaster.children(recursive=True)]:
                times = process.cpu_times()
                seconds["PostgreSQL"] += times.user + times.system
        except (OSError, ValueError, psutil.Error):
            pass
        return seconds
