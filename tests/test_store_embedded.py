"""Tests for jshost.store.embedded: typed RESP3 replies, sessions, blocking commands, pushes.

The expected reply types were checked against redis-server 7 answering over RESP3.
Blocking tests synchronise on events (tasks, futures), never on sleeps; `asyncio.wait_for` with a
generous timeout only guards against a hang.
"""

from __future__ import annotations

import asyncio
import collections
import inspect
import time
from typing import Any

import pytest
import redis

from jshost.replies import NO_REPLY, ErrorReply, Push, SetReply, Status, Verbatim
from jshost.store import EmbeddedSession, EmbeddedStore, Session, Store
from jshost.store.command_table import CommandTable

GUARD = 10.0  # seconds: only ever reached when something hangs


def a(line: str) -> list[bytes]:
    return [part.encode() for part in line.split(" ")]


@pytest.fixture
def store() -> EmbeddedStore:
    return EmbeddedStore()


@pytest.fixture
def s(store: EmbeddedStore) -> EmbeddedSession:
    return store.open_session()


def same(actual: Any, expected: Any) -> bool:
    """Equal values with the same reply types, all the way down (Status is not bytes, ...)."""
    if type(actual) is not type(expected):
        return False
    if isinstance(expected, Verbatim) and actual.format != expected.format:
        return False
    if isinstance(expected, dict):
        return list(actual) == list(expected) and all(
            same(actual[k], v) and type(next(x for x in actual if x == k)) is type(k)
            for k, v in expected.items()
        )
    if isinstance(expected, list):
        return len(actual) == len(expected) and all(map(same, actual, expected))
    return bool(actual == expected)


async def parked(task: asyncio.Task[Any]) -> None:
    """Let `task` run up to the point where it waits (several loop turns), and check it waits."""
    for _ in range(5):
        await asyncio.sleep(0)
    assert not task.done(), task


# -- the interface ---------------------------------------------------------------------------------


def test_embedded_store_implements_the_interface(store: EmbeddedStore) -> None:
    session = store.open_session()
    assert isinstance(store, Store) and isinstance(session, Session)
    assert isinstance(store.command_info(), CommandTable)
    assert session.db == 0 and not session.closed


# -- typed replies ---------------------------------------------------------------------------------

SETUP = [
    "SET s v",
    "SET n 10",
    "HSET h f1 v1 f2 v2",
    "SADD st a",
    "ZADD z 1.5 m",
    "RPUSH l a b",
    "XADD xs 1-1 f v",
    "XGROUP CREATE xs g 0",
    "PFADD hll a",
]

TYPED = [
    ("SET k v", Status(b"OK")),
    ("PING", Status(b"PONG")),
    ("PING hi", b"hi"),
    ("TYPE s", Status(b"string")),
    ("GET s", b"v"),
    ("GET missing", None),
    ("INCR n", 11),
    ("INCRBYFLOAT n 1.5", b"11.5"),  # a bulk string, as Redis 7 sends it
    ("HGETALL h", {b"f1": b"v1", b"f2": b"v2"}),
    ("HGETALL missing", {}),
    ("HMGET h f1 nope", [b"v1", None]),
    ("SMEMBERS st", SetReply([b"a"])),
    ("SINTER st st", SetReply([b"a"])),
    ("SUNION st missing", SetReply([b"a"])),
    ("SDIFF st missing", SetReply([b"a"])),
    ("SPOP missing 2", SetReply([])),
    ("SMISMEMBER st a b", [1, 0]),
    ("ZSCORE z m", 1.5),
    ("ZSCORE z nope", None),
    ("ZRANGE z 0 -1 WITHSCORES", [[b"m", 1.5]]),
    ("ZRANDMEMBER z", b"m"),
    ("ZRANDMEMBER missing", None),
    ("HRANDFIELD missing 2", []),
    ("LRANGE l 0 -1", [b"a", b"b"]),
    ("EXISTS s missing", 1),
    ("PFCOUNT hll", 1),
    ("CONFIG GET maxmemory", {b"maxmemory": b"0"}),
    ("CLIENT GETNAME", None),
    ("XREAD STREAMS missing 0", None),
    ("XREADGROUP GROUP g c STREAMS xs >", {b"xs": [[b"1-1", [b"f", b"v"]]]}),
    ("XREADGROUP GROUP g c STREAMS xs >", None),
    ("GEODIST missing a b", None),
    ("ROLE", [b"master", 0, []]),
    ("TOUCH s missing", 1),
    ("WAIT 0 0", 0),
    ("SELECT 99", ErrorReply("ERR DB index is out of range")),
    ("INCR s", ErrorReply("ERR value is not an integer or out of range")),
    ("LPUSH s x", ErrorReply("WRONGTYPE Operation against a key holding the wrong kind of value")),
    ("SET a b EX -1", ErrorReply("ERR invalid expire time in 'set' command")),
    ("nosuch x", ErrorReply("ERR unknown command 'nosuch', with args beginning with: 'x' ")),
    ("CONFIG nosuch", ErrorReply("ERR unknown subcommand 'nosuch'. Try CONFIG HELP.")),
    ("CONFIG", ErrorReply("ERR wrong number of arguments for 'config' command")),
    ("CONFIG GET", ErrorReply("ERR wrong number of arguments for 'config|get' command")),
    ("MSET a b c", ErrorReply("ERR wrong number of arguments for 'mset' command")),
    ("GET", ErrorReply("ERR wrong number of arguments for 'get' command")),
    ("XGROUP CREATE xs g 0", ErrorReply("BUSYGROUP Consumer Group name already exists")),
]


@pytest.mark.parametrize(("line", "expected"), TYPED)
def test_reply_is_typed_as_resp3(s: EmbeddedSession, line: str, expected: Any) -> None:
    for setup in SETUP:
        s.call(a(setup))
    reply = s.call(a(line))
    if line.startswith("XREADGROUP") and expected is None:
        s.call(a(line))  # (the first read took the entry)
        reply = s.call(a(line))
    assert same(reply, expected), reply


def test_verbatim_replies(s: EmbeddedSession) -> None:
    for line in ("INFO", "INFO keyspace", "CLIENT INFO", "CLIENT LIST"):
        reply = s.call(a(line))
        assert type(reply) is Verbatim and reply.format == "txt", line
    assert s.call(a("CLIENT INFO")).endswith(b"\n")
    s.call(a("SET k v"))
    assert b"db0:keys=1" in s.call(a("INFO keyspace"))


def test_info_says_it_is_not_a_cluster(s: EmbeddedSession) -> None:
    # Clients read it to choose between a cluster and a plain client (redis-py's test suite).
    assert b"# Cluster\r\ncluster_enabled:0\r\n" in s.call(a("INFO"))
    assert s.call(a("INFO cluster")) == b"# Cluster\r\ncluster_enabled:0\r\n"


def test_map_and_set_replies_of_introspection(s: EmbeddedSession) -> None:
    s.call(a("XADD xs 1-1 f v"))
    info = s.call(a("XINFO STREAM xs"))
    assert type(info) is dict and info[b"length"] == 1 and info[b"last-generated-id"] == b"1-1"
    full = s.call(a("XGROUP CREATE xs g 0")) and s.call(a("XINFO STREAM xs FULL"))
    assert type(full) is dict and type(full[b"groups"][0]) is dict
    user = s.call(a("ACL GETUSER default"))
    assert type(user) is dict and type(user[b"flags"]) is SetReply
    hello = s.call(a("HELLO 3"))
    assert type(hello) is dict and hello[b"server"] == b"redis" and hello[b"proto"] == 3


def test_geo_replies_follow_redis_types(s: EmbeddedSession) -> None:
    s.call(a("GEOADD geo 13.361389 38.115556 Palermo 15.087269 37.502669 Catania"))
    dist = s.call(a("GEODIST geo Palermo Catania"))
    assert type(dist) is bytes and len(dist.split(b".")[1]) == 4  # 4 decimals, like Redis
    found = s.call(a("GEOSEARCH geo FROMLONLAT 15 37 BYRADIUS 200 km ASC WITHCOORD WITHDIST"))
    name, distance, (lon, lat) = found[0]
    assert name == b"Catania" and type(distance) is bytes
    assert type(lon) is float and type(lat) is float


def test_command_replies_come_from_the_redis_table(s: EmbeddedSession) -> None:
    (entry,) = s.call(a("COMMAND INFO get"))
    assert entry[0] == b"get" and entry[1] == 2
    assert type(entry[2]) is SetReply and Status(b"readonly") in entry[2]
    assert s.call(a("COMMAND INFO nosuch")) == [None]
    assert s.call(a("COMMAND GETKEYS SET k v")) == [b"k"]
    assert s.call(a("COMMAND GETKEYS PING")) == ErrorReply("ERR The command has no key arguments")
    assert s.call(a("COMMAND COUNT")) == len(s.call(a("COMMAND")))
    assert b"config|get" in s.call(a("COMMAND LIST"))
    assert s.call(a("COMMAND LIST FILTERBY PATTERN xread*")) == [b"xread", b"xreadgroup"]


def test_exec_reply_is_a_list_with_typed_elements_and_errors(s: EmbeddedSession) -> None:
    s.call(a("SADD st a"))
    s.call(a("SET str v"))
    assert s.call(a("MULTI")) == Status(b"OK")
    for line in ("SMEMBERS st", "INCR str", "ZRANDMEMBER missing", "SET k v", "INFO keyspace"):
        assert same(s.call(a(line)), Status(b"QUEUED"))
    reply = s.call(a("EXEC"))
    assert type(reply) is list and len(reply) == 5
    assert same(reply[0], SetReply([b"a"]))
    assert same(reply[1], ErrorReply("ERR value is not an integer or out of range"))
    assert reply[2] is None and same(reply[3], Status(b"OK")) and type(reply[4]) is Verbatim


def test_exec_abort_and_errors_are_returned_not_raised(s: EmbeddedSession) -> None:
    s.call(a("MULTI"))
    assert s.call(a("nosuch")).startswith("ERR unknown command 'nosuch'")
    assert s.call(a("EXEC")) == ErrorReply(
        "EXECABORT Transaction discarded because of previous errors."
    )
    assert s.call(a("EXEC")) == ErrorReply("ERR EXEC without MULTI")


def test_watch_is_per_session(store: EmbeddedStore) -> None:
    s1, s2 = store.open_session(), store.open_session()
    s1.call(a("WATCH k"))
    s2.call(a("SET k changed"))
    s1.call(a("MULTI"))
    s1.call(a("SET k mine"))
    assert s1.call(a("EXEC")) is None
    assert s1.call(a("GET k")) == b"changed"


def test_hello_and_reset_keep_the_session_on_resp3(s: EmbeddedSession) -> None:
    s.call(a("HSET h f v"))
    assert s.call(a("HELLO 2"))[b"proto"] == 2  # the host owns the client's protocol
    assert same(s.call(a("HGETALL h")), {b"f": b"v"})
    assert same(s.call(a("RESET")), Status(b"RESET"))
    assert same(s.call(a("ZSCORE missing m")), None)
    s.call(a("ZADD z 2 m"))
    assert same(s.call(a("ZSCORE z m")), 2.0)


# -- sessions --------------------------------------------------------------------------------------


def test_select_is_per_session(store: EmbeddedStore) -> None:
    s1, s2 = store.open_session(), store.open_session()
    assert same(s1.call(a("SELECT 3")), Status(b"OK"))
    assert (s1.db, s2.db) == (3, 0)
    s1.call(a("SET k in3"))
    assert s2.call(a("GET k")) is None
    s2.call(a("SELECT 3"))
    assert s2.call(a("GET k")) == b"in3"
    assert store.open_session().db == 0


def test_closed_session(store: EmbeddedStore) -> None:
    s1, s2 = store.open_session(), store.open_session()
    s1.call(a("SUBSCRIBE ch"))
    s1.close()
    assert s1.closed
    assert s1.call(a("PING")) == ErrorReply("ERR the session is closed")
    assert s2.call(a("PUBLISH ch m")) == 0


def test_client_kill_marks_the_session_closed(store: EmbeddedStore) -> None:
    victim, killer = store.open_session(), store.open_session()
    assert killer.call(a(f"CLIENT KILL ID {victim.client_id}")) == 1
    assert victim.closed and not killer.closed


def test_pushes_go_to_the_handler_or_the_queue(store: EmbeddedStore) -> None:
    sub, pub = store.open_session(), store.open_session()
    got: list[Push] = []
    assert sub.call(a("SUBSCRIBE ch")) is NO_REPLY
    assert sub.pushes.popleft() == Push([b"subscribe", b"ch", 1])
    sub.on_push = got.append
    assert pub.call(a("PUBLISH ch hello")) == 1
    assert got == [Push([b"message", b"ch", b"hello"])] and type(got[0]) is Push
    assert not sub.pushes


def test_client_reply_off_gives_no_reply(s: EmbeddedSession) -> None:
    assert s.call(a("CLIENT REPLY OFF")) is NO_REPLY
    assert s.call(a("SET k v")) is NO_REPLY
    assert s.call(a("CLIENT REPLY ON")) == Status(b"OK")
    assert s.call(a("GET k")) == b"v"


# -- blocking commands in call: never block --------------------------------------------------------


@pytest.mark.timeout(20)
@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("BLPOP k 0", None),
        ("BRPOP k1 k2 0", None),
        ("BRPOPLPUSH k d 0", None),
        ("BLMOVE k d LEFT RIGHT 0", None),
        ("BLMPOP 0 1 k LEFT", None),
        ("BZPOPMIN z 0", None),
        ("BZPOPMAX z 0", None),
        ("BZMPOP 0 1 z MIN", None),
        ("XREAD BLOCK 0 STREAMS s $", None),
        ("XREADGROUP GROUP g c BLOCK 0 STREAMS gs >", None),
        ("WAIT 1 0", 0),
        ("WAITAOF 0 1 0", [0, 0]),
    ],
)
def test_blocking_commands_in_call_answer_at_once(
    s: EmbeddedSession, line: str, expected: Any
) -> None:
    s.call(a("XGROUP CREATE gs g $ MKSTREAM"))
    started = time.monotonic()
    assert same(s.call(a(line)), expected)
    assert time.monotonic() - started < 1.0


def test_blocking_commands_in_call_take_what_is_there(s: EmbeddedSession) -> None:
    s.call(a("RPUSH k x"))
    assert s.call(a("BLPOP k 0")) == [b"k", b"x"]
    s.call(a("RPUSH src y"))
    assert s.call(a("BLMOVE src dst LEFT RIGHT 0")) == b"y"
    assert s.call(a("LRANGE dst 0 -1")) == [b"y"]


async def test_blocking_command_in_call_does_not_block_the_loop(s: EmbeddedSession) -> None:
    assert await asyncio.wait_for(asyncio.to_thread(lambda: None), GUARD) is None
    assert s.call(a("BLPOP k 0")) is None


# -- blocking commands in execute ------------------------------------------------------------------


async def test_execute_blpop_waits_without_blocking_the_loop(store: EmbeddedStore) -> None:
    waiting, other = store.open_session(), store.open_session()
    task = asyncio.create_task(waiting.execute(a("BLPOP q 0")))
    await parked(task)
    # The loop and the other session carry on while the first one waits.
    assert same(await other.execute(a("SET x 1")), Status(b"OK"))
    assert not task.done()
    assert await other.execute(a("LPUSH q item")) == 1
    assert await asyncio.wait_for(task, GUARD) == [b"q", b"item"]
    assert await other.execute(a("LLEN q")) == 0  # served straight after the push


async def test_execute_serves_waiters_oldest_first(store: EmbeddedStore) -> None:
    first, second, pusher = (store.open_session() for _ in range(3))
    t1 = asyncio.create_task(first.execute(a("BRPOP q 0")))
    await parked(t1)
    t2 = asyncio.create_task(second.execute(a("BRPOP q 0")))
    await parked(t2)
    await pusher.execute(a("RPUSH q one"))
    assert await asyncio.wait_for(t1, GUARD) == [b"q", b"one"]
    await parked(t2)
    await pusher.execute(a("RPUSH q two three"))
    assert await asyncio.wait_for(t2, GUARD) == [b"q", b"three"]
    assert await pusher.execute(a("LRANGE q 0 -1")) == [b"two"]


async def test_execute_blpop_timeout_is_honoured(s: EmbeddedSession) -> None:
    started = time.monotonic()
    assert await asyncio.wait_for(s.execute(a("BLPOP q 0.05")), GUARD) is None
    assert 0.04 <= time.monotonic() - started < GUARD
    assert s.store.blocked.parked == {}  # nothing left behind


async def test_execute_wait_waits_out_its_timeout(s: EmbeddedSession) -> None:
    started = time.monotonic()
    assert await asyncio.wait_for(s.execute(a("WAIT 1 50")), GUARD) == 0
    assert time.monotonic() - started >= 0.04
    assert await s.execute(a("WAIT 0 0")) == 0


async def test_execute_xread_dollar_gets_only_new_entries(store: EmbeddedStore) -> None:
    reader, writer = store.open_session(), store.open_session()
    await writer.execute(a("XADD s 1-1 old 1"))
    task = asyncio.create_task(reader.execute(a("XREAD BLOCK 0 STREAMS s $")))
    await parked(task)
    await writer.execute(a("XADD s 2-1 new 1"))
    assert await asyncio.wait_for(task, GUARD) == {b"s": [[b"2-1", [b"new", b"1"]]]}


async def test_execute_xreadgroup_wakes_on_xadd(store: EmbeddedStore) -> None:
    reader, writer = store.open_session(), store.open_session()
    await writer.execute(a("XGROUP CREATE s g $ MKSTREAM"))
    task = asyncio.create_task(reader.execute(a("XREADGROUP GROUP g c BLOCK 0 STREAMS s >")))
    await parked(task)
    await writer.execute(a("XADD s 1-1 f v"))
    assert await asyncio.wait_for(task, GUARD) == {b"s": [[b"1-1", [b"f", b"v"]]]}


async def test_execute_blmove_waits_for_a_missing_source_and_chains(store: EmbeddedStore) -> None:
    mover, popper, pusher = (store.open_session() for _ in range(3))
    pop = asyncio.create_task(popper.execute(a("BLPOP dst 0")))
    await parked(pop)
    move = asyncio.create_task(mover.execute(a("BLMOVE src dst LEFT RIGHT 0")))
    await parked(move)
    await pusher.execute(a("LPUSH src m"))
    # The move writes dst, which serves the BLPOP in the same step (as Redis does).
    assert await asyncio.wait_for(move, GUARD) == b"m"
    assert await asyncio.wait_for(pop, GUARD) == [b"dst", b"m"]


async def test_execute_bzpopmin_wakes_on_zadd(store: EmbeddedStore) -> None:
    waiting, writer = store.open_session(), store.open_session()
    task = asyncio.create_task(waiting.execute(a("BZPOPMIN z1 z2 0")))
    await parked(task)
    await writer.execute(a("ZADD z2 3 m"))
    assert same(await asyncio.wait_for(task, GUARD), [b"z2", b"m", 3.0])


async def test_writes_by_call_serve_waiters_after_the_atomic_section(store: EmbeddedStore) -> None:
    waiting, js = store.open_session(), store.open_session()
    task = asyncio.create_task(waiting.execute(a("BLPOP q 0")))
    await parked(task)
    # An atomic section (a JS function) runs synchronously: the waiter is served after it.
    assert js.call(a("RPUSH q x")) == 1
    assert js.call(a("LLEN q")) == 1
    assert js.call(a("LPOP q")) == b"x"
    assert js.call(a("RPUSH q y")) == 1
    assert await asyncio.wait_for(task, GUARD) == [b"q", b"y"]


async def test_waiter_only_wakes_for_its_own_database(store: EmbeddedStore) -> None:
    waiting, writer = store.open_session(), store.open_session()
    task = asyncio.create_task(waiting.execute(a("BLPOP q 0")))
    await parked(task)
    await writer.execute(a("SELECT 1"))
    await writer.execute(a("RPUSH q in-db-1"))
    await parked(task)
    # SWAPDB brings db 1's list into db 0: the waiter is served, as in Redis.
    await writer.execute(a("SWAPDB 0 1"))
    assert await asyncio.wait_for(task, GUARD) == [b"q", b"in-db-1"]


async def test_multi_exec_never_blocks(store: EmbeddedStore) -> None:
    s = store.open_session()
    await s.execute(a("MULTI"))
    assert same(await s.execute(a("BLPOP q 0")), Status(b"QUEUED"))
    assert await asyncio.wait_for(s.execute(a("EXEC")), GUARD) == [None]


async def test_client_unblock(store: EmbeddedStore) -> None:
    waiting, admin = store.open_session(), store.open_session()
    task = asyncio.create_task(waiting.execute(a("BLPOP q 0")))
    await parked(task)
    assert await admin.execute(a(f"CLIENT UNBLOCK {waiting.client_id}")) == 1
    assert await asyncio.wait_for(task, GUARD) is None
    task = asyncio.create_task(waiting.execute(a("BLPOP q 0")))
    await parked(task)
    assert await admin.execute(a(f"CLIENT UNBLOCK {waiting.client_id} ERROR")) == 1
    assert await asyncio.wait_for(task, GUARD) == ErrorReply(
        "UNBLOCKED client unblocked via CLIENT UNBLOCK"
    )
    assert await admin.execute(a(f"CLIENT UNBLOCK {waiting.client_id}")) == 0


async def test_cancelled_wait_leaves_nothing_behind(store: EmbeddedStore) -> None:
    waiting, writer = store.open_session(), store.open_session()
    task = asyncio.create_task(waiting.execute(a("BLPOP q 0")))
    await parked(task)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert store.blocked.parked == {}
    await writer.execute(a("RPUSH q x"))
    assert await writer.execute(a("LLEN q")) == 1  # nobody took it


async def test_closing_a_waiting_session(store: EmbeddedStore) -> None:
    waiting = store.open_session()
    task = asyncio.create_task(waiting.execute(a("BLPOP q 0")))
    await parked(task)
    waiting.close()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, GUARD)
    assert store.blocked.parked == {}


# -- the command table of the embedded store -------------------------------------------------------


def test_command_info_is_redis_72_plus_what_fakeredis_adds(store: EmbeddedStore) -> None:
    table = store.command_info()
    assert table.get("config|get") is not None  # from Redis' table
    assert table.get("json.set") is not None  # a module command fakeredis emulates
    assert table.get("rg.fcall") is not None and table.get("rg.fcall").is_noscript
    assert store.command_info() is table


# -- performance (reported, not asserted tightly) --------------------------------------------------


def test_call_cost_is_in_the_expected_range(s: EmbeddedSession) -> None:
    set_cmd, get_cmd = a("SET key value"), a("GET key")
    n = 2000
    started = time.perf_counter()
    for _ in range(n):
        s.call(set_cmd)
        s.call(get_cmd)
    per_call_us = (time.perf_counter() - started) / (2 * n) * 1e6
    assert per_call_us < 1000  # a regression guard only (expect tens of µs)


# -- guard: the fakeredis internals jshost/store/embedded/ relies on-------------------------------------


def test_fakeredis_internals_shape() -> None:
    """Fails when fakeredis changes what jshost.store.embedded relies on (it is pinned to 2.41.0;
    upgrade it only together with jshost/store/embedded/)."""
    import fakeredis
    from fakeredis import FakeServer
    from fakeredis._commands import SUPPORTED_COMMANDS, Signature
    from fakeredis._core._database import CommandItem, Database
    from fakeredis._helpers import NoResponse, SimpleError, SimpleString
    from fakeredis._socket import FakeSocket
    from fakeredis._socket._base import BaseFakeSocket
    from fakeredis.model import get_all_commands_info

    assert fakeredis.__version__ == "2.41.0"

    def params(func: Any) -> list[str]:
        return list(inspect.signature(func).parameters)

    assert params(BaseFakeSocket._process_command) == ["self", "fields"]
    assert params(BaseFakeSocket._decode_result) == ["self", "result"]
    assert params(BaseFakeSocket.put_response) == ["self", "msg"]
    assert params(BaseFakeSocket._blocking) == ["self", "timeout", "func", "shape"]
    assert params(BaseFakeSocket._name_to_func) == ["self", "cmd_name"]
    assert params(BaseFakeSocket.__init__)[:4] == ["self", "server", "db", "client_class"]
    # _process_command hands its reply to _decode_result, then to put_response
    source = inspect.getsource(BaseFakeSocket._process_command)
    assert source.index("self._decode_result(result)") < source.index("self.put_response(result)")
    for method in ("hello", "reset", "close", "_run_command", "_cleanup"):
        assert callable(getattr(FakeSocket, method)), method
    sock = FakeSocket(FakeServer(), 0, client_class=redis.Redis, client_info={"resp": 3})
    for attr in (
        "_transaction",
        "_in_transaction",
        "_db",
        "_db_num",
        "_server",
        "_killed",
        "_blocked",
        "_unblock_reason",
        "_client_info",
        "_no_touch",  # CLIENT NO-TOUCH (the store's access times)
    ):
        assert hasattr(sock, attr), attr
    assert sock._client_info.protocol_version == 3
    sock._process_command([b"MULTI"])
    sock._process_command([b"SET", b"k", b"v"])
    ((_func, queued_sig, queued_args),) = sock._transaction  # what queued_commands() reads
    assert (queued_sig.name, queued_args) == ("set", [b"k", b"v"])
    assert params(Database.notify_watch) == ["self", "key"]
    assert params(Database.swap) == ["self", "other"]
    assert "notify_watch" in inspect.getsource(CommandItem.writeback)
    # _TrackedDatabase.__setitem__ does what Database.__setitem__ does, inline
    setitem = inspect.getsource(Database.__setitem__)
    assert "self._dict[key] = value" in setitem and "schedule_expiry" in setitem
    server = FakeServer()
    assert isinstance(server.dbs, collections.defaultdict) and not server.dbs
    assert isinstance(server.lock, type(server.lock)) and hasattr(server, "sockets")
    assert params(Signature.__init__)[:7] == [
        "self",
        "name",
        "func_name",
        "fixed",
        "repeat",
        "args",
        "flags",
    ]
    assert all(isinstance(sig, Signature) for sig in SUPPORTED_COMMANDS.values())
    assert isinstance(SUPPORTED_COMMANDS["config set"].server_types, set)
    assert isinstance(get_all_commands_info()[b"get"], list)
    assert issubclass(SimpleError, Exception) and SimpleString(b"x").value == b"x"
    assert NoResponse is not None
    # jshost.store.embedded.server_commands calls these fakeredis commands with CommandItems
    from fakeredis.commands_mixins.bitmap_mixin import BitmapCommandsMixin
    from fakeredis.commands_mixins.set_mixin import SetCommandsMixin
    from fakeredis.commands_mixins.streams_mixin import StreamsCommandsMixin

    assert params(BitmapCommandsMixin.bitfield) == ["self", "key", "args"]
    assert params(SetCommandsMixin.sunionstore) == ["self", "dst", "keys"]
    assert params(StreamsCommandsMixin.xinfo_stream) == ["self", "key", "args"]
    assert params(StreamsCommandsMixin.xinfo_groups) == ["self", "key"]
    # CLIENT UNBLOCK works through these socket attributes
    assert "_unblock_reason" in inspect.getsource(BaseFakeSocket.__init__)
    assert "_blocked" in inspect.getsource(BaseFakeSocket.__init__)
