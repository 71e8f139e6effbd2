"""The scenarios: what each target runs, how many times, and the reply it must give.

A `Scenario` has one command for redis-server (the anchor: a Lua function of ``libs/bench.lua``
or a plain command) and one for jshost (a JS function of ``libs/bench.js`` or the same plain
command). ``__rand_int__`` is redis-benchmark's random key (``-r``, a 12-digit number); the
reply check replaces it with a fixed key of the same shape.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis

LIBS = Path(__file__).resolve().parent / "libs"
JS_LIBRARY = "bench"
VALUE = "val"
SAMPLE_KEY = "key:000000000042"

#: The targets, in the order each round runs them.
REDIS = "redis"
EMBEDDED = "jshost-embedded"
REMOTE = "jshost-remote"
TARGETS = (REDIS, EMBEDDED, REMOTE)
JSHOST_TARGETS = (EMBEDDED, REMOTE)
#: The database the remote jshost uses on the shared redis-server (direct clients use 0).
REMOTE_DB = 1


@dataclass(frozen=True)
class Scenario:
    """One row group of the results table."""

    key: str  # "1-trivial": the number is the scenario
    title: str
    redis_command: tuple[str, ...] | None  # None: the anchor is `anchor_of`'s redis run
    jshost_command: tuple[str, ...]
    expected: Any
    requests_p16: int
    requests_p1: int
    anchor_of: str | None = None
    latency_probe: bool = False  # also a 1-client run, for the unloaded p50/p99

    @property
    def group(self) -> str:
        return self.key.split("-", 1)[0]

    def command(self, target: str) -> tuple[str, ...] | None:
        return self.redis_command if target == REDIS else self.jshost_command

    def requests(self, pipeline: int) -> int:
        return self.requests_p16 if pipeline > 1 else self.requests_p1


def _rg(*args: str) -> tuple[str, ...]:
    call, function, *rest = args
    return (call, JS_LIBRARY, function, *rest)


_KEYED = ("1", "key:__rand_int__", VALUE)

SCENARIOS: tuple[Scenario, ...] = (
    Scenario(
        "1-trivial", "RG.FCALL hello (a constant) vs Lua FCALL hello",
        ("FCALL", "hello", "0"), _rg("RG.FCALL", "hello", "0"), b"hello", 100_000, 30_000,
    ),
    Scenario(
        "2-setget", "RG.FCALL setget (SET then GET) vs Lua",
        ("FCALL", "setget", *_KEYED), _rg("RG.FCALL", "setget", *_KEYED), VALUE.encode(),
        15_000, 10_000,
    ),
    Scenario(
        "3-set", "SET through jshost vs direct",
        ("SET", "key:__rand_int__", VALUE), ("SET", "key:__rand_int__", VALUE), b"OK",
        40_000, 25_000,
    ),
    Scenario(
        "3-get", "GET through jshost vs direct",
        ("GET", "key:__rand_int__"), ("GET", "key:__rand_int__"), VALUE.encode(),
        50_000, 30_000,
    ),
    Scenario(
        "4-async", "RG.FCALLASYNC asyncwork (await block(SET)) vs Lua SET",
        ("FCALL", "syncwork", *_KEYED), _rg("RG.FCALLASYNC", "asyncwork", *_KEYED), b"OK",
        15_000, 10_000, latency_probe=True,
    ),
    Scenario(
        "4-sync", "RG.FCALL syncwork (the same SET) vs Lua SET",
        None, _rg("RG.FCALL", "syncwork", *_KEYED), b"OK",
        15_000, 10_000, anchor_of="4-async", latency_probe=True,
    ),
)

#: Scenario 5 (scale) parks calls with `park`, counts them with `parked`, frees them with
#: `release`, and measures scenario 1 meanwhile.
PARK = _rg("RG.FCALLASYNC", "park", "0")
PARKED = _rg("RG.FCALL", "parked", "0")
RELEASE = _rg("RG.FCALL", "release", "0")  # + the most to release, as an argument
PARK_REPLY = b"$8\r\nreleased\r\n"


def select(groups: Sequence[str]) -> list[Scenario]:
    """The scenarios of the given groups ("1", "2", ...), in the table's order."""
    return [s for s in SCENARIOS if s.group in groups]


def scaled(scenario: Scenario, factor: float, minimum: int) -> Scenario:
    """`scenario` with its request counts multiplied by `factor` (at least `minimum`)."""
    p16 = max(minimum, int(scenario.requests_p16 * factor))
    p1 = max(minimum, int(scenario.requests_p1 * factor))
    return Scenario(**{**scenario.__dict__, "requests_p16": p16, "requests_p1": p1})


def with_requests(scenario: Scenario, p16: int, p1: int) -> Scenario:
    """`scenario` with fixed request counts."""
    return Scenario(**{**scenario.__dict__, "requests_p16": p16, "requests_p1": p1})


# --- clients and reply checks ------------------------------------------------------------------


def raw_client(port: int, timeout: float = 30.0) -> redis.Redis:
    """A redis-py client that returns replies as the server sent them (no reply callbacks)."""
    client = redis.Redis(
        host="127.0.0.1", port=port, socket_timeout=timeout, lib_name=None, lib_version=None
    )
    client.response_callbacks.clear()
    return client


def sample_command(command: Sequence[str]) -> list[str]:
    """`command` with a fixed key where redis-benchmark would put a random one."""
    return [word.replace("key:__rand_int__", SAMPLE_KEY) for word in command]


def run_once(port: int, command: Sequence[str]) -> Any:
    """Send `command` once; the reply, or the error text as ``("error", text)``."""
    client = raw_client(port)
    try:
        return client.execute_command(*command)
    except redis.ResponseError as exc:
        return ("error", str(exc))
    finally:
        client.close()


def load_js(port: int) -> None:
    """RG.FUNCTION LOAD ``libs/bench.js`` into the jshost on `port`."""
    js = (LIBS / "bench.js").read_text(encoding="utf-8")
    _expect(run_once(port, ["RG.FUNCTION", "LOAD", js]), b"OK", "JS")


def load_libraries(redis_port: int, jshost_ports: Sequence[int]) -> None:
    """FUNCTION LOAD the Lua mirror into redis-server, RG.FUNCTION LOAD the JS into each jshost."""
    lua = (LIBS / "bench.lua").read_text(encoding="utf-8")
    _expect(run_once(redis_port, ["FUNCTION", "LOAD", "REPLACE", lua]), b"benchlua", "Lua")
    for port in jshost_ports:
        load_js(port)


def _expect(got: Any, expected: Any, what: str) -> None:
    if got != expected:
        raise RuntimeError(f"loading the {what} library failed: {got!r}")


def prefill(port: int, keyspace: int, batch: int = 1000) -> None:
    """Set every key redis-benchmark's ``-r keyspace`` can pick to `VALUE` (MSET batches)."""
    client = raw_client(port, timeout=120.0)
    try:
        for start in range(0, keyspace, batch):
            pairs: list[str] = []
            for i in range(start, min(keyspace, start + batch)):
                pairs += [f"key:{i:012d}", VALUE]
            client.execute_command("MSET", *pairs)
    finally:
        client.close()
