"""``ioc api``: the HTTP API and the operator page (uvicorn on IOC_API_HOST:IOC_API_PORT)."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from ioc.commands._arguments import positive, tcp_port

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

CHECK_TIMEOUT_S = 10  # the one connection attempt before starting; the pool would retry for 30 s


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("api", help="serve the HTTP API and the operator page")
    parser.add_argument("--host", default=None, help="bind address (default IOC_API_HOST, 127.0.0.1)")
    parser.add_argument("--port", type=tcp_port, default=None, help="port (default IOC_API_PORT)")
    parser.add_argument("--workers", type=positive, default=1,
                        help="processes (each has its own pool, live consumer and sign-in throttle)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import signal

    import uvicorn

    from ioc.api.main import create_app
    from ioc.config import get_settings

    settings = get_settings()
    host, port = args.host or settings.api_host, args.port or settings.api_port
    if settings.api_metrics_port and not _serve_metrics(settings.api_metrics_port, host, port, args.workers):
        return 2
    _check_database(settings.database_conninfo())
    options = {"host": host, "port": port,
               "log_level": "debug" if args.verbose else "info", "loop": "uvloop", "http": "httptools",
               # X-Forwarded-For believed only from the configured proxies: anyone can write it
               "proxy_headers": bool(settings.api_trusted_proxies),
               "forwarded_allow_ips": settings.api_trusted_proxies or None,
               "server_header": False, "access_log": False,
               "timeout_graceful_shutdown": 5}
    # uvicorn shuts down gracefully, then re-raises the signal it caught; a stop we asked for is a clean exit
    for stop in (signal.SIGTERM, signal.SIGINT):
        signal.signal(stop, lambda *_: None)
    if args.workers > 1:
        # worker processes import the factory and read the same IOC_* environment
        uvicorn.run("ioc.api.main:create_app", factory=True, workers=args.workers, **options)
    else:
        app = create_app(settings)

        class _Server(uvicorn.Server):
            async def shutdown(self, sockets: list | None = None) -> None:
                # live streams would hold the graceful shutdown to its timeout; ended now, their
                # clients reconnect (to another replica, or to this one restarted) and resume
                if (alerts := getattr(app.state, "alerts", None)) is not None:
                    alerts.drain()
                await super().shutdown(sockets)

        starting = _StartUp(app)
        server = _Server(uvicorn.Config(starting, **options))
        try:
            server.run()
        except SystemExit:  # uvicorn's exit 3 where the start-up failed, or the port is taken
            if starting.error is None:
                raise
            # ioc.cli says what it was in one line, as for any other command (or shows a bug's traceback)
            raise starting.error from None
        if not server.started:
            return 3  # as uvicorn.run: the server never started (port taken)
    return 0


def _check_database(conninfo: str) -> None:
    """Connect once before starting: a database that is down, or refuses the login, is then one line
    at once, not the pool's 30 s of retries and uvicorn's traceback of its PoolTimeout."""
    import psycopg

    with psycopg.connect(conninfo, connect_timeout=CHECK_TIMEOUT_S):
        pass


class _StartUp:
    """The app, keeping the error its start-up failed with for the command to report: uvicorn
    would log the traceback starlette sends with the failure."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.error: Exception | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "lifespan":
            return await self.app(scope, receive, send)
        failed = False

        async def untold(message: Message) -> None:
            nonlocal failed
            if message["type"] == "lifespan.startup.failed":
                failed, message = True, {"type": message["type"]}
            await send(message)

        try:
            await self.app(scope, receive, untold)
        except Exception as exc:
            if failed:
                self.error = exc
            raise  # uvicorn ends the start-up, and logs nothing more


def _serve_metrics(metrics_port: int, host: str, api_port: int, workers: int) -> bool:
    """Serve this process's /metrics on ``metrics_port`` (IOC_API_METRICS_PORT), beside the API;
    False, with the reason on stderr, where that cannot be."""
    import sys

    from prometheus_client import start_http_server

    if workers > 1:
        problem = (f"--workers {workers} cannot serve IOC_API_METRICS_PORT={metrics_port}: each worker "
                   "process has its own metrics, and one port would show those of one of them at random. "
                   "Run one process per container (replicas, not --workers), or unset IOC_API_METRICS_PORT")
    elif metrics_port == api_port:
        problem = f"IOC_API_METRICS_PORT ({metrics_port}) must differ from the API port"
    else:
        try:
            start_http_server(metrics_port, addr=host)
            return True
        except OSError as exc:
            problem = f"cannot serve metrics on {host}:{metrics_port}: {exc}"
    print(f"ioc api: {problem}", file=sys.stderr)
    return False
