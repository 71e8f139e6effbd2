"""Keyspace events of the embedded store: Redis' event names, checked against a real Redis.

`CASES` runs each command form on a real redis-server 7 (`--notify-keyspace-events KEAm`,
subscribed to `__keyevent@*__:*`) and on the embedded store (whose events come from
`jshost.store.keyspace_events` through the `EmbeddedStore` listener), and compares the events.
On the real server a `PUBLISH` on a marker channel follows each command: Redis delivers
messages to a subscriber in order, so the marker coming back means every event of the command
has arrived -- no sleeps. The tests skip when `redis-server` is not on PATH.

Then tests of the hook itself: order, attribution to sessions, atomicity with the command,
active and lazy expiry, keymiss, and the pub/sub channels. Expiry is awaited on an event set by
the listener, with a generous `wait_for` guard against a hang, never with a sleep.
"""

from __future__ import annotations

import asyncio
import inspect
import shlex
import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from listeners import EventCallback

from jshost.replies import Push
from jshost.store import EmbeddedSession, EmbeddedStore
from jshost.store.keyspace_events import (
    EVENT_CLASSES,
    CommandFacts,
    KeyEvent,
    KeyState,
    event_enabled,
    notify_flags,
    redis_events,
)

try:
    from tests.redis_server import REDIS_SERVER, RedisServer
except ImportError:  # run from inside tests/
    from redis_server import REDIS_SERVER, RedisServer  # type: ignore[no-redef]

GUARD = 10.0  # seconds: only ever reached when something hangs

Event = tuple[int, bytes, bytes]  # (db, event, key)

# ------------------------------------------------------------------------------------------------
# The command table: "setup; setup | command". Every case starts from empty databases (FLUSHALL)
# and database 0. `$DUMP(k)` stands for the DUMP of key k on the same server (the payloads of
# fakeredis and Redis differ). Keys are set with `PXAT 1` to be already expired: the real server
# runs with active expiry off (DEBUG SET-ACTIVE-EXPIRE 0), so they wait for a lookup (lazy expiry).
# ------------------------------------------------------------------------------------------------

GROUP = "XADD x 1-1 f v; XGROUP CREATE x g 0"  # a stream with a consumer group
READ = f"{GROUP}; XREADGROUP GROUP g c STREAMS x >"  # ... and an entry pending for consumer c

CASES: list[str] = [
    # -- strings
    "| SET k v",
    "| SET k v EX 100",
    "| SET k v PX 100000",
    "| SET k v EXAT 4000000000",
    "SET k v | SET k v PXAT 1",
    "SET k v EX 100 | SET k v2 KEEPTTL",
    "| SET k v GET",
    "SET k old | SET k v GET",
    "| SET k v NX",
    "SET k v | SET k v NX",
    "| SET k v XX",
    "| SET k v NX GET",
    "SET k v | SET k v2 XX GET",
    "RPUSH k a | SET k v GET",
    "| SETEX k 100 v",
    "| PSETEX k 100000 v",
    "| SETNX k v",
    "SET k v | SETNX k v",
    "| MSET a 1 b 2",
    "| MSETNX a 1 b 2",
    "SET a 1 | MSETNX a 1 b 2",
    "| GETSET k v",
    "SET k v | GETSET k v2",
    "SET k v | GETDEL k",
    "| GETDEL k",
    "SET k v | GETEX k EX 100",
    "SET k v | GETEX k PERSIST",
    "SET k v EX 100 | GETEX k PERSIST",
    "SET k v | GETEX k",
    "| GETEX k EX 100",
    "SET k v | GETEX k PXAT 1",
    "| APPEND k v",
    "SET k v | APPEND k w",
    "| INCR k",
    "| DECR k",
    "| INCRBY k 5",
    "SET k 1 | DECRBY k 1",
    "| INCRBYFLOAT k 1.5",
    "SET k 1 | INCRBYFLOAT k 0",
    "SET k v | INCR k",
    "| SETRANGE k 2 v",
    "SET k v | SETRANGE k 10 x",
    "SET k v | SETRANGE k 0 ''",
    "| SETRANGE k 0 ''",
    "| SETBIT k 3 1",
    "| BITFIELD k SET u8 0 5",
    "| BITFIELD k GET u8 0",
    "SET k v | BITOP AND d k k",
    "SET d v | BITOP AND d k k",
    "| GET k",
    "SET k v | GET k",
    "| MGET a b",
    "SET a 1 | MGET a b",
    "| STRLEN k",
    "| GETRANGE k 0 1",
    "| SUBSTR k 0 1",
    "| GETBIT k 3",
    "| BITCOUNT k",
    "| BITPOS k 1",
    "| BITFIELD_RO k GET u8 0",
    "| LCS a b",
    # -- generic
    "SET a 1; SET b 2 | DEL a b c",
    "| DEL a",
    "SET a 1 | DEL a a",
    "SET a 1 | UNLINK a c",
    "SET k v | EXPIRE k 100",
    "| EXPIRE k 100",
    "SET k v | EXPIRE k 0",
    "SET k v | EXPIRE k -1",
    "SET k v | PEXPIRE k 100000",
    "SET k v | EXPIREAT k 4000000000",
    "SET k v | EXPIREAT k 1",
    "SET k v | PEXPIREAT k 1",
    "SET k v EX 100 | EXPIRE k 50 NX",
    "SET k v EX 100 | EXPIRE k 200 GT",
    "SET k v EX 100 | PERSIST k",
    "SET k v | PERSIST k",
    "| PERSIST k",
    "SET a 1 | RENAME a b",
    "SET a 1; SET b 2 | RENAME a b",
    "SET a 1 EX 100 | RENAME a b",
    "SET a 1 | RENAMENX a b",
    "SET a 1; SET b 2 | RENAMENX a b",
    "| RENAME a b",
    "SET a 1 | RENAME a a",
    "SET a 1 | COPY a b",
    "SET a 1; SET b 2 | COPY a b",
    "SET a 1; SET b 2 | COPY a b REPLACE",
    "SET a 1 | COPY a b DB 2",
    "| COPY a b",
    "SET a 1 | MOVE a 1",
    "| MOVE a 1",
    "SET a 1; SELECT 1; SET a 1; SELECT 0 | MOVE a 1",
    "SET a 1 | TOUCH a b",
    "| EXISTS k",
    "SET a 1 | EXISTS a b a",
    "| TYPE k",
    "| TTL k",
    "| PTTL k",
    "| EXPIRETIME k",
    "| DUMP k",
    "| OBJECT ENCODING k",
    "SET k v | DUMP k",
    "SET k v | RESTORE k2 0 $DUMP(k)",
    "SET k v; SET k2 w | RESTORE k2 0 $DUMP(k) REPLACE",
    "RPUSH l c a b | SORT l ALPHA STORE d",
    "| SORT l STORE d",
    "SET d x | SORT l STORE d",
    "RPUSH l c a b | SORT l ALPHA",
    "| SORT l",
    "SET a 1; SET b 2 | FLUSHDB",
    "SET a 1 | FLUSHALL",
    "SET a 1 | SWAPDB 0 1",
    "SET a 1 | RANDOMKEY",
    "SET a 1 | SCAN 0",
    # -- lists
    "| LPUSH l a b",
    "| RPUSH l a b",
    "| LPUSHX l a",
    "RPUSH l x | LPUSHX l a",
    "RPUSH l x | RPUSHX l a",
    "RPUSH l a b | LPOP l",
    "RPUSH l a | LPOP l",
    "RPUSH l a | RPOP l",
    "RPUSH l a b c | LPOP l 2",
    "RPUSH l a b | LPOP l 5",
    "RPUSH l a | LPOP l 0",
    "| LPOP l",
    "RPUSH l a b | LINSERT l BEFORE b x",
    "RPUSH l a b | LINSERT l BEFORE z x",
    "| LINSERT l BEFORE z x",
    "RPUSH l a b | LSET l 0 x",
    "| LSET l 0 x",
    "RPUSH l a b c | LTRIM l 0 0",
    "RPUSH l a b c | LTRIM l 5 10",
    "| LTRIM l 0 1",
    "RPUSH l a b a | LREM l 0 a",
    "RPUSH l a b a | LREM l 0 z",
    "RPUSH l a | LREM l 0 a",
    "RPUSH s a b | LMOVE s d LEFT RIGHT",
    "RPUSH s a | LMOVE s d RIGHT LEFT",
    "RPUSH s a b | LMOVE s s LEFT RIGHT",
    "| LMOVE s d LEFT RIGHT",
    "RPUSH s a b | RPOPLPUSH s d",
    "RPUSH s a | BLMOVE s d LEFT LEFT 0",
    "RPUSH s a | BRPOPLPUSH s d 0",
    "RPUSH l a b | BLPOP l 1",
    "RPUSH l a | BRPOP x l 1",
    "RPUSH b x | BLPOP a b 1",
    "RPUSH l a b c | LMPOP 1 l LEFT COUNT 2",
    "| LMPOP 2 a b LEFT",
    "RPUSH b x | LMPOP 2 a b RIGHT",
    "RPUSH l a | BLMPOP 1 1 l RIGHT",
    "| LRANGE l 0 -1",
    "| LLEN l",
    "| LINDEX l 0",
    "| LPOS l a",
    # -- hashes
    "| HSET h f v g w",
    "HSET h f v | HSET h f v",
    "| HMSET h f v",
    "| HSETNX h f v",
    "HSET h f v | HSETNX h f v",
    "HSET h f v g w | HDEL h f",
    "HSET h f v | HDEL h f",
    "HSET h f v | HDEL h z",
    "| HDEL h f",
    "| HINCRBY h f 2",
    "| HINCRBY h f 0",
    "| HINCRBYFLOAT h f 2.5",
    "| HGET h f",
    "HSET h f v | HGET h z",
    "| HGETALL h",
    "| HMGET h a b",
    "| HEXISTS h f",
    "| HLEN h",
    "| HKEYS h",
    "| HVALS h",
    "| HSTRLEN h f",
    "| HRANDFIELD h",
    "| HSCAN h 0",
    # -- sets
    "| SADD s a b",
    "SADD s a | SADD s a",
    "SADD s a b | SREM s a",
    "SADD s a | SREM s a",
    "SADD s a | SREM s z",
    "SADD s a b | SPOP s",
    "SADD s a | SPOP s",
    "SADD s a b c | SPOP s 2",
    "SADD s a b | SPOP s 5",
    "SADD s a | SPOP s 0",
    "| SPOP s",
    "SADD s a b; SADD d x | SMOVE s d a",
    "SADD s a | SMOVE s d a",
    "SADD s a | SMOVE s d z",
    "SADD s a | SMOVE s s a",
    "SADD s a; SADD d a | SMOVE s d a",
    "SADD s a b; SADD d a | SMOVE s d a",
    "SADD a 1 2; SADD b 2 3 | SINTERSTORE d a b",
    "SADD a 1; SADD b 2; SET d x | SINTERSTORE d a b",
    "SADD a 1 | SINTERSTORE d a b",
    "SADD a 1; SADD b 1 | SINTERSTORE a a b",
    "SADD a 1; SADD b 2 | SUNIONSTORE d a b",
    "| SUNIONSTORE d a b",
    "SET d v | SUNIONSTORE d a b",
    "SADD a 1 2; SADD b 2 | SDIFFSTORE d a b",
    "SADD a 1; SADD b 1; SADD d z | SDIFFSTORE d a b",
    "| SMEMBERS s",
    "| SISMEMBER s a",
    "| SMISMEMBER s a",
    "| SCARD s",
    "| SINTER a b",
    "| SUNION a b",
    "| SDIFF a b",
    "| SINTERCARD 2 a b",
    "| SRANDMEMBER s",
    "| SSCAN s 0",
    "SET b v | SINTER a b",
    # -- sorted sets
    "| ZADD z 1 a 2 b",
    "ZADD z 1 a | ZADD z 1 a",
    "ZADD z 1 a | ZADD z 2 a",
    "ZADD z 1 a | ZADD z NX 2 a",
    "| ZADD z INCR 2 a",
    "ZADD z 1 a | ZADD z NX INCR 2 a",
    "ZADD z 1 a | ZADD z XX CH 3 a",
    "| ZADD z XX 3 a",
    "ZADD z 5 a | ZADD z GT 3 a",
    "ZADD z 5 a | ZADD z GT CH 7 a",
    "| ZINCRBY z 2 a",
    "| ZINCRBY z 0 a",
    "ZADD z 1 a 2 b | ZREM z a",
    "ZADD z 1 a | ZREM z a",
    "ZADD z 1 a | ZREM z x",
    "ZADD z 1 a 2 b | ZPOPMIN z",
    "ZADD z 1 a 2 b | ZPOPMAX z 5",
    "| ZPOPMIN z",
    "ZADD z 1 a 2 b | BZPOPMIN z 1",
    "ZADD b 1 x 2 y | BZPOPMAX a b 1",
    "ZADD z 1 a 2 b | ZMPOP 1 z MIN COUNT 1",
    "ZADD b 1 x | ZMPOP 2 a b MAX",
    "ZADD b 1 x | BZMPOP 1 2 a b MIN COUNT 5",
    "ZADD z 1 a 2 b 3 c | ZREMRANGEBYSCORE z 1 2",
    "ZADD z 1 a 2 b 3 c | ZREMRANGEBYRANK z 0 -1",
    "ZADD z 0 a 0 b 0 c | ZREMRANGEBYLEX z [a [b",
    "ZADD z 1 a | ZREMRANGEBYSCORE z 5 6",
    "ZADD a 1 x; ZADD b 2 y | ZUNIONSTORE d 2 a b",
    "ZADD a 1 x; ZADD b 2 y | ZINTERSTORE d 2 a b",
    "ZADD a 1 x; ZADD b 2 y; ZADD d 1 q | ZINTERSTORE d 2 a b",
    "ZADD a 1 x | ZINTERSTORE d 2 a b",
    "ZADD a 1 x; ZADD b 2 y | ZDIFFSTORE d 2 a b",
    "ZADD a 1 x 2 y | ZRANGESTORE d a 0 0",
    "ZADD d 1 q | ZRANGESTORE d a 0 0",
    "| ZRANGE z 0 -1",
    "| ZRANGEBYSCORE z 0 1",
    "| ZRANGEBYLEX z - +",
    "| ZREVRANGE z 0 -1",
    "| ZSCORE z a",
    "| ZMSCORE z a",
    "| ZCARD z",
    "| ZCOUNT z 0 1",
    "| ZLEXCOUNT z - +",
    "| ZRANK z a",
    "| ZREVRANK z a",
    "| ZRANDMEMBER z",
    "| ZSCAN z 0",
    "| ZUNION 2 a b",
    "| ZINTER 2 a b",
    "| ZDIFF 2 a b",
    "| ZINTERCARD 2 a b",
    # -- geo
    "| GEOADD g 13.36 38.11 a",
    "GEOADD g 13.36 38.11 a 15 37 b | GEOSEARCHSTORE d g FROMMEMBER a BYRADIUS 500 km",
    "GEOADD g 13.36 38.11 a; SADD d x | GEOSEARCHSTORE d g FROMLONLAT 0 0 BYRADIUS 1 km",
    "GEOADD g 13.36 38.11 a 15 37 b | GEORADIUS g 15 37 200 km STORE d",
    "| GEOPOS g a",
    "| GEODIST g a b",
    "| GEOHASH g a",
    "| GEOSEARCH g FROMLONLAT 0 0 BYRADIUS 1 km",
    # -- streams
    "| XADD x 1-1 f v",
    "| XADD x NOMKSTREAM 1-1 f v",
    "XADD x 1-1 f v; XADD x 2-1 f v | XADD x MAXLEN 1 3-1 f v",
    "XADD x 1-1 f v | XADD x MAXLEN 5 2-1 f v",
    "| XADD x MAXLEN 0 1-1 f v",
    "XADD x 1-1 f v | XADD x MINID 5 2-1 f v",
    "XADD x 1-1 f v; XADD x 2-1 f v | XTRIM x MAXLEN 1",
    "XADD x 1-1 f v | XTRIM x MAXLEN 5",
    "XADD x 1-1 f v; XADD x 2-1 f v | XTRIM x MINID 2",
    "| XTRIM x MAXLEN 0",
    "XADD x 1-1 f v | XDEL x 1-1",
    "XADD x 1-1 f v | XDEL x 9-9",
    "| XDEL x 1-1",
    "XADD x 1-1 f v | XSETID x 5-5",
    "| XSETID x 5-5",
    "XADD x 1-1 f v | XGROUP CREATE x g 0",
    "| XGROUP CREATE x g $ MKSTREAM",
    "| XGROUP CREATE x g 0",
    f"{GROUP} | XGROUP SETID x g $",
    f"{GROUP} | XGROUP CREATECONSUMER x g c",
    f"{GROUP}; XGROUP CREATECONSUMER x g c | XGROUP CREATECONSUMER x g c",
    f"{GROUP}; XGROUP CREATECONSUMER x g c | XGROUP DELCONSUMER x g c",
    f"{GROUP} | XGROUP DELCONSUMER x g nosuch",
    f"{GROUP} | XGROUP DESTROY x g",
    f"{GROUP} | XGROUP DESTROY x nosuch",
    f"{GROUP} | XREADGROUP GROUP g c STREAMS x >",
    f"{READ} | XREADGROUP GROUP g c STREAMS x 0",
    f"{GROUP}; XADD y 1-1 f v; XGROUP CREATE y g 0 | XREADGROUP GROUP g c STREAMS x y > >",
    "| XREADGROUP GROUP g c STREAMS x >",
    f"{READ} | XACK x g 1-1",
    f"{READ} | XCLAIM x g d 0 1-1",
    f"{READ} | XCLAIM x g c 0 1-1",
    f"{READ} | XAUTOCLAIM x g d 0 0",
    "| XACK x g 1-1",
    "| XRANGE x - +",
    "| XREVRANGE x + -",
    "| XLEN x",
    "| XREAD STREAMS x 0",
    "XADD a 1-1 f v | XREAD STREAMS a b 0 0",
    "| XINFO STREAM x",
    "| XINFO GROUPS x",
    "| XPENDING x g",
    # -- hyperloglog
    "| PFADD p a",
    "PFADD p a | PFADD p a",
    "| PFCOUNT p",
    "PFADD a x; PFADD b y | PFMERGE d a b",
    # -- transactions
    "| MULTI; SET a 1; INCR b; DEL a; GET c; EXEC",
    # -- lazy expiry (keys set to expire at 1 ms after the epoch: expired, waiting for a lookup)
    "SET k v PXAT 1 | GET k",
    "SET a 1 PXAT 1; SET b 1 PXAT 1 | MGET a b",
    "SET a 1 PXAT 1 | SET a 2",
    "SET a 1 PXAT 1 | DEL a",
    "SET a 1 PXAT 1; SET b 1 | RENAME a b",
    "SET a 1 PXAT 1; SET b 1 PXAT 1 | RENAME a b",
    "SET a 1 PXAT 1 | FLUSHDB",
    "SET a 1 PXAT 1; SELECT 1; SET b 1 PXAT 1; SELECT 0 | FLUSHALL",
    "SET a 1 PXAT 1; SET b 2 | KEYS *",
    "SET a 1 PXAT 1 | DBSIZE",
    "SET a 1 PXAT 1 | EXISTS a",
    "SET a 1 PXAT 1 | TTL a",
    "SET a 1 PXAT 1 | OBJECT ENCODING a",
    "SET a 1 PXAT 1 | RANDOMKEY",
    "SET a 1 PXAT 1 | SCAN 0",
    "SET a 1 PXAT 1 | INCR a",
    "RPUSH l a; PEXPIREAT l 1 | LPUSH l b",
    "SADD a 1; PEXPIREAT a 1; SADD b 1 | SUNIONSTORE d a b",
]

#: Cases where the embedded store cannot match Redis 7.0, and why.
KNOWN_DIFFERENCES: dict[str, str] = {
    "XADD x 1-1 f v | XSETID x 5-5": "fakeredis has no XSETID",
    "SET a 1 PXAT 1; SET b 1 PXAT 1 | RENAME a b": (
        "the store looks up (and so expires) every key of a command up front; Redis stops at the "
        "missing source, and expires b later"
    ),
    "SET a 1 PXAT 1; SET b 2 | KEYS *": (
        "fakeredis drops expired keys when it walks the keyspace, and the store notifies it then; "
        "Redis 7.0's KEYS skips them, and notifies `expired` later (active expiry or a lookup)"
    ),
    "SET a 1 PXAT 1 | DBSIZE": "as for KEYS: fakeredis counts keys by dropping expired ones",
}

MULTI_MARK = "; "


def parse(case: str) -> tuple[list[list[str]], list[list[str]]]:
    """A case as its setup commands and its commands (MULTI ... EXEC is several commands)."""
    setup, _, command = case.rpartition("|")
    commands = [shlex.split(c) for c in command.split(MULTI_MARK)]
    return [shlex.split(s) for s in setup.split(MULTI_MARK) if s.strip()], commands


def case_id(case: str) -> str:
    return case.replace(" ", "_")


# ------------------------------------------------------------------------------------------------
# The two servers
# ------------------------------------------------------------------------------------------------


class RealRedis:
    """A redis-server with every keyspace event on, and a subscriber that collects them."""

    def __init__(self) -> None:
        self.server = RedisServer(
            "--notify-keyspace-events", "KEAm", "--enable-debug-command", "yes"
        ).start()
        self.client = redis.Redis(port=self.server.port, protocol=2)
        self.client.execute_command("DEBUG", "SET-ACTIVE-EXPIRE", "0")  # lazy expiry only
        self.pubsub = redis.Redis(port=self.server.port, protocol=2).pubsub()
        self.pubsub.psubscribe("__keyevent@*__:*")
        self.pubsub.subscribe("marker")
        self.collect()

    def collect(self) -> list[Event]:
        """The events published since the last call: up to the marker, published now."""
        self.client.publish("marker", "m")
        events: list[Event] = []
        deadline = time.monotonic() + GUARD
        while time.monotonic() < deadline:
            message = self.pubsub.get_message(timeout=GUARD)
            if message is None:
                continue
            if message["type"] == "message":
                return events
            if message["type"] == "pmessage":
                channel: bytes = message["channel"]
                head, _, event = channel.partition(b"__:")
                events.append((int(head.split(b"@")[1]), event, message["data"]))
        raise TimeoutError("the marker did not come back")

    def run(self, case: str) -> list[Event]:
        setup, commands = parse(case)
        self.client.execute_command("FLUSHALL")
        for line in setup:
            self.client.execute_command(*line)
        self.collect()
        for line in commands:
            try:
                self.client.execute_command(*self.dumped(line))
            except redis.ResponseError:
                pass  # errors are part of the table: what matters is what they notified
        return self.collect()

    def dumped(self, line: list[str]) -> list[Any]:
        return [
            dump_arg(self.client.execute_command("DUMP", a[6:-1])) if is_dump(a) else a
            for a in line
        ]

    def close(self) -> None:
        self.pubsub.close()
        self.client.close()
        self.server.stop()


def is_dump(arg: str) -> bool:
    return arg.startswith("$DUMP(") and arg.endswith(")")


def dump_arg(value: Any) -> bytes:
    assert isinstance(value, bytes), value
    return value


class Embedded:
    """The embedded store, its listener collecting (db, event, key) around one command."""

    def __init__(self) -> None:
        self.store = EmbeddedStore()
        self.session = self.store.open_session()
        self.events: list[tuple[EmbeddedSession | None, int, bytes, bytes]] = []

    def call(self, line: list[str]) -> Any:
        return self.session.call([self.arg(a) for a in line])

    def arg(self, a: str) -> bytes:
        if is_dump(a):
            value = self.session.call([b"DUMP", a[6:-1].encode()])
            return dump_arg(value)
        return a.encode()

    def run(self, case: str) -> list[Event]:
        setup, commands = parse(case)
        self.store.set_listener(None)
        self.call(["FLUSHALL"])
        self.call(["SELECT", "0"])
        for line in setup:
            self.call(line)
        self.events = []
        self.store.set_listener(EventCallback(lambda *event: self.events.append(event)))
        try:
            for line in commands:
                self.call(line)
        finally:
            self.store.set_listener(None)
        assert all(session is self.session for session, *_ in self.events)
        return [(db, event, key) for _, db, event, key in self.events]


needs_redis = pytest.mark.skipif(REDIS_SERVER is None, reason="redis-server is not on PATH")


@pytest.fixture(scope="module")
def real() -> Iterator[RealRedis]:
    if REDIS_SERVER is None:
        pytest.skip("redis-server is not on PATH")
    server = RealRedis()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture(scope="module")
def embedded() -> Embedded:
    return Embedded()


def _params() -> list[Any]:
    params = []
    for case in CASES:
        reason = KNOWN_DIFFERENCES.get(case)
        marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
        params.append(pytest.param(case, id=case_id(case), marks=marks))
    return params


def test_the_table_is_big_and_has_no_duplicates() -> None:
    assert len(CASES) >= 80
    assert len(set(CASES)) == len(CASES)
    assert set(KNOWN_DIFFERENCES) <= set(CASES)


@needs_redis
@pytest.mark.parametrize("case", _params())
def test_events_match_redis(case: str, real: RealRedis, embedded: Embedded) -> None:
    expected = real.run(case)
    assert embedded.run(case) == expected


# ------------------------------------------------------------------------------------------------
# The mapping on its own
# ------------------------------------------------------------------------------------------------


def test_unknown_command_falls_back_to_the_store_event_name(
    caplog: pytest.LogCaptureFixture,
) -> None:
    facts = CommandFacts(
        args=[b"json.set", b"k", b"$", b"1"], modified=[b"k", b"k"], fallback=b"json.set", db=3
    )
    with caplog.at_level("DEBUG", logger="jshost.store.keyspace_events"):
        assert redis_events(facts) == [KeyEvent(3, b"json.set", b"k")]
        assert redis_events(facts) == [KeyEvent(3, b"json.set", b"k")]
    assert len([r for r in caplog.records if "json.set" in r.getMessage()]) <= 1


def test_unknown_command_without_writes_has_no_events() -> None:
    assert redis_events(CommandFacts(args=[b"json.get", b"k"], fallback=b"json.get")) == []


def test_failed_command_notifies_only_lookups_before_the_error() -> None:
    present = {b"b": KeyState(exists=True, size=1)}
    facts = CommandFacts(
        args=[b"sinter", b"a", b"b", b"c"], before=present, error="WRONGTYPE Operation"
    )
    assert redis_events(facts) == [KeyEvent(0, b"keymiss", b"a")]
    syntax = CommandFacts(args=[b"get", b"a"], error="ERR syntax error")
    assert redis_events(syntax) == []


def test_event_classes_and_flags() -> None:
    flags = notify_flags(b"KEA")
    assert {b"g", b"$", b"l", b"x", b"e", b"d", b"K", b"E"} <= flags and b"m" not in flags
    assert event_enabled(flags, b"set") and event_enabled(flags, b"json.set")
    assert not event_enabled(flags, b"keymiss")
    assert event_enabled(notify_flags(b"Em"), b"keymiss")
    assert EVENT_CLASSES[b"lpush"] == b"l" and EVENT_CLASSES[b"expired"] == b"x"


# ------------------------------------------------------------------------------------------------
# The hook in the embedded store
# ------------------------------------------------------------------------------------------------


def a(line: str) -> list[bytes]:
    return [part.encode() for part in shlex.split(line)]


@pytest.fixture
def store() -> EmbeddedStore:
    return EmbeddedStore()


def test_events_in_order_with_their_session(store: EmbeddedStore) -> None:
    seen: list[tuple[Any, int, bytes, bytes]] = []
    store.set_listener(EventCallback(lambda *event: seen.append(event)))
    s1, s2 = store.open_session(), store.open_session()
    s1.call(a("RPUSH src a"))
    s2.call(a("SELECT 2"))
    s2.call(a("LMOVE src dst LEFT RIGHT"))  # src is in database 0: nothing to move in 2
    assert seen == [(s1, 0, b"rpush", b"src")]
    seen.clear()
    s2.call(a("SELECT 0"))
    s2.call(a("LMOVE src dst LEFT RIGHT"))
    s1.call(a("GET nothing"))
    assert seen == [
        (s2, 0, b"rpush", b"dst"),
        (s2, 0, b"lpop", b"src"),
        (s2, 0, b"del", b"src"),
        (s1, 0, b"keymiss", b"nothing"),
    ]


def test_events_carry_the_database(store: EmbeddedStore) -> None:
    seen: list[tuple[Any, int, bytes, bytes]] = []
    store.set_listener(EventCallback(lambda *event: seen.append(event)))
    s = store.open_session()
    s.call(a("SELECT 3"))
    s.call(a("SET k v"))
    s.call(a("MOVE k 5"))
    assert [event[1:] for event in seen] == [
        (3, b"set", b"k"),
        (3, b"move_from", b"k"),
        (5, b"move_to", b"k"),
    ]


def test_transaction_events_come_after_exec_in_order(store: EmbeddedStore) -> None:
    seen: list[bytes] = []
    store.set_listener(EventCallback(lambda _s, _db, event, key: seen.append(event + b":" + key)))
    s = store.open_session()
    for line in ("MULTI", "SET a 1", "INCR b", "DEL a"):
        s.call(a(line))
    assert seen == []  # queued commands notify nothing
    s.call(a("EXEC"))
    assert seen == [b"set:a", b"incrby:b", b"del:a"]


def test_listener_runs_before_the_reply_is_returned(store: EmbeddedStore) -> None:
    client, js = store.open_session(), store.open_session()
    returned = False
    seen: list[tuple[Any, bytes, bytes, Any, bool]] = []

    def listener(session: Any, db: int, event: bytes, key: bytes) -> None:
        # A sync trigger: it sees the write, may write itself (through another session: the
        # host's JS session), and all of that happens before the client has its reply.
        seen.append(
            (session, event, key, js.call([b"GET", key]) if event == b"set" else None, returned)
        )
        if session is client and event == b"set":
            js.call([b"INCR", b"count:" + key])

    store.set_listener(EventCallback(listener))
    reply = client.call(a("SET k v"))
    returned = True
    assert reply == b"OK"
    assert seen == [
        (client, b"set", b"k", b"v", False),
        (js, b"incrby", b"count:k", None, False),  # the JS write, reported with its session
    ]
    assert client.call(a("GET count:k")) == b"1"


def test_listener_failure_does_not_lose_the_reply(
    store: EmbeddedStore, caplog: pytest.LogCaptureFixture
) -> None:
    def listener(*_event: Any) -> None:
        raise RuntimeError("boom")

    store.set_listener(EventCallback(listener))
    s = store.open_session()
    assert s.call(a("SET k v")) == b"OK"
    assert any("listener failed" in r.getMessage() for r in caplog.records)


def test_keymiss_for_reads_of_missing_keys_only(store: EmbeddedStore) -> None:
    seen: list[bytes] = []
    store.set_listener(EventCallback(lambda _s, _db, event, key: seen.append(event + b":" + key)))
    s = store.open_session()
    s.call(a("SET here v"))
    seen.clear()
    for line in ("GET here", "GET gone", "HGETALL h", "INCR n", "DEL gone", "LPOP gone"):
        s.call(a(line))
    assert seen == [b"keymiss:gone", b"keymiss:h", b"incrby:n"]


def test_lazy_expiry_on_access(store: EmbeddedStore) -> None:
    seen: list[tuple[Any, bytes, bytes]] = []
    store.set_listener(EventCallback(
        lambda session, _db, event, key: seen.append((session, event, key))))
    s = store.open_session()
    s.call(a("SET k v PXAT 1"))  # no event loop runs here: nothing expires it but a lookup
    seen.clear()
    assert s.call(a("GET k")) is None
    assert seen == [(s, b"expired", b"k"), (s, b"keymiss", b"k")]


async def test_active_expiry_without_any_access(store: EmbeddedStore) -> None:
    seen: list[tuple[Any, int, bytes, bytes]] = []
    expired = asyncio.Event()

    def listener(session: Any, db: int, event: bytes, key: bytes) -> None:
        seen.append((session, db, event, key))
        if event == b"expired":
            expired.set()

    store.set_listener(EventCallback(listener))
    s = store.open_session()
    await s.execute(a("SELECT 1"))
    await s.execute(a("SET short v PX 30"))
    await s.execute(a("SET long v EX 1000"))
    seen.clear()
    await asyncio.wait_for(expired.wait(), GUARD)
    assert seen == [(None, 1, b"expired", b"short")]  # the expiry itself: no session
    assert await s.execute(a("EXISTS short long")) == 1
    await store.aclose()


async def test_active_expiry_fires_for_a_sooner_key_set_later(store: EmbeddedStore) -> None:
    keys: list[bytes] = []
    done = asyncio.Event()

    def listener(session: Any, db: int, event: bytes, key: bytes) -> None:
        if event == b"expired":
            keys.append(key)
            if len(keys) == 2:
                done.set()

    store.set_listener(EventCallback(listener))
    s = store.open_session()
    await s.execute(a("SET later v PX 200"))
    await s.execute(a("SET sooner v PX 20"))  # the timer must move earlier
    await s.execute(a("PEXPIRE later 40"))
    await asyncio.wait_for(done.wait(), GUARD)
    assert keys == [b"sooner", b"later"]
    await store.aclose()


async def test_an_imported_key_expires_actively(store: EmbeddedStore) -> None:
    from jshost.store.values import StringValue

    expired = asyncio.Event()
    store.set_listener(EventCallback(
        lambda _s, _db, event, _key: event == b"expired" and expired.set()))
    store.import_value(0, b"k", StringValue(b"v"), time.time() + 0.03)  # (the data file's way)
    store.open_session().call(a("PING"))  # any command arms the timer
    await asyncio.wait_for(expired.wait(), GUARD)
    await store.aclose()


async def test_call_arms_the_expiry_timer_too(
    store: EmbeddedStore,
) -> None:
    s = store.open_session()
    expired = asyncio.Event()
    store.set_listener(EventCallback(
        lambda _s, _db, event, _key: event == b"expired" and expired.set()))
    s.call(a("SET k v PX 10"))  # `call` (JS's writes) arms the timer as `execute` does
    await asyncio.wait_for(expired.wait(), GUARD)
    await store.aclose()


def test_expiry_stored_without_a_loop_is_armed_once_one_runs(store: EmbeddedStore) -> None:
    s = store.open_session()
    s.call(a("SET k v PX 20"))  # no running loop: no timer yet

    async def main() -> list[tuple[Any, bytes, bytes]]:
        seen: list[tuple[Any, bytes, bytes]] = []
        expired = asyncio.Event()

        def listener(session: Any, _db: int, event: bytes, key: bytes) -> None:
            seen.append((session, event, key))
            expired.set()

        store.set_listener(EventCallback(listener))
        await s.execute(a("PING"))  # the first command under a loop arms it
        await asyncio.wait_for(expired.wait(), GUARD)
        await store.aclose()
        return seen

    assert asyncio.run(main()) == [(None, b"expired", b"k")]


def test_evicted_never_happens_and_is_a_known_class() -> None:
    assert EVENT_CLASSES[b"evicted"] == b"e"


def test_pubsub_channels_follow_notify_keyspace_events(store: EmbeddedStore) -> None:
    sub, s = store.open_session(), store.open_session()
    sub.call(a("PSUBSCRIBE __key*@*__:*"))
    sub.pushes.clear()
    s.call(a("INCR n"))
    assert not sub.pushes  # notify-keyspace-events is empty by default, as in Redis
    s.call(a("CONFIG SET notify-keyspace-events KEA"))
    s.call(a("INCR n"))
    s.call(a("GET missing"))  # keymiss needs the m class
    messages = [list(p) for p in sub.pushes]
    assert messages == [
        [b"pmessage", b"__key*@*__:*", b"__keyspace@0__:n", b"incrby"],
        [b"pmessage", b"__key*@*__:*", b"__keyevent@0__:incrby", b"n"],
    ]
    assert all(isinstance(p, Push) for p in sub.pushes)


def test_no_listener_no_work(store: EmbeddedStore) -> None:
    s = store.open_session()
    assert not store.events.wanted()
    assert s.call(a("SET k v")) == b"OK"
    store.set_listener(EventCallback(lambda *_: None))
    assert store.events.wanted()


def test_fakeredis_internals_used_for_events() -> None:
    """Fails when fakeredis changes what the keyspace events of jshost/store/embedded/ rely on."""
    from fakeredis._core._database import CommandItem, Database, Item
    from fakeredis._socket._base import BaseFakeSocket
    from fakeredis._socket._notifications import NotificationsMixin
    from fakeredis.model import XStream

    def params(func: Any) -> list[str]:
        return list(inspect.signature(func).parameters)

    assert params(BaseFakeSocket._run_command) == ["self", "func", "sig", "args", "from_script"]
    assert params(NotificationsMixin._keyspace_notifications) == [
        "self",
        "command_items",
        "event",
    ]
    assert "_keyspace_notifications(command_items" in inspect.getsource(BaseFakeSocket._run_command)
    assert params(Database._remove_expired) == ["self"]
    assert params(Database.schedule_expiry) == ["self", "key", "expireat"]
    db = Database(None)
    assert isinstance(db._dict, dict) and isinstance(db._expiry_heap, list)
    assert {"value", "expireat"} <= set(Item.__slots__)
    assert isinstance(CommandItem.is_modified, property)
    assert isinstance(XStream()._groups, dict)


def test_expiry_timer_moves_to_a_new_loop(store: EmbeddedStore) -> None:
    s = store.open_session()

    async def first() -> None:
        await s.execute(a("SET k v PX 30"))  # armed on this loop, which closes before it fires

    async def second() -> list[tuple[Any, bytes, bytes]]:
        seen: list[tuple[Any, bytes, bytes]] = []
        expired = asyncio.Event()

        def listener(session: Any, _db: int, event: bytes, key: bytes) -> None:
            seen.append((session, event, key))
            expired.set()

        store.set_listener(EventCallback(listener))
        await s.execute(a("PING"))
        await asyncio.wait_for(expired.wait(), GUARD)
        await store.aclose()
        return seen

    asyncio.run(first())
    assert asyncio.run(second()) == [(None, b"expired", b"k")]


def test_past_expiry_deletes_at_once_even_unobserved(store: EmbeddedStore) -> None:
    s = store.open_session()
    s.call(a("SET a v"))
    s.call(a("SET b v"))
    assert s.call(a("EXPIRE a 0")) == 1  # nobody listens: the key must still go now, as in Redis
    assert s.call(a("GETEX b PXAT 1")) == b"v"
    seen: list[bytes] = []
    store.set_listener(EventCallback(lambda _s, _db, event, key: seen.append(event + b":" + key)))
    assert s.call(a("DBSIZE")) == 0
    assert seen == []  # no late `expired` for keys Redis deleted at once


def test_flush_does_not_report_expired_keys(store: EmbeddedStore) -> None:
    s = store.open_session()
    s.call(a("SET a v PXAT 1"))
    seen: list[bytes] = []
    store.set_listener(EventCallback(lambda _s, _db, event, key: seen.append(event + b":" + key)))
    s.call(a("FLUSHALL"))
    assert seen == []
