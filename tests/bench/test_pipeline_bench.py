"""``ioc bench pipeline`` run small, as a user runs it (its own embedded broker and database,
real worker processes): a line per phase and the JSON summary last, with the fields the issue
names and the frame phase's per-process figures. Speed is not judged here; the benchmark's
own figures are in docs/benchmarks.md."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path

ISSUE_FIELDS = {"events_per_s", "baseline_events_per_s", "ratio", "store_latency_p99_ms",
                "alert_latency_p99_ms"}
FRAMES = 12


def test_a_small_run_prints_each_phase_and_the_json_summary_last(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("IOC_")}  # embedded services
    run = subprocess.run(
        [sys.executable, "-m", "ioc", "bench", "pipeline", "--events", "2000", "--alert-seconds", "1",
         "--frames", str(FRAMES)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    lines = run.stdout.strip().splitlines()
    summary = json.loads(lines[-1])
    assert summary.keys() >= ISSUE_FIELDS
    assert summary["events"] == 2000 and summary["alerts"] > 0
    assert summary["ratio"] == round(summary["events_per_s"] / summary["baseline_events_per_s"], 3)
    for workers in (1, 2):
        assert summary[f"frames_per_s_{workers}_workers"] > 0
        assert summary[f"frames_per_cpu_s_{workers}_workers"] > 0
        assert 0 < summary[f"frames_cores_busy_{workers}_workers"] <= os.cpu_count()
    frame_lines = [line for line in lines if line.startswith("frames:")]
    assert len(frame_lines) == 2
    # the two workers shared the frames: each recognised some, none twice
    shares = [int(n) for n in re.search(r"\(([\d/]+) frames\)", frame_lines[1]).group(1).split("/")]
    assert len(shares) == 2 and min(shares) > 0 and sum(shares) == FRAMES, frame_lines[1]


def test_alert_latency_is_measured_from_watchlist_hits_only() -> None:
    """Camera-offline and flow alerts can come during the latency phase: they have no capture
    time (a run once ended on one), so they are counted apart, not measured."""
    from ioc.bench.pipeline import newest_capture
    from ioc.schemas import Alert, AlertKind, Severity

    def as_json(alert: Alert) -> dict:
        return json.loads(alert.model_dump_json())

    offline = Alert(alert_id=uuid.uuid4(), alert_kind=AlertKind.CAMERA_OFFLINE, severity=Severity.WARNING,
                    subject="cam-1")  # fmt: skip
    assert newest_capture(as_json(offline)) is None
    first, later = datetime(2026, 12, 4, 9, 0, tzinfo=UTC), datetime(2026, 12, 4, 9, 0, 5, tzinfo=UTC)
    route = [{"captured_at": first.isoformat()}, {"captured_at": later.isoformat()}]
    hit = Alert(alert_id=uuid.uuid4(), alert_kind=AlertKind.WATCHLIST_HIT, severity=Severity.CRITICAL,
                subject="51F86988", captured_at=first, evidence={"route": route})  # fmt: skip
    assert newest_capture(as_json(hit)) == later
    assert newest_capture(as_json(hit.model_copy(update={"evidence": {}}))) == first
