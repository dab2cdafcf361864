"""Migrations on both layouts: what they build, that re-runs and concurrent runs are no-ops."""

from __future__ import annotations

import asyncio
import uuid

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import make_conninfo
from psycopg_pool import PoolTimeout

from ioc.storage.database import connect, detect_capabilities, open_pool
from ioc.storage.migrations import MIGRATIONS, MigrationError, migrate

TIME_SERIES = ("plate_reads", "plate_crops", "sensor_readings")


async def _scalar(url: str, query: str, params: list | None = None):  # noqa: ANN202
    async with await connect(url, autocommit=True) as conn:
        row = await (await conn.execute(query, params)).fetchone()
        return row[0] if row else None


async def test_first_run_applies_everything_the_server_supports(database_url: str) -> None:
    applied = await migrate(database_url)
    async with await connect(database_url) as conn:
        caps = await detect_capabilities(conn)
    expected = [m.name for m in MIGRATIONS if m.requires(caps)]
    assert applied == expected
    assert "0001_core" in applied and "0002_time_series" in applied
    recorded = await _scalar(database_url, "SELECT array_agg(name ORDER BY name) FROM schema_migrations")
    assert recorded == expected


async def test_rerun_is_a_no_op(database_url: str) -> None:
    await migrate(database_url)
    before = await _scalar(database_url, "SELECT count(*) FROM pg_class")
    assert await migrate(database_url) == []
    assert await _scalar(database_url, "SELECT count(*) FROM pg_class") == before


async def test_concurrent_runs_apply_each_migration_once(database_url: str) -> None:
    results = await asyncio.gather(*(migrate(database_url) for _ in range(3)))
    applied = [name for result in results for name in result]
    assert len(applied) == len(set(applied))
    assert sum(1 for r in results if r) == 1


async def test_layout_follows_the_server(database_url: str, request: pytest.FixtureRequest) -> None:
    await migrate(database_url)
    async with await connect(database_url) as conn:
        caps = await detect_capabilities(conn)
    variant = request.node.callspec.params["database_url"]
    assert caps.timescaledb == (variant == "timescaledb")
    assert caps.layout == variant
    assert await _scalar(database_url, "SELECT layout FROM storage_layout") == variant
    if caps.timescaledb:
        hypertables = await _scalar(
            database_url, "SELECT array_agg(hypertable_name::text) FROM timescaledb_information.hypertables")
        assert set(hypertables) >= {*TIME_SERIES, "checkpoint_counts"}
        assert caps.timescaledb_version
    else:
        partitioned = await _scalar(
            database_url,
            "SELECT array_agg(c.relname::text) FROM pg_partitioned_table p"
            " JOIN pg_class c ON c.oid = p.partrelid")
        assert set(partitioned) == set(TIME_SERIES)
        # today's partition exists, and the days ahead
        assert await _scalar(database_url, "SELECT count(*) FROM pg_inherits"
                             " WHERE inhparent = 'plate_reads'::regclass") >= 8


async def test_capabilities_match_what_the_server_can_do(database_url: str) -> None:
    await migrate(database_url)
    async with await connect(database_url) as conn:
        caps = await detect_capabilities(conn)
        assert caps.server_version >= 150000
        license_name = await (await conn.execute(
            "SELECT current_setting('timescaledb.license', true)")).fetchone()
        assert caps.tsl == (caps.timescaledb and license_name[0] == "timescale")
        available = await (await conn.execute(
            "SELECT count(*) FROM pg_available_extensions WHERE name = 'pg_trgm'")).fetchone()
        assert caps.pg_trgm == bool(available[0])
        if caps.tsl:
            return
        # without the Timescale License, continuous aggregates really are unavailable here
        if caps.timescaledb:
            with pytest.raises(psycopg.Error):
                async with conn.transaction():
                    await conn.execute(
                        "CREATE MATERIALIZED VIEW probe WITH (timescaledb.continuous) AS"
                        " SELECT time_bucket('1 hour', bucket) AS b, count(*) FROM checkpoint_counts"
                        " GROUP BY 1 WITH NO DATA")


async def test_plain_layout_can_be_forced_and_is_then_kept(database_url: str) -> None:
    assert await migrate(database_url, layout="postgres")
    assert await _scalar(database_url, "SELECT layout FROM storage_layout") == "postgres"
    with pytest.raises(MigrationError):
        await migrate(database_url, layout="timescaledb")
    assert await migrate(database_url) == []


async def test_open_pool_fails_fast_on_bad_settings(database_url: str) -> None:
    missing = make_conninfo(database_url, dbname="no_such_database")
    with pytest.raises(PoolTimeout):
        await open_pool(missing, min_size=1, max_size=1, timeout=2)
    pool = await open_pool(database_url, min_size=1, max_size=2, timeout=10)
    try:
        async with pool.connection() as conn:
            row = await (await conn.execute("SHOW TimeZone")).fetchone()
            assert row == ("UTC",)
    finally:
        await pool.close()


async def test_an_ordinary_database_owner_can_migrate(
    database_url: str, request: pytest.FixtureRequest
) -> None:
    """``shared_preload_libraries`` is for superusers only, and the owner of an application's
    database is usually not one: ``migrate`` must not need it (issue: it failed outright where
    TimescaleDB was available but not installed, even with the postgres layout asked for)."""
    role, password = f"owner_{uuid.uuid4().hex[:10]}", uuid.uuid4().hex
    databases = {"forced": f"{role}_forced", "chosen": f"{role}_chosen"}
    ident = sql.Identifier
    async with await connect(database_url, autocommit=True) as admin:
        await admin.execute(
            sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(ident(role), sql.Literal(password)))
        try:
            for name in databases.values():
                await admin.execute(sql.SQL("CREATE DATABASE {} OWNER {} TEMPLATE template0").format(
                    ident(name), ident(role)))
            owner = {key: make_conninfo(database_url, user=role, password=password, dbname=name)
                     for key, name in databases.items()}
            superuser = "SELECT rolsuper FROM pg_roles WHERE rolname = current_user"
            assert await _scalar(owner["forced"], superuser) is False
            assert await migrate(owner["forced"], layout="postgres")
            assert await _scalar(owner["forced"], "SELECT layout FROM storage_layout") == "postgres"
            # without a layout: TimescaleDB where the owner can install it (it is a trusted extension)
            assert await migrate(owner["chosen"])
            variant = request.node.callspec.params["database_url"]
            assert await _scalar(owner["chosen"], "SELECT layout FROM storage_layout") == variant
        finally:
            for name in databases.values():
                await admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(ident(name)))
            await admin.execute(sql.SQL("DROP ROLE {}").format(ident(role)))


async def test_a_pool_with_a_statement_timeout_cancels_what_runs_longer(database_url: str) -> None:
    """The API's pool: a query no index narrows must not hold a pooled connection for minutes."""
    pool = await open_pool(database_url, min_size=1, max_size=1, timeout=10, statement_timeout_s=0.2)
    try:
        async with pool.connection() as conn:
            row = await (await conn.execute("SHOW statement_timeout")).fetchone()
            assert row == ("200ms",)
            with pytest.raises(psycopg.errors.QueryCanceled):
                await conn.execute("SELECT pg_sleep(3)")
            await conn.rollback()
            row = await (await conn.execute("SHOW TimeZone")).fetchone()
            assert row == ("UTC",)
    finally:
        await pool.close()
