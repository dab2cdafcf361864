"""Prometheus metrics, one place. Names follow ``ioc_<what>_<unit>``; counters end
in ``_total``; labels come from small fixed sets (never a plate or a user).
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

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

# --- recognition ---
FRAMES_PROCESSED = Counter("ioc_frames_processed_total", "Camera frames run through recognition")
PLATES_READ = Counter("ioc_plates_read_total", "Plate reads produced", ["source"])
RECOGNITION_SECONDS = Histogram(
    "ioc_recognition_seconds",
    "Time to detect and read plates in one frame",
    buckets=(0.005, 0.01, 0.02, 0.03, 0.05, 0.1, 0.2, 0.5, 1.0),
)
RECOGNITION_QUEUE = Gauge("ioc_recognition_queue_frames", "Frames waiting for a recognition thread")

# --- storage ---
ROWS_WRITTEN = Counter("ioc_rows_written_total", "Rows written to the database", ["table"])
DB_WRITE_SECONDS = Histogram("ioc_db_write_seconds", "Time of one batched database write", ["table"])
DB_ERRORS = Counter("ioc_db_errors_total", "Database errors that caused a retry", ["operation"])

# --- alerts ---
ALERTS_RAISED = Counter("ioc_alerts_raised_total", "Alerts raised", ["kind", "severity"])
STORE_LATENCY_SECONDS = Histogram(
    "ioc_event_store_latency_seconds",
    "Capture time to row committed",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)

# --- HTTP API ---
HTTP_REQUESTS = Counter(
    "ioc_http_requests_total", "HTTP requests served", ["route", "method", "status"]
)
HTTP_REQUEST_SECONDS = Histogram(
    "ioc_http_request_seconds", "HTTP request duration", ["route", "method"]
)
PLATE_QUERIES = Counter("ioc_plate_queries_total", "Audited plate queries", ["kind"])
LOGIN_FAILURES = Counter("ioc_login_failures_total", "Failed logins")
LIVE_STREAMS = Gauge("ioc_live_alert_streams", "Open live alert streams (operator pages) in this API process")
ALERTS_STREAMED = Counter("ioc_alerts_streamed_total", "Alerts from the topic fanned out to live streams")
WATCHLIST_PUBLISH_FAILURES = Counter(
    "ioc_watchlist_publish_failures_total", "Watchlist changes the broker did not take (republished later)"
)
