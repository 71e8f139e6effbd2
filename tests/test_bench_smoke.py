"""Smoke run of the benchmark suite (`python -m bench`): a few seconds, real servers.

`--quick` with one round, scenarios 1 and 3 only, no scale test; the JSON it writes must have
the expected fields, every reply check must have passed and every run must have succeeded.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.skipif(
    shutil.which("redis-server") is None or shutil.which("redis-benchmark") is None,
    reason="the benchmark needs redis-server and redis-benchmark (Debian: redis-server, "
    "redis-tools)",
)

TOP_FIELDS = {
    "schema", "started", "duration_s", "machine", "config", "scenarios", "checks_passed",
    "failed_runs", "summary", "latency", "scale", "floors", "targets", "checks", "runs",
    "latency_runs", "scale_runs", "json",
}
SUMMARY_FIELDS = {
    "scenario", "pipeline", "target", "rounds", "rps", "ratio_to_redis", "cpu_us_per_req",
    "backend_cpu_us_per_req", "p50_ms", "p99_ms",
}
RUN_FIELDS = {
    "round", "scenario", "target", "requests", "clients", "pipeline", "rps", "p50_ms", "p99_ms",
    "cpu_us_per_req", "seconds", "error",
}
TARGETS = ("redis", "jshost-embedded", "jshost-remote")


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("bench")
    command = [sys.executable, "-m", "bench", "--quick", "--rounds", "1", "--scenarios", "1,3",
               "--no-scale-test", "--no-png", "--out", str(out)]
    proc = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=180,
                          check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    (path,) = out.glob("*.json")
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    data["_stdout"] = proc.stdout
    return data


def test_json_has_the_expected_fields(results: dict[str, Any]) -> None:
    assert results.keys() >= TOP_FIELDS
    assert results["summary"], "no summary rows"
    for row in results["summary"]:
        assert row.keys() >= SUMMARY_FIELDS
    for run in results["runs"]:
        assert run.keys() >= RUN_FIELDS
    assert {"embedded_command_us", "remote_round_trip_us"} <= results["floors"].keys()
    assert all({"target", "goal", "measured", "met"} <= t.keys() for t in results["targets"])


def test_reply_checks_passed(results: dict[str, Any]) -> None:
    assert results["checks_passed"] is True
    checked = {(c["scenario"], c["target"]) for c in results["checks"]}
    for scenario in ("1-trivial", "3-set", "3-get"):
        for target in TARGETS:
            assert (scenario, target) in checked
    assert all(c["ok"] for c in results["checks"])


def test_every_run_succeeded_with_ratios_and_cpu(results: dict[str, Any]) -> None:
    assert results["failed_runs"] == 0
    rows = {(r["scenario"], r["pipeline"], r["target"]): r for r in results["summary"]}
    for scenario in ("1-trivial", "3-set", "3-get"):
        for pipeline in (1, 16):
            for target in TARGETS:
                row = rows[(scenario, pipeline, target)]
                assert row["rps"] > 0
                assert row["ratio_to_redis"] > 0
                assert row["cpu_us_per_req"] is not None
            assert rows[(scenario, pipeline, "redis")]["ratio_to_redis"] == pytest.approx(1.0)
            assert rows[(scenario, pipeline, "jshost-remote")]["backend_cpu_us_per_req"] is not None
    assert not results["scale"] and not results["latency"]


def test_progress_and_tables_are_printed(results: dict[str, Any]) -> None:
    out = results["_stdout"]
    assert "1-trivial" in out and "Targets of the issue" in out
    assert "reply checks: all passed" in out
