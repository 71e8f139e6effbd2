"""``python -m bench``: jshost against redis-server, scenario by scenario (see bench/README.md).

    python -m bench                       # the full run: 3 rounds, every scenario (~15 min)
    python -m bench --quick               # seconds: tiny request counts, one round
    python -m bench --scenarios 1,3 --no-scale-test --rounds 1
    python -m bench --requests 2000000    # the issue's count for every target (hours here)
    python -m bench --profile             # also cProfile the trivial FCALL path
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from bench.procs import REDIS_BENCHMARK, REDIS_SERVER
from bench.suite import RESULTS, SCALE_GROUP, Config, Suite, print_report

GROUPS = ("1", "2", "3", "4", "5")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Benchmark jshost (embedded and --backend redis) against redis-server.",
    )
    parser.add_argument("--quick", action="store_true",
                        help="a short run: tiny request counts, 1 round, small keyspace")
    parser.add_argument("--rounds", type=int, help="rounds, interleaved (default 3; quick 1)")
    parser.add_argument("--scenarios", default=",".join(GROUPS),
                        help="comma-separated scenario numbers, e.g. 1,3 (default: all)")
    parser.add_argument("--no-scale-test", action="store_true",
                        help="skip scenario 5 (10 000 parked connections)")
    parser.add_argument("-c", "--clients", type=int, default=50, help="connections (default 50)")
    parser.add_argument("-n", "--requests", type=int,
                        help="requests of every run at -P 16 (a quarter at -P 1), every target; "
                        "default: per scenario, sized for ~15 minutes")
    parser.add_argument("--factor", type=float,
                        help="multiply the default per-scenario request counts")
    parser.add_argument("--connections", type=int, help="parked calls of scenario 5 (10000)")
    parser.add_argument("--profile", action="store_true",
                        help="also run the trivial FCALL against a jshost under cProfile")
    parser.add_argument("--out", type=Path, default=RESULTS,
                        help="folder of the JSON (and PNG) results (default bench/results)")
    parser.add_argument("--no-png", action="store_true", help="do not draw the chart")
    return parser.parse_args(argv)


def make_config(args: argparse.Namespace) -> Config:
    """The run's `Config` from the command line."""
    groups = tuple(g.strip() for g in args.scenarios.split(",") if g.strip())
    unknown = [g for g in groups if g not in GROUPS]
    if unknown:
        raise SystemExit(f"unknown scenario(s): {', '.join(unknown)} (known: {', '.join(GROUPS)})")
    if args.no_scale_test:
        groups = tuple(g for g in groups if g != SCALE_GROUP)
    config = Config.quick_run() if args.quick else Config()
    changes: dict[str, Any] = {"groups": groups, "clients": args.clients, "out_dir": args.out,
                                  "png": not args.no_png, "profile": args.profile}
    for name in ("rounds", "requests", "factor", "connections"):
        if getattr(args, name) is not None:
            changes[name] = getattr(args, name)
    return replace(config, **changes)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    missing = [name for name, path in (("redis-server", REDIS_SERVER),
                                       ("redis-benchmark", REDIS_BENCHMARK)) if path is None]
    if missing:
        print(f"python -m bench needs {' and '.join(missing)} on PATH "
              "(Debian: apt-get install redis-server redis-tools)", file=sys.stderr)
        return 2
    config = make_config(args)
    try:
        data = Suite(config).run()
    except KeyboardInterrupt:
        print("\ninterrupted: servers stopped, no results written", file=sys.stderr)
        return 130
    print_report(data)
    return 0 if data["checks_passed"] and not data["failed_runs"] else 1


if __name__ == "__main__":
    sys.exit(main())
