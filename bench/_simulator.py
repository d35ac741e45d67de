"""Starting the MT5 simulator for a benchmark: its own process on a free loopback port."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

BIN = Path(sys.executable).parent
MANAGER, PASSWORD = 1000, "Manager#1"


def start_simulator(*extra: str) -> tuple[subprocess.Popen[bytes], int]:
    """The running simulator (plain HTTP) and its port, once it says it is listening."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    command = [str(BIN / "python"), "-m", "simulators.mt5", "--port", str(port)]
    command += ["--manager", str(MANAGER), "--password", PASSWORD, *extra]
    process = subprocess.Popen(command, stdout=subprocess.PIPE)  # noqa: S603
    assert process.stdout is not None
    process.stdout.readline()  # "MT5 simulator listening on ..."
    return process, port
