"""tf `callAsync` on a blocking command (issue 16), on every store: the pending-call list (LIST,
`DEBUG dump_pending_async_calls`), `blocked_clients`, and `block()`'s catchable time-out."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import redis.asyncio as aioredis

from jshost import errors
from jshost.commands.role_change import became_replica
from tests.gears_servers import STORE_KINDS, Backends, backends, error_of, gears_server, make_store
from tests.server_fixture import wait_until

__all__ = ["backends"]

TERMINATED = errors.EXECUTION_TERMINATED

TF = """#!js api_version=1.0 name=lib
redis.registerAsyncFunction('wait', async (c) => {
  const v = await c.block((x) => x.callAsync('blpop', 'l', '0'));
  c.block(() => { for (;;); });
  return v;
});
redis.registerAsyncFunction('catching', async (c) => {
  const v = await c.block((x) => x.callAsyncRaw('blpop', 'l', '0'));
  try { c.block(() => { for (;;); }); } catch (e) { return ['caught', typeof e, e]; }
  return 'not stopped';
});
redis.registerFunction('plain', (c) => c.callAsync('blpop', 'plain', '0'));
"""
RG = """#!js api_version=1.0 name=rglib
redis.register_async_function('catching', async (c) => {
  try { c.block(() => { for (;;); }); } catch (e) { return ['caught', e]; }
  return 'not stopped';
});
"""


@pytest.fixture(params=STORE_KINDS)
def store_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def _listed(libraries: list[Any]) -> list[Any]:
    """`pending_async_calls` of the one library of a TFUNCTION LIST reply (RESP2)."""
    (entry,) = libraries
    lib = entry if isinstance(entry, dict) else dict(zip(entry[::2], entry[1::2], strict=True))
    return list(lib[b"pending_async_calls"])


async def _dump(client: aioredis.Redis) -> dict[bytes, Any]:
    """`TFUNCTION DEBUG dump_pending_async_calls` as a dict (redis-py may have made it one)."""
    reply = await client.execute_command("TFUNCTION", "DEBUG", "dump_pending_async_calls")
    return reply if isinstance(reply, dict) else dict(zip(reply[::2], reply[1::2], strict=True))


async def _blocked(client: aioredis.Redis) -> int:
    return int((await client.info("clients"))["blocked_clients"])


async def test_timeline(store_kind: str, backends: Backends) -> None:
    async with gears_server(make_store(store_kind, backends), ("tf", TF),
                            lock_redis_timeout="100", enable_debug_command="yes") as server:
        waiting = aioredis.Redis(port=server.port)
        other = aioredis.Redis(port=server.port)
        try:
            call = asyncio.ensure_future(waiting.execute_command("TFCALLASYNC", "lib.wait", "0"))

            async def listed() -> bool:
                return _listed(await other.execute_command("TFUNCTION", "LIST")) == [
                    b"blpop l 0"]

            await wait_until(listed, what="the waiting blpop in LIST")
            assert await _blocked(other) == 1
            assert await _dump(other) == {b"lib": [b"blpop l 0"]}
            await other.rpush("l", "x")
            assert await error_of(call) == TERMINATED
            assert await _blocked(other) == 0
            assert _listed(await other.execute_command("TFUNCTION", "LIST")) == []
            assert await _dump(other) == {}
        finally:
            await waiting.aclose()
            await other.aclose()


async def test_tf_block_stop_is_catchable_rg_is_not(store_kind: str, backends: Backends) -> None:
    async with gears_server(make_store(store_kind, backends), ("tf", TF), ("rg", RG),
                            lock_redis_timeout="100") as server:
        client = aioredis.Redis(port=server.port)
        try:
            await client.rpush("l", "x")
            assert await client.execute_command("TFCALLASYNC", "lib.catching", "0") == [
                b"caught", b"string", TERMINATED.encode()]
            assert await error_of(client.execute_command(
                "RG.FCALLASYNC", "rglib", "catching", "0")) == TERMINATED
        finally:
            await client.aclose()


async def test_returned_from_tfcall_it_keeps_waiting(store_kind: str, backends: Backends) -> None:
    async with gears_server(make_store(store_kind, backends), ("tf", TF)) as server:
        client = aioredis.Redis(port=server.port)
        try:
            assert await error_of(client.execute_command("TFCALL", "lib.plain", "0")) == (
                errors.CAN_NOT_BLOCK_CLIENT)
            assert _listed(await client.execute_command("TFUNCTION", "LIST"))[:1] == [
                b"blpop plain 0"]
            assert await _blocked(client) == 0  # JS's own waits are not clients
            await client.rpush("plain", "a", "b")

            async def drained() -> bool:
                return _listed(await client.execute_command("TFUNCTION", "LIST")) == []

            await wait_until(drained, what="the waiting calls answered")
        finally:
            await client.aclose()


STREAM = """#!js api_version=1.0 name=st
redis.registerStreamTrigger('t', 's', (c) => c.callAsync('blpop', 'go', '0'));
redis.registerStreamTrigger('failing', 'f', (c) => c.callAsync('lpop', 'notalist'));
"""


async def test_sync_stream_trigger_returning_a_promise(store_kind: str,
                                                      backends: Backends) -> None:
    """The entry stays in flight until the promise settles (tf); a rejection is its error."""
    async with gears_server(make_store(store_kind, backends), ("tf", STREAM)) as server:
        client = aioredis.Redis(port=server.port)
        try:
            await client.xadd("s", {"a": "1"})
            trigger = server.host.libraries["st"].stream_triggers["t"]

            async def in_flight() -> bool:
                state = trigger.streams.get(b"s")
                return state is not None and len(state.pending) == 1

            await wait_until(in_flight, what="the entry in flight")
            state = trigger.streams[b"s"]
            assert state.records_processed == 0
            await client.rpush("go", "x")

            async def acknowledged() -> bool:
                return state.records_processed == 1 and not state.pending

            await wait_until(acknowledged, what="the entry acknowledged")
            assert state.last_error is None
            await client.set("notalist", "v")
            await client.xadd("f", {"a": "1"})
            failing = server.host.libraries["st"].stream_triggers["failing"]

            async def failed() -> bool:
                done = failing.streams.get(b"f")
                return done is not None and done.records_processed == 1

            await wait_until(failed, what="the failing entry acknowledged")
            assert failing.streams[b"f"].last_error is not None
            assert "WRONGTYPE" in str(failing.streams[b"f"].last_error)
        finally:
            await client.aclose()


ABORTED = """#!js api_version=1.0 name=ab
var seen = [];
redis.registerAsyncFunction('wait', async (c) => c.block((x) => x.callAsync('blpop', 'w', '0')));
redis.registerFunction('start', (c) => {
  c.callAsync('blpop', 'never', '0').then((v) => { seen.push('value ' + v); },
                                          (e) => { seen.push('rejected ' + e); });
  return 'started';
});
redis.registerFunction('seen', () => seen);
"""


async def test_becoming_a_replica_aborts_what_waits(store_kind: str, backends: Backends) -> None:
    """Blocked clients get Redis's UNBLOCKED text and are closed; JS's waiting calls are
    rejected with `Command was aborted`, and the lists empty at once (§13.B.4)."""
    async with gears_server(make_store(store_kind, backends), ("tf", ABORTED),
                            enable_debug_command="yes") as server:
        waiting = aioredis.Redis(port=server.port)
        blpop = aioredis.Redis(port=server.port)
        other = aioredis.Redis(port=server.port)
        try:
            call = asyncio.ensure_future(waiting.execute_command("TFCALLASYNC", "ab.wait", "0"))
            own = asyncio.ensure_future(blpop.blpop(["mine"], 0))
            assert await other.execute_command("TFCALL", "ab.start", "0") == b"started"

            async def all_waiting() -> bool:
                return (await _blocked(other) == 2
                        and len((await _dump(other)).get(b"ab", [])) == 2)

            await wait_until(all_waiting, what="two blocked clients and two waiting calls")
            became_replica(server.ctx)
            assert server.host.pending_async_calls() == {}
            assert str(await _raises(call)) == errors.UNBLOCKED_ROLE_CHANGED
            assert str(await _raises(own)) == errors.UNBLOCKED_ROLE_CHANGED

            async def rejected() -> bool:
                return await other.execute_command("TFCALL", "ab.seen", "0") == [
                    b"rejected " + errors.COMMAND_WAS_ABORTED.encode()]

            await wait_until(rejected, what="the waiting call rejected")
            assert await _blocked(other) == 0
            assert await _dump(other) == {}
        finally:
            for client in (waiting, blpop, other):
                await client.aclose()


async def _raises(awaitable: Any) -> BaseException:
    """The error a command fails with (redis-py's type for it depends on the text)."""
    try:
        await awaitable
    except Exception as exc:  # noqa: BLE001 - any failure is the one looked at
        return exc
    raise AssertionError("the command did not fail")


async def test_replicaof_through_a_client_unblocks_first() -> None:
    """REPLICAOF sent by a client does the change to replica (embedded store: the role is only
    recorded): a blocked client gets the UNBLOCKED text; REPLICAOF NO ONE ends the role."""
    async with gears_server(make_store("embedded", None), ("tf", ABORTED)) as server:
        blpop = aioredis.Redis(port=server.port)
        other = aioredis.Redis(port=server.port)
        try:
            own = asyncio.ensure_future(blpop.blpop(["mine"], 0))
            await wait_until(lambda: _blocked(other), what="a blocked client")
            assert await other.execute_command("REPLICAOF", "127.0.0.1", "1") == b"OK"
            assert str(await _raises(own)) == errors.UNBLOCKED_ROLE_CHANGED
            assert (await other.execute_command("ROLE"))[0] == b"slave"
            assert await other.execute_command("REPLICAOF", "NO", "ONE") == b"OK"
            assert (await other.execute_command("ROLE"))[0] == b"master"
        finally:
            for client in (blpop, other):
                await client.aclose()


PAUSED = """#!js api_version=1.0 name=pz
redis.registerAsyncFunction('later', async (c) => {
  await c.block((x) => x.callAsync('blpop', 'never', '1'));
  return c.block((x) => { x.call('set', 'written', '1'); return 'wrote'; });
});
"""


async def test_tf_block_under_client_pause_write_is_refused() -> None:
    """tf treats "avoid replication traffic" (a CLIENT PAUSE WRITE in force) as a replica:
    background work that started before the pause may not `block()` for writes during it."""
    async with gears_server(make_store("embedded", None), ("tf", PAUSED)) as server:
        waiting = aioredis.Redis(port=server.port)
        other = aioredis.Redis(port=server.port)
        try:
            call = asyncio.ensure_future(waiting.execute_command("TFCALLASYNC", "pz.later", "0"))
            await wait_until(lambda: _blocked(other), what="the call waiting")
            assert await other.execute_command("CLIENT", "PAUSE", "5000", "WRITE") == b"OK"
            refused = str(await _raises(call))
            assert refused == errors.can_not_lock_redis(errors.lock_replica_reason("tf"))
            assert await other.execute_command("CLIENT", "UNPAUSE") == b"OK"
            assert await other.get("written") is None
        finally:
            for client in (waiting, other):
                await client.aclose()
