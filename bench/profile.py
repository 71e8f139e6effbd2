"""Profile the trivial FCALL path: `jshost serve` under cProfile while redis-benchmark runs
``RG.FCALL bench hello 0``; the top functions by cumulative and by own time.

The server runs as ``python -m cProfile -o <file> -m jshost serve ...`` and writes its profile
when it exits after SIGTERM (jshost shuts down gracefully). cProfile slows Python code down,
so the times are for ranking, not for comparing with the unprofiled figures.
"""

from __future__ import annotations

import pstats
from pathlib import Path
from typing import Any

from bench.procs import start_jshost
from bench.runner import run_benchmark
from bench.scenarios import SCENARIOS, load_js, run_once

TOP = 15
#: The cumulative list leaves out functions called fewer times than this: the start-up frames
#: (runpy, click, asyncio.run) that contain the whole run and say nothing about a request.
MIN_CALLS_CUMULATIVE = 100


def _row(key: tuple[str, int, str], stat: tuple[Any, ...], requests: int) -> dict[str, Any]:
    """One function's line: where it is, calls, own and cumulative time (s, and µs/request)."""
    filename, line, name = key
    _, ncalls, tottime, cumtime, _ = stat
    where = f"{Path(filename).name}:{line}" if line else filename
    return {
        "function": f"{name} ({where})",
        "calls": ncalls,
        "own_s": round(tottime, 4),
        "cumulative_s": round(cumtime, 4),
        "own_us_per_req": round(tottime * 1e6 / requests, 3),
        "cumulative_us_per_req": round(cumtime * 1e6 / requests, 3),
    }


def top_functions(profile: Path, requests: int, top: int = TOP) -> dict[str, list[dict[str, Any]]]:
    """The `top` functions by cumulative time (called at least `MIN_CALLS_CUMULATIVE` times)
    and by own time."""
    stats: dict[Any, Any] = pstats.Stats(str(profile)).stats  # type: ignore[attr-defined]
    rows = list(stats.items())
    hot = [(key, stat) for key, stat in rows if stat[1] >= MIN_CALLS_CUMULATIVE]
    by_cum = sorted(hot, key=lambda item: item[1][3], reverse=True)[:top]
    by_own = sorted(rows, key=lambda item: item[1][2], reverse=True)[:top]
    return {
        "cumulative": [_row(k, s, requests) for k, s in by_cum],
        "own": [_row(k, s, requests) for k, s in by_own],
    }


def profile_trivial(
    out: Path, requests: int, clients: int, pipeline: int, nofile: int
) -> dict[str, Any]:
    """Run scenario 1 against a profiled embedded jshost; the profile's file and top lists."""
    trivial = next(s for s in SCENARIOS if s.key == "1-trivial")
    server = start_jshost(nofile, profile_to=out, name="jshost-profiled")
    try:
        load_js(server.port)
        if run_once(server.port, trivial.jshost_command) != trivial.expected:
            raise RuntimeError("the profiled server gave a wrong reply to the trivial FCALL")
        result = run_benchmark(
            server.port, trivial.jshost_command, clients=clients, requests=requests,
            pipeline=pipeline,
        )
    finally:
        status = server.stop()
    if status != 0 or not out.exists():
        raise RuntimeError(f"the profiled server exited {status}:\n{server.output()}")
    return {
        "file": str(out),
        "requests": requests,
        "pipeline": pipeline,
        "rps_under_profiler": result.rps,
        **top_functions(out, requests),
    }
