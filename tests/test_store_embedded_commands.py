"""The server commands the embedded store adds to fakeredis' (jshost.store.embedded.server_commands,
jshost.store.embedded.monitor): OBJECT, MEMORY, SLOWLOG, LATENCY, LOLWUT, MODULE, REPLICAOF,
DEBUG, BITFIELD_RO, COMMAND GETKEYSANDFLAGS, ACL GENPASS / HELP, PFMERGE, XINFO STREAM.
Shapes and texts were checked against redis-server 7.0 (and Redis 7.2's source for what 7.2
added); where the embedded store cannot do what Redis does, the test says what it does instead.
"""

from __future__ import annotations

import asyncio

import pytest
from listeners import EventCallback

from jshost.replies import ErrorReply, SetReply
from jshost.store import EmbeddedSession, EmbeddedStore
from jshost.store.embedded.monitor import CommandMonitor, slowlog_args


def a(line: str) -> list[bytes]:
    return [part.encode() for part in line.split(" ")]


@pytest.fixture
def store() -> EmbeddedStore:
    return EmbeddedStore()


@pytest.fixture
def s(store: EmbeddedStore) -> EmbeddedSession:
    return store.open_session()


def test_object_encoding_follows_redis_rules(s: EmbeddedSession) -> None:
    s.call(a("SET int 12345"))
    s.call(a("SET short hello"))
    s.call([b"SET", b"long", b"x" * 45])
    s.call(a("RPUSH list a b c"))
    s.call(a("SADD ints 1 2 3"))
    s.call(a("SADD words a b"))
    s.call(a("HSET hash f v"))
    s.call([b"HSET", b"bighash", b"f", b"v" * 65])
    s.call(a("ZADD zset 1 a"))
    s.call(a("XADD stream 1-1 f v"))
    expected = {
        "int": b"int", "short": b"embstr", "long": b"raw", "list": b"listpack",
        "ints": b"intset", "words": b"listpack", "hash": b"listpack",
        "bighash": b"hashtable", "zset": b"listpack", "stream": b"stream",
    }
    for key, encoding in expected.items():
        assert s.call(a(f"OBJECT ENCODING {key}")) == encoding, key
    s.call(a("CONFIG SET zset-max-ziplist-entries 0"))  # the old name is an alias
    assert s.call(a("OBJECT ENCODING zset")) == b"skiplist"
    assert s.call(a("CONFIG GET zset-max-listpack-entries")) == {
        b"zset-max-listpack-entries": b"0"
    }
    assert s.call(a("OBJECT ENCODING missing")) is None


def test_object_refcount_and_freq(s: EmbeddedSession) -> None:
    s.call(a("SET shared 42"))
    s.call(a("SET own hello"))
    assert s.call(a("OBJECT REFCOUNT shared")) == 2147483647  # Redis' shared integers
    assert s.call(a("OBJECT REFCOUNT own")) == 1
    freq = s.call(a("OBJECT FREQ own"))
    assert isinstance(freq, ErrorReply) and freq.startswith("ERR An LFU maxmemory policy is not")


def test_object_idletime_counts_from_the_last_access_not_touched_by_no_touch(
    store: EmbeddedStore, s: EmbeddedSession
) -> None:
    s.call(a("SET k v"))
    db = store.server.dbs[0]
    db.touched[b"k"] -= 100  # as if it had been read 100 s ago
    assert s.call(a("OBJECT IDLETIME k")) == 100  # OBJECT itself does not touch the key
    other = store.open_session()
    other.call(a("CLIENT NO-TOUCH on"))
    other.call(a("GET k"))
    assert s.call(a("OBJECT IDLETIME k")) == 100
    other.call(a("TOUCH k"))  # TOUCH touches even then
    assert s.call(a("OBJECT IDLETIME k")) == 0
    db.touched[b"k"] -= 50
    s.call(a("GET k"))
    assert s.call(a("OBJECT IDLETIME k")) == 0
    assert s.call(a("OBJECT IDLETIME missing")) is None


def test_access_times_of_deleted_keys_do_not_pile_up(store: EmbeddedStore, s: EmbeddedSession) -> None:
    for i in range(1000):
        s.call([b"SET", b"k%d" % i, b"v"])
        s.call([b"DEL", b"k%d" % i])
    assert len(store.server.dbs[0].touched) < 200


def test_memory_usage_stats_and_friends(s: EmbeddedSession) -> None:
    s.call(a("SET foo bar"))
    usage = s.call(a("MEMORY USAGE foo"))
    assert isinstance(usage, int) and 40 < usage < 100  # redis-server 7.0 says 64
    assert s.call(a("MEMORY USAGE foo SAMPLES 0")) == usage
    assert s.call(a("MEMORY USAGE missing")) is None
    stats = s.call(a("MEMORY STATS"))
    assert stats[b"keys.count"] == 1 and stats[b"total.allocated"] > 0
    assert set(stats[b"db.0"]) == {b"overhead.hashtable.main", b"overhead.hashtable.expires"}
    assert s.call(a("MEMORY MALLOC-STATS")) == b"Stats not supported for the current allocator"
    assert s.call(a("MEMORY PURGE")) == b"OK"
    assert s.call(a("MEMORY DOCTOR")).startswith(b"jshost's embedded store")


def test_slowlog_records_commands_over_the_threshold(s: EmbeddedSession) -> None:
    assert s.call(a("CONFIG GET slowlog-log-slower-than")) == {
        b"slowlog-log-slower-than": b"10000"
    }
    s.call(a("CONFIG SET slowlog-log-slower-than 0"))
    s.call(a("SLOWLOG RESET"))
    s.call(a("GET foo"))
    entries = s.call(a("SLOWLOG GET"))
    assert [e[3] for e in entries] == [[b"GET", b"foo"], [b"SLOWLOG", b"RESET"]]  # newest first
    entry_id, when, micros, _args, _addr, _name = entries[0]
    assert entry_id == entries[1][0] + 1 and when > 1_700_000_000 and micros >= 0
    assert s.call(a("SLOWLOG LEN")) == 3  # and SLOWLOG GET itself
    assert len(s.call(a("SLOWLOG GET 1"))) == 1
    s.call(a("CONFIG SET slowlog-max-len 2"))
    assert s.call(a("SLOWLOG LEN")) == 2
    s.call(a("CONFIG SET slowlog-log-slower-than -1"))
    s.call(a("SLOWLOG RESET"))
    s.call(a("GET foo"))
    assert s.call(a("SLOWLOG LEN")) == 0
    refused = s.call(a("CONFIG SET slowlog-max-len lots"))
    assert refused == ErrorReply(
        "ERR CONFIG SET failed (possibly related to argument 'slowlog-max-len') - argument "
        "couldn't be parsed into an integer"
    )


def test_slowlog_shortens_arguments_and_hides_passwords() -> None:
    args = slowlog_args([b"RPUSH", b"k", *[b"x" * 200] * 40])
    assert len(args) == 32 and args[-1] == b"... (11 more arguments)"
    assert args[2] == b"x" * 128 + b"... (72 more bytes)"
    assert slowlog_args(a("CONFIG SET requirepass secret maxmemory 10")) == a(
        "CONFIG SET requirepass (redacted) maxmemory 10"
    )
    assert slowlog_args(a("MIGRATE h 1 k 0 5 AUTH2 user pw")) == a(
        "MIGRATE h 1 k 0 5 AUTH2 (redacted) (redacted)"
    )


def test_queued_commands_are_not_logged_until_exec(s: EmbeddedSession) -> None:
    s.call(a("CONFIG SET slowlog-log-slower-than 0"))
    s.call(a("SLOWLOG RESET"))
    s.call(a("MULTI"))
    s.call(a("SET x 1"))
    s.call(a("EXEC"))
    names = [e[3][0] for e in s.call(a("SLOWLOG GET -1"))]
    assert names == [b"EXEC", b"MULTI", b"SLOWLOG"]


def test_latency_monitor_and_histograms(store: EmbeddedStore, s: EmbeddedSession) -> None:
    assert s.call(a("LATENCY LATEST")) == []
    assert s.call(a("LATENCY HISTORY command")) == []
    assert s.call(a("LATENCY RESET")) == 0
    assert b"disabled" in s.call(a("LATENCY DOCTOR"))
    store.monitor.add_latency(b"command", 250)  # as a command taking 250 ms would
    (latest,) = s.call(a("LATENCY LATEST"))
    assert latest[0] == b"command" and latest[2:] == [250, 250]
    assert [ms for _, ms in s.call(a("LATENCY HISTORY command"))] == [250]
    assert s.call(a("LATENCY RESET command nosuch")) == 1
    s.call(a("SET k v"))
    s.call(a("SET k w"))
    histogram = s.call(a("LATENCY HISTOGRAM set get"))
    assert list(histogram) == [b"set"] and histogram[b"set"][b"calls"] == 2
    assert sum(1 for _ in histogram[b"set"][b"histogram_usec"]) >= 1
    assert isinstance(s.call(a("LATENCY GRAPH command")), ErrorReply)


def test_a_slow_command_is_a_latency_sample() -> None:
    monitor = CommandMonitor()
    settings = {"slower_than": 10000, "max_len": 128, "latency_threshold_ms": 5,
                "client": (b"", b""), "track_histograms": False}
    monitor.record(a("GET k"), 4999, fast=True, **settings)  # under 5 ms
    monitor.record(a("KEYS *"), 7000, fast=False, **settings)
    monitor.record(a("GET k"), 6000, fast=True, **settings)
    assert [(e[0], e[2]) for e in monitor.latency_latest()] == [
        (b"command", 7), (b"fast-command", 6)
    ]
    assert [e[3] for e in monitor.slowlog_get(-1)] == []  # none reached 10 ms


async def test_debug_sleep_waits_for_this_client_only(store: EmbeddedStore) -> None:
    sleeper, other = store.open_session(), store.open_session()
    task = asyncio.ensure_future(sleeper.execute(a("DEBUG SLEEP 0.2")))
    await asyncio.sleep(0)  # it is parked now, the store serves the others
    assert other.call(a("PING")) == b"PONG"
    assert not task.done()
    assert await asyncio.wait_for(task, 10) == b"OK"


def test_debug_object_and_unsupported_debug(s: EmbeddedSession) -> None:
    s.call(a("SET k hello"))
    text = s.call(a("DEBUG OBJECT k"))
    assert b"encoding:embstr serializedlength:6 " in text  # the RDB string: length byte + 5
    assert s.call(a("DEBUG OBJECT missing")) == ErrorReply("ERR no such key")
    reply = s.call(a("DEBUG SEGFAULT"))
    assert isinstance(reply, ErrorReply) and "not available on jshost's embedded store" in reply


def test_lolwut_module_replicaof(s: EmbeddedSession) -> None:
    assert s.call(a("LOLWUT")) == b"Redis ver. 7.2.4\n"
    assert s.call(a("LOLWUT VERSION 5 1 2")) == b"Redis ver. 7.2.4\n"
    assert s.call(a("MODULE LIST")) == []
    assert s.call(a("MODULE LOAD /some/path")) == ErrorReply(
        "ERR Error loading the extension. Please check the server logs."
    )
    assert s.call(a("REPLICAOF NO ONE")) == b"OK"
    # The role is recorded, nothing connects (tests/test_gates.py has the rules of the role).
    assert s.call(a("REPLICAOF 127.0.0.1 6379")) == b"OK"
    assert s.call(a("ROLE"))[0] == b"slave"
    assert s.call(a("REPLICAOF NO ONE")) == b"OK"


def test_bitfield_ro_reads_only(s: EmbeddedSession) -> None:
    s.call(a("BITFIELD a SET u8 8 255"))
    assert s.call(a("BITFIELD_RO a GET u8 0 GET u4 8 GET u4 12")) == [0, 15, 15]
    assert s.call(a("BITFIELD_RO a SET u8 0 1")) == ErrorReply(
        "ERR BITFIELD_RO only supports the GET subcommand"
    )


def test_pfmerge_keeps_what_the_destination_held(s: EmbeddedSession) -> None:
    s.call(a("PFADD a 1 2 3"))
    s.call(a("PFADD c 5 6 7"))
    s.call(a("PFMERGE d c a"))
    s.call(a("PFADD b 2 3 4"))
    s.call(a("PFMERGE d b"))
    assert s.call(a("PFCOUNT d")) == 7


def test_zrank_withscore(s: EmbeddedSession) -> None:
    s.call(a("ZADD z 1 a 2 b"))
    assert s.call(a("ZRANK z b WITHSCORE")) == [1, 2.0]
    assert s.call(a("ZREVRANK z b WITHSCORE")) == [0, 2.0]
    assert s.call(a("ZRANK z nope WITHSCORE")) is None


def test_command_getkeysandflags(s: EmbeddedSession) -> None:
    reply = s.call(a("COMMAND GETKEYSANDFLAGS LMOVE l1 l2 left left"))
    assert reply == [[b"l1", [b"RW", b"access", b"delete"]], [b"l2", [b"RW", b"insert"]]]
    assert type(reply[0][1]) is SetReply  # a set in RESP3, in Redis' flag order in RESP2
    assert s.call(a("COMMAND GETKEYSANDFLAGS PING")) == ErrorReply(
        "ERR The command has no key arguments"
    )


def test_acl_genpass_rounds_bits_up_and_acl_help(s: EmbeddedSession) -> None:
    assert len(s.call(a("ACL GENPASS"))) == 64
    assert len(s.call(a("ACL GENPASS 555"))) == 139
    assert len(s.call(a("ACL GENPASS 1"))) == 1
    assert s.call(a("ACL GENPASS 5000")).startswith("ERR ACL GENPASS argument must be")
    help_lines = s.call(a("ACL HELP"))
    assert help_lines[0].startswith(b"ACL <subcommand>") and b"GENPASS [<bits>]" in help_lines


def test_xinfo_stream_full_as_redis_72(s: EmbeddedSession) -> None:
    s.call(a("XADD s 1-1 f v"))
    s.call(a("XADD s 2-1 g w"))
    s.call(a("XGROUP CREATE s grp 0"))
    s.call(a("XREADGROUP GROUP grp alice COUNT 1 STREAMS s >"))
    info = s.call(a("XINFO STREAM s"))
    assert list(info) == [
        b"length", b"radix-tree-keys", b"radix-tree-nodes", b"last-generated-id",
        b"max-deleted-entry-id", b"entries-added", b"recorded-first-entry-id", b"groups",
        b"first-entry", b"last-entry",
    ]
    full = s.call(a("XINFO STREAM s FULL"))
    assert full[b"entries"] == [[b"1-1", [b"f", b"v"]], [b"2-1", [b"g", b"w"]]]
    (group,) = full[b"groups"]
    assert list(group) == [b"name", b"last-delivered-id", b"entries-read", b"lag", b"pel-count",
                           b"pending", b"consumers"]
    assert (group[b"entries-read"], group[b"lag"], group[b"pel-count"]) == (1, 1, 1)
    (consumer,) = group[b"consumers"]
    assert list(consumer) == [b"name", b"seen-time", b"active-time", b"pel-count", b"pending"]
    assert consumer[b"name"] == b"alice" and consumer[b"pending"][0][0] == b"1-1"
    assert len(s.call(a("XINFO STREAM s FULL COUNT 1"))[b"entries"]) == 1
    assert s.call(a("XINFO STREAM nope")) == ErrorReply("ERR no such key")


def test_keyspace_events_do_not_make_object_touch_the_key(
    store: EmbeddedStore, s: EmbeddedSession
) -> None:
    store.set_listener(EventCallback(lambda *_event: None))  # (as jshost's triggers listen)
    s.call(a("SET k v"))
    store.server.dbs[0].touched[b"k"] -= 30
    s.call(a("OBJECT ENCODING k"))
    assert s.call(a("OBJECT IDLETIME k")) == 30
