"""Speed of the RESP layer, native (`jshost.resp`) against the pure-Python one it replaced (its
oracle, `tests/resp_oracle.py`), in µs per command parsed / per reply encoded or parsed.

    python -m bench.bench_resp                 # run from the repository root
    python -m bench.bench_resp --runs 7 --n 20000

Each figure is the best of `runs` timings of `n` rounds (`time.perf_counter_ns`), divided by the
commands or replies a round handles. The request side is what a connection does with a read:
16 pipelined ``RG.FCALL lib hello 0`` (redis-benchmark ``-P 16``) or one command (``-P 1``),
fed and taken one `get_command` at a time (old and new) or in one `feed_and_take` (new only).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

from jshost import resp as new
from jshost.replies import Status
from tests import resp_oracle as old

FCALL = new.encode_command([b"RG.FCALL", b"lib", b"hello", b"0"])
REPLIES: dict[str, Any] = {
    "bulk 'bar'": b"bar",
    "+OK": Status(b"OK"),
    "int": 42,
    "array of 10 bulks": [b"value:%d" % i for i in range(10)],
    "map of 5 (RESP3)": {b"field:%d" % i: i for i in range(5)},
}


def best_of(runs: int, n: int, run_once: Callable[[int], None]) -> float:
    """Best time per round in µs; `run_once(n)` performs `n` rounds."""
    best = min(_timed(run_once, n) for _ in range(runs))
    return best / n / 1000.0


def _timed(run_once: Callable[[int], None], n: int) -> int:
    t0 = time.perf_counter_ns()
    run_once(n)
    return time.perf_counter_ns() - t0


def parse_one_by_one(module: Any, data: bytes) -> Callable[[int], None]:
    parser = module.RequestParser()

    def run(k: int) -> None:
        for _ in range(k):
            parser.feed(data)
            while parser.get_command() is not None:
                pass

    return run


def parse_batch(data: bytes) -> Callable[[int], None]:
    parser = new.RequestParser()

    def run(k: int) -> None:
        for _ in range(k):
            parser.feed_and_take(data, 1024)

    return run


def encode_replies(module: Any, value: Any, protocol: int, per_round: int) -> Callable[[int], None]:
    def run(k: int) -> None:
        encode_into = module.encode_into
        for _ in range(k):
            out = bytearray()
            for _ in range(per_round):
                encode_into(out, value, protocol)

    return run


def parse_replies(module: Any, data: bytes, raw: bool) -> Callable[[int], None]:
    parser = module.ReplyParser()

    def run(k: int) -> None:
        for _ in range(k):
            parser.feed(data)
            if raw:
                while parser.get_reply_with_raw() is not None:
                    pass
            else:
                while parser.get_reply() is not new.NEED_DATA:
                    pass

    return run


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="timings; the best is kept")
    parser.add_argument("--n", type=int, default=5000, help="rounds per timing")
    args = parser.parse_args(argv)
    runs, n = args.runs, args.n

    def row(what: str, before: float, after: float, batch: float | None = None) -> None:
        extra = f"   batch {batch:6.3f} ({before / batch:4.1f}x)" if batch is not None else ""
        print(f"{what:<34} old {before:6.3f}  new {after:6.3f} ({before / after:4.1f}x){extra}")

    print("µs per command parsed (RG.FCALL lib hello 0)")
    for pipeline in (16, 1):
        data = FCALL * pipeline
        row(
            f"  -P {pipeline}",
            best_of(runs, n, parse_one_by_one(old, data)) / pipeline,
            best_of(runs, n, parse_one_by_one(new, data)) / pipeline,
            best_of(runs, n, parse_batch(data)) / pipeline,
        )
    print("µs per reply encoded (encode_into, 16 a round)")
    for name, value in REPLIES.items():
        protocol = 3 if "RESP3" in name else 2
        row(
            f"  {name}",
            best_of(runs, n, encode_replies(old, value, protocol, 16)) / 16,
            best_of(runs, n, encode_replies(new, value, protocol, 16)) / 16,
        )
    print("µs per backend reply parsed (16 a read)")
    for name, value in (
        ("+OK", Status(b"OK")),
        ("bulk 'bar'", b"bar"),
        ("array of 10", REPLIES["array of 10 bulks"]),
    ):
        data = new.encode(value, 3) * 16
        for raw in (False, True):
            row(
                f"  {name}{' with raw' if raw else ''}",
                best_of(runs, n, parse_replies(old, data, raw)) / 16,
                best_of(runs, n, parse_replies(new, data, raw)) / 16,
            )


if __name__ == "__main__":
    main()
