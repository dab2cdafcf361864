"""Agents, one module per stage; each exposes ``register(ctx)``."""
