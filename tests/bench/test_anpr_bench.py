"""``ioc bench anpr`` on a handful of images, as a user runs it: a line per figure, and the
JSON summary last with the fields the issue names. Speed and accuracy are not judged here
(too few images); the benchmark's own figures are in docs/benchmarks.md."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SHARES = {"accuracy", "crop_accuracy", "layout_accuracy", "colour_accuracy", "close_up_accuracy",
          "angled_accuracy", "tilted_accuracy", "large_frame_accuracy", "passage_frame_accuracy",
          "passage_accuracy", "overlaid_accuracy", "interlaced_accuracy", "harsh_accuracy",
          "portrait_accuracy", "pitched_accuracy", "shadowed_accuracy", "bent_accuracy", "bare_accuracy",
          "far_accuracy", "street_accuracy", "street_far_accuracy"}


def _bench_anpr(cwd: Path, **counts: int) -> list[str]:
    """stdout lines of ``ioc bench anpr`` with these set sizes (``close_ups=1`` is ``--close-ups 1``)."""
    options = [arg for name, count in counts.items() for arg in (f"--{name.replace('_', '-')}", str(count))]
    run = subprocess.run([sys.executable, "-m", "ioc", "bench", "anpr", *options],
                         cwd=cwd, capture_output=True, text=True, timeout=300)  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    return run.stdout.strip().splitlines()


def test_a_small_run_prints_every_figure_and_the_json_summary_last(tmp_path: Path) -> None:
    lines = _bench_anpr(tmp_path, frames=3, crops=3, negatives=2, close_ups=1, angled=1, tilted=1, large=1,
                        passages=1, overlaid=2, interlaced=1, harsh=1, portrait=1, pitched=1, shadowed=1,
                        bent=1, cut=2, end_hidden=1, bare=1, far=1, street=1)  # fmt: skip
    summary = json.loads(lines[-1])
    assert summary.keys() >= {"frame_ms", "crop_ms", "accuracy", "rss_mb"} | SHARES
    # the recogniser's memory is its own process's, apart from the one drawing the images
    assert 50 < summary["rss_mb"] <= summary["rss_mb_with_large_frames"] < 2000
    assert summary["renderer_rss_mb"] > 50
    assert any(line.startswith("peak RSS of the recogniser's process") for line in lines)
    assert summary["street_ms"] > 0
    assert summary["frame_ms"] > 0 and summary["crop_ms"] > 0
    assert summary["look_closer"] == "unsure"
    assert all(0.0 <= summary[share] <= 1.0 for share in SHARES), summary
    assert summary["negative_frames"] == 2 and 0 <= summary["false_positive_frames"] <= 2
    assert summary["overlaid_negative_frames"] == 2 and 0 <= summary["overlaid_false_positive_frames"] <= 2
    assert any(line.startswith("tilted views") for line in lines)
    assert any(line.startswith("with the camera's on-screen text") for line in lines)
    assert any(line.startswith("interlaced frames") for line in lines)
    assert any(line.startswith("harsh conditions") for line in lines)
    assert any(line.startswith("portrait photos") for line in lines)
    assert any(line.startswith("pitched views") for line in lines)
    assert any(line.startswith("shadowed plates") for line in lines)
    assert any(line.startswith("bent plates") for line in lines)
    assert any(line.startswith("bare plates") for line in lines)
    assert any(line.startswith("far plates") for line in lines)
    assert any(line.startswith("street frames (a near and a far vehicle among clutter, from behind): 1,")
               for line in lines)
    assert any(line.startswith("plates cut by the frame's edge: 2 frames") for line in lines)
    assert 0 <= summary["cut_wrong_at_0_9"] <= summary["cut_reads_at_0_9"]
    assert any(line.startswith("plates with one end hidden by something in front: 1") for line in lines)
    assert 0 <= summary["end_hidden_wrong_at_0_9"] <= summary["end_hidden_reads_at_0_9"] <= 1
    assert summary["portrait_false_positive_frames"] in (0, 1)
    before, after = summary["reference_loop_s"]
    assert before > 0 and after > 0
    assert any(line.startswith("core speed: a loop of 10,000,000 additions took") for line in lines)


def test_sets_asked_for_none_of_are_reported_as_not_measured(tmp_path: Path) -> None:
    lines = _bench_anpr(tmp_path, frames=0, crops=0, negatives=0, close_ups=0, angled=2, tilted=0, large=0,
                        passages=0, overlaid=0, interlaced=0, harsh=0, portrait=0, pitched=0, shadowed=0,
                        bent=0, cut=0, end_hidden=0, bare=0, far=0, street=0)  # fmt: skip
    summary = json.loads(lines[-1])
    assert summary["frame_ms"] is None and summary["crop_ms"] is None
    assert summary["accuracy"] is None and summary["tilted_accuracy"] is None
    assert summary["passage_accuracy"] is None and summary["overlaid_accuracy"] is None
    assert summary["interlaced_accuracy"] is None and summary["harsh_accuracy"] is None
    assert summary["portrait_accuracy"] is None and summary["portrait_ms"] is None
    assert summary["pitched_accuracy"] is None
    assert summary["shadowed_accuracy"] is None and summary["bent_accuracy"] is None
    assert summary["bare_accuracy"] is None and summary["far_accuracy"] is None
    assert summary["street_accuracy"] is None and summary["street_ms"] is None
    assert summary["cut_reads_at_0_9"] is None and summary["cut_wrong_at_0_9"] is None
    assert summary["end_hidden_reads_at_0_9"] is None and summary["end_hidden_wrong_at_0_9"] is None
    assert 0.0 <= summary["angled_accuracy"] <= 1.0
