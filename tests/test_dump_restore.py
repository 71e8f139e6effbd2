"""DUMP / RESTORE on the embedded store: Redis' RDB value encoding, never pickles (issue 12
item 1). A RESTORE of a pickle must run nothing (the old fakeredis RESTORE unpickled it and ran
whatever the payload said); payloads must go both ways between the embedded store and a real
redis-server; broken payloads get Redis' errors."""

from __future__ import annotations

import hashlib
import pickle
import random
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from jshost.errors import DumpErrors
from jshost.replies import ErrorReply
from jshost.store import EmbeddedStore, rdb
from tests.redis_server import REDIS_SERVER, RedisServer

needs_redis = pytest.mark.skipif(REDIS_SERVER is None, reason="redis-server is not on PATH")


class _CreatesFile:
    """Unpickling this opens `path` for writing: a harmless stand-in for any code."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)

    def __reduce__(self) -> Any:
        return (open, (self.path, "w"))


def pickle_payload(marker: Path) -> bytes:
    """What fakeredis' RESTORE accepted: a SHA1 of the pickle, then the pickle."""
    body = pickle.dumps(_CreatesFile(marker))
    return hashlib.sha1(body).digest() + body


def words(*args: str | bytes) -> list[bytes]:
    return [a if isinstance(a, bytes) else a.encode() for a in args]


@pytest.fixture
def session() -> Iterator[Any]:
    store = EmbeddedStore()
    session = store.open_session()
    yield session
    session.close()


# --- the hole ----------------------------------------------------------------------------------


def test_restore_of_a_pickle_runs_nothing(session: Any, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    reply = session.call(words("RESTORE", "k", "0", pickle_payload(marker), "REPLACE"))
    assert reply == ErrorReply(DumpErrors.VERSION_OR_CHECKSUM)
    assert not marker.exists()
    assert session.call(words("EXISTS", "k")) == 0


async def test_restore_of_a_pickle_from_js_runs_nothing(rg: Any, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    rg.load("""
        redis.register_function('restore', (client, payload) =>
            client.call('restore', 'k', '0', payload, 'REPLACE'), ['raw-arguments']);
    """)
    text = await rg.fcall_error("restore", pickle_payload(marker))
    assert "DUMP payload version or checksum are wrong" in text
    assert not marker.exists()


def test_dump_is_no_pickle(session: Any) -> None:
    session.call(words("SET", "k", "v"))
    payload = session.call(words("DUMP", "k"))
    # Redis' layout: string type, length 1, "v", RDB version 9, CRC64 of all that.
    assert payload[:-8] == b"\x00\x01v\x09\x00"
    assert payload[-8:] == rdb.checksum(payload[:-8])


# --- every type, inside the embedded store ------------------------------------------------------

FILL = [
    ["SET", "string", "hello"],
    ["SET", "number", "-12345"],
    ["SET", "binary", bytes(range(256)) * 3],
    ["RPUSH", "list", "a", "1", "-300", "70000", "x" * 5000],
    ["SADD", "set", "a", "b", "7", "-1"],
    ["HSET", "hash", "f", "v", "n", "12", "big", "y" * 300],
    ["ZADD", "zset", "1.5", "a", "-inf", "b", "inf", "c", "3", "d"],
    ["XADD", "stream", "1-1", "f", "v"],
    ["XADD", "stream", "1-2", "f", "w"],
    ["XADD", "stream", "5-0", "g", "1", "h", "2"],
    ["XGROUP", "CREATE", "stream", "grp", "0"],
    ["XREADGROUP", "GROUP", "grp", "alice", "COUNT", "2", "STREAMS", "stream", ">"],
    ["XGROUP", "CREATECONSUMER", "stream", "grp", "bob"],
    ["XDEL", "stream", "1-2"],
    ["XADD", "emptied", "1-1", "f", "v"],
    ["XDEL", "emptied", "1-1"],
]
KEYS = ["string", "number", "binary", "list", "set", "hash", "zset", "stream", "emptied"]


def snapshot(call: Any, key: str) -> Any:
    """What a client can see of `key`, in a form that compares across stores."""
    kind = call("TYPE", key)
    kind = kind.decode() if isinstance(kind, bytes) else str(kind)
    if kind == "string":
        return call("GET", key)
    if kind == "list":
        return call("LRANGE", key, "0", "-1")
    if kind == "set":
        return sorted(call("SMEMBERS", key))
    if kind == "hash":
        return sorted(_pairs(call("HGETALL", key)))
    if kind == "zset":
        return [(m, float(s)) for m, s in _pairs(call("ZRANGE", key, "0", "-1", "WITHSCORES"))]
    if kind == "stream":
        info = dict(_pairs(call("XINFO", "STREAM", key)))
        groups = []
        for group in call("XINFO", "GROUPS", key):
            group = dict(_pairs(group))
            name = group[b"name"]
            pending = [(p[0], p[1], p[3]) for p in call("XPENDING", key, name, "-", "+", "100")]
            consumers = sorted((c[b"name"], c[b"pending"])
                               for c in map(dict, map(_pairs, call("XINFO", "CONSUMERS", key,
                                                                    name))))
            groups.append((name, group[b"last-delivered-id"], group[b"entries-read"], pending,
                           consumers))
        entries = [[entry[0], list(entry[1])] for entry in call("XRANGE", key, "-", "+")]
        return (entries, groups, info[b"last-generated-id"], info[b"entries-added"],
                info[b"max-deleted-entry-id"])
    return kind


def _pairs(reply: Any) -> list[tuple[Any, Any]]:
    if isinstance(reply, dict):
        return list(reply.items())
    if reply and isinstance(reply[0], list):
        return [tuple(item) for item in reply]
    return list(zip(reply[::2], reply[1::2]))


@pytest.fixture
def filled(session: Any) -> Any:
    for command in FILL:
        assert not isinstance(session.call(words(*command)), ErrorReply), command
    return session


@pytest.mark.parametrize("key", KEYS)
def test_every_type_survives_dump_and_restore(filled: Any, key: str) -> None:
    call = lambda *a: filled.call(words(*a))
    payload = call("DUMP", key)
    assert call("RESTORE", key + ":copy", "0", payload) == b"OK"
    assert snapshot(call, key + ":copy") == snapshot(call, key)


def test_restore_options_and_errors_follow_redis(filled: Any) -> None:
    call = lambda *a: filled.call(words(*a))
    payload = call("DUMP", "string")
    assert call("RESTORE", "string", "0", payload) == ErrorReply(DumpErrors.BUSYKEY)
    assert call("RESTORE", "new", "-1", payload) == ErrorReply(DumpErrors.INVALID_TTL)
    assert call("RESTORE", "new", "x", payload) == ErrorReply(DumpErrors.NOT_INTEGER)
    assert call("RESTORE", "new", "0", payload, "BOGUS") == ErrorReply("ERR syntax error")
    assert call("RESTORE", "new", "0", payload, "IDLETIME", "-1") == ErrorReply(
        DumpErrors.INVALID_IDLETIME)
    assert call("RESTORE", "new", "0", payload, "FREQ", "256") == ErrorReply(
        DumpErrors.INVALID_FREQ)
    assert call("RESTORE", "new", "0", payload, "IDLETIME", "5", "FREQ", "1") == ErrorReply(
        "ERR syntax error")  # one or the other, as in Redis
    assert call("RESTORE", "new", "100000", payload, "IDLETIME", "5") == b"OK"
    assert 0 < call("PTTL", "new") <= 100000
    assert call("RESTORE", "abs", "4102444800000", payload, "ABSTTL") == b"OK"  # year 2100
    assert call("PEXPIRETIME", "abs") == 4102444800000
    # An expiry already past: nothing stored, and with REPLACE the old key is gone.
    assert call("RESTORE", "string", "1", payload, "ABSTTL", "REPLACE") == b"OK"
    assert call("EXISTS", "string") == 0
    assert call("DUMP", "missing") is None


def test_values_the_rdb_cannot_carry_get_clear_errors(session: Any) -> None:
    call = lambda *a: session.call(words(*a))
    call("JSON.SET", "doc", "$", '{"a": 1}')
    assert call("DUMP", "doc") == ErrorReply(DumpErrors.UNSUPPORTED_TYPE.format(kind="ReJSON-RL"))
    call("HSET", "h", "f", "v")
    call("HEXPIRE", "h", "100", "FIELDS", "1", "f")
    assert call("DUMP", "h") == ErrorReply(DumpErrors.MEMBER_TTL)
    module = bytes([rdb.T_MODULE_2]) + b"\x00" * 9 + struct.pack("<H", 9)
    assert call("RESTORE", "m", "0", module + rdb.checksum(module)) == ErrorReply(
        DumpErrors.UNSUPPORTED_TYPE.format(kind="module value"))
    newer = b"\x00\x01v" + struct.pack("<H", rdb.RDB_VERSION + 1)
    assert call("RESTORE", "n", "0", newer + rdb.checksum(newer)) == ErrorReply(
        DumpErrors.VERSION_OR_CHECKSUM)


def test_broken_payloads_never_crash_the_store(filled: Any) -> None:
    """Truncated and bit-flipped payloads (with a valid checksum, so the parser sees them):
    every one is stored or refused with Redis' error, never an internal error."""
    call = lambda *a: filled.call(words(*a))
    rng = random.Random(12)
    known = {DumpErrors.BAD_DATA, DumpErrors.VERSION_OR_CHECKSUM,
             *(DumpErrors.UNSUPPORTED_TYPE.format(kind=k) for k in ("module value", "zipmap hash"))}
    for key in KEYS:
        body = call("DUMP", key)[:-10]
        for _ in range(150):
            broken = bytearray(body)
            if rng.random() < 0.3:
                broken = broken[:rng.randrange(1, len(broken))]
            else:
                for _ in range(rng.randrange(1, 4)):
                    broken[rng.randrange(len(broken))] = rng.randrange(256)
            payload = bytes(broken) + struct.pack("<H", 9)
            reply = call("RESTORE", "fuzz", "0", payload + rdb.checksum(payload), "REPLACE")
            assert reply == b"OK" or reply in known, (key, bytes(broken), reply)
    assert call("PING") == b"PONG"


# --- a real redis-server ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def redis_client() -> Iterator[Any]:
    if REDIS_SERVER is None:
        pytest.skip("redis-server is not on PATH")
    import redis

    with RedisServer() as server:
        client = redis.Redis(port=server.port)
        client.response_callbacks.clear()  # the raw replies, as the embedded session gives
        yield client
        client.close()


@needs_redis
@pytest.mark.parametrize("key", KEYS)
def test_payloads_go_both_ways_with_redis(filled: Any, redis_client: Any, key: str) -> None:
    redis_client.flushall()
    for command in FILL:
        redis_client.execute_command(*command)
    ours = lambda *a: filled.call(words(*a))
    theirs = redis_client.execute_command
    # Redis' payload (its listpacks, intsets, LZF strings) restored by the embedded store ...
    assert ours("RESTORE", key + ":r", "0", theirs("DUMP", key)) == b"OK"
    assert snapshot(ours, key + ":r") == snapshot(theirs, key)
    # ... and the embedded store's payload restored by Redis.
    assert theirs("RESTORE", key + ":e", "0", ours("DUMP", key)) in (b"OK", True)
    assert snapshot(theirs, key + ":e") == snapshot(ours, key)


@needs_redis
def test_long_and_big_values_from_redis(session: Any, redis_client: Any) -> None:
    """Redis compresses long strings (LZF) and packs long lists in several nodes."""
    redis_client.flushall()
    text = b"".join(b"line %d of a long text\n" % i for i in range(2000))
    redis_client.set("text", text)
    redis_client.rpush("long", *[b"%d" % i for i in range(5000)], *[b"v" * 70000] * 2)
    redis_client.sadd("ints", *range(-1000, 1000, 7))
    redis_client.hset("wide", mapping={f"f{i}": "v" * i for i in range(600)})
    redis_client.zadd("scores", {f"m{i}": i / 7 for i in range(500)})
    for i in range(300):
        redis_client.xadd("events", {"n": str(i), "pad": "p" * (i % 50)})
    call = lambda *a: session.call(words(*a))
    for key in ("text", "long", "ints", "wide", "scores", "events"):
        assert call("RESTORE", key, "0", redis_client.execute_command("DUMP", key)) == b"OK"
        assert snapshot(call, key) == snapshot(redis_client.execute_command, key), key


def test_lzf_decompression_checks_what_it_is_given() -> None:
    # "abcabcabc": a literal "abc", then a back reference of 6 bytes, 3 back (overlapping).
    assert rdb.lzf_decompress(b"\x02abc\x80\x02", 9) == b"abcabcabc"
    for data, size in [
        (b"\x02abc\x80\x05", 9),  # refers before the start
        (b"\x02abc\xe0\xff\x02", 9),  # would write 264 bytes into 9: refused before it does
        (b"\x05abc", 6),  # a literal run cut short
        (b"\x02abc\x80", 9),  # a back reference cut short
        (b"\x02abc", 4),  # shorter than announced
    ]:
        with pytest.raises(rdb.RdbError):
            rdb.lzf_decompress(data, size)
