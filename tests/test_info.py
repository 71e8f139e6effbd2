"""`INFO`: the `# jshost` section (libraries, functions, pending async calls, terminations,
memory), and the sections a Redis 7 reports, with jshost's own facts where jshost is the server
(port, process, clients, commands, replication) on both stores."""

from __future__ import annotations

import asyncio
import os
import re

import pytest
import redis
import redis.asyncio as aioredis

from jshost.host import Host
from jshost.server import Server
from jshost.settings import Settings
from jshost.store import RemoteStore
from tests.redis_server import REDIS_SERVER, RedisServer
from tests.server_fixture import RawClient, running_server, wait_until

LIB = r"""#!js api_version=1.0 name=ops
let waiting = [];
redis.register_async_function('wait', async () => new Promise((res) => waiting.push(res)));
redis.register_function('release', () => { waiting.forEach((r) => r('done')); return waiting.length; });
redis.register_function('spin', () => { while (true) {} });
"""


def _fields(info: dict) -> dict[str, str]:
    """redis-py parses INFO's `name:value` lines into a dict; keep the values as text."""
    return {str(k): str(v) for k, v in info.items()}


async def test_info_jshost_section_counts_what_happens() -> None:
    async with running_server(settings=Settings({"lock-redis-timeout": "100"})) as server:
        c = aioredis.Redis(port=server.port)
        waiter = aioredis.Redis(port=server.port)
        try:
            await c.execute_command("RG.FUNCTION", "LOAD", LIB)
            fields = _fields(await c.execute_command("INFO", "jshost"))
            assert (fields["libraries"], fields["functions"], fields["terminations"]) == (
                "1", "3", "0")
            assert "memory=" in fields["library_ops"] or "'memory'" in fields["library_ops"]
            pending = waiter.execute_command("RG.FCALLASYNC", "ops", "wait", "0")
            task = asyncio.ensure_future(pending)

            async def shows_pending() -> bool:
                info = _fields(await c.execute_command("INFO", "jshost"))
                return info["pending_async_calls"] == "1"

            await wait_until(shows_pending, what="the pending call in INFO")
            try:
                await c.execute_command("RG.FCALL", "ops", "spin", "0")
            except aioredis.ResponseError:
                pass
            assert await c.execute_command("RG.FCALL", "ops", "release", "0") == 1
            assert await task == b"done"
            fields = _fields(await c.execute_command("INFO"))  # also in the full INFO
            assert (fields["pending_async_calls"], fields["terminations"]) == ("0", "1")
        finally:
            await c.aclose()
            await waiter.aclose()


# --- the sections a Redis 7 reports, with jshost's own facts ----------------------------------

REDIS_ORDER = ["Server", "Clients", "Memory", "Persistence", "Stats", "Replication", "CPU",
               "Modules", "Errorstats", "Cluster", "Keyspace", "jshost"]


def sections(text: bytes) -> dict[str, dict[str, str]]:
    found: dict[str, dict[str, str]] = {}
    current: dict[str, str] = {}
    for line in text.decode().split("\r\n"):
        if line.startswith("# "):
            current = found[line[2:]] = {}
        elif line:
            name, _, value = line.partition(":")
            current[name] = value
    return found


async def info_of(port: int, *args: str) -> dict[str, dict[str, str]]:
    c = RawClient(*(await asyncio.open_connection("127.0.0.1", port)))
    try:
        return sections(await c.call("INFO", *args))
    finally:
        await c.close()


async def check_jshost_facts(server: Server, primary: bool = True) -> None:
    info = await info_of(server.port)
    assert list(info) == REDIS_ORDER
    stats = info["Stats"]
    assert int(stats["total_net_input_bytes"]) > 0
    received = int(stats["total_connections_received"])
    again = (await info_of(server.port, "stats"))["Stats"]
    assert int(again["total_connections_received"]) == received + 1
    srv = info["Server"]
    assert (srv["tcp_port"], srv["process_id"], srv["redis_mode"]) == (
        str(server.port), str(os.getpid()), "standalone")
    assert re.fullmatch("[0-9a-f]{40}", srv["run_id"])
    assert (await info_of(server.port, "server"))["Server"]["run_id"] == srv["run_id"]
    assert int(srv["uptime_in_seconds"]) >= 0 and srv["executable"]
    assert info["Cluster"] == {"cluster_enabled": "0"}
    if primary:
        assert info["Replication"]["role"] == "master"
        assert "master_host" not in info["Replication"]
    assert info["Clients"]["connected_clients"] == "1"
    assert list(await info_of(server.port, "keyspace", "cpu")) == ["CPU", "Keyspace"]
    assert list(await info_of(server.port, "jshost")) == ["jshost"]
    assert "Commandstats" in await info_of(server.port, "everything")


async def test_info_has_redis_sections_with_jshost_facts() -> None:
    async with running_server() as server:
        await check_jshost_facts(server)
        memory = (await info_of(server.port, "memory"))["Memory"]
        assert int(memory["used_memory"]) > 0 and memory["maxmemory"] == "0"


async def test_info_counts_commands_and_config_resetstat_resets_them() -> None:
    async with running_server() as server:
        c = aioredis.Redis(port=server.port)
        try:
            for _ in range(5):
                await c.ping()
            before = int((await c.info("stats"))["total_commands_processed"])
            assert before >= 6
            assert await c.config_resetstat()
            after = int((await c.info("stats"))["total_commands_processed"])
            assert after < before
        finally:
            await c.aclose()


@pytest.mark.skipif(REDIS_SERVER is None, reason="redis-server is not on PATH")
async def test_info_on_a_backend_shows_jshost_not_the_backend() -> None:
    """tcp_port is jshost's (a client following the backend's would bypass jshost); the role is
    the backend's (here a replica: RedisGears' replica rules apply to functions, docs/
    architecture.md "The gates"), as ROLE and INFO replication say."""
    with RedisServer() as master, RedisServer() as backend:
        redis.Redis(port=backend.port).replicaof("127.0.0.1", master.port)
        host = Host(RemoteStore(backend.url))
        server = Server(host, port=0)
        await server.start()
        try:
            await check_jshost_facts(server, primary=False)
            assert (await info_of(server.port, "server"))["Server"]["redis_version"].startswith("7.")
            assert (await info_of(server.port, "replication"))["Replication"]["role"] == "slave"
            keyspace = await info_of(server.port, "keyspace")
            assert "Keyspace" in keyspace  # the backend's
            c = aioredis.Redis(port=server.port)
            assert (await c.execute_command("ROLE"))[0] == b"slave"  # the backend's
            await c.aclose()
        finally:
            await server.shutdown()
            host.close()
            await host.store.aclose()
