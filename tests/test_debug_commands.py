"""`RG.FUNCTION DEBUG` / `TFUNCTION DEBUG` (issue 16): the gate, the dispatch order, the core and
`js` engine sub-commands, how runtimes are counted, and `DEBUG PROTOCOL` reached from JS."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from jshost import errors
from jshost.commands.debug_cmds import PANIC_LOG_LINE, function_debug
from jshost.errors import ReplyError
from jshost.host import Host
from jshost.host.runtimes import PRUNE_ABOVE
from jshost.replies import OK
from jshost.settings import Settings
from tests.gears_servers import (
    STORE_KINDS,
    Backends,
    backends,
    error_of,
    gears_client,
    make_store,
)

__all__ = ["backends"]

COMMAND = {"rg": "rg.function", "tf": "tfunction"}
LIB = {
    "rg": "#!js api_version=1.0 name={name}\nredis.register_function('f', () => 1);{extra}",
    "tf": "#!js api_version=1.0 name={name}\nredis.registerFunction('f', () => 1);{extra}",
}


@pytest.fixture
def debug_host() -> Iterator[Host]:
    host = Host(settings=Settings({"enable-debug-command": "yes"}))
    yield host
    host.close()


def debug(host: Host, era: str, *args: bytes | str) -> Any:
    words = [a.encode() if isinstance(a, str) else a for a in args]
    return function_debug(host, era, COMMAND[era], words)  # type: ignore[arg-type]


def debug_error(host: Host, era: str, *args: bytes | str) -> str:
    with pytest.raises(ReplyError) as info:
        debug(host, era, *args)
    return info.value.text


def load(host: Host, era: str, name: str = "lib", extra: str = "", replace: bool = False) -> None:
    code = LIB[era].format(name=name, extra=extra)
    host.load(code, era=era, replace=replace)  # type: ignore[arg-type]


def counts(host: Host) -> list[Any]:
    return debug(host, "rg", "js", "isolates_stats")  # type: ignore[no-any-return]


# --- the gate and the dispatch ----------------------------------------------------------------


@pytest.mark.parametrize("era", ["rg", "tf"])
@pytest.mark.parametrize("args", [[], ["help"], ["js", "isolates_stats"], [b"\xff"]])
def test_disabled_is_one_answer_whatever_follows(era: str, args: list[Any]) -> None:
    host = Host()
    try:
        assert debug_error(host, era, *args) == errors.DEBUG_COMMAND_DISABLED
    finally:
        host.close()


@pytest.mark.parametrize(("era", "args", "text"), [
    ("rg", [], "ERR wrong number of arguments for 'rg.function' command"),
    ("tf", [], "ERR wrong number of arguments for 'tfunction' command"),
    ("rg", [b"\xff"], "Couldn't parse as UTF-8 string"),
    ("rg", ["HELP"], "Backend 'HELP' does not exists"),  # core names are case-sensitive
    ("tf", ["HELP"], "Backend 'HELP' does not exists or not yet loaded"),
    ("rg", ["v8"], "Backend 'v8' does not exists"),
    ("rg", ["dump_pending_async_calls"], "Backend 'dump_pending_async_calls' does not exists"),
    ("tf", ["JS", "help"], "Backend 'JS' does not exists or not yet loaded"),
    ("rg", ["js"], "Subcommand was not provided"),
    ("tf", ["js"], "Subcommand was not provided"),
    ("rg", ["js", b"\xff"], "Failed converting arguments to string"),
    ("tf", ["js", "help", b"\xff"], "Failed converting arguments to string"),
    ("rg", ["js", "NoSuch"], "Unknown subcommand 'nosuch'"),
    ("rg", ["js", "isolates_aggregated_stats"], "Unknown subcommand 'isolates_aggregated_stats'"),
    ("rg", ["js", "request_v8_gc_for_debugging"],
     "Unknown subcommand 'request_v8_gc_for_debugging'"),
    ("rg", ["js", "avoid_global_allow_list"], "Unknown subcommand 'avoid_global_allow_list'"),
])
def test_dispatch_errors(debug_host: Host, era: str, args: list[Any], text: str) -> None:
    assert debug_error(debug_host, era, *args) == text


@pytest.mark.parametrize("era", ["rg", "tf"])
def test_help_texts(debug_host: Host, era: str) -> None:
    assert debug(debug_host, era, "help") == [
        b"allow_unsafe_redis_commands - enable the option to execute unsafe redis commands from"
        b" within a function.",
        b"panic_on_thread_pool - panic on thread pool to check panic reaction.",
        b"help - print this message.",
        b"<engine> [...] - engine specific debug command.",
    ]
    assert debug(debug_host, era, "js", "HELP", "ignored") == [
        b"isolates_stats - statistics about isolates.",
        b"isolates_strong_count - For each isolate returns its strong ref count value.",
        b"isolates_gc - Runs GC to clear none active isolates.",
        b"help - Print this message.",
    ]


def test_panic_on_thread_pool_only_logs(debug_host: Host,
                                        caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.CRITICAL, logger="jshost"):
        assert debug(debug_host, "tf", "panic_on_thread_pool") == OK
    assert PANIC_LOG_LINE in caplog.messages


# --- runtime counting ---------------------------------------------------------------------------


@pytest.mark.parametrize("era", ["rg", "tf"])
def test_counts_after_upgrades(debug_host: Host, era: str) -> None:
    assert counts(debug_host) == [b"active", 0, b"not_active", 0]
    load(debug_host, era)
    assert counts(debug_host) == [b"active", 1, b"not_active", 0]
    load(debug_host, era, replace=True)
    assert counts(debug_host) == [b"active", 1, b"not_active", 1]
    assert debug(debug_host, era, "js", "isolates_strong_count") == [0, 1]
    assert debug(debug_host, era, "js", "isolates_gc") == OK
    assert counts(debug_host) == [b"active", 1, b"not_active", 0]
    # A failed upgrade: the new runtime is the not-active one.
    with pytest.raises(ReplyError):
        load(debug_host, era, extra="throw 'no';", replace=True)
    assert counts(debug_host) == [b"active", 1, b"not_active", 1]
    debug_host.delete("lib")
    assert counts(debug_host) == [b"active", 0, b"not_active", 2]


@pytest.mark.parametrize(("code", "added"), [
    ("#!js name=lib\nredis.registerFunction('f', () => 1);", 0),  # prologue
    ("#!js api_version=1.0 name=lib\nredis.registerFunction('f', () => 1", 0),  # syntax
    ("#!js api_version=9.9 name=lib\nredis.registerFunction('f', () => 1);", 1),  # api version
    ("#!js api_version=1.0 name=lib\nthrow 'x';", 1),  # top level
    ("#!js api_version=1.0 name=lib\n1;", 1),  # nothing registered
    ("#!js api_version=1.0 name=lib\nredis.registerFunction('f-', () => 1);", 1),  # registration
])
def test_which_failed_loads_are_counted(debug_host: Host, code: str, added: int) -> None:
    with pytest.raises(ReplyError):
        debug_host.load(code, era="tf")
    assert counts(debug_host) == [b"active", 0, b"not_active", added]


def test_a_name_clash_is_counted(debug_host: Host) -> None:
    load(debug_host, "tf")
    with pytest.raises(ReplyError):
        load(debug_host, "tf")
    assert counts(debug_host) == [b"active", 1, b"not_active", 1]


def test_loading_prunes_past_a_hundred(debug_host: Host) -> None:
    load(debug_host, "rg")
    for _ in range(PRUNE_ABOVE):
        load(debug_host, "rg", replace=True)
    # Pruned when the 101st was added, while the one it replaced was still active.
    assert counts(debug_host) == [b"active", 1, b"not_active", 1]
    load(debug_host, "rg", replace=True)
    assert counts(debug_host) == [b"active", 1, b"not_active", 2]


def test_tf_stats_per_active_runtime(debug_host: Host) -> None:
    load(debug_host, "tf", "a")
    load(debug_host, "tf", "b")
    load(debug_host, "tf", "b", replace=True)
    stats = debug(debug_host, "tf", "js", "isolates_stats")
    assert set(stats) == {b"a", b"b"}
    for fields in stats.values():
        assert set(fields) == {b"total_heap_size", b"used_heap_size", b"heap_size_limit"}
        assert 0 < fields[b"used_heap_size"] <= fields[b"total_heap_size"]
        assert fields[b"total_heap_size"] <= fields[b"heap_size_limit"]
    aggregated = debug(debug_host, "tf", "js", "isolates_aggregated_stats")
    assert aggregated[:4] == [b"active", 2, b"not_active", 1]
    assert aggregated[4:] == [b"combined_memory_limit",
                              sum(f[b"total_heap_size"] for f in stats.values())]
    assert debug(debug_host, "tf", "js", "request_v8_gc_for_debugging") == OK


# --- the switches -------------------------------------------------------------------------------


async def test_avoid_global_allow_list_applies_to_later_libraries(debug_host: Host) -> None:
    probe = ("redis.registerFunction('g', () => [typeof eval, typeof EvalError,"
             " typeof globalThis.std, typeof globalThis.print]);")
    load(debug_host, "tf", "before", probe)
    assert debug(debug_host, "tf", "js", "avoid_global_allow_list") == OK
    load(debug_host, "tf", "after", probe)
    assert await debug_host.fcall("before", "g", era="tf") == [
        b"undefined", b"undefined", b"undefined", b"undefined"]
    assert await debug_host.fcall("after", "g", era="tf") == [
        b"function", b"function", b"undefined", b"undefined"]


@pytest.mark.parametrize("era", ["rg", "tf"])
async def test_allow_unsafe_redis_commands_ends_script_mode(debug_host: Host, era: str) -> None:
    call = ("(c) => { try { return c.call('debug', 'protocol', 'string'); }"
            " catch (e) { return 'refused: ' + e; } }")
    register = "register_function" if era == "rg" else "registerFunction"
    load(debug_host, era, extra=f"redis.{register}('g', {call});"
         f"redis.{register}('host', (c) => {{ try {{ return c.call('{COMMAND[era]}', 'list'); }}"
         " catch (e) { return 'refused: ' + e; } });")
    before = await debug_host.fcall("lib", "g", era=era)  # type: ignore[arg-type]
    assert before == b"refused: " + errors.CommandErrors.ERR_NOSCRIPT.format(
        fullname="debug").encode()
    assert debug(debug_host, era, "allow_unsafe_redis_commands") == OK
    assert await debug_host.fcall("lib", "g", era=era) == b"Hello World"  # type: ignore[arg-type]
    # jshost's own commands stay out of reach.
    assert await debug_host.fcall("lib", "host", era=era) == (  # type: ignore[arg-type]
        b"refused: " + errors.CommandErrors.ERR_NOSCRIPT.format(fullname=COMMAND[era]).encode())


# --- DEBUG PROTOCOL from JS, on every store ---------------------------------------------------

PROTOCOL_LIB = """#!js api_version=1.0 name=proto
redis.registerFunction('p', (c, type) => {
  const v = c.call('debug', 'protocol', type);
  const kind = v === null ? 'null' : v instanceof Set ? 'Set' : Array.isArray(v) ? 'Array'
    : typeof v;
  const shown = v instanceof Set ? [...v].map(String).join(',')
    : v !== null && v.__reply_type !== undefined
      ? [String(v), v.__reply_type, v.__format].join('|')
      : typeof v === 'object' && v !== null && !Array.isArray(v) ? JSON.stringify(v) : String(v);
  return [kind, shown];
});
redis.registerFunction('back', (c, type) => c.call('debug', 'protocol', type));
"""


@pytest.fixture(params=STORE_KINDS)
def store_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.mark.parametrize(("type_name", "kind", "shown"), [
    ("string", "string", "Hello World"),
    ("INTEGER", "bigint", "12345"),
    ("double", "number", "3.141"),
    ("bignum", "object", "1234567999999999999999999999999999999|big_number|"),
    ("null", "null", "null"),
    ("array", "Array", "0,1,2"),
    ("set", "Set", "0,1,2"),
    ("map", "object", '{"0":false,"1":true,"2":false}'),
    ("verbatim", "object", "This is a verbatim\nstring|verbatim|txt"),
    ("true", "boolean", "true"),
    ("false", "boolean", "false"),
    ("attrib", "string", "Some real reply following the attribute"),
    ("push", "string", "Some real reply following the push reply"),
])
async def test_debug_protocol_from_js(store_kind: str, backends: Backends, type_name: str,
                                      kind: str, shown: str) -> None:
    async with gears_client(make_store(store_kind, backends), ("tf", PROTOCOL_LIB),
                            enable_debug_command="yes") as client:
        assert await client.execute_command("TFUNCTION", "DEBUG",
                                            "allow_unsafe_redis_commands") == b"OK"
        got_kind, got_shown = await client.execute_command("TFCALL", "proto.p", "0", type_name)
        assert (got_kind.decode(), got_shown.decode()) == (kind, shown)


async def test_debug_protocol_values_go_back_to_the_client(store_kind: str,
                                                           backends: Backends) -> None:
    async with gears_client(make_store(store_kind, backends), ("tf", PROTOCOL_LIB),
                            enable_debug_command="yes") as client:
        await client.execute_command("TFUNCTION", "DEBUG", "allow_unsafe_redis_commands")
        assert await client.execute_command("TFCALL", "proto.back", "0", "double") == b"3.141"
        assert await client.execute_command("TFCALL", "proto.back", "0", "map") == [
            0, 0, 1, 1, 2, 0]
        text = await error_of(client.execute_command("TFCALL", "proto.back", "0", "nosuch"))
        assert text == errors.StoreErrors.DEBUG_PROTOCOL_TYPE.removeprefix("ERR ")


async def test_the_gate_over_the_wire(store_kind: str, backends: Backends) -> None:
    async with gears_client(make_store(store_kind, backends)) as client:
        assert await error_of(client.execute_command("TFUNCTION", "DEBUG")) == (
            errors.DEBUG_COMMAND_DISABLED)
    async with gears_client(make_store(store_kind, backends),
                            enable_debug_command="yes") as client:
        assert await error_of(client.execute_command("TFUNCTION", "debug")) == (
            "wrong number of arguments for 'tfunction' command")
        assert await client.execute_command("TFUNCTION", "DEBUG", "dump_pending_async_calls") == []
        assert await client.execute_command("RG.FUNCTION", "DEBUG", "js", "isolates_stats") == [
            b"active", 0, b"not_active", 0]
