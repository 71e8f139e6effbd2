"""`jshost serve` in front of a real Redis: transactions with WATCH, functions, and a client
talking to Redis directly changing a watched key."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager

import pytest
import redis.asyncio as aioredis

from jshost.host import Host
from jshost.server import Server
from jshost.store import EmbeddedStore, RemoteStore, Store
from tests.redis_server import RedisServer

LIB = "#!js api_version=1.0 name=lib\nredis.register_function('incr', (c, k) => c.call('incr', k));"


@pytest.fixture(scope="module")
def backend(store_server: str) -> Iterator[RedisServer]:
    with RedisServer(binary=store_server) as srv:
        yield srv


@asynccontextmanager
async def serving(store: Store, code: str) -> AsyncIterator[Server]:
    """A started server over `store` (emptied first when it is a real Redis) with the library
    `code` loaded; everything is stopped and closed afterwards."""
    if isinstance(store, RemoteStore):
        await store.open_session().execute([b"FLUSHALL"])
    host = Host(store)
    host.load(code)
    srv = Server(host, port=0)
    await srv.start()
    try:
        yield srv
    finally:
        await srv.shutdown()
        host.close()
        await store.aclose()


def a_store(kind: str, backend: RedisServer) -> Store:
    return EmbeddedStore() if kind == "embedded" else RemoteStore(backend.url)


@pytest.fixture
async def server(backend: RedisServer) -> AsyncIterator[Server]:
    async with serving(RemoteStore(backend.url), LIB) as srv:
        yield srv


async def test_watch_multi_exec_through_jshost(server: Server, backend: RedisServer) -> None:
    client = aioredis.Redis(port=server.port)
    direct = aioredis.Redis(port=backend.port)
    try:
        await client.set("a", 1)
        async with client.pipeline(transaction=True) as pipe:
            await pipe.watch("a")
            pipe.multi()
            pipe.incr("a")
            pipe.execute_command("RG.FCALL", "lib", "incr", "1", "a")
            assert await pipe.execute() == [2, 3]
        async with client.pipeline(transaction=True) as pipe:
            await pipe.watch("a")
            await direct.set("a", 100)  # a client bypassing jshost touches the watched key
            pipe.multi()
            pipe.incr("a")
            with pytest.raises(aioredis.WatchError):
                await pipe.execute()
        assert await client.get("a") == b"100"
    finally:
        await client.aclose()
        await direct.aclose()


async def test_resp3_replies_are_redis_bytes_unchanged(
    server: Server, backend: RedisServer
) -> None:
    """Through jshost and straight from redis-server, the same commands give the same bytes."""
    from tests.server_fixture import RawClient

    commands = [
        ["HELLO", "3"], ["HSET", "h", "f", "1.5"], ["HGETALL", "h"], ["INCRBYFLOAT", "x", "1.5"],
        ["ZADD", "z", "1", "m"], ["ZRANGE", "z", "0", "-1", "WITHSCORES"], ["SMEMBERS", "nope"],
        ["GET", "missing"], ["OBJECT", "ENCODING", "h"], ["LPOP", "h"],
        # Redis 7.0 writes this double with %.17g (0.33333333333333331), jshost's encoder
        # with the shortest form: only forwarding the bytes gives what redis-server sent.
        ["ZADD", "z2", "0.3333333333333333", "m"], ["ZSCORE", "z2", "m"],
    ]
    seen = []
    direct = aioredis.Redis(port=backend.port)
    for port in (server.port, backend.port):
        await direct.flushall()
        raw = await RawClient.connect(port)
        try:
            await raw.send_commands(*commands)
            seen.append([await raw.reply_raw() for _ in commands][1:])  # HELLO differs (server)
        finally:
            await raw.close()
    await direct.aclose()
    assert seen[0] == seen[1]


RMW = r"""#!js api_version=1.0 name=rmw
// Read-modify-write in two commands: exact only if nothing else runs in between.
redis.register_function('bump', (c, k) => {
  const n = Number(c.call('get', k) || '0');
  c.call('set', k, String(n + 1));
  return n + 1;
});
"""


@pytest.mark.parametrize("kind", ["embedded", "redis"])
async def test_atomic_functions_under_load_through_the_server(
    kind: str, backend: RedisServer
) -> None:
    """Clients pipelining INCRs and clients calling a two-step read-modify-write function on
    the same counter, all through jshost: the final count is exact on both stores."""
    async with serving(a_store(kind, backend), RMW) as srv:
        clients = [aioredis.Redis(port=srv.port) for _ in range(6)]
        rounds = 200
        try:
            async def incrs(c: aioredis.Redis) -> None:
                for _ in range(rounds // 20):
                    async with c.pipeline(transaction=False) as pipe:
                        for _ in range(20):
                            pipe.incr("counter")
                        await pipe.execute()

            async def bumps(c: aioredis.Redis) -> None:
                for _ in range(rounds):
                    await c.execute_command("RG.FCALL", "rmw", "bump", "1", "counter")

            await asyncio.gather(*(incrs(c) for c in clients[:3]),
                                 *(bumps(c) for c in clients[3:]))
            assert int(await clients[0].get("counter")) == 6 * rounds
        finally:
            for c in clients:
                await c.aclose()


def protected_ping(server: RedisServer) -> bool:
    from redis_server import ping

    return ping(server.port, server.password)


async def test_jshost_credentials_for_the_backend_stay_hidden(store_server: str) -> None:
    """In front of a password-protected Redis, a client of jshost can neither read nor change
    the backend's password, nor list its users."""
    with RedisServer(password="s3cret-backend", binary=store_server) as protected:
        store = RemoteStore(protected.url)
        host = Host(store)
        srv = Server(host, port=0)
        await srv.start()
        client = aioredis.Redis(port=srv.port)
        try:
            config = await client.config_get("*")
            assert b"s3cret-backend" not in str(config).encode()
            assert config["requirepass"] == ""  # jshost's own password (none), as Redis shows it
            assert "maxmemory" in config  # other backend settings still show
            with pytest.raises(aioredis.ResponseError, match="credentials"):
                await client.config_set("masterauth", "changed")
            # CONFIG SET requirepass sets jshost's own password, never the backend's.
            assert await client.config_set("requirepass", "jshost-pw") is True
            assert protected_ping(protected)
            with pytest.raises(aioredis.ResponseError, match="credentials"):
                await client.execute_command("ACL", "LIST")
            await client.execute_command("AUTH", "jshost-pw")
            assert await client.execute_command("ACL", "WHOAMI") == b"default"
        finally:
            await client.aclose()
            await srv.shutdown()
            host.close()
            await store.aclose()


# --- pipelining through to the backend -------------------------------------------------------

# A pipeline mixing commands the backend runs pipelined, commands jshost answers itself (PING,
# RG.FCALL), errors, a blocking command that finds its data and a stateful one at the end. With
# RG.FCALL's work done by INCR, redis-server answers the same pipeline with the same bytes.
MIXED_PIPELINE = [
    ["SET", "k", "1"], ["INCR", "k"], ["GET", "k"], ["PING"], ["RG.FCALL", "lib", "incr", "1", "k"],
    ["GET", "k"], ["GET"], ["NOSUCHCOMMAND", "x"], ["RPUSH", "q", "a", "b"], ["MGET", "k", "q"],
    ["BLPOP", "q", "0"], ["LRANGE", "q", "0", "-1"], ["PING", "hi"],
    ["RG.FCALL", "lib", "incr", "1", "k"], ["GET", "k"], ["CLIENT", "SETNAME", "me"],
    ["GET", "k"], ["ZADD", "z", "1.5", "m"], ["ZRANGE", "z", "0", "-1", "WITHSCORES"],
]


def _as_redis(command: list[str]) -> list[str]:
    return ["INCR", command[4]] if command[0] == "RG.FCALL" else command


@pytest.mark.parametrize("protocol", [2, 3])
async def test_a_mixed_pipeline_gets_redis_replies_in_order(
    server: Server, backend: RedisServer, protocol: int
) -> None:
    from tests.server_fixture import RawClient

    seen = []
    direct = aioredis.Redis(port=backend.port)
    for port, commands in ((server.port, MIXED_PIPELINE),
                           (backend.port, [_as_redis(c) for c in MIXED_PIPELINE])):
        await direct.flushall()
        raw = await RawClient.connect(port)
        try:
            hello = [["HELLO", "3"]] if protocol == 3 else []
            await raw.send_commands(*hello, *commands)  # one write: the whole pipeline
            replies = [await raw.reply_raw() for _ in hello + commands]
            seen.append(replies[len(hello):])
        finally:
            await raw.close()
    await direct.aclose()
    assert seen[0] == seen[1]


async def test_a_pipeline_reaches_the_backend_as_a_pipeline(server: Server) -> None:
    """A client's pipelined GETs are all written to the backend before the first reply comes
    back; without pipelining each one would wait for the reply of the one before."""
    from tests.server_fixture import RawClient

    store = server.ctx.store
    assert isinstance(store, RemoteStore)
    raw = await RawClient.connect(server.port)
    try:
        assert await raw.call("SET", "k", "v") == b"OK"  # the shared connection is open now
        in_flight = _count_in_flight(store)
        count = 200
        await raw.send_commands(*[["GET", "k"]] * count)
        assert await raw.replies(count) == [b"v"] * count
        assert len(in_flight) == count
        assert max(in_flight) >= 20  # (the 200 commands may come in a few reads)
    finally:
        await raw.close()


def _count_in_flight(store: RemoteStore) -> list[int]:
    """From now on, each command submitted on the shared backend connection appends how many
    commands are in flight on it (its own included) to the returned list."""
    conn = store.shared_connection(0)
    in_flight: list[int] = []
    submit = conn.submit

    def counting_submit(args: list[bytes], as_raw: bool) -> asyncio.Future[object]:
        future = submit(args, as_raw)
        in_flight.append(len(conn.pipeline.pending))
        return future

    conn.submit = counting_submit  # type: ignore[method-assign]
    return in_flight


async def test_a_pipeline_waits_for_a_trigger_it_may_fire(backend: RedisServer) -> None:
    """A command whose key a keyspace trigger watches is not pipelined: the next command of
    the pipeline sees what the sync trigger wrote."""
    from tests.server_fixture import RawClient

    code = ("#!js api_version=1.0 name=trig\n"
            "redis.register_notifications_consumer('copy', 'src:', (c, data) => {\n"
            "  c.call('set', 'seen:' + data.key, c.call('get', data.key) ?? 'gone');\n"
            "});")
    async with serving(RemoteStore(backend.url), code) as srv:
        await srv.ctx.host.start_triggers()
        raw = await RawClient.connect(srv.port)
        try:
            await raw.send_commands(*[c for i in range(20) for c in (
                ["SET", f"src:{i}", str(i)], ["GET", f"seen:src:{i}"])])
            replies = await raw.replies(40)
            assert replies[1::2] == [str(i).encode() for i in range(20)]
        finally:
            await raw.close()


async def test_a_client_gone_with_pipelined_replies_due_harms_nobody(server: Server) -> None:
    from tests.server_fixture import RawClient

    for _ in range(5):
        gone = await RawClient.connect(server.port)
        await gone.send_commands(*[["INCR", "n"]] * 500)
        await gone.close()  # before any reply: they are dropped
    other = await RawClient.connect(server.port)
    try:
        # Every INCR sent ran (the backend got them); the next client is served in order.
        total = int(await other.call("GET", "n") or 0)
        assert 0 <= total <= 2500
        await other.send_commands(*[["INCR", "m"]] * 100)
        assert await other.replies(100) == list(range(1, 101))
    finally:
        await other.close()


async def test_a_long_pipeline_is_sent_in_bounded_steps(server: Server) -> None:
    """5 000 pipelined commands: at most MAX_PIPELINED in flight for the client, every reply
    in order."""
    from jshost.connection import MAX_PIPELINED
    from tests.server_fixture import RawClient

    store = server.ctx.store
    assert isinstance(store, RemoteStore)
    raw = await RawClient.connect(server.port)
    try:
        assert await raw.call("SET", "n", "0") == b"OK"
        in_flight = _count_in_flight(store)
        count = 5000
        await raw.send_commands(*[["INCR", "n"]] * count)
        assert await raw.replies(count) == list(range(1, count + 1))
        assert MAX_PIPELINED // 2 <= max(in_flight) <= MAX_PIPELINED
    finally:
        await raw.close()


@pytest.mark.parametrize("kind", ["embedded", "redis"])
async def test_a_half_closed_client_gets_every_reply_then_the_connection_closes(
    kind: str, backend: RedisServer
) -> None:
    """What a client sent before its EOF is all answered (pipelined commands and those that
    waited behind them), as Redis answers what it read, and then the connection is closed."""
    from jshost.resp import ReplyParser, encode_command

    commands = [[b"INCR", b"n"]] * 50 + [[b"RG.FCALL", b"lib", b"incr", b"1", b"n"],
                                         [b"GET", b"n"]]
    async with serving(a_store(kind, backend), LIB) as srv:
        reader, writer = await asyncio.open_connection("127.0.0.1", srv.port)
        writer.write(b"".join(encode_command(c) for c in commands))
        writer.write_eof()
        data = await asyncio.wait_for(reader.read(), 10)  # until the server closes
        writer.close()
    parser = ReplyParser()
    parser.feed(data)
    replies = [parser.get_reply() for _ in commands]
    assert replies == [*range(1, 52), b"51"]
