"""End-to-end tests of `jshost serve` over real TCP: redis-py (RESP2 and RESP3), redis-cli, raw
sockets; an in-process server for most tests, a `jshost serve` subprocess for CLI and signals.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import redis
import redis.asyncio as aioredis
from redis.exceptions import ResponseError
from server_fixture import (
    JshostProcess,
    RawClient,
    command_bytes,
    library,
    running_server,
    wait_until,
)

from jshost import errors
from jshost.errors import ServerErrors
from jshost.replies import ErrorReply, Push, Status
from jshost.server import Server

pytestmark = pytest.mark.timeout(120)

REDIS_CLI = shutil.which("redis-cli")
needs_redis_cli = pytest.mark.skipif(REDIS_CLI is None, reason="redis-cli is not installed")

# A library whose async function waits on a promise that `release` settles from outside.
LIB = library(
    """
var waiting = [];
redis.register_function('hello', () => 'hello');
redis.register_function('args', (client, ...args) => args);
redis.register_function('set', (client, key, value) => client.call('set', key, value));
redis.register_async_function('wait', () => new Promise((resolve) => waiting.push(resolve)));
redis.register_function('pending', () => waiting.length);
redis.register_function('release', (client, value) => {
    const n = waiting.length;
    waiting.splice(0).forEach((resolve) => resolve(value));
    return n;
});
redis.register_async_function('coro', async (client, x) => x + '!');
redis.register_function('fail', () => { throw new Error('boom'); });
"""
)


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    async with running_server() as srv:
        yield srv


@pytest.fixture
async def loaded(server: Server) -> Server:
    """The server with LIB loaded."""
    server.host.load(LIB)
    return server


def client(server: Server, protocol: int = 3, **kwargs: object) -> aioredis.Redis:
    return aioredis.Redis(port=server.port, protocol=protocol, **kwargs)  # type: ignore[arg-type]


async def pending(port: int) -> int:
    r = aioredis.Redis(port=port, protocol=3)
    try:
        return int(await r.execute_command("RG.FCALL", "lib", "pending", "0"))
    finally:
        await r.aclose()


# --- load and call --------------------------------------------------------------------------


@pytest.mark.parametrize("protocol", [2, 3])
async def test_load_call_and_async_call(server: Server, protocol: int) -> None:
    r = client(server, protocol)
    try:
        assert await r.execute_command("RG.FUNCTION", "LOAD", LIB) in (b"OK", "OK", True)
        assert await r.execute_command("RG.FCALL", "lib", "hello", "0") == b"hello"
        assert await r.execute_command("RG.FCALL", "lib", "args", "1", "k", "a") == [b"k", b"a"]
        assert await r.execute_command("RG.FCALLASYNC", "lib", "coro", "0", "x") == b"x!"
        assert await r.execute_command("RG.FCALL", "lib", "set", "1", "k", "v") == b"OK"
        assert await r.get("k") == b"v"
        with pytest.raises(ResponseError, match="^Error: boom$"):
            await r.execute_command("RG.FCALL", "lib", "fail", "0")
        with pytest.raises(ResponseError) as info:
            await r.execute_command("RG.FCALL", "lib", "coro", "0", "x")
        assert str(info.value) == errors.async_needs_async_command("rg")
    finally:
        await r.aclose()


async def test_tf_family(server: Server) -> None:
    r = client(server)
    try:
        code = "#!js api_version=1.0 name=tlib\nredis.registerFunction('f', () => 7);"
        await r.execute_command("TFUNCTION", "LOAD", code)
        assert await r.execute_command("TFCALL", "tlib.f", "0") == 7
        assert await r.execute_command("TFCALLASYNC", "tlib.f", "0") == 7
        with pytest.raises(ResponseError, match="^Library tlib already exists.$"):
            await r.execute_command("TFUNCTION", "LOAD", code)
        await r.execute_command("TFUNCTION", "LOAD", "REPLACE", code)
        with pytest.raises(ResponseError, match="^Failed extracting function name$"):
            await r.execute_command("TFCALL", "tlib", "0")
        await r.execute_command("TFUNCTION", "DELETE", "tlib")
        with pytest.raises(ResponseError, match="^Unknown library tlib$"):
            await r.execute_command("TFCALL", "tlib.f", "0")
    finally:
        await r.aclose()


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        (["RG.FCALL", "lib", "hello"], "ERR wrong number of arguments for 'rg.fcall' command"),
        (["RG.FUNCTION"], "ERR wrong number of arguments for 'rg.function' command"),
        (["TFCALLASYNC", "x"], "ERR wrong number of arguments for 'tfcallasync' command"),
        (["RG.FCALL", "lib", "hello", "-1"], "ERR invalid digit found in string"),
        (["RG.FCALL", "nolib", "f", "0"], "Unknown library nolib"),
        (["RG.FCALL", "lib", "nofn", "0"], "Unknown function nofn"),
        (["RG.FCALL", b"\xff", "f", "0"], "Couldn't parse as UTF-8 string"),
        (["RG.FUNCTION", "DEBUG", "x"], "Debug command are disabled"),
        (["RG.FUNCTION", "NOPE"], "Unknown subcommand nope"),
        (["RG.FUNCTION", "DEL"], "function name was not given"),
        (["RG.FUNCTION", "LOAD"], "Could not find library payload"),
        (["TFUNCTION", "LOAD", "DEBUG", "x"], errors.DEBUG_SERVER_ADDRESS_NOT_SPECIFIED),
        (["RG.FCALL", "lib", "args", "3", "a"], errors.not_enough_arguments(3, 1)),
    ],
)
async def test_command_errors(loaded: Server, command: list[str | bytes], expected: str) -> None:
    c = await RawClient.connect(loaded.port)
    try:
        assert await c.call(*command) == ErrorReply(expected)
    finally:
        await c.close()


# --- ordering and blocking (the RFC scenario) -----------------------------------------------


async def test_pipeline_is_not_held_up_by_other_clients_waiting(loaded: Server) -> None:
    port = loaded.port
    waiters = [await RawClient.connect(port) for _ in range(100)]
    try:
        for w in waiters:
            await w.send_commands(["RG.FCALLASYNC", "lib", "wait", "0"])
        await wait_until(lambda: _equals(pending(port), 100), what="100 pending promises")

        # One connection pipelines 1000 RG.FCALL while the 100 still wait.
        piper = await RawClient.connect(port)
        await piper.send(command_bytes(*[["RG.FCALL", "lib", "hello", "0"]] * 1000))
        assert await piper.replies(1000) == [b"hello"] * 1000
        assert await pending(port) == 100  # ... and nobody was answered meanwhile
        assert all(w.parser.get_reply_with_raw() is None for w in waiters)
        assert sum(conn.blocked for conn in loaded.connections) == 100

        # Then resolve them: every waiter gets the value.
        assert await piper.call("RG.FCALL", "lib", "release", "0", "done") == 100
        assert [await w.reply() for w in waiters] == [b"done"] * 100
        await piper.close()
    finally:
        for w in waiters:
            await w.close()


async def test_pipeline_on_a_blocked_connection_waits_its_turn(loaded: Server) -> None:
    blocked = await RawClient.connect(loaded.port)
    other = await RawClient.connect(loaded.port)
    try:
        await blocked.send_commands(
            ["RG.FCALLASYNC", "lib", "wait", "0"],
            ["PING"],
            ["RG.FCALL", "lib", "pending", "0"],  # would say 1 if it ran before the release
            ["SET", "after", "1"],
        )
        await wait_until(lambda: _equals(pending(loaded.port), 1), what="the promise")
        # The other client sees that the queued SET has not run, and is itself served.
        assert await other.call("GET", "after") is None
        assert await other.call("RG.FCALL", "lib", "release", "0", "v") == 1
        assert await blocked.replies(4) == [b"v", Status(b"PONG"), 0, Status(b"OK")]
    finally:
        await blocked.close()
        await other.close()


async def test_blocking_store_command_blocks_only_its_connection(server: Server) -> None:
    a = await RawClient.connect(server.port)
    b = await RawClient.connect(server.port)
    try:
        await a.send_commands(["BLPOP", "list", "0"], ["PING"])
        await wait_until(lambda: _any_blocked(server), what="BLPOP to block")
        assert await b.call("PING") == Status(b"PONG")
        assert await b.call("LPUSH", "list", "x") == 1
        assert await a.replies(2) == [[b"list", b"x"], Status(b"PONG")]
    finally:
        await a.close()
        await b.close()


async def test_client_disconnecting_while_waiting(
    loaded: Server, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    c = await RawClient.connect(loaded.port)
    await c.send_commands(["RG.FCALLASYNC", "lib", "wait", "0"])
    await wait_until(lambda: _equals(pending(loaded.port), 1), what="the promise")
    await c.close()
    await wait_until(lambda: _no_connections(loaded), what="the connection to go")
    other = await RawClient.connect(loaded.port)
    try:
        assert await other.call("RG.FCALL", "lib", "release", "0", "late") == 1
        assert await other.call("RG.FCALLASYNC", "lib", "coro", "0", "x") == b"x!"
        assert await other.call("PING") == Status(b"PONG")
    finally:
        await other.close()
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_replies_of_one_pass_are_written_together(server: Server) -> None:
    c = await RawClient.connect(server.port)
    try:
        await c.call("PING")
        (conn,) = server.connections
        writes = conn.writes
        await c.send(command_bytes(*[["PING"]] * 200))
        assert await c.replies(200) == [Status(b"PONG")] * 200
        assert conn.writes - writes <= 2  # one per read (a 200-command buffer is one read)
    finally:
        await c.close()


# --- LIST -----------------------------------------------------------------------------------


async def test_list_shapes_per_era(loaded: Server) -> None:
    r = client(loaded, 3)
    try:
        (rg,) = await r.execute_command("RG.FUNCTION", "LIST")
        assert list(rg) == [
            b"engine",
            b"api_version",
            b"name",
            b"pending_jobs",
            b"user",
            b"configuration",
            b"functions",
            b"remote_functions",
            b"stream_consumers",
            b"notifications_consumers",
        ]
        assert rg[b"name"] == b"lib" and rg[b"configuration"] is None
        (tf,) = await r.execute_command("TFUNCTION", "LIST", "WITHCODE", "v")
        assert list(tf) == sorted(tf)  # tf fields are sorted by name
        assert b"code" in tf and tf[b"code"] == LIB.encode()
        functions = {f[b"name"]: f for f in tf[b"functions"]}
        assert functions[b"wait"][b"is_async"] is True
        assert functions[b"hello"][b"is_async"] is False
        assert await r.execute_command("RG.FUNCTION", "LIST", "LIBRARY", "none") == []
        with pytest.raises(ResponseError, match="^Unknown option 'bad'$"):
            await r.execute_command("RG.FUNCTION", "LIST", "BAD")
    finally:
        await r.aclose()
    r2 = client(loaded, 2)
    try:
        (flat,) = await r2.execute_command("RG.FUNCTION", "LIST")
        assert flat[:4] == [b"engine", b"js", b"api_version", b"1.0"]  # RESP2: a flat array
    finally:
        await r2.aclose()


# --- MULTI / EXEC ---------------------------------------------------------------------------


async def test_multi_with_async_function_gives_the_check_8_error(loaded: Server) -> None:
    r = client(loaded, 3)
    try:
        async with r.pipeline(transaction=True) as pipe:
            pipe.set("k", "1")
            pipe.execute_command("RG.FCALL", "lib", "coro", "0", "x")
            pipe.execute_command("RG.FCALLASYNC", "lib", "coro", "0", "x")
            pipe.execute_command("RG.FCALLASYNC", "lib", "wait", "0")
            pipe.execute_command("RG.FCALL", "lib", "hello", "0")
            pipe.get("k")
            results = await pipe.execute(raise_on_error=False)
        assert results[0] is True
        assert str(results[1]) == errors.async_needs_async_command("rg")
        assert str(results[2]) == errors.CAN_NOT_BLOCK_CLIENT  # coroutine: blocking denied
        assert str(results[3]) == errors.CAN_NOT_BLOCK_CLIENT  # pending promise: denied
        assert results[4:] == [b"hello", b"1"]
        # `wait` is a sync function: it ran (and queued its resolver) before its pending
        # promise was refused; the coroutine did not run at all.
        assert await r.execute_command("RG.FCALL", "lib", "pending", "0") == 1
    finally:
        await r.aclose()


async def test_multi_queue_errors_abort_exec(server: Server) -> None:
    c = await RawClient.connect(server.port)
    try:
        assert await c.call("MULTI") == Status(b"OK")
        assert await c.call("SET", "k", "v") == Status(b"QUEUED")
        assert await c.call("NOSUCH") == ErrorReply(
            "ERR unknown command 'NOSUCH', with args beginning with: "
        )
        assert await c.call("GET") == ErrorReply("ERR wrong number of arguments for 'get' command")
        assert await c.call("RG.FCALL", "x") == Status(b"QUEUED")  # module arity: checked at EXEC
        assert await c.call("EXEC") == ErrorReply(ServerErrors.EXECABORT)
        assert await c.call("GET", "k") is None
        assert await c.call("EXEC") == ErrorReply(ServerErrors.EXEC_WITHOUT_MULTI)
        assert await c.call("MULTI") == Status(b"OK")
        assert await c.call("MULTI") == ErrorReply(ServerErrors.MULTI_NESTED)
        assert await c.call("WATCH", "k") == ErrorReply(ServerErrors.WATCH_IN_MULTI)
        assert await c.call("RG.FCALL", "x") == Status(b"QUEUED")
        assert await c.call("EXEC") == [ErrorReply(errors.wrong_arity("rg.fcall"))]
        assert await c.call("DISCARD") == ErrorReply(ServerErrors.DISCARD_WITHOUT_MULTI)
    finally:
        await c.close()


@pytest.mark.parametrize("protocol", [2, 3])
async def test_watch(server: Server, protocol: int) -> None:
    r = client(server, protocol)
    other = client(server, protocol)
    try:
        async with r.pipeline(transaction=True) as pipe:
            await pipe.watch("w")
            await other.set("w", "changed")
            pipe.multi()
            pipe.set("w", "mine")
            with pytest.raises(redis.WatchError):
                await pipe.execute()
        assert await r.get("w") == b"changed"
        async with r.pipeline(transaction=True) as pipe:
            await pipe.watch("w")
            pipe.multi()
            pipe.set("w", "mine")
            assert await pipe.execute() == [True]
        assert await r.get("w") == b"mine"
    finally:
        await r.aclose()
        await other.aclose()


# --- AUTH and connection commands -----------------------------------------------------------


async def test_auth() -> None:
    async with running_server(requirepass="s3cret") as srv:
        c = await RawClient.connect(srv.port)
        try:
            assert await c.call("PING") == ErrorReply("NOAUTH Authentication required.")
            assert await c.call("NOSUCH") == ErrorReply(
                "ERR unknown command 'NOSUCH', with args beginning with: "
            )
            assert await c.call("HELLO", "3") == ErrorReply(ServerErrors.HELLO_NOAUTH)
            assert await c.call("AUTH", "wrong") == ErrorReply(ServerErrors.WRONGPASS)
            assert await c.call("AUTH", "bob", "s3cret") == ErrorReply(ServerErrors.WRONGPASS)
            assert await c.call("AUTH", "a", "b", "c") == ErrorReply(ServerErrors.SYNTAX_ERROR)
            assert await c.call("AUTH", "s3cret") == Status(b"OK")
            assert await c.call("PING") == Status(b"PONG")
            assert await c.call("RESET") == Status(b"RESET")  # logs out again
            assert await c.call("PING") == ErrorReply("NOAUTH Authentication required.")
            hello = await c.call("HELLO", "3", "AUTH", "default", "s3cret", "SETNAME", "me")
            assert hello[b"proto"] == 3
            assert await c.call("CLIENT", "GETNAME") == b"me"
        finally:
            await c.close()
        # redis-py with a password (HELLO 3 AUTH ... on connect), both protocols.
        for protocol in (2, 3):
            r = aioredis.Redis(port=srv.port, password="s3cret", protocol=protocol)
            try:
                assert await r.ping() is True
                await r.set("a", "1")
                assert await r.get("a") == b"1"
            finally:
                await r.aclose()


async def test_auth_without_requirepass(server: Server) -> None:
    c = await RawClient.connect(server.port)
    try:
        assert await c.call("AUTH", "x") == ErrorReply(ServerErrors.AUTH_WITHOUT_PASSWORD)
        assert await c.call("AUTH", "default", "anything") == Status(b"OK")
    finally:
        await c.close()


async def test_connection_commands(server: Server) -> None:
    c = await RawClient.connect(server.port)
    try:
        assert await c.call("PING", "hi") == b"hi"
        assert await c.call("PING", "a", "b") == ErrorReply(errors.wrong_arity("ping"))
        assert await c.call("ECHO", "x") == b"x"
        assert await c.call("CLIENT", "GETNAME") is None
        assert await c.call("CLIENT", "SETNAME", "bad name") == ErrorReply(
            ServerErrors.CLIENT_NAME_INVALID
        )
        assert await c.call("CLIENT", "SETNAME", "conn1") == Status(b"OK")
        assert await c.call("CLIENT", "GETNAME") == b"conn1"
        client_id = await c.call("CLIENT", "ID")
        info = await c.call("CLIENT", "INFO")
        assert info.startswith(b"id=%d addr=127.0.0.1:" % client_id)
        assert b" name=conn1 " in info and b" resp=2 " in info
        assert await c.call("HELLO", "4") == ErrorReply(ServerErrors.NOPROTO)
        assert await c.call("HELLO", "x") == ErrorReply(ServerErrors.HELLO_PROTOCOL_NOT_INTEGER)
        assert await c.call("HELLO", "3", "FOO") == ErrorReply(ServerErrors.hello_syntax("FOO"))
        assert (await c.call("HELLO", "3"))[b"id"] == client_id
        assert await c.call("SELECT", "2") == Status(b"OK")
        await c.call("SET", "in2", "x")
        assert await c.call("RESET") == Status(b"RESET")
        assert await c.call("GET", "in2") is None  # back on db 0, RESP2, no name
        assert await c.call("CLIENT", "GETNAME") is None
        await c.send_commands(["QUIT"], ["PING"])
        assert await c.reply() == Status(b"OK")
        assert await c.read_until_closed() == b""  # the PING after QUIT is not run
    finally:
        await c.close()


async def test_select_is_used_by_functions(loaded: Server) -> None:
    r = aioredis.Redis(port=loaded.port, protocol=3, db=3)
    try:
        await r.execute_command("RG.FCALL", "lib", "set", "1", "k3", "v")
        assert await r.get("k3") == b"v"
        r0 = client(loaded)
        assert await r0.get("k3") is None
        await r0.aclose()
    finally:
        await r.aclose()


async def test_config_get_and_set(server: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    r = client(server, 3)
    try:
        everything = await r.execute_command("CONFIG", "GET", "*")
        assert b"maxmemory" in everything and b"redisgears_2.error-verbosity" in everything
        await r.execute_command("CONFIG", "SET", "redisgears_2.error-verbosity", "2")
        assert await r.execute_command("RG.CONFIG_GET", "error-verbosity") == {
            b"redisgears_2.error-verbosity": b"2"
        }
        await r.execute_command("TCONFIG_SET", "error-verbosity", "1")
        assert server.host.settings["error-verbosity"] == 1
        with pytest.raises(ResponseError, match="can't set immutable config"):
            await r.execute_command("RG.CONFIG_SET", "execution-threads", "2")
        assert await r.execute_command("CONFIG", "GET", "maxmemory") == {b"maxmemory": b"0"}
        # Mixed names, and the store refuses its part: the host's part is put back. (The
        # embedded store accepts any CONFIG SET, so its refusal is simulated here.)
        sent: list[list[bytes]] = []

        def refuse(client: object, argv: list[bytes]) -> ErrorReply:
            sent.append(argv)
            return ErrorReply("ERR refused")

        monkeypatch.setattr(server.dispatcher, "_forward", refuse)
        with pytest.raises(ResponseError, match="^refused$"):
            await r.execute_command(
                "CONFIG", "SET", "redisgears_2.error-verbosity", "2", "maxmemory", "1"
            )
        assert sent == [[b"CONFIG", b"SET", b"maxmemory", b"1"]]
        assert server.host.settings["error-verbosity"] == 1
    finally:
        await r.aclose()
    r2 = client(server, 2)
    try:
        assert await r2.execute_command("RG.CONFIG_GET", "error-verbosity") == [
            b"redisgears_2.error-verbosity",
            b"1",
        ]
    finally:
        await r2.aclose()


# --- pub/sub --------------------------------------------------------------------------------


@pytest.mark.parametrize("protocol", [2, 3])
async def test_pubsub(server: Server, protocol: int) -> None:
    r = client(server, protocol)
    publisher = client(server, protocol)
    pubsub = r.pubsub()
    try:
        await pubsub.subscribe("news")
        confirmation = await pubsub.get_message(timeout=5)
        assert confirmation is not None and confirmation["type"] == "subscribe"
        assert await publisher.publish("news", "hello") == 1
        message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=5)
        assert message is not None and message["data"] == b"hello"
        await pubsub.unsubscribe("news")
    finally:
        await pubsub.aclose()
        await r.aclose()
        await publisher.aclose()


async def test_resp2_subscriber_may_only_run_pubsub_commands(server: Server) -> None:
    c = await RawClient.connect(server.port)
    pub = await RawClient.connect(server.port)
    try:
        await c.send_commands(["SUBSCRIBE", "a", "b"])
        assert await c.replies(2) == [[b"subscribe", b"a", 1], [b"subscribe", b"b", 2]]
        assert await c.call("GET", "x") == ErrorReply(ServerErrors.pubsub_context("get"))
        assert await c.call("PING") == [b"pong", b""]
        assert await pub.call("PUBLISH", "a", "m") == 1
        assert await c.reply() == [b"message", b"a", b"m"]
        await c.send_commands(["UNSUBSCRIBE"])
        assert await c.replies(2) == [[b"unsubscribe", b"a", 1], [b"unsubscribe", b"b", 0]]
        assert await c.call("GET", "x") is None
    finally:
        await c.close()
        await pub.close()


async def test_resp3_pushes(server: Server) -> None:
    c = await RawClient.connect(server.port)
    pub = await RawClient.connect(server.port)
    try:
        await c.call("HELLO", "3")
        await c.send_commands(["SUBSCRIBE", "a"])
        assert await c.reply() == Push([b"subscribe", b"a", 1])
        assert await c.call("PING") == Status(b"PONG")
        await pub.call("PUBLISH", "a", "m")
        assert await c.reply_raw() == b">3\r\n$7\r\nmessage\r\n$1\r\na\r\n$1\r\nm\r\n"
    finally:
        await c.close()
        await pub.close()


# --- bad input ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "error"),
    [
        (b"*1\r\n$x\r\n", "ERR Protocol error: invalid bulk length"),
        (b"*a\r\n", "ERR Protocol error: invalid multibulk length"),
        (b"*1\r\n+PING\r\n", "ERR Protocol error: expected '$', got '+'"),
        (b'PING "unbalanced\r\n', "ERR Protocol error: unbalanced quotes in request"),
    ],
)
async def test_protocol_error_closes_only_that_client(
    server: Server, data: bytes, error: str
) -> None:
    bad = await RawClient.connect(server.port)
    good = await RawClient.connect(server.port)
    try:
        await bad.send(b"PING\r\n" + data + b"PING\r\n")
        assert await bad.reply() == Status(b"PONG")  # the command before it is answered
        assert await bad.reply() == ErrorReply(error)
        assert await bad.read_until_closed() == b""
        assert await good.call("PING") == Status(b"PONG")
    finally:
        await bad.close()
        await good.close()


async def test_query_buffer_limit_closes_without_reply(server: Server) -> None:
    c = await RawClient.connect(server.port)
    try:
        await c.call("PING")
        (conn,) = server.connections
        conn._parser.query_buffer_limit = 1000  # Redis's default is 1 GiB
        c.writer.write(b"*2\r\n$4\r\nECHO\r\n$100000\r\n" + b"x" * 5000)
        assert await c.read_until_closed() == b""
    finally:
        await c.close()
    other = await RawClient.connect(server.port)
    assert await other.call("PING") == Status(b"PONG")
    await other.close()


# --- shutdown -------------------------------------------------------------------------------


async def test_shutdown_fails_pending_calls(loaded: Server) -> None:
    port = loaded.port
    waiting = await RawClient.connect(port)
    await waiting.send_commands(["RG.FCALLASYNC", "lib", "wait", "0"], ["PING"])
    await wait_until(lambda: _equals(pending(loaded.port), 1), what="the promise")
    await asyncio.wait_for(loaded.shutdown(), 10)
    assert await waiting.reply() == ErrorReply(ServerErrors.SHUTTING_DOWN)
    assert await waiting.read_until_closed() == b""  # the PING behind it is not run
    await waiting.close()
    with pytest.raises(OSError):
        await RawClient.connect(port)


# --- redis-cli ------------------------------------------------------------------------------


async def redis_cli(port: int, *args: str, stdin: bytes | None = None) -> str:
    proc = await asyncio.create_subprocess_exec(
        REDIS_CLI or "redis-cli",
        "-p",
        str(port),
        *args,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(proc.communicate(stdin), 30)
    return out.decode().rstrip("\n") + "\n"  # redis-cli adds a blank line after an error


@needs_redis_cli
async def test_redis_cli(server: Server) -> None:
    port = server.port
    assert await redis_cli(port, "PING") == "PONG\n"
    assert await redis_cli(port, "RG.FUNCTION", "LOAD", LIB) == "OK\n"
    assert await redis_cli(port, "RG.FCALL", "lib", "hello", "0") == "hello\n"
    assert await redis_cli(port, "-3", "RG.FCALL", "lib", "args", "0", "a", "b") == "a\nb\n"
    assert await redis_cli(port, "RG.FCALLASYNC", "lib", "coro", "0", "z") == "z!\n"
    assert await redis_cli(port, "RG.FCALL", "lib", "nofn", "0") == "Unknown function nofn\n"
    # Piped commands (redis-cli sends them as one pipeline).
    piped = b"SET a 1\nINCR a\nRG.FCALL lib hello 0\n"
    assert await redis_cli(port, stdin=piped) == "OK\n2\nhello\n"


# --- the `jshost serve` process -------------------------------------------------------------


def test_serve_process_answers_and_stops_on_sigterm() -> None:
    proc = JshostProcess().start()
    try:
        assert proc.store == "embedded"
        assert proc.startup_line.startswith("jshost 0.1.0 listening on 127.0.0.1:")
        for protocol in (2, 3):
            r = redis.Redis(port=proc.port, protocol=protocol)
            if protocol == 2:
                r.execute_command("RG.FUNCTION", "LOAD", LIB)
            assert r.execute_command("RG.FCALL", "lib", "hello", "0") == b"hello"
            r.close()
        assert proc.stop(signal.SIGTERM) == 0
    finally:
        proc.kill()
    assert "stopped" in proc.log()


def test_serve_process_sigint_with_a_pending_call() -> None:
    proc = JshostProcess("--requirepass", "pw").start()
    try:
        r = redis.Redis(port=proc.port, password="pw", socket_timeout=20)
        r.execute_command("RG.FUNCTION", "LOAD", LIB)
        blocked = redis.Redis(port=proc.port, password="pw", socket_timeout=20)
        blocked.ping()
        conn = blocked.connection_pool.get_connection()
        conn.send_command("RG.FCALLASYNC", "lib", "wait", "0")
        while int(r.execute_command("RG.FCALL", "lib", "pending", "0")) != 1:
            pass  # each check is a round trip to the server
        assert proc.stop(signal.SIGINT) == 0
        with pytest.raises(ResponseError, match="shutting down"):
            conn.read_response()
    finally:
        proc.kill()


def test_serve_refuses_a_taken_port_and_unknown_settings() -> None:
    first = JshostProcess().start()
    try:
        taken = subprocess.run(
            [sys.executable, "-m", "jshost", "serve", "--port", str(first.port)],
            capture_output=True,
            timeout=60,
            check=False,
        )
        assert taken.returncode != 0 and b"cannot listen" in taken.stderr
        bad = subprocess.run(
            [sys.executable, "-m", "jshost", "serve", "--port", "0", "--set", "nosuch=1"],
            capture_output=True,
            timeout=60,
            check=False,
        )
        assert bad.returncode == 2 and b"Unknown setting 'nosuch'" in bad.stderr
        remote = subprocess.run(
            [sys.executable, "-m", "jshost", "serve", "--backend", "redis://127.0.0.1:1"],
            capture_output=True,
            timeout=60,
            check=False,
        )
        assert remote.returncode == 1 and b"could not connect" in remote.stderr
        assert b"Traceback" not in remote.stderr
    finally:
        assert first.stop() == 0


# --- helpers --------------------------------------------------------------------------------


async def _equals(value: object, expected: object) -> bool:
    return await value == expected  # type: ignore[misc]


async def _any_blocked(server: Server) -> bool:
    return any(conn.blocked for conn in server.connections)


async def _no_connections(server: Server) -> bool:
    return not server.connections


def test_serve_reads_settings_from_file_and_options(tmp_path: Path) -> None:
    config = tmp_path / "jshost.conf"
    config.write_text("# settings\nredisgears_2.lock-redis-timeout 1000\nerror-verbosity 2\n")
    proc = JshostProcess("--config-file", str(config), "--set", "error-verbosity=1").start()
    try:
        r = redis.Redis(port=proc.port, protocol=3)
        got = r.execute_command("RG.CONFIG_GET", "lock-redis-timeout", "error-verbosity")
        assert got == {
            b"redisgears_2.lock-redis-timeout": b"1000",
            b"redisgears_2.error-verbosity": b"1",  # --set comes after the file
        }
        r.close()
    finally:
        assert proc.stop() == 0
