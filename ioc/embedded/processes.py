"""Process bookkeeping for the embedded services: liveness by PID, and owner
files so a later start can clean up services whose owner was killed (a
SIGKILLed or timed-out test run cannot run its own cleanup)."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path

__all__ = [
    "OWNER_FILE", "cmdline", "owner_alive", "pid_alive", "read_pid",
    "send_signal", "wait_gone", "write_owner",
]

OWNER_FILE = "owner.pid"


def pid_alive(pid: int) -> bool:
    """Whether ``pid`` is a live process (a zombie awaiting its reaper counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    except OSError:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    return stat.rsplit(")", 1)[-1].split()[0] not in ("Z", "X")


def wait_gone(pid: int, timeout: float) -> bool:
    """Poll until ``pid`` is gone; True if it went within ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not pid_alive(pid):
            return True
        time.sleep(0.02)
    return not pid_alive(pid)


def send_signal(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)


def cmdline(pid: int) -> list[str]:
    """The process's argv, or [] when it is gone or unreadable."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def write_owner(state_dir: Path) -> None:
    """Record this process as the owner of the service living in ``state_dir``."""
    (state_dir / OWNER_FILE).write_text(f"{os.getpid()}\n")


def owner_alive(state_dir: Path) -> bool | None:
    """Whether the recorded owner still runs; None when there is no readable owner file."""
    try:
        owner = int((state_dir / OWNER_FILE).read_text().strip())
    except (OSError, ValueError):
        return None
    return pid_alive(owner)


def read_pid(path: Path) -> int | None:
    """The PID on the first line of ``path``, if any."""
    try:
        return int(path.read_text().split("\n", 1)[0])
    except (OSError, ValueError):
        return None
