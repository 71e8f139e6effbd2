"""DEBUG RELOAD / DEBUG LOADAOF, on the embedded store and in front of a real Redis / Valkey:
the data comes back unchanged, libraries are loaded again from nothing (their CONFIG kept),
stream triggers go on from the last entry they read, nothing fires for what is loaded, and a
library that no longer loads fails the load (docs/architecture.md, "DEBUG RELOAD")."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
import redis.asyncio as aioredis
from redis.exceptions import ResponseError

from jshost.errors import ReloadErrors
from jshost.host import Host
from jshost.host.limits import Limits
from jshost.server import Server
from jshost.settings import Settings
from jshost.store import EmbeddedStore, RemoteStore
from tests.redis_server import MISSING_SERVER, SERVER_BINARIES, RedisServer
from tests.server_fixture import wait_until

STORES = [
    pytest.param("embedded", id="embedded"),
    *(pytest.param(kind, id=kind, marks=[] if binary is not None else
                   [pytest.mark.skip(reason=MISSING_SERVER[kind])])
      for kind, binary in SERVER_BINARIES.items()),
]
SETTINGS = {"enable-debug-command": "yes"}

COUNTER = """#!js api_version=1.0 name=counter
let calls = 0;
redis.register_function('calls', () => ++calls, ['no-writes']);
redis.register_function('config', () => redis.config.greeting, ['no-writes']);
redis.register_notifications_consumer('count', 'k:', (c, d) => {
    if (d.event === 'set') c.call('incr', 'count');
});
"""
STREAMS = """#!js api_version=1.0 name=streams
const waiting = [];
redis.register_stream_consumer('c', 'st', 1, false, async (c, d) => {
    await new Promise((resolve) => waiting.push(resolve));
});
redis.register_function('waiting', () => waiting.length, ['no-writes']);
redis.register_function('release', () => { waiting.shift()(); return 1; }, ['no-writes']);
"""


@pytest.fixture(scope="module", params=STORES)
def store_kind(request: pytest.FixtureRequest,
               tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer | None]:
    if request.param == "embedded":
        yield None
        return
    files = tmp_path_factory.mktemp("reload")  # its RDB and AOF, out of the working directory
    with RedisServer("--enable-debug-command", "yes", "--appendonly", "yes", "--dir", str(files),
                     binary=SERVER_BINARIES[request.param]) as srv:
        yield srv


@asynccontextmanager
async def gears(backend: RedisServer | None, **settings: str) -> AsyncIterator[Any]:
    store = EmbeddedStore() if backend is None else RemoteStore(backend.url)
    host = Host(store, Settings({**SETTINGS, **settings}))
    if backend is not None:
        store.sync.round_trip([[b"FLUSHALL"]])
        await host.start_triggers()  # as `jshost serve` does: notifications before clients
    server = Server(host, port=0)
    await server.start()
    client = aioredis.Redis(port=server.port)
    try:
        client.host = host
        yield client
    finally:
        await client.aclose()
        await server.shutdown()
        host.close()
        await store.aclose()


async def count_is(client: aioredis.Redis, value: int) -> bool:
    return await client.get("count") == str(value).encode()


@pytest.mark.parametrize("command", [["DEBUG", "RELOAD"], ["DEBUG", "LOADAOF"]])
async def test_libraries_come_back_from_nothing(store_kind: RedisServer | None,
                                                command: list[str]) -> None:
    async with gears(store_kind) as c:
        await c.execute_command("RG.FUNCTION", "LOAD", "CONFIG", '{"greeting": "hi"}', COUNTER)
        await c.set("k:1", "a")
        await wait_until(lambda: count_is(c, 1), what="the trigger")
        assert await c.execute_command("RG.FCALL", "counter", "calls", 0) == 1
        assert await c.execute_command("RG.FCALL", "counter", "calls", 0) == 2
        assert await c.execute_command(*command) == b"OK"
        # a new heap, the same CONFIG, and nothing counted twice
        assert await c.execute_command("RG.FCALL", "counter", "calls", 0) == 1
        assert await c.execute_command("RG.FCALL", "counter", "config", 0) == b"hi"
        (listing,) = await c.execute_command("RG.FUNCTION", "LIST", "vv")
        assert listing[b"configuration"] == b'{"greeting": "hi"}'
        assert await c.get("count") == b"1"
        (trigger,) = listing[b"notifications_consumers"]
        assert trigger[b"num_triggered"] == 0
        await c.set("k:2", "b")  # the next write fires again
        await wait_until(lambda: count_is(c, 2), what="the trigger after the reload")


async def test_data_is_unchanged_on_the_embedded_store() -> None:
    async with gears(None) as c:
        await c.set("s", "v", px=500_000)
        await c.rpush("l", "a", "b")
        await c.xadd("x", {"f": "v"}, id="5-1")
        await c.xadd("x", {"f": "v"}, id="5-2")
        await c.xdel("x", "5-2")
        before = (await c.pexpiretime("s"), await c.lrange("l", 0, -1),
                  await c.xrange("x"), (await c.xinfo_stream("x"))["last-generated-id"])
        await c.execute_command("RG.FUNCTION", "LOAD", COUNTER)
        await c.config_set("appendonly", "yes")
        assert await c.execute_command("DEBUG", "RELOAD") == b"OK"
        assert await c.execute_command("DEBUG", "LOADAOF") == b"OK"
        after = (await c.pexpiretime("s"), await c.lrange("l", 0, -1),
                 await c.xrange("x"), (await c.xinfo_stream("x"))["last-generated-id"])
        assert after == before
        assert await c.config_get("appendonly") == {"appendonly": "yes"}


async def test_reload_options_on_the_embedded_store() -> None:
    async with gears(None) as c:
        await c.execute_command("RG.FUNCTION", "LOAD", COUNTER)
        for options in (["MERGE"], ["noflush", "NOSAVE"]):
            assert await c.execute_command("DEBUG", "RELOAD", *options) == b"OK"
        with pytest.raises(ResponseError) as info:
            await c.execute_command("DEBUG", "RELOAD", "FAST")
        assert str(info.value) == ReloadErrors.RELOAD_OPTIONS.removeprefix("ERR ")


async def test_reload_needs_no_debug_setting_on_the_embedded_store() -> None:
    async with gears(None, **{"enable-debug-command": "no"}) as c:
        assert await c.execute_command("DEBUG", "RELOAD") == b"OK"


@pytest.mark.parametrize("command", [["DEBUG", "RELOAD"], ["DEBUG", "LOADAOF"]])
async def test_stream_triggers_go_on_after_the_last_entry_read(
        store_kind: RedisServer | None, command: list[str]) -> None:
    async with gears(store_kind) as c:
        await c.execute_command("RG.FUNCTION", "LOAD", STREAMS)

        async def waiting(count: int) -> bool:
            return await c.execute_command("RG.FCALL", "streams", "waiting", 0) == count

        host = c.host
        await c.xadd("st", {"f": "1"}, id="1-1")
        await c.xadd("st", {"f": "2"}, id="1-2")
        await wait_until(lambda: waiting(1), what="entry 1-1 in flight")
        await c.execute_command("RG.FCALL", "streams", "release", 0)
        await wait_until(lambda: waiting(1), what="entry 1-2 in flight")
        state = host.libraries["streams"].stream_triggers["c"].streams[b"st"]
        assert (state.last_read_id, state.records_processed) == ("1-2", 1)
        assert await c.execute_command(*command) == b"OK"
        # the same position at once, statistics from nothing; 1-2 (in flight) is not read again
        state = host.libraries["streams"].stream_triggers["c"].streams[b"st"]
        assert (state.last_read_id, state.records_processed, state.pending) == ("1-2", 0, {})
        assert await c.execute_command("RG.FCALL", "streams", "waiting", 0) == 0
        await c.xadd("st", {"f": "3"}, id="1-3")
        await wait_until(lambda: waiting(1), what="entry 1-3 in flight")
        assert state.last_read_id == "1-3"


async def test_a_library_that_no_longer_loads_fails_the_reload(
        store_kind: RedisServer | None, caplog: pytest.LogCaptureFixture) -> None:
    """The libraries before it stay; the embedded store's data is emptied (as Redis' is)."""
    big = COUNTER.replace("name=counter", "name=big") + "//" + "x" * 2000 + "\n"
    async with gears(store_kind) as c:
        await c.execute_command("RG.FUNCTION", "LOAD", COUNTER)
        await c.execute_command("RG.FUNCTION", "LOAD", big)
        await c.set("kept", "1")
        await c.execute_command("CONFIG", "SET", "redisgears_2.library-max-code-size", "1024")
        with caplog.at_level(logging.ERROR, logger="jshost"), \
                pytest.raises(ResponseError) as info:
            await c.execute_command("DEBUG", "RELOAD")
        assert str(info.value) == ReloadErrors.RELOAD_FAILED.removeprefix("ERR ")
        assert "Failed loading functions from rdb, Failed loading librart, ERR library code " \
            "too large" in caplog.text
        names = [entry[b"name"] for entry in await c.execute_command("RG.FUNCTION", "LIST")]
        assert names == [b"counter"]
        assert await c.get("kept") == (None if store_kind is None else b"1")


async def test_replayed_writes_fire_nothing_on_a_backend(store_kind: RedisServer | None) -> None:
    """A replayed AOF notifies every write again: no trigger may count them."""
    if store_kind is None:
        pytest.skip("the embedded store replays nothing: its data is left as it is")
    async with gears(store_kind) as c:
        await c.execute_command("RG.FUNCTION", "LOAD", COUNTER)
        for i in range(5):
            await c.set(f"k:{i}", "v")
        await wait_until(lambda: count_is(c, 5), what="the triggers")
        assert await c.execute_command("DEBUG", "LOADAOF") == b"OK"
        await c.set("other", "v")  # a fence: its events come after any of the replay
        assert await c.get("count") == b"5"
        await c.set("k:9", "v")
        await wait_until(lambda: count_is(c, 6), what="the trigger after the reload")


def test_tf_loads_with_the_data_under_the_db_loading_timeout() -> None:
    settings = Settings({"lock-redis-timeout": "200", "db-loading-lock-redis-timeout": "5000"})
    limits = Limits(settings, Host().engine, {})
    assert limits.load_deadline("tf", True) == 5.0
    assert limits.load_deadline("rg", True) == 0.2
    assert limits.load_deadline("tf", False) == 0.2
