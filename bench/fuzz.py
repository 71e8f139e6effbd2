"""The long fuzz run (not part of CI): many fuzzed RESP frames, many fuzzed libraries, and the
native RESP layer against its pure-Python oracle on many inputs.

    python -m bench.fuzz --frames 100000 --libraries 10000 --differential 100000 [--seed 1]

Frames go to an in-process server (`tests.fuzz.ServerThread`, query buffer limit 1 MiB), one
connection each: random bytes, hostile headers, mutated pipelines of real commands; some sent
one byte at a time, some cut by a RST halfway. Each answer must be valid RESP; every 1000
frames the server must answer PING on a new connection.

Libraries are loaded into a `Host` with the lowest limits (lock-redis-timeout 100 ms,
library-maxmemory 16 MiB), rg and tf, as new libraries and as upgrades of a serving library;
one in 50 may run into a limit (loops, memory bombs). Each failure must be a `ReplyError` with
a load error's text, and the serving library must answer byte for byte as before.

The differential run (`tests.fuzz.resp_differential`) gives each kind of case (request
streams, reply streams, encodings, doubles, commands, inline lines) `--differential` seeded
inputs; every difference between the native RESP layer and the oracle is a crash (reported
with the kind and seed that replay it: `run_case(kind, seed)`).

A *crash* is anything else: an exception escaping into the server loop or its error logs, an
invalid reply, a hang (15 s without an answer), a load that raised something other than
`ReplyError`, a changed registry, a difference of the differential run. The last line is the
summary::

    100000 frames, 10000 libraries, 600000 differential cases, 0 crashes in 1312.4 s

and the exit status is 1 when there were crashes.
"""

from __future__ import annotations

import argparse
import random
import resource
import sys
import time
import traceback
from collections.abc import Callable

from tests.fuzz import (
    Client,
    Registry,
    ServerThread,
    library_code,
    parse_replies,
    random_frame,
    random_library,
    random_prologue,
    register_line,
    resp_differential,
)

#: The query buffer limit of the fuzzed server.
QUERY_BUFFER_LIMIT = 1 << 20
#: How often (frames) the server's health is checked.
HEALTH_EVERY = 1000
#: How many crash descriptions are printed.
SHOWN = 20


class Crashes:
    """Crash descriptions, with the input that caused each."""

    def __init__(self) -> None:
        self.items: list[str] = []

    def add(self, what: str, data: object) -> None:
        self.items.append(f"{what}: {data!r}"[:600])

    def __len__(self) -> int:
        return len(self.items)


def send_frame(port: int, data: bytes, rng: random.Random) -> None:
    """Send one fuzzed frame the way a hostile client might, and check the answer."""
    style = rng.randrange(20)
    client = Client(port)
    try:
        if style == 0:  # slow: a byte at a time (up to 64 bytes, then the rest)
            for byte in data[:64]:
                client.send(bytes([byte]))
            client.send(data[64:])
        elif style == 1:  # gone halfway, with a RST
            client.send(data[: rng.randrange(len(data) + 1)])
            client.reset()
            return
        else:
            client.send(data)
        out, _reset = client.finish()
    except (BrokenPipeError, ConnectionResetError):
        return  # dropped by the server (QUIT, a protocol error, the limit): fine
    finally:
        client.close()
    parse_replies(out)


def fuzz_frames(count: int, rng: random.Random, crashes: Crashes, progress: Progress) -> None:
    with ServerThread(query_buffer_limit=QUERY_BUFFER_LIMIT) as server:
        reported = 0
        for i in range(count):
            data = random_frame(rng)
            try:
                send_frame(server.port, data, rng)
            except TimeoutError:
                crashes.add("hang: no answer in time", data)
            except AssertionError as exc:
                crashes.add(f"invalid answer ({exc})", data)
            except OSError as exc:
                crashes.add(f"socket error {exc!r}", data)
            problems = server.problems
            if len(problems) > reported:
                for problem in problems[reported:]:
                    crashes.add(problem, data)
                reported = len(problems)
            if (i + 1) % HEALTH_EVERY == 0 or i + 1 == count:
                check_health(server, crashes)
                progress("frames", i + 1, count)
        server.wait_for_connections(0)
    for problem in server.problems[reported:]:
        crashes.add(problem, "at shutdown")


def check_health(server: ServerThread, crashes: Crashes) -> None:
    try:
        with Client(server.port) as client:
            if client.call_raw("PING") != b"+PONG\r\n":
                crashes.add("PING not answered with PONG", None)
    except (OSError, ConnectionError) as exc:
        crashes.add(f"server unhealthy: {exc!r}", None)


def fuzz_libraries(count: int, rng: random.Random, crashes: Crashes, progress: Progress) -> None:
    registries = {"rg": Registry("rg"), "tf": Registry("tf")}
    try:
        for i in range(count):
            registry = registries["rg" if i % 2 == 0 else "tf"]
            upgrade = rng.random() < 0.5
            name = "serving" if upgrade else "fresh"
            if rng.random() < 0.15:
                code = library_code(register_line(registry.era), prologue=random_prologue(rng))
            else:
                code = random_library(rng, name, era=registry.era, slow=i % 50 == 0)
            try:
                loaded = registry.load(code, replace=upgrade)
                if loaded is not None:
                    registry.undo(loaded)
                registry.check_unchanged()
            except AssertionError as exc:
                crashes.add(f"library check failed ({exc})", code)
                registries[registry.era] = fresh_registry(registry)
            except Exception:  # noqa: BLE001 - any other exception is exactly what we look for
                crashes.add(f"load raised {traceback.format_exc(limit=3)}", code)
                registries[registry.era] = fresh_registry(registry)
            if (i + 1) % 1000 == 0 or i + 1 == count:
                progress("libraries", i + 1, count)
    finally:
        for registry in registries.values():
            registry.close()


def fuzz_differential(count: int, seed: int, crashes: Crashes, progress: Progress) -> int:
    """`count` cases of each kind through the native RESP layer and its oracle; cases run."""
    step = max(1, min(count, 10_000))
    for kind in resp_differential.CASES:
        for start in range(0, count, step):
            for failure in resp_differential.run(min(step, count - start), seed + start, (kind,)):
                crashes.add("native RESP differs from the oracle", failure)
            progress(f"differential {kind}", min(start + step, count), count)
    return count * len(resp_differential.CASES)


def fresh_registry(old: Registry) -> Registry:
    """After a crash: go on with a new host, so one failure is counted once."""
    old.close()
    return Registry(old.era)


Progress = Callable[[str, int, int], None]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=100_000, help="fuzzed RESP frames")
    parser.add_argument("--libraries", type=int, default=10_000, help="fuzzed libraries")
    parser.add_argument("--differential", type=int, default=100_000,
                        help="native-vs-oracle RESP cases of each kind")
    parser.add_argument("--seed", type=int, default=None, help="random seed (default: random)")
    parser.add_argument("--quiet", action="store_true", help="no progress lines")
    args = parser.parse_args(argv)
    seed = args.seed if args.seed is not None else random.randrange(1 << 32)
    started = time.monotonic()

    def progress(what: str, done: int, total: int) -> None:
        if not args.quiet:
            elapsed = time.monotonic() - started
            print(f"  {what}: {done}/{total} ({elapsed:.1f} s)", file=sys.stderr, flush=True)

    print(f"seed {seed}", file=sys.stderr)
    crashes = Crashes()
    fuzz_frames(args.frames, random.Random(seed), crashes, progress)
    frames_done = time.monotonic()
    fuzz_libraries(args.libraries, random.Random(seed + 1), crashes, progress)
    libraries_done = time.monotonic()
    cases = fuzz_differential(args.differential, seed, crashes, progress)
    elapsed = time.monotonic() - started
    for item in crashes.items[:SHOWN]:
        print(f"CRASH {item}")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
    print(
        f"(frames {frames_done - started:.1f} s, libraries {libraries_done - frames_done:.1f} s,"
        f" differential {elapsed - (libraries_done - started):.1f} s, peak RSS {peak} MiB,"
        f" seed {seed})",
        file=sys.stderr,
    )
    print(
        f"{args.frames} frames, {args.libraries} libraries, {cases} differential cases, "
        f"{len(crashes)} crashes in {elapsed:.1f} s"
    )
    return 1 if crashes.items else 0


if __name__ == "__main__":
    sys.exit(main())
