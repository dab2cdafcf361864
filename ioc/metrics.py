"""Prometheus metrics, one place. Names follow ``ioc_<what>_<unit>``; counters end
in ``_total``; labels come from small fixed sets (never a plate or a user).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Collection, Iterable, Iterator, Mapping
from datetime import UTC, datetime

from prometheus_client import REGISTRY, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

# --- consumers: every message taken in is either stored or dead-lettered ---
MESSAGES_CONSUMED = Counter(
    "ioc_messages_consumed_total", "Messages taken from a source topic", ["topic"]
)
MESSAGES_STORED = Counter(
    "ioc_messages_stored_total", "Source messages fully processed and committed", ["topic"]
)
MESSAGES_DEAD_LETTERED = Counter(
    "ioc_messages_dead_lettered_total", "Messages sent to the dead-letter topic", ["topic", "reason"]
)
MESSAGES_PRODUCED = Counter(
    "ioc_messages_produced_total", "Messages this process sent and the broker acknowledged", ["topic"]
)
CONSUMER_LAG = Gauge(
    "ioc_consumer_lag_messages",
    "Messages of an assigned source partition not yet committed (highwater minus committed offset)",
    ["topic", "partition"],
)
BROKER_DATA_LOST = Counter(
    "ioc_broker_data_lost_messages_total",
    "Source messages the broker lost before this worker processed them (a partition's log went back)",
    ["topic"],
)
BROKER_TOPICS_RECREATED = Counter(
    "ioc_broker_topics_recreated_total", "Topics gone from the broker that this worker created again",
    ["topic"],
)

# --- recognition ---
FRAMES_PROCESSED = Counter("ioc_frames_processed_total", "Camera frames run through recognition")
PLATES_READ = Counter(
    "ioc_plates_read_total", "Plate reads stored, each once (a replayed read is not counted again)",
    ["source", "layout", "confidence"]
)
RECOGNITION_SECONDS = Histogram(
    "ioc_recognition_seconds",
    "Time to detect and read plates in one frame",
    buckets=(0.005, 0.01, 0.02, 0.03, 0.05, 0.1, 0.2, 0.5, 1.0),
)
RECOGNITION_QUEUE = Gauge("ioc_recognition_queue_frames", "Frames waiting for a recognition thread")

PASSAGES = Counter(
    "ioc_passages_total", "Passage rows written (a passage is written provisional, then final)", ["status"]
)

# --- storage ---
ROWS_WRITTEN = Counter("ioc_rows_written_total", "Rows written to the database", ["table"])
DB_WRITE_SECONDS = Histogram("ioc_db_write_seconds", "Time of one batched database write", ["table"])
DB_WRITE_BATCH_ROWS = Histogram(
    "ioc_db_write_batch_rows",
    "Rows handed to one batched database write",
    ["table"],
    buckets=(1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000),
)
DB_ERRORS = Counter("ioc_db_errors_total", "Database errors that caused a retry", ["operation"])

# --- alerts and checkpoints ---
ALERTS_RAISED = Counter("ioc_alerts_raised_total", "Alerts raised", ["kind", "severity"])
ALERTS_REPUBLISHED = Counter(
    "ioc_alerts_republished_total",
    "Alert changes published from the outbox: their publisher stopped or could not reach the broker",
)
WATCHLIST_HITS = Counter(
    "ioc_watchlist_hits_total",
    "Plate reads that matched a watchlist entry, once per read and entry (a replay adds none)", ["match_kind"]
)
# Capture-to-store and capture-to-alert: up to minutes when workers fall behind, so that the
# alerts' p99 thresholds (rules.yml) lie well inside the top finite bucket.
LATENCY_BUCKETS_S = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
STORE_LATENCY_SECONDS = Histogram(
    "ioc_event_store_latency_seconds",
    "Capture time to row committed (of a read new to the database: a replayed one is not observed again)",
    buckets=LATENCY_BUCKETS_S,
)
ALERT_LATENCY_SECONDS = Histogram(
    "ioc_event_alert_latency_seconds",
    "Capture time of a read to its watchlist alert acknowledged on the alerts topic",
    buckets=LATENCY_BUCKETS_S,
)
CHECKPOINT_VEHICLES = Counter(
    "ioc_checkpoint_vehicles_total",
    "Vehicles as the checkpoint count windows count them: an edge camera's stored read, a frame "
    "camera's final passage (checkpoint \"unknown\": the camera is not registered at the checkpoint "
    "the read names)",
    ["checkpoint", "direction", "origin"],
)

# --- HTTP API ---
HTTP_REQUESTS = Counter(
    "ioc_http_requests_total", "HTTP requests served", ["route", "method", "status"]
)
HTTP_REQUEST_SECONDS = Histogram(
    "ioc_http_request_seconds", "HTTP request duration (an event stream: until its response head)",
    ["route", "method"]
)
PLATE_QUERIES = Counter("ioc_plate_queries_total", "Audited plate queries", ["kind"])
LOGIN_FAILURES = Counter("ioc_login_failures_total", "Failed logins")
LIVE_STREAMS = Gauge("ioc_live_alert_streams", "Open live alert streams (operator pages) in this API process")
ALERTS_STREAMED = Counter("ioc_alerts_streamed_total", "Alerts from the topic fanned out to live streams")
LIVE_RESUMES = Counter(
    "ioc_live_alert_resumes_total",
    "Live streams reopened with a Last-Event-ID: replayed from the window, or reset (page reloads)",
    ["outcome"],
)
WATCHLIST_PUBLISH_FAILURES = Counter(
    "ioc_watchlist_publish_failures_total",
    "Watchlist publishes the broker or the database did not let through: a change, or a resync of the "
    "changes behind (retried)",
)
WATCHLIST_PUBLISH_BEHIND = Gauge(
    "ioc_watchlist_publish_behind_seconds",
    "Seconds since the oldest watchlist change this API process has not yet published to the workers "
    "(computed when scraped); 0 when caught up",
)


# --- camera health, computed at scrape time ---
class CameraLastSeen(Collector):
    """``ioc_camera_last_seen_age_seconds{camera}``: seconds since this process last got
    an event from each registered camera. Ages are computed when scraped, so a camera
    that went silent keeps ageing without any event to update it."""

    name = "ioc_camera_last_seen_age_seconds"

    def __init__(self) -> None:
        self._labelnames = ("camera",)  # where prometheus_client's own metrics keep them
        self._seen: dict[str, float] = {}
        self._lock = threading.Lock()  # marked on the event loop, read by the scrape thread

    def seen(self, camera_id: str) -> None:
        now = time.monotonic()
        with self._lock:
            self._seen[camera_id] = now

    def seed(self, last_seen: Mapping[str, datetime]) -> None:
        """Age the registered cameras this process has not heard from since it started from when
        they were last seen (as stored, or registered): a camera already silent had no age after
        a worker restart, and ``IOCCameraOffline`` resolved for it and stayed quiet."""
        offset = time.monotonic() - datetime.now(UTC).timestamp()
        with self._lock:
            for camera_id, at in last_seen.items():
                self._seen.setdefault(camera_id, at.timestamp() + offset)

    def retain(self, camera_ids: Collection[str]) -> None:
        """Forget every camera but ``camera_ids`` (the registered ones): an unregistered camera's
        age grew for ever, and ``IOCCameraOffline`` fired for it until the process restarted."""
        with self._lock:
            for camera_id in self._seen.keys() - set(camera_ids):
                del self._seen[camera_id]

    def _family(self) -> GaugeMetricFamily:
        return GaugeMetricFamily(
            self.name, "Seconds since this process last got an event from the camera", labels=self._labelnames
        )

    def describe(self) -> Iterable[GaugeMetricFamily]:
        return [self._family()]

    def collect(self) -> Iterator[GaugeMetricFamily]:
        now = time.monotonic()
        with self._lock:
            seen = list(self._seen.items())
        family = self._family()
        for camera_id, at in sorted(seen):
            family.add_metric([camera_id], now - at)
        yield family


CAMERA_LAST_SEEN = CameraLastSeen()
REGISTRY.register(CAMERA_LAST_SEEN)
CAMERA_HEALTH_BEHIND = Gauge(
    "ioc_camera_health_behind_seconds",
    "How far behind now camera health judged silence at its last check: the cameras' events after "
    "that were still waiting in Kafka (a backlog), so no camera was judged offline for them",
)
FLOW_CHECK_BEHIND = Gauge(
    "ioc_flow_check_behind_seconds",
    "How far the window the last flow check judged ended before the last complete minute: the "
    "checkpoints' events after it were not yet processed and counted (a backlog), so no flow was "
    "judged on them. 0 when caught up",
)


def confidence_band(confidence: float) -> str:
    """The ``confidence`` label of ``ioc_plates_read_total``: high (>= 0.9), medium (>= 0.6) or low."""
    return "high" if confidence >= 0.9 else "medium" if confidence >= 0.6 else "low"


# --- every process: metrics are served by a thread of their own, so a process whose event loop
# hangs (a blocking call, a deadlock) still answers scrapes; its heartbeat stops instead ---
HEARTBEAT_EVERY_S = 5.0
EVENT_LOOP_HEARTBEAT = Gauge(
    "ioc_event_loop_heartbeat_timestamp_seconds",
    "When this process's event loop last ran its heartbeat (every few seconds while it is not stuck)",
)


async def beat_event_loop(every_s: float = HEARTBEAT_EVERY_S) -> None:
    """Set :data:`EVENT_LOOP_HEARTBEAT` every ``every_s`` seconds, until cancelled."""
    while True:
        EVENT_LOOP_HEARTBEAT.set_to_current_time()
        await asyncio.sleep(every_s)
