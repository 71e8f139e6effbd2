"""Stream triggers on the embedded store (SPEC §8): which streams, data, sync/async processing,
windows, errors, trimming, LIST, and positions kept in the store across hosts."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable
from typing import Any

import pytest

from jshost.host import Host
from jshost.host.listing import list_libraries
from jshost.host.requests import ListArgs
from jshost.host.streams import POSITIONS_KEY
from jshost.store import EmbeddedStore


# (body of a consumer registration) per era: name, prefix, window, trim, callback
def consumer(era: str, name: str, prefix: str, callback: str, window: int = 1,
             trim: bool = False) -> str:
    trim_js = "true" if trim else "false"
    if era == "rg":
        return (f"redis.register_stream_consumer('{name}', '{prefix}', {window}, {trim_js}, "
                f"{callback});")
    return (f"redis.registerStreamTrigger('{name}', '{prefix}', {callback}, "
            f"{{window: {window}, isStreamTrimmed: {trim_js}}});")


RECORD = "(c, d) => { c.call('rpush', 'seen:' + d.stream_name, d.id[0] + '-' + d.id[1]); }"


async def until(condition: Callable[[], bool], rounds: int = 100_000) -> None:
    """Let the event loop run (pumps and background jobs are loop callbacks) until `condition`."""
    for _ in range(rounds):
        if condition():
            return
        await asyncio.sleep(0)
    raise AssertionError("condition never became true")


async def waiting(drv: Any, count: int) -> None:
    """Until `count` callbacks wait in the library's `release` list (see RELEASE)."""
    for _ in range(100_000):
        if await drv.fcall("waiting") == count:
            return
        await asyncio.sleep(0)
    raise AssertionError(f"never {count} waiting")


def release_functions(register: str) -> str:
    """JS: callbacks wait on `release`; functions `waiting` and `release` (all of them)."""
    return f"""
        const release = [];
        redis.{register}('waiting', () => release.length);
        redis.{register}('release', () => {{ const n = release.length;
            release.splice(0).forEach((r) => r()); return n; }});"""


def client(drv: Any) -> Any:
    return drv.host.store.open_session()


def seen(s: Any, stream: bytes) -> list[bytes]:
    return s.call([b"LRANGE", b"seen:" + stream, b"0", b"-1"])


def state(drv: Any, stream: bytes, name: str = "c", lib: str = "lib") -> Any:
    return drv.host.libraries[lib].stream_triggers[name].streams.get(stream)


def listing(drv: Any, verbosity: int) -> dict[str, Any]:
    (lib,) = list_libraries(drv.host, drv.era, ListArgs(False, verbosity, "lib"))
    return lib


# --- processing ---------------------------------------------------------------------------------


COLLECT = """
    const ids = {};
    redis.%s('ids', (c, stream) => ids[stream] || []);
"""
COLLECTOR = "(c, d) => { (ids[d.stream_name] ||= []).push(d.id[0] + '-' + d.id[1]); }"


async def test_ten_thousand_entries_each_processed_once_and_trimmed(jh):
    jh.load(COLLECT % jh.api.register + consumer(jh.era, "c", "st:", COLLECTOR, trim=True))
    s = client(jh)
    added: dict[bytes, list[bytes]] = {}
    for i in range(10_000):
        stream = b"st:%d" % (i % 10)
        added.setdefault(stream, []).append(s.call([b"XADD", stream, b"*", b"i", b"%d" % i]))
    for stream, ids in added.items():
        # each once, in order, with the right id
        assert await jh.fcall("ids", stream.decode()) == ids
        assert s.call([b"XLEN", stream]) == 0  # trimmed as each was acknowledged
        st = state(jh, stream)
        assert st.records_processed == 1000 and not st.pending
        assert st.last_read_id == ids[-1].decode()


async def test_ten_thousand_entries_without_trimming_keep_the_stream(rg):
    rg.load(COLLECT % rg.api.register + consumer("rg", "c", "st:", COLLECTOR))
    s = client(rg)
    for i in range(10_000):
        s.call([b"XADD", b"st:%d" % (i % 10), b"*", b"i", b"%d" % i])
    for i in range(10):
        assert len(await rg.fcall("ids", f"st:{i}")) == 1000
        assert s.call([b"XLEN", b"st:%d" % i]) == 1000


async def test_data_argument(jh):
    jh.load(consumer(jh.era, "c", "", """(c, d) => {
        c.call('rpush', 'log', JSON.stringify([typeof d.id[0], typeof d.id[1], String(d.id[0]),
            String(d.id[1]), d.stream_name, d.stream_name_raw.byteLength, d.record,
            d.record_raw.map(([f, v]) => [f.byteLength, v.byteLength])]));
    }"""))
    s = client(jh)
    s.call([b"XADD", b"s", b"5-1", b"foo", b"bar", b"foo", b"baz", b"bin", b"\xff"])
    s.call([b"XADD", b"\xffs", b"7-0", b"k", b"v"])
    assert s.call([b"LRANGE", b"log", b"0", b"-1"]) == [
        (b'["bigint","bigint","5","1","s",1,[["foo","bar"],["foo","baz"],["bin",null]],'
         b'[[3,3],[3,3],[3,1]]]'),
        b'["bigint","bigint","7","0",null,2,[["k","v"]],[[1,1]]]',
    ]


async def test_streams_that_existed_before_are_read_from_the_first_entry(jh):
    s = client(jh)
    for i in range(5):
        s.call([b"XADD", b"old:a", b"*", b"i", b"%d" % i])
    s.call([b"XADD", b"old:b", b"1-1", b"i", b"x"])
    s.call([b"SET", b"old:notastream", b"v"])
    s.call([b"XADD", b"other", b"1-1", b"i", b"x"])
    jh.load(consumer(jh.era, "c", "old:", RECORD))
    await until(lambda: len(seen(s, b"old:a")) == 5 and len(seen(s, b"old:b")) == 1)
    trigger = jh.host.libraries["lib"].stream_triggers["c"]
    assert sorted(trigger.streams) == [b"old:a", b"old:b"]
    assert seen(s, b"other") == []


async def test_writes_by_js_are_processed(jh):
    jh.load(consumer(jh.era, "c", "st:", RECORD) + f"""
        redis.{jh.api.register}('add', (c, k) => c.call('xadd', k, '1-1', 'f', 'v'));""")
    await jh.fcall("add", keys=("st:js",))
    await until(lambda: seen(client(jh), b"st:js") == [b"1-1"])


async def test_callback_adding_to_its_own_stream_is_processed_in_order(jh):
    jh.load(consumer(jh.era, "c", "st:", """(c, d) => {
        c.call('rpush', 'seen:' + d.stream_name, d.id[0] + '-' + d.id[1]);
        if (d.id[0] < 3n) c.call('xadd', d.stream_name, String(d.id[0] + 1n) + '-0', 'f', 'v');
    }"""))
    s = client(jh)
    s.call([b"XADD", b"st:self", b"1-0", b"f", b"v"])
    await until(lambda: len(seen(s, b"st:self")) == 3)
    assert seen(s, b"st:self") == [b"1-0", b"2-0", b"3-0"]


async def test_failed_callback_records_last_error_and_goes_on(jh):
    jh.load(consumer(jh.era, "c", "st:", """(c, d) => {
        if (d.record[0][1] === 'bad') throw new Error('bad entry ' + d.id[0]);
        c.call('rpush', 'seen:' + d.stream_name, d.record[0][1]);
    }""", trim=True))
    s = client(jh)
    for value in (b"1", b"bad", b"2"):
        s.call([b"XADD", b"st:e", b"*", b"v", value])
    assert seen(s, b"st:e") == [b"1", b"2"]
    st = state(jh, b"st:e")
    assert st.records_processed == 3
    assert st.last_error.at(1).startswith("Error: bad entry ")
    assert s.call([b"XLEN", b"st:e"]) == 0  # a failure still lets the stream be trimmed


async def test_async_callback_keeps_at_most_window_entries_in_flight(jh):
    jh.load(consumer(jh.era, "c", "st:", """async (ac, d) => {
        inFlight.push(d.id[0]);
        await new Promise((res) => release.push(res));
        inFlight.splice(inFlight.indexOf(d.id[0]), 1);
        ac.block((c) => c.call('rpush', 'seen:' + d.stream_name, String(d.id[0])));
    }""", window=3, trim=True) + f"""
        const inFlight = [], release = [];
        redis.{jh.api.register}('inflight', () => inFlight.length);
        redis.{jh.api.register}('release', () => {{ const n = release.length;
            release.splice(0).forEach((r) => r()); return n; }});""")
    s = client(jh)
    for i in range(1, 8):
        s.call([b"XADD", b"st:w", b"%d-0" % i, b"f", b"v"])
    st = state(jh, b"st:w")
    await until(lambda: len(st.pending) == 3)
    assert st.pending_ids == ["1-0", "2-0", "3-0"] and st.last_read_id == "3-0"
    released = 0
    while released < 7:
        for _ in range(10_000):  # until every entry in flight has started running
            running = await jh.fcall("inflight")
            if running and running == len(st.pending):
                break
            await asyncio.sleep(0)
        assert 0 < running <= 3
        released += await jh.fcall("release")
        await until(lambda done=released: st.records_processed == done)
    await until(lambda: len(seen(s, b"st:w")) == 7)
    assert sorted(seen(s, b"st:w"), key=int) == [b"%d" % i for i in range(1, 8)]
    await until(lambda: s.call([b"XLEN", b"st:w"]) == 0)  # trimmed by the last pump


async def test_trimming_keeps_what_the_slowest_trigger_has_in_flight(jh):
    jh.load(consumer(jh.era, "fast", "st:", RECORD, trim=True)
            + consumer(jh.era, "slow", "st:", """async (ac, d) => {
                await new Promise((res) => release.push(res)); }""", window=2)
            + release_functions(jh.api.register))
    s = client(jh)
    for i in range(1, 6):
        s.call([b"XADD", b"st:t", b"%d-0" % i, b"f", b"v"])
    slow = state(jh, b"st:t", "slow")
    await waiting(jh, 2)
    # fast acknowledged all 5; slow holds 1-0 and 2-0: nothing below 1-0 is trimmed
    assert slow.pending_ids == ["1-0", "2-0"]
    assert s.call([b"XLEN", b"st:t"]) == 5
    assert await jh.fcall("release") == 2
    await until(lambda: slow.records_processed == 2)
    await waiting(jh, 2)
    assert slow.pending_ids == ["3-0", "4-0"]
    assert [e[0] for e in s.call([b"XRANGE", b"st:t", b"-", b"+"])] == [b"3-0", b"4-0", b"5-0"]
    assert await jh.fcall("release") == 2
    await until(lambda: slow.records_processed == 4)
    await waiting(jh, 1)
    assert await jh.fcall("release") == 1
    await until(lambda: slow.records_processed == 5)
    await until(lambda: s.call([b"XLEN", b"st:t"]) == 0)


async def test_rg_sync_callback_returning_a_promise_counts_as_done(rg):
    rg.load(consumer("rg", "c", "st:", """(c, d) => new Promise((res) => {})"""))
    s = client(rg)
    s.call([b"XADD", b"st:p", b"1-0", b"f", b"v"])
    s.call([b"XADD", b"st:p", b"2-0", b"f", b"v"])
    st = state(rg, b"st:p")
    assert st.records_processed == 2 and not st.pending


async def test_tf_sync_callback_promise_holds_the_entry_until_it_settles(tf):
    tf.load(consumer("tf", "c", "st:", """(c, d) => c.executeAsync(async (ac) => {
                await new Promise((res) => release.push(res));
                if (d.id[0] === 2n) throw 'second failed';
            })""") + release_functions("registerFunction"))
    s = client(tf)
    s.call([b"XADD", b"st:p", b"1-0", b"f", b"v"])
    s.call([b"XADD", b"st:p", b"2-0", b"f", b"v"])
    st = state(tf, b"st:p")
    await waiting(tf, 1)
    assert st.pending_ids == ["1-0"]
    assert await tf.fcall("release") == 1
    await until(lambda: st.pending_ids == ["2-0"])
    await waiting(tf, 1)
    assert await tf.fcall("release") == 1
    await until(lambda: st.records_processed == 2)
    assert st.last_error.at(1) == "second failed"


async def test_deleted_stream_drops_its_state_and_starts_again(jh):
    jh.load(consumer(jh.era, "c", "st:", RECORD))
    s = client(jh)
    s.call([b"XADD", b"st:d", b"5-0", b"f", b"v"])
    assert state(jh, b"st:d").last_read_id == "5-0"
    s.call([b"DEL", b"st:d"])
    assert state(jh, b"st:d") is None
    assert s.call([b"HLEN", POSITIONS_KEY]) == 0
    s.call([b"XADD", b"st:d", b"1-0", b"f", b"v"])  # a lower id: read again from the start
    assert seen(s, b"st:d") == [b"5-0", b"1-0"]


async def test_flushall_drops_positions(jh):
    jh.load(consumer(jh.era, "c", "st:", RECORD))
    s = client(jh)
    s.call([b"XADD", b"st:f", b"5-0", b"f", b"v"])
    s.call([b"FLUSHALL"])
    s.call([b"XADD", b"st:f", b"1-0", b"f", b"v"])
    assert seen(s, b"st:f") == [b"1-0"]  # (the list itself was flushed too)
    assert state(jh, b"st:f").last_read_id == "1-0"


async def test_upgrade_keeps_positions_and_statistics(jh):
    body = consumer(jh.era, "c", "st:", """(c, d) => {
        c.call('rpush', 'seen:' + d.stream_name, '%s' + d.id[0]); }""")
    jh.load(body % "old")
    s = client(jh)
    s.call([b"XADD", b"st:u", b"1-0", b"f", b"v"])
    jh.host.load(jh.code(body % "new"), replace=True, era=jh.era)
    s.call([b"XADD", b"st:u", b"2-0", b"f", b"v"])
    assert seen(s, b"st:u") == [b"old1", b"new2"]
    assert state(jh, b"st:u").records_processed == 2


async def test_deleting_the_library_drops_its_positions(jh):
    jh.load(consumer(jh.era, "c", "st:", RECORD))
    s = client(jh)
    s.call([b"XADD", b"st:x", b"1-0", b"f", b"v"])
    assert s.call([b"HLEN", POSITIONS_KEY]) == 1
    jh.host.delete("lib")
    assert s.call([b"EXISTS", POSITIONS_KEY]) == 0
    jh.load(consumer(jh.era, "c", "st:", RECORD))  # a new consumer starts at the first entry
    await until(lambda: len(seen(s, b"st:x")) == 2)


# --- positions across hosts ---------------------------------------------------------------------


@pytest.mark.parametrize("era", ["rg", "tf"])
async def test_a_new_host_on_the_same_store_resumes_without_loss_or_repeat(era):
    store = EmbeddedStore()
    code = "#!js api_version=1.0 name=lib\n" + consumer(era, "c", "st:", RECORD, window=1)
    s = store.open_session()
    first = Host(store)
    first.load(code, era=era)
    added = [s.call([b"XADD", b"st:r", b"*", b"i", b"%d" % i]) for i in range(50)]
    first.close()  # gone: nothing follows the stream now
    added += [s.call([b"XADD", b"st:r", b"*", b"i", b"%d" % i]) for i in range(50, 80)]
    assert len(seen(s, b"st:r")) == 50
    second = Host(store)
    second.load(code, era=era)  # registration scans, finds the saved position
    await until(lambda: len(seen(s, b"st:r")) == 80)
    assert seen(s, b"st:r") == added
    added.append(s.call([b"XADD", b"st:r", b"*", b"i", b"x"]))
    assert seen(s, b"st:r") == added
    second.close()


# --- LIST (§2.3) --------------------------------------------------------------------------------


async def test_list_rg(rg):
    rg.load(consumer("rg", "c", "st:", """(c, d) => { if (d.id[1] === 1n) throw 'no'; }""",
                     window=2, trim=False))
    s = client(rg)
    s.call([b"XADD", b"st:l", b"1-0", b"f", b"v"])
    s.call([b"XADD", b"st:l", b"1-1", b"f", b"v"])
    assert listing(rg, 0)["stream_consumers"] == ["c"]
    (c1,) = listing(rg, 1)["stream_consumers"]
    assert c1 == {"name": "c", "prefix": b"st:", "window": 2, "trim": "disabled",
                  "num_streams": 1}
    (c2,) = listing(rg, 2)["stream_consumers"]
    (stream,) = c2["streams"]
    assert list(stream) == ["name", "last_processed_time", "avg_processed_time", "last_lag",
                            "avg_lag", "total_record_processed", "id_to_read_from",
                            "last_error"]
    assert stream["name"] == b"st:l" and stream["total_record_processed"] == 2
    assert stream["id_to_read_from"] == "1-1" and stream["last_error"] == "no"
    (c3,) = listing(rg, 3)["stream_consumers"]
    assert c3["streams"][0]["pending_ids"] == []


async def test_list_tf(tf):
    tf.load("redis.registerStreamTrigger('c', 'st:', (c, d) => {}, "
            "{window: 3, isStreamTrimmed: true, description: 'd'});")
    (c1,) = listing(tf, 1)["stream_triggers"]
    assert c1 == {"description": "d", "name": "c", "prefix": b"st:", "trim": True, "window": 3}
    s = client(tf)
    s.call([b"XADD", b"st:l", b"1-0", b"f", b"v"])
    (c2,) = listing(tf, 2)["stream_triggers"]
    assert list(c2) == ["description", "name", "prefix", "streams", "trim", "window"]
    (stream,) = c2["streams"]
    assert list(stream) == ["id_to_read_from", "last_error", "last_lag", "last_processed_time",
                            "name", "pending_ids", "total_lag", "total_processed_time",
                            "total_record_processed"]
    assert stream["id_to_read_from"] == "1-0" and stream["last_error"] is None
    assert stream["pending_ids"] == [] and stream["total_record_processed"] == 1


async def test_list_before_anything_was_read(rg):
    rg.load(consumer("rg", "c", "st:", "(c, d) => {}"))
    s = client(rg)
    s.call([b"XGROUP", b"CREATE", b"st:empty", b"g", b"$", b"MKSTREAM"])
    await until(lambda: state(rg, b"st:empty") is not None)
    (c2,) = listing(rg, 2)["stream_consumers"]
    (stream,) = c2["streams"]
    assert stream["id_to_read_from"] == "None" and stream["last_error"] == "None"
    assert math.isnan(stream["avg_processed_time"])
