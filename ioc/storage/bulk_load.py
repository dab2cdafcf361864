"""Plain COPY of plate reads, for benchmarks and bulk back-fills into an empty range.

Unlike :func:`ioc.storage.plate_reads.insert_plate_reads` this skips the staging
table and the duplicate check, so it is several times faster and fails on a
duplicate key: use it only for rows known to be new.
"""

from __future__ import annotations

from collections.abc import Iterable

from psycopg import AsyncConnection

__all__ = ["BULK_READ_COLUMNS", "analyze_plate_reads", "copy_plate_reads"]

# the order of the values in each row given to copy_plate_reads
BULK_READ_COLUMNS = (
    "read_id", "captured_at", "camera_id", "checkpoint_id", "lane", "direction", "text", "display",
    "confidence", "province", "out_of_province", "source", "source_event_id", "vehicle_class",
    "processed_at",
)

_COPY = f"COPY plate_reads ({', '.join(BULK_READ_COLUMNS)}) FROM STDIN"


async def copy_plate_reads(conn: AsyncConnection, rows: Iterable[tuple]) -> int:
    """COPY ``rows`` (values in :data:`BULK_READ_COLUMNS` order) into ``plate_reads``."""
    count = 0
    async with conn.cursor() as cur, cur.copy(_COPY) as copy:
        for row in rows:
            await copy.write_row(row)
            count += 1
    return count


async def analyze_plate_reads(conn: AsyncConnection) -> None:
    """Refresh the planner's statistics after a bulk load (else it plans for an empty table)."""
    await conn.execute("ANALYZE plate_reads")
