"""``ioc bench soak`` run for a few seconds, as a user runs it (its own embedded broker and
database, a worker and an API process): every event it produced is accounted for, and it
prints a sample line per window and the JSON figures last. Timing is not judged here."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SAMPLE_KEYS = {"minutes", "rate", "rss_start_mb", "rss_end_mb", "rss_slope_mb_per_h", "lag_final",
               "lag_slope_per_min", "store_p99_ms", "alert_p99_ms", "produced", "stored", "dead_lettered",
               "lost"}


def test_a_short_soak_accounts_for_every_event(tmp_path: Path) -> None:
    run = subprocess.run(
        [sys.executable, "-m", "ioc", "bench", "soak", "--minutes", "0.15", "--rate", "200",
         "--sample-seconds", "3", "--api"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    lines = run.stdout.strip().splitlines()
    result = json.loads(lines[-1])
    assert result.keys() >= SAMPLE_KEYS
    assert result["produced"] > 1000  # 240 events/s for 9 s, give or take a slow start
    assert result["produced"] == result["stored"] + result["dead_lettered"]
    assert result["lost"] == 0 and result["dead_lettered"] == 0  # every event was valid
    assert result["samples"] >= 2
    table = [line for line in lines if line.split() and line.split()[0].isdigit()]  # a line per sample
    assert len(table) == result["samples"]
    assert result["rss_start_mb"] > 0 and result["api_rss_start_mb"] > 0
    assert result["page_alerts"] >= result["alerts"]  # the page saw every alert the topic carried
