"""A jshost server over each store, for the Gears behaviour tests (issue 16).

`store_kind` (a fixture, see `STORE_KINDS`) is "embedded", "redis" or "valkey"; `gears_server`
starts an in-process jshost over that store (a real server per module for the backends, started
with `--enable-debug-command yes`, emptied before each use) with the given settings and
libraries. Missing server binaries skip with the reason.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager

import pytest
import redis.asyncio as aioredis

from jshost.errors import Era
from jshost.host import Host
from jshost.server import Server
from jshost.settings import Settings
from jshost.store import EmbeddedStore, RemoteStore, Store
from tests.redis_server import MISSING_SERVER, SERVER_BINARIES, RedisServer

STORE_KINDS = [
    pytest.param("embedded", id="embedded"),
    *(pytest.param(kind, id=kind,
                   marks=[pytest.mark.skip(reason=MISSING_SERVER[kind])] if binary is None else [])
      for kind, binary in SERVER_BINARIES.items()),
]


class Backends:
    """Real servers started on first use, one per kind, for a whole module."""

    def __init__(self) -> None:
        self.servers: dict[str, RedisServer] = {}

    def url(self, kind: str) -> str:
        server = self.servers.get(kind)
        if server is None:
            server = RedisServer("--enable-debug-command", "yes", binary=SERVER_BINARIES[kind])
            server.start()
            self.servers[kind] = server
        return server.url

    def stop(self) -> None:
        for server in self.servers.values():
            server.stop()


@pytest.fixture(scope="module")
def backends() -> Iterator[Backends]:
    owned = Backends()
    yield owned
    owned.stop()


def make_store(kind: str, backends: Backends) -> Store:
    return EmbeddedStore() if kind == "embedded" else RemoteStore(backends.url(kind))


@asynccontextmanager
async def gears_server(store: Store, *libraries: tuple[Era, str],
                       **settings: str) -> AsyncIterator[Server]:
    """A started server over `store` (a backend is emptied first) with `libraries` (era, code)
    loaded; settings by their names with `_` for `-`."""
    if isinstance(store, RemoteStore):
        await store.open_session().execute([b"FLUSHALL"])
    values = {name.replace("_", "-"): value for name, value in settings.items()}
    host = Host(store, Settings(values))
    for era, code in libraries:
        host.load(code, era=era)
    server = Server(host, port=0)
    await server.start()
    try:
        yield server
    finally:
        await server.shutdown()
        host.close()
        await store.aclose()


@asynccontextmanager
async def gears_client(store: Store, *libraries: tuple[Era, str], protocol: int = 2,
                       **settings: str) -> AsyncIterator[aioredis.Redis]:
    """A redis-py client of `gears_server(store, *libraries, **settings)`."""
    async with gears_server(store, *libraries, **settings) as server:
        client = aioredis.Redis(port=server.port, protocol=protocol)
        try:
            yield client
        finally:
            await client.aclose()


async def error_of(awaitable: object) -> str:
    """The error text a command fails with (fails the test if it succeeds)."""
    with pytest.raises(aioredis.ResponseError) as info:
        await awaitable  # type: ignore[misc]
    return str(info.value)
