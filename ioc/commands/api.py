"""``ioc api``: the HTTP API and operator page."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("api", help="serve the HTTP API and the operator page")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:  # noqa: ARG001
    import uvicorn

    from ioc.api.app import create_app
    from ioc.config import get_settings

    settings = get_settings()
    uvicorn.run(create_app(settings), host=settings.api_host, port=settings.api_port,
                log_level="info", proxy_headers=False, server_header=False)
    return 0
