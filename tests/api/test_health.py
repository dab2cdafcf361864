"""Probes and metrics: ``/livez`` answers while the database does not (liveness must not restart an
API that only lost its database), and with ``IOC_API_METRICS_PORT`` the metrics leave the public
API port for a port of their own (``ioc api`` serves them there)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Awaitable, Callable

import httpx
import pytest
from pipeline_helpers import run_ioc
from served_api import ApiServer, wait_until_serving

from ioc.embedded.ports import free_port
from ioc.storage.migrations import migrate

on_postgres = pytest.mark.parametrize("database_url", ["postgres"], indirect=True)


@on_postgres
async def test_livez_answers_while_the_database_does_not(api: ApiServer) -> None:
    async with api.client() as client:
        assert (await client.get("/healthz")).status_code == 200
        await api.app.state.pool.close()  # the database is away (a failover)
        health = await client.get("/healthz")
        assert health.status_code == 503 and health.json()["database"] == "down"
        alive = await client.get("/livez")  # no token: probes carry none
        assert alive.status_code == 200 and alive.json() == {"status": "ok"}


@on_postgres
async def test_with_a_metrics_port_the_api_port_serves_no_metrics(
    api_factory: Callable[..., Awaitable[ApiServer]],
) -> None:
    api = await api_factory(api_metrics_port=free_port())
    async with api.client() as client:
        assert (await client.get("/metrics")).status_code == 404
        assert "/metrics" not in (await client.get("/openapi.json")).json()["paths"]
        assert (await client.get("/healthz")).status_code == 200


@on_postgres
async def test_ioc_api_serves_its_metrics_on_the_metrics_port_only(database_url: str) -> None:
    await migrate(database_url)
    api_port, metrics_port = free_port(), free_port()
    env = {**os.environ, "IOC_DATABASE_URL": database_url, "IOC_AUTH_SECRET": "health-test-secret",
           "IOC_API_PORT": str(api_port), "IOC_API_METRICS_PORT": str(metrics_port)}
    env.pop("IOC_KAFKA_BOOTSTRAP", None)
    api = subprocess.Popen([sys.executable, "-m", "ioc", "api"], env=env, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
    try:
        await wait_until_serving(f"http://127.0.0.1:{api_port}", api)
        async with httpx.AsyncClient() as client:
            assert (await client.get(f"http://127.0.0.1:{api_port}/metrics")).status_code == 404
            metrics = await client.get(f"http://127.0.0.1:{metrics_port}/metrics")
            assert metrics.status_code == 200
            assert 'ioc_http_requests_total{method="GET",route="/healthz",status="200"}' in metrics.text
    finally:
        api.send_signal(signal.SIGTERM)
        api.wait(20)
    assert api.returncode == 0


def test_ioc_api_refuses_several_processes_with_a_metrics_port() -> None:
    env = {**os.environ, "IOC_API_PORT": str(free_port()), "IOC_API_METRICS_PORT": str(free_port())}
    refused = run_ioc(env, "api", "--workers", "2")
    assert refused.returncode == 2
    assert "--workers 2 cannot serve IOC_API_METRICS_PORT" in refused.stderr
    same = run_ioc({**env, "IOC_API_METRICS_PORT": env["IOC_API_PORT"]}, "api")
    assert same.returncode == 2 and "must differ from the API port" in same.stderr
