"""`make run` stops however it was started: Ctrl-C to the terminal's foreground group, SIGINT or
SIGTERM to the supervisor alone (also when a shell without job control started it with SIGINT
ignored, as `nohup make run &` in a script does), SIGHUP; a second signal while stopping forces.

The supervisor is `ops.stack.run` itself, signals and all, on a reduced set of children: small
Python processes (one with a grandchild in its group, as Temporal and uvicorn have) instead of
PostgreSQL, Temporal and the rest, so each case costs a second or two, not a stack start-up.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.waiting import until

ROOT = Path(__file__).resolve().parents[2]

SUPERVISOR = r"""
import dataclasses, os, sys
from pathlib import Path
from ops import stack as s
from settings import Settings

data_dir, grace, stubborn = Path(sys.argv[1]), float(sys.argv[2]), sys.argv[3] == "stubborn"
SERVER = (
    "import os, signal, subprocess, sys\n"
    "g = subprocess.Popen([sys.executable, '-c', 'import signal; signal.pause()'])\n"
    "print('pid', os.getpid(), flush=True); print('pid', g.pid, flush=True)\n"
    "signal.pause()\n"
)
STUBBORN = (
    "import os, signal\n"
    "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
    "print('pid', os.getpid(), flush=True)\n"
    "signal.pause()  # until a signal it does not ignore\n"
)


class Reduced(s.Stack):
    def start(self) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self._claim_pidfile()
        self.env = dict(os.environ)
        for name in ("database", "worker", "api"):
            self._spawn(name, [sys.executable, "-c", SERVER], colour="0")
        if stubborn:
            self._spawn("stubborn", [sys.executable, "-c", STUBBORN], colour="0")


settings = Settings(_env_file=None, data_dir=data_dir, database_url="postgresql://x@db.invalid/x")
stack_settings = s.StackSettings(_env_file=None, stop_grace=grace)
plan = s.make_plan(settings, stack_settings, partial=True)
plan = dataclasses.replace(
    plan, start_temporal=False, start_sim=False, start_psp=False, start_mail=False,
    skip=frozenset(s.COMPONENT_FILES),
)
sys.exit(s.run(Reduced(settings, stack_settings, plan)))
"""


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, IndexError):
        return False


class Supervisor:
    def __init__(self, tmp_path: Path, *, grace: float, stubborn: bool, ignore: str = "") -> None:
        self.log = tmp_path / "stack.out"
        argv = [sys.executable, "-c", SUPERVISOR, str(tmp_path / "data"), str(grace)]
        argv.append("stubborn" if stubborn else "-")
        if ignore:
            # As a shell without job control starts `cmd &` (SIGINT ignored), and nohup (SIGHUP):
            # ignored dispositions survive exec.
            argv = ["bash", "-c", f"trap '' {ignore}; exec \"$@\"", "bash", *argv]
        with self.log.open("wb") as out:
            # A session of its own: its group is what a terminal's Ctrl-C would reach.
            self.process = subprocess.Popen(
                argv,
                cwd=ROOT,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.expected_pids = 7 if stubborn else 6  # three servers and their grandchildren

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def up(self) -> list[int]:
        def ready() -> list[int] | None:
            assert self.process.poll() is None, self.output()
            pids = [int(p) for p in re.findall(r"\| pid (\d+)$", self.output(), re.MULTILINE)]
            up = "BrokerFlow is up." in self.output() and len(pids) == self.expected_pids
            return pids if up else None

        pids: list[int] = until(ready, "the supervisor and its children to be up", timeout=60)
        return pids

    def all_gone(self, pids: list[int], timeout: float) -> None:
        until(
            lambda: self.process.poll() is not None and not any(_alive(p) for p in pids),
            f"the supervisor and every child to be gone:\n{self.output()}",
            timeout=timeout,
        )

    def kill(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)


@pytest.mark.parametrize(
    ("case", "ignore", "send"),
    [
        ("Ctrl-C to the foreground group", "", "group:SIGINT"),
        ("kill -INT after `nohup make run &`", "INT HUP", "SIGINT"),
        ("kill -TERM (make stop)", "", "SIGTERM"),
        ("SIGHUP", "", "SIGHUP"),
    ],
)
def test_every_stop_signal_stops_every_child(
    tmp_path: Path, case: str, ignore: str, send: str
) -> None:
    supervisor = Supervisor(tmp_path, grace=30, stubborn=False, ignore=ignore)
    try:
        pids = supervisor.up()
        target, _, name = send.rpartition(":")
        sig = signal.Signals[name]
        if target == "group":
            os.killpg(supervisor.process.pid, sig)
        else:
            supervisor.process.send_signal(sig)
        supervisor.all_gone(pids, timeout=60)
    finally:
        supervisor.kill()
    out = supervisor.output()
    assert supervisor.process.returncode == 0, out
    assert f"{sig.name} received; stopping everything" in out
    assert "stack | stopped" in out
    assert not (tmp_path / "data" / "stack.pid").exists()


def test_a_second_signal_forces(tmp_path: Path) -> None:
    # A child that ignores SIGTERM would hold the stop for the whole grace (10 minutes here):
    # the second Ctrl-C must not wait for it.
    supervisor = Supervisor(tmp_path, grace=600, stubborn=True)
    try:
        pids = supervisor.up()
        os.killpg(supervisor.process.pid, signal.SIGINT)
        until(lambda: "stopping stubborn" in supervisor.output(), "the stop to begin", timeout=30)
        os.killpg(supervisor.process.pid, signal.SIGINT)
        supervisor.all_gone(pids, timeout=60)
    finally:
        supervisor.kill()
    out = supervisor.output()
    assert "SIGINT received while stopping; forcing" in out
    assert "stack | stopped" in out
