"""The replica role and maxmemory, as clients of `jshost serve` see them, on the embedded store
and in front of a real Redis / Valkey (`--backend`, with `admin-commands yes` so REPLICAOF
passes): REPLICAOF / SLAVEOF, the entry and `block()` texts of each era, READONLY and OOM for
client commands, keyspace and stream triggers on a replica, maxmemory and INFO memory on the
embedded store (docs/architecture.md, "The gates")."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
import redis.asyncio as aioredis
from redis.exceptions import OutOfMemoryError, ReadOnlyError, ResponseError

from jshost import errors
from jshost.errors import REDIS_OOM, ReplicaErrors
from jshost.host import Host
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


@pytest.fixture(scope="module", params=STORES)
def store_kind(request: pytest.FixtureRequest) -> Iterator[RedisServer | None]:
    """None for the embedded store, else a real server for the module."""
    if request.param == "embedded":
        yield None
        return
    with RedisServer(binary=SERVER_BINARIES[request.param]) as srv:
        yield srv


class Gears:
    """A served host and a client of it."""

    def __init__(self, host: Host, client: aioredis.Redis) -> None:
        self.host = host
        self.client = client

    async def cmd(self, *args: Any) -> Any:
        return await self.client.execute_command(*args)

    async def error(self, *args: Any) -> str:
        """The error text as sent (redis-py takes the READONLY and OOM codes off)."""
        with pytest.raises(ResponseError) as info:
            await self.client.execute_command(*args)
        prefix = {ReadOnlyError: "READONLY ", OutOfMemoryError: "OOM "}.get(type(info.value), "")
        return prefix + str(info.value)

    async def load(self, era: str, body: str, name: str = "lib") -> None:
        command = "RG.FUNCTION" if era == "rg" else "TFUNCTION"
        await self.cmd(command, "LOAD", f"#!js api_version=1.0 name={name}\n{body}")


@asynccontextmanager
async def gears(backend: RedisServer | None) -> AsyncIterator[Gears]:
    store = EmbeddedStore() if backend is None else RemoteStore(backend.url)
    host = Host(store, Settings({"admin-commands": "yes"}))
    server = Server(host, port=0)
    await server.start()
    client = aioredis.Redis(port=server.port)
    for name in ("REPLICAOF", "SLAVEOF"):  # their status replies, not redis-py's True
        client.response_callbacks.pop(name, None)
    try:
        if backend is not None:  # the module's server, as the last test left it
            await client.execute_command("REPLICAOF", "NO", "ONE")
            await client.execute_command("CONFIG", "SET", "maxmemory", "0")
            await client.flushall()
        yield Gears(host, client)
    finally:
        if backend is not None:
            await client.execute_command("REPLICAOF", "NO", "ONE")
            await client.execute_command("CONFIG", "SET", "maxmemory", "0")
        await client.aclose()
        await server.shutdown()
        host.close()
        await store.aclose()


def nobody_port() -> int:
    """A port nothing listens on: a replica's primary that never answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def flags(era: str, *names: str) -> str:
    listed = ", ".join(f"'{n}'" for n in names)
    return f"[{listed}]" if era == "rg" else f"{{flags: [{listed}]}}"


def functions(era: str) -> str:
    """`plain` and `co` (may write), `nw` (no-writes), `oomok` (allow-oom), `writer`
    (allow-oom, writes), and the background-work pair: `start` begins work that waits for
    `release` (no-writes) and then calls block(); `outcome` (no-writes) tells what happened."""
    register = "register_function" if era == "rg" else "registerFunction"
    register_async = "register_async_function" if era == "rg" else "registerAsyncFunction"
    background = "run_on_background" if era == "rg" else "executeAsync"
    return f"""
        let release = null; let outcome = 'none';
        redis.{register}('plain', () => 'ran');
        redis.{register_async}('co', async () => 'ran');
        redis.{register}('nw', (c) => c.call('get', 'k'), {flags(era, 'no-writes')});
        redis.{register}('oomok', () => 'ran', {flags(era, 'allow-oom')});
        redis.{register}('writer', (c) => c.call('set', 'w', '1'), {flags(era, 'allow-oom')});
        redis.{register}('start', (c) => {{
            c.{background}(async (ac) => {{
                await new Promise((resolve) => {{ release = resolve; }});
                try {{ outcome = ac.block((bc) => 'locked'); }} catch (e) {{ outcome = String(e); }}
            }});
            return 'started';
        }});
        redis.{register}('release', () => {{ release(); return 'released'; }},
                         {flags(era, 'no-writes')});
        redis.{register}('waiting', () => release !== null, {flags(era, 'no-writes')});
        redis.{register}('outcome', () => outcome, {flags(era, 'no-writes')});
    """


def call(era: str, fn: str, numkeys: int = 0, asynchronous: bool = False) -> list[Any]:
    """The words of a call of `lib`'s function `fn` in `era`."""
    if era == "rg":
        return ["RG.FCALLASYNC" if asynchronous else "RG.FCALL", "lib", fn, numkeys]
    return ["TFCALLASYNC" if asynchronous else "TFCALL", f"lib.{fn}", numkeys]


async def background_outcome(g: Gears, era: str, change: Any) -> bytes:
    """Start background work, `change` the server, release the work: what its block() met."""
    assert await g.cmd(*call(era, "start")) == b"started"
    await wait_until(lambda: _true(g.cmd(*call(era, "waiting"))), what="work waiting")
    await change()
    assert await g.cmd(*call(era, "release")) == b"released"
    await wait_until(lambda: _changed(g.cmd(*call(era, "outcome"))), what="block()")
    return bytes(await g.cmd(*call(era, "outcome")))


async def _true(reply: Any) -> bool:
    return bool(await reply)


async def _changed(reply: Any) -> bool:
    return bool(await reply != b"none")


# --- REPLICAOF -------------------------------------------------------------------------------


async def test_replicaof_and_its_replies(store_kind: RedisServer | None) -> None:
    async with gears(store_kind) as g:
        port = nobody_port()
        assert await g.cmd("REPLICAOF", "127.0.0.1", port) == b"OK"
        assert g.host.gates.replica  # at once, without waiting for a poll
        assert await g.cmd("SLAVEOF", "127.0.0.1", port) == ReplicaErrors.ALREADY_CONNECTED.encode()
        role = await g.cmd("ROLE")
        assert role[0] == b"slave" and role[2] == port
        info = await g.client.info("replication")
        assert info["role"] == "slave" and info["master_link_status"] == "down"
        assert await g.cmd("REPLICAOF", "NO", "ONE") == b"OK"
        assert not g.host.gates.replica
        assert (await g.cmd("ROLE"))[0] == b"master"
        assert (await g.client.info("replication"))["role"] == "master"


async def test_replicaof_bad_port_embedded() -> None:
    async with gears(None) as g:
        for port in ("abc", "70000", "-1"):
            assert await g.error("REPLICAOF", "127.0.0.1", port) == "Invalid master port"
        assert not g.host.gates.replica


async def test_replicaof_needs_admin_commands_on_a_backend() -> None:
    binary = SERVER_BINARIES["redis"]
    if binary is None:
        pytest.skip(MISSING_SERVER["redis"])
    with RedisServer(binary=binary) as backend:
        store = RemoteStore(backend.url)
        host = Host(store, Settings())
        server = Server(host, port=0)
        await server.start()
        client = aioredis.Redis(port=server.port)
        try:
            with pytest.raises(ResponseError, match="administrative command"):
                await client.execute_command("REPLICAOF", "127.0.0.1", nobody_port())
            assert not host.gates.replica
        finally:
            await client.aclose()
            await server.shutdown()
            host.close()
            await store.aclose()


# --- the replica texts, per era ------------------------------------------------------------


@pytest.mark.parametrize("era", ["rg", "tf"])
async def test_function_entry_on_a_replica(store_kind: RedisServer | None, era: str) -> None:
    async with gears(store_kind) as g:
        await g.load(era, functions(era))
        await g.cmd("SET", "k", "v")
        await g.cmd("REPLICAOF", "127.0.0.1", nobody_port())
        text = errors.writes_on_replica(era)
        for fn, asynchronous in (("plain", False), ("plain", True), ("co", True),
                                 ("oomok", False)):
            assert await g.error(*call(era, fn, 0, asynchronous)) == text
        # before the argument count (the replica check is SPEC §4.1 check 5)
        assert await g.error(*call(era, "plain", 3, False)) == text
        assert await g.cmd(*call(era, "nw", 0, False)) == b"v"
        assert await g.cmd(*call(era, "nw", 0, True)) == b"v"
        await g.cmd("REPLICAOF", "NO", "ONE")
        assert await g.cmd(*call(era, "plain", 0, False)) == b"ran"


async def test_client_writes_on_a_replica(store_kind: RedisServer | None) -> None:
    async with gears(store_kind) as g:
        await g.cmd("SET", "k", "v")
        await g.cmd("REPLICAOF", "127.0.0.1", nobody_port())
        assert await g.error("SET", "k", "w") == ReplicaErrors.READONLY
        assert await g.error("XADD", "s", "*", "f", "v") == ReplicaErrors.READONLY
        assert await g.cmd("GET", "k") == b"v"


async def test_multi_write_on_a_replica_embedded() -> None:
    async with gears(None) as g:
        await g.cmd("REPLICAOF", "127.0.0.1", nobody_port())
        pipe = g.client.pipeline(transaction=True)
        pipe.set("k", "v")
        with pytest.raises(ResponseError, match="read only replica"):  # refused when queued
            await pipe.execute()
        assert await g.cmd("GET", "k") is None


@pytest.mark.parametrize("era", ["rg", "tf"])
async def test_block_on_a_replica(store_kind: RedisServer | None, era: str) -> None:
    async with gears(store_kind) as g:
        await g.load(era, functions(era))

        async def become_replica() -> None:
            await g.cmd("REPLICAOF", "127.0.0.1", nobody_port())

        outcome = await background_outcome(g, era, become_replica)
        assert outcome == errors.can_not_lock_redis(errors.lock_replica_reason(era)).encode()


async def test_keyspace_triggers_on_a_replica_follow_the_era() -> None:
    """rg's fire (and their writes fail READONLY); tf's are not run at all."""
    async with gears(None) as g:
        await g.load("rg", "redis.register_notifications_consumer('t', 'k', "
                     "(c, d) => { c.call('set', 'seen', d.event); });", name="rglib")
        await g.load("tf", "redis.registerKeySpaceTrigger('t', 'k', "
                     "(c, d) => { c.call('set', 'seen', d.event); });", name="tflib")
        rg_stats = g.host.libraries["rglib"].keyspace_triggers["t"].stats
        tf_stats = g.host.libraries["tflib"].keyspace_triggers["t"].stats
        await g.cmd("GET", "kmissing")  # keymiss: both fire on a primary
        assert (rg_stats.num_triggered, tf_stats.num_triggered) == (1, 1)
        await g.cmd("REPLICAOF", "127.0.0.1", nobody_port())
        await g.cmd("GET", "kmissing")
        assert (rg_stats.num_triggered, tf_stats.num_triggered) == (2, 1)
        assert rg_stats.num_failed == 1
        assert rg_stats.last_error is not None
        assert ReplicaErrors.READONLY in rg_stats.last_error.text


@pytest.mark.parametrize("era", ["rg", "tf"])
async def test_stream_trigger_on_a_replica(era: str) -> None:
    """The entry in flight finishes and counts; the next is not read until primary again."""
    if era == "rg":
        consumer = ("redis.register_stream_consumer('c', 'st', 1, false, async (c, d) => "
                    "{ await new Promise((r) => waiting.push(r)); });")
        register = "register_function"
    else:
        consumer = ("redis.registerStreamTrigger('c', 'st', async (c, d) => "
                    "{ await new Promise((r) => waiting.push(r)); }, {window: 1});")
        register = "registerFunction"
    body = f"""const waiting = [];
        {consumer}
        redis.{register}('waiting', () => waiting.length, {flags(era, 'no-writes')});
        redis.{register}('release', () => {{ waiting.shift()(); return 1; }},
                         {flags(era, 'no-writes')});"""
    async with gears(None) as g:
        await g.load(era, body)
        await g.cmd("XADD", "st", "1-1", "f", "v")
        await g.cmd("XADD", "st", "1-2", "f", "v")
        await wait_until(lambda: _true(g.cmd(*call(era, "waiting"))), what="entry 1")
        await g.cmd("REPLICAOF", "127.0.0.1", nobody_port())
        await g.cmd(*call(era, "release"))
        state = g.host.libraries["lib"].stream_triggers["c"].streams[b"st"]
        await wait_until(lambda: _done(state.records_processed == 1), what="entry 1 acked")
        for _ in range(20):  # some loop passes: nothing more is read
            await asyncio.sleep(0)
        assert await g.cmd(*call(era, "waiting")) == 0
        assert state.last_read_id == "1-1" and state.last_error is None
        await g.cmd("REPLICAOF", "NO", "ONE")
        await wait_until(lambda: _true(g.cmd(*call(era, "waiting"))), what="entry 2")
        assert state.last_read_id == "1-2"


async def _done(value: bool) -> bool:
    return value


# --- maxmemory --------------------------------------------------------------------------------


async def test_maxmemory_on_the_embedded_store() -> None:
    async with gears(None) as g:
        assert await g.client.config_get("maxmemory") == {"maxmemory": "0"}
        await g.client.config_set("maxmemory", "100mb")
        assert await g.client.config_get("maxmemory") == {"maxmemory": "104857600"}
        with pytest.raises(ResponseError, match="argument must be a memory value"):
            await g.client.config_set("maxmemory", "lots")
        info = await g.client.info("memory")
        assert info["maxmemory"] == 104857600 and info["maxmemory_policy"] == "noeviction"
        empty = info["used_memory"]
        assert empty >= 1024 * 1024  # an empty Redis uses about 1 MB
        await g.cmd("SET", "big", "x" * 200_000)
        assert (await g.client.info("memory"))["used_memory"] >= empty + 200_000
        await g.cmd("DEL", "big")
        assert (await g.client.info("memory"))["used_memory"] == empty
        await g.client.config_set("appendonly", "yes")
        assert await g.client.config_get("appendonly") == {"appendonly": "yes"}


@pytest.mark.parametrize("era", ["rg", "tf"])
async def test_oom_texts(store_kind: RedisServer | None, era: str) -> None:
    async with gears(store_kind) as g:
        await g.load(era, functions(era))
        await g.cmd("SET", "k", "v")
        await g.client.config_set("maxmemory", "1")  # over it at once, and seen at once
        assert await g.error("SET", "k", "w") == REDIS_OOM
        assert await g.cmd("GET", "k") == b"v"
        for fn, asynchronous in (("plain", False), ("plain", True), ("co", True)):
            assert await g.error(*call(era, fn, 0, asynchronous)) == (
                errors.OOM_CAN_NOT_RUN)
        assert await g.error(*call(era, "plain", 3, False)) == (
            errors.OOM_CAN_NOT_RUN)  # before the argument count
        assert await g.cmd(*call(era, "nw", 0, False)) == b"v"
        assert await g.cmd(*call(era, "oomok", 0, False)) == b"ran"
        if store_kind is None:  # commands from JS are not checked ...
            assert await g.cmd(*call(era, "writer", 0, False)) == b"OK"
        else:  # ... but a backend refuses its own clients, jshost's included
            assert REDIS_OOM in await g.error(*call(era, "writer", 0, False))
        await g.client.config_set("maxmemory", "0")
        assert await g.cmd(*call(era, "plain", 0, False)) == b"ran"
        assert await g.cmd("SET", "k", "w") is True


@pytest.mark.parametrize("era", ["rg", "tf"])
async def test_block_when_oom(store_kind: RedisServer | None, era: str) -> None:
    async with gears(store_kind) as g:
        await g.load(era, functions(era))

        async def fill_memory() -> None:
            await g.client.config_set("maxmemory", "1")

        outcome = await background_outcome(g, era, fill_memory)
        assert outcome == errors.can_not_lock_redis(errors.LOCK_OOM_REASON).encode()


async def test_multi_denyoom_embedded() -> None:
    async with gears(None) as g:
        await g.client.config_set("maxmemory", "1")
        pipe = g.client.pipeline(transaction=True)
        pipe.get("k")
        pipe.set("k", "v")
        with pytest.raises(ResponseError, match="maxmemory"):  # refused when queued
            await pipe.execute()
        assert await g.cmd("GET", "k") is None


async def test_keyspace_trigger_fires_when_oom() -> None:
    """Sync triggers are not checked: a keymiss under OOM fires, and its write goes through."""
    async with gears(None) as g:
        await g.load("tf", "redis.registerKeySpaceTrigger('t', 'k', "
                     "(c, d) => { c.call('set', 'seen', d.event); });")
        await g.client.config_set("maxmemory", "1")
        await g.cmd("GET", "kmissing")
        assert await g.cmd("GET", "seen") == b"keymiss"
