"""ops.stack and ops.processes: the parts that need no BrokerFlow process to test."""

from __future__ import annotations

import signal
import socket
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from ops import stack as stack_mod
from ops.processes import Child, StackError, port_is_free, split_host_port, wait_until
from settings import MailSettings, Mt5ServerSettings, PspSettings, Settings
from tests.support.processes import free_port

ROOT = Path(__file__).resolve().parents[2]


def test_split_host_port() -> None:
    assert split_host_port("127.0.0.1:7233") == ("127.0.0.1", 7233)
    assert split_host_port("[::1]:8443") == ("::1", 8443)
    assert split_host_port(":8000") == ("127.0.0.1", 8000)
    with pytest.raises(StackError):
        split_host_port("temporal")


def test_port_is_free_sees_a_listener() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        assert not port_is_free("127.0.0.1", port)
    assert port_is_free("127.0.0.1", port)


def _settings(tmp_path: Path, **overrides: Any) -> Settings:
    return Settings(data_dir=tmp_path, _env_file=None, **overrides)


def _stack_settings() -> stack_mod.StackSettings:
    return stack_mod.StackSettings(_env_file=None)


def test_plan_refuses_missing_parts_unless_partial(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(stack_mod, "COMPONENT_FILES", {"api": "no/such/__main__.py"})
    stack_settings = _stack_settings()
    with pytest.raises(StackError, match=r"api \(no/such/__main__.py\).*--partial"):
        stack_mod.make_plan(_settings(tmp_path), stack_settings, partial=False)
    plan = stack_mod.make_plan(_settings(tmp_path), stack_settings, partial=True)
    assert "api" in plan.skip
    assert plan.pgdata == tmp_path / "pg"
    assert plan.start_temporal and plan.temporal_port == 7233


def test_plan_uses_external_services(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(stack_mod, "COMPONENT_FILES", {})
    settings = _settings(
        tmp_path,
        database_url="postgresql://u:p@db.example:5432/x",
        temporal_address="temporal.example:7233",
        mt5=Mt5ServerSettings(address="mt5.example:443"),
    )
    plan = stack_mod.make_plan(settings, _stack_settings(), partial=False)
    assert plan.pgdata is None
    assert not plan.start_temporal
    assert not plan.start_sim


def test_port_conflict_fails_clearly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(stack_mod, "COMPONENT_FILES", {})
    # Every other part on a free port: a `make run` stack on the default ports is not a conflict
    # this test is about.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        plan = stack_mod.make_plan(
            _settings(
                tmp_path,
                api_port=port,
                temporal_address=f"127.0.0.1:{free_port()}",
                mt5=Mt5ServerSettings(address=f"127.0.0.1:{free_port()}"),
                psp=PspSettings(base_url=f"http://127.0.0.1:{free_port()}"),
                mail=MailSettings(smtp_port=free_port()),
            ),
            stack_mod.StackSettings(
                _env_file=None, temporal_ui_port=free_port(), mail_ui_port=free_port()
            ),
            partial=False,
        )
        with pytest.raises(StackError, match=rf"port {port} .*\(API\).*BROKERFLOW_API_PORT"):
            stack_mod.check_ports(plan)


def test_child_streams_output_with_a_prefix(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    seen: list[str] = []
    child = Child(
        "echo",
        [sys.executable, "-c", "print('hello'); print('world')"],
        {},
        tmp_path,
        log_file=tmp_path / "echo.log",
        on_line=seen.append,
    )
    child.start()
    assert child.wait(30) == 0
    assert seen == ["hello", "world"]
    assert "     echo | hello" in capsys.readouterr().out
    assert (tmp_path / "echo.log").read_text() == "hello\nworld\n"


def test_stop_escalates_to_sigkill(tmp_path: Path) -> None:
    code = (
        "import signal, sys, time\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "print('ready', flush=True)\n"
        "time.sleep(60)\n"
    )
    ready: list[str] = []
    child = Child("stubborn", [sys.executable, "-c", code], {}, tmp_path, on_line=ready.append)
    child.start()
    wait_until("the child", lambda: ready == ["ready"], timeout=30)
    started = time.monotonic()
    assert child.stop(grace=0.5) == -signal.SIGKILL
    assert time.monotonic() - started < 10


def test_stop_kills_grandchildren(tmp_path: Path) -> None:
    code = (
        "import subprocess, sys, time\n"
        "p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
        "print(p.pid, flush=True)\n"
        "time.sleep(60)\n"
    )
    pids: list[str] = []
    child = Child("parent", [sys.executable, "-c", code], {}, tmp_path, on_line=pids.append)
    child.start()
    wait_until("the grandchild", lambda: bool(pids), timeout=30)
    child.stop(grace=5)
    grandchild = int(pids[0])
    wait_until("the grandchild to go", lambda: not _alive(grandchild), timeout=10)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split()[2] != "Z"
    except FileNotFoundError:
        return False


def test_wait_until_reports_a_dead_child(tmp_path: Path) -> None:
    child = Child("dies", [sys.executable, "-c", "raise SystemExit(3)"], {}, tmp_path)
    child.start()
    with pytest.raises(StackError, match="dies exited with code 3"):
        wait_until("never", lambda: False, timeout=30, alive=child)


def test_stack_entry_points_are_named_as_documented() -> None:
    """The files ops.stack runs are the contract's entry points."""
    assert stack_mod.COMPONENT_FILES == {
        "migrate": "db/migrate.py",
        "mt5-sim": "simulators/mt5/__main__.py",
        "worker": "worker.py",
        "api": "api/__main__.py",
        "seed": "ops/seed.py",
    }
