"""``ioc migrate``: create or upgrade the database schema (safe to run concurrently and repeatedly)."""

from __future__ import annotations

import argparse
import asyncio
import json

from ioc.config import get_settings


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("migrate", help="create or upgrade the database schema (idempotent)")
    parser.add_argument(
        "--layout", choices=["timescaledb", "postgres"], default=None,
        help="storage layout for a new database (default: TimescaleDB when the server preloads it)",
    )
    parser.add_argument(
        "--retention", action="store_true",
        help="afterwards, drop data past IOC_READ_RETENTION_DAYS / IOC_ALERT_RETENTION_DAYS and "
             "create the next days' partitions (run this from a scheduler, e.g. hourly)",
    )
    parser.set_defaults(func=run)


async def _run(layout: str | None, retention: bool) -> dict:
    from ioc.storage.database import connect, detect_capabilities
    from ioc.storage.migrations import migrate, recorded_layout
    from ioc.storage.retention import run_retention

    settings = get_settings()
    conninfo = settings.database_conninfo()
    applied = await migrate(conninfo, layout=layout)  # type: ignore[arg-type]
    async with await connect(conninfo) as conn:
        caps = await detect_capabilities(conn)
        # the layout chosen, not what the server offers: an extension left in a postgres-layout
        # database is not used
        report: dict = {"applied": applied, "layout": await recorded_layout(conn),
                        "timescaledb": caps.timescaledb_version,
                        "tsl": caps.tsl, "pg_trgm": caps.pg_trgm}
        if retention:
            result = await run_retention(conn, caps, read_days=settings.read_retention_days,
                                         alert_days=settings.alert_retention_days)
            await conn.commit()
            report["retention"] = {"run_id": result.run_id, "dropped": result.dropped,
                                   "deleted": result.deleted}
    return report


def run(args: argparse.Namespace) -> int:
    report = asyncio.run(_run(args.layout, args.retention))
    print(json.dumps(report))
    return 0
