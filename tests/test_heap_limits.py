"""JS heap limits (docs/architecture.md, "JS heap limits"): tf's one `v8-maxmemory` budget with
at least 1 MiB charged per library, per-library limits that are what the others leave, the
sticky OOM state and how it clears; rg's fixed `library-maxmemory`; a refused allocation stops
JS uncatchably in both eras."""

from __future__ import annotations

import asyncio

from jshost import errors
from jshost.host.heap import CHARGE_FLOOR
from jshost.host.library import RecordedError

MIB = 1024 * 1024
TERMINATED = errors.EXECUTION_TERMINATED
ENGINE_OOM = errors.JS_ENGINE_OOM

# `hold(n)` keeps about n MiB in a global; `grow` allocates until stopped (and keeps it).
HOG = """
const kept = [];
redis.registerFunction('hold', (c, mib) => {
    for (let i = 0; i < Number(mib) * 16; i++) kept.push(new Float64Array(8192));
    return kept.length;
});
redis.registerFunction('grow', () => { for (;;) kept.push(new Float64Array(8192)); });
redis.registerFunction('caught', () => {
    try { for (;;) kept.push(new Float64Array(8192)); } catch (e) { return 'caught'; }
});
redis.registerFunction('free', () => { kept.length = 0; return 0; });
redis.registerFunction('ok', () => 'ok');
"""
TINY = "redis.registerFunction('f', () => 1);"


async def test_tf_budget_refuses_loads_within_100_tiny_libraries(host_driver) -> None:
    tf = host_driver("tf", v8_maxmemory="20971520")  # RedisGears' own tests use 20 MiB
    for i in range(100):
        try:
            tf.load(TINY, name=f"lib{i}")
        except Exception as exc:  # noqa: BLE001 - the refusal is what is expected
            assert getattr(exc, "text", None) == errors.compile_failed("tf", ENGINE_OOM)
            assert 10 <= i <= 20  # each charged at least 1 MiB, and not much more
            return
    raise AssertionError("100 tiny libraries fit in 20 MiB")


async def test_tf_default_budget_takes_over_100_tiny_libraries(host_driver) -> None:
    tf = host_driver("tf")
    for i in range(101):
        tf.load(TINY, name=f"lib{i}")
    assert len(tf.host.libraries) == 101
    heap = tf.host.limits.heap
    assert heap.tf_charged() >= 101 * CHARGE_FLOOR


async def test_tf_limit_is_what_the_others_leave(host_driver) -> None:
    tf = host_driver("tf", v8_maxmemory=str(24 * MIB))
    tf.load(HOG, name="a")
    tf.load(HOG, name="b")
    assert await tf.fcall("hold", "10", lib="a") == 160
    # b may take what a leaves (24 - ~10 MiB), not more
    assert await tf.fcall("hold", "8", lib="b") == 128
    assert await tf.fcall("free", lib="b") == 0
    assert await tf.fcall_error("hold", "16", lib="b") == TERMINATED
    # a stop at the shared limit: the OOM state, for every tf library, while memory is held
    assert await tf.fcall_error("ok", lib="a") == ENGINE_OOM
    assert tf.load_error(TINY, name="c") == errors.compile_failed("tf", ENGINE_OOM)
    tf.host.delete("b")  # its memory goes: the next call clears the state
    assert await tf.fcall("ok", lib="a") == b"ok"
    assert not tf.host.limits.heap.oom


async def test_tf_oom_state_stops_triggers_and_stream_entries(host_driver) -> None:
    tf = host_driver("tf", v8_maxmemory=str(16 * MIB))
    tf.load(HOG, name="hog")
    tf.load("""
        redis.registerKeySpaceTrigger('t', 'k', (c, d) => { c.call('set', 'seen', '1'); });
        redis.registerStreamTrigger('s', 'st', (c, d) => { c.call('set', 'read', '1'); });
        redis.registerFunction('f', () => 1);
    """, name="trig")
    assert await tf.fcall_error("grow", lib="hog") == TERMINATED
    assert tf.host.limits.heap.oom
    session = tf.host.session(0)
    outsider = tf.host.store.open_session()  # a client, not JS: its writes fire triggers
    outsider.call([b"SET", b"k1", b"v"])
    outsider.call([b"XADD", b"st", b"1-1", b"f", b"v"])
    for _ in range(50):  # the stream pump is a loop callback
        await asyncio.sleep(0)
    stats = tf.host.libraries["trig"].keyspace_triggers["t"].stats
    assert (stats.num_triggered, stats.num_failed) == (1, 1)
    assert stats.last_error == RecordedError(ENGINE_OOM, ENGINE_OOM)
    state = tf.host.libraries["trig"].stream_triggers["s"].streams[b"st"]
    assert state.records_processed == 1 and state.last_error is not None
    assert state.last_error.text == ENGINE_OOM
    assert session.call([b"GET", b"seen"]) is None and session.call([b"GET", b"read"]) is None
    assert await tf.fcall_error("f", lib="trig") == ENGINE_OOM
    tf.host.delete("hog")
    assert await tf.fcall("f", lib="trig") == 1


async def test_oom_is_not_catchable(host_driver) -> None:
    tf = host_driver("tf", v8_maxmemory=str(16 * MIB))
    tf.load(HOG, name="hog")
    assert await tf.fcall_error("caught", lib="hog") == TERMINATED


async def test_rg_limit_is_fixed_and_leaves_no_state(host_driver) -> None:
    rg = host_driver("rg", library_maxmemory="16mb")
    hog = HOG.replace("registerFunction", "register_function")
    rg.load(hog, name="hog")
    assert await rg.fcall_error("grow", lib="hog") == TERMINATED
    assert await rg.fcall_error("caught", lib="hog") == TERMINATED
    assert await rg.fcall("ok", lib="hog") == b"ok"  # no global OOM state in rg
    assert not rg.host.limits.heap.oom
    assert rg.load_error("const a = []; for (;;) a.push(new Float64Array(8192));\n"
                         "redis.register_function('f', () => 1);", name="other") == (
        f"Failed loading library: {TERMINATED}.")


def test_engine_stop_on_oom() -> None:
    """The binding: with `stop_on_oom`, a caught refusal still stops JS, `out_of_memory` says
    why, and the next entry runs normally; without it the error stays catchable."""
    from jshost._engine import JSTerminated, Runtime

    grow = "try { const a = []; for (;;) a.push(new Float64Array(8192)); } catch (e) { 'caught' }"
    rt = Runtime(memory_limit=4 * MIB, stop_on_oom=True)
    try:
        rt.eval(grow)
    except JSTerminated:
        assert rt.out_of_memory
    else:
        raise AssertionError("not stopped")
    assert rt.eval("1 + 1") == 2 and not rt.out_of_memory
    assert rt.heap_size > 0
    rt.set_memory_limit(0)
    assert Runtime(memory_limit=4 * MIB).eval(grow) == "caught"
