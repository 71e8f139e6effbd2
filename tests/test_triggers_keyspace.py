"""Keyspace triggers on the embedded store (SPEC §7): matching, data, sync/async runs, muting,
tf onTriggerFired, statistics in LIST (§2.3), timeouts."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable
from typing import Any

import pytest
from listeners import EventCallback

from jshost.errors import EXECUTION_TERMINATED
from jshost.host.listing import list_libraries
from jshost.host.requests import ListArgs

REGISTER = {"rg": "register_notifications_consumer", "tf": "registerKeySpaceTrigger"}


def reg(drv: Any) -> str:
    return f"redis.{REGISTER[drv.era]}"


def client(drv: Any) -> Any:
    """A client session of the driver's store (what a connection would use)."""
    return drv.host.store.open_session()


def listing(drv: Any, verbosity: int = 1) -> dict[str, Any]:
    (lib,) = list_libraries(drv.host, drv.era, ListArgs(False, verbosity, "lib"))
    return lib


def trigger_map(drv: Any, name: str, verbosity: int = 1) -> dict[str, Any]:
    field = "notifications_consumers" if drv.era == "rg" else "keyspace_triggers"
    return next(t for t in listing(drv, verbosity)[field] if t["name"] == name)


async def until(condition: Callable[[], bool], rounds: int = 10_000) -> None:
    """Let the event loop run (background jobs are loop callbacks) until `condition` holds."""
    for _ in range(rounds):
        if condition():
            return
        await asyncio.sleep(0)
    raise AssertionError("condition never became true")


def stats(drv: Any, name: str = "t") -> Any:
    return drv.host.libraries["lib"].keyspace_triggers[name].stats


# --- §7.3 sync callbacks: atomic with the write, before its reply --------------------------------


async def test_sync_trigger_stamps_before_the_reply(jh):
    jh.load(f"""
        {reg(jh)}('t', 'user:', (c, d) => {{
            if (d.event === 'hset') c.call('hset', d.key, '__last_updated__', String(Date.now()));
        }});""")
    s = client(jh)
    for i in range(100):
        assert s.call([b"HSET", b"user:%d" % i, b"name", b"n"]) == 1
        # The very next command of the same client sees the stamp: done before the reply.
        stamped = s.call([b"HGET", b"user:%d" % i, b"__last_updated__"])
        assert stamped is not None and int(stamped) > 0
    st = stats(jh)
    assert (st.num_triggered, st.num_finished, st.num_success, st.num_failed) == (100, 100, 100, 0)


async def test_data_and_client(jh):
    allow = jh.api.allow_block
    jh.load(f"""
        {reg(jh)}('t', 'k', (c, d) => {{
            c.call('rpush', 'log', JSON.stringify([d.event, d.key, typeof d.key_raw,
                d.key_raw instanceof ArrayBuffer, d.key_raw.byteLength, c.{allow}()]));
        }});""")
    s = client(jh)
    s.call([b"SET", b"k1", b"v"])
    s.call([b"INCRBY", b"k2", b"5"])
    s.call([b"DEL", b"k1"])
    assert s.call([b"LRANGE", b"log", b"0", b"-1"]) == [
        b'["set","k1","object",true,2,true]',
        b'["incrby","k2","object",true,2,true]',
        b'["del","k1","object",true,2,true]',
    ]


async def test_prefix_filtering_is_a_byte_prefix(jh):
    jh.load(f"""
        const note = (name) => (c, d) => {{ c.call('rpush', 'log:' + name, d.key); }};
        {reg(jh)}('a', 'a:', note('a'));
        {reg(jh)}('star', 'a:*', note('star'));
        {reg(jh)}('all', '', note('all'));
        {reg(jh)}('buf', new Uint8Array([0x62, 0x3a]).buffer, note('buf'));""")
    s = client(jh)
    for key in (b"a:1", b"a:*x", b"b:2", b"ab", b"a"):
        s.call([b"SET", key, b"v"])
    log = {name: s.call([b"LRANGE", b"log:" + name, b"0", b"-1"])
           for name in (b"a", b"star", b"all", b"buf")}
    assert log == {
        b"a": [b"a:1", b"a:*x"],
        b"star": [b"a:*x"],  # `*` is not a wildcard
        b"all": [b"a:1", b"a:*x", b"b:2", b"ab", b"a"],
        b"buf": [b"b:2"],
    }


async def test_binary_key_has_null_key_and_raw_bytes(jh):
    raw = jh.api.call_raw
    jh.load(f"""
        {reg(jh)}('t', new Uint8Array([0xff]).buffer, (c, d) => {{
            c.call('set', 'key-was', String(d.key));
            c.call('set', 'raw-was', d.key_raw);
            c.call('set', 'raw-back', c.{raw}('get', d.key_raw));
        }});""")
    s = client(jh)
    key = b"\xff\xfebinary"
    s.call([b"SET", key, b"value"])
    assert s.call([b"GET", b"key-was"]) == b"null"
    assert s.call([b"GET", b"raw-was"]) == key
    assert s.call([b"GET", b"raw-back"]) == b"value"


async def test_keymiss_and_lazy_expiry_fire(jh):
    jh.load(f"""{reg(jh)}('t', 'e', (c, d) => {{ c.call('rpush', 'log', d.event + ' ' + d.key); }});""")
    s = client(jh)
    s.call([b"GET", b"e:none"])
    s.call([b"SET", b"e:gone", b"v", b"PXAT", b"1"])  # expired already, kept until looked up
    assert s.call([b"GET", b"e:gone"]) is None
    assert s.call([b"LRANGE", b"log", b"0", b"-1"]) == [
        b"keymiss e:none", b"set e:gone", b"expire e:gone", b"expired e:gone",
        b"keymiss e:gone"]


async def test_active_expiry_fires_expired(jh):
    jh.load(f"""{reg(jh)}('t', 'ttl:', (c, d) => {{
        if (d.event === 'expired') c.call('set', 'was-expired', d.key);
    }});""")
    store = jh.host.store
    expired = asyncio.Event()
    listener = store.listener

    def spy(session: Any, db: int, event: bytes, key: bytes) -> None:
        listener.on_event(session, db, event, key)
        if event == b"expired":
            expired.set()

    store.set_listener(EventCallback(spy, like=listener))
    s = client(jh)
    s.call([b"SET", b"ttl:x", b"v", b"PX", b"5"])
    await asyncio.wait_for(expired.wait(), 5)  # the store's expiry timer, no client access
    assert s.call([b"GET", b"was-expired"]) == b"ttl:x"


async def test_writes_by_js_do_not_fire(jh):
    jh.load(f"""
        {reg(jh)}('t', 'w', (c, d) => {{ c.call('incr', 'w:count:' + d.key); }});
        redis.{jh.api.register}('write', (c, k) => c.call('set', k, 'v'));""")
    assert await jh.fcall("write", keys=("w",)) == b"OK"  # a function's write: muted
    s = client(jh)
    assert stats(jh).num_triggered == 0
    s.call([b"SET", b"wx", b"1"])  # the trigger's own INCR (w:count:wx) does not fire it again
    assert stats(jh).num_triggered == 1
    assert s.call([b"MGET", b"w:count:wx", b"w:count:w:count:wx"]) == [b"1", None]


async def test_block_writes_do_not_fire(jh):
    jh.load(f"""
        {reg(jh)}('t', 'k', (c, d) => {{ c.call('incr', 'fired'); }});
        redis.{jh.api.register_async}('bg', async (ac, k) => ac.block((c) => c.call('set', k, '1')));
    """)
    assert await jh.fcall_async("bg", keys=("k1",)) == b"OK"
    assert client(jh).call([b"GET", b"fired"]) is None


async def test_libraries_fire_in_registration_order(jh):
    for name in ("zz", "aa", "mm"):
        jh.load(f"""{reg(jh)}('t', 'o', (c, d) => {{ c.call('rpush', 'order', '{name}'); }});""",
                name=name)
    s = client(jh)
    s.call([b"SET", b"o", b"1"])
    assert s.call([b"LRANGE", b"order", b"0", b"-1"]) == [b"zz", b"aa", b"mm"]


async def test_a_throwing_trigger_leaves_the_reply_alone(jh):
    jh.load(f"""{reg(jh)}('t', '', (c, d) => {{ throw new Error('boom'); }});""")
    s = client(jh)
    assert s.call([b"SET", b"k", b"v"]) == b"OK"
    assert s.call([b"GET", b"k"]) == b"v"
    st = stats(jh)
    assert (st.num_triggered, st.num_finished, st.num_success, st.num_failed) == (1, 1, 0, 1)
    assert st.last_error.at(1) == "Error: boom"


@pytest.mark.parametrize("era", ["rg", "tf"])
async def test_trigger_timeout_is_a_failure(host_driver, era):
    drv = host_driver(era, lock_redis_timeout="100")
    drv.load(f"""{reg(drv)}('t', 'loop', (c, d) => {{ while (true) {{}} }});""")
    s = client(drv)
    assert s.call([b"SET", b"loop", b"v"]) == b"OK"
    st = stats(drv)
    assert (st.num_finished, st.num_failed) == (1, 1)
    assert st.last_error.at(1) == EXECUTION_TERMINATED
    assert s.call([b"GET", b"loop"]) == b"v"


# --- pending promises and async callbacks ------------------------------------------------------


async def test_sync_trigger_returning_a_pending_promise_ends_when_it_settles(jh):
    bg = jh.api.background
    jh.load(f"""
        {reg(jh)}('t', 'p', (c, d) => c.{bg}(async (ac) => {{
            await null;
            ac.block((s) => s.call('set', 'done', d.key));
        }}));""")
    s = client(jh)
    s.call([b"SET", b"p1", b"v"])
    st = stats(jh)
    assert (st.num_triggered, st.num_finished) == (1, 0)
    await until(lambda: st.num_finished == 1)
    assert st.num_success == 1
    assert s.call([b"GET", b"done"]) == b"p1"


async def test_async_trigger_runs_in_the_background_and_may_block(jh):
    jh.load(f"""
        {reg(jh)}('t', 'a', async (ac, d) => {{
            await null;
            const n = ac.block((c) => c.call('incr', 'count'));
            ac.block((c) => c.call('rpush', 'log', d.event + ' ' + d.key + ' ' + n));
            if (d.key === 'a:bad') throw 'bad key';
        }});""")
    s = client(jh)
    s.call([b"SET", b"a:1", b"v"])
    assert s.call([b"GET", b"count"]) is None  # not yet: it runs after the reply
    s.call([b"SET", b"a:bad", b"v"])
    st = stats(jh)
    await until(lambda: st.num_finished == 2)
    assert (st.num_triggered, st.num_success, st.num_failed) == (2, 1, 1)
    assert st.last_error.at(1) == "bad key"
    assert s.call([b"LRANGE", b"log", b"0", b"-1"]) == [b"set a:1 1", b"set a:bad 2"]
    # the block() writes of an async trigger are muted too
    assert s.call([b"GET", b"count"]) == b"2" and stats(jh).num_triggered == 2


# --- tf onTriggerFired --------------------------------------------------------------------------


async def test_on_trigger_fired_runs_first_with_a_no_writes_client(tf):
    tf.load("""
        redis.registerKeySpaceTrigger('t', 'k', (c, d) => {
            c.call('set', 'seen', JSON.stringify([d.value, d.writeError]));
        }, {onTriggerFired: (c, d) => {
            d.value = c.call('get', d.key);   // the state at the event
            try { c.call('set', 'x', '1'); } catch (e) { d.writeError = e; }
        }});""")
    s = client(tf)
    s.call([b"SET", b"k", b"hello"])
    assert s.call([b"GET", b"seen"]) == (
        b'["hello","ERR Write command \'set\' was called while write is not allowed."]')
    assert s.call([b"GET", b"x"]) is None


async def test_on_trigger_fired_throwing_fails_the_run(tf):
    tf.load("""
        redis.registerKeySpaceTrigger('t', 'k', (c, d) => { c.call('set', 'main-ran', '1'); },
            {onTriggerFired: (c, d) => { if (d.key === 'kbad') throw new Error('refused'); }});""")
    s = client(tf)
    assert s.call([b"SET", b"kbad", b"v"]) == b"OK"
    assert s.call([b"GET", b"main-ran"]) is None
    st = stats(tf)
    assert (st.num_trigger if hasattr(st, "num_trigger") else st.num_triggered,
            st.num_finished, st.num_failed) == (1, 1, 1)
    s.call([b"SET", b"kgood", b"v"])
    assert s.call([b"GET", b"main-ran"]) == b"1"
    m = trigger_map(tf, "t")
    assert (m["num_trigger"], m["num_success"], m["num_failed"]) == (2, 1, 1)
    assert m["last_error"] == "Error: refused"


async def test_on_trigger_fired_data_reaches_an_async_callback(tf):
    tf.load("""
        redis.registerKeySpaceTrigger('t', 'k', async (ac, d) => {
            ac.block((c) => c.call('set', 'got', d.before + '/' + d.event));
        }, {onTriggerFired: (c, d) => { d.before = c.call('get', d.key); }});""")
    s = client(tf)
    s.call([b"SET", b"k", b"v1"])
    s.call([b"SET", b"k", b"v2"])  # the async run reads later; onTriggerFired saw v1
    await until(lambda: stats(tf).num_finished == 2)
    assert s.call([b"GET", b"got"]) == b"v2/set"


# --- statistics in LIST (§2.3) ------------------------------------------------------------------


async def test_list_fields_rg(rg):
    rg.load("""redis.register_notifications_consumer('t', 'k', (c, d) => {
        if (d.key === 'kbad') throw new Error('nope');
    });""")
    m = trigger_map(rg, "t")
    assert list(m) == ["name", "num_triggered", "num_finished", "num_success", "num_failed",
                       "last_error", "last_exection_time", "total_exection_time",
                       "avg_exection_time"]
    assert m["last_error"] == "None" and math.isnan(m["avg_exection_time"])
    s = client(rg)
    s.call([b"SET", b"k", b"v"])
    s.call([b"SET", b"kbad", b"v"])
    m = trigger_map(rg, "t")
    assert (m["num_triggered"], m["num_finished"], m["num_success"], m["num_failed"]) == (2, 2, 1, 1)
    assert m["last_error"] == "Error: nope"
    assert m["avg_exection_time"] == m["total_exection_time"] / 2
    assert listing(rg, 0)["notifications_consumers"] == ["t"]
    # error-verbosity 2: the stack, worked out when LIST runs
    rg.host.settings.set("redisgears_2.error-verbosity", "2")
    assert trigger_map(rg, "t")["last_error"].startswith("Error: nope|    at ")


async def test_list_fields_tf(tf):
    tf.load("""redis.registerKeySpaceTrigger('t', 'k', (c, d) => {
        if (d.key === 'kbad') throw 'nope';
    }, {description: 'stamps'});""")
    m = trigger_map(tf, "t")
    assert list(m) == ["description", "last_error", "last_execution_time", "name", "num_failed",
                       "num_finished", "num_success", "num_trigger", "total_execution_time"]
    assert m["last_error"] is None and m["description"] == "stamps"
    s = client(tf)
    s.call([b"SET", b"kbad", b"v"])
    m = trigger_map(tf, "t")
    assert (m["num_trigger"], m["num_failed"], m["last_error"]) == (1, 1, "nope")


async def test_upgrade_keeps_counters_and_takes_the_new_callback_and_prefix(jh):
    body = """{reg}('t', '{prefix}', (c, d) => {{ c.call('rpush', 'log', '{tag}' + d.key); }});"""
    jh.load(body.format(reg=reg(jh), prefix="a", tag="old:"))
    s = client(jh)
    s.call([b"SET", b"a1", b"v"])
    jh.host.load(jh.code(body.format(reg=reg(jh), prefix="b", tag="new:")), replace=True,
                 era=jh.era)
    s.call([b"SET", b"a2", b"v"])
    s.call([b"SET", b"b1", b"v"])
    assert s.call([b"LRANGE", b"log", b"0", b"-1"]) == [b"old:a1", b"new:b1"]
    assert stats(jh).num_triggered == 2


async def test_deleted_library_stops_firing(jh):
    jh.load(f"""{reg(jh)}('t', '', (c, d) => {{ c.call('incr', 'n'); }});""")
    s = client(jh)
    s.call([b"SET", b"k", b"v"])
    jh.host.delete("lib")
    s.call([b"SET", b"k", b"v"])
    assert s.call([b"GET", b"n"]) == b"1"


@pytest.mark.parametrize("era", ["rg", "tf"])
async def test_transaction_events_fire_in_order(host_driver, era):
    drv = host_driver(era)
    drv.load(f"""{reg(drv)}('t', 'm', (c, d) => {{ c.call('rpush', 'log', d.event + ' ' + d.key); }});""")
    s = client(drv)
    s.call([b"MULTI"])
    s.call([b"SET", b"m1", b"v"])
    s.call([b"LPUSH", b"m2", b"a"])
    s.call([b"DEL", b"m1"])
    s.call([b"EXEC"])
    assert s.call([b"LRANGE", b"log", b"0", b"-1"]) == [b"set m1", b"lpush m2", b"del m1"]


async def test_the_store_is_listened_to_only_while_a_trigger_exists(rg):
    store = rg.host.store
    assert store.listener is None  # the embedded store then works out no events
    rg.load(f"""redis.{rg.api.register}('f', () => 1);""", name="plain")
    assert store.listener is None
    rg.load(f"""{reg(rg)}('t', '', (c, d) => {{}});""")
    assert store.listener is not None
    rg.host.delete("lib")
    assert store.listener is None
