"""What API tests share: a served API (``ApiServer``) and rows to put in its database."""

from __future__ import annotations

import asyncio
import itertools
import subprocess
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer, ConsumerRecord

from ioc.api.security import Principal, issue_token
from ioc.config import Settings
from ioc.schemas import Alert, AlertKind, Direction, PlateRead, Severity
from ioc.storage.alerts import insert_alerts
from ioc.storage.database import connect
from ioc.storage.plate_reads import insert_plate_reads
from ioc.storage.users import create_user

ROLES = ("officer", "operator", "supervisor", "auditor", "admin")
PASSWORD = "correct horse battery"


@dataclass
class ApiServer:
    settings: Settings
    url: str
    app: Any
    tokens: dict[str, str] = field(default_factory=dict)

    @property
    def conninfo(self) -> str:
        return self.settings.database_conninfo()

    def client(self, role: str | None = None, **kwargs: Any) -> httpx.AsyncClient:
        headers = {"Authorization": f"Bearer {self.tokens[role]}"} if role else {}
        return httpx.AsyncClient(base_url=self.url, headers=headers, timeout=15.0, **kwargs)

    async def user(self, username: str, role: str, password: str = PASSWORD) -> None:
        async with await connect(self.conninfo) as conn:
            await create_user(conn, username, role, password)
            await conn.commit()

    async def token(self, role: str, username: str | None = None) -> str:
        """A token of a (new) user with ``role``, named ``role`` unless given."""
        username = username or role
        if username not in self.tokens:
            await self.user(username, role)
            self.tokens[username] = issue_token(
                Principal(username, role), secret=self.settings.auth_secret.get_secret_value(), ttl_s=600)
        return self.tokens[username]

    async def all_roles(self) -> dict[str, str]:
        """A user and token for each role (named after the role)."""
        for role in ROLES:
            await self.token(role)
        return {role: self.tokens[role] for role in ROLES}

    async def sql(self, query: str, params: Any = None) -> list[tuple]:
        """Inspect the database directly (assertions only)."""
        async with await connect(self.conninfo) as conn:
            cur = await conn.execute(query, params)
            return await cur.fetchall() if cur.description else []


_serial = itertools.count()


def plate_read(
    text: str,
    *,
    captured_at: datetime | None = None,
    camera_id: str = "CP01-CAM1",
    checkpoint_id: str = "CP01",
    direction: Direction = Direction.IN,
    crop: bytes | None = None,
    confidence: float = 0.93,
) -> PlateRead:
    source_event_id = uuid.uuid4()
    return PlateRead(
        read_id=PlateRead.derive_id(source_event_id, 0), source="edge", source_event_id=source_event_id,
        camera_id=camera_id, checkpoint_id=checkpoint_id, direction=direction,
        captured_at=captured_at or datetime.now(UTC) - timedelta(seconds=60 + next(_serial)),
        text=text, display=text, confidence=confidence, province=text[:2], out_of_province=text[:2] != "20",
        vehicle_class="car", crop_jpeg=crop,
    )


async def store_reads(api: ApiServer, reads: list[PlateRead]) -> None:
    async with await connect(api.conninfo) as conn:
        await insert_plate_reads(conn, reads)
        await conn.commit()


def watchlist_alert(plate: str = "30A12345", *, read: PlateRead | None = None, **evidence: Any) -> Alert:
    now = datetime.now(UTC)
    return Alert(
        alert_id=uuid.uuid4(), alert_kind=AlertKind.WATCHLIST_HIT, severity=Severity.CRITICAL, subject=plate,
        raised_at=now, captured_at=read.captured_at if read else now - timedelta(seconds=2),
        checkpoint_id=read.checkpoint_id if read else "CP01",
        camera_id=read.camera_id if read else "CP01-CAM1",
        read_id=read.read_id if read else None,
        evidence={"entry_id": str(uuid.uuid4()), "pattern": plate, "reason": "stolen vehicle", "priority": 1,
                  "match_kind": "exact", "score": 1.0, "matched_text": plate, "display": plate,
                  "route": [{"checkpoint_id": read.checkpoint_id if read else "CP01",
                             "captured_at": (read.captured_at if read else now).isoformat(),
                             "direction": read.direction.value if read else "in"}],
                  **evidence},
    )


async def store_alerts(api: ApiServer, alerts: list[Alert]) -> None:
    async with await connect(api.conninfo) as conn:
        await insert_alerts(conn, alerts)
        await conn.commit()


async def read_topic(
    bootstrap: str, topic: str, done: Callable[[list[ConsumerRecord]], bool], *, timeout: float = 15.0
) -> list[ConsumerRecord]:
    """Every record on ``topic`` from the beginning, until ``done(records)`` or ``timeout``."""
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=None,
                                auto_offset_reset="earliest", enable_auto_commit=False)
    await consumer.start()
    records: list[ConsumerRecord] = []
    deadline = time.monotonic() + timeout
    try:
        while not done(records) and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=500)
            for partition_records in batch.values():
                records.extend(partition_records)
    finally:
        await consumer.stop()
    return records


async def wait_until_serving(url: str, process: subprocess.Popen) -> None:
    """Wait (up to about 30 s) until the ``ioc api`` ``process`` answers /healthz at ``url``: its
    database too."""
    async with httpx.AsyncClient(base_url=url) as client:
        for _ in range(300):
            assert process.poll() is None, "ioc api stopped"
            try:
                if (await client.get("/healthz")).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.1)
    raise AssertionError("ioc api did not start")
