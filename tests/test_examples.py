"""The example libraries in `examples/`: each loads and does what its header comment says.

They run through `SyncHost` on a fresh embedded store, and the tests assert computed values and
store contents. Trigger *firing* is not implemented yet: for the keyspace and stream examples the
tests check registration and LIST only, plus the functions those libraries also export.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from jshost.errors import Era, ReplyError
from jshost.host import Host
from jshost.sync import SyncHost

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"

# Every example file, with the API era it is written for; a new example must be added here
# (and get a test below).
EXAMPLE_ERAS: dict[str, Era] = {
    "hello.js": "rg",
    "tf_hello.js": "tf",
    "cache.js": "rg",
    "last_updated.js": "rg",
    "stream_totals.js": "rg",
    "binary.js": "rg",
    "config.js": "rg",
    "rollup.js": "rg",
}

ASYNC_ONLY = (
    "The function is declared as async and was called while blocking was not allowed; note that"
    " you cannot invoke async functions from within Lua or MULTI, and you must use RG.FCALLASYNC"
    " instead."
)


def code_of(name: str) -> str:
    return (EXAMPLES / name).read_text(encoding="utf-8")


@pytest.fixture
def host() -> Iterator[SyncHost]:
    with SyncHost() as h:
        yield h


def load(host: SyncHost, name: str, config: str | None = None) -> str:
    return host.load(code_of(name), config, era=EXAMPLE_ERAS[name])


def test_every_example_is_listed() -> None:
    assert sorted(p.name for p in EXAMPLES.glob("*.js")) == sorted(EXAMPLE_ERAS)
    assert (EXAMPLES / "README.md").is_file()


@pytest.mark.parametrize("name", sorted(EXAMPLE_ERAS))
def test_example_has_prologue_and_header(name: str) -> None:
    lines = code_of(name).splitlines()
    assert lines[0].startswith("#!js api_version=")
    header = [line for line in lines[1:12] if line.startswith("//")]
    assert len(header) >= 5, "an example starts with a comment saying what it shows"
    assert name in (EXAMPLES / "README.md").read_text(encoding="utf-8")


# --- hello.js / tf_hello.js ----------------------------------------------------------------------


def test_hello(host: SyncHost) -> None:
    assert load(host, "hello.js") == "hello"
    assert host.fcall("hello", "hello", [], ["world"]) == b"hello world"
    assert host.fcall("hello", "counter", ["visits"]) == 1
    assert host.fcall("hello", "counter", ["visits"]) == 2
    assert host.fcall_async("hello", "slow_counter", ["visits"]) == 3
    assert host.execute("GET", "visits") == b"3"
    with pytest.raises(ReplyError) as info:
        host.fcall("hello", "slow_counter", ["visits"])
    assert info.value.text == ASYNC_ONLY


def test_hello_tf(host: SyncHost) -> None:
    assert load(host, "tf_hello.js") == "hello_tf"
    assert host.fcall("hello_tf", "hello", [], ["world"], era="tf") == b"hello world"
    assert host.fcall("hello_tf", "counter", ["visits"], era="tf") == 1
    assert host.fcall_async("hello_tf", "slow_counter", ["visits"], era="tf") == 2
    assert host.execute("GET", "visits") == b"2"
    host.execute("RPUSH", "jobs", "first", "second")
    assert host.fcall_async("hello_tf", "pop", ["jobs"], era="tf") == b"first"
    assert host.execute("LRANGE", "jobs", "0", "-1") == [b"second"]
    with pytest.raises(ReplyError, match="you must use TFCALLASYNC instead"):
        host.fcall("hello_tf", "slow_counter", ["visits"], era="tf")

    [listing] = host.list(era="tf", verbosity=1)
    functions = {f["name"]: f for f in listing["functions"]}
    assert functions["hello"]["description"] == "Greets its argument"
    assert functions["hello"]["flags"] == ["no-writes"]
    assert functions["counter"]["flags"] == []
    assert functions["slow_counter"]["is_async"] is True


def test_tf_library_has_only_the_tf_api(host: SyncHost) -> None:
    """The same code loaded with the rg command fails: `registerFunction` does not exist."""
    with pytest.raises(ReplyError, match="^Failed loading library: TypeError"):
        host.load(code_of("tf_hello.js"), era="rg")


async def test_hello_tf_pop_waits_for_an_element() -> None:
    """`callAsync('blpop', ...)` waits without holding the lock: another client's RPUSH runs
    and settles it."""
    host = Host()
    try:
        host.load(code_of("tf_hello.js"), era="tf")
        popping = asyncio.ensure_future(host.fcall_async("hello_tf", "pop", ["jobs"], era="tf"))
        for _ in range(5):
            await asyncio.sleep(0)
        assert not popping.done()
        other_client = host.store.open_session()
        assert await other_client.execute([b"RPUSH", b"jobs", b"late"]) == 1
        assert await asyncio.wait_for(popping, 5) == b"late"
    finally:
        host.close()


# --- cache.js ------------------------------------------------------------------------------------


def test_cache_computes_on_miss_and_answers_hits_from_the_cache(host: SyncHost) -> None:
    load(host, "cache.js")
    host.execute("HSET", "source:apple", "price", "3", "quantity", "4")

    assert host.fcall_async("cache", "get", ["apple"]) == b"12"  # miss: computed
    assert host.execute("GET", "cache:apple") == b"12"
    assert 0 < host.execute("TTL", "cache:apple") <= 60

    host.execute("HSET", "source:apple", "price", "5")
    assert host.fcall_async("cache", "get", ["apple"]) == b"12"  # hit: the cached value

    host.execute("DEL", "cache:apple")
    assert host.fcall_async("cache", "get", ["apple"]) == b"20"  # miss again: recomputed
    assert host.execute("GET", "cache:apple") == b"20"


def test_cache_needs_the_async_command(host: SyncHost) -> None:
    load(host, "cache.js")
    with pytest.raises(ReplyError) as info:
        host.fcall("cache", "get", ["apple"])
    assert info.value.text == ASYNC_ONLY
    assert host.execute("EXISTS", "cache:apple") == 0


# --- last_updated.js --------------------------------------------------------------------------------


def test_last_updated_stamps_every_hash_write(host: SyncHost) -> None:
    load(host, "last_updated.js")
    host.execute("HSET", "user:1", "name", "alice")
    stamp = host.fcall("last_updated", "last_updated", ["user:1"])
    assert isinstance(stamp, int) and stamp > 1_600_000_000_000  # ms since the epoch
    host.execute("HSET", "other:1", "name", "bob")  # outside the prefix: no stamp
    assert host.execute("HGET", "other:1", "__last_updated__") is None
    [listing] = host.list(verbosity=1)
    [trigger] = listing["notifications_consumers"]
    # One run for the client's HSET; the trigger's own HSET does not fire it again (§7.4).
    assert (trigger["num_triggered"], trigger["num_success"]) == (1, 1)


def test_last_updated_registers_its_trigger(host: SyncHost) -> None:
    load(host, "last_updated.js")
    [listing] = host.list(verbosity=1)
    assert listing["name"] == "last_updated"
    [trigger] = listing["notifications_consumers"]
    assert trigger["name"] == "stamp"
    assert trigger["num_triggered"] == 0
    assert [f["name"] for f in listing["functions"]] == ["last_updated"]
    assert listing["functions"][0]["flags"] == ["no-writes"]

    [tf_listing] = host.list(era="tf")
    assert tf_listing["keyspace_triggers"] == ["stamp"]


def test_last_updated_function_reads_the_stamp(host: SyncHost) -> None:
    load(host, "last_updated.js")
    # Outside the trigger's `user:` prefix, so the stamp written here is the one read back.
    host.execute("HSET", "member:1", "name", "alice", "__last_updated__", "1700000000123")
    assert host.fcall("last_updated", "last_updated", ["member:1"]) == 1700000000123
    assert host.fcall("last_updated", "last_updated", ["member:2"]) is None


# --- stream_totals.js -------------------------------------------------------------------------------


def test_stream_totals_aggregates_every_entry(host: SyncHost) -> None:
    load(host, "stream_totals.js")
    ids = [host.execute("XADD", "orders:eu", "*", "amount", amount, "item", "pen")
           for amount in ("10.5", "20", "1")]
    host.run_pending()
    totals = host.fcall("stream_totals", "totals", [], ["orders:eu"])
    assert totals == {b"amount": b"31.5", b"entries": 3, b"last_id": ids[-1]}


def test_stream_totals_registers_its_consumer(host: SyncHost) -> None:
    load(host, "stream_totals.js")
    [listing] = host.list(verbosity=1)
    [consumer] = listing["stream_consumers"]
    assert consumer == {"name": "totals", "prefix": b"orders:", "window": 1, "trim": "disabled",
                        "num_streams": 0}  # no stream yet
    [tf_listing] = host.list(era="tf", verbosity=1)
    [trigger] = tf_listing["stream_triggers"]
    assert (trigger["name"], trigger["prefix"], trigger["trim"]) == ("totals", b"orders:", False)


def test_stream_totals_function_reads_the_aggregate(host: SyncHost) -> None:
    load(host, "stream_totals.js")
    assert host.fcall("stream_totals", "totals", [], ["orders:eu"]) == {
        b"amount": b"0", b"entries": 0, b"last_id": None}
    host.execute("HSET", "totals:orders:eu", "amount", "31.5", "entries", "3",
                 "last_id", "1700000000000-2")
    assert host.fcall("stream_totals", "totals", [], ["orders:eu"]) == {
        b"amount": b"31.5", b"entries": 3, b"last_id": b"1700000000000-2"}


# --- binary.js -----------------------------------------------------------------------------------

def test_binary_arguments_arrive_as_bytes(host: SyncHost) -> None:
    load(host, "binary.js")
    data = b"\x00\xff\x10\x80"  # not UTF-8
    assert host.fcall("binary", "store_reversed", [b"blob"], [data]) == 4
    assert host.execute("GET", "blob") == data[::-1]


def test_binary_without_raw_arguments_refuses_bytes(host: SyncHost) -> None:
    load(host, "config.js")
    with pytest.raises(ReplyError) as info:
        host.fcall("greeter", "greet", [], [b"\xff"])
    assert info.value.text == "Can not convert argument to string"


def test_binary_call_raw_reads_bytes(host: SyncHost) -> None:
    load(host, "binary.js")
    host.execute("SET", b"blob", b"\x10\xff\x00")
    assert host.fcall("binary", "hex", [b"blob"]) == b"10ff00"
    assert host.fcall("binary", "hex", [b"missing"]) is None
    assert host.fcall("binary", "xor", [b"blob"], [b"\xff"]) == b"\xef\x00\xff"
    assert host.fcall("binary", "xor", [b"blob"], [b"\x0f\xf0"]) == b"\x1f\x0f\x0f"


# --- config.js -----------------------------------------------------------------------------------


def test_config_values_are_used(host: SyncHost) -> None:
    config = json.dumps({"greeting": "hi", "ttl": 100})
    load(host, "config.js", config)
    assert host.fcall("greeter", "greet", [], ["world"]) == b"hi world"
    assert host.fcall("greeter", "remember", ["k"], ["v"]) == b"OK"
    assert host.execute("GET", "k") == b"v"
    assert 60 < host.execute("TTL", "k") <= 100
    [listing] = host.list()
    assert listing["configuration"] == config


def test_config_defaults(host: SyncHost) -> None:
    load(host, "config.js")
    assert host.fcall("greeter", "greet", [], ["world"]) == b"hello world"
    host.fcall("greeter", "remember", ["k"], ["v"])
    assert 0 < host.execute("TTL", "k") <= 60


@pytest.mark.parametrize(("config", "error"), [
    ('{"ttl": -1}', "Failed loading library: ttl must be a positive integer, got -1."),
    ('{"ttl": "10"}', 'Failed loading library: ttl must be a positive integer, got "10".'),
    ('{"greeting": 5}', "Failed loading library: greeting must be a string."),
])
def test_config_is_checked_at_load(host: SyncHost, config: str, error: str) -> None:
    with pytest.raises(ReplyError) as info:
        load(host, "config.js", config)
    assert info.value.text == error
    assert host.list() == []


# --- rollup.js -----------------------------------------------------------------------------------


def test_rollup_sums_in_several_block_sections(host: SyncHost) -> None:
    load(host, "rollup.js")
    host.execute("SET", "hits:a", "2")
    host.execute("SET", "hits:b", "3")
    host.execute("SET", "other", "100")
    assert host.fcall_async("rollup", "rollup", ["hits:total"], ["hits:"]) == 5
    assert host.execute("GET", "hits:total") == b"5"

    host.execute("INCRBY", "hits:c", "10")
    # The target itself matches the prefix: it is skipped, not added to itself.
    assert host.fcall_async("rollup", "rollup", ["hits:total"], ["hits:"]) == 15
    assert host.execute("GET", "hits:total") == b"15"


def test_rollup_of_nothing_is_zero(host: SyncHost) -> None:
    load(host, "rollup.js")
    assert host.fcall_async("rollup", "rollup", ["sum"], ["none:"]) == 0
    assert host.execute("GET", "sum") == b"0"


def test_all_examples_load_together(host: SyncHost) -> None:
    """Examples have distinct library names, so they can all be loaded into one server."""
    for name in EXAMPLE_ERAS:
        load(host, name)
    assert len({lib["name"] for lib in host.list()}) == len(EXAMPLE_ERAS)
