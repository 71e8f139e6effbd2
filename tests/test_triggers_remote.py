"""Triggers in front of a real Redis (SPEC §7, §8, §11 rows 7-8): keyspace notifications with
fences, muting of JS writes, stream positions kept in Redis, and the lease between instances."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest
from listeners import EventCallback

from jshost.host import Host
from jshost.host.streams import LEASE_KEY, POSITIONS_KEY
from jshost.store import RemoteStore
from jshost.store.remote import BackendError
from tests.redis_server import RedisServer

KEYSPACE = r"""#!js api_version=1.0 name=lib
redis.register_notifications_consumer('stamp', 'user:', (c, d) => {
    if (d.event === 'hset') c.call('hset', d.key, '__last_updated__', String(Date.now()));
});
redis.register_notifications_consumer('log', 'k', (c, d) => {
    c.call('rpush', 'log', d.event + ' ' + d.key);
});
redis.register_function('write', (c, k) => c.call('set', k, 'from-js'));
"""

STREAMS = r"""#!js api_version=1.0 name=lib
redis.register_stream_consumer('c', 'st:', 1, %s, (c, d) => {
    c.call('rpush', 'seen:' + d.stream_name, d.id[0] + '-' + d.id[1]);
});
"""


@pytest.fixture(scope="module")
def server(store_server: str) -> Iterator[RedisServer]:
    with RedisServer(binary=store_server) as srv:
        yield srv


class Instances:
    """Hosts on their own RemoteStores in front of the same Redis (as separate jshost
    processes would be), closed at the end of the test."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.hosts: list[Host] = []

    async def new(self, code: str | None = None, *, lease_ms: int | None = None,
                  start: bool = True) -> Host:
        host = Host(RemoteStore(self.url))
        self.hosts.append(host)
        assert host.triggers.remote is not None
        if lease_ms is not None:
            host.triggers.remote.lease_ms = lease_ms
        if code is not None:
            host.load(code)
        if start:
            await host.start_triggers()
        return host

    async def close(self, host: Host) -> None:
        if host in self.hosts:
            self.hosts.remove(host)
            host.close()
            await host.store.aclose()

    async def crash(self, host: Host) -> None:
        """Stop `host` without giving up its lease (as a killed process would)."""
        remote = host.triggers.remote
        assert remote is not None
        remote.leader = False  # so close() does not release the lease
        await self.close(host)


@pytest.fixture
async def instances(server: RedisServer) -> AsyncIterator[Instances]:
    admin = RemoteStore(server.url)
    session = admin.open_session()
    await session.execute([b"FLUSHALL"])
    await session.execute([b"CONFIG", b"SET", b"notify-keyspace-events", b""])
    group = Instances(server.url)
    yield group
    for host in list(group.hosts):
        await group.close(host)
    await admin.aclose()


@pytest.fixture
async def bypass(server: RedisServer) -> AsyncIterator[Any]:
    """A client that talks to Redis directly, not through any jshost."""
    store = RemoteStore(server.url)
    yield store.open_session()
    await store.aclose()


async def until(condition: Callable[[], Any], rounds: int = 10_000) -> None:
    for _ in range(rounds):
        if await condition():
            return
        await asyncio.sleep(0)
    raise AssertionError("condition never became true")


def stats(host: Host, name: str) -> Any:
    return host.libraries["lib"].keyspace_triggers[name].stats


# --- keyspace triggers ----------------------------------------------------------------------


async def test_notifications_are_turned_on_and_logged(instances, caplog):
    host = await instances.new(KEYSPACE)
    reply = await host.store.open_session().execute(
        [b"CONFIG", b"GET", b"notify-keyspace-events"])
    assert set(reply[b"notify-keyspace-events"].decode()) >= set("AEm")
    assert "notify-keyspace-events" in caplog.text


async def test_sync_trigger_runs_before_the_reply(instances):
    host = await instances.new(KEYSPACE)
    s = host.store.open_session()
    for i in range(50):
        assert await s.execute([b"HSET", b"user:%d" % i, b"name", b"n"]) == 1
        stamped = await s.execute([b"HGET", b"user:%d" % i, b"__last_updated__"])
        assert stamped is not None and int(stamped) > 0
    assert stats(host, "stamp").num_success == 50


async def test_start_triggers_waits_for_a_start_already_under_way(instances):
    """Loading the first trigger begins a start in the background; `start_triggers` called
    while it runs must return only once this instance leads, not at once."""
    host = await instances.new(start=False)
    host.load(KEYSPACE)  # schedules the background start
    await asyncio.sleep(0)  # (lets it begin and wait on its connection: the interleaving tested)
    await host.start_triggers()
    assert host.store.keyspace_events_running
    assert host.triggers.remote is not None and host.triggers.remote.leader


async def test_events_data_and_muting(instances):
    host = await instances.new(KEYSPACE)
    s = host.store.open_session()
    await s.execute([b"SET", b"k1", b"v"])
    await s.execute([b"GET", b"k-missing"])
    await s.execute([b"DEL", b"k1"])
    assert await host.fcall("lib", "write", ["k-js"]) == b"OK"  # a JS write: muted
    assert await s.execute([b"LRANGE", b"log", b"0", b"-1"]) == [
        b"set k1", b"keymiss k-missing", b"del k1"]
    assert stats(host, "log").num_triggered == 3  # its own RPUSHes did not fire it


async def test_writes_bypassing_jshost_fire_asynchronously(instances, bypass):
    host = await instances.new(KEYSPACE)
    await bypass.execute([b"SET", b"k-direct", b"v"])
    await host.store.fence()  # every event so far has been delivered
    s = host.store.open_session()
    assert await s.execute([b"LRANGE", b"log", b"0", b"-1"]) == [b"set k-direct"]


async def test_active_expiry_fires(instances):
    host = await instances.new(KEYSPACE)
    expired = asyncio.Event()
    listener = host.store.listener

    def spy(tag: Any, db: int, event: bytes, key: bytes) -> None:
        listener.on_event(tag, db, event, key)
        if event == b"expired":
            expired.set()

    host.store.set_listener(EventCallback(spy, like=listener))
    s = host.store.open_session()
    await s.execute([b"SET", b"k-ttl", b"v", b"PX", b"20"])
    await asyncio.wait_for(expired.wait(), 10)
    assert (await s.execute([b"LRANGE", b"log", b"0", b"-1"]))[-1] == b"expired k-ttl"


async def test_config_set_refused_is_a_clear_error(store_server: str):
    with RedisServer("--rename-command", "CONFIG", '""', binary=store_server) as srv:
        host = Host(RemoteStore(srv.url))
        try:
            host.load(KEYSPACE)
            with pytest.raises(BackendError) as info:
                await host.start_triggers()
            assert "notify-keyspace-events" in str(info.value)
            assert "refused" in str(info.value)
        finally:
            host.close()
            await host.store.aclose()


# --- stream triggers ------------------------------------------------------------------------


async def test_stream_entries_processed_and_trimmed(instances):
    host = await instances.new(STREAMS % "true")
    s = host.store.open_session()
    added: dict[bytes, list[bytes]] = {}
    for i in range(300):
        stream = b"st:%d" % (i % 3)
        added.setdefault(stream, []).append(await s.execute([b"XADD", stream, b"*", b"i", b"1"]))
    await host.store.fence()

    async def done() -> bool:
        return [await s.execute([b"LLEN", b"seen:" + k]) for k in added] == [100] * 3

    await until(done)
    for stream, ids in added.items():
        assert await s.execute([b"LRANGE", b"seen:" + stream, b"0", b"-1"]) == ids
        await until(lambda stream=stream: _equals(s, [b"XLEN", stream], 0))
    positions = await s.execute([b"HGETALL", POSITIONS_KEY])
    assert sorted(positions) == [b"lib\0c\0st:0", b"lib\0c\0st:1", b"lib\0c\0st:2"]


async def _equals(session: Any, command: list[bytes], value: Any) -> bool:
    return await session.execute(command) == value


async def test_a_new_instance_resumes_from_the_positions_in_redis(instances, bypass):
    first = await instances.new(STREAMS % "false")
    s = first.store.open_session()
    added = [await s.execute([b"XADD", b"st:r", b"*", b"i", b"%d" % i]) for i in range(100)]
    await until(lambda: _equals(s, [b"LLEN", b"seen:st:r"], 100))
    await instances.close(first)  # a graceful stop gives the lease up
    # written while no jshost runs the triggers
    added += [await bypass.execute([b"XADD", b"st:r", b"*", b"i", b"%d" % i])
              for i in range(100, 150)]
    second = await instances.new(STREAMS % "false")
    assert second.triggers.remote is not None and second.triggers.remote.leader
    await until(lambda: _equals(bypass, [b"LLEN", b"seen:st:r"], 150))
    seen = await bypass.execute([b"LRANGE", b"seen:st:r", b"0", b"-1"])
    assert seen == added  # none skipped, none repeated (the first stopped cleanly)


async def test_after_a_crash_the_next_instance_takes_over_at_least_once(instances, bypass):
    # A lease long enough that a loaded machine's stalls do not lose it before the crash.
    first = await instances.new(STREAMS % "false", lease_ms=1000)
    second = await instances.new(STREAMS % "false", lease_ms=1000)
    remote1, remote2 = first.triggers.remote, second.triggers.remote
    assert remote1 is not None and remote2 is not None
    assert remote1.leader and not remote2.leader  # one instance runs the triggers
    added = [await bypass.execute([b"XADD", b"st:c", b"*", b"i", b"%d" % i]) for i in range(60)]
    await until(lambda: _equals(bypass, [b"LLEN", b"seen:st:c"], 60))
    await instances.crash(first)  # the lease stays until it expires
    added += [await bypass.execute([b"XADD", b"st:c", b"*", b"i", b"%d" % i])
              for i in range(60, 90)]
    await asyncio.wait_for(remote2.leading.wait(), 10)
    await until(lambda: _equals(bypass, [b"LLEN", b"seen:st:c"], 90))
    seen = await bypass.execute([b"LRANGE", b"seen:st:c", b"0", b"-1"])
    assert set(seen) == set(added)  # at least once: none skipped
    assert [i for i in seen if seen.count(i) == 1] == added  # (and here exactly once)


async def test_only_the_lease_holder_fires_and_another_takes_over(instances):
    first = await instances.new(KEYSPACE)
    second = await instances.new(KEYSPACE)
    assert first.triggers.remote.leader and not second.triggers.remote.leader
    s2 = second.store.open_session()
    await s2.execute([b"SET", b"k-via-second", b"v"])  # fired on the holder, asynchronously
    await first.store.fence()
    assert await s2.execute([b"LRANGE", b"log", b"0", b"-1"]) == [b"set k-via-second"]
    assert stats(second, "log").num_triggered == 0
    lease = await s2.execute([b"GET", LEASE_KEY])
    assert lease == first.triggers.remote.instance
    await instances.close(first)  # gives the lease up
    await second.triggers.remote._tick()  # its next renewal round takes it
    assert second.triggers.remote.leader
    await s2.execute([b"SET", b"k-after", b"v"])  # through the holder now: before the reply
    assert (await s2.execute([b"LRANGE", b"log", b"0", b"-1"]))[-1] == b"set k-after"
