"""The native call path (`jshost.fastpath`) answers byte for byte as the Python path does.

Each pipeline is sent in one write, over a real socket, to a server with the native path and to
one without it (``JSHOST_NATIVE_CALLS=0``); everything each sends back is compared. The
pipelines mix calls of every kind of outcome (plain values the extension encodes, values and
errors it hands to the host, time-outs, promises, async functions), store commands, RESP2 and
RESP3, MULTI, and libraries upgraded or deleted in the middle.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

import pytest
from server_fixture import RawClient, command_bytes, library, running_server

from jshost.errors import EXECUTION_TERMINATED, OOM_CAN_NOT_RUN
from jshost.fastpath import ENV_SWITCH
from jshost.replies import ErrorReply
from jshost.settings import Settings

pytestmark = pytest.mark.timeout(120)

LIB = library(
    r"""
redis.register_function('hello', () => 'hello');
redis.register_function('num', () => 42);
redis.register_function('negzero', () => -0);
redis.register_function('whole', () => 7 * 1.0e0);
redis.register_function('big', () => 2147483648);
redis.register_function('flt', () => 1.5);
redis.register_function('nul', () => null);
redis.register_function('yes', () => true);
redis.register_function('no', () => false);
redis.register_function('undef', () => undefined);
redis.register_function('bigint', () => 2n ** 40n);
redis.register_function('obj', () => ({a: 1, b: [1, 'x', null]}));
redis.register_function('surrogate', () => 'a\ud800b\u00e9\ud83d\ude00');
redis.register_function('buf', () => new Uint8Array([0, 255, 13, 10]).buffer);
redis.register_function('huge', () => 'x'.repeat(2 * 1024 * 1024));
redis.register_function('boom', () => { throw new Error('boom\r\nline'); });
redis.register_function('echo', (c, ...a) => a.join(','));
redis.register_function('rawlen', (c, a) => a.byteLength, ['raw-arguments']);
redis.register_function('setget', (c, k, v) => { c.call('set', k, v); return c.call('get', k); });
redis.register_function('job', () => {
    Promise.resolve().then(() => { throw new Error('job failed'); });
    Promise.resolve().then(() => redis.log('job ran'));
    return 'job';
});
redis.register_function('resolved', () => Promise.resolve('done'));
redis.register_function('pending', () => new Promise(() => {}));
redis.register_function('loop', () => { while (true) {} });
redis.register_function('spin', () => { redis.log('spinning'); while (true) {} });
redis.register_function('keep', (c) => { globalThis.kept = c; return 'kept'; });
redis.register_function('stale', () => globalThis.kept.call('ping'));
redis.register_function('ro', (c) => c.call('get', 'k'), ['no-writes']);
redis.register_async_function('later', async () => 'later');
""",
    name="lib",
)

LIB_V2 = library("redis.register_function('hello', () => 'hello v2');", name="lib")

#: Calls of every function, plain and through TFCALL.
CALLS: list[Sequence[str | bytes]] = [
    *(["RG.FCALL", "lib", f, "0"] for f in (
        "hello", "num", "negzero", "whole", "big", "flt", "nul", "yes", "no", "undef", "bigint",
        "obj", "surrogate", "buf", "huge", "boom", "job", "resolved", "pending", "keep",
        "stale", "ro", "later", "nosuch")),
    ["RG.FCALL", "lib", "echo", "0", "a", "b", "c"],
    ["RG.FCALL", "lib", "echo", "2", "k1", "k2", "x"],
    ["RG.FCALL", "lib", "echo", "3", "k1"],  # not enough arguments
    ["RG.FCALL", "lib", "echo", "x"],  # numkeys not a number
    ["RG.FCALL", "lib", "echo", "0", b"\xff\xfe"],  # not UTF-8
    ["RG.FCALL", "lib", "rawlen", "0", b"\xff\xfe\x00"],
    ["RG.FCALL", "lib", "setget", "1", "k", "v1"],
    ["RG.FCALL", "lib", "setget", "1", "jshost:lease", "v"],  # jshost's own key
    ["RG.FCALL", "nolib", "hello", "0"],
    ["rg.fcall", "lib", "hello", "0"],
    ["TFCALL", "lib.hello", "0"],
    ["TFCALL", "lib.hello.extra", "0"],
    ["TFCALL", "libhello", "0"],
    ["TFCALL", "lib.echo", "1", "k", "arg"],
    ["RG.FCALL", "lib"],  # arity
]


def _settings(values: dict[str, str] | None) -> Settings:
    config = Settings()
    for name, value in (values or {}).items():
        config.set(name, value)
    return config


async def _exchange(pipelines: list[bytes], native: bool, monkeypatch: pytest.MonkeyPatch,
                    settings: dict[str, str] | None = None) -> tuple[list[bytes], int]:
    """Every byte the server sends back for each pipeline (one connection each, one write
    each), and how many calls the native path ran."""
    monkeypatch.setenv(ENV_SWITCH, "1" if native else "0")
    out = []
    async with running_server(settings=_settings(settings)) as server:
        server.host.load(LIB)
        for pipeline in pipelines:
            c = await RawClient.connect(server.port)
            try:
                await c.send(pipeline + command_bytes(["QUIT"]))
                out.append(await c.read_until_closed(timeout=60))
            finally:
                await c.close()
        fast = server.dispatcher.fast_path
        ran = fast.native.ran if fast is not None else 0
    return out, ran


async def _same_on_both_paths(pipelines: list[bytes], monkeypatch: pytest.MonkeyPatch,
                              settings: dict[str, str] | None = None) -> list[bytes]:
    native, ran = await _exchange(pipelines, True, monkeypatch, settings)
    python, none = await _exchange(pipelines, False, monkeypatch, settings)
    assert none == 0
    assert ran > 0, "the native path ran no call"
    for i, (a, b) in enumerate(zip(native, python, strict=True)):
        assert a == b, f"pipeline {i} differs"
    return native


@pytest.mark.parametrize("protocol", [2, 3])
async def test_calls_of_every_kind(protocol: int, monkeypatch: pytest.MonkeyPatch) -> None:
    hello = [["HELLO", "3"]] if protocol == 3 else []
    pipeline = command_bytes(*hello, *CALLS, ["GET", "k"], *CALLS[::-1])
    (got,) = await _same_on_both_paths([pipeline], monkeypatch)
    assert b"$5\r\nhello\r\n" in got and b"Unknown function nosuch" in got


async def test_a_time_out_and_the_calls_after_it(monkeypatch: pytest.MonkeyPatch) -> None:
    pipeline = command_bytes(["RG.FCALL", "lib", "hello", "0"], ["RG.FCALL", "lib", "loop", "0"],
                             ["RG.FCALL", "lib", "num", "0"])
    (got,) = await _same_on_both_paths([pipeline], monkeypatch, {"redisgears_2.lock-redis-timeout": "100"})
    assert got.count(b"\r\n") >= 3


async def test_mixed_with_store_commands_and_multi(monkeypatch: pytest.MonkeyPatch) -> None:
    pipeline = command_bytes(
        ["SET", "k", "1"], ["RG.FCALL", "lib", "ro", "0"], ["INCR", "k"],
        ["RG.FCALL", "lib", "ro", "0"], ["MULTI"], ["RG.FCALL", "lib", "hello", "0"],
        ["INCR", "k"], ["EXEC"], ["RG.FCALL", "lib", "num", "0"], ["PING"],
        ["RG.FCALL", "lib", "setget", "1", "k", "2"], ["GET", "k"])
    await _same_on_both_paths([pipeline], monkeypatch)


async def test_a_library_upgraded_or_deleted_mid_pipeline(monkeypatch: pytest.MonkeyPatch) -> None:
    pipelines = [
        command_bytes(["RG.FCALL", "lib", "hello", "0"],
                      ["RG.FUNCTION", "LOAD", "UPGRADE", LIB_V2],
                      ["RG.FCALL", "lib", "hello", "0"], ["RG.FCALL", "lib", "num", "0"],
                      ["RG.FUNCTION", "DEL", "lib"], ["RG.FCALL", "lib", "hello", "0"],
                      ["RG.FUNCTION", "LOAD", LIB], ["RG.FCALL", "lib", "hello", "0"],
                      ["TFCALL", "lib.num", "0"]),
    ]
    (got,) = await _same_on_both_paths(pipelines, monkeypatch)
    assert b"hello v2" in got and b"Unknown library lib" in got


async def test_calls_split_across_reads(monkeypatch: pytest.MonkeyPatch) -> None:
    """A pipeline that arrives in pieces, cut inside commands, answers alike."""
    async def exchange(native: bool) -> bytes:
        monkeypatch.setenv(ENV_SWITCH, "1" if native else "0")
        async with running_server() as server:
            server.host.load(LIB)
            data = command_bytes(*CALLS[:10], ["RG.FCALL", "lib", "echo", "0", "x" * 70_000])
            c = await RawClient.connect(server.port)
            try:
                for start in range(0, len(data), 97):
                    await c.send(data[start:start + 97])
                    await asyncio.sleep(0)
                await c.send(command_bytes(["QUIT"]))
                return await c.read_until_closed(timeout=60)
            finally:
                await c.close()

    assert await exchange(True) == await exchange(False)


async def test_a_closed_gate_sends_calls_to_the_python_path(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_SWITCH, "1")
    async with running_server() as server:
        server.host.load(LIB)
        fast = server.dispatcher.fast_path
        assert fast is not None
        c = await RawClient.connect(server.port)
        try:
            assert await c.call("RG.FCALL", "lib", "hello", "0") == b"hello"
            ran = fast.native.ran
            fast.native.open = False
            assert await c.call("RG.FCALL", "lib", "hello", "0") == b"hello"
            assert fast.native.ran == ran
            fast.native.open = True
            assert await c.call("RG.FCALL", "lib", "hello", "0") == b"hello"
            assert fast.native.ran == ran + 1
        finally:
            await c.close()


async def test_a_busy_loop_on_the_native_path_lets_a_ping_wait_its_turn(
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    """A sync function that spins, run natively, is stopped with the termination error; a PING
    another client sends while it spins reaches the dispatcher only after the call ended."""
    monkeypatch.setenv(ENV_SWITCH, "1")
    caplog.set_level(logging.INFO, logger="jshost")  # (the library's log line sends the PING)
    seen: list[str] = []
    async with running_server(settings=_settings({"redisgears_2.lock-redis-timeout": "100"})) \
            as server:
        server.host.load(LIB)
        fast = server.dispatcher.fast_path
        assert fast is not None
        run, dispatch = fast.run, server.dispatcher.dispatch

        def recording_run(client: Any, *args: Any) -> Any:
            seen.append(f"run {client.id}")
            before = fast.native.ran
            try:
                return run(client, *args)
            finally:
                seen.append(f"ran {client.id} {fast.native.ran - before}")

        def recording_dispatch(client: Any, argv: list[bytes]) -> Any:
            seen.append(f"dispatch {client.id} {b' '.join(argv).decode()}")
            return dispatch(client, argv)

        monkeypatch.setattr(fast, "run", recording_run)
        monkeypatch.setattr(server.dispatcher, "dispatch", recording_dispatch)
        spinner = await RawClient.connect(server.port)
        pinger = await RawClient.connect(server.port)
        spinner_id = await spinner.call("CLIENT", "ID")

        class Hook(logging.Handler):
            def emit(self, record: logging.LogRecord) -> None:
                if record.getMessage() == "spinning":
                    pinger.writer.write(command_bytes(["PING", "during"]))
                    seen.append("ping sent")

        hook = Hook(logging.INFO)
        logging.getLogger("jshost").addHandler(hook)
        try:
            assert await spinner.call("RG.FCALL", "lib", "spin", "0") == ErrorReply(
                EXECUTION_TERMINATED)
            assert await pinger.reply() == b"during"
        finally:
            logging.getLogger("jshost").removeHandler(hook)
            await spinner.close()
            await pinger.close()
    ran = seen.index(f"ran {spinner_id} 1")  # the native run that ran the call
    assert seen[ran - 2:ran + 1] == [f"run {spinner_id}", "ping sent", f"ran {spinner_id} 1"], seen
    pings = [i for i, e in enumerate(seen) if e.endswith("PING during")]
    assert len(pings) == 1 and pings[0] > ran, seen


async def test_out_of_memory_leaves_writing_functions_to_the_python_path(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """While the store is out of memory, a function that may write is refused (by the Python
    path, with its error); one flagged `no-writes` still runs natively."""
    monkeypatch.setenv(ENV_SWITCH, "1")
    async with running_server() as server:
        server.host.load(LIB)
        fast = server.dispatcher.fast_path
        assert fast is not None
        monkeypatch.setattr(server.host.store, "is_oom", lambda: True)
        c = await RawClient.connect(server.port)
        try:
            ran = fast.native.ran
            assert await c.call("RG.FCALL", "lib", "hello", "0") == ErrorReply(OOM_CAN_NOT_RUN)
            assert fast.native.ran == ran
            assert await c.call("RG.FCALL", "lib", "ro", "0") is None
            assert fast.native.ran == ran + 1
        finally:
            await c.close()


async def test_replies_past_the_output_bound_wait_for_the_write(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A run whose replies pass the connection's output bound (1 MiB) stops there and goes on
    once they are written: every reply arrives, in order, as on the Python path."""
    big = "x" * 1000
    pipeline = command_bytes(*(["RG.FCALL", "lib", "echo", "0", f"{i}:{big}"] for i in range(3000)))
    (got,) = await _same_on_both_paths([pipeline], monkeypatch)
    assert got.count(b"\r\n$") >= 2999
