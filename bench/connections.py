"""Opening many connections: how fast jshost accepts them, next to redis-server in the same run.

    python -m bench.connections                   # 10 000 connections, 3 rounds
    python -m bench.connections --connections 2000 --rounds 1

For each target — redis-server, `jshost serve` (embedded store) with its default `tcp-backlog`
(4096), and the same with Redis's default, `--tcp-backlog 511` — one client opens N connections one
after the other as fast as it can (a blocking `connect()` returns once the kernel has completed
the handshake, which it does only while the server's accept queue has room), then sends `PING`
on each and reads every `+PONG`. The figure is connections per second over both steps (median
of the rounds); the time to connect alone is shown too. A server that accepts too slowly lets
its accept queue overflow: the kernel drops the SYN and the client tries again one second later,
so a few overflows dominate the time (jshost had asyncio's backlog of 100 and took ~55 s for
10 000 connections here; redis-server ~5 s).

Every server listens on 127.0.0.1 on a free port and is stopped by its PID at the end.
"""

from __future__ import annotations

import argparse
import socket
import statistics
import sys
import time
from collections.abc import Callable, Sequence

from bench.procs import ServerProcess, raise_nofile, start_jshost, start_redis

FD_MARGIN = 1024
CONNECT_TIMEOUT = 30.0


def open_connections(port: int, count: int) -> tuple[float, float]:
    """Open `count` connections, then PING on each; (seconds to connect, seconds in all)."""
    sockets: list[socket.socket] = []
    try:
        started = time.perf_counter()
        for _ in range(count):
            sockets.append(socket.create_connection(("127.0.0.1", port), CONNECT_TIMEOUT))
        connected = time.perf_counter()
        for sock in sockets:
            sock.sendall(b"PING\r\n")
        for sock in sockets:
            reply = sock.recv(64)
            if reply != b"+PONG\r\n":
                raise RuntimeError(f"port {port} answered {reply!r} to PING")
        done = time.perf_counter()
    finally:
        for sock in sockets:
            sock.close()
    return connected - started, done - started


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.connections", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--connections", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    nofile = raise_nofile(args.connections + FD_MARGIN)
    count = min(args.connections, nofile - FD_MARGIN)
    if count < args.connections:
        print(f"open-files limit {nofile}: {count} connections instead of {args.connections}")
    starters: dict[str, Callable[[], ServerProcess]] = {
        "redis-server": lambda: start_redis(nofile),
        "jshost (default, backlog 4096)": lambda: start_jshost(nofile, name="jshost"),
        "jshost --tcp-backlog 511": lambda: start_jshost(
            nofile, name="jshost-511", extra=["--tcp-backlog", "511"]),
    }
    servers: dict[str, ServerProcess] = {}
    results: dict[str, list[tuple[float, float]]] = {name: [] for name in starters}
    try:
        for name, start in starters.items():
            servers[name] = start()
        for number in range(1, args.rounds + 1):
            for name, server in servers.items():  # interleaved: load drifts alike for all
                results[name].append(open_connections(server.port, count))
                connect, total = results[name][-1]
                print(f"round {number} {name}: {count / total:,.0f} connections/s "
                      f"({connect:.2f} s to connect, {total:.2f} s with a PING each)",
                      flush=True)
    finally:
        for server in servers.values():
            server.stop()
    print(f"\n{count} connections, median of {args.rounds} round(s):")
    anchor = statistics.median(total for _, total in results["redis-server"])
    for name, runs in results.items():
        total = statistics.median(t for _, t in runs)
        connect = statistics.median(c for c, _ in runs)
        print(f"  {name:30} {count / total:9,.0f} connections/s  {connect:6.2f} s to connect  "
              f"{total:6.2f} s in all  x{anchor / total:.2f} redis")
    return 0


if __name__ == "__main__":
    sys.exit(main())
