#!/usr/bin/env python3
"""Run the fault, hostile-input and access tests and write docs/reliability.md from
what they measured (each calls the ``reliability_record`` fixture in tests/conftest.py).

    .venv/bin/python scripts/reliability_report.py                     # tests (~7 min), keeps the last soak
    .venv/bin/python scripts/reliability_report.py --soak-minutes 10   # and a new soak run (make reliability)

The raw figures go to docs/reliability.json next to the report; a report without a
new soak run shows the last one, with its own date.

A test that fails still gets its row, marked FAILED, and the script exits non-zero:
the report never hides a failure behind an old figure.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from collections import Counter, defaultdict
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
TESTS = ["tests/reliability", "tests/hostile", "tests/api/test_roles.py", "tests/streams/test_pipeline.py"]
FAULT_COLUMNS = [
    ("held", "Load held"), ("fault", "Fault"), ("produced", "Produced"), ("stored", "Stored"),
    ("dead_lettered", "Dead-lettered"), ("lost", "Lost"), ("duplicated", "Duplicated"),
    ("recovery_s", "Recovery (s)"),
]
NOTES = "_notes"  # the column of figures outside the fixed ones
INPUT_COLUMNS = [("inputs", "Inputs tried"), ("outcome", "Outcome"), ("stored_wrongly", "Stored wrongly")]


def run_tests(log: Path, junit: Path) -> int:
    env = os.environ | {"IOC_RELIABILITY_LOG": str(log)}
    command = [str(VENV_BIN / "pytest"), "-q", "-p", "no:cacheprovider", f"--junitxml={junit}", *TESTS]
    print("$", " ".join(command), flush=True)
    return subprocess.run(command, cwd=ROOT, env=env).returncode


def outcomes(junit: Path) -> dict[str, str]:
    """pytest node id -> passed / FAILED / skipped, from the JUnit XML."""
    found: dict[str, str] = {}
    for case in ET.parse(junit).iter("testcase"):
        module = case.get("classname", "").replace(".", "/")
        node = f"{module}.py::{case.get('name')}"
        if case.find("failure") is not None or case.find("error") is not None:
            found[node] = "FAILED"
        elif case.find("skipped") is not None:
            found[node] = "skipped"
        else:
            found[node] = "passed"
    return found


def run_soak(minutes: float) -> dict:
    command = ["ioc", "bench", "soak", "--minutes", f"{minutes:g}"]
    print("$", " ".join(command), flush=True)
    done = subprocess.run([str(VENV_BIN / command[0]), *command[1:]], cwd=ROOT,
                          capture_output=True, text=True)
    sys.stdout.write(done.stdout)
    lines = done.stdout.strip().splitlines()
    figures = {"error": f"exit {done.returncode}: {done.stderr[-500:]}"}
    if done.returncode == 0 and lines:
        figures = json.loads(lines[-1])
    when = f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC"
    return {"command": " ".join(command), "when": when, "figures": figures}


def render_soak(soak: dict) -> list[str]:
    f = soak["figures"]
    if "error" in f:
        return [f"`{soak['command']}` ({soak['when']}) FAILED: {f['error']}"]
    return [
        f"`{soak['command']}` on {soak['when']}: one worker, the embedded broker and database on "
        f"this machine, {f['rate']:,.0f} edge reads/s + {f['sensor_rate']:,.0f} sensor readings/s "
        f"(envelopes of {f['envelope']}) for {f['minutes']:g} minutes, sampled every 10 s.",
        "",
        "| figure | value |",
        "|---|---|",
        f"| events produced / stored / dead-lettered / lost | {f['produced']:,} / {f['stored']:,} / "
        f"{f['dead_lettered']:,} / **{f['lost']:,}** |",
        f"| worker resident memory, start → end | {f['rss_start_mb']:.1f} → {f['rss_end_mb']:.1f} MB "
        f"(second half: {f['rss_growth_second_half_mb']:+.1f} MB, fit {f['rss_slope_mb_per_h']:+.1f} MB/h) |",
        f"| lag (produced − stored), final / max | {f['lag_final']:,} / {f['lag_max']:,} events "
        f"(second-half trend {f['lag_slope_per_min']:+.1f} events/min) |",
        f"| capture → row p50 / p99 | {f['store_p50_ms']:,.0f} / {f['store_p99_ms']:,.0f} ms |",
        f"| capture → alert p99 | {f['alert_p99_ms']:,.0f} ms |",
        f"| drained after the producer stopped | {f['drained_s']:.1f} s |",
    ]


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:,.1f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value).replace("|", "\\|").replace("\n", " ")


def _notes(row: dict, columns: list[tuple[str, str]]) -> str:
    """Figures a test recorded beyond the table's columns, e.g. what the worker reported lost."""
    shown = {"test", "area", "result", *(key for key, _ in columns)}
    extra = [(key, value) for key, value in row.items() if key not in shown]
    return "; ".join(f"{key.replace('_', ' ')}: {_cell(value)}" for key, value in extra)


def _table(rows: list[dict], columns: list[tuple[str, str]]) -> list[str]:
    header = ["Test", *(title for _, title in columns), "Result"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        test = row["test"].split("::", 1)[-1]
        plain = [c for c in columns if c[0] != NOTES]
        values = [_notes(row, plain) if key == NOTES else _cell(row.get(key)) for key, _ in columns]
        cells = [f"`{test}`", *values, row["result"]]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def render(records: list[dict], results: dict[str, str], soak: dict | None, command: str) -> str:
    recorded = {r["test"] for r in records}
    rows = [r | {"result": results.get(r["test"], "?")} for r in records]
    for node, result in sorted(results.items()):
        if node not in recorded:
            rows.append({"test": node, "area": "other", "result": result})
    failed = sum(1 for r in results.values() if r == "FAILED")
    out = [
        "# Reliability report",
        "",
        f"Produced by `{command}` on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC "
        f"({os.cpu_count()} cores). {len(results)} tests: "
        f"{sum(1 for r in results.values() if r == 'passed')} passed, {failed} failed, "
        f"{sum(1 for r in results.values() if r == 'skipped')} skipped.",
        "",
        "Every fault test counts each event it produced against rows stored plus messages "
        "dead-lettered (per table, `count(*)` against `count(DISTINCT id)` for duplicates) with "
        "the real broker, worker processes and database. The rows below are written by the "
        "tests themselves (fixture `reliability_record`), not by hand.",
    ]
    sections = [
        ("Faults", "fault", FAULT_COLUMNS),
        ("Load", "load", FAULT_COLUMNS),
        ("Hostile input", "hostile", INPUT_COLUMNS),
        ("Access", "access", INPUT_COLUMNS),
    ]
    for title, area, columns in sections:
        chosen = [r for r in rows if r.get("area") == area]
        if chosen:
            out += ["", f"## {title}", "", *_table(chosen, [*columns, (NOTES, "Also measured")])]
    if soak is not None:
        out += ["", "## Soak run", "", *render_soak(soak)]
    per_module: dict[str, Counter[str]] = defaultdict(Counter)
    for r in rows:
        if r.get("area") == "other":
            per_module[r["test"].split("::", 1)[0]][r["result"]] += 1
    if per_module:
        out += ["", "## Other tests in the run (no figures recorded)", ""]
        out += [f"- `{module}`: " + ", ".join(f"{n} {result}" for result, n in sorted(counts.items()))
                for module, counts in sorted(per_module.items())]
    return "\n".join(out) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--soak-minutes", type=float, default=0, help="also run `ioc bench soak` (0: skip)")
    parser.add_argument("--output", type=Path, default=ROOT / "docs" / "reliability.md")
    args = parser.parse_args()
    raw = args.output.with_suffix(".json")
    previous = json.loads(raw.read_text()) if raw.exists() else {}
    with tempfile.TemporaryDirectory() as tmp:
        log, junit = Path(tmp) / "records.jsonl", Path(tmp) / "junit.xml"
        status = run_tests(log, junit)
        records = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
        results = outcomes(junit) if junit.exists() else {}
    soak = run_soak(args.soak_minutes) if args.soak_minutes else previous.get("soak")
    command = "python scripts/reliability_report.py" + (
        f" --soak-minutes {args.soak_minutes:g}" if args.soak_minutes else ""
    )
    raw.write_text(json.dumps({"records": records, "results": results, "soak": soak}, indent=1) + "\n")
    args.output.write_text(render(records, results, soak, command))
    print(f"wrote {args.output} and {raw}")
    figures = (soak or {}).get("figures", {})
    soak_failed = args.soak_minutes and ("error" in figures or figures.get("lost", 0) != 0)
    return 1 if status != 0 or soak_failed else 0


if __name__ == "__main__":
    sys.exit(main())
