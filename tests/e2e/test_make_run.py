"""`make run`'s stack on embedded defaults, brought up for real, smoke-tested, stopped cleanly.

Every port is moved to a free one and the data folder to a temporary one, so a developer's own
running stack is not disturbed.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.processes import ROOT, free_port, spawn, wait_for_log

pytestmark = pytest.mark.e2e


@pytest.fixture
def stack_home() -> Iterator[Path]:
    # Outside pytest's own temporary tree: the embedded server's start-up adjusts permissions
    # along its data folder's parents, which must not touch the test session's database.
    home = Path(tempfile.mkdtemp(prefix="bf-make-run-"))
    yield home
    shutil.rmtree(home, ignore_errors=True)


def test_the_stack_comes_up_passes_the_smoke_run_and_stops(
    stack_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tmp_path = stack_home
    api_port = free_port()
    env = {
        "BROKERFLOW_DATA_DIR": str(tmp_path / "data"),
        "BROKERFLOW_API_PORT": str(api_port),
        "BROKERFLOW_TEMPORAL_ADDRESS": f"127.0.0.1:{free_port()}",
        "BROKERFLOW_STACK_TEMPORAL_UI_PORT": str(free_port()),
        "BROKERFLOW_MT5__ADDRESS": f"127.0.0.1:{free_port()}",
        "BROKERFLOW_PSP__BASE_URL": f"http://127.0.0.1:{free_port()}",
        "BROKERFLOW_MAIL__SMTP_PORT": str(free_port()),
        "BROKERFLOW_STACK_MAIL_UI_PORT": str(free_port()),
    }
    for variable in ("DATABASE_URL", "BROKERFLOW_DATABASE_URL"):
        monkeypatch.delenv(variable, raising=False)  # embedded defaults, as on a fresh machine
    stack = spawn("make-run", [sys.executable, "-m", "ops.stack"], env, tmp_path / "logs")
    try:
        wait_for_log(stack, "BrokerFlow is up", timeout=180)
        assert "Demo credentials" in stack.log_path.read_text()
        smoke = subprocess.run(
            [sys.executable, "-m", "ops.smoke", "--base-url", f"http://127.0.0.1:{api_port}"],
            cwd=ROOT,
            env={**os.environ, **env},
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert smoke.returncode == 0, smoke.stdout + smoke.stderr
        assert "SMOKE OK" in smoke.stdout
    finally:
        stack.process.send_signal(signal.SIGTERM)
        stack.process.wait(60)
    assert stack.process.returncode == 0, stack.log()
    assert not (tmp_path / "data" / "pg" / "postmaster.pid").exists(), "PostgreSQL left running"
