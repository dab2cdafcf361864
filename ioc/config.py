"""All configuration, from environment variables prefixed ``IOC_``.

When ``IOC_KAFKA_BOOTSTRAP`` / ``IOC_DATABASE_URL`` are unset, ``ioc demo`` and the
tests start embedded components (Tansu broker, throwaway PostgreSQL) and fill them in.
"""

from __future__ import annotations

import os
import tempfile
import zoneinfo
from dataclasses import dataclass
from functools import cache, lru_cache
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from detectors import plate_format
from ioc.schemas import LookCloserSetting

Environment = Literal["dev", "test", "prod"]

_PLACEHOLDER_SECRETS = {"", "changethis", "secret", "dev-secret"}
# HS256 tokens signed with a short secret can be guessed offline from any token issued
MIN_AUTH_SECRET_LENGTH = 32


@cache
def _iana_zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def _iana_zone(value: str) -> str:
    if value not in _iana_zones():
        raise ValueError(f"not an IANA time zone: {value!r} (for example Asia/Ho_Chi_Minh or UTC)")
    return value


TimeZoneName = Annotated[str, AfterValidator(_iana_zone)]


@dataclass(frozen=True)
class TopicNames:
    """Kafka topic names; one prefix so several deployments can share a cluster."""

    prefix: str = "ioc"

    def name(self, suffix: str) -> str:
        return f"{self.prefix}.{suffix}"

    @property
    def frames(self) -> str:
        return self.name("camera-frames")

    @property
    def edge_plate_reads(self) -> str:
        return self.name("edge-plate-reads")

    @property
    def sensor_readings(self) -> str:
        return self.name("sensor-readings")

    @property
    def sources(self) -> frozenset[str]:
        """The topics cameras, edge devices and sensors write and workers consume: the ones whose
        messages are dead-lettered, replayed, watched for lost data and measured for lag."""
        return frozenset((self.frames, self.edge_plate_reads, self.sensor_readings))

    @property
    def plate_reads(self) -> str:
        return self.name("plate-reads")

    @property
    def alerts(self) -> str:
        return self.name("alerts")

    @property
    def watchlist(self) -> str:
        return self.name("watchlist")

    @property
    def dead_letter(self) -> str:
        return self.name("dead-letter")


class SettingMissing(RuntimeError):
    """A setting the command needs is not set."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="IOC_", extra="ignore")

    env: Environment = "dev"

    # --- external services (unset = embedded in `ioc demo` / tests) ---
    kafka_bootstrap: str | None = None
    database_url: SecretStr | None = None
    database_pool_size: int = Field(10, ge=2, description="Most connections of a process's pool (the "
                                    "API keeps two open)")

    # --- Kafka layout ---
    topic_prefix: str = Field("ioc", pattern=r"^[A-Za-z0-9._-]+$")
    topic_partitions: int = Field(8, ge=1, description="Partitions per source topic: max parallelism")
    topic_replication: int = Field(1, ge=1)
    consumer_group: str = "ioc-worker"

    # --- worker ---
    worker_web_host: str = "127.0.0.1"
    worker_web_port: int = Field(6066, ge=1, le=65535)
    worker_metrics_port: int = Field(9108, ge=1, le=65535, description="Prometheus /metrics of a worker")
    worker_data_dir: str = Field(
        os.path.join(tempfile.gettempdir(), "ioc-faust"),
        description="Faust data directory (tables stay in memory), one subdirectory per consumer group",
    )
    recognition_threads: int = Field(default_factory=lambda: max(1, (os.cpu_count() or 1)), ge=1)
    anpr_look_closer: LookCloserSetting = Field(
        "unsure", description="When the recogniser looks again at full size for small plates: "
        "'always' for street cameras (far vehicles beside near ones; about 28 ms more per 1280x720 "
        "frame), 'never' for cameras framed for plates (detectors.recognizer.LookCloser); for cameras "
        "registered without a setting of their own (ioc cameras add --look-closer)")
    recognition_queue: int = Field(8, ge=1, description="Frames in flight per worker (back-pressure "
                                   "and memory bound: a decoded 1280x720 frame is 2.7 MB)")
    sink_batch_size: int = Field(500, ge=1)
    sink_batch_events: int = Field(10_000, ge=1, description="Most events an agent decodes and stores "
                                   "at once (a memory bound: a gateway envelope carries hundreds)")
    sink_batches_in_flight: int = Field(2, ge=1, description="Batches an agent stores at once: the "
                                        "next is decoded while earlier ones wait on the database")
    sink_batch_seconds: float = Field(0.05, gt=0, description="Longest an agent waits to fill a batch "
                                      "(part of every event's latency)")
    consumer_fetch_max_wait_ms: int = Field(
        50, ge=1, le=30_000, description="Longest a fetch waits for data (Faust fixes 1,500 ms; a broker "
        "that holds fetches that long adds it to every hop's latency)")
    producer_max_batch_bytes: int = Field(
        1_000_000, ge=16_384, description="Bytes of messages per partition in one produce request "
        "(Faust's 16 KB holds less than one message of 200 plate reads: every send was a round trip)")
    producer_compression: Literal["none", "gzip", "snappy", "lz4", "zstd"] = Field(
        "none", description="Codec of the batches the worker publishes (plate reads, alerts, dead "
        "letters). Any codec is read from the source topics, whatever this says")
    dead_letter_max_payload: int = Field(
        750_000, ge=1024, le=750_000, description="Bytes of the original message kept in a dead letter: "
        "base64 in a JSON letter, 750 kB make about 1 MB, Kafka's default largest message (a larger "
        "letter would be refused by the broker and retried for ever)")

    # --- domain ---
    past_read_hours: float = Field(24.0, ge=0, description="A watchlist entry new to a worker (added, "
                                   "its pattern or expiry changed, switched back on, or the worker just "
                                   "started) is matched against the reads of this many past hours")
    require_known_cameras: bool = Field(
        True, description="Dead-letter frames and reads from cameras not in the cameras table"
    )
    home_province: str = Field(
        "20", description="Plate code(s) of the home province, comma-separated where it has several: "
        "plates keep their codes when provinces merge (Thái Nguyên since 2025: 20,97)")
    read_retention_days: int = Field(30, ge=1)
    alert_retention_days: int = Field(365, ge=1)

    # --- HTTP API ---
    api_host: str = "127.0.0.1"
    api_port: int = Field(8000, ge=1, le=65535)
    api_metrics_port: int = Field(
        0, ge=0, le=65535, description="Prometheus /metrics of an API process on a port of its own (bound on "
        "IOC_API_HOST), and not on IOC_API_PORT, which the public reaches; 0: at /metrics on IOC_API_PORT "
        "(development, tests)")
    api_max_body_bytes: int = 1_000_000
    api_trusted_proxies: str = Field(
        "", description="Comma-separated addresses or networks of the reverse proxies in front of the "
        "API (an Ingress controller, a load balancer) whose X-Forwarded-For is believed: sign-in "
        "throttling and the logs then see the real client, not the proxy. Empty: the header is "
        "ignored (anyone could write it)")
    api_statement_timeout_s: float = Field(
        15.0, gt=0, description="Longest an API query may run before the database cancels it (the client "
        "gets a 503): a look-up that cannot use an index must not hold a pooled connection for minutes")
    auth_secret: SecretStr = SecretStr("dev-secret")
    hit_decision_reasons: list[str] = Field(
        default_factory=lambda: [
            "vehicle stopped, confirmed", "misread plate", "cloned plate", "vehicle not found",
            "entry no longer valid", "duplicate of another alert",
        ],
        description="Reasons an officer may give when accepting or rejecting a hit",
    )
    token_ttl_seconds: int = Field(8 * 3600, ge=10, le=7 * 24 * 3600)
    session_max_seconds: int = Field(
        24 * 3600, ge=10, le=30 * 24 * 3600, description="How long after its sign-in a session's token may "
        "be renewed (POST /api/auth/renew: a video wall's shift outlasts one token); then a password again")
    display_timezone: TimeZoneName = Field(
        "Asia/Ho_Chi_Minh", description="IANA time zone the operator page shows every time in, "
        "whatever the zone of the PC it runs on (a kiosk left on UTC would be 7 hours off)")
    api_live_replay_events: int = Field(
        1000, ge=0, description="Newest alerts each API process keeps to replay to a live stream that"
        " reconnects (Last-Event-ID); a longer gap makes the page reload the list")
    api_live_replay_seconds: float = Field(3600.0, ge=0, description="Age of the oldest alert in that window")

    # --- simulator ---
    simulator_frames_per_s: float = 4.0
    simulator_edge_reads_per_s: float = 20.0
    simulator_sensor_per_s: float = 10.0
    simulator_checkpoints: int = Field(4, ge=1)
    simulator_seed: int | None = None

    @field_validator("database_url")
    @classmethod
    def _one_at_before_the_host(cls, value: SecretStr | None) -> SecretStr | None:
        """libpq ends a URL's password at its first @ and takes the rest for the host, which its
        error then quotes: half the password would be shown. It ends the user and password at a /
        too, when no @ comes before it: of ``ioc:pa/ss@db`` it takes ``pa`` for the port and
        ``ss@db`` for the database name. Both refused, with none of the URL; an @ after the first /
        (in the database name or a parameter, which libpq decodes) is refused as well, since it
        cannot be told apart from a password's /."""
        _scheme, separator, rest = (value.get_secret_value() if value is not None else "").partition("://")
        authority, slash, path = rest.partition("/")
        if separator and authority.split("?", 1)[0].count("@") > 1:
            raise ValueError("the user or password has an @ that is not percent-encoded: write it as %40")
        if separator and slash and "@" in path:
            raise ValueError("an @ follows the first /: a / in the user or password must be percent-encoded"
                             " as %2F (an @ in the database name or a parameter as %40)")
        return value

    @field_validator("home_province")
    @classmethod
    def _known_province_codes(cls, value: str) -> str:
        return ",".join(plate_format.home_codes(value))

    @model_validator(mode="after")
    def _reject_placeholder_secrets(self) -> Settings:
        secret = self.auth_secret.get_secret_value()
        if self.env == "prod" and (secret in _PLACEHOLDER_SECRETS or len(secret) < MIN_AUTH_SECRET_LENGTH):
            raise ValueError(f"IOC_AUTH_SECRET must be a real secret of at least {MIN_AUTH_SECRET_LENGTH} "
                             "characters when IOC_ENV=prod (openssl rand -hex 32 makes one)")
        return self

    @property
    def topics(self) -> TopicNames:
        return TopicNames(self.topic_prefix)

    def database_conninfo(self) -> str:
        if self.database_url is None:
            raise SettingMissing("IOC_DATABASE_URL is not set (ioc demo starts an embedded database)")
        return self.database_url.get_secret_value()

    def kafka_servers(self) -> str:
        if not self.kafka_bootstrap:
            raise SettingMissing("IOC_KAFKA_BOOTSTRAP is not set (ioc demo starts an embedded broker)")
        return self.kafka_bootstrap


@lru_cache
def get_settings() -> Settings:
    return Settings()
