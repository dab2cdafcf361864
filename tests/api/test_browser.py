"""The operator page in a real browser (headless Chromium): sign in, render the
console, receive a live alert produced to the real alerts topic, acknowledge it
with a note, and find the new status in the database. Screenshots go to
tests/artifacts/."""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from aiokafka import AIOKafkaProducer
from served_api import PASSWORD, ApiServer, plate_read, store_alerts, store_reads, watchlist_alert
from webdriver_client import Browser, browser_available, chromium

from detectors.jpeg import encode_jpeg
from detectors.synthetic import render_plate_patch
from ioc.schemas import Alert, AlertKind, AlertStatus, Direction, Severity
from ioc.storage.cameras import record_seen, set_online, upsert_camera
from ioc.storage.checkpoint_counts import refresh_counts
from ioc.storage.database import connect

pytestmark = [
    pytest.mark.browser,
    pytest.mark.parametrize("database_url", ["timescaledb"], indirect=True),
    pytest.mark.skipif(not browser_available(), reason="needs chromium and chromedriver "
                       "(apt-get install chromium chromium-driver)"),
]

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
CHECKPOINTS = ("CP01", "CP02", "CP03")


def _crop(text: str, seed: int) -> bytes:
    patch, _ = render_plate_patch((text, "one_line", "white"), rng=np.random.default_rng(seed),
                                  style="test", plate_width=220, occlusion=0.0, glare=0.0, margin=0.25)
    return encode_jpeg(patch, quality=85)


async def _seed_wall(api: ApiServer) -> None:
    """An hour of traffic at three checkpoints, their cameras (one silent) and a few alerts."""
    rng = random.Random(5)
    now = datetime.now(UTC)
    reads = []
    for minute in range(60):
        for _ in range(rng.randint(4, 14)):
            checkpoint = rng.choice(CHECKPOINTS)
            home = rng.random() < 0.6
            province = "20" if home else rng.choice(["29", "30", "51", "43", "92"])
            text = f"{province}{rng.choice('ABCDFGH')}{rng.randint(10000, 99999)}"
            reads.append(plate_read(
                text, captured_at=now - timedelta(minutes=minute, seconds=rng.randint(0, 59)),
                checkpoint_id=checkpoint, camera_id=f"{checkpoint}-CAM{rng.randint(1, 2)}",
                direction=Direction.IN if rng.random() < 0.55 else Direction.OUT,
                confidence=rng.uniform(0.7, 0.99)))
    await store_reads(api, reads)
    async with await connect(api.conninfo) as conn:
        for checkpoint in CHECKPOINTS:
            for cam in (1, 2):
                await upsert_camera(conn, f"{checkpoint}-CAM{cam}", checkpoint, expected_interval_s=60)
        await upsert_camera(conn, "CP03-CAM3", "CP03", expected_interval_s=60, look_closer="always")
        await record_seen(conn, {f"{cp}-CAM{cam}": now - timedelta(seconds=rng.randint(1, 40))
                                 for cp in CHECKPOINTS for cam in (1, 2)})
        await record_seen(conn, {"CP03-CAM3": now - timedelta(minutes=14)})
        await set_online(conn, "CP03-CAM3", False)
        await refresh_counts(conn, since=now - timedelta(minutes=61), until=now)
        await conn.commit()
    older = plate_read("43A24681", captured_at=now - timedelta(minutes=9), checkpoint_id="CP02",
                       camera_id="CP02-CAM1", crop=_crop("43A24681", 2))
    await store_reads(api, [older])
    earlier_hit = watchlist_alert("43A24681", read=older, display="43A-246.81", priority=2,
                                  reason="Xe liên quan vụ trộm cắp tài sản", match_kind="lookalike",
                                  score=0.86, matched_text="43A2468I").model_copy(
        update={"raised_at": now - timedelta(minutes=9), "status": AlertStatus.ACKNOWLEDGED})
    camera = Alert(alert_id=uuid.uuid4(), alert_kind=AlertKind.CAMERA_OFFLINE, severity=Severity.WARNING,
                   subject="CP03-CAM3", checkpoint_id="CP03", camera_id="CP03-CAM3",
                   raised_at=now - timedelta(minutes=12),
                   evidence={"last_seen": (now - timedelta(minutes=14)).isoformat()})
    await store_alerts(api, [earlier_hit, camera])


async def _sign_in(browser: Browser, api: ApiServer) -> None:
    await browser.open(api.url + "/")
    await browser.wait_for("return !document.querySelector('#login-view').hidden")
    await browser.type("#login input[name=username]", "wall-operator")
    await browser.type("#login input[name=password]", PASSWORD)
    await browser.click("#login button[type=submit]")
    await browser.wait_for("return !document.querySelector('#console-view').hidden")


async def test_operator_console_live_alert_and_acknowledge(api: ApiServer) -> None:
    await api.user("wall-operator", "operator")
    await _seed_wall(api)
    ARTIFACTS.mkdir(exist_ok=True)
    async with chromium() as browser:
        await browser.set_viewport(1920, 1080)
        await _sign_in(browser, api)
        # the live stream is open (server side) and the page says so
        deadline = time.monotonic() + 15
        while api.app.state.alerts.subscribers < 1 and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        assert api.app.state.alerts.subscribers >= 1
        await browser.wait_for("return document.querySelector('#live').classList.contains('on')")
        # the seeded wall: earlier alerts, the chart's totals, camera health
        await browser.wait_for("return document.querySelectorAll('#alerts li.alert').length === 2")
        await browser.wait_for("return document.querySelectorAll('#cameras tbody tr').length === 7")
        offline = await browser.script(
            "return [...document.querySelectorAll('#cameras tr.offline td.id')].map(td => td.textContent)")
        assert offline == ["CP03-CAM3"]
        looks = await browser.script(
            "return Object.fromEntries([...document.querySelectorAll('#cameras tbody tr')]"
            ".map(tr => [tr.querySelector('td.id').textContent, tr.querySelector('td.look').textContent]))")
        assert looks.pop("CP03-CAM3") == "luôn luôn" and set(looks.values()) == {"mặc định"}
        totals = await browser.wait_for(
            "const t = [...document.querySelectorAll('#legend .total')].map(b => b.textContent);"
            " return t.length === 4 ? t : null")
        assert sum(int(x.replace(".", "").replace(",", "")) for x in totals) > 0

        # a watchlist hit, stored and published as a worker would
        read = plate_read("30A12345", captured_at=datetime.now(UTC) - timedelta(seconds=3),
                          checkpoint_id="CP01", camera_id="CP01-CAM1", crop=_crop("30A12345", 1))
        await store_reads(api, [read])
        alert = watchlist_alert("30A12345", read=read, display="30A-123.45",
                                reason="Xe ô tô bị mất cắp (vụ án 117/2026)")
        await store_alerts(api, [alert])
        producer = AIOKafkaProducer(bootstrap_servers=api.settings.kafka_bootstrap, linger_ms=0)
        await producer.start()
        try:
            sent = time.perf_counter()
            await producer.send_and_wait(api.settings.topics.alerts, alert.to_json(), key=b"30A12345")
        finally:
            await producer.stop()
        selector = f"li.alert[data-alert-id='{alert.alert_id}']"
        await browser.wait_for(f"return document.querySelector(\"{selector}\") !== null", timeout=10)
        shown_after = time.perf_counter() - sent
        card = await browser.script(
            f"const li = document.querySelector(\"{selector}\");"
            " const text = (css) => li.querySelector(css).textContent;"
            " return {plate: text('.plate'), reason: text('.reason'), status: li.dataset.status,"
            " route: li.querySelectorAll('.route li').length}")
        assert card == {"plate": "30A-123.45", "reason": "Xe ô tô bị mất cắp (vụ án 117/2026)",
                        "status": "new", "route": 1}
        # the crop was fetched with the token and decoded
        await browser.wait_for(f"const img = document.querySelector(\"{selector} .crop img\");"
                               " return img && img.complete && img.naturalWidth > 0")
        await browser.script("window.scrollTo(0, 0)")
        (ARTIFACTS / "operator-console-new-alert.png").write_bytes(await browser.screenshot())

        await browser.type(f"{selector} input.note", "Đã điều tổ tuần tra 12")
        await browser.click(f"{selector} button[data-action=acknowledged]")
        await browser.wait_for(
            f"return document.querySelector(\"{selector}\").dataset.status === 'acknowledged'")
        rows = await api.sql("SELECT status FROM alerts WHERE alert_id = %s", [alert.alert_id])
        assert rows == [("acknowledged",)]
        history = await api.sql("SELECT status, actor, note FROM alert_events WHERE alert_id = %s"
                                " ORDER BY alert_event_id", [alert.alert_id])
        assert history[-1] == ("acknowledged", "wall-operator", "Đã điều tổ tuần tra 12")
        await asyncio.sleep(0.5)  # let the card's arrival animation finish
        (ARTIFACTS / "operator-console.png").write_bytes(await browser.screenshot())

        # English labels
        await browser.click("#lang")
        await browser.wait_for("return document.documentElement.lang === 'en'")
        kind = await browser.script(f"return document.querySelector(\"{selector} .kind\").textContent")
        assert kind == "Watchlist vehicle"
        (ARTIFACTS / "operator-console-en.png").write_bytes(await browser.screenshot())
        assert await browser.console_errors() == []
    assert shown_after < 5.0
