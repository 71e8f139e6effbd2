"""jshost's own limits on what a library may cost (docs/security.md).

- `max-reply-size`: a value leaving JS (a function's reply, the words of a `client.call`) is
  charged per value and per byte while it is converted, and refused past the limit; the
  conversion also stops at the deadline.
- `library-max-pending-jobs`, the memory charge of queued jobs, and the background queue's
  bounded share of each loop pass (jshost/host/jobs.py).
- `library-max-code-size` and `js-maxmemory`.

Each test fails on the code before these limits: the values convert (slowly, at great memory
cost), the floods grow without bound, the setting names are unknown.
"""

from __future__ import annotations

from typing import Any

import pytest
from conftest import HostDriver
from server_fixture import RawClient, library, running_server, wait_until

from jshost import errors
from jshost._engine import ELEMENT_COST, Runtime
from jshost.engine import JSTerminated
from jshost.errors import LimitErrors
from jshost.host import jobs
from jshost.host.jobs import JobQueue
from jshost.host.scheduler import JOB_COST
from jshost.replies import Status
from jshost.settings import Settings

pytestmark = pytest.mark.timeout(120)

MIB = 2**20


def too_large(limit: int) -> str:
    return LimitErrors.VALUE_TOO_LARGE.format(limit=limit, cost=ELEMENT_COST)


BOMBS = """
redis.register_function('tree', (c, n) => {
  let x = []; for (let i = 0; i < +n; i++) x = [x, x]; return x;
});
redis.register_function('zeros', (c, n) => new Array(+n).fill(0));
redis.register_function('text', (c, n) => 'x'.repeat(+n));
redis.register_function('bytes', (c, n) => new ArrayBuffer(+n));
redis.register_function('set_text', (c, n) => c.call('set', 'k', 'x'.repeat(+n)));
redis.register_function('catch_set_text', (c, n) => {
  try { c.call('set', 'k', 'x'.repeat(+n)); return 'sent'; } catch (e) { return String(e); }
});
redis.register_async_function('resolve_text', async (c, n) => 'x'.repeat(+n));
redis.register_function('exists', (c) => c.call('exists', 'k'));
"""


# --- max-reply-size -----------------------------------------------------------------------------


async def test_shared_references_21_deep_fail_fast(host_driver: Any) -> None:
    """`x = [x, x]` 21 times is 4 million arrays once expanded: refused after the first quarter
    million or so, with memory to match, not 5 s and 636 MB. (A generous lock limit: what stops
    it here is the size, however loaded the machine.)"""
    drv = host_driver("rg", lock_redis_timeout="20000")
    drv.load(BOMBS)
    assert await drv.fcall_error("tree", "21") == too_large(64 * MIB)
    assert await drv.fcall("tree", "2") == [[[], []], [[], []]]


async def test_forty_million_zeros_fail_before_any_is_converted(host_driver: Any) -> None:
    """(A generous lock limit: filling the array is not what this is about.)"""
    drv = host_driver("rg", lock_redis_timeout="20000")
    drv.load(BOMBS)
    assert await drv.fcall_error("zeros", "40000000") == too_large(64 * MIB)


async def test_a_300_mb_string_reply_is_refused(host_driver: Any) -> None:
    """(A generous lock limit: building the string is not what this is about.)"""
    drv = host_driver("rg", lock_redis_timeout="20000")
    drv.load(BOMBS)
    assert await drv.fcall_error("text", str(300 * MIB)) == too_large(64 * MIB)


@pytest.mark.parametrize(("fn", "size"), [("text", 2 * MIB), ("bytes", 2 * MIB), ("zeros", 5000)])
async def test_replies_over_the_limit_are_refused(host_driver: Any, fn: str, size: int) -> None:
    drv = host_driver("rg", max_reply_size="1mb")
    drv.load(BOMBS)
    assert await drv.fcall_error(fn, str(size)) == too_large(MIB)


async def test_replies_under_the_limit_pass(host_driver: Any) -> None:
    drv = host_driver("rg", max_reply_size="1mb")
    drv.load(BOMBS)
    assert await drv.fcall("text", str(MIB // 2)) == b"x" * (MIB // 2)
    assert await drv.fcall("zeros", "1000") == [0] * 1000


async def test_a_resolved_value_is_limited_too(host_driver: Any) -> None:
    drv = host_driver("rg", max_reply_size="1mb")
    drv.load(BOMBS)
    assert await drv.fcall_async_error("resolve_text", str(2 * MIB)) == too_large(MIB)


async def test_client_call_words_are_limited(host_driver: Any) -> None:
    """The words JS passes to `client.call` are one value leaving JS: refused past the limit,
    as an error JS can catch; uncaught, it is the reply."""
    drv = host_driver("rg", max_reply_size="1mb")
    drv.load(BOMBS)
    assert await drv.fcall("catch_set_text", str(2 * MIB)) == f"Error: {too_large(MIB)}".encode()
    assert await drv.fcall_error("set_text", str(2 * MIB)) == too_large(MIB)
    assert await drv.fcall("exists") == 0
    assert await drv.fcall("set_text", "10") == b"OK"


async def test_config_set_moves_the_limit(host_driver: Any) -> None:
    drv = host_driver("rg", max_reply_size="1mb")
    drv.load(BOMBS)
    assert await drv.fcall_error("text", str(2 * MIB)) == too_large(MIB)
    drv.host.settings.set("redisgears_2.max-reply-size", "4mb")
    assert await drv.fcall("text", str(2 * MIB)) == b"x" * (2 * MIB)


async def test_a_conversion_stops_at_the_deadline(host_driver: Any) -> None:
    """With the size limit out of the way, converting two million arrays takes longer than the
    lock's limit: the conversion itself stops at the deadline."""
    drv = host_driver("rg", max_reply_size="4gb", lock_redis_timeout="100")
    drv.load(BOMBS)
    assert await drv.fcall_error("tree", "20") == errors.EXECUTION_TERMINATED
    assert await drv.fcall("tree", "1") == [[], []]


def test_conversions_both_ways_stop_at_the_deadline() -> None:
    """A deadline already past: a short value still crosses (the deadline is polled every 1024
    values), a long one stops the conversion, out of JS and into it. (No JS code runs here:
    only property reads and writes, which convert.)"""
    rt = Runtime()
    rt.eval("globalThis.big = new Array(5000).fill(0); globalThis.small = [1, 2];")
    g = rt.globals
    rt.set_deadline(0)
    assert g.get("small") == [1.0, 2.0]
    with pytest.raises(JSTerminated):
        g.get("big")
    g.set("x", [0] * 10)
    with pytest.raises(JSTerminated):
        g.set("x", [0] * 5000)
    with pytest.raises(JSTerminated):
        g.set("x", {str(i): i for i in range(5000)})
    rt.set_deadline(None)
    assert len(g.get("big")) == 5000


def test_runtime_value_limit_counts_values_and_bytes() -> None:
    rt = Runtime()
    rt.set_value_limit(10 * ELEMENT_COST, "too big")
    assert rt.eval("[1, 2, 3]") == [1.0, 2.0, 3.0]  # 4 values
    with pytest.raises(ValueError, match="too big"):
        rt.eval("[1, 2, 3, 4, 5, 6, 7, 8, 9, 10]")  # 11 values
    with pytest.raises(ValueError, match="too big"):
        rt.eval(f"'x'.repeat({10 * ELEMENT_COST})")
    assert rt.eval(f"'x'.repeat({9 * ELEMENT_COST})") == "x" * (9 * ELEMENT_COST)
    rt.set_value_limit(0)
    assert len(rt.eval("new Array(1000).fill(0)")) == 1000


# --- background jobs ---------------------------------------------------------------------------

FLOOD = """
var refused = [];
function spawn() {
  for (let i = 0; i < 2; i++) {
    try { new Promise((resolve) => resolve()).then(spawn); }
    catch (e) { if (refused.length < 3) refused.push(e); }
  }
}
redis.register_function('flood', () => { spawn(); return 'started'; });
redis.register_function('refused', () => refused);
redis.register_function('many', (c, n) => {
  for (let i = 0; i < +n; i++) new Promise((resolve) => resolve(i));
  return 'queued';
});
redis.register_function('ping', () => 'pong');
"""


async def test_a_job_flood_is_capped_and_commands_are_served() -> None:
    """A promise callback that queues two more of itself: the library's queue stays at
    `library-max-pending-jobs`, JS sees the refusal, every other client is served meanwhile,
    and deleting the library ends the flood."""
    settings = Settings({"library-max-pending-jobs": "500"})
    async with running_server(settings=settings) as server:
        host = server.host
        client = await RawClient.connect(server.port)
        other = await RawClient.connect(server.port)
        try:
            assert await client.call("RG.FUNCTION", "LOAD", library(FLOOD, "flood")) == Status(
                b"OK")
            lib = host.libraries["flood"]
            assert await client.call("RG.FCALL", "flood", "flood", "0") == b"started"
            most = 0
            for _ in range(50):  # the flood goes on; other clients are answered all along
                assert await other.call("PING") == Status(b"PONG")
                assert await other.call("RG.FCALL", "flood", "ping", "0") == b"pong"
                most = max(most, lib.pending_jobs)
                assert lib.pending_jobs <= 500
            assert most > 0
            refused = LimitErrors.TOO_MANY_JOBS.format(name="flood", limit=500).encode()
            assert await other.call("RG.FCALL", "flood", "refused", "0") == [refused] * 3
            assert await client.call("RG.FUNCTION", "DEL", "flood") == Status(b"OK")

            async def drained() -> bool:
                return lib.pending_jobs == 0 and lib.runtime.closed

            await wait_until(drained, what="the deleted library's jobs to drain")
        finally:
            await client.close()
            await other.close()


async def test_queued_jobs_count_against_the_library_memory(host_driver: Any) -> None:
    """Each queued job is charged `JOB_COST` bytes: a sync function that queues 100 000 jobs
    in a 16 MiB library is stopped as any allocation past the limit is."""
    drv = host_driver("rg", library_maxmemory="16mb", library_max_pending_jobs="1000000")
    drv.load(FLOOD)
    assert await drv.fcall_error("many", "100000") == errors.EXECUTION_TERMINATED
    lib = drv.host.libraries["lib"]
    assert 0 < lib.pending_jobs <= 16 * MIB // JOB_COST
    assert lib.runtime.memory_usage()["external_size"] == lib.pending_jobs * JOB_COST

    async def ran() -> bool:  # the jobs run, and give their charge back
        return lib.pending_jobs == 0

    await wait_until(ran, what="the queued jobs to run")
    assert lib.runtime.memory_usage()["external_size"] == 0
    assert await drv.fcall("ping") == b"pong"


def test_runtime_charge_shares_the_memory_limit() -> None:
    rt = Runtime(memory_limit=16 * MIB)
    assert rt.charge(15 * MIB)
    assert not rt.charge(2 * MIB)  # over the limit: nothing charged
    with pytest.raises(Exception, match="out of memory"):
        rt.eval("new ArrayBuffer(2 * 1024 * 1024)")
    rt.release(15 * MIB)
    assert rt.eval("new ArrayBuffer(2 * 1024 * 1024).byteLength") == 2 * MIB


class FakeLoop:
    """`call_soon` that only records, and a clock the jobs advance."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.callbacks: list[Any] = []
        self.now = 0.0
        monkeypatch.setattr(jobs.time, "monotonic", lambda: self.now)

    def call_soon(self, callback: Any) -> None:
        self.callbacks.append(callback)

    def run_pass(self) -> None:
        ready, self.callbacks = self.callbacks, []
        for callback in ready:
            callback()


def test_a_pass_runs_jobs_for_its_share_then_yields(monkeypatch: pytest.MonkeyPatch) -> None:
    loop = FakeLoop(monkeypatch)
    queue = JobQueue(loop.call_soon)
    ran: list[int] = []

    def job(i: int) -> Any:
        def run() -> None:
            ran.append(i)
            loop.now += jobs.SHARE / 4  # each job uses a quarter of the share
        return run

    for i in range(10):
        queue.add("lib", job(i))
    loop.run_pass()
    assert ran == [0, 1, 2, 3]  # then the loop serves clients
    assert len(loop.callbacks) == 1 and len(queue) == 6
    loop.run_pass()
    assert ran == list(range(8))
    loop.run_pass()
    assert ran == list(range(10)) and not loop.callbacks and len(queue) == 0


def test_jobs_queued_by_jobs_wait_for_the_next_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    loop = FakeLoop(monkeypatch)
    queue = JobQueue(loop.call_soon)
    ran: list[str] = []

    def spawner() -> None:
        ran.append("first")
        queue.add("lib", lambda: ran.append("second"))

    queue.add("lib", spawner)
    loop.run_pass()
    assert ran == ["first"]
    loop.run_pass()
    assert ran == ["first", "second"]


def test_libraries_take_turns(monkeypatch: pytest.MonkeyPatch) -> None:
    """A library that floods its queue delays its own jobs, not another library's."""
    loop = FakeLoop(monkeypatch)
    queue = JobQueue(loop.call_soon)
    ran: list[str] = []
    for i in range(5):
        queue.add("flood", lambda i=i: ran.append(f"flood{i}"))
    queue.add("quiet", lambda: ran.append("quiet"))
    loop.run_pass()
    assert ran[:3] == ["flood0", "quiet", "flood1"]


# --- library-max-code-size ----------------------------------------------------------------------


async def test_code_over_the_size_limit_is_refused_before_compiling(host_driver: Any) -> None:
    drv = host_driver("rg", library_max_code_size="1024")
    body = "redis.register_function('f', () => 1);\n"
    drv.load(body)
    big = drv.code(body + "//" + "x" * 2000)
    assert drv.load_error(big, raw=True) == LimitErrors.CODE_TOO_LARGE.format(
        size=len(big), limit=1024)
    assert await drv.fcall("f") == 1  # the library loaded before is untouched


def test_code_size_counts_utf8_bytes(host_driver: Any) -> None:
    drv = host_driver("rg", library_max_code_size="1024")
    code = drv.code("redis.register_function('f', () => 1);\n//" + "\u00e9" * 500)
    assert len(code) < 1024 < len(code.encode())
    assert drv.load_error(code, raw=True) == LimitErrors.CODE_TOO_LARGE.format(
        size=len(code.encode()), limit=1024)


def test_a_200_mb_library_is_refused_at_once(rg: HostDriver) -> None:
    code = rg.code("redis.register_function('f', () => 1);\n//" + "x" * (200 * MIB))
    assert rg.load_error(code, raw=True) == LimitErrors.CODE_TOO_LARGE.format(
        size=len(code), limit=16 * MIB)
    assert rg.host.libraries == {}


async def test_a_big_load_is_refused_by_its_header() -> None:
    """Over a socket, a LOAD whose code is announced bigger than the limit is answered as soon
    as its bulk header arrives, and the connection closes (the code cannot be skipped unread):
    nothing of it is buffered or waited for."""
    size = 200 * MIB
    header = b"*3\r\n$11\r\nRG.FUNCTION\r\n$4\r\nLOAD\r\n$%d\r\n" % size
    async with running_server() as server:
        client = await RawClient.connect(server.port)
        try:
            await client.send(header)
            expected = LimitErrors.CODE_TOO_LARGE.format(size=size, limit=16 * MIB)
            assert await client.read_until_closed() == b"-" + expected.encode() + b"\r\n"
        finally:
            await client.close()
        other = await RawClient.connect(server.port)  # small libraries still load
        try:
            assert await other.call("RG.FUNCTION", "LOAD", library(FLOOD, "small")) == Status(
                b"OK")
        finally:
            await other.close()


# --- js-maxmemory ---------------------------------------------------------------------------------

HOG = """
var kept = [];
redis.register_function('hold', (c, mb) => {
  for (let i = 0; i < +mb; i++) kept.push(new ArrayBuffer(1024 * 1024));
  return kept.length;
});
"""


async def test_all_libraries_together_stay_under_js_maxmemory(host_driver: Any) -> None:
    """Each library is under its own `library-maxmemory` (48 MiB), but together they may not
    pass `js-maxmemory` (64 MiB)."""
    drv = host_driver("rg", library_maxmemory="48mb", js_maxmemory="64mb")
    drv.load(HOG, name="a")
    drv.load(HOG, name="b")
    assert await drv.fcall("hold", "40", lib="a") == 40
    assert await drv.fcall_error("hold", "40", lib="b") == errors.EXECUTION_TERMINATED
    assert drv.host.engine.budget.used <= 64 * MIB + 2 * MIB  # (the out-of-memory reserve)
    drv.host.delete("a")  # its memory goes back to the pool
    assert await drv.fcall("hold", "20", lib="b") > 0


async def test_js_maxmemory_zero_is_no_limit(host_driver: Any) -> None:
    drv = host_driver("rg", library_maxmemory="48mb", js_maxmemory="0")
    drv.load(HOG, name="a")
    drv.load(HOG, name="b")
    assert await drv.fcall("hold", "40", lib="a") == 40
    assert await drv.fcall("hold", "40", lib="b") == 40

