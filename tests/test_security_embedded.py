"""Issue 12 on the embedded store, as a hostile client or library author would try it:
fakeredis' ACL (files written and read, everyone locked out), its Lua, and writes to jshost's
own keys (docs/security.md)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis

from jshost.errors import SecurityErrors
from jshost.server import Server
from tests.server_fixture import running_server

LEASE = "jshost:triggers:lease"
POSITIONS = "jshost:stream-positions"

LIB = """#!js api_version=1.0 name=lib
redis.register_function('set', (c, k, v) => c.call('set', k, v));
redis.register_function('get', (c, k) => c.call('get', k));
redis.register_function('hset', (c, k, f, v) => c.call('hset', k, f, v));
redis.register_function('publish', (c, ch, m) => c.call('publish', ch, m));
redis.register_function('restore', (c, k, p) => c.call('restore', k, '0', p));
"""


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    async with running_server() as srv:
        srv.host.load(LIB)
        yield srv


@pytest.fixture
async def client(server: Server) -> AsyncIterator[aioredis.Redis]:
    c = aioredis.Redis(port=server.port)
    yield c
    await c.aclose()


async def error(awaitable: Any) -> str:
    with pytest.raises(aioredis.ResponseError) as info:
        await awaitable
    return str(info.value)


def text(error_text: str) -> str:
    """An error text as redis-py shows it (without the ERR code)."""
    return error_text.removeprefix("ERR ")


# --- fakeredis' ACL (item 2) -------------------------------------------------------------------


async def test_acl_setuser_cannot_lock_everyone_out(client: aioredis.Redis) -> None:
    refused = await error(client.execute_command("ACL", "SETUSER", "default", "resetkeys",
                                                 "-@all"))
    assert refused == text(SecurityErrors.EMBEDDED_ACL.format(sub="setuser"))
    assert await client.set("k", "v")
    assert await client.execute_command("RG.FCALL", "lib", "set", "1", "k2", "v") == b"OK"
    assert await client.execute_command("RG.FCALL", "lib", "get", "1", "k") == b"v"


async def test_acl_cannot_write_or_read_files(client: aioredis.Redis, tmp_path: Path) -> None:
    target = tmp_path / "written-by-a-client"
    secret = tmp_path / "secret"
    secret.write_text("user alice on >pw ~* +@all\n")
    refused = await error(client.config_set("aclfile", str(target)))
    assert "aclfile" in refused and "can't set immutable config" in refused
    assert await error(client.execute_command("ACL", "SETUSER", "x\nuser evil on nopass")) == text(
        SecurityErrors.EMBEDDED_ACL.format(sub="setuser"))
    assert await error(client.execute_command("ACL", "SAVE")) == text(
        SecurityErrors.EMBEDDED_ACL.format(sub="save"))
    assert await error(client.config_set("ACLFILE", str(secret))) != ""
    assert await error(client.execute_command("ACL", "LOAD")) == text(
        SecurityErrors.EMBEDDED_ACL.format(sub="load"))
    assert await error(client.execute_command("ACL", "DELUSER", "default")) == text(
        SecurityErrors.EMBEDDED_ACL.format(sub="deluser"))
    assert not target.exists()
    assert await client.execute_command("ACL", "USERS") == [b"default"]
    for name in ("dir", "dbfilename"):
        assert "can't set protected config" in await error(client.config_set(name, "/tmp"))


async def test_read_only_acl_commands_still_answer(client: aioredis.Redis) -> None:
    assert await client.execute_command("ACL", "WHOAMI") == b"default"
    assert b"keyspace" in await client.execute_command("ACL", "CAT")
    assert len(await client.execute_command("ACL", "GENPASS")) == 64
    assert await client.execute_command("ACL", "USERS") == [b"default"]
    assert (await client.execute_command("ACL", "LIST"))[0].startswith(b"user default")
    assert await client.execute_command("ACL", "GETUSER", "default")
    assert await client.execute_command("ACL", "LOG") == []


# --- Lua (fakeredis runs it through lupa, unsandboxed, when lupa is installed) --------------------


@pytest.mark.parametrize("command", [
    ["EVAL", "return 1", "0"], ["EVALSHA", "a" * 40, "0"], ["EVAL_RO", "return 1", "0"],
    ["SCRIPT", "LOAD", "return 1"], ["FUNCTION", "LOAD", "#!lua name=x\nreturn 1"],
    ["FUNCTION", "LIST"], ["FCALL", "f", "0"],
])
async def test_lua_is_refused(client: aioredis.Redis, command: list[str]) -> None:
    assert await error(client.execute_command(*command)) == text(SecurityErrors.EMBEDDED_NO_LUA)


# --- jshost's own keys and channels (item 8) ---------------------------------------------------


@pytest.mark.parametrize("command", [
    ["SET", LEASE, "hacked"], ["DEL", LEASE], ["EXPIRE", LEASE, "1"],
    ["HSET", POSITIONS, "lib\0c\0st:1", "0-0 "], ["RENAME", "mine", LEASE],
    ["COPY", "mine", POSITIONS, "REPLACE"], ["SORT", "list", "STORE", "jshost:x"],
    ["MSET", "a", "1", "jshost:y", "2"],
])
async def test_clients_cannot_write_jshost_keys(client: aioredis.Redis, command: list[str]) -> None:
    await client.set("mine", "x")
    await client.rpush("list", "1")
    refused = await error(client.execute_command(*command))
    assert "keys starting with 'jshost:' belong to jshost" in refused
    assert await client.exists(LEASE, POSITIONS, "jshost:x", "jshost:y") == 0


async def test_clients_can_read_jshost_keys(server: Server, client: aioredis.Redis) -> None:
    server.host.session(0).call([b"HSET", POSITIONS.encode(), b"f", b"1-0 "])  # jshost's own
    assert await client.hgetall(POSITIONS) == {b"f": b"1-0 "}
    assert await client.type(POSITIONS) == b"hash"
    assert await client.execute_command("COPY", POSITIONS, "copy") == 1


async def test_a_refused_write_in_multi_aborts_the_transaction(client: aioredis.Redis) -> None:
    pipe = client.pipeline(transaction=True)
    pipe.set("a", "1")
    pipe.set(LEASE, "hacked")
    with pytest.raises(aioredis.ResponseError, match="belong to jshost"):
        await pipe.execute()  # refused when queued: EXEC answers EXECABORT, nothing runs
    assert await client.exists("a", LEASE) == 0


async def test_clients_cannot_publish_on_jshost_channels(client: aioredis.Redis) -> None:
    refused = await error(client.publish("jshost:libraries", "lib"))
    assert refused == text(SecurityErrors.INTERNAL_CHANNEL.format(name="publish",
                                                                  channel="jshost:libraries"))
    assert await client.publish("other", "x") == 0


@pytest.mark.parametrize(("function", "args"), [
    ("set", [LEASE, "hacked"]),
    ("hset", [POSITIONS, "other\0c\0st:1", "9-9 9-9"]),
    ("publish", ["jshost:libraries", "lib"]),
])
async def test_libraries_cannot_write_jshost_keys(client: aioredis.Redis, function: str,
                                                  args: list[str]) -> None:
    refused = await error(client.execute_command("RG.FCALL", "lib", function, "1", *args))
    assert "belong to jshost" in refused
    assert await client.exists(LEASE, POSITIONS) == 0


async def test_libraries_can_read_jshost_keys(server: Server, client: aioredis.Redis) -> None:
    server.host.session(0).call([b"SET", LEASE.encode(), b"x"])  # as jshost would
    assert await client.execute_command("RG.FCALL", "lib", "get", "1", LEASE) == b"x"


def test_the_fakeredis_commands_jshost_replaces_are_still_where_it_replaces_them() -> None:
    """The embedded store overrides fakeredis' methods by name (and DUMP/RESTORE, Lua by command
    name): if fakeredis renames them, the holes would silently come back. fakeredis is pinned;
    this fails loudly when an upgrade moves them."""
    from fakeredis._commands import SUPPORTED_COMMANDS

    from jshost.store.embedded.socket import LUA_COMMANDS, StoreSocket

    for command, method in [("acl setuser", "acl_setuser"), ("acl deluser", "acl_deluser"),
                            ("acl save", "acl_save"), ("acl load", "acl_load"),
                            ("config set", "config_set"), ("dump", "dump"),
                            ("restore", "restore")]:
        assert SUPPORTED_COMMANDS[command].func_name == method, command
    for method in ("acl_setuser", "acl_deluser", "acl_save", "acl_load", "config_set"):
        assert method in vars(StoreSocket), method
    scripting = {name.partition(" ")[0] for name in SUPPORTED_COMMANDS
                 if SUPPORTED_COMMANDS[name].func_name in (
                     "eval", "evalsha", "eval_ro", "evalsha_ro", "fcall", "fcall_ro")
                 or name.startswith(("script ", "function "))}
    assert scripting <= LUA_COMMANDS  # (empty when lupa is not installed)
    assert {"eval", "evalsha", "script", "function", "fcall"} <= LUA_COMMANDS
