"""One `redis-benchmark` run against one server, with the server's CPU time around it.

    result = run_benchmark(port, ["RG.FCALL", "bench", "hello", "0"], clients=50, requests=100_000,
                           pipeline=16, cpu_pids=[server.pid])
    result.rps, result.p50_ms, result.cpu_us_per_req[0]

redis-benchmark 7 prints, with ``--csv``, one line per test:
``"test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms",
"p99_latency_ms","max_latency_ms"`` (``--precision 3`` gives the latencies to the µs).
"""

from __future__ import annotations

import csv
import io
import os
import signal
import subprocess
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from bench.procs import REDIS_BENCHMARK, cpu_seconds

#: A run that takes longer than this is stopped (by its PID) and reported as failed.
RUN_TIMEOUT = 900.0


class BenchmarkError(RuntimeError):
    """redis-benchmark failed, timed out, or saw error replies."""


@dataclass(frozen=True)
class BenchResult:
    """What one run measured (latencies in ms, CPU in µs of server time per request)."""

    requests: int
    clients: int
    pipeline: int
    rps: float
    avg_ms: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float
    seconds: float
    cpu_us_per_req: tuple[float, ...]

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["cpu_us_per_req"] = list(self.cpu_us_per_req)
        return data


def benchmark_argv(
    port: int,
    command: Sequence[str],
    *,
    clients: int,
    requests: int,
    pipeline: int,
    keyspace: int | None,
) -> list[str]:
    """The redis-benchmark command line (``-r`` when the command has ``__rand_int__``)."""
    if REDIS_BENCHMARK is None:
        raise BenchmarkError("redis-benchmark is not on PATH")
    argv = [REDIS_BENCHMARK, "-h", "127.0.0.1", "-p", str(port), "-c", str(clients)]
    argv += ["-n", str(requests), "-P", str(pipeline), "--precision", "3", "--csv"]
    if keyspace is not None and any("__rand_int__" in word for word in command):
        argv += ["-r", str(keyspace)]
    return argv + list(command)


def parse_csv(text: str) -> dict[str, float]:
    """The figures of the one test in redis-benchmark's ``--csv`` output."""
    rows = list(csv.reader(io.StringIO(text.strip())))
    header = next((i for i, row in enumerate(rows) if row and row[0] == "test"), None)
    if header is None or header + 1 >= len(rows):
        raise BenchmarkError(f"unexpected redis-benchmark output: {text!r}")
    names, values = rows[header], rows[header + 1]
    return {name: float(value) for name, value in zip(names[1:], values[1:], strict=True)}


def _run(argv: list[str]) -> tuple[str, str, float]:
    """Run redis-benchmark; (stdout, stderr, seconds). Stopped by its PID after RUN_TIMEOUT."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        out, err = proc.communicate(timeout=RUN_TIMEOUT)
    except BaseException:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        detail = (err.strip() + " " + out.strip()).strip()
        raise BenchmarkError(f"redis-benchmark exited {proc.returncode}: {detail[-500:]}")
    return out, err, seconds


def _errors_in(out: str, err: str) -> str | None:
    """The first error reply that redis-benchmark reported, if any."""
    for line in (out + "\n" + err).splitlines():
        if "Error from server" in line:
            return line.strip()
    return None


def run_benchmark(
    port: int,
    command: Sequence[str],
    *,
    clients: int,
    requests: int,
    pipeline: int,
    keyspace: int | None = None,
    cpu_pids: Sequence[int] = (),
) -> BenchResult:
    """Run `command` `requests` times; `cpu_pids`' CPU time is read before and after."""
    argv = benchmark_argv(
        port, command, clients=clients, requests=requests, pipeline=pipeline, keyspace=keyspace
    )
    before = [cpu_seconds(pid) for pid in cpu_pids]
    out, err, seconds = _run(argv)
    after = [cpu_seconds(pid) for pid in cpu_pids]
    problem = _errors_in(out, err)
    if problem is not None:
        raise BenchmarkError(f"{' '.join(command)}: {problem}")
    figures = parse_csv(out)
    cpu = tuple((a - b) * 1e6 / requests for a, b in zip(after, before, strict=True))
    return BenchResult(
        requests=requests,
        clients=clients,
        pipeline=pipeline,
        rps=figures["rps"],
        avg_ms=figures["avg_latency_ms"],
        p50_ms=figures["p50_latency_ms"],
        p95_ms=figures["p95_latency_ms"],
        p99_ms=figures["p99_latency_ms"],
        max_ms=figures["max_latency_ms"],
        seconds=seconds,
        cpu_us_per_req=cpu,
    )
