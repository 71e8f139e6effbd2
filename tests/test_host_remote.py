"""The host on a real Redis (`RemoteStore`): functions, background `block()`, and atomicity of
locked sections against client commands pipelined to the same Redis."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import pytest

from jshost.host import Host
from jshost.store import RemoteStore
from tests.redis_server import RedisServer

LIB = r"""#!js api_version=1.0 name=lib
redis.register_function('setget', (c, k, v) => { c.call('set', k, v); return c.call('get', k); });
// Read-modify-write in two round trips: only atomic if nothing else runs in between.
redis.register_function('rmw', (c, k) => {
  const n = Number(c.call('get', k) || '0');
  c.call('set', k, String(n + 1));
  return n + 1;
});
redis.register_async_function('later', async (c, k) => {
  await null;
  return c.block((s) => s.call('incr', k));
});
"""


@pytest.fixture(scope="module")
def server(store_server: str) -> Iterator[RedisServer]:
    with RedisServer(binary=store_server) as srv:
        yield srv


@pytest.fixture
async def host(server: RedisServer) -> AsyncIterator[Host]:
    store = RemoteStore(server.url)
    session = store.open_session()
    await session.execute([b"FLUSHALL"])
    host = Host(store)
    host.load(LIB)
    yield host
    host.close()
    await store.aclose()


async def test_functions_run_against_real_redis(host: Host) -> None:
    assert await host.fcall("lib", "setget", ["k"], ["v"]) == b"v"
    assert await host.fcall_async("lib", "later", ["n"]) == 1
    assert await host.store.open_session().execute([b"GET", b"k"]) == b"v"


async def test_locked_sections_are_atomic_against_pipelined_clients(host: Host) -> None:
    """Clients INCR the counter (pipelined over shared connections) while functions do a
    two-step read-modify-write of it: an INCR landing between the GET and the SET would be
    lost, so the final count is exact only if each function runs alone."""
    # Each section first drains up to 12 000 pipelined INCRs; on a loaded machine that can
    # pass the default 500 ms limit of a JS call's backend wait, which is not what this tests.
    host.settings.set("redisgears_2.lock-redis-timeout", "60000")
    sessions = [host.store.open_session() for _ in range(4)]
    incrs_per_session, functions = 3000, 300

    async def client(session: object) -> None:
        await asyncio.gather(*(session.execute([b"INCR", b"c"])  # type: ignore[attr-defined]
                               for _ in range(incrs_per_session)))

    async def caller() -> None:
        for _ in range(functions):
            await host.fcall("lib", "rmw", ["c"])
            await asyncio.sleep(0)  # let client commands get sent in between

    await asyncio.gather(caller(), *(client(s) for s in sessions))
    total = await sessions[0].execute([b"GET", b"c"])
    assert int(total) == functions + incrs_per_session * len(sessions)
