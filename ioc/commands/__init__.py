"""Sub-commands of ``ioc``: one module each, with ``register(subparsers)``."""
