"""PostgreSQL / TimescaleDB storage: schema migrations and one small repository per table family.

Every write is idempotent (deterministic ids, ``ON CONFLICT``), so at-least-once
delivery from Kafka never double-counts. Functions take an open
``psycopg.AsyncConnection`` and run inside the caller's transaction (as a
savepoint where they need atomicity); the caller commits, e.g. with
``async with pool.connection() as conn``.
"""

from ioc.storage.alerts import (
    AlertEvent,
    AlertRecord,
    alert_crop,
    alert_decisions,
    alert_history,
    get_alert,
    get_alerts,
    insert_alerts,
    recent_alerts,
    update_alert_status,
)
from ioc.storage.audit import AuditNote, AuditRecord, append_audit, audited, list_audit
from ioc.storage.cameras import (
    Camera,
    get_camera,
    list_cameras,
    record_seen,
    set_online,
    silent_cameras,
    upsert_camera,
)
from ioc.storage.checkpoint_counts import (
    CountRow,
    counts_per_minute,
    counts_rollup,
    refresh_counts,
    upsert_counts,
)
from ioc.storage.database import Capabilities, connect, detect_capabilities, open_pool, table_counts
from ioc.storage.migrations import MigrationError, migrate
from ioc.storage.partitions import ensure_partitions
from ioc.storage.plate_reads import (
    Sighting,
    SightingCursor,
    find_sightings,
    get_crop,
    get_read,
    insert_plate_reads,
    recent_reads_matching,
)
from ioc.storage.plate_text import normalise_query, plate_skeleton, wildcard_to_like
from ioc.storage.retention import RetentionResult, run_retention
from ioc.storage.sensor_readings import insert_sensor_readings, sensor_readings_between
from ioc.storage.users import (
    ROLES,
    User,
    authenticate,
    create_user,
    ensure_user,
    get_user,
    list_users,
    set_active,
    set_password,
)
from ioc.storage.watchlist import (
    WatchlistMatch,
    active_entries,
    add_entry,
    entries_changed_since,
    entries_matching,
    expire_entry,
    get_entry,
    list_entries,
    update_entry,
)

__all__ = [
    "ROLES",
    "AlertEvent",
    "AlertRecord",
    "AuditRecord",
    "Camera",
    "Capabilities",
    "CountRow",
    "MigrationError",
    "RetentionResult",
    "Sighting",
    "SightingCursor",
    "User",
    "WatchlistMatch",
    "active_entries",
    "add_entry",
    "alert_crop",
    "alert_decisions",
    "alert_history",
    "AuditNote",
    "append_audit",
    "audited",
    "authenticate",
    "connect",
    "counts_per_minute",
    "counts_rollup",
    "create_user",
    "detect_capabilities",
    "ensure_partitions",
    "ensure_user",
    "entries_changed_since",
    "entries_matching",
    "expire_entry",
    "find_sightings",
    "get_alert",
    "get_alerts",
    "get_camera",
    "get_crop",
    "get_entry",
    "get_read",
    "get_user",
    "insert_alerts",
    "insert_plate_reads",
    "insert_sensor_readings",
    "list_audit",
    "list_cameras",
    "list_entries",
    "list_users",
    "migrate",
    "normalise_query",
    "open_pool",
    "plate_skeleton",
    "recent_alerts",
    "recent_reads_matching",
    "record_seen",
    "refresh_counts",
    "run_retention",
    "sensor_readings_between",
    "set_active",
    "set_online",
    "set_password",
    "silent_cameras",
    "table_counts",
    "update_alert_status",
    "update_entry",
    "upsert_camera",
    "upsert_counts",
    "wildcard_to_like",
]
