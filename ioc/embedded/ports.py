"""Loopback ports for the embedded services."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable

__all__ = ["free_port", "port_accepts", "wait_for_port"]


def free_port(host: str = "127.0.0.1") -> int:
    """A port the kernel just handed out on ``host``.

    Another process may take it before the service binds it; callers retry
    their start when the bind fails.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def port_accepts(host: str, port: int, *, timeout: float = 0.2) -> bool:
    """Whether a TCP connection to ``host:port`` succeeds right now."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def wait_for_port(host: str, port: int, *, timeout: float, alive: Callable[[], bool] = lambda: True) -> bool:
    """Poll until ``host:port`` accepts, ``alive()`` turns false, or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if port_accepts(host, port):
            return True
        if not alive():
            return False
        time.sleep(0.01)
    return False
