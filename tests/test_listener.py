"""jshost's listener: its settings (CONFIG GET/SET on both stores), maxclients, protected mode's
accept decision, the idle timeout, and clients that never read their replies.

In-process servers on 127.0.0.1 (the test and the server share one event loop); the remote-store
cases run against a real redis-server / valkey-server (`store_server`).
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from typing import Any

import pytest
from redis_server import RedisServer
from server_fixture import RawClient, command_bytes, wait_until

from jshost import errors, listener_config
from jshost.errors import ListenerErrors, ServerErrors
from jshost.host import Host
from jshost.listener_config import ListenerConfig, OutputBufferLimit, is_loopback
from jshost.replies import ErrorReply, Status
from jshost.server import Server
from jshost.store import EmbeddedStore, RemoteStore, Store

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
async def embedded() -> AsyncIterator[Store]:
    store = EmbeddedStore()
    yield store
    await store.aclose()


async def serve(store: Store, **config: Any) -> Server:
    server = Server(Host(store), config=ListenerConfig(port=0, **config))
    await server.start()
    return server


async def stop(server: Server) -> None:
    await server.shutdown()
    server.host.close()


async def info_fields(client: RawClient, section: str = "") -> dict[str, str]:
    reply = await client.call("INFO", *([section] if section else []))
    fields = {}
    for line in bytes(reply).decode().splitlines():
        name, sep, value = line.partition(":")
        if sep and not name.startswith("#"):
            fields[name] = value
    return fields


async def config_get(client: RawClient, pattern: str) -> dict[bytes, bytes]:
    reply = await client.call("CONFIG", "GET", pattern)
    return reply if isinstance(reply, dict) else dict(zip(reply[::2], reply[1::2]))


# --- the settings, as a unit ----------------------------------------------------------------------


def test_defaults_and_formats_are_redis_s() -> None:
    config = ListenerConfig()
    shown = dict(config.get(["*"]))
    assert shown["client-output-buffer-limit"] == (
        "normal 0 0 0 slave 268435456 67108864 60 pubsub 33554432 8388608 60")
    assert (shown["maxclients"], shown["protected-mode"], shown["timeout"]) == ("10000", "yes", "0")
    assert (shown["requirepass"], shown["tls-port"], shown["tls-auth-clients"]) == ("", "0", "yes")
    assert shown["client-query-buffer-limit"] == "1073741824"
    assert set(shown) == listener_config.NAMES
    config.set_many([("client-output-buffer-limit", "normal 1mb 2mb 3 replica 1 2 3")])
    assert config.get(["client-output-buffer-limit"]) == [(
        "client-output-buffer-limit",
        "normal 1048576 2097152 3 slave 1 2 3 pubsub 33554432 8388608 60")]
    assert config.output_limit(subscribed=False) == OutputBufferLimit(1 << 20, 2 << 20, 3)


@pytest.mark.parametrize(("name", "value", "reason"), [
    ("port", "7000", errors.CONFIG_IMMUTABLE),
    ("bind", "0.0.0.0", errors.CONFIG_IMMUTABLE),
    ("unixsocket", "/tmp/x.sock", errors.CONFIG_IMMUTABLE),
    ("tls-port", "7001", errors.CONFIG_IMMUTABLE),
    ("tcp-backlog", "5", errors.CONFIG_IMMUTABLE),
    ("maxclients", "0", errors.config_out_of_range(1, 2**32 - 1)),
    ("protected-mode", "maybe", errors.CONFIG_NOT_YES_NO),
    ("client-output-buffer-limit", "normal 1mb 0", ListenerErrors.OUTPUT_LIMIT_ARGUMENTS),
    ("client-output-buffer-limit", "bogus 1mb 0 0", ListenerErrors.OUTPUT_LIMIT_CLASS),
    ("client-output-buffer-limit", "normal 1xb 0 0", ListenerErrors.OUTPUT_LIMIT_VALUES),
])
def test_refusals_have_redis_s_texts(name: str, value: str, reason: str) -> None:
    config = ListenerConfig()
    before = config.get(["*"])
    with pytest.raises(errors.ReplyError) as info:
        config.set_many([("timeout", "5"), (name, value)])
    assert info.value.text == errors.config_set_failed(name, reason)
    assert config.get(["*"]) == before  # all or nothing


def test_maxclients_beyond_the_open_files_limit_is_refused() -> None:
    import resource

    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    if hard == resource.RLIM_INFINITY:
        pytest.skip("no hard open-files limit to pass")
    config = ListenerConfig()
    with pytest.raises(errors.ReplyError) as info:
        config.set_many([("maxclients", str(hard + 1))])
    assert info.value.text == errors.config_set_failed(
        "maxclients", ListenerErrors.MAXCLIENTS_OVER_LIMIT.format(
            hard - listener_config.RESERVED_FDS))


@pytest.mark.parametrize(("peer", "refused"), [
    ("127.0.0.1", False), ("127.8.9.10", False), ("::1", False), ("::ffff:127.0.0.1", False),
    (None, False),  # a Unix socket
    ("10.1.2.3", True), ("192.168.0.7", True), ("::ffff:10.0.0.1", True), ("fe80::1%eth0", True),
    ("2001:db8::1", True),
])
def test_protected_mode_accept_decision(peer: str | None, refused: bool) -> None:
    """Protected mode (Redis 7): with no password, only loopback clients are served; a password
    or `protected-mode no` lets everyone in."""
    assert ListenerConfig().protected_mode_refuses(peer) is refused
    assert not ListenerConfig(requirepass="pw").protected_mode_refuses(peer)
    assert not ListenerConfig(protected_mode=False).protected_mode_refuses(peer)
    assert is_loopback(peer) is not refused


def test_exposed_addresses_warn_only_without_a_password() -> None:
    assert ListenerConfig(bind=("127.0.0.1", "::1")).exposed_unprotected == []
    assert ListenerConfig(bind=("10.0.0.1", "127.0.0.1")).exposed_unprotected == ["10.0.0.1"]
    assert ListenerConfig(bind=("0.0.0.0",), requirepass="x").exposed_unprotected == []


# --- CONFIG through the server ----------------------------------------------------------------------


async def test_config_answers_for_jshost_s_listener(embedded: Store) -> None:
    server = await serve(embedded)
    client = await RawClient.connect(server.port)
    try:
        assert await config_get(client, "port") == {b"port": str(server.port).encode()}
        got = await config_get(client, "*")
        assert got[b"maxclients"] == b"10000" and got[b"bind"] == b"127.0.0.1"
        assert got[b"port"] == str(server.port).encode()  # not the store's (fakeredis: 0)
        assert got[b"databases"] == b"16"  # the store's own settings are still there
        assert await client.call("CONFIG", "SET", "port", "1") == ErrorReply(
            errors.config_set_failed("port", errors.CONFIG_IMMUTABLE))
        # Listener, host and store settings in one CONFIG SET, all or nothing.
        assert await client.call("CONFIG", "SET", "maxclients", "50", "timeout", "7",
                                 "redisgears_2.error-verbosity", "2",
                                 "maxmemory", "1000000") == Status(b"OK")
        got = await config_get(client, "*")
        assert (got[b"maxclients"], got[b"timeout"]) == (b"50", b"7")
        assert (got[b"redisgears_2.error-verbosity"], got[b"maxmemory"]) == (b"2", b"1000000")
        refused = await client.call("CONFIG", "SET", "maxclients", "60",
                                    "redisgears_2.error-verbosity", "9")
        assert refused == ErrorReply(errors.config_set_failed(
            "redisgears_2.error-verbosity", errors.config_out_of_range(1, 2)))
        got = await config_get(client, "*")
        assert (got[b"maxclients"], got[b"redisgears_2.error-verbosity"]) == (b"50", b"2")
    finally:
        await client.close()
        await stop(server)


async def test_config_set_port_never_reaches_the_backend(store_server: str) -> None:
    """On --backend, CONFIG GET/SET of the listener's names are jshost's own: the backend's
    port is neither shown (a client following it would bypass jshost) nor changed."""
    with RedisServer(binary=store_server) as backend:
        store = RemoteStore(backend.url)
        server = await serve(store)
        client = await RawClient.connect(server.port)
        try:
            got = await config_get(client, "*")
            assert got[b"port"] == str(server.port).encode()
            assert got[b"bind"] == b"127.0.0.1"
            assert got[b"appendonly"] == b"no"  # the backend's settings are still there
            for name, value in (("port", "0"), ("bind", "0.0.0.0"), ("unixsocket", "/tmp/x"),
                                ("unixsocketperm", "777"), ("tls-port", "7000")):
                assert await client.call("CONFIG", "SET", name, value) == ErrorReply(
                    errors.config_set_failed(name, errors.CONFIG_IMMUTABLE))
            assert await client.call("CONFIG", "SET", "timeout", "9") == Status(b"OK")
            assert await config_get(client, "timeout") == {b"timeout": b"9"}
            refused = await client.call("CONFIG", "SET", "timeout", "10", "maxmemory", "nope")
            assert isinstance(refused, ErrorReply)  # the backend's refusal undoes jshost's part
            assert await config_get(client, "timeout") == {b"timeout": b"9"}
            direct = RemoteStore(backend.url).open_session()
            assert direct.call([b"CONFIG", b"GET", b"port"]) == {
                b"port": str(backend.port).encode()}
            assert direct.call([b"CONFIG", b"GET", b"timeout"]) == {b"timeout": b"0"}
        finally:
            await client.close()
            await stop(server)
            await store.aclose()


async def test_config_set_requirepass_changes_jshost_s_password(embedded: Store) -> None:
    server = await serve(embedded)
    first = await RawClient.connect(server.port)
    try:
        assert await first.call("CONFIG", "SET", "requirepass", "n3w") == Status(b"OK")
        assert await config_get(first, "requirepass") == {b"requirepass": b"n3w"}  # as Redis
        assert await first.call("PING") == Status(b"PONG")  # already in: stays in
        second = await RawClient.connect(server.port)
        assert await second.call("PING") == ErrorReply(ServerErrors.NOAUTH)
        assert await second.call("AUTH", "n3w") == Status(b"OK")
        assert await second.call("CONFIG", "SET", "requirepass", "") == Status(b"OK")
        await second.close()
        third = await RawClient.connect(server.port)
        assert await third.call("PING") == Status(b"PONG")
        await third.close()
    finally:
        await first.close()
        await stop(server)


# --- maxclients -------------------------------------------------------------------------------------


async def test_maxclients_refuses_the_next_client_with_redis_s_text(embedded: Store) -> None:
    server = await serve(embedded, maxclients=3)
    clients = [await RawClient.connect(server.port) for _ in range(3)]
    try:
        for client in clients:
            assert await client.call("PING") == Status(b"PONG")
        extra = await RawClient.connect(server.port)
        assert await extra.read_until_closed() == b"-%s\r\n" % ListenerErrors.MAXCLIENTS_REACHED.encode()
        await extra.close()
        await clients.pop().close()

        async def room() -> bool:
            return len(server.connections) == 2

        await wait_until(room, what="a free place")
        clients.append(await RawClient.connect(server.port))
        assert await clients[-1].call("PING") == Status(b"PONG")
        assert await clients[0].call("CONFIG", "SET", "maxclients", "4") == Status(b"OK")
        clients.append(await RawClient.connect(server.port))
        assert await clients[-1].call("PING") == Status(b"PONG")
        fields = await info_fields(clients[0], "clients")
        assert (fields["connected_clients"], fields["maxclients"]) == ("4", "4")
        assert server.rejected_connections == 1
    finally:
        for client in clients:
            await client.close()
        await stop(server)


async def test_info_clients_counts_jshost_s_own_clients(embedded: Store) -> None:
    server = await serve(embedded)
    host = server.host
    host.load("#!js api_version=1.0 name=w\n"
              "redis.register_async_function('wait', () => new Promise(() => {}));")
    watcher = await RawClient.connect(server.port)
    waiting = [await RawClient.connect(server.port) for _ in range(3)]
    try:
        for client in waiting:
            await client.send_commands(["RG.FCALLASYNC", "w", "wait", "0"])

        async def three_blocked() -> bool:
            return (await info_fields(watcher, "clients"))["blocked_clients"] == "3"

        await wait_until(three_blocked, what="3 blocked clients")
        fields = await info_fields(watcher)
        assert fields["connected_clients"] == "4" and fields["cluster_connections"] == "0"
        assert fields["backend_connections"] == "0"  # (# jshost; embedded)
    finally:
        for client in [watcher, *waiting]:
            await client.close()
        await stop(server)


# --- idle timeout -------------------------------------------------------------------------------------


async def test_timeout_closes_idle_clients_but_not_blocked_ones(embedded: Store) -> None:
    server = await serve(embedded)
    host = server.host
    host.load("#!js api_version=1.0 name=w\n"
              "redis.register_async_function('wait', () => new Promise(() => {}));")
    idle = await RawClient.connect(server.port)
    blocked = await RawClient.connect(server.port)
    busy = await RawClient.connect(server.port)
    try:
        await blocked.send_commands(["RG.FCALLASYNC", "w", "wait", "0"])
        assert await busy.call("CONFIG", "SET", "timeout", "1") == Status(b"OK")

        async def keep_busy() -> None:  # a client that talks is never idle
            while True:
                assert await busy.call("PING") == Status(b"PONG")
                await asyncio.sleep(0.2)  # (pacing, well under the timeout)

        talking = asyncio.create_task(keep_busy())
        assert await idle.read_until_closed(timeout=10) == b""  # closed, without a reply

        async def only_two_left() -> bool:
            return len(server.connections) == 2

        await wait_until(only_two_left, what="the idle client gone", timeout=10)
        assert sum(conn.blocked for conn in server.connections) == 1
        talking.cancel()
    finally:
        for client in (idle, blocked, busy):
            await client.close()
        await stop(server)


async def test_timeout_set_back_to_0_closes_nobody(embedded: Store) -> None:
    # redis-py's suite does this (CONFIG SET timeout 70, then 0): the idle check that was
    # waiting then closed every client, idle "over 0 s".
    server = await serve(embedded)
    idle = await RawClient.connect(server.port)
    admin = await RawClient.connect(server.port)
    try:
        assert await admin.call("CONFIG", "SET", "timeout", "70") == Status(b"OK")
        checker = server._timeouts  # the idle check, started by the setting
        assert checker is not None
        assert await admin.call("CONFIG", "SET", "timeout", "0") == Status(b"OK")
        await asyncio.wait_for(checker, 10)  # it ends once it sees the 0
        assert await idle.call("PING") == Status(b"PONG")
        assert await admin.call("PING") == Status(b"PONG")
    finally:
        for client in (idle, admin):
            await client.close()
        await stop(server)


# --- clients that never read --------------------------------------------------------------------------

BIG = 1_000_000  # bytes in the value every GET asks for
DEAF_GETS = 11_000  # GETs a client sends in one write and never reads (11 GB of replies)


async def deaf_client(port: int) -> RawClient:
    """A client whose socket takes in almost nothing it is not asked to read."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
    reader, writer = await asyncio.open_connection(sock=sock, limit=4096)
    return RawClient(reader, writer)


async def test_a_client_that_never_reads_holds_a_bounded_output(embedded: Store) -> None:
    """11 000 `GET big` (1 MB each) in one write, never read: jshost runs them only as fast as
    the replies leave (a few MB held, not 11 GB), and the other clients are served as usual."""
    server = await serve(embedded)
    polite = await RawClient.connect(server.port)
    deaf = await deaf_client(server.port)
    try:
        assert await polite.call("SET", "big", "x" * BIG) == Status(b"OK")
        requests = command_bytes(*[["GET", "big"]] * DEAF_GETS)
        assert len(requests) < 256 * 1024  # one read of the server's
        await deaf.send(requests)
        peak = 0

        async def output_held() -> bool:
            nonlocal peak
            fields = await info_fields(polite, "clients")
            peak = max(peak, int(fields["client_recent_max_output_buffer"]))
            return peak > 0 and any(conn.holding_output for conn in server.connections)

        await wait_until(output_held, what="the deaf client's replies held")
        for i in range(50):  # the others are served meanwhile, every reply right
            assert await polite.call("SET", f"k{i}", str(i)) == Status(b"OK")
            assert await polite.call("GET", f"k{i}") == str(i).encode()
            fields = await info_fields(polite, "clients")
            peak = max(peak, int(fields["client_recent_max_output_buffer"]))
        assert fields["connected_clients"] == "2"  # no limit for normal clients: still there
        assert peak <= 8 * BIG, peak  # (jshost.connection.REPLY_BATCH_BYTES: 1 MiB)
    finally:
        await deaf.close()
        await polite.close()
        await stop(server)


async def test_normal_client_output_limit_closes_a_client_that_does_not_read(
    embedded: Store,
) -> None:
    server = await serve(embedded)
    polite = await RawClient.connect(server.port)
    deaf = await deaf_client(server.port)
    try:
        assert await polite.call("SET", "big", "x" * BIG) == Status(b"OK")
        assert await polite.call(
            "CONFIG", "SET", "client-output-buffer-limit", "normal 1mb 0 0") == Status(b"OK")
        await deaf.send(command_bytes(*[["GET", "big"]] * 100))

        async def deaf_closed() -> bool:
            return len(server.connections) == 1

        await wait_until(deaf_closed, what="the deaf client closed")
        assert await polite.call("GET", "big") == b"x" * BIG  # one reply fits the limit
    finally:
        await deaf.close()
        await polite.close()
        await stop(server)
