"""Where a request's time goes: `jshost serve` sampled by py-spy while redis-benchmark runs.

    python -m bench.spy                        # trivial FCALL, setget and GET, both stores
    python -m bench.spy --scenarios 1-trivial --targets jshost-embedded --seconds 10

For each (scenario, target) it starts a redis-server and the jshost (embedded, or `--backend`
on that redis-server), loads `libs/bench.js`, runs the scenario's command with redis-benchmark
(`-c 50 -P 16` by default) and meanwhile samples the jshost process with `py-spy record
--format raw` (with `--native` for the time inside QuickJS). The samples are then folded into
**layers** — the RESP parser, the command dispatcher, the host's call path, the JS engine, the
store, the event loop — each the share of all samples whose innermost jshost frame is in it,
and the busiest functions by own time; time spent waiting in the event loop's select is left
out. Unlike cProfile it does not slow the code it measures,
so the shares are those of a normal run.

py-spy is in the `bench` extra (`pip install -e '.[bench]'`); it needs ptrace permission on
the jshost process (root, or `kernel.yama.ptrace_scope=0`).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import threading
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.procs import raise_nofile, start_jshost, start_redis
from bench.runner import run_benchmark
from bench.scenarios import EMBEDDED, REMOTE, REMOTE_DB, SCENARIOS, load_js

#: Layers, by the file (and, for jshost's own modules, function) of the innermost frame that
#: belongs to them; the first match wins. Frames outside these are "other".
LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    # The native RESP layer lives in `_engine` too: before the binding's needles.
    ("RESP parsing and encoding", ("_engine::resp::", "jshost/resp.py")),
    # The native call path's own work (its JS and the host's callables are theirs).
    ("native call path", ("_engine::fastpath::", "jshost/fastpath.py")),
    # Our Rust binding (pyo3 and its conversions) before QuickJS: both live in `_engine`.
    ("JS <-> Python boundary", ("_engine::", "pyo3::", "pyo3..", "jshost/host/natives.py",
                                "jshost/host/conversions.py", "jshost/engine/")),
    ("JS engine (QuickJS, native)", ("_engine.cpython",)),
    ("triggers", ("jshost/host/triggers.py", "jshost/host/streams.py", "jshost/host/lease.py")),
    ("host call path", ("jshost/commands/gears.py", "jshost/commands/grammar.py",
                        "jshost/host/")),
    ("dispatch", ("jshost/commands/dispatch.py", "jshost/commands/store_cmds.py")),
    ("connection (ordering, output)", ("jshost/connection.py", "jshost/ordering.py",
                                       "jshost/replies.py")),
    ("embedded store (fakeredis + jshost wrapper)", ("fakeredis/", "jshost/store/embedded/",
                                                      "jshost/store/keyspace_events/")),
    ("remote store (backend sockets)", ("jshost/store/remote/",)),
    ("event loop and sockets (asyncio, syscalls)", ("asyncio/", "selectors.py", "socket.py",
                                                     "libc", "epoll", "send", "recv")),
)
DEFAULT_SCENARIOS = ("1-trivial", "2-setget", "3-get")
#: pyo3's own frames: they belong to the native code that calls them (the RESP layer's, or else
#: the binding's).
GLUE = ("pyo3::", "pyo3..")


def layer_of(frame: str) -> str | None:
    for name, needles in LAYERS:
        if any(needle in frame for needle in needles):
            return name
    return None


def _idle(frames: list[str]) -> bool:
    """Waiting, not running (py-spy's native mode samples that too): the event loop in its
    select, or a thread (the executor's, that opens backend connections) blocked on a lock."""
    if any(frame.startswith("PyThread_acquire_lock") for frame in frames[-3:]):
        return True
    return len(frames) >= 2 and frames[-2].startswith("select (selectors.py") and (
        "libc" in frames[-1] or "epoll" in frames[-1])


def innermost_layer(frames: Sequence[str]) -> str:
    """The innermost frame that belongs to a layer names the layer (a fakeredis call made by a
    JS client call is store time, not host time); pyo3's frames count for the native code that
    called them when that is the RESP layer's."""
    glue = None
    for frame in reversed(frames):
        layer = layer_of(frame)
        if layer is None:
            continue
        if any(needle in frame for needle in GLUE):
            glue = glue or layer
            continue
        return layer if glue is None or layer == LAYERS[0][0] else glue
    return glue or "other"


def fold(raw: str) -> dict[str, Any]:
    """py-spy's raw output (``frame;frame;... count`` per line) -> layer shares and top own."""
    layers: Counter[str] = Counter()
    own: Counter[str] = Counter()
    total = idle = 0
    for line in raw.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        total += count
        frames = stack.split(";")
        if _idle(frames):
            idle += count
            continue
        own[frames[-1]] += count
        layers[innermost_layer(frames)] += count
    total -= idle
    if total <= 0:
        return {"samples": 0, "idle_samples": idle, "layers": {}, "top_own": []}
    return {
        "samples": total,
        "idle_samples": idle,
        "layers": {name: round(100 * n / total, 1) for name, n in layers.most_common()},
        "top_own": [(frame, round(100 * n / total, 1)) for frame, n in own.most_common(15)],
    }


def spy(pid: int, seconds: float, native: bool) -> str:
    """Sample `pid` for `seconds`; py-spy's raw folded stacks."""
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "raw.txt"
        argv = ["py-spy", "record", "--pid", str(pid), "--duration", str(int(seconds)),
                "--rate", "500", "--format", "raw", "--output", str(out)]
        # Native frames need the process paused while a sample is read (a few % slower).
        argv.append("--native" if native else "--nonblocking")
        done = subprocess.run(argv, capture_output=True, text=True, check=False)
        if not out.exists():
            raise RuntimeError(f"py-spy failed: {done.stderr.strip() or done.stdout.strip()}")
        return out.read_text()


def measure(scenario_key: str, target: str, seconds: float, pipeline: int,
            native: bool) -> dict[str, Any]:
    scenario = next(s for s in SCENARIOS if s.key == scenario_key)
    nofile = raise_nofile(4096)
    redis_server = start_redis(nofile)
    backend = redis_server.url(REMOTE_DB) if target == REMOTE else None
    jshost = start_jshost(nofile, backend=backend, name=target)
    try:
        load_js(jshost.port)
        # A short run tells the rate; the sampled run then lasts about `seconds` + 2.
        probe = run_benchmark(jshost.port, scenario.jshost_command, clients=50,
                              requests=2000, pipeline=pipeline, keyspace=100_000)
        sampled: dict[str, Any] = {}

        def sample() -> None:
            try:
                sampled["raw"] = spy(jshost.pid, seconds, native)
            except Exception as exc:  # noqa: BLE001 - reported once the load is over
                sampled["error"] = exc

        sampler = threading.Timer(1.0, sample)
        sampler.start()
        result = run_benchmark(jshost.port, scenario.jshost_command, clients=50,
                               requests=max(2000, int(probe.rps * (seconds + 2))),
                               pipeline=pipeline, keyspace=100_000, cpu_pids=(jshost.pid,))
        sampler.join()
        if "error" in sampled:
            raise sampled["error"]
    finally:
        jshost.stop()
        redis_server.stop()
    folded = fold(sampled.get("raw", ""))
    return {"scenario": scenario_key, "target": target, "pipeline": pipeline,
            "rps": result.rps, "cpu_us_per_req": result.cpu_us_per_req[0], **folded}


def print_report(rows: Sequence[dict[str, Any]]) -> None:
    for row in rows:
        print(f"\n== {row['scenario']} on {row['target']} at -P {row['pipeline']}: "
              f"{row['rps']:,.0f} req/s, {row['cpu_us_per_req']:.1f} CPU us/req, "
              f"{row['samples']} samples")
        for name, share in row["layers"].items():
            us = share / 100 * row["cpu_us_per_req"]
            print(f"  {share:5.1f}%  ~{us:5.1f} us  {name}")
        print("  busiest functions (own time):")
        for frame, share in row["top_own"][:10]:
            print(f"  {share:5.1f}%  {frame}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.spy", description=__doc__.split("\n")[0])
    parser.add_argument("--scenarios", default=",".join(DEFAULT_SCENARIOS),
                        help="comma-separated scenario keys (default: %(default)s)")
    parser.add_argument("--targets", default=f"{EMBEDDED},{REMOTE}",
                        help="comma-separated jshost targets (default: %(default)s)")
    parser.add_argument("--seconds", type=float, default=6.0, help="sampling time per run")
    parser.add_argument("-P", "--pipeline", type=int, default=16)
    parser.add_argument("--no-native", action="store_true",
                        help="Python frames only (QuickJS time then shows as its caller's)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    if shutil.which("py-spy") is None:
        print("py-spy is not installed: pip install -e '.[bench]'", file=sys.stderr)
        return 2
    rows = []
    for key in args.scenarios.split(","):
        for target in args.targets.split(","):
            print(f"sampling {key} on {target} ...", file=sys.stderr, flush=True)
            rows.append(measure(key, target, args.seconds, args.pipeline, not args.no_native))
    print_report(rows)
    if args.json is not None:
        args.json.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
