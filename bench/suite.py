"""The benchmark suite of `python -m bench`: start the servers, run the rounds, report.

    config = Config(rounds=3)
    data = Suite(config).run()        # the dict also written to bench/results/<timestamp>.json

Three servers are started, each on a free port on 127.0.0.1: a Debian `redis-server` (the
anchor; the Lua functions of ``libs/bench.lua`` loaded with FUNCTION LOAD), `jshost serve` on
its embedded store, and `jshost serve --backend redis://…/1` on that redis-server. Each round
runs every scenario on every target, at ``-P 1`` and ``-P 16``, after checking one reply of
each; scenario 5 parks thousands of RG.FCALLASYNC calls and measures beside them. The servers
are stopped by PID at the end, also after an error or Ctrl-C (and SIGTERM, turned into one).
"""

from __future__ import annotations

import contextlib
import os
import platform
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from pathlib import Path
from types import FrameType
from typing import Any

from bench import floors, report
from bench.procs import (
    REDIS_SERVER,
    ServerProcess,
    raise_nofile,
    rss_bytes,
    start_jshost,
    start_redis,
)
from bench.profile import profile_trivial
from bench.runner import BenchmarkError, run_benchmark
from bench.scale import FD_MARGIN, ParkedCalls
from bench.scenarios import (
    EMBEDDED,
    JSHOST_TARGETS,
    PARK,
    PARK_REPLY,
    REDIS,
    RELEASE,
    REMOTE,
    REMOTE_DB,
    TARGETS,
    Scenario,
    load_libraries,
    prefill,
    run_once,
    sample_command,
    scaled,
    select,
    with_requests,
)

RESULTS = Path(__file__).resolve().parent / "results"
SCALE_GROUP = "5"


@dataclass
class Config:
    """What to run (the defaults are a full run; `quick_run()` a short one)."""

    rounds: int = 3
    clients: int = 50
    pipelines: tuple[int, ...] = (1, 16)
    groups: tuple[str, ...] = ("1", "2", "3", "4", "5")
    factor: float = 1.0  # multiplies each scenario's request counts
    requests: int | None = None  # every target and scenario: this many at -P 16, 1/4 at -P 1
    anchor_p16: int = 2_000_000  # redis-server runs at least this many requests at -P 16 ...
    anchor_p1: int = 200_000  # ... and this many at -P 1
    keyspace: int = 100_000
    connections: int = 10_000
    scale_requests: int = 60_000  # scenario 1 at -P 16, idle and beside the parked calls
    latency_requests: int = 5_000  # 1-client runs of scenario 4
    floor_calls: int = 20_000
    profile: bool = False
    profile_requests: int = 100_000
    out_dir: Path = RESULTS
    png: bool = True
    quick: bool = False

    @classmethod
    def quick_run(cls, **overrides: Any) -> Config:
        """A run of seconds: tiny request counts, one round, a small keyspace."""
        base = cls(rounds=1, factor=0.01, anchor_p16=0, anchor_p1=0, keyspace=1000,
                   connections=200, scale_requests=2000, latency_requests=300, floor_calls=500,
                   profile_requests=5000, quick=True)
        return replace(base, **overrides)

    def scenarios(self) -> list[Scenario]:
        chosen = select(self.groups)
        if self.requests is not None:
            return [with_requests(s, self.requests, max(1, self.requests // 4)) for s in chosen]
        return [scaled(s, self.factor, minimum=200) for s in chosen]

    def requests_for(self, scenario: Scenario, pipeline: int, target: str) -> int:
        """The scenario's count; redis-server gets at least the anchor minimum (a short run
        of redis-server would measure mostly the client's start-up)."""
        count = scenario.requests(pipeline)
        if target == REDIS and self.requests is None:
            count = max(count, self.anchor_p16 if pipeline > 1 else self.anchor_p1)
        return count


class Progress:
    """One line per run: ``[ 12/117] r1 1-trivial P16 jshost-embedded  28,547 req/s ...``."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.done = 0

    def line(self, text: str) -> None:
        self.done += 1
        width = len(str(self.total))
        print(f"[{self.done:>{width}}/{self.total}] {text}", flush=True)

    @staticmethod
    def note(text: str) -> None:
        print(text, flush=True)


@dataclass
class Servers:
    """The three servers of a run, by target name."""

    redis: ServerProcess
    embedded: ServerProcess
    remote: ServerProcess

    def port(self, target: str) -> int:
        return self.process(target).port

    def process(self, target: str) -> ServerProcess:
        return {REDIS: self.redis, EMBEDDED: self.embedded, REMOTE: self.remote}[target]

    def cpu_pids(self, target: str) -> list[int]:
        """Whose CPU time a run of `target` costs: the server, and for remote its redis."""
        pids = [self.process(target).pid]
        return [*pids, self.redis.pid] if target == REMOTE else pids


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """While inside, SIGTERM raises KeyboardInterrupt, so the servers are stopped as on Ctrl-C."""

    def handler(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def started_servers(nofile: int) -> Iterator[Servers]:
    """Start redis-server and both jshost servers; stop all three (by PID) on the way out."""
    with contextlib.ExitStack() as stack:
        redis = start_redis(nofile)
        stack.callback(redis.stop)
        embedded = start_jshost(nofile, name=EMBEDDED)
        stack.callback(embedded.stop)
        remote = start_jshost(nofile, backend=redis.url(REMOTE_DB), name=REMOTE)
        stack.callback(remote.stop)
        yield Servers(redis, embedded, remote)


@dataclass
class Suite:
    """One benchmark run; `run()` returns (and writes) the results."""

    config: Config
    runs: list[dict[str, Any]] = field(default_factory=list)
    latency_runs: list[dict[str, Any]] = field(default_factory=list)
    scale_runs: list[dict[str, Any]] = field(default_factory=list)
    checks: list[dict[str, Any]] = field(default_factory=list)
    floors: dict[str, Any] = field(default_factory=dict)
    profile: dict[str, Any] | None = None
    progress: Progress = field(default_factory=lambda: Progress(0))

    # -- the whole run ---------------------------------------------------------------------------

    def run(self) -> dict[str, Any]:
        started = datetime.now()
        stamp = started.strftime("%Y%m%d-%H%M%S")
        scenarios = self.config.scenarios()
        connections = self.scale_connections()
        nofile = raise_nofile(connections + FD_MARGIN)
        self.progress = Progress(self.count_runs(scenarios))
        with sigterm_as_interrupt():
            with started_servers(nofile) as servers:
                self.prepare(servers)
                for number in range(1, self.config.rounds + 1):
                    self.run_round(servers, scenarios, number, connections)
            if self.config.profile:
                self.run_profile(stamp, nofile)
        data = self.results(scenarios, started, connections)
        self.write(stamp, data)
        return data

    def scale_connections(self) -> int:
        """The number of parked calls, bounded by what the open-files hard limit allows."""
        if SCALE_GROUP not in self.config.groups:
            return 0
        wanted = self.config.connections
        allowed = raise_nofile(wanted + FD_MARGIN) - FD_MARGIN
        if allowed < wanted:
            Progress.note(f"note: open-files limit allows {allowed} connections, not {wanted}")
        return max(0, min(wanted, allowed))

    def count_runs(self, scenarios: Sequence[Scenario]) -> int:
        per_round = 0
        for scenario in scenarios:
            targets = [t for t in TARGETS if scenario.command(t) is not None]
            per_round += len(targets) * len(self.config.pipelines)
            per_round += len(targets) if scenario.latency_probe else 0
        if SCALE_GROUP in self.config.groups:
            per_round += 3 * len(JSHOST_TARGETS)  # idle, loaded, idle again
        return per_round * self.config.rounds

    def prepare(self, servers: Servers) -> None:
        """Load the libraries, fill the keyspace, time the floors."""
        load_libraries(servers.redis.port, [servers.embedded.port, servers.remote.port])
        start = time.perf_counter()
        for target in TARGETS:
            prefill(servers.port(target), self.config.keyspace)
        filled = time.perf_counter() - start
        Progress.note(f"servers: redis-server pid {servers.redis.pid} port {servers.redis.port}, "
                      f"{EMBEDDED} pid {servers.embedded.pid} port {servers.embedded.port}, "
                      f"{REMOTE} pid {servers.remote.pid} port {servers.remote.port}; "
                      f"{self.config.keyspace:,} keys set on each ({filled:.1f}s)")
        calls = self.config.floor_calls
        embedded = floors.embedded_command_us(calls)
        self.floors = {f"embedded_{k}": v for k, v in embedded.items()}
        self.floors["remote_round_trip_us"] = floors.remote_round_trip_us(
            servers.redis.url(REMOTE_DB), calls)
        Progress.note(report.floors_lines(self.floors).splitlines()[0].split(";")[0])

    # -- one round -------------------------------------------------------------------------------

    def run_round(
        self, servers: Servers, scenarios: Sequence[Scenario], number: int, connections: int
    ) -> None:
        for scenario in scenarios:
            self.check(servers, scenario, number, "before")
            for pipeline in self.config.pipelines:
                for target in TARGETS:
                    if scenario.command(target) is not None:
                        self.throughput_run(servers, scenario, pipeline, target, number)
            if scenario.latency_probe:
                for target in TARGETS:
                    if scenario.command(target) is not None:
                        self.latency_run(servers, scenario, target, number)
            self.check(servers, scenario, number, "after")
        if SCALE_GROUP in self.config.groups:
            for target in JSHOST_TARGETS:
                self.scale_run(servers, target, number, connections)

    def check(self, servers: Servers, scenario: Scenario, number: int, when: str) -> None:
        """Send the scenario's command once to each target and compare with the expected reply."""
        for target in TARGETS:
            command = scenario.command(target)
            if command is None:
                continue
            sample = sample_command(command)
            got = run_once(servers.port(target), sample)
            ok = got == scenario.expected
            self.checks.append({
                "round": number, "scenario": scenario.key, "target": target, "when": when,
                "command": " ".join(sample), "expected": repr(scenario.expected),
                "got": repr(got), "ok": ok,
            })
            if not ok:
                Progress.note(f"REPLY CHECK FAILED: {target} {' '.join(sample)} -> {got!r}, "
                              f"expected {scenario.expected!r}")

    def _benchmark(
        self, servers: Servers, target: str, command: Sequence[str], *, clients: int,
        requests: int, pipeline: int,
    ) -> dict[str, Any]:
        """One redis-benchmark run as a JSON row (with `error` set when it failed)."""
        try:
            result = run_benchmark(
                servers.port(target), command, clients=clients, requests=requests,
                pipeline=pipeline, keyspace=self.config.keyspace,
                cpu_pids=servers.cpu_pids(target),
            )
        except BenchmarkError as exc:
            return {"requests": requests, "clients": clients, "pipeline": pipeline,
                    "error": str(exc)}
        return {**result.to_json(), "error": None}

    def throughput_run(
        self, servers: Servers, scenario: Scenario, pipeline: int, target: str, number: int
    ) -> None:
        command = scenario.command(target)
        assert command is not None
        requests = self.config.requests_for(scenario, pipeline, target)
        row = self._benchmark(servers, target, command, clients=self.config.clients,
                              requests=requests, pipeline=pipeline)
        row = {"round": number, "scenario": scenario.key, "target": target, **row}
        self.runs.append(row)
        self.progress.line(_run_text(row, f"P{pipeline:<2}"))

    def latency_run(self, servers: Servers, scenario: Scenario, target: str, number: int) -> None:
        """One client, no pipelining: the latency of one call without queueing."""
        command = scenario.command(target)
        assert command is not None
        row = self._benchmark(servers, target, command, clients=1,
                              requests=self.config.latency_requests, pipeline=1)
        row = {"round": number, "scenario": scenario.key, "target": target, **row}
        self.latency_runs.append(row)
        self.progress.line(_run_text(row, "c1 ") + (
            f"  p50 {row['p50_ms'] * 1000:.0f} us p99 {row['p99_ms'] * 1000:.0f} us"
            if row["error"] is None else ""))

    # -- scenario 5 ------------------------------------------------------------------------------

    def scale_run(self, servers: Servers, target: str, number: int, connections: int) -> None:
        """Scenario 1 idle; park `connections` calls; RSS and scenario 1 beside them; release;
        scenario 1 idle again (the idle figure is the mean of both, as load drifts)."""
        pid = servers.process(target).pid
        idle_before = self._trivial_run(servers, target, number, "5-idle")
        row: dict[str, Any] = {"round": number, "target": target, "connections": connections}
        rss_before = rss_bytes(pid)
        try:
            with ParkedCalls(servers.port(target), connections) as parked:
                rss_after = rss_bytes(pid)
                loaded = self._trivial_run(servers, target, number, "5-loaded")
                released = parked.release()
        except (OSError, RuntimeError) as exc:
            row["error"] = f"scale test: {exc}"
            self.scale_runs.append(row)
            self._scale_check(number, target, connections, 0)
            Progress.note(f"r{number} 5-scale {target}: FAILED {exc}")
            return
        self._scale_check(number, target, connections, released)
        idle_after = self._trivial_run(servers, target, number, "5-idle")
        row.update(self._scale_figures(idle_before, idle_after, loaded, rss_before, rss_after,
                                       released))
        self.scale_runs.append(row)
        Progress.note(f"   r{number} 5-scale {target}: +{row['rss_added_mb']:.1f} MB RSS for "
                      f"{connections:,} parked calls, {released:,} released ok, loaded/idle "
                      f"{_fmt_ratio(row['loaded_to_idle'])}")

    def _trivial_run(
        self, servers: Servers, target: str, number: int, label: str
    ) -> dict[str, Any]:
        """Scenario 1 at -P 16 for scenario 5 (idle, or beside the parked calls)."""
        trivial = select(("1",))[0]
        row = self._benchmark(servers, target, trivial.jshost_command, clients=self.config.clients,
                              requests=self.config.scale_requests, pipeline=16)
        self.progress.line(_run_text({"round": number, "scenario": label, "target": target,
                                      **row}, "P16"))
        return row

    def _scale_check(self, number: int, target: str, connections: int, released: int) -> None:
        """Every parked call must have answered "released" once freed."""
        self.checks.append({
            "round": number, "scenario": "5-scale", "target": target, "when": "after",
            "command": f"{' '.join(PARK)} on {connections} connections, then "
                       f"{' '.join(RELEASE)} <batch>",
            "expected": f"{PARK_REPLY!r} on each", "got": f"{released} of {connections} correct",
            "ok": released == connections,
        })

    @staticmethod
    def _scale_figures(
        idle_before: dict[str, Any], idle_after: dict[str, Any], loaded: dict[str, Any],
        rss_before: int, rss_after: int, released: int,
    ) -> dict[str, Any]:
        error = idle_before.get("error") or idle_after.get("error") or loaded.get("error")
        added = rss_after - rss_before
        connections = max(1, released)
        idle_rps = [r["rps"] for r in (idle_before, idle_after) if r.get("rps")]
        rps_idle = sum(idle_rps) / len(idle_rps) if idle_rps else None
        rps_loaded = loaded.get("rps")
        return {
            "error": error,
            "released_ok": released,
            "rss_before_mb": rss_before / 2**20,
            "rss_added_mb": added / 2**20,
            "rss_per_call_kb": added / 1024 / connections,
            "rps_idle": rps_idle,
            "rps_loaded": rps_loaded,
            "loaded_to_idle": rps_loaded / rps_idle if rps_idle and rps_loaded else None,
            "idle_before": idle_before,
            "idle_after": idle_after,
            "loaded": loaded,
        }

    # -- profile and results ---------------------------------------------------------------------

    def run_profile(self, stamp: str, nofile: int) -> None:
        out = self.config.out_dir / f"{stamp}-trivial.prof"
        out.parent.mkdir(parents=True, exist_ok=True)
        Progress.note(f"profiling the trivial FCALL ({self.config.profile_requests:,} requests, "
                      "-P 16) under cProfile ...")
        self.profile = profile_trivial(out, self.config.profile_requests, self.config.clients,
                                       16, nofile)

    def results(
        self, scenarios: Sequence[Scenario], started: datetime, connections: int
    ) -> dict[str, Any]:
        self.add_wire_floor()
        summary = report.summarize_runs(self.runs, scenarios)
        self.add_fastest_path()
        latency = report.summarize_latency(self.latency_runs)
        scale = report.summarize_scale(self.scale_runs)
        targets = report.evaluate_targets(summary, latency, scale, self.floors,
                                          connections or self.config.connections)
        failed_runs = [r for r in self.runs + self.latency_runs + self.scale_runs if r.get("error")]
        config = {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(self.config).items()}
        return {
            "schema": 1,
            "started": started.isoformat(timespec="seconds"),
            "duration_s": round((datetime.now() - started).total_seconds(), 1),
            "machine": machine(),
            "config": config,
            "scenarios": [asdict(s) for s in scenarios],
            "checks_passed": all(c["ok"] for c in self.checks) and bool(self.checks),
            "failed_runs": len(failed_runs),
            "summary": summary,
            "latency": latency,
            "scale": scale,
            "floors": self.floors,
            "targets": targets,
            "profile": self.profile,
            "checks": self.checks,
            "runs": self.runs,
            "latency_runs": self.latency_runs,
            "scale_runs": self.scale_runs,
        }

    def add_wire_floor(self) -> None:
        """Per-command time of passthrough SET/GET through the embedded jshost at -P 16."""
        for op in ("set", "get"):
            rps = [r["rps"] for r in self.runs if r["scenario"] == f"3-{op}" and
                   r["target"] == EMBEDDED and r["pipeline"] == 16 and not r.get("error")]
            if rps:
                self.floors[f"embedded_{op}_wire_us"] = 1e6 / sorted(rps)[len(rps) // 2]

    def add_fastest_path(self) -> None:
        """The embedded floor: the cheaper of the in-process call and the wire path."""
        candidates: dict[str, float] = {}
        in_process = self.floors.get("embedded_command_us")
        if in_process:
            candidates["in-process EmbeddedStore session.call"] = float(in_process)
        wire = [self.floors.get(f"embedded_{op}_wire_us") for op in ("set", "get")]
        if all(wire):
            candidates["SET/GET through jshost at -P 16"] = sum(float(w) for w in wire if w) / 2
        if candidates:
            path = min(candidates, key=lambda k: candidates[k])
            self.floors["embedded_floor_us"] = candidates[path]
            self.floors["embedded_floor_path"] = path

    def write(self, stamp: str, data: dict[str, Any]) -> None:
        out = self.config.out_dir
        json_path = out / f"{stamp}.json"
        if self.config.png and data["summary"]:
            png = out / f"{stamp}.png"
            out.mkdir(parents=True, exist_ok=True)
            title = f"jshost vs redis-server, median of {self.config.rounds} round(s), {stamp}"
            data["png"] = str(png) if report.draw_chart(png, data["summary"], title) else None
        data["json"] = str(json_path)
        report.write_json(json_path, data)


def _fmt_ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"


def _run_text(row: dict[str, Any], mode: str) -> str:
    head = f"r{row['round']} {row['scenario']:<9} {mode} {row['target']:<15}"
    if row.get("error"):
        return f"{head} FAILED: {row['error']}"
    cpu = row["cpu_us_per_req"]
    cpu_text = f"cpu {cpu[0]:6.2f} us/req" + (f" (+{cpu[1]:.2f} redis)" if len(cpu) > 1 else "")
    return (f"{head} {row['requests']:>9,} req  {row['rps']:>11,.0f} req/s  {cpu_text}  "
            f"{row['seconds']:5.1f}s")


def machine() -> dict[str, Any]:
    """Where the run happened (absolute figures are only comparable on the same machine)."""
    try:
        version = subprocess.run([str(REDIS_SERVER), "--version"], capture_output=True,
                                 text=True, timeout=10, check=False).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        version = None
    return {
        "cpus": os.cpu_count(),
        "load_average": os.getloadavg(),
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "redis_server": version,
    }


def print_report(data: dict[str, Any]) -> None:
    """The tables of a finished run, for the terminal."""
    sections = [
        ("Throughput (median of rounds; x redis = ratio to redis-server, same scenario and -P)",
         report.throughput_table(data["summary"])),
    ]
    if data["latency"]:
        sections.append(("Latency with 1 client, -P 1 (scenario 4)",
                         report.latency_table(data["latency"])))
    if data["scale"]:
        sections.append(("Scale (scenario 5)", report.scale_table(data["scale"])))
    sections.append(("Floors", report.floors_lines(data["floors"])))
    sections.append(("Targets of the issue", report.targets_table(data["targets"])))
    if data.get("profile"):
        sections.append(("Profile", report.profile_lines(data["profile"])))
    for title, body in sections:
        print(f"\n== {title}\n{body}")
    checks = "all passed" if data["checks_passed"] else "SOME FAILED"
    print(f"\nreply checks: {checks} ({len(data['checks'])}); failed runs: {data['failed_runs']}")
    print(f"results: {data['json']}" + (f", chart: {data['png']}" if data.get("png") else ""))
