"""Speed of the `jshost._engine` boundary, in µs per operation.

Run with `python -m bench.bench_engine` (optionally `--runs 5 --n 100000`). Each figure is the best
of `runs` timings of `n` operations, measured with `time.perf_counter_ns`. The target for the
trivial calls (Python→JS and JS→Python) is ≤ 2 µs each.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import jshost.engine  # noqa: F401 - hands the binding its value types before it is used
from jshost._engine import Runtime

TARGET_US = 2.0


def best_of(runs: int, n: int, run_once: Callable[[int], None]) -> float:
    """Best time per operation in µs; `run_once(n)` performs `n` operations."""
    best = None
    for _ in range(runs):
        t0 = time.perf_counter_ns()
        run_once(n)
        dt = time.perf_counter_ns() - t0
        best = dt if best is None or dt < best else best
    assert best is not None
    return best / n / 1000.0


def loop_overhead(runs: int, n: int) -> float:
    """An empty Python loop of the same shape as the per-operation loops below."""

    def run(k: int) -> None:
        for _ in range(k):
            pass

    return best_of(runs, n, run)


def bench_py_to_js(rt: Runtime, runs: int, n: int) -> float:
    f = rt.eval("() => 1")

    def run(k: int) -> None:
        for _ in range(k):
            f()

    return best_of(runs, n, run)


def bench_js_to_py(rt: Runtime, runs: int, n: int) -> float:
    rt.globals.set("pyfn", lambda: None)
    loop = rt.eval("(n) => { for (let i = 0; i < n; i++) pyfn(); }")
    empty = rt.eval("(n) => { for (let i = 0; i < n; i++) ; }")
    # The JS loop itself costs a little: measure it and take it out.
    base = best_of(runs, n, lambda k: empty(float(k)))
    return best_of(runs, n, lambda k: loop(float(k))) - base


def bench_roundtrip(rt: Runtime, value: object, runs: int, n: int) -> float:
    rtrip = rt.roundtrip

    def run(k: int) -> None:
        for _ in range(k):
            rtrip(value)

    return best_of(runs, n, run)


def bench_to_js(rt: Runtime, value: object, runs: int, n: int) -> float:
    """Python → JS: a call of a function that ignores its one argument."""
    sink = rt.eval("(x) => undefined")

    def run(k: int) -> None:
        for _ in range(k):
            sink(value)

    return best_of(runs, n, run)


def bench_to_py(rt: Runtime, expr: str, runs: int, n: int) -> float:
    """JS → Python: a call returning a value built once in JS."""
    rt.eval(f"globalThis.__bench_value = {expr};")
    get = rt.eval("() => globalThis.__bench_value")

    def run(k: int) -> None:
        for _ in range(k):
            get()

    return best_of(runs, n, run)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--n", type=int, default=100_000)
    args = ap.parse_args(argv)
    runs, n = args.runs, args.n

    rt = Runtime()
    s1k = "x" * 1024
    arr10 = [float(i) for i in range(10)]
    dict10 = {f"k{i}": float(i) for i in range(10)}

    noop = rt.eval("(x) => undefined")

    def bare_call(k: int) -> None:
        for _ in range(k):
            noop(None)

    call_base = best_of(runs, n, bare_call)

    rows: list[tuple[str, float, bool]] = [
        ("empty Python loop (reference)", loop_overhead(runs, n), False),
        ("Python→JS call  f() of () => 1", bench_py_to_js(rt, runs, n), True),
        ("JS→Python call  pyfn() from a JS loop", bench_js_to_py(rt, runs, n), True),
        ("bare call       f(null) of (x) => undefined", call_base, False),
        ("1 KB string     Python→JS→Python (roundtrip)", bench_roundtrip(rt, s1k, runs, n), False),
        ("1 KB string     as an argument, f(s)", bench_to_js(rt, s1k, runs, n), False),
        ("1 KB string     as a return value, f()", bench_to_py(rt, "'x'.repeat(1024)", runs, n), False),
        ("10-elem array   Python→JS→Python (roundtrip)", bench_roundtrip(rt, arr10, runs, n), False),
        ("10-elem array   as an argument", bench_to_js(rt, arr10, runs, n), False),
        ("10-elem array   as a return value", bench_to_py(rt, "[0,1,2,3,4,5,6,7,8,9]", runs, n), False),
        ("10-key dict     Python→JS→Python (roundtrip)", bench_roundtrip(rt, dict10, runs, n), False),
        ("10-key dict     as an argument", bench_to_js(rt, dict10, runs, n), False),
        ("10-key object   as a return value",
         bench_to_py(rt, "({" + ",".join(f"k{i}:{i}" for i in range(10)) + "})", runs, n), False),
    ]
    rt.close()

    print(f"jshost._engine: best of {runs} runs of {n:,} operations, µs per operation")
    print("(\"as an argument\" / \"as a return value\" rows include the call: compare with the bare call)")
    width = max(len(r[0]) for r in rows)
    slow = []
    for label, us, is_call in rows:
        mark = ""
        if is_call:
            ok = us <= TARGET_US
            mark = f"  target ≤ {TARGET_US} µs: {'ok' if ok else 'SLOW'}"
            if not ok:
                slow.append(label)
        print(f"  {label:<{width}}  {us:8.3f}{mark}")
    return 1 if slow else 0


if __name__ == "__main__":
    raise SystemExit(main())
