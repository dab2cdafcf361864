#!/usr/bin/env python3
"""Run the fault, hostile-input and access tests and write docs/reliability.md from
what they measured (each calls the ``reliability_record`` fixture in tests/conftest.py).

    .venv/bin/python scripts/reliability_report.py                 # tests only (~10 min)
    .venv/bin/python scripts/reliability_report.py --soak-minutes 10   # and the soak run

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
    command = [str(VENV_BIN / "ioc"), "bench", "soak", "--minutes", str(minutes)]
    print("$", " ".join(command), flush=True)
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    sys.stdout.write(done.stdout)
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        return {"error": f"exit {done.returncode}: {done.stderr[-500:]}"}
    return json.loads(lines[-1])


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:,.1f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value).replace("|", "\\|").replace("\n", " ")


def _table(rows: list[dict], columns: list[tuple[str, str]]) -> list[str]:
    header = ["Test", *(title for _, title in columns), "Result"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        test = row["test"].split("::", 1)[-1]
        cells = [f"`{test}`", *(_cell(row.get(key)) for key, _ in columns), row["result"]]
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
            out += ["", f"## {title}", "", *_table(chosen, columns)]
    if soak is not None:
        out += ["", "## Soak run", "", "```json", json.dumps(soak, indent=2), "```"]
    others = [r for r in rows if r.get("area") == "other"]
    if others:
        out += ["", "## Other tests in the run (no figures recorded)", "",
                *(f"- `{r['test']}`: {r['result']}" for r in others)]
    return "\n".join(out) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--soak-minutes", type=float, default=0, help="also run `ioc bench soak` (0: skip)")
    parser.add_argument("--output", type=Path, default=ROOT / "docs" / "reliability.md")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        log, junit = Path(tmp) / "records.jsonl", Path(tmp) / "junit.xml"
        status = run_tests(log, junit)
        records = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
        results = outcomes(junit) if junit.exists() else {}
    soak = run_soak(args.soak_minutes) if args.soak_minutes else None
    command = "python scripts/reliability_report.py" + (
        f" --soak-minutes {args.soak_minutes:g}" if args.soak_minutes else ""
    )
    args.output.write_text(render(records, results, soak, command))
    print(f"wrote {args.output}")
    soak_failed = soak is not None and ("error" in soak or soak.get("lost", 0) != 0)
    return 1 if status != 0 or soak_failed else 0


if __name__ == "__main__":
    sys.exit(main())
