"""Argument types shared by the commands: numbers argparse refuses, with the value named, when
out of range, instead of a command taking them and failing later (or worse, not failing)."""

from __future__ import annotations

import argparse

__all__ = ["positive", "tcp_port"]


def _integer(text: str, low: int, high: int | None, what: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = None
    if value is None or value < low or (high is not None and value > high):
        raise argparse.ArgumentTypeError(f"{text!r} is not {what}")
    return value


def tcp_port(text: str) -> int:
    """A TCP port, 1-65535 like IOC_API_PORT and the others: the kernel binds a larger number
    modulo 65536 (99999 is 34463) while uvicorn logs the number given, and 0 a random port."""
    return _integer(text, 1, 65535, "a port (1-65535)")


def positive(text: str) -> int:
    """A count of at least one (processes, events): 0 or fewer would start or measure nothing."""
    return _integer(text, 1, None, "a positive integer")
