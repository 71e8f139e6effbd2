"""Library host: promises, coroutines, background work and scale (SPEC §3.7, §4.3, §4.4, §4.9)."""

from __future__ import annotations

import asyncio
import time

from jshost.host.requests import CallArgs


def start(drv, fn, *args, keys=()):
    """Start an async call; the future of its reply (the call itself returns at once)."""
    words = [w.encode() if isinstance(w, str) else w for w in (*keys, *args)]
    result = drv.host.call(drv.era, CallArgs("lib", fn, len(keys), words), asynchronous=True)
    assert isinstance(result, asyncio.Future)
    return result


WAITERS = """
let waiting = [];
redis.{areg}('wait', async (ac, tag) => {{
    const value = await new Promise((res) => waiting.push(res));
    return tag + ':' + value;
}});
redis.{reg}('release', (c, value) => {{
    const n = waiting.length;
    waiting.forEach((res) => res(value));
    waiting = [];
    return n;
}});
redis.{reg}('waiting', () => waiting.length);
redis.{reg}('incr', (c, key) => c.call('incr', key));
"""


async def test_many_coroutines_pending_while_sync_calls_run(jh):
    """1 000 coroutines wait on one library while 10 000 sync calls run; then all settle."""
    jh.load(WAITERS.format(reg=jh.api.register, areg=jh.api.register_async))
    began = time.monotonic()
    pending = [start(jh, "wait", str(i)) for i in range(1000)]
    probe = start(jh, "wait", "probe")
    while await jh.fcall("waiting") < 1001:  # until every coroutine has reached its await
        await asyncio.sleep(0)
    for i in range(10_000):
        assert await jh.fcall("incr", keys=("counter",)) == i + 1
    assert not any(f.done() for f in pending) and not probe.done()
    assert await jh.fcall("release", "go") == 1001
    results = await asyncio.gather(*pending)
    assert results == [f"{i}:go".encode() for i in range(1000)]
    assert await probe == b"probe:go"
    assert await jh.fcall("waiting") == 0
    lib = jh.host.libraries["lib"]
    assert (lib.inflight, lib.pending_jobs) == (0, 0)
    assert time.monotonic() - began < 30


async def test_coroutines_interleave(jh):
    jh.load(f"""
        const log = [];
        redis.{jh.api.register_async}('step', async (ac, name) => {{
            log.push(name + '1');
            await new Promise((res) => res());  // a background job in between
            log.push(name + '2');
            return log.join(' ');
        }});
    """)
    a, b = start(jh, "step", "a"), start(jh, "step", "b")
    assert await a == b"a1 b1 a2"
    assert await b == b"a1 b1 a2 b2"


async def test_coroutine_rejected_before_any_await(jh):
    jh.load(f"redis.{jh.api.register_async}('f', async () => {{ throw new Error('at once'); }});\n"
            f"redis.{jh.api.register_async}('g', async () => {{ throw 'plain'; }});")
    assert await jh.fcall_async_error("f") == "Error: at once"
    assert await jh.fcall_async_error("g") == "plain"


async def test_coroutine_awaits_block_and_background_chain(jh):
    bg = jh.api.background
    jh.load(f"""
        redis.{jh.api.register_async}('chain', async (ac, key) => {{
            const n1 = ac.block((c) => c.call('incr', key));
            await new Promise((res) => res());
            const n2 = ac.block((c) => c.call('incr', key));
            return [n1, n2, await (async () => 'tail')()];
        }});
        redis.{jh.api.register_async}('nested_background', (c) => c.{bg}(async (ac) =>
            ac.block((c2) => c2.{bg}(async (ac2) => ac2.block((c3) => c3.call('ping'))))));
    """)
    assert await jh.fcall_async("chain", keys=("k",)) == [1, 2, b"tail"]
    assert await jh.fcall_async("nested_background") == b"PONG"


async def test_block_holds_the_lock_only_inside(jh):
    jh.load(f"""
        redis.{jh.api.register_async}('f', async (ac) => {{
            const inside = ac.block((c) => c.{jh.api.allow_block}());
            await null;
            return inside;
        }});
    """)
    assert await jh.fcall_async("f") is True
    assert not jh.host.section.held


async def test_other_calls_run_while_a_coroutine_waits(jh):
    jh.load(WAITERS.format(reg=jh.api.register, areg=jh.api.register_async))
    waiter = start(jh, "wait", "w")
    while await jh.fcall("waiting") < 1:
        await asyncio.sleep(0)
    assert await jh.fcall("incr", keys=("k",)) == 1
    assert await jh.fcall_async("incr", keys=("k",)) == 2
    assert not waiter.done()
    assert await jh.fcall("release", "now") == 1
    assert await waiter == b"w:now"


async def test_two_libraries_are_independent(host_driver):
    drv = host_driver("rg", lock_redis_timeout="100")
    drv.load("redis.register_function('a', () => 'a');", name="one")
    drv.load("redis.register_function('b', () => 'b');\n"
             "redis.register_function('loop', () => { while (true) {} });", name="two")
    assert await drv.fcall("a", lib="one") == b"a"
    assert await drv.fcall_error("loop", lib="two") == (
        "Err Execution was terminated due to OOM or timeout")
    assert await drv.fcall("a", lib="one") == b"a"
    assert await drv.fcall("b", lib="two") == b"b"
    assert drv.host.libraries["one"].runtime is not drv.host.libraries["two"].runtime


async def test_deleted_library_with_pending_coroutine_frees_nothing_early(jh):
    """A pending coroutine keeps its runtime open after the library is deleted."""
    jh.load(WAITERS.format(reg=jh.api.register, areg=jh.api.register_async))
    waiter = start(jh, "wait", "w")
    while await jh.fcall("waiting") < 1:
        await asyncio.sleep(0)
    lib = jh.host.libraries["lib"]
    jh.host.delete("lib")
    assert not lib.runtime.closed
    assert not waiter.done()
    waiter.cancel()


async def test_retired_library_closes_when_its_work_is_done(rg):
    rg.load("redis.register_async_function('bg', (c) => c.run_on_background(async () => 'done'));")
    pending = start(rg, "bg")
    lib = rg.host.libraries["lib"]
    rg.host.delete("lib")
    assert await pending == b"done"
    # closing happens in a callback after the reply: wait for it without sleeping blindly
    for _ in range(100):
        if lib.runtime.closed:
            break
        await asyncio.sleep(0)
    assert lib.runtime.closed
