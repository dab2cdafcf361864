"""Benchmarks behind ``ioc bench``: one module each, with ``register(subparsers)``."""
