"""CLIENT as jshost answers it for its own clients (jshost.commands.client_cmd), on the embedded
store and in front of a real redis-server (`--backend`): LIST (Redis' fields and order, TYPE and
ID filters), KILL (every filter, both forms), PAUSE / UNPAUSE, REPLY, NO-EVICT, NO-TOUCH,
SETINFO, UNBLOCK, TRACKING with REDIRECT (RESP3 pushes, RESP2 `__redis__:invalidate`)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager

import pytest
import redis
import redis.asyncio as aioredis

from jshost.host import Host
from jshost.replies import ErrorReply, Push
from jshost.server import Server
from jshost.store import EmbeddedStore, RemoteStore
from tests.redis_server import REDIS_SERVER, RedisServer
from tests.server_fixture import RawClient, wait_until

GUARD = 10.0  # seconds: only reached when something hangs


@pytest.fixture(scope="module")
def redis_server() -> Iterator[RedisServer | None]:
    if REDIS_SERVER is None:
        yield None
        return
    with RedisServer() as server:
        yield server


@pytest.fixture(params=["embedded", "backend"])
def store_kind(request: pytest.FixtureRequest, redis_server: RedisServer | None) -> str:
    if request.param == "backend" and redis_server is None:
        pytest.skip("redis-server is not on PATH")
    return str(request.param)


@asynccontextmanager
async def serving(kind: str, redis_server: RedisServer | None) -> AsyncIterator[Server]:
    if kind == "backend":
        assert redis_server is not None
        redis.Redis(port=redis_server.port).flushall()
        host = Host(RemoteStore(redis_server.url))
    else:
        host = Host(EmbeddedStore())
    server = Server(host, port=0)
    await server.start()
    try:
        yield server
    finally:
        await server.shutdown()
        host.close()
        await host.store.aclose()


@pytest.fixture
async def server(store_kind: str, redis_server: RedisServer | None) -> AsyncIterator[Server]:
    async with serving(store_kind, redis_server) as srv:
        yield srv


@pytest.fixture
async def clients(server: Server) -> AsyncIterator[list[aioredis.Redis]]:
    made = [aioredis.Redis(port=server.port, single_connection_client=True) for _ in range(3)]
    for c in made:
        await c.ping()
    yield made
    for c in made:
        await c.aclose()


def parse_list(text: bytes) -> list[dict[str, str]]:
    return [dict(f.split("=", 1) for f in line.split(" "))
            for line in text.decode().splitlines() if line]


async def listed(c: aioredis.Redis, *args: str) -> list[dict[str, str]]:
    return parse_list(await c.execute_command("CLIENT", "LIST", *args, NEVER_DECODE=True))


# --- LIST ---------------------------------------------------------------------------------------


@pytest.mark.skipif(REDIS_SERVER is None, reason="redis-server is not on PATH")
async def test_client_list_has_redis_fields_in_redis_order(
    server: Server, clients: list[aioredis.Redis], redis_server: RedisServer
) -> None:
    theirs = redis.Redis(port=redis_server.port)
    reference = list(parse_list(theirs.execute_command("CLIENT", "LIST"))[0])
    theirs.close()
    ours = list((await listed(clients[0]))[0])
    # redis-server 7.0 here; Redis 7.2 (what jshost reports being) added lib-name and lib-ver.
    assert ours == [*reference, "lib-name", "lib-ver"]


async def test_client_list_describes_each_client(server: Server,
                                                 clients: list[aioredis.Redis]) -> None:
    me, other, _ = clients
    await other.client_setname("worker")
    await other.execute_command("CLIENT", "SETINFO", "LIB-NAME", "mylib")
    await other.execute_command("CLIENT", "NO-EVICT", "on")
    await other.select(3)
    my_id, other_id = await me.client_id(), await other.client_id()
    rows = {int(r["id"]): r for r in await listed(me)}
    assert set(rows) == {my_id, other_id, await clients[2].client_id()}
    row = rows[other_id]
    assert (row["name"], row["lib-name"], row["db"], row["flags"], row["user"]) == (
        "worker", "mylib", "3", "e", "default")
    assert row["laddr"] == f"127.0.0.1:{server.port}" and row["addr"].startswith("127.0.0.1:")
    assert rows[my_id]["cmd"] == "client|list" and rows[other_id]["cmd"] == "client|id"
    info = parse_list(await other.execute_command("CLIENT", "INFO", NEVER_DECODE=True))[0]
    assert (info["id"], info["name"]) == (str(other_id), "worker")


async def test_client_list_filters(server: Server, clients: list[aioredis.Redis]) -> None:
    me, other, third = clients
    pubsub = third.pubsub()
    await pubsub.subscribe("news")
    await pubsub.psubscribe("n*")
    for kind in ("subscribe", "psubscribe"):  # (redis-py does not wait for them)
        message = await pubsub.get_message(timeout=GUARD)
        assert message is not None and message["type"] == kind
    ids = [await c.client_id() for c in (me, other)]
    assert {r["id"] for r in await listed(me, "ID", *map(str, ids))} == set(map(str, ids))
    (sub,) = await listed(me, "TYPE", "pubsub")
    assert (sub["flags"], sub["sub"], sub["psub"]) == ("P", "1", "1")
    assert len(await listed(me, "TYPE", "normal")) == 3  # (the pubsub has its own connection)
    assert await listed(me, "TYPE", "replica") == await listed(me, "TYPE", "master") == []
    errors = {("TYPE", "nope"): "Unknown client type 'nope'", ("ID", "x"): "Invalid client ID",
              ("FOO",): "syntax error"}
    for args, text in errors.items():
        with pytest.raises(redis.ResponseError, match=text):
            await me.execute_command("CLIENT", "LIST", *args)
    await pubsub.aclose()


# --- KILL ---------------------------------------------------------------------------------------


async def test_client_kill_filters(server: Server, clients: list[aioredis.Redis]) -> None:
    me = clients[0]

    async def fresh() -> tuple[aioredis.Redis, dict[str, str]]:
        c = aioredis.Redis(port=server.port, single_connection_client=True)
        await c.client_setname("victim")
        row = next(r for r in await listed(me) if r["name"] == "victim")
        return c, row

    for option, field in (("ID", "id"), ("ADDR", "addr")):
        victim, row = await fresh()
        assert await me.execute_command("CLIENT", "KILL", option, row[field]) == 1
        assert all(r["name"] != "victim" for r in await listed(me))
        await victim.aclose()
    victim, row = await fresh()
    assert await me.execute_command("CLIENT", "KILL", row["addr"]) in (b"OK", True)  # old form
    await victim.aclose()
    # LADDR and USER match every client here; SKIPME (yes by default) spares the caller.
    assert await me.execute_command("CLIENT", "KILL", "LADDR", f"127.0.0.1:{server.port}",
                                    "USER", "default") == 2
    assert len(await listed(me)) == 1
    with pytest.raises(redis.ResponseError, match="No such user 'nobody'"):
        await me.execute_command("CLIENT", "KILL", "USER", "nobody")
    with pytest.raises(redis.ResponseError, match="No such client"):
        await me.execute_command("CLIENT", "KILL", "127.0.0.1:1")
    with pytest.raises(redis.ResponseError, match="client-id should be greater than 0"):
        await me.execute_command("CLIENT", "KILL", "ID", "0")
    with pytest.raises(redis.ResponseError, match="syntax error"):
        await me.execute_command("CLIENT", "KILL", "MAXAGE", "1")  # (Redis 7.4)


async def test_client_kill_skipme_no_closes_after_the_reply(server: Server) -> None:
    raw = await RawClient.connect(server.port)
    try:
        await raw.send_commands(("CLIENT", "KILL", "SKIPME", "no"), ("PING",))
        assert await raw.read_until_closed() == b":1\r\n"  # its reply, then closed: no PONG
    finally:
        await raw.close()


# --- PAUSE, REPLY -------------------------------------------------------------------------------


async def test_client_pause_write_holds_writes_until_unpause(
    server: Server, clients: list[aioredis.Redis]
) -> None:
    me, writer, reader = clients
    writer_id = await writer.client_id()
    assert await me.execute_command("CLIENT", "PAUSE", "100000", "WRITE") in (b"OK", True)
    write = asyncio.ensure_future(writer.set("k", "v"))

    async def held() -> bool:
        return server.ctx.clients[writer_id].blocked

    await wait_until(held, what="the SET held by the pause")
    assert await reader.get("k") is None  # reads pass
    assert not write.done()
    assert await me.execute_command("CLIENT", "UNPAUSE") in (b"OK", True)
    assert await asyncio.wait_for(write, GUARD)
    assert await reader.get("k") == b"v"


async def test_client_pause_all_holds_every_command_until_its_time(
    server: Server, clients: list[aioredis.Redis]
) -> None:
    me, other, _ = clients
    other_id = await other.client_id()
    assert await me.execute_command("CLIENT", "PAUSE", "300") in (b"OK", True)
    ping = asyncio.ensure_future(other.ping())  # even a PING waits (and CLIENT UNPAUSE would)

    async def held() -> bool:
        return server.ctx.clients[other_id].blocked

    await wait_until(held, what="the PING held by the pause")
    assert await asyncio.wait_for(ping, GUARD)  # released when the pause's time is over
    assert server.ctx.pause is None
    with pytest.raises(redis.ResponseError, match="timeout is not an integer or out of range"):
        await me.execute_command("CLIENT", "PAUSE", "soon")
    with pytest.raises(redis.ResponseError, match="CLIENT PAUSE mode must be WRITE or ALL"):
        await me.execute_command("CLIENT", "PAUSE", "10", "READ")


async def test_client_reply_off_skip_on(server: Server) -> None:
    raw = await RawClient.connect(server.port)
    try:
        await raw.send_commands(
            ("CLIENT", "REPLY", "OFF"), ("SET", "a", "1"), ("CLIENT", "REPLY", "ON"),
            ("CLIENT", "REPLY", "SKIP"), ("GET", "a"), ("GET", "a"), ("PING",),
        )
        assert await raw.reply() == b"OK"  # from REPLY ON
        assert await raw.reply() == b"1"  # the second GET: SKIP muted one reply
        assert await raw.reply() == b"PONG"
        with pytest.raises(redis.ResponseError, match="syntax error"):
            raise redis.ResponseError(await raw.call("CLIENT", "REPLY", "MAYBE"))
    finally:
        await raw.close()


# --- flags, SETINFO -----------------------------------------------------------------------------


async def test_no_evict_no_touch_and_setinfo(server: Server, store_kind: str,
                                             clients: list[aioredis.Redis]) -> None:
    me = clients[0]
    assert await me.execute_command("CLIENT", "NO-EVICT", "on") in (b"OK", True)
    if store_kind == "embedded":  # (redis-server 7.0 has no NO-TOUCH: its error comes back)
        assert await me.execute_command("CLIENT", "NO-TOUCH", "on") in (b"OK", True)
        assert parse_list(await me.execute_command("CLIENT", "INFO", NEVER_DECODE=True))[0][
            "flags"] == "eT"
    with pytest.raises(redis.ResponseError, match="syntax error"):
        await me.execute_command("CLIENT", "NO-EVICT", "maybe")
    assert await me.execute_command("CLIENT", "SETINFO", "lib-ver", "1.2") in (b"OK", True)
    with pytest.raises(redis.ResponseError, match="lib-name cannot contain spaces"):
        await me.execute_command("CLIENT", "SETINFO", "lib-name", "a b")
    with pytest.raises(redis.ResponseError, match="Unrecognized option 'colour'"):
        await me.execute_command("CLIENT", "SETINFO", "colour", "blue")


# --- UNBLOCK --------------------------------------------------------------------------------------


async def test_client_unblock(server: Server, store_kind: str, redis_server: RedisServer | None,
                              clients: list[aioredis.Redis]) -> None:
    me, waiter, _ = clients
    backend = redis_server if store_kind == "backend" else None
    waiter_id = await waiter.client_id()
    assert await me.execute_command("CLIENT", "UNBLOCK", str(waiter_id)) == 0  # not blocked
    blpop = asyncio.ensure_future(waiter.blpop(["nothing"], 0))
    await wait_blocked(me, waiter_id, backend)
    assert await me.execute_command("CLIENT", "UNBLOCK", str(waiter_id)) == 1
    assert await asyncio.wait_for(blpop, GUARD) is None  # as if its timeout had passed
    blpop = asyncio.ensure_future(waiter.blpop(["nothing"], 0))
    await wait_blocked(me, waiter_id, backend)
    assert await me.execute_command("CLIENT", "UNBLOCK", str(waiter_id), "ERROR") == 1
    with pytest.raises(redis.ResponseError, match="UNBLOCKED"):
        await asyncio.wait_for(blpop, GUARD)
    with pytest.raises(redis.ResponseError, match="reason should be TIMEOUT or ERROR"):
        await me.execute_command("CLIENT", "UNBLOCK", str(waiter_id), "SOON")


async def wait_blocked(me: aioredis.Redis, client_id: int,
                       backend: RedisServer | None) -> None:
    """Until CLIENT LIST shows the client blocked, and on a backend until the backend has
    its command blocked too (each check is a round trip)."""
    direct = None if backend is None else aioredis.Redis(port=backend.port)
    try:
        async with asyncio.timeout(GUARD):
            while True:
                rows = {r["id"]: r for r in await listed(me)}
                blocked = "b" in rows[str(client_id)]["flags"]
                if blocked and direct is not None:
                    blocked = any("b" in r["flags"]
                                  for r in parse_list(await direct.execute_command(
                                      "CLIENT", "LIST", NEVER_DECODE=True)))
                if blocked:
                    return
    finally:
        if direct is not None:
            await direct.aclose()


# --- TRACKING -----------------------------------------------------------------------------------


async def test_tracking_resp3_pushes_to_the_client(server: Server,
                                                   clients: list[aioredis.Redis]) -> None:
    raw = await RawClient.connect(server.port)
    try:
        await raw.call("HELLO", "3")
        assert await raw.call("CLIENT", "TRACKING", "on") == b"OK"
        assert await raw.call("CLIENT", "GETREDIR") == 0  # tracking, no redirect
        assert await raw.call("GET", "cached") is None
        await clients[0].set("cached", "new")
        await raw.send_commands(("PING",))
        got = await raw.replies(2)  # the push and PONG (from a backend, in either order)
        assert Push([b"invalidate", [b"cached"]]) in got and b"PONG" in got
        assert await raw.call("CLIENT", "TRACKING", "off") == b"OK"
        assert await raw.call("CLIENT", "GETREDIR") == -1
    finally:
        await raw.close()


async def test_tracking_redirect_to_a_resp2_subscriber(server: Server,
                                                      clients: list[aioredis.Redis]) -> None:
    tracker, listener = await RawClient.connect(server.port), await RawClient.connect(server.port)
    try:
        listener_id = await listener.call("CLIENT", "ID")
        assert await listener.call("SUBSCRIBE", "__redis__:invalidate") == [
            b"subscribe", b"__redis__:invalidate", 1]
        assert await tracker.call("CLIENT", "TRACKING", "on", "REDIRECT", str(listener_id)) == b"OK"
        assert await tracker.call("CLIENT", "GETREDIR") == listener_id
        info = await tracker.call("CLIENT", "TRACKINGINFO")
        assert info[info.index(b"redirect") + 1] == listener_id
        assert await tracker.call("GET", "k") is None
        await clients[0].set("k", "v")
        assert await listener.reply() == [b"message", b"__redis__:invalidate", [b"k"]]
        missing = await tracker.call("CLIENT", "TRACKING", "on", "REDIRECT", "999999")
        assert missing == ErrorReply("ERR The client ID you want redirect to does not exist")
    finally:
        await tracker.close()
        await listener.close()


async def test_the_embedded_slowlog_names_jshosts_client() -> None:
    async with serving("embedded", None) as server:
        c = aioredis.Redis(port=server.port, single_connection_client=True)
        try:
            await c.client_setname("slow")
            await c.config_set("slowlog-log-slower-than", 0)
            await c.get("k")
            entry = next(e for e in await c.slowlog_get() if e["command"] == b"GET k")
            me = parse_list(await c.execute_command("CLIENT", "INFO", NEVER_DECODE=True))[0]
            assert (entry["client_address"], entry["client_name"]) == (
                me["addr"].encode(), b"slow")
        finally:
            await c.aclose()
