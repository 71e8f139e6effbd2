"""Libraries and data that outlive a jshost process: in a real Redis (as Redis functions, which
survive FLUSHALL and are shared by every jshost in front of it) and in `--dir` for the embedded
store."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from jshost.host import Host
from jshost.persistence import (
    DirectoryArchive,
    LibraryFollower,
    RedisArchive,
    SavedLibrary,
    load_data,
    save_data,
)
from jshost.store import EmbeddedStore, RemoteStore
from tests.redis_server import RedisServer

V1 = "#!js api_version=1.0 name=lib\nredis.register_function('v', () => 1);"
V2 = "#!js api_version=1.0 name=lib\nredis.register_function('v', () => 2);"
TF = "#!js api_version=1.0 name=tflib\nredis.registerFunction('f', () => redis.config.x);"

@pytest.fixture(scope="module")
def server(store_server: str) -> Iterator[RedisServer]:
    with RedisServer(binary=store_server) as srv:
        yield srv


def remote_host(url: str) -> Host:
    store = RemoteStore(url)
    host = Host(store)
    host.archive = RedisArchive(host.session(0))
    return host


async def test_libraries_kept_in_redis_survive_flushall_and_restart(server: RedisServer) -> None:
    first = remote_host(server.url)
    first.session(0).call([b"FUNCTION", b"FLUSH"])
    first.load(V1)
    first.load(TF, config_text='{"x": 7}', era="tf")
    first.session(0).call([b"FLUSHALL"])
    first.close()
    await first.store.aclose()

    second = remote_host(server.url)
    assert second.restore(second.archive.load_all()) == 2
    assert await second.fcall("lib", "v") == 1
    assert await second.fcall("tflib", "f", era="tf") == 7
    second.delete("lib")
    assert [lib.name for lib in second.archive.load_all()] == ["tflib"]
    second.close()
    await second.store.aclose()


async def test_a_change_on_one_instance_reaches_the_other(server: RedisServer) -> None:
    a, b = remote_host(server.url), remote_host(server.url)
    a.session(0).call([b"FUNCTION", b"FLUSH"])
    changed = asyncio.Event()

    def apply(name: str, saved: SavedLibrary | None) -> None:
        b.follow(name, saved)
        changed.set()

    follower = LibraryFollower(b.archive, b.store.open_session(), apply)
    await follower.start()
    a.load(V1)
    await asyncio.wait_for(changed.wait(), 10)
    assert await b.fcall("lib", "v") == 1
    changed.clear()
    a.load(V2, replace=True)
    await asyncio.wait_for(changed.wait(), 10)
    assert await b.fcall("lib", "v") == 2
    changed.clear()
    a.delete("lib")
    await asyncio.wait_for(changed.wait(), 10)
    assert "lib" not in b.libraries
    for h in (a, b):
        h.close()
        await h.store.aclose()


async def test_directory_keeps_libraries_and_data(tmp_path: Path) -> None:
    store = EmbeddedStore()
    host = Host(store)
    host.archive = DirectoryArchive(tmp_path)
    host.load(V1)
    session = store.open_session()
    session.call([b"SET", b"k", b"v"])
    session.call([b"SELECT", b"3"])
    session.call([b"HSET", b"h", b"f", b"x"])
    session.call([b"PEXPIRE", b"h", b"100000"])
    assert save_data(store, tmp_path) == 2
    host.close()

    store2 = EmbeddedStore()
    host2 = Host(store2)
    host2.archive = DirectoryArchive(tmp_path)
    assert host2.restore(host2.archive.load_all()) == 1
    assert load_data(store2, tmp_path) == 2
    assert await host2.fcall("lib", "v") == 1
    s2 = store2.open_session()
    assert s2.call([b"GET", b"k"]) == b"v"
    s2.call([b"SELECT", b"3"])
    assert s2.call([b"HGETALL", b"h"]) == {b"f": b"x"}
    assert 0 < s2.call([b"PTTL", b"h"]) <= 100000
    host2.delete("lib")
    assert DirectoryArchive(tmp_path).load_all() == []


# --- through `jshost serve` -----------------------------------------------------------------------


def _client(port: int):  # noqa: ANN202 - a redis-py client
    import redis

    return redis.Redis(port=port, decode_responses=False)


def test_serve_with_dir_keeps_libraries_and_data_across_restarts(tmp_path: Path) -> None:
    from tests.server_fixture import JshostProcess

    with JshostProcess("--dir", str(tmp_path)) as first:
        c = _client(first.port)
        c.execute_command("RG.FUNCTION", "LOAD", V1)
        c.set("k", "v")
        assert first.stop() == 0  # graceful: data written at shutdown
    with JshostProcess("--dir", str(tmp_path)) as second:
        c = _client(second.port)
        assert c.execute_command("RG.FCALL", "lib", "v", "0") == 1
        assert c.get("k") == b"v"
        c.set("k", "w")
        assert c.execute_command("SAVE") in (b"OK", True)
        second.kill()  # no graceful shutdown: only what SAVE wrote survives
    with JshostProcess("--dir", str(tmp_path)) as third:
        assert _client(third.port).get("k") == b"w"


def test_serve_with_backend_shares_libraries_between_instances(server: RedisServer) -> None:
    from tests.server_fixture import JshostProcess

    _client(server.port).function_flush()
    with JshostProcess("--backend", server.url) as a, JshostProcess("--backend", server.url) as b:
        ca, cb = _client(a.port), _client(b.port)
        ca.execute_command("RG.FUNCTION", "LOAD", V1)
        assert ca.execute_command("RG.FCALL", "lib", "v", "0") == 1
        # b learns of it through pub/sub; poll its LIST (an event on another process).
        _wait_for(lambda: cb.execute_command("RG.FUNCTION", "LIST") != [])
        assert cb.execute_command("RG.FCALL", "lib", "v", "0") == 1
        ca.execute_command("RG.FUNCTION", "LOAD", "UPGRADE", V2)
        _wait_for(lambda: cb.execute_command("RG.FCALL", "lib", "v", "0") == 2)
    _client(server.port).flushall()
    with JshostProcess("--backend", server.url) as c:
        assert _client(c.port).execute_command("RG.FCALL", "lib", "v", "0") == 2


def _wait_for(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    """Poll a condition that another process makes true (there is no event to await across
    processes); fails after `timeout`."""
    import time

    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.02)
