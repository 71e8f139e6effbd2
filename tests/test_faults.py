"""Faults under load (marker `faults`: ``python -m pytest -m faults`` runs them alone).

* The backend Redis (``appendonly yes``, ``appendfsync always``) is SIGKILLed and restarted on
  the same port while 8 writers (plain SET and a function's SET) write through
  ``jshost serve --backend``: every write acknowledged to a client is found afterwards.
* A backend that comes back *without* jshost's libraries gets them written back (it restarted:
  its run_id changed); a library deleted in Redis while jshost was not following (same server)
  is deleted here too.
* 1 000 rude clients send a random prefix of a pipeline (calls, blocking RG.FCALLASYNC, MULTI
  halfway, BLPOP, SUBSCRIBE) and vanish, while 50 polite clients run a steady load and check
  every reply; afterwards INFO's counters are back to their baseline exactly, and the server's
  RSS does not grow between the second and the third round of the same storm.

Every server is a real process on 127.0.0.1, stopped by its PID. The figures are printed (run
with ``-s`` to see them).
"""

from __future__ import annotations

import asyncio
import random
import socket
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import redis.asyncio as aioredis
from redis_server import REDIS_SERVER, RedisServer
from server_fixture import JshostProcess, command_bytes, wait_until

from jshost.host.archive import redis_library_name

pytestmark = [
    pytest.mark.faults,
    pytest.mark.timeout(170),
    pytest.mark.skipif(REDIS_SERVER is None, reason="redis-server is not on PATH"),
]

WRITER = """#!js api_version=1.0 name=writer
redis.register_function('put', (client, key, value) => client.call('set', key, value));
"""

RUDE = """#!js api_version=1.0 name=rude
var waiting = [];
redis.register_async_function('wait', () => new Promise((resolve) => waiting.push(resolve)));
redis.register_function('release', () => {
    const n = waiting.length;
    waiting.splice(0).forEach((resolve) => resolve('late'));
    return n;
});
redis.register_function('incr', (client, key) => client.call('incr', key));
"""


def durable_backend(directory: Path) -> RedisServer:
    return RedisServer("--appendonly", "yes", "--appendfsync", "always",
                       "--dir", str(directory)).start()


@pytest.fixture
def backend(tmp_path: Path) -> Iterator[RedisServer]:
    server = durable_backend(tmp_path)
    try:
        yield server
    finally:
        server.stop()


def jshost_on(backend: RedisServer, *args: str) -> JshostProcess:
    return JshostProcess("--backend", backend.url, *args).start()


def info(port: int) -> dict[str, Any]:
    client = redis.Redis(port=port, socket_timeout=10)
    try:
        return client.info("everything")
    finally:
        client.close()


# --- the backend dies and comes back under load -----------------------------------------------------


def test_acknowledged_writes_survive_a_backend_kill_under_load(backend: RedisServer) -> None:
    jshost = jshost_on(backend)
    try:
        redis.Redis(port=jshost.port).execute_command("RG.FUNCTION", "LOAD", WRITER)
        acked, failures = asyncio.run(_write_through_a_kill(jshost.port, backend))
    finally:
        assert jshost.stop() == 0
    direct = redis.Redis(port=backend.port, socket_timeout=10)
    found = {key: value for key, value in zip(acked, direct.mget(list(acked))) if value}
    print(f"\nbackend kill under 8 writers: {len(acked)} writes acknowledged, "
          f"{len(found)} found afterwards, {failures} refused during the outage")
    assert found == {key: str(value).encode() for key, value in acked.items()}
    assert failures > 0  # the writers did meet the outage


async def _write_through_a_kill(port: int, backend: RedisServer) -> tuple[dict[str, int], int]:
    acked: dict[str, int] = {}
    counts = [0] * 8
    failures = 0
    stop = asyncio.Event()

    async def writer(number: int) -> None:
        nonlocal failures
        client = aioredis.Redis(port=port, socket_timeout=10)
        i = 0
        try:
            while not stop.is_set():
                i += 1
                key = f"w{number}:{i}"
                try:
                    if i % 2:
                        ok = await client.set(key, i)
                    else:
                        ok = await client.execute_command("RG.FCALL", "writer", "put", "1",
                                                          key, str(i))
                except (redis.ConnectionError, redis.ResponseError, redis.TimeoutError):
                    failures += 1
                    await asyncio.sleep(0.01)  # (pacing while the backend is away)
                    continue
                if ok in (True, b"OK"):
                    acked[key] = i
                    counts[number] += 1
        finally:
            await client.aclose()

    async def each_wrote(more: int) -> None:
        targets = [count + more for count in counts]

        async def done() -> bool:
            return all(count >= target for count, target in zip(counts, targets))

        await wait_until(done, timeout=60, what=f"{more} more writes by each writer")

    writers = [asyncio.create_task(writer(n)) for n in range(8)]
    try:
        await each_wrote(50)
        backend.kill()

        async def outage_seen() -> bool:
            return failures >= 8

        await wait_until(outage_seen, timeout=30, what="the writers meeting the outage")
        await asyncio.to_thread(backend.start)
        await each_wrote(50)
    finally:
        stop.set()
        await asyncio.gather(*writers)
    return acked, failures


# --- libraries when the backend comes back without them -------------------------------------------


def test_a_backend_restarted_without_libraries_gets_them_back(tmp_path: Path) -> None:
    backend = RedisServer().start()  # no persistence: it comes back empty
    jshost = jshost_on(backend)
    try:
        client = redis.Redis(port=jshost.port, socket_timeout=10)
        client.execute_command("RG.FUNCTION", "LOAD", RUDE)
        direct = redis.Redis(port=backend.port, socket_timeout=10)
        lua_name = redis_library_name("rude")
        assert [e[b"library_name"] for e in direct.execute_command("FUNCTION", "LIST")] == [
            lua_name.encode()]
        backend.kill()
        backend.start()
        assert direct.execute_command("FUNCTION", "LIST") == []  # it came back empty

        def libraries_in_redis() -> list[bytes]:
            return [e[b"library_name"] for e in direct.execute_command("FUNCTION", "LIST")]

        asyncio.run(_until(lambda: libraries_in_redis() == [lua_name.encode()],
                           "the library written back"))
        assert client.execute_command("RG.FCALL", "rude", "incr", "1", "n") == 1
        # Same server, our subscription lost while the library is deleted behind our back.
        direct.execute_command("FUNCTION", "DELETE", lua_name)
        direct.execute_command("CLIENT", "KILL", "TYPE", "pubsub")

        def gone_here() -> bool:
            try:
                client.execute_command("RG.FCALL", "rude", "incr", "1", "n")
            except redis.ResponseError as exc:
                return "Unknown library" in str(exc)
            return False

        asyncio.run(_until(gone_here, "the library deleted here too"))
        assert libraries_in_redis() == []
    finally:
        assert jshost.stop() == 0
        backend.stop()
    assert "restarted without libraries rude: jshost wrote them back" in jshost.log()
    assert "libraries rude were deleted in Redis while jshost was not following" in jshost.log()


async def _until(check: Any, what: str) -> None:
    async def condition() -> bool:
        return bool(await asyncio.to_thread(check))

    await wait_until(condition, timeout=30, what=what)


# --- 1 000 rude clients -----------------------------------------------------------------------------

#: The pipeline a rude client sends a random prefix of (cut anywhere, even inside a command).
RUDE_PIPELINE = command_bytes(
    ["PING"],
    ["SET", "rude:k", "v"],
    ["RG.FCALL", "rude", "incr", "1", "rude:n"],
    ["RG.FCALLASYNC", "rude", "wait", "0"],  # blocks until `release`
    ["GET", "rude:k"],
    ["MULTI"],
    ["INCR", "rude:m"],  # ... and no EXEC
    ["BLPOP", "rude:empty", "0"],  # (queued in MULTI when MULTI came first)
    ["DISCARD"],
    ["BLPOP", "rude:empty", "0"],
    ["SUBSCRIBE", "rude:channel"],
)
ROUNDS = 3
RUDE_CLIENTS = 1000
POLITE_CLIENTS = 50
#: What the server's RSS may move between rounds 2 and 3 (allocator noise; a leak of a few KB
#: per rude client would be 1000 x that).
RSS_SLACK = 2 << 20


def counters(port: int) -> dict[str, int]:
    fields = info(port)
    return {name: int(fields[name]) for name in (
        "connected_clients", "blocked_clients", "pending_async_calls", "pending_jobs",
        "backend_connections")}


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


def test_rude_clients_leave_nothing_behind(backend: RedisServer) -> None:
    jshost = jshost_on(backend)
    try:
        client = redis.Redis(port=jshost.port, socket_timeout=10)
        client.execute_command("RG.FUNCTION", "LOAD", RUDE)
        client.close()
        baseline = counters(jshost.port)  # (this INFO's own client counts as connected)
        rss: list[int] = []
        for number in range(1, ROUNDS + 1):
            replies = asyncio.run(_storm(jshost.port, random.Random(number)))
            released = redis.Redis(port=jshost.port).execute_command(
                "RG.FCALL", "rude", "release", "0")
            asyncio.run(_until(lambda: counters(jshost.port) == baseline,
                               f"the counters back to {baseline}"))
            rss.append(rss_bytes(jshost.pid))
            print(f"\nrude round {number}: {RUDE_CLIENTS} rude clients ({released} calls "
                  f"released after they left), {replies} polite replies checked; counters "
                  f"{counters(jshost.port)} (baseline {baseline}); RSS {rss[-1] / 2**20:.1f} MB")
        assert rss[2] - rss[1] <= RSS_SLACK, rss
    finally:
        assert jshost.stop() == 0


async def _storm(port: int, rng: random.Random) -> int:
    """One round: the rude clients, 50 at a time, while the polite ones check their replies."""
    done = asyncio.Event()
    polite_replies = [0] * POLITE_CLIENTS

    async def polite(number: int) -> None:
        client = aioredis.Redis(port=port, socket_timeout=30)
        key = f"polite:{number}"
        try:
            await client.delete(key)
            expected = 0
            while not done.is_set():
                expected += 1
                assert await client.incr(key) == expected
                assert await client.execute_command("RG.FCALL", "rude", "incr", "1",
                                                    key) == expected + 1
                expected += 1
                assert await client.get(key) == str(expected).encode()
                polite_replies[number] += 3
        finally:
            await client.aclose()

    async def rude() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(RUDE_PIPELINE[:rng.randrange(1, len(RUDE_PIPELINE) + 1)])
        await writer.drain()
        if rng.random() < 0.5:  # maybe read a little of what came back, if anything
            try:
                await asyncio.wait_for(reader.read(rng.randrange(1, 64)), 0.05)
            except TimeoutError:
                pass
        if rng.random() < 0.5:  # vanish with a reset rather than a close
            sock = writer.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.close()

    async def polite_started() -> bool:
        return all(polite_replies)

    async def rude_clients() -> None:
        gate = asyncio.Semaphore(50)

        async def one() -> None:
            async with gate:
                await rude()

        await asyncio.gather(*(one() for _ in range(RUDE_CLIENTS)))

    politeness = [asyncio.create_task(polite(n)) for n in range(POLITE_CLIENTS)]
    try:
        await wait_until(polite_started, timeout=30, what="every polite client at work")
        await rude_clients()
    finally:
        done.set()
        await asyncio.gather(*politeness)
    return sum(polite_replies)
