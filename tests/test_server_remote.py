"""`jshost serve` in front of a real Redis: transactions with WATCH, functions, and a client
talking to Redis directly changing a watched key."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
import redis.asyncio as aioredis

from jshost.host import Host
from jshost.server import Server
from jshost.store import RemoteStore
from tests.redis_server import REDIS_SERVER, RedisServer

pytestmark = pytest.mark.skipif(REDIS_SERVER is None, reason="redis-server is not on PATH")

LIB = "#!js api_version=1.0 name=lib\nredis.register_function('incr', (c, k) => c.call('incr', k));"


@pytest.fixture(scope="module")
def backend() -> Iterator[RedisServer]:
    with RedisServer() as srv:
        yield srv


@pytest.fixture
async def server(backend: RedisServer) -> AsyncIterator[Server]:
    store = RemoteStore(backend.url)
    await store.open_session().execute([b"FLUSHALL"])
    host = Host(store)
    host.load(LIB)
    srv = Server(host, port=0)
    await srv.start()
    yield srv
    await srv.shutdown()
    host.close()
    await store.aclose()


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
