"""The HTTP API: operators' console, police handhelds, Prometheus. See :func:`create_app`."""

from ioc.api.main import create_app

__all__ = ["create_app"]
