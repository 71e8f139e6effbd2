"""Builtin-heavy runaways: JS that spends its time inside QuickJS-ng's C builtins, where the
bytecode interpreter's own interrupt polling never runs (see vendor/README.md).

Each `Runaway` is a piece of data (`setup`) and one builtin call on it (`op`). Its runaway form
repeats `op` until the runaway's own clock says it has run a given time: if nothing stops it, it
returns how many times `op` ran. `op` is sized to take milliseconds, so that the interpreter,
which polls every 10 000 branches, would not stop the loop by itself within seconds.

The table is used by tests/test_bounded_js.py (every runaway in every context must be stopped)
and by the benchmark below:

    python -m bench.runaways                   # every runaway under lock-redis-timeout 500 ms
    python -m bench.runaways --limit-ms 100 --only array.fill string.repeat
    python -m bench.runaways --op-times 7     # each op once, no deadline: what polling costs

It starts `jshost serve` (embedded store) on a free port of 127.0.0.1, loads `library_code()`,
and for each runaway calls `RG.FCALL runaways sync` while another connection sends PING in a
loop; it prints, per runaway, whether it was stopped, the stop time (the FCALL's round trip) and
the worst PING round trip meanwhile. The goal is the limit + 100 ms for both.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import redis


@dataclass(frozen=True)
class Runaway:
    """`setup`: JS statements that store the data in the object `D`; `op`: one JS expression,
    repeated. `sandboxed`: whether it runs in a library (False: it needs what libraries may
    not have, so only the engine tests use it)."""

    name: str
    setup: str
    op: str
    sandboxed: bool = True


# Data shared by several rows: numbers, a million-char string, float64s out of order (a block
# of 1000 tiled), a BigInt of 140 000 bits, an object with 10 000 keys. The set-ups stay cheap:
# the LOAD context runs them under the limit too.
_NUMBERS = "D.a = new Array(3e5).fill(12345);"
_TEXT = "D.s = 'x'.repeat(1e6);"
_FLOATS = ("D.b = new Float64Array(1000); for (let i = 0; i < 1000; i++) D.b[i] = (i * 7919) % 1009;"
           " D.t = new Float64Array(3e5); for (let k = 0; k < 300; k++) D.t.set(D.b, k * 1000);")
_SMALL_NUMBERS = "D.u = new Array(5e4).fill(0); D.u.forEach((_, i) => { D.u[i] = (i * 7919) % 50021; });"
_BIG = "D.big = 7n ** 50000n;"
_KEYS = "D.o = {}; for (let i = 0; i < 1e4; i++) D.o['k' + i] = i;"

RUNAWAYS: tuple[Runaway, ...] = (
    # Array
    Runaway("array.fill", _NUMBERS, "D.a.fill(1)"),
    Runaway("array.copyWithin", _NUMBERS, "D.a.copyWithin(0, 1)"),
    Runaway("array.join", _NUMBERS, "D.a.join(',')"),
    Runaway("array.toString", _NUMBERS, "String(D.a)"),
    Runaway("array.indexOf", _NUMBERS, "D.a.indexOf(-1)"),
    Runaway("array.includes", _NUMBERS, "D.a.includes(-1)"),
    Runaway("array.lastIndexOf", _NUMBERS, "D.a.lastIndexOf(-1)"),
    Runaway("array.reverse", _NUMBERS, "D.a.reverse()"),
    Runaway("array.splice", _NUMBERS, "D.a.splice(1, 1), D.a.splice(1, 0, 7)"),
    Runaway("array.shift", _NUMBERS, "D.a.shift(), D.a.push(7)"),
    Runaway("array.from", "", "Array.from({length: 3e5})"),
    Runaway("array.from-iterable", _NUMBERS, "Array.from(D.a)"),
    Runaway("array.spread", _NUMBERS, "[...D.a]"),
    Runaway("array.concat", _NUMBERS, "D.a.concat(D.a)"),
    Runaway("array.flat", "D.n = []; for (let i = 0; i < 500; i++) D.n.push(new Array(500).fill(i));",
            "D.n.flat()"),
    Runaway("array.sort", _SMALL_NUMBERS, "D.u.slice().sort()"),
    Runaway("array.toSorted", _SMALL_NUMBERS, "D.u.toSorted()"),
    Runaway("array.delete", _NUMBERS, "delete D.a.slice()[7]"),
    # TypedArray, ArrayBuffer
    Runaway("typed.fill", "D.u8 = new Uint8Array(2e7);", "D.u8.fill(7)"),
    Runaway("typed.set", "D.f = new Float64Array(2e6); D.g = new Float64Array(2e6);", "D.f.set(D.g)"),
    Runaway("typed.slice", "D.f = new Float64Array(2e6);", "D.f.slice()"),
    Runaway("typed.copyWithin", "D.u8 = new Uint8Array(2e7);", "D.u8.copyWithin(0, 1)"),
    Runaway("typed.sort", _FLOATS, "D.t.slice().sort()"),
    Runaway("typed.indexOf", "D.f = new Float64Array(2e6);", "D.f.indexOf(1)"),
    Runaway("typed.join", _FLOATS, "D.t.join()"),
    Runaway("typed.from-array", _NUMBERS, "new Float64Array(D.a)"),
    Runaway("arraybuffer.slice", "D.ab = new ArrayBuffer(2e7);", "D.ab.slice(0)"),
    # String
    Runaway("string.repeat", "", "'ab'.repeat(5e6)"),
    Runaway("string.padStart", "", "'ab'.padStart(1e7, 'xy')"),
    Runaway("string.padEnd", "", "'ab'.padEnd(1e7, 'xy')"),
    Runaway("string.split", "D.csv = 'a,'.repeat(3e5);", "D.csv.split(',')"),
    Runaway("string.replaceAll", _TEXT, "D.s.replaceAll('x', 'yz')"),
    Runaway("string.concat", "D.s = 'x'.repeat(4e6);",
            "D.s.concat(D.s, D.s, D.s, D.s, D.s, D.s, D.s).length"),
    Runaway("string.flatten", "D.s = 'x'.repeat(4e6);",
            "(D.s + D.s + D.s + D.s + D.s + D.s + D.s + D.s).charCodeAt(1)"),
    Runaway("string.indexOf", "D.s = 'a'.repeat(3e4); D.p = 'a'.repeat(1000) + 'b';",
            "D.s.indexOf(D.p)"),
    # a run of combining marks in decreasing canonical class: an insertion sort, quadratic
    Runaway("string.normalize", "D.marks = 'a' + '\\u0345'.repeat(2e3) + '\\u0301'.repeat(2e3);",
            "D.marks.normalize()"),
    Runaway("string.toUpperCase", _TEXT, "D.s.toUpperCase()"),
    Runaway("string.trim", "D.sp = ' '.repeat(3e6) + 'x';", "D.sp.trim()"),
    Runaway("string.encodeURIComponent", _TEXT, "encodeURIComponent(D.s)"),
    Runaway("string.equals", "D.s = 'x'.repeat(5e6); D.s2 = 'x'.repeat(5e6);", "D.s === D.s2"),
    # JSON
    Runaway("json.stringify", _NUMBERS, "JSON.stringify(D.a)"),
    Runaway("json.parse", "D.j = '[' + '12345,'.repeat(2e5) + '0]';", "JSON.parse(D.j)"),
    # Map, Set, Object
    # (new Map(iterable) and new Set(iterable) were stopped already: they call set/add through
    # JS_Call(), which polls.) A long key is hashed on every lookup; a union copies `this`.
    Runaway("map.get-long-key", "D.k = 'x'.repeat(5e6); D.m = new Map([[D.k, 1]]);",
            "D.m.get(D.k)"),
    Runaway("set.union", "D.set = new Set(); for (let i = 0; i < 2e4; i++) D.set.add(i);",
            "D.set.union(new Set([1]))"),
    Runaway("object.keys", _KEYS, "Object.keys(D.o)"),
    Runaway("object.assign", _KEYS, "Object.assign({}, D.o)"),
    # BigInt
    Runaway("bigint.pow", "", "7n ** 100000n"),
    Runaway("bigint.multiply", _BIG, "D.big * D.big"),
    Runaway("bigint.toString", _BIG, "String(D.big)"),
    Runaway("bigint.parse", "D.digits = '7'.repeat(1e5);", "BigInt(D.digits)"),
    # Code compiled at run time
    Runaway("regexp.compile", "D.src = 'a'.repeat(3e5);", "new RegExp(D.src)"),
    Runaway("function.compile", "D.src = 'x = 1;\\n'.repeat(5e4);", "Function(D.src)",
            sandboxed=False),
)

BY_NAME = {r.name: r for r in RUNAWAYS}
LIBRARY = "runaways"
#: A keyspace trigger runs the runaway named by the rest of the key: `runaway:<ms>:<name>`.
TRIGGER_PREFIX = "runaway:"


def loop_js(runaway: Runaway, ms: str) -> str:
    """JS statements that repeat `op` for `ms` (a JS expression) by their own clock, leaving
    the count in `n`."""
    return (f"const end = Date.now() + ({ms}); let n = 0;\n"
            f"while (Date.now() < end) {{ {runaway.op}; n++; }}")


def library_code(runaways: Iterable[Runaway] = RUNAWAYS) -> str:
    """A RedisGears library that runs each runaway in every context a library has:

    - `prepare <name>`: sets up its data (call it with a generous limit);
    - `sync <name> <ms>`: runs it in a sync function; `block`: in a `block()` section of an
      async function; `background`: in a background slice of an async function (after an
      `await`); each returns how many times `op` ran in `ms` if nothing stopped it;
    - a keyspace trigger on `runaway:<ms>:<name>` runs it in the trigger callback;
    - `ping`: 'pong', `calls`: how many runaways were started (state that must survive).
    """
    rows = []
    for r in runaways:
        if not r.sandboxed:
            continue
        rows.append(f"  {json.dumps(r.name)}: [() => {{ {r.setup} }},\n"
                    f"    (ms) => {{ {loop_js(r, 'ms')} return n; }}],")
    table = "\n".join(rows)
    return f"""#!js api_version=1.0 name={LIBRARY}
const D = {{}};  // the data of the prepared runaway
const RUNAWAYS = {{
{table}
}};
let calls = 0;
function run(name, ms) {{ calls++; return RUNAWAYS[name][1](Number(ms)); }}
redis.register_function('prepare', (c, name) => {{
  for (const k of Object.keys(D)) delete D[k];
  RUNAWAYS[name][0]();
  return 'ready';
}});
redis.register_function('sync', (c, name, ms) => run(name, ms));
redis.register_async_function('background', async (c, name, ms) => {{
  await null;
  return run(name, ms);
}});
redis.register_async_function('block', async (c, name, ms) => {{
  await null;
  return c.block(() => run(name, ms));
}});
redis.register_notifications_consumer('trigger', '{TRIGGER_PREFIX}', (c, d) => {{
  const [ms, ...name] = d.key.slice({len(TRIGGER_PREFIX)}).split(':');
  run(name.join(':'), ms);
}});
redis.register_function('ping', () => 'pong');
redis.register_function('calls', () => calls);
"""


def load_time_code(runaway: Runaway, ms: int) -> str:
    """A version of the library whose top level sets up and runs `runaway` for `ms`."""
    return (f"#!js api_version=1.0 name={LIBRARY}\n"
            f"const D = {{}};\n{runaway.setup}\n{loop_js(runaway, str(ms))}\n"
            f"redis.register_function('ping', () => 'new');\n")


# --- the benchmark ------------------------------------------------------------------------------

@dataclass
class Measure:
    name: str
    stopped: bool
    stop_ms: float
    ping_worst_ms: float
    pings: int


class Pinger(threading.Thread):
    """Another client: PING in a loop on its own connection, keeping the round trips."""

    def __init__(self, port: int) -> None:
        super().__init__(daemon=True)
        self.client = redis.Redis(port=port, socket_timeout=120)
        self.client.ping()
        self.times: list[float] = []
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            started = time.perf_counter()
            self.client.ping()
            self.times.append(time.perf_counter() - started)
            self.done.wait(0.002)

    def stop(self) -> list[float]:
        self.done.set()
        self.join()
        self.client.close()
        return self.times


def measure(port: int, runaway: Runaway, limit_ms: int) -> Measure:
    """Prepare `runaway` under a generous limit, then run it in a sync function under
    `limit_ms` (for ten times the limit if nothing stops it) while another client pings."""
    client = redis.Redis(port=port, socket_timeout=120)
    client.execute_command("RG.CONFIG_SET", "lock-redis-timeout", "60000")
    client.execute_command("RG.FCALL", LIBRARY, "prepare", "0", runaway.name)
    client.execute_command("RG.CONFIG_SET", "lock-redis-timeout", str(limit_ms))
    pinger = Pinger(port)
    pinger.start()
    started = time.perf_counter()
    try:
        client.execute_command("RG.FCALL", LIBRARY, "sync", "0", runaway.name,
                               str(10 * limit_ms))
        stopped = False
    except redis.ResponseError as exc:
        if "terminated" not in str(exc):
            raise
        stopped = True
    stop_ms = (time.perf_counter() - started) * 1000
    pings = pinger.stop()
    client.close()
    return Measure(runaway.name, stopped, stop_ms, max(pings, default=0.0) * 1000, len(pings))


def run_benchmark(runaways: Sequence[Runaway], limit_ms: int) -> list[Measure]:
    from bench.procs import start_jshost  # only the benchmark starts servers

    server = start_jshost(nofile=1024, name="jshost")
    try:
        client = redis.Redis(port=server.port)
        client.execute_command("RG.FUNCTION", "LOAD", library_code(runaways))
        client.close()
        results = []
        for runaway in runaways:
            result = measure(server.port, runaway, limit_ms)
            results.append(result)
            print(f"{result.name:28} {'stopped' if result.stopped else 'NOT STOPPED':12}"
                  f" {result.stop_ms:8.0f} ms   PING worst {result.ping_worst_ms:8.0f} ms",
                  flush=True)
        return results
    finally:
        server.stop()


def print_table(results: Sequence[Measure], limit_ms: int) -> None:
    print(f"\nlock-redis-timeout {limit_ms} ms; goal: stopped within {limit_ms + 100} ms\n")
    print("| runaway | outcome | stop time (ms) | PING worst case (ms) |")
    print("|---|---|---:|---:|")
    for r in results:
        outcome = "stopped" if r.stopped else "**not stopped**"
        print(f"| {r.name} | {outcome} | {r.stop_ms:.0f} | {r.ping_worst_ms:.0f} |")
    stops = [r.stop_ms for r in results]
    pings = [r.ping_worst_ms for r in results]
    if stops:
        print(f"\nstop time: median {statistics.median(stops):.0f} ms, worst {max(stops):.0f} ms;"
              f" PING worst case: median {statistics.median(pings):.0f} ms,"
              f" worst {max(pings):.0f} ms")


def op_times(runaways: Sequence[Runaway], runs: int) -> None:
    """The cost of the polling itself: each `op` once, without a deadline, on a bare runtime;
    the best of `runs`, in ms (compare two builds)."""
    import jshost.engine  # noqa: F401  (hands the binding its value types, first)
    from jshost import _engine

    print(f"{'runaway':28} {'op (ms, best of ' + str(runs) + ')':>22}")
    for runaway in runaways:
        rt = _engine.Runtime(memory_limit=1 << 30)
        rt.eval(f"var D = {{}}; {runaway.setup}")
        best = float("inf")
        for _ in range(runs):
            started = time.perf_counter()
            rt.eval(f"void ({runaway.op})")
            best = min(best, time.perf_counter() - started)
        print(f"{runaway.name:28} {best * 1000:22.2f}", flush=True)
        rt.close()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.runaways", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--limit-ms", type=int, default=500,
                        help="lock-redis-timeout during the runs (default 500, the default)")
    parser.add_argument("--only", nargs="+", metavar="NAME", help="these runaways only")
    parser.add_argument("--json", help="also write the results to this file")
    parser.add_argument("--op-times", type=int, metavar="RUNS",
                        help="instead: time each op once without a deadline, best of RUNS, "
                        "in-process (what the polling costs; compare two builds)")
    args = parser.parse_args(argv)
    runaways = [r for r in RUNAWAYS if r.sandboxed]
    if args.only:
        unknown = [name for name in args.only if name not in BY_NAME]
        if unknown:
            parser.error(f"unknown runaway(s): {', '.join(unknown)}")
        runaways = [BY_NAME[name] for name in args.only]
    if args.op_times:
        op_times(runaways, args.op_times)
        return 0
    results = run_benchmark(runaways, args.limit_ms)
    print_table(results, args.limit_ms)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump({"limit_ms": args.limit_ms, "results": [r.__dict__ for r in results]}, fh,
                      indent=2)
    return 0 if all(r.stopped for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
