"""Library host: the sync and async clients, their misuse, commands from JS, timeouts
(SPEC §4.6–§4.12, §5)."""

from __future__ import annotations

import asyncio

import pytest

from jshost.host.requests import CallArgs

TERMINATED = "Err Execution was terminated due to OOM or timeout"
NOT_BYTES = "Failed consuming arguments. Can not convert value into bytes buffer."

# Returns what `f` throws as [typeof, value], or ['returned', value].
CATCH = ("const catching = (f) => { try { return ['returned', f()]; }"
         " catch (e) { return [typeof e, typeof e === 'string' ? e : String(e)]; } };\n")


def thrown(text: str) -> list[bytes]:
    return [b"string", text.encode()]


# --- §4.11 misuse catalogue ---------------------------------------------------------------------

async def test_captured_sync_client_later(jh):
    bg, ab = jh.api.background, jh.api.allow_block
    jh.load(CATCH + f"""
        let saved;
        redis.{jh.api.register}('capture', (c) => {{ saved = c; return 'kept'; }});
        redis.{jh.api.register}('use_in_later_call', () => catching(() => saved.call('ping')));
        redis.{jh.api.register}('raw_in_later_call',
            () => catching(() => saved.{jh.api.call_raw}('ping')));
        redis.{jh.api.register}('allow_block_expired', () => catching(() => saved.{ab}()));
        redis.{jh.api.register}('background_expired',
            () => catching(() => saved.{bg}(async () => 1)));
        redis.{jh.api.register_async}('use_in_block',
            async (ac) => ac.block(() => catching(() => saved.call('ping'))));
        redis.{jh.api.register_async}('use_in_background',
            async (ac) => {{ await null; return catching(() => saved.call('ping')); }});
        redis.{jh.api.register_async}('use_in_then', (c) =>
            new Promise((res) => res(1)).then(() => catching(() => c.call('ping'))));
        redis.{jh.api.register_async}('own_in_background', (c) =>
            c.{bg}(async () => catching(() => c.call('ping'))));
    """)
    assert await jh.fcall("capture") == b"kept"
    assert await jh.fcall("use_in_later_call") == thrown("Used on invalid client")
    assert await jh.fcall("raw_in_later_call") == thrown("Used on invalid client")
    assert await jh.fcall("allow_block_expired") == thrown("Used on invalid client")
    assert await jh.fcall("background_expired") == thrown(
        f"Called '{bg}' out of context")
    assert await jh.fcall_async("use_in_block") == thrown("Used on invalid client")
    assert await jh.fcall_async("use_in_background") == thrown("Main thread is not locked")
    assert await jh.fcall_async("use_in_then") == thrown("Main thread is not locked")
    assert await jh.fcall_async("own_in_background") == thrown("Main thread is not locked")


async def test_not_locked_is_checked_before_validity(jh):
    """Argument types, then the lock, then the client (§4.10)."""
    jh.load(CATCH + f"""
        let saved;
        redis.{jh.api.register}('capture', (c) => {{ saved = c; return 1; }});
        redis.{jh.api.register_async}('bad_args_in_background',
            async () => {{ await null; return catching(() => saved.call('set', 'k', 5)); }});
    """)
    await jh.fcall("capture")
    assert await jh.fcall_async("bad_args_in_background") == thrown(NOT_BYTES)


async def test_block_misuse(jh):
    jh.load(CATCH + f"""
        let savedAsync;
        redis.{jh.api.register_async}('keep', async (ac) => {{ savedAsync = ac; return 1; }});
        redis.{jh.api.register}('block_in_sync_fn',
            () => catching(() => savedAsync.block(() => 1)));
        redis.{jh.api.register_async}('block_in_block',
            async (ac) => ac.block(() => catching(() => ac.block(() => 1))));
        redis.{jh.api.register_async}('block_number', async (ac) => catching(() => ac.block(5)));
        redis.{jh.api.register_async}('block_nothing', async (ac) => catching(() => ac.block()));
        redis.{jh.api.register}('no_block_on_sync_client', (c) => typeof c.block);
    """)
    assert await jh.fcall_async("keep") == 1
    assert await jh.fcall("block_in_sync_fn") == thrown("Main thread is already blocked")
    assert await jh.fcall_async("block_in_block") == thrown("Main thread is already blocked")
    assert await jh.fcall_async("block_number") == thrown(
        "Argument to 'block' must be a function")
    assert await jh.fcall_async("block_nothing") == thrown(
        "Argument to 'block' must be a function")
    assert await jh.fcall("no_block_on_sync_client") == b"undefined"


async def test_background_misuse(jh):
    bg = jh.api.background
    jh.load(CATCH + f"""
        redis.{jh.api.register}('sync_fn', (c) => catching(() => c.{bg}(() => 1)));
        redis.{jh.api.register}('not_fn', (c) => catching(() => c.{bg}(5)));
        redis.{jh.api.register}('async_fn_ok', (c) => {{
            const p = c.{bg}(async () => 1); return typeof p.then; }});
    """)
    assert await jh.fcall("sync_fn") == thrown(f"First argument to '{bg}' must be an async function")
    assert await jh.fcall("not_fn") == thrown(f"First argument to '{bg}' must be an async function")
    assert await jh.fcall("async_fn_ok") == b"function"


async def test_async_client_has_no_call(jh):
    jh.load(f"redis.{jh.api.register_async}('f', async (ac) => {{"
            f" try {{ ac.call('ping'); }} catch (e) {{ return [e instanceof TypeError, typeof e]; }}"
            f" }});")
    assert await jh.fcall_async("f") == [True, b"object"]


# --- §4.6 call arguments -------------------------------------------------------------------------

@pytest.mark.parametrize("expression", [
    "c.call('expire', 'k', 5)",
    "c.call('set', 'k', true)",
    "c.call('set', 'k', null)",
    "c.call('set', 'k', undefined)",
    "c.call('set', 'k', {})",
    "c.call('set', 'k', ['v'])",
    "c.call('set', 'k', 5n)",
    "c.call('set', 'k', new Uint8Array([65]))",
    "c.call('set', 'k', new Number(1))",
    "c.call(5)",
    "c.call()",
])
async def test_call_argument_types_refused(jh, expression):
    jh.load(CATCH + f"redis.{jh.api.register}('f', (c) => catching(() => {expression}));")
    assert await jh.fcall("f") == thrown(NOT_BYTES)


async def test_call_argument_types_accepted(jh):
    jh.load(f"""
        redis.{jh.api.register}('f', (c) => {{
            c.call(new String('set'), new String('k1'), 'v1');
            c.call('set', 'k2', new Uint8Array([104, 255]).buffer);
            c.call('expire', 'k1', '5');
            return [c.call('get', 'k1'), c.{jh.api.call_raw}('get', 'k2'), c.call('ttl', 'k1')];
        }});
    """)
    assert await jh.fcall("f") == [b"v1", b"h\xff", 5]


# --- §4.10 / §5 commands from JS ---------------------------------------------------------------

@pytest.mark.parametrize(("expression", "text"), [
    ("c.call('multi')", "ERR command 'multi' is not allowed on script mode"),
    ("c.call('rg.fcall', 'lib', 'f', '0')", "ERR command 'rg.fcall' is not allowed on script mode"),
    ("c.call('TFCALL', 'lib.f', '0')", "ERR command 'tfcall' is not allowed on script mode"),
    ("c.call('rg.function', 'list')", "ERR command 'rg.function' is not allowed on script mode"),
    ("c.call('eval', 'return 1', '0')", "ERR command 'eval' is not allowed on script mode"),
    ("c.call('config', 'get', 'x')", "ERR command 'config|get' is not allowed on script mode"),
    ("c.call('set')", "ERR wrong number of arguments for 'set' command"),
    ("c.call('multi', 'extra')", "ERR wrong number of arguments for 'multi' command"),
    ("c.call('nosuchcmd', 'a')", "ERR unknown command 'nosuchcmd', with args beginning with: 'a' "),
    ("(c.call('set', 's', 'v'), c.call('lpush', 's', 'x'))",
     "WRONGTYPE Operation against a key holding the wrong kind of value"),
])
async def test_command_errors_are_thrown_as_strings(jh, expression, text):
    jh.load(f"""
        redis.{jh.api.register}('f', (c) => {{
            try {{ {expression}; return 'no error'; }}
            catch (e) {{ return [typeof e, e instanceof Error, e.message === undefined, e]; }}
        }});
    """)
    assert await jh.fcall("f") == [b"string", False, True, text.encode()]


async def test_uncaught_command_error_is_the_reply(jh):
    jh.load(f"redis.{jh.api.register}('f', (c) => c.call('lpush'));")
    assert await jh.fcall_error("f") == "ERR wrong number of arguments for 'lpush' command"


async def test_no_writes(jh):
    nw = "['no-writes']" if jh.era == "rg" else "{flags: ['no-writes']}"
    jh.load(CATCH + f"""
        redis.{jh.api.register}('write', (c) => catching(() => c.call('set', 'k', 'v')), {nw});
        redis.{jh.api.register}('read', (c) => catching(() => c.call('get', 'k')), {nw});
        redis.{jh.api.register}('arity_first', (c) => catching(() => c.call('set')), {nw});
        redis.{jh.api.register_async}('write_in_block', async (ac) =>
            ac.block((c) => catching(() => c.call('incr', 'n'))), {nw});
        redis.{jh.api.register}('allowed', (c) => c.call('set', 'k', 'v'));
    """)
    assert await jh.fcall("write") == thrown(
        "ERR Write command 'set' was called while write is not allowed.")
    assert await jh.fcall("read") == [b"returned", None]
    assert await jh.fcall("arity_first") == thrown(
        "ERR wrong number of arguments for 'set' command")
    assert await jh.fcall_async("write_in_block") == thrown(
        "ERR Write command 'incr' was called while write is not allowed.")
    assert await jh.fcall("allowed") == b"OK"


async def test_call_never_blocks(jh):
    jh.load(f"redis.{jh.api.register}('f', (c) => c.call('blpop', 'empty', '0'));")
    assert await jh.fcall("f") is None


async def test_call_and_call_raw(jh):
    jh.load(f"""
        redis.{jh.api.register}('f', (c) => {{
            c.call('set', 'k', 'v');
            const a = c.call('get', 'k'), b = c.{jh.api.call_raw}('get', 'k');
            const s = c.{jh.api.call_raw}('ping');
            return [typeof a, b instanceof ArrayBuffer, s instanceof ArrayBuffer,
                    typeof c.call('incr', 'n')];
        }});
    """)
    assert await jh.fcall("f") == [b"string", True, True, b"bigint"]


async def test_commands_run_in_the_callers_database(rg):
    rg.load("redis.register_function('set', (c, k, v) => c.call('set', k, v));\n"
            "redis.register_function('get', (c, k) => c.call('get', k));")
    assert await rg.host.fcall("lib", "set", ["k"], ["in db 3"], db=3) == b"OK"
    assert await rg.host.fcall("lib", "get", ["k"], db=3) == b"in db 3"
    assert await rg.host.fcall("lib", "get", ["k"]) is None


# --- §4.8 block -----------------------------------------------------------------------------------

async def test_block(jh):
    ab = jh.api.allow_block
    jh.load(CATCH + f"""
        let inner;
        const marker = {{ marker: true }};
        redis.{jh.api.register_async}('value', async (ac) => {{
            const v = ac.block((c) => {{ inner = c; return [c.{ab}(), c.call('ping')]; }});
            return [...v, catching(() => inner.call('ping'))[1]];
        }});
        redis.{jh.api.register_async}('rethrow', async (ac) => {{
            try {{ ac.block(() => {{ throw marker; }}); }} catch (e) {{ return e === marker; }}
        }});
        redis.{jh.api.register_async}('promise', async (ac) => {{
            const p = (async () => 'inner')();
            return [ac.block(() => p) === p, await p];
        }});
        redis.{jh.api.register_async}('sync_return', async (ac) => {{
            const log = [];
            ac.block(() => log.push('in block'));
            log.push('after block');
            return log;
        }});
    """)
    assert await jh.fcall_async("value") == [True, b"PONG", b"Main thread is not locked"]
    assert await jh.fcall_async("rethrow") is True
    assert await jh.fcall_async("promise") == [True, b"inner"]
    assert await jh.fcall_async("sync_return") == [b"in block", b"after block"]


async def test_block_uses_the_function_flags(jh):
    nw = "['no-writes']" if jh.era == "rg" else "{flags: ['no-writes']}"
    jh.load(f"redis.{jh.api.register_async}('f', async (ac) =>"
            f" ac.block((c) => c.call('set', 'k', 'v')), {nw});")
    assert await jh.fcall_async_error("f") == (
        "ERR Write command 'set' was called while write is not allowed.")


async def test_block_refused_when_oom(host_driver):
    from jshost.store import EmbeddedStore

    class OomStore(EmbeddedStore):
        def is_oom(self) -> bool:
            return self.oom

    store = OomStore()
    store.oom = False
    rg = host_driver("rg", store=store)
    rg.load(CATCH + """
        redis.register_async_function('f', async (ac) => { await null;
            return catching(() => ac.block(() => 'locked')); });
        redis.register_async_function('g', async (ac) => { await null;
            return catching(() => ac.block(() => 'locked')); }, ['allow-oom']);
    """)
    pending_f = rg.host.call("rg", CallArgs("lib", "f", 0, []), asynchronous=True)
    pending_g = rg.host.call("rg", CallArgs("lib", "g", 0, []), asynchronous=True)
    store.oom = True  # the coroutines start later, on an OOM store
    assert await pending_f == thrown("Can not lock Redis, OOM Can not lock redis for write")
    assert await pending_g == [b"returned", b"locked"]


async def test_block_after_delete(jh):
    jh.load(CATCH + f"redis.{jh.api.register_async}('f', (c) =>"
            f" c.{jh.api.background}(async (ac) => catching(() => ac.block(() => 1))));")
    pending = jh.host.call(jh.era, CallArgs("lib", "f", 0, []), asynchronous=True)
    jh.host.delete("lib")
    assert await pending == thrown("Function were unregistered")


# --- §4.9 run_on_background / executeAsync ---------------------------------------------------

async def test_background_job(jh):
    bg = jh.api.background
    jh.load(f"""
        const marker = {{ m: 1 }};
        redis.{jh.api.register_async}('follows', (c) => c.{bg}(async (ac) =>
            ac.block((c2) => c2.call('ping'))));
        redis.{jh.api.register_async}('follows_promise', (c) => c.{bg}(async () =>
            (async () => {{ await null; return 'nested'; }})()));
        redis.{jh.api.register_async}('rejects', (c) => c.{bg}(async () => {{ throw 'job failed'; }}));
        redis.{jh.api.register_async}('not_started', (c) => {{
            let started = false;
            c.{bg}(async () => {{ started = true; }});
            return started;
        }});
    """)
    assert await jh.fcall_async("follows") == b"PONG"
    assert await jh.fcall_async("follows_promise") == b"nested"
    assert await jh.fcall_async_error("rejects") == "job failed"
    assert await jh.fcall_async("not_started") is False


async def test_background_job_stopped_on_its_first_call(host_driver):
    for era in ("rg", "tf"):
        drv = host_driver(era, lock_redis_timeout="100")
        bg = drv.api.background
        drv.load(f"""
            redis.{drv.api.register_async}('loop', (c) => c.{bg}(async () => {{ while (true) {{}} }}));
            redis.{drv.api.register_async}('caught', (c) => c.{bg}(async () => {{ while (true) {{}} }})
                .catch((e) => 'caught: ' + e));
            redis.{drv.api.register}('ok', () => 'ok');
        """)
        assert await drv.fcall_async_error("loop") == TERMINATED
        assert await drv.fcall_async("caught") == f"caught: {TERMINATED}".encode()
        assert await drv.fcall("ok") == b"ok"


# --- §4.10 tf callAsync ---------------------------------------------------------------------------

async def test_call_async_settles_in_a_job(tf):
    tf.load("""
        redis.registerAsyncFunction('f', (c) => {
            let settled = false;
            const p = c.callAsync('ping');
            p.then(() => { settled = true; });
            return (async () => { await null; await null; return [settled, p instanceof Object]; })();
        });
        redis.registerAsyncFunction('value', (c) => c.callAsync('ping'));
        redis.registerAsyncFunction('raw', (c) => c.callAsyncRaw('ping')
            .then((v) => v instanceof ArrayBuffer));
        redis.registerAsyncFunction('refused', (c) => c.callAsync('multi')
            .then(() => 'resolved', (e) => ['rejected', typeof e, e]));
        redis.registerAsyncFunction('wrongtype', (c) => {
            c.call('set', 's', 'v');
            return c.callAsync('lpush', 's', 'x');
        });
        redis.registerAsyncFunction('bad_args', (c) => {
            try { c.callAsync('set', 'k', 5); } catch (e) { return e; }
        });
    """)
    assert await tf.fcall_async("f") == [False, True]
    assert await tf.fcall_async("value") == b"PONG"
    assert await tf.fcall_async("raw") is True
    assert await tf.fcall_async("refused") == [
        b"rejected", b"string", b"ERR command 'multi' is not allowed on script mode"]
    assert await tf.fcall_async_error("wrongtype") == (
        "WRONGTYPE Operation against a key holding the wrong kind of value")
    assert await tf.fcall_async("bad_args") == NOT_BYTES.encode()


async def test_call_async_blocking_command(tf):
    tf.load("""
        redis.registerAsyncFunction('pop', async (ac, key) =>
            await ac.block((c) => c.callAsync('blpop', key, '0')));
        redis.registerAsyncFunction('pop_raw', (c, key) => c.callAsyncRaw('blpop', key, '0')
            .then((v) => [v[0] instanceof ArrayBuffer, v[1]]));
        redis.registerFunction('push', (c, key, v) => c.call('rpush', key, v));
    """)
    first = asyncio.ensure_future(tf.fcall_async("pop", keys=("q1",)))
    second = asyncio.ensure_future(tf.fcall_async("pop_raw", keys=("q2",)))
    lib = tf.host.libraries["lib"]
    while len(lib.pending_async_calls) < 2:
        await asyncio.sleep(0)
    assert sorted(lib.pending_async_calls) == ["blpop q1 0", "blpop q2 0"]
    assert not first.done() and not second.done()
    assert await tf.fcall("push", "a", keys=("q1",)) == 1
    assert await first == [b"q1", b"a"]
    assert tf.host.store.open_session().call([b"RPUSH", b"q2", b"b\xff"]) == 1
    assert await second == [True, b"b\xff"]
    assert lib.pending_async_calls == []


async def test_call_async_needs_a_live_locked_client(tf):
    tf.load(CATCH + """
        let saved;
        redis.registerFunction('keep', (c) => { saved = c; return 1; });
        redis.registerFunction('later', () => catching(() => saved.callAsync('ping')));
        redis.registerAsyncFunction('background', async () => {
            await null; return catching(() => saved.callAsync('ping')); });
    """)
    await tf.fcall("keep")
    assert await tf.fcall("later") == thrown("Used on invalid client")
    assert await tf.fcall_async("background") == thrown("Main thread is not locked")


# --- §4.12 timeouts ----------------------------------------------------------------------------------

@pytest.mark.parametrize("era", ["rg", "tf"])
async def test_timeouts_and_recovery(host_driver, era):
    drv = host_driver(era, lock_redis_timeout="100")
    reg, areg = drv.api.register, drv.api.register_async
    drv.load(f"""
        let calls = 0;
        redis.{reg}('loop', () => {{ calls++; while (true) {{}} }});
        redis.{reg}('loop_caught', () => {{ try {{ while (true) {{}} }} catch (e) {{ return 'caught'; }} }});
        redis.{areg}('co_loop', async () => {{ calls++; while (true) {{}} }});
        redis.{areg}('co_loop_later', async () => {{ await null; while (true) {{}} }});
        redis.{areg}('block_loop', async (ac) => ac.block(() => {{ while (true) {{}} }}));
        redis.{reg}('count', () => ++calls);
    """)
    assert await drv.fcall_error("loop") == TERMINATED
    assert await drv.fcall_error("loop_caught") == TERMINATED
    assert await drv.fcall_async_error("co_loop") == TERMINATED
    assert await drv.fcall_async_error("co_loop_later") == TERMINATED
    assert await drv.fcall_async_error("block_loop") == TERMINATED
    assert await drv.fcall("count") == 3  # the library still works, with its state
    assert not drv.host.section.held


async def test_timeout_applies_to_each_call_afresh(host_driver):
    drv = host_driver("rg", lock_redis_timeout="100")
    drv.load("redis.register_function('busy', () => {"
             " const end = Date.now() + 30; while (Date.now() < end) {} return 'done'; });")
    for _ in range(5):  # 150 ms in all, 30 ms per call
        assert await drv.fcall("busy") == b"done"


async def test_background_slice_looping_over_block_is_stopped(host_driver):
    """Leaving `block()` does not give the background slice a fresh time limit."""
    drv = host_driver("rg", lock_redis_timeout="100")
    drv.load("""
        redis.register_async_function('spin', async (ac) => {
            const end = Date.now() + 5000;
            while (Date.now() < end) ac.block(() => 1);
            return 'ran for 5 seconds';
        });
        redis.register_async_function('short', async (ac) => {
            const a = ac.block((c) => { const end = Date.now() + 60; while (Date.now() < end) {}
                                        return 'a'; });
            const b = ac.block((c) => { const end = Date.now() + 60; while (Date.now() < end) {}
                                        return 'b'; });
            return a + b;  // 120 ms locked in all, but the slice itself stayed short
        });
    """)
    assert await drv.fcall_async_error("spin") == TERMINATED
    assert await drv.fcall_async("short") == b"ab"


async def test_call_async_answers_at_once_when_it_can(tf):
    """A blocking command with data to give answers inside the atomic section."""
    tf.load("""
        redis.registerAsyncFunction('push_pop', async (ac, key) => {
            const p = ac.block((c) => { c.call('rpush', key, 'mine'); return c.callAsync('blpop', key, '0'); });
            return p;
        });
    """)
    assert await tf.fcall_async("push_pop", keys=("q",)) == [b"q", b"mine"]
    assert tf.host.libraries["lib"].pending_async_calls == []


async def test_call_async_waits_in_the_callers_database(tf):
    tf.load("""
        redis.registerAsyncFunction('pop', (c, key) => c.callAsync('blpop', key, '0'));
        redis.registerFunction('push', (c, key, v) => c.call('rpush', key, v));
    """)
    lib = tf.host.libraries["lib"]
    waiting = asyncio.ensure_future(tf.host.fcall_async("lib", "pop", ["q"], era="tf", db=2))
    while not lib.pending_async_calls:
        await asyncio.sleep(0)
    assert await tf.host.fcall("lib", "push", ["q"], ["db0"], era="tf") == 1  # another db
    assert await tf.host.fcall("lib", "push", ["q"], ["db2"], era="tf", db=2) == 1
    assert await waiting == [b"q", b"db2"]


async def test_out_of_memory(host_driver):
    """Reaching the heap limit stops JS uncatchably with the termination text (a `catch` does
    not help: the newer addendum to §11 row 4); the library goes on working."""
    drv = host_driver("rg", library_maxmemory="16mb")
    drv.load("""
        const grow = () => { const a = []; while (true) a.push(new Array(100000).fill(1.5)); };
        redis.register_function('grow', grow);
        redis.register_async_function('grow_co', async () => { await null; grow(); });
        redis.register_function('caught', () => { try { grow(); } catch (e) { return String(e); } });
        redis.register_function('ok', () => 'ok');
    """)
    assert await drv.fcall_error("grow") == TERMINATED
    assert await drv.fcall("ok") == b"ok"
    assert await drv.fcall_async_error("grow_co") == TERMINATED
    assert await drv.fcall_error("caught") == TERMINATED
    assert await drv.fcall("ok") == b"ok"
    assert drv.load_error("const a = []; while (true) a.push(new Array(100000).fill(1));\n"
                          "redis.register_function('f', () => 1);", name="other") == (
        f"Failed loading library: {TERMINATED}.")


async def test_select_from_js_does_not_stick(rg):
    rg.load("redis.register_function('select', (c) => c.call('select', '5'));\n"
            "redis.register_function('set', (c, k, v) => c.call('set', k, v));")
    assert await rg.fcall("select") == b"OK"
    assert await rg.fcall("set", "v", keys=("k",)) == b"OK"
    assert await rg.host.fcall("lib", "set", ["k"], ["in 3"], db=3) == b"OK"
    session = rg.host.store.open_session()
    assert session.call([b"GET", b"k"]) == b"v"
    session.call([b"SELECT", b"3"])
    assert session.call([b"GET", b"k"]) == b"in 3"
    session.call([b"SELECT", b"5"])
    assert session.call([b"GET", b"k"]) is None


async def test_host_session_killed_by_another_client(rg):
    rg.load("redis.register_function('id', (c) => c.call('set', 'k', 'v'));")
    assert await rg.fcall("id") == b"OK"
    host_session = rg.host.session(0)
    other = rg.host.store.open_session()
    killed = other.call([b"CLIENT", b"KILL", b"ID", str(host_session.client_id).encode()])
    assert killed == 1 and host_session.closed
    assert await rg.fcall("id") == b"OK"
