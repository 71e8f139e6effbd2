"""Library host: calling functions (SPEC §4.1–§4.5)."""

from __future__ import annotations

import asyncio

import pytest

from jshost.errors import ReplyError
from jshost.host.requests import CallArgs
from jshost.store import EmbeddedStore

CHECK8 = ("The function is declared as async and was called while blocking was not allowed;"
          " note that you cannot invoke async functions from within Lua or MULTI, and you must"
          " use {cmd} instead.")
CAN_NOT_BLOCK = ("Can not block client for background execution, Blocking is not allow inside"
                 " multi/exec, Lua, or within another module (RM_Call).")


class OomStore(EmbeddedStore):
    """An embedded store that reports being over maxmemory while `oom` is set."""

    oom = True

    def is_oom(self) -> bool:
        return self.oom


def call(drv, fn, *words, numkeys=0, asynchronous=False, blocking_allowed=True, lib="lib"):
    """`Host.call` straight: the reply, or an asyncio.Future of it."""
    rest = [w.encode() if isinstance(w, str) else w for w in words]
    return drv.host.call(drv.era, CallArgs(lib, fn, numkeys, rest), asynchronous=asynchronous,
                         blocking_allowed=blocking_allowed)


def call_error(drv, *args, **kw) -> str:
    with pytest.raises(ReplyError) as info:
        call(drv, *args, **kw)
    return info.value.text


async def settle(result):
    return await result if isinstance(result, asyncio.Future) else result


# --- §4.1 checks 3-8, in order ---------------------------------------------------------------

def _check_lib(drv):
    drv.load(f"""
        redis.{drv.api.register}('plain', () => 'ran');
        redis.{drv.api.register}('nw', () => 'ran', {_flags(drv, 'no-writes')});
        redis.{drv.api.register}('oomok', () => 'ran', {_flags(drv, 'allow-oom')});
        redis.{drv.api.register_async}('co', async () => 'ran');
    """)


def _flags(drv, *flags):
    listed = ", ".join(f"'{f}'" for f in flags)
    return f"[{listed}]" if drv.era == "rg" else f"{{flags: [{listed}]}}"


@pytest.mark.parametrize("era", ["rg", "tf"])
async def test_checks_in_order(host_driver, era):
    store = OomStore()
    drv = host_driver(era, store=store)
    _check_lib(drv)
    store.oom = True
    # 3 library, 4 function: before everything else
    assert call_error(drv, "plain", numkeys=5, lib="nolib") == "Unknown library nolib"
    assert call_error(drv, "nofn", numkeys=5) == "Unknown function nofn"
    # 6 OOM, unless no-writes or allow-oom; before the argument count
    assert call_error(drv, "plain", numkeys=5) == "OOM can not run the function when out of memory"
    assert call_error(drv, "co", numkeys=5) == "OOM can not run the function when out of memory"
    # 7 argument count, before 8 (async check)
    not_enough = ("Not enough arguments was given, expected at least 5 arguments,"
                  " got 1 arguments.")
    assert call_error(drv, "nw", "k", numkeys=5) == not_enough
    assert call_error(drv, "oomok", "k", numkeys=5) == not_enough
    assert call(drv, "nw", "k") == b"ran"
    assert call(drv, "oomok", "k") == b"ran"
    store.oom = False
    assert call_error(drv, "co", "k", numkeys=5) == not_enough
    # 8 async-registered under the non-async command
    assert call_error(drv, "co", "k", numkeys=1) == CHECK8.format(cmd=drv.api.async_command)
    assert await settle(call(drv, "co", "k", numkeys=1, asynchronous=True)) == b"ran"
    assert call(drv, "plain") == b"ran"


async def test_numkeys_zero_with_arguments_and_exact_count(rg):
    _check_lib(rg)
    assert call(rg, "plain", "a", "b", numkeys=2) == b"ran"
    assert call(rg, "plain", "a", "b", numkeys=0) == b"ran"
    assert call_error(rg, "plain", "a", "b", numkeys=3) == (
        "Not enough arguments was given, expected at least 3 arguments, got 2 arguments.")


async def test_names_are_case_sensitive(jh):
    jh.load(f"redis.{jh.api.register}('f', () => 1);")
    assert call_error(jh, "F") == "Unknown function F"
    assert call_error(jh, "f", lib="LIB") == "Unknown library LIB"


# --- §4.2 arguments ----------------------------------------------------------------------------

async def test_arguments_are_spread_after_the_client(jh):
    jh.load(f"""
        redis.{jh.api.register}('concat', (client, ...parts) => parts.join('+'));
        redis.{jh.api.register}('shape', function () {{
            return [arguments.length, typeof arguments[0].call,
                    ...Array.prototype.slice.call(arguments, 1).map((a) => typeof a)];
        }});
    """)
    assert await jh.fcall("concat", "a", "b", keys=("k",)) == b"k+a+b"
    assert call(jh, "concat", "k1", "k2", "a", numkeys=2) == b"k1+k2+a"
    assert call(jh, "concat", "k1", "k2", "a", numkeys=0) == b"k1+k2+a"
    assert await jh.fcall("shape", "x", keys=("k",)) == [3, b"function", b"string", b"string"]
    assert await jh.fcall("shape") == [1, b"function"]


async def test_utf8_arguments(jh):
    jh.load(f"redis.{jh.api.register}('echo', (c, a) => [a, a.length]);")
    assert await jh.fcall("echo", "caf\u00e9 \U0001F600") == ["caf\u00e9 \U0001F600".encode(), 7]


@pytest.mark.parametrize("position", ["key", "arg"])
async def test_non_utf8_argument(jh, position):
    jh.load(f"let ran = 0;\nredis.{jh.api.register}('f', () => ++ran);\n"
            f"redis.{jh.api.register_async}('co', async () => ++ran);\n"
            f"redis.{jh.api.register}('ran', () => ran);")
    keys, args = ((b"\xff",), ()) if position == "key" else ((b"ok",), (b"a", b"\xc3"))
    assert await jh.error(jh.host.fcall("lib", "f", keys, args)) == (
        "Can not convert argument to string")
    assert await jh.error(jh.host.fcall_async("lib", "co", keys, args)) == (
        "Can not convert argument to string")
    assert await jh.fcall("ran") == 0  # the function was not called


async def test_raw_arguments(jh):
    jh.load(f"""
        redis.{jh.api.register}('raw', (c, ...args) => args.map(
            (a) => a instanceof ArrayBuffer ? Array.from(new Uint8Array(a)).join(',') : typeof a),
            {_flags(jh, 'raw-arguments')});
        redis.{jh.api.register_async}('raw_co', async (ac, a) => a instanceof ArrayBuffer
            ? a : 'not raw', {_flags(jh, 'raw-arguments')});
    """)
    assert await jh.host.fcall("lib", "raw", (b"\xff\x00",), (b"", b"AB"), era=jh.era) == [
        b"255,0", b"", b"65,66"]
    assert await jh.host.fcall_async("lib", "raw_co", (), (b"\xfe\xff",),
                                     era=jh.era) == b"\xfe\xff"


# --- §4.3 which function runs under which command ---------------------------------------------

async def test_command_table(jh):
    ab = jh.api.allow_block
    jh.load(f"""
        redis.{jh.api.register}('sync', (c) => [c.{ab}(), c.call('ping')]);
        redis.{jh.api.register_async}('async_sync', (c) => [c.{ab}(), c.call('ping')]);
        redis.{jh.api.register_async}('async_async', async (ac) =>
            [typeof ac.call, ac.block((c) => [c.{ab}(), c.call('ping')])]);
    """)
    assert call(jh, "sync") == [False, b"PONG"]
    assert call(jh, "sync", asynchronous=True) == [True, b"PONG"]
    assert call(jh, "sync", asynchronous=True, blocking_allowed=False) == [False, b"PONG"]
    assert call_error(jh, "async_sync") == CHECK8.format(cmd=jh.api.async_command)
    assert call(jh, "async_sync", asynchronous=True) == [True, b"PONG"]  # locked: no future
    assert call(jh, "async_sync", asynchronous=True, blocking_allowed=False) == [False, b"PONG"]
    assert call_error(jh, "async_async") == CHECK8.format(cmd=jh.api.async_command)
    result = call(jh, "async_async", asynchronous=True)
    assert isinstance(result, asyncio.Future) and not result.done()  # runs in the background
    assert await result == [b"undefined", [True, b"PONG"]]


async def test_coroutine_runs_in_the_background(jh):
    """The coroutine is a background job: it has not started when the call returns."""
    jh.load(f"""
        let started = 0;
        redis.{jh.api.register_async}('co', async () => {{ started++; return 'done'; }});
        redis.{jh.api.register}('started', () => started);
    """)
    result = call(jh, "co", asynchronous=True)
    assert call(jh, "started") == 0
    assert await result == b"done"
    assert call(jh, "started") == 1


# --- §4.4 results and promises ---------------------------------------------------------------

async def test_results(jh):
    jh.load(f"""
        redis.{jh.api.register}('value', () => 'v');
        redis.{jh.api.register}('throws', () => {{ throw new Error('bad'); }});
        redis.{jh.api.register}('settled', (c) => (async () => {{ await null; return 'ok'; }})());
        redis.{jh.api.register}('settled_rejected',
            (c) => (async () => {{ await null; throw new TypeError('nope'); }})());
        redis.{jh.api.register}('pending', () => new Promise(() => {{}}));
    """)
    assert call(jh, "value") == b"v"
    assert call_error(jh, "throws") == "Error: bad"
    assert call(jh, "settled") == b"ok"  # settled after the microtasks: an immediate reply
    assert call(jh, "settled", asynchronous=True) == b"ok"
    assert call_error(jh, "settled_rejected") == "TypeError: nope"
    assert call_error(jh, "pending") == CAN_NOT_BLOCK
    assert call_error(jh, "pending", asynchronous=True, blocking_allowed=False) == CAN_NOT_BLOCK
    pending = call(jh, "pending", asynchronous=True)
    assert isinstance(pending, asyncio.Future) and not pending.done()
    pending.cancel()


async def test_pending_promise_reply_arrives_when_it_settles(jh):
    jh.load(f"""
        let waiting = [];
        redis.{jh.api.register}('wait', () => new Promise((res, rej) => waiting.push([res, rej])));
        redis.{jh.api.register}('resolve', (c, v) => {{ waiting.shift()[0](v); return 1; }});
        redis.{jh.api.register}('reject', (c, v) => {{ waiting.shift()[1](new Error(v)); return 1; }});
    """)
    first = call(jh, "wait", asynchronous=True)
    second = call(jh, "wait", asynchronous=True)
    assert call(jh, "resolve", "one") == 1
    assert call(jh, "reject", "two") == 1
    assert await first == b"one"
    assert await jh.error(second) == "Error: two"


async def test_background_work_still_runs_when_blocking_is_refused(jh):
    bg = jh.api.background
    jh.load(f"""
        let waiting = [];
        redis.{jh.api.register_async}('wait', () => new Promise((res) => waiting.push(res)));
        redis.{jh.api.register}('start_bg', (c) => c.{bg}(async (ac) => {{
            ac.block((c2) => c2.call('set', 'bg', 'ran'));
            waiting.forEach((res) => res('background finished'));
        }}));
    """)
    waiter = call(jh, "wait", asynchronous=True)
    assert call_error(jh, "start_bg") == CAN_NOT_BLOCK
    assert await waiter == b"background finished"
    assert jh.host.store.open_session().call([b"GET", b"bg"]) == b"ran"


async def test_microtasks_run_before_the_client_expires(jh):
    jh.load(f"""
        redis.{jh.api.register}('awaits', (c) => (async () => {{
            await null; await 1; await (async () => 2)();
            return c.call('ping');
        }})());
        redis.{jh.api.register}('then', (c) => {{
            (async () => 1)().then(() => c.call('set', 'from_then', 'yes'));
            return 'returned';
        }});
    """)
    assert call(jh, "awaits") == b"PONG"
    assert call(jh, "then") == b"returned"
    assert jh.host.store.open_session().call([b"GET", b"from_then"]) == b"yes"


async def test_rejections_in_jobs_do_not_change_the_reply(jh):
    jh.load(f"redis.{jh.api.register}('f', () => {{"
            f" (async () => {{ throw 'ignored'; }})(); return 'fine'; }});")
    assert call(jh, "f") == b"fine"


# --- §4.5 blocking denied (MULTI/EXEC) ----------------------------------------------------------

async def test_blocking_denied(jh):
    jh.load(f"""
        let ran = 0;
        redis.{jh.api.register}('sync', (c) => c.{jh.api.allow_block}());
        redis.{jh.api.register}('pending', () => new Promise(() => {{}}));
        redis.{jh.api.register_async}('co', async () => {{ ran++; return 'ran'; }});
        redis.{jh.api.register_async}('async_sync', (c) => 'sync body');
        redis.{jh.api.register}('ran', () => ran);
    """)
    denied = {"asynchronous": True, "blocking_allowed": False}
    assert call(jh, "sync", **denied) is False
    assert call_error(jh, "pending", **denied) == CAN_NOT_BLOCK
    assert call_error(jh, "co", **denied) == CAN_NOT_BLOCK
    assert call(jh, "async_sync", **denied) == b"sync body"
    assert call_error(jh, "co", asynchronous=False, blocking_allowed=False) == CHECK8.format(
        cmd=jh.api.async_command)
    assert call(jh, "ran") == 0
    # A coroutine started now runs after anything queued before it: the refused one never ran.
    assert await call(jh, "co", asynchronous=True) == b"ran"
    assert call(jh, "ran") == 1


# --- the RFC story (§4.4) ------------------------------------------------------------------------

async def test_cached_value_story(jh):
    bg = jh.api.background
    jh.load(f"""
        redis.{jh.api.register_async}('cached', function (client, key) {{
            const v = client.call('get', key);
            if (v !== null) return v;
            return client.{bg}(async (ac) => {{
                const computed = 'computed:' + key;
                ac.block((c) => c.call('set', key, computed));
                return computed;
            }});
        }});
    """)
    check8 = CHECK8.format(cmd=jh.api.async_command)
    assert call_error(jh, "cached", "x", numkeys=1) == check8  # miss, non-async command
    miss = call(jh, "cached", "x", numkeys=1, asynchronous=True)
    assert isinstance(miss, asyncio.Future)
    assert await miss == b"computed:x"
    hit = call(jh, "cached", "x", numkeys=1, asynchronous=True)
    assert hit == b"computed:x"  # a hit answers at once, no future
    assert call_error(jh, "cached", "x", numkeys=1) == check8  # hit, non-async command
    assert call_error(jh, "cached", "y", numkeys=1, asynchronous=True,
                      blocking_allowed=False) == CAN_NOT_BLOCK
    assert call(jh, "cached", "x", numkeys=1, asynchronous=True,
                blocking_allowed=False) == b"computed:x"
