"""Tests for jshost.store.command_table: lookup, script-mode checks (SPEC §5), key extraction."""

from __future__ import annotations

import json

import pytest

from jshost.replies import SetReply, Status
from jshost.store.command_table import (
    HOST_COMMANDS,
    CommandInfo,
    CommandTable,
    KeySpec,
    apply_redis_72_patches,
    unknown_command_error,
)


def a(line: str) -> list[bytes]:
    """Command arguments from a space-separated line."""
    return [part.encode() for part in line.split(" ")]


@pytest.fixture(scope="module")
def table() -> CommandTable:
    return CommandTable.bundled()


# -- the bundled table -----------------------------------------------------------------------------


def test_bundled_table_has_redis_commands_and_host_commands(table: CommandTable) -> None:
    assert len(table) > 230
    for name in ("get", "set", "config|get", "xreadgroup", "client|setinfo", "waitaof"):
        assert table.get(name) is not None, name
    for name in HOST_COMMANDS:
        info = table.get(name)
        assert info is not None and info.is_noscript and info.arity == -1


def test_bundled_table_follows_redis_72_for_blocking_commands(table: CommandTable) -> None:
    # Redis 7.2 lets scripts and RM_Call run blocking commands (without blocking).
    for name in ("blpop", "brpop", "brpoplpush", "blmove", "bzpopmin", "bzpopmax", "blmpop"):
        info = table.get(name)
        assert info is not None and "blocking" in info.flags and not info.is_noscript, name
    assert table.get("wait").is_noscript  # type: ignore[union-attr]


def test_bundled_entry_shape(table: CommandTable) -> None:
    info = table.get("set")
    assert info is not None
    assert (info.name, info.arity, info.first_key, info.last_key, info.step) == ("set", -3, 1, 1, 1)
    assert {"write", "denyoom"} <= info.flags
    assert "@string" in info.acl_categories
    assert info.key_specs[0] == KeySpec(
        begin_search="index",
        index=1,
        find_keys="range",
        lastkey=0,
        keystep=1,
        limit=0,
        flags=info.key_specs[0].flags,
    )
    assert table.get("config").subcommands[b"get"].name == "config|get"  # type: ignore[union-attr]


def test_apply_redis_72_patches_is_idempotent() -> None:
    entries = [
        ["blpop", -3, ["write", "noscript", "blocking"], 1, -2, 1, [], [], [], []],
        ["client", -2, [], 0, 0, 0, [], [], [], []],
    ]
    once = apply_redis_72_patches(json.loads(json.dumps(entries)))
    twice = apply_redis_72_patches(json.loads(json.dumps(once)))
    assert once == twice
    by_name = {e[0]: e for e in once}
    assert by_name["blpop"][2] == ["write", "blocking"]
    assert {s[0] for s in by_name["client"][9]} == {"client|setinfo", "client|no-touch"}
    assert "waitaof" in by_name


# -- building from a COMMAND reply -----------------------------------------------------------------


def _resp3_entry() -> list[object]:
    """An entry as Redis 7 sends it over RESP3 (sets of simple strings, key specs as maps)."""
    spec = {
        b"flags": SetReply([Status(b"RW"), Status(b"access")]),
        b"begin_search": {b"type": b"index", b"spec": {b"index": 1}},
        b"find_keys": {b"type": b"range", b"spec": {b"lastkey": 0, b"keystep": 1, b"limit": 0}},
    }
    sub = [
        b"obj|sub",
        -3,
        SetReply([Status(b"readonly")]),
        2,
        2,
        1,
        SetReply(),
        SetReply(),
        SetReply(),
        SetReply(),
    ]
    return [
        b"Obj",
        -2,
        SetReply([Status(b"write"), Status(b"denyoom")]),
        1,
        1,
        1,
        SetReply([Status(b"@write")]),
        SetReply([b"nondeterministic_output"]),
        SetReply([spec]),
        [sub],
    ]


def test_from_command_reply_reads_typed_resp3() -> None:
    t = CommandTable.from_command_reply([_resp3_entry(), None])
    info = t.get("obj")
    assert info is not None
    assert info.name == "obj" and info.flags == {"write", "denyoom"}
    assert info.tips == ("nondeterministic_output",)
    assert info.key_specs[0].flags == {"RW", "access"}
    assert t.lookup(a("OBJ SUB k")).name == "obj|sub"  # type: ignore[union-attr]


def test_from_command_reply_reads_resp2_and_json_shapes() -> None:
    resp2 = [b"get", 2, [b"readonly", b"fast"], 1, 1, 1, [b"@read"], [], [], []]
    fakeredis_style = ["acl cat", -2, ["noscript"], 0, 0, 0, [], [], [], []]
    t = CommandTable.from_command_reply([resp2, fakeredis_style], add_host_commands=False)
    assert t.get("get").flags == {"readonly", "fast"}  # type: ignore[union-attr]
    # fakeredis names subcommands "acl cat": they are nested under a made-up container
    assert t.lookup(a("ACL CAT")).name == "acl|cat"  # type: ignore[union-attr]
    assert "rg.fcall" not in t


def test_to_reply_round_trips(table: CommandTable) -> None:
    again = CommandTable.from_command_reply(json.loads(json.dumps(table.to_reply())))
    for name in ("set", "config|get", "xread", "zunionstore", "migrate"):
        assert again.get(name) == table.get(name), name


def test_to_resp3_matches_redis_shape(table: CommandTable) -> None:
    entry = table.get("get").to_resp3()  # type: ignore[union-attr]
    assert entry[0] == b"get" and entry[1] == 2
    assert isinstance(entry[2], SetReply) and Status(b"readonly") in entry[2]
    assert all(type(f) is Status for f in entry[2])
    assert isinstance(entry[8], SetReply) and isinstance(entry[8][0], dict)
    assert entry[9] == SetReply()  # no subcommands: an empty set, as Redis sends it
    config = table.get("config").to_resp3()  # type: ignore[union-attr]
    assert isinstance(config[9], list) and config[9][0][0].startswith(b"config|")


def test_merged_keeps_own_entries_and_adds_missing_ones(table: CommandTable) -> None:
    extra = CommandTable.from_command_reply(
        [
            ["get", 99, [], 0, 0, 0, [], [], [], []],
            ["json.set", -4, ["write"], 1, 1, 1, [], [], [], []],
            ["config newsub", 2, [], 0, 0, 0, [], [], [], []],
        ],
        add_host_commands=False,
    )
    merged = table.merged(extra)
    assert merged.get("get").arity == 2  # type: ignore[union-attr]
    assert merged.get("json.set") is not None
    assert merged.get("config|newsub") is not None and merged.get("config|get") is not None
    assert table.get("json.set") is None  # the original is unchanged


# -- lookup ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "name"),
    [
        ("GET k", "get"),
        ("get k", "get"),
        ("CONFIG GET maxmemory", "config|get"),
        ("config Get x", "config|get"),
        ("CONFIG", "config"),  # a container alone is the container (then fails arity)
        ("RG.FCALL lib fn 0", "rg.fcall"),
    ],
)
def test_lookup(table: CommandTable, line: str, name: str) -> None:
    info = table.lookup(a(line))
    assert info is not None and info.name == name


@pytest.mark.parametrize("line", ["NOSUCH", "CONFIG NOSUCH", ""])
def test_lookup_unknown(table: CommandTable, line: str) -> None:
    assert table.lookup(a(line) if line else []) is None


# -- script-mode checks (SPEC §5.1, §5.2) ----------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "no_writes", "error"),
    [
        ("GET k", False, None),
        ("SET k v", False, None),
        ("GET k", True, None),
        ("BLPOP k 0", False, None),
        ("XREAD BLOCK 0 STREAMS s $", True, None),
        # existence
        ("foo a b", False, "ERR unknown command 'foo', with args beginning with: 'a' 'b' "),
        ("FOO", False, "ERR unknown command 'FOO', with args beginning with: "),
        ("CONFIG nosuch x", False, "ERR unknown subcommand 'nosuch'. Try CONFIG HELP."),
        # arity comes before noscript and no-writes
        ("SET", True, "ERR wrong number of arguments for 'set' command"),
        ("GET a b", False, "ERR wrong number of arguments for 'get' command"),
        ("CONFIG GET", False, "ERR wrong number of arguments for 'config|get' command"),
        ("CONFIG", False, "ERR wrong number of arguments for 'config' command"),
        ("EVAL", False, "ERR wrong number of arguments for 'eval' command"),
        # noscript, with the full (sub)command name
        ("CONFIG GET maxmemory", False, "ERR command 'config|get' is not allowed on script mode"),
        ("MULTI", False, "ERR command 'multi' is not allowed on script mode"),
        ("EVAL x 0", False, "ERR command 'eval' is not allowed on script mode"),
        ("SUBSCRIBE ch", False, "ERR command 'subscribe' is not allowed on script mode"),
        ("WAIT 0 0", False, "ERR command 'wait' is not allowed on script mode"),
        ("RG.FCALL lib f 0", False, "ERR command 'rg.fcall' is not allowed on script mode"),
        ("TFCALL lib.f 0", True, "ERR command 'tfcall' is not allowed on script mode"),
        ("RG.FUNCTION", False, "ERR command 'rg.function' is not allowed on script mode"),
        ("tconfig_set a b", False, "ERR command 'tconfig_set' is not allowed on script mode"),
        # noscript before no-writes
        ("FLUSHALL", True, "ERR Write command 'flushall' was called while write is not allowed."),
        ("FUNCTION LOAD x", True, "ERR command 'function|load' is not allowed on script mode"),
        # no-writes
        ("SET k v", True, "ERR Write command 'set' was called while write is not allowed."),
        ("BLPOP k 0", True, "ERR Write command 'blpop' was called while write is not allowed."),
        (
            "XGROUP CREATE s g $",
            True,
            "ERR Write command 'xgroup|create' was called while write is not allowed.",
        ),
    ],
)
def test_check_script_call(
    table: CommandTable, line: str, no_writes: bool, error: str | None
) -> None:
    assert table.check_script_call(a(line), no_writes) == error


def test_check_command_is_existence_then_arity(table: CommandTable) -> None:
    assert table.check_command(a("CONFIG GET x")) is None  # exists; noscript is not its business
    assert table.check_command(a("CONFIG")) == "ERR wrong number of arguments for 'config' command"
    assert table.check_command(a("nope")) == unknown_command_error(a("nope"))


def test_unknown_command_error_truncates_like_redis() -> None:
    long_arg = b"x" * 200
    text = unknown_command_error([b"nope", long_arg, b"more"])
    assert text == "ERR unknown command 'nope', with args beginning with: '" + "x" * 128 + "' "
    # Arguments are added while the list is under 128 bytes, each cut to what is left
    # (two arguments take 2 * 63 bytes: 2 are left for the third). Checked against redis-server.
    args = [b"c"] + [b"a" * 60] * 4
    listed = "'" + "a" * 60 + "' " + "'" + "a" * 60 + "' " + "'aa' "
    assert unknown_command_error(args) == (
        "ERR unknown command 'c', with args beginning with: " + listed
    )
    assert unknown_command_error([b"n" * 300]) == (
        "ERR unknown command '" + "n" * 128 + "', with args beginning with: "
    )


def test_unknown_command_error_maps_newlines_and_stops_at_nul() -> None:
    text = unknown_command_error([b"a\r\nb", b"x\0y", b"\xff"])
    assert text == "ERR unknown command 'a  b', with args beginning with: 'x' '\ufffd' "


# -- keys ------------------------------------------------------------------------------------------

# Checked against redis-server 7's COMMAND GETKEYS.
KEY_CASES = [
    ("GET k", ["k"]),
    ("SET k v EX 10", ["k"]),
    ("MSET a 1 b 2 c 3", ["a", "b", "c"]),
    ("DEL a b c", ["a", "b", "c"]),
    ("BLPOP a b c 0", ["a", "b", "c"]),
    ("BLMOVE a b LEFT RIGHT 0", ["a", "b"]),
    ("BZMPOP 0 2 z1 z2 MIN COUNT 1", ["z1", "z2"]),
    ("BLMPOP 0 3 l1 l2 l3 LEFT", ["l1", "l2", "l3"]),
    ("ZUNIONSTORE d 2 a b WEIGHTS 1 2", ["d", "a", "b"]),
    ("XREAD COUNT 1 BLOCK 0 STREAMS s1 s2 0 0", ["s1", "s2"]),
    ("XREADGROUP GROUP g c COUNT 1 STREAMS s1 s2 > >", ["s1", "s2"]),
    ("EVAL script 3 k1 k2 k3 arg", ["k1", "k2", "k3"]),
    ("FCALL f 2 k1 k2 x", ["k1", "k2"]),
    ("MIGRATE h 1 k 0 5", ["k"]),
    ("GEORADIUS g 0 0 1 km STORE d", ["g", "d"]),
    ("SORT k BY w STORE d", ["k", "d"]),
    ("SORT k LIMIT 0 1 GET store STORE d1 STORE d2", ["k", "d2"]),
    ("XINFO STREAM s", ["s"]),
    ("PING", []),
    ("NOSUCH a b", []),
]


@pytest.mark.parametrize(("line", "keys"), KEY_CASES)
def test_keys_of(table: CommandTable, line: str, keys: list[str]) -> None:
    assert table.keys_of(a(line)) == [k.encode() for k in keys]


def test_keys_of_tolerates_missing_arguments(table: CommandTable) -> None:
    assert table.keys_of(a("MSET a")) == [b"a"]
    assert table.keys_of(a("EVAL s 5 k1")) == [b"k1"]
    assert table.keys_of(a("EVAL s notanumber k1")) == []


@pytest.mark.parametrize(
    ("line", "blocking"),
    [
        ("BLPOP k 0", True),
        ("BZPOPMIN z 0", True),
        ("BLMOVE a b LEFT LEFT 0", True),
        ("XREAD STREAMS s 0", False),
        ("XREAD COUNT 1 BLOCK 10 STREAMS s 0", True),
        ("XREAD STREAMS block 0", False),  # "block" here is a stream name
        ("XREADGROUP GROUP g c BLOCK 0 STREAMS s >", True),
        ("WAIT 1 0", True),
        ("WAITAOF 0 1 0", True),
        ("GET k", False),
        ("NOSUCH", False),
    ],
)
def test_is_blocking(table: CommandTable, line: str, blocking: bool) -> None:
    assert table.is_blocking(a(line)) is blocking


@pytest.mark.parametrize(
    ("line", "write"),
    [
        ("SET k v", True),
        ("GET k", False),
        ("CONFIG SET a b", False),
        ("XGROUP CREATE s g $", True),
        ("NOSUCH", False),
    ],
)
def test_is_write(table: CommandTable, line: str, write: bool) -> None:
    assert table.is_write(a(line)) is write


def test_command_info_arity_ok() -> None:
    fixed = CommandInfo(name="x", arity=2)
    variadic = CommandInfo(name="y", arity=-3)
    assert fixed.arity_ok(2) and not fixed.arity_ok(3)
    assert variadic.arity_ok(3) and variadic.arity_ok(9) and not variadic.arity_ok(2)
