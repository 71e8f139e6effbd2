"""Issue 12 in front of a real redis-server (`--backend`): administrative commands, the Redis
functions that hold jshost's libraries, jshost's keys, the trigger lease, notify-keyspace-events,
a JS call during CLIENT PAUSE, and the backend password kept out of `ps`."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import redis
import redis.asyncio as aioredis

from jshost import errors
from jshost.errors import BackendErrors, SecurityErrors
from jshost.host import Host
from jshost.host.archive import RedisArchive
from jshost.host.streams import LEASE_KEY
from jshost.server import Server
from jshost.settings import Settings
from jshost.store import RemoteStore
from tests.redis_server import REDIS_SERVER, RedisServer
from tests.server_fixture import JshostProcess, wait_until

pytestmark = pytest.mark.skipif(REDIS_SERVER is None, reason="redis-server is not on PATH")

LIB = """#!js api_version=1.0 name=lib
redis.register_function('set', (c, k, v) => c.call('set', k, v));
"""
TRIGGER = """#!js api_version=1.0 name=lib
redis.register_notifications_consumer('log', 'k', (c, d) => {
    c.call('rpush', 'log', d.event + ' ' + d.key);
});
redis.register_function('set', (c, k, v) => c.call('set', k, v));
"""


@pytest.fixture(scope="module")
def backend() -> Iterator[RedisServer]:
    with RedisServer("--enable-debug-command", "yes") as srv:
        yield srv


@pytest.fixture
def direct(backend: RedisServer) -> Iterator[redis.Redis]:
    """A client of the backend itself, not going through jshost."""
    client = redis.Redis(port=backend.port)
    client.flushall()
    client.function_flush()
    client.config_set("notify-keyspace-events", "")
    yield client
    client.close()


@asynccontextmanager
async def serving(url: str, code: str | None = LIB, **settings: str) -> AsyncIterator[Server]:
    host = Host(RemoteStore(url), Settings(settings))
    host.archive = RedisArchive(host.session(0))  # libraries kept in Redis, as jshost serve does
    if code is not None:
        host.load(code)
    srv = Server(host, port=0)
    await srv.start()
    try:
        yield srv
    finally:
        await srv.shutdown()
        host.close()
        await host.store.aclose()


@asynccontextmanager
async def client_of(url: str, code: str | None = LIB,
                    **settings: str) -> AsyncIterator[aioredis.Redis]:
    async with serving(url, code, **settings) as srv:
        c = aioredis.Redis(port=srv.port)
        try:
            yield c
        finally:
            await c.aclose()


async def error(awaitable: Any) -> str:
    with pytest.raises(aioredis.ResponseError) as info:
        await awaitable
    return str(info.value)


def text(error_text: str) -> str:
    return error_text.removeprefix("ERR ")


# --- administrative commands (item 6) ---------------------------------------------------------


async def test_replicaof_cannot_take_the_backend(direct: redis.Redis, backend: RedisServer) -> None:
    async with client_of(backend.url) as c:
        refused = await error(c.execute_command("REPLICAOF", "127.0.0.1", "1"))
        assert refused == text(SecurityErrors.ADMIN_COMMAND.format(name="replicaof"))
        assert await error(c.execute_command("SLAVEOF", "127.0.0.1", "1")) != ""
        assert await c.set("still", "writable")
    try:
        assert direct.info("replication")["role"] == "master"
    finally:
        direct.execute_command("REPLICAOF", "NO", "ONE")  # (only needed without the fix)


@pytest.mark.parametrize("command", [
    ["MODULE", "LIST"], ["MODULE", "LOAD", "/tmp/x.so"], ["FAILOVER"],
    ["CONFIG", "REWRITE"], ["PFDEBUG", "GETREG", "h"],
])
async def test_admin_commands_are_refused(direct: redis.Redis, backend: RedisServer,
                                          command: list[str]) -> None:
    async with client_of(backend.url) as c:
        refused = await error(c.execute_command(*command))
        assert "administrative command" in refused and "admin-commands yes" in refused
        assert await c.ping()


async def test_client_kill_and_pause_act_on_jshosts_clients_not_the_backend(
        direct: redis.Redis, backend: RedisServer) -> None:
    """jshost answers CLIENT for its own clients: KILL and PAUSE never reach the backend
    (they were refused before jshost did; now anyone may, as in Redis, on jshost's clients)."""
    async with serving(backend.url) as srv:
        me, other = aioredis.Redis(port=srv.port), aioredis.Redis(port=srv.port)
        try:
            other_id = await other.client_id()
            backend_clients = direct.client_list()
            assert await me.execute_command("CLIENT", "KILL", "TYPE", "normal") == 1  # other
            listed = [c["id"] for c in await me.client_list()]
            assert str(other_id) not in listed and len(listed) == 1
            assert [c["id"] for c in direct.client_list()] == [c["id"] for c in backend_clients]
            assert await me.execute_command("CLIENT", "PAUSE", "100000", "WRITE") in (b"OK", True)
            assert direct.set("direct", "not paused")  # the backend is not paused ...
            assert await me.get("direct") == b"not paused"  # ... nor jshost's reads
            assert await me.execute_command("CLIENT", "UNPAUSE") in (b"OK", True)
            assert await me.set("k", "v")
        finally:
            await me.aclose()
            await other.aclose()


@pytest.mark.parametrize("name", ["dir", "dbfilename", "logfile", "aclfile", "bind", "port"])
async def test_protected_config_set_is_refused(direct: redis.Redis, backend: RedisServer,
                                               name: str) -> None:
    before = direct.config_get(name)
    async with client_of(backend.url) as c:
        refused = await error(c.config_set(name, "/tmp/evil"))
        if name in ("bind", "port"):  # jshost's own listener's, which cannot change now
            assert refused == text(errors.config_set_failed(name, errors.CONFIG_IMMUTABLE))
        else:
            assert refused == text(SecurityErrors.PROTECTED_CONFIG.format(name=name))
        assert await c.config_set("maxmemory-policy", "noeviction")  # the others still pass
    assert direct.config_get(name) == before


async def test_debug_passes_only_what_gears_needs(direct: redis.Redis,
                                                  backend: RedisServer) -> None:
    async with client_of(backend.url) as c:  # enable-debug-command no (the default)
        assert "'debug protocol'" in await error(c.execute_command("DEBUG", "PROTOCOL", "string"))
    async with client_of(backend.url, **{"enable-debug-command": "yes"}) as c:
        assert await c.execute_command("DEBUG", "PROTOCOL", "string") == b"Hello World"
        refused = await error(c.execute_command("DEBUG", "SLEEP", "0"))
        assert refused == text(SecurityErrors.DEBUG_COMMAND.format(sub="sleep"))
        assert await error(c.execute_command("DEBUG", "SEGFAULT")) != ""
        assert await c.ping()


async def test_admin_commands_setting_lets_them_through(direct: redis.Redis,
                                                        backend: RedisServer) -> None:
    async with client_of(backend.url, **{"admin-commands": "yes"}) as c:
        assert await c.execute_command("MODULE", "LIST") == []
        assert await c.execute_command("DEBUG", "SLEEP", "0") in (b"OK", True)
        # Redis' own protection still applies, and jshost's credentials stay hidden.
        assert "protected config" in await error(c.config_set("dir", "/tmp"))
        assert "credentials" in await error(c.config_set("masterauth", "x"))
        assert "credentials" in await error(c.execute_command("ACL", "SETUSER", "x"))


def test_admin_commands_setting_from_the_environment() -> None:
    from jshost.cli import _environment_settings

    os.environ["JSHOST_ADMIN_COMMANDS"] = "yes"
    try:
        assert Settings(_environment_settings())["admin-commands"] is True
    finally:
        del os.environ["JSHOST_ADMIN_COMMANDS"]
    assert Settings()["admin-commands"] is False
    assert Settings({"admin-commands": "yes"})["admin-commands"] is True
    assert not any("admin" in name for name, _ in Settings().get("*"))  # not in CONFIG GET


# --- the Redis functions that hold jshost's libraries (item 7) ----------------------------------


def lua(name: str) -> str:
    return f"#!lua {name}\nredis.register_function('f_{abs(hash(name))}', function() return 1 end)"


@pytest.mark.parametrize("command", [
    ["FUNCTION", "LOAD", lua("name=jshost_6c6962")],
    ["FUNCTION", "LOAD", "REPLACE", lua("name=jshost_6c6962")],
    ["FUNCTION", "LOAD", "REPLACE", lua('name="jshost_6c6962"')],
    ["FUNCTION", "LOAD", "REPLACE", lua('name="\\x6ashost_6c6962"')],
    ["FUNCTION", "LOAD", lua("NAME='jshost_zz'")],
    ["FUNCTION", "DELETE", "jshost_6c6962"],
    ["FUNCTION", "FLUSH"], ["FUNCTION", "FLUSH", "SYNC"],
    ["FUNCTION", "RESTORE", "payload"],
])
async def test_function_commands_cannot_touch_jshost_libraries(
        direct: redis.Redis, backend: RedisServer, command: list[str]) -> None:
    async with client_of(backend.url) as c:
        refused = await error(c.execute_command(*command))
        assert refused == text(SecurityErrors.JSHOST_LIBRARY.format(
            name=" ".join(command[:2]).lower()))
        assert await c.execute_command("RG.FCALL", "lib", "set", "1", "k", "v") == b"OK"
    libraries = [lib[b"library_name"] if isinstance(lib, dict) else lib[1]
                 for lib in direct.function_list()]
    assert libraries == [b"jshost_6c6962"]


async def test_other_function_libraries_still_work(direct: redis.Redis,
                                                   backend: RedisServer) -> None:
    async with client_of(backend.url) as c:
        assert await c.execute_command("FUNCTION", "LOAD", lua("name=mine")) == b"mine"
        assert await c.execute_command("FUNCTION", "DELETE", "mine") in (b"OK", True)


async def test_clients_cannot_announce_library_changes(direct: redis.Redis,
                                                       backend: RedisServer) -> None:
    async with client_of(backend.url) as c:
        refused = await error(c.publish("jshost:libraries", "lib"))
        assert "channels starting with 'jshost:' belong to jshost" in refused
        assert "belong to jshost" in await error(c.execute_command(
            "SPUBLISH", "jshost:fence:x", "1"))


# --- jshost's keys, the lease, notify-keyspace-events (item 8) ----------------------------------


async def test_clients_and_libraries_cannot_write_the_lease(direct: redis.Redis,
                                                            backend: RedisServer) -> None:
    async with client_of(backend.url) as c:
        assert "belong to jshost" in await error(c.set(LEASE_KEY, "hacked"))
        assert "belong to jshost" in await error(
            c.execute_command("RG.FCALL", "lib", "set", "1", LEASE_KEY, "hacked"))
    assert direct.get(LEASE_KEY) is None


@pytest.mark.parametrize("plant", [
    ["SET", LEASE_KEY, "hacked"],  # no time to live: would hold for ever
    ["SET", LEASE_KEY, "hacked", "PX", "600000"],  # not an instance id
    ["HSET", LEASE_KEY, "f", "v"],  # not even a string
    ["SET", LEASE_KEY, "0123456789abcdef0123456789abcdef"],  # an id, without a time to live
])
async def test_a_stale_or_foreign_lease_is_taken_over(direct: redis.Redis, backend: RedisServer,
                                                      plant: list[str]) -> None:
    direct.execute_command(*plant)
    host = Host(RemoteStore(backend.url))
    try:
        host.load(TRIGGER)
        await host.start_triggers()
        assert host.triggers.remote is not None and host.triggers.remote.leader
        assert direct.get(LEASE_KEY) == host.triggers.remote.instance
        assert 0 < direct.pttl(LEASE_KEY) <= host.triggers.remote.lease_ms
        client = host.store.open_session()
        await client.execute([b"SET", b"k1", b"v"])  # the trigger fires: this instance leads
        assert await client.execute([b"LRANGE", b"log", b"0", b"-1"]) == [b"set k1"]
    finally:
        host.close()
        await host.store.aclose()


async def test_a_live_lease_of_another_instance_is_respected(direct: redis.Redis,
                                                             backend: RedisServer) -> None:
    other = b"0123456789abcdef0123456789abcdef"
    direct.set(LEASE_KEY, other, px=600000)
    host = Host(RemoteStore(backend.url))
    try:
        host.load(TRIGGER)
        await host.start_triggers()
        assert host.triggers.remote is not None and not host.triggers.remote.leader
        assert direct.get(LEASE_KEY) == other
    finally:
        host.close()
        await host.store.aclose()


async def test_notify_keyspace_events_is_kept_for_triggers(direct: redis.Redis,
                                                           backend: RedisServer) -> None:
    async with serving(backend.url, TRIGGER) as srv:
        remote = srv.host.triggers.remote
        assert remote is not None
        remote.lease_ms = 150  # renewals (and the check that comes with them) every 50 ms
        await srv.host.start_triggers()
        c = aioredis.Redis(port=srv.port)
        try:
            refused = await error(c.config_set("notify-keyspace-events", ""))
            assert refused == text(SecurityErrors.NOTIFY_CONFIG.format(needed="EAm", value=""))
            assert await c.config_set("notify-keyspace-events", "KEAm")  # keeps what is needed
            # Changed behind jshost's back: the leader puts it back.
            direct.config_set("notify-keyspace-events", "")

            async def restored() -> bool:
                flags = direct.config_get("notify-keyspace-events")["notify-keyspace-events"]
                return set("AEm") <= set(flags)

            await wait_until(restored, what="notify-keyspace-events put back")
        finally:
            await c.aclose()


# --- a JS call while the backend is paused (item 10) -------------------------------------------


async def test_a_js_write_during_client_pause_ends_at_the_time_limit(
        direct: redis.Redis, backend: RedisServer) -> None:
    async with client_of(backend.url, **{"lock-redis-timeout": "200"}) as c:
        direct.execute_command("CLIENT", "PAUSE", "5000", "WRITE")
        try:
            refused = await error(c.execute_command("RG.FCALL", "lib", "set", "1", "k", "v"))
            assert text(BackendErrors.ERR_DEADLINE) in refused
        finally:
            direct.execute_command("CLIENT", "UNPAUSE")
        # The server and its backend connection recover.
        assert await c.execute_command("RG.FCALL", "lib", "set", "1", "k", "w") == b"OK"
        assert await c.get("k") == b"w"


# --- the backend password, out of `ps` ---------------------------------------------------------


@pytest.fixture(scope="module")
def protected() -> Iterator[RedisServer]:
    with RedisServer(password="pw-out-of-ps") as srv:
        yield srv


def _cmdline(pid: int) -> bytes:
    return Path(f"/proc/{pid}/cmdline").read_bytes()


def test_backend_password_from_a_file(protected: RedisServer, tmp_path: Path) -> None:
    secret = tmp_path / "password"
    secret.write_text("pw-out-of-ps\n")
    url = f"redis://127.0.0.1:{protected.port}"
    with JshostProcess("--backend", url, "--backend-password-file", str(secret)) as proc:
        assert redis.Redis(port=proc.port).set("k", "v")
        assert b"pw-out-of-ps" not in _cmdline(proc.pid)


def test_backend_password_from_the_environment(protected: RedisServer) -> None:
    url = f"redis://127.0.0.1:{protected.port}"
    os.environ["JSHOST_BACKEND_PASSWORD"] = "pw-out-of-ps"
    try:
        with JshostProcess("--backend", url) as proc:
            assert redis.Redis(port=proc.port).set("k", "v")
            assert b"pw-out-of-ps" not in _cmdline(proc.pid)
    finally:
        del os.environ["JSHOST_BACKEND_PASSWORD"]


def test_backend_password_given_twice_is_refused(tmp_path: Path) -> None:
    secret = tmp_path / "password"
    secret.write_text("a\n")
    done = subprocess.run(
        [sys.executable, "-m", "jshost", "serve", "--port", "0",
         "--backend", "redis://:b@127.0.0.1:1", "--backend-password-file", str(secret)],
        check=False, capture_output=True, timeout=60)
    assert done.returncode == 2 and b"give the backend password once" in done.stderr


@pytest.mark.parametrize("first_line", [
    "#!lua name=plain", '#!lua name="quoted"', "#!lua NAME='single'", '#!lua name="\\x6ahex"',
    '#!lua "name=whole"', "#!lua   name=spaced  ", '#!lua name="esc\\x5f_d"',
    '#!lua name="open', "#!lua na'me'=x", "#!lua name=a name=b", '#!lua name="x"y',
    "#!lua name=tab\tafter",
])
def test_library_names_are_read_as_redis_reads_them(direct: redis.Redis,
                                                    first_line: str) -> None:
    """The guard must see the name Redis will give (quotes, escapes, case), or a client could
    slip a jshost_ library past it."""
    from jshost.commands.guard import library_name

    code = f"{first_line}\nredis.register_function('f{abs(hash(first_line))}', " \
           "function() return 1 end)"
    try:
        named: bytes | None = direct.function_load(code)
    except redis.ResponseError:
        named = None
    if named is not None:
        named = named if isinstance(named, bytes) else named.encode()
    assert library_name(code.encode()) == named
