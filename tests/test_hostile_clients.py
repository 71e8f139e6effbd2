"""Hostile clients and hostile libraries over real sockets: one never hurts the others.

An in-process server (the test and the server share one event loop) with the lowest limits
(`lock-redis-timeout` 100 ms, `library-maxmemory` 16 MiB). Clients that vanish while their
call is pending, libraries whose promises never settle, busy loops, memory bombs and deep
recursion: each costs only the call that caused it, the library recovers, other clients and
libraries carry on, and nothing escapes into the loop's exception handler or the error logs.

Ordering is asserted on events (a log hook, a dispatcher hook), never on timing.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from server_fixture import RawClient, library, running_server, wait_until

from jshost import errors
from jshost.connection import OutputBufferLimit
from jshost.errors import ServerErrors
from jshost.host import Host
from jshost.replies import ErrorReply, Status
from jshost.server import Server
from jshost.settings import Settings
from jshost.store import EmbeddedStore

pytestmark = pytest.mark.timeout(120)

TERMINATED = ErrorReply(errors.EXECUTION_TERMINATED)
LOW_LIMITS = {"lock-redis-timeout": "100", "library-maxmemory": "16mb"}

HOSTILE = library(
    """
var waiting = [];
redis.register_async_function('wait', () => new Promise((resolve) => waiting.push(resolve)));
redis.register_function('release', (client, value) => {
    const n = waiting.length;
    waiting.splice(0).forEach((resolve) => resolve(value));
    return n;
});
redis.register_function('pending', () => waiting.length);
redis.register_async_function('never', () => new Promise(() => {}));
redis.register_async_function('never_coroutine', async () => { await new Promise(() => {}); });
redis.register_function('spin', () => { redis.log('spinning'); while (true) {} });
redis.register_async_function('spin_async', async () => { redis.log('spinning'); while (true) {} });
redis.register_function('bomb', () => { const a = []; for (;;) a.push(new Array(1e5).fill(1.5)); });
redis.register_async_function('bomb_async', async () => {
    const a = []; for (;;) a.push({s: 'y'.repeat(100) + a.length});
});
redis.register_function('alloc', () => new Array(1e5).fill(1.5).length);
redis.register_function('recurse', () => { const f = () => f() + 1; return f(); });
redis.register_async_function('recurse_async', async () => {
    const f = () => f() + 1; return f();
});
redis.register_function('deep_reply', () => {
    const root = []; let a = root;
    for (let i = 0; i < 5000; i++) { const b = []; a.push(b); a = b; }
    return root;
});
redis.register_function('release_spinning_thenable', () => {
    const n = waiting.length;
    waiting.splice(0).forEach((resolve) => resolve({ then() { while (true) {} } }));
    return n;
});
redis.register_function('ok', () => 'ok');
""",
    name="hostile",
)

SLOW_STREAM = library(
    """
redis.register_stream_consumer('slow', 'slowstream', 1, false, (client, data) => {
    redis.log('record');
    const started = Date.now();
    while (Date.now() - started < 20) {}  // well under lock-redis-timeout, every time
});
""",
    name="slowstream",
)

BYSTANDER = library(
    """
var calls = 0;
redis.register_function('hello', () => ['hello', ++calls, {nested: [1.5, null]}]);
""",
    name="bystander",
)

TF_WAITER = """#!js api_version=1.0 name=tfwait
redis.registerAsyncFunction('pop', async (client, key) => {
    return await client.block((c) => c.callAsync('blpop', key, '0'));
});
"""


# --- fixtures ---------------------------------------------------------------------------------


@pytest.fixture
async def problems(caplog: pytest.LogCaptureFixture) -> AsyncIterator[list[str]]:
    """What escaped: the loop's exception handler calls and ERROR logs of jshost / asyncio.
    Asserted empty after the test (and after its server has stopped)."""
    loop = asyncio.get_running_loop()
    found: list[str] = []
    previous = loop.get_exception_handler()

    def handler(_loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        found.append(
            f"loop exception handler: {context.get('message')} {context.get('exception')!r}"
        )

    loop.set_exception_handler(handler)
    caplog.set_level(logging.INFO, logger="jshost")
    try:
        yield found
    finally:
        loop.set_exception_handler(previous)
    found += [
        f"{r.name} {r.levelname}: {r.getMessage()}"
        for r in caplog.records
        if r.levelno >= logging.ERROR and r.name.startswith(("jshost", "asyncio"))
    ]
    assert found == []


@pytest.fixture
async def server(problems: list[str]) -> AsyncIterator[Server]:
    """A server with the low limits and both libraries loaded; healthy at the end."""
    async with running_server(settings=Settings(LOW_LIMITS)) as srv:
        srv.host.load(HOSTILE)
        srv.host.load(BYSTANDER)
        yield srv
        assert await ping(srv) == Status(b"PONG")


async def ping(server: Server) -> Any:
    client = await RawClient.connect(server.port)
    try:
        return await client.call("PING")
    finally:
        await client.close()


async def connected(server: Server, count: int) -> None:
    """Wait until the server sees exactly `count` clients."""

    async def check() -> bool:
        return len(server.connections) == count

    await wait_until(check, what=f"{count} connections")


async def deaf_client(port: int) -> RawClient:
    """A client whose socket takes in almost nothing it is not asked to read (a 4 KiB
    receive buffer, set before connecting so that the kernel does not grow it)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
    reader, writer = await asyncio.open_connection(sock=sock, limit=4096)
    return RawClient(reader, writer)


async def list_library(port: int, name: str, era: str = "rg") -> dict[bytes, Any]:
    """The LIST map of one library (RESP3), as a client sees it."""
    client = await RawClient.connect(port)
    try:
        await client.call("HELLO", "3")
        command = "RG.FUNCTION" if era == "rg" else "TFUNCTION"
        (entry,) = await client.call(command, "LIST", "LIBRARY", name)
        return entry
    finally:
        await client.close()


async def bystander_works(client: RawClient, expected_calls: int) -> None:
    assert await client.call("RG.FCALL", "bystander", "hello", "0") == [
        b"hello",
        expected_calls,
        [b"nested", [b"1.5", None]],
    ]


class Events:
    """An ordered record of what the server did: commands entering and leaving the
    dispatcher, and log lines of the libraries and the host."""

    def __init__(self) -> None:
        self.seen: list[str] = []
        self.on_log: Callable[[str], None] | None = None

    def hook_dispatcher(self, server: Server, monkeypatch: pytest.MonkeyPatch) -> None:
        dispatch = server.dispatcher.dispatch

        def recording(client: Any, argv: list[bytes]) -> Any:
            name = b" ".join(argv[:3]).decode(errors="replace")
            self.seen.append(f"enter {client.id} {name}")
            result = dispatch(client, argv)
            self.seen.append(f"leave {client.id} {name}")
            return result

        monkeypatch.setattr(server.dispatcher, "dispatch", recording)

    def hook_logs(self) -> logging.Handler:
        events = self

        class Hook(logging.Handler):
            def emit(self, record: logging.LogRecord) -> None:
                message = record.getMessage()
                events.seen.append(f"log {message}")
                if events.on_log is not None:
                    events.on_log(message)

        hook = Hook(logging.INFO)
        logging.getLogger("jshost").addHandler(hook)
        return hook

    def index(self, prefix: str) -> int:
        for i, event in enumerate(self.seen):
            if event.startswith(prefix):
                return i
        raise AssertionError(f"no event {prefix!r} in {self.seen}")


# --- clients that go ----------------------------------------------------------------------------


async def test_disconnect_while_fcallasync_pending(server: Server) -> None:
    """The client goes while its RG.FCALLASYNC waits: the promise still settles later, the
    reply is dropped, LIST pending_jobs returns to 0, no connection and no call is left."""
    port = server.port
    other = await RawClient.connect(port)
    gone = [await RawClient.connect(port) for _ in range(10)]
    for client in gone:
        await client.send_commands(["RG.FCALLASYNC", "hostile", "wait", "0"])
    await wait_until(
        lambda: _equals(other.call("RG.FCALL", "hostile", "pending", "0"), 10),
        what="10 pending promises",
    )
    for client in gone:
        await client.close()
    await connected(server, 1)
    # The promises settle now, with nobody to answer: their jobs run and nothing leaks.
    assert await other.call("RG.FCALL", "hostile", "release", "0", "late") == 10
    await wait_until(lambda: _equals(_pending_jobs(port), 0), what="pending_jobs 0")
    lib = server.host.libraries["hostile"]
    assert (lib.pending_jobs, lib.inflight) == (0, 0)
    assert await other.call("RG.FCALLASYNC", "hostile", "ok", "0") == b"ok"
    await other.close()
    await connected(server, 0)


async def test_library_that_never_resolves(server: Server) -> None:
    """Calls on promises that never settle: each blocks only its own client; they show as
    blocked clients; clients give up (close) one by one and nobody else notices."""
    port = server.port
    other = await RawClient.connect(port)
    stuck = [await RawClient.connect(port) for _ in range(20)]
    for i, client in enumerate(stuck):
        await client.send_commands(
            ["RG.FCALLASYNC", "hostile", "never" if i % 2 else "never_coroutine", "0"],
            ["PING"],  # queued behind the call: never runs
        )

    async def all_blocked() -> bool:
        return sum(conn.blocked for conn in server.connections) == 20

    await wait_until(all_blocked, what="20 blocked clients")
    assert (await list_library(port, "hostile"))[b"pending_jobs"] == 0  # waiting is no job
    for i, client in enumerate(stuck):
        await client.close()
        await connected(server, 20 - i)  # the other stuck clients are still there
        await bystander_works(other, i + 1)
    await other.close()
    await connected(server, 0)


async def test_tf_pending_async_calls_visible_and_clients_may_give_up(server: Server) -> None:
    """tf: a callAsync blocked in the store shows in LIST `pending_async_calls`; the callers
    give up; the calls stay the library's own until they complete, then the list empties."""
    server.host.load(TF_WAITER, era="tf")
    port = server.port
    other = await RawClient.connect(port)
    callers = [await RawClient.connect(port) for _ in range(3)]
    for i, client in enumerate(callers):
        await client.send_commands(["TFCALLASYNC", "tfwait.pop", "1", f"list{i}"])

    async def three_pending() -> bool:
        entry = await list_library(port, "tfwait", "tf")
        return len(entry[b"pending_async_calls"]) == 3

    await wait_until(three_pending, what="3 pending async calls")
    entry = await list_library(port, "tfwait", "tf")
    assert sorted(entry[b"pending_async_calls"]) == [
        b"blpop list0 0",
        b"blpop list1 0",
        b"blpop list2 0",
    ]
    for client in callers:
        await client.close()
    await connected(server, 1)
    await bystander_works(other, 1)
    for i in range(3):
        assert await other.call("LPUSH", f"list{i}", "x") == 1

    async def none_pending() -> bool:
        entry = await list_library(port, "tfwait", "tf")
        return entry[b"pending_async_calls"] == [] and entry[b"pending_jobs"] == 0

    await wait_until(none_pending, what="no pending async call")
    assert await other.call("EXISTS", "list0", "list1", "list2") == 0  # the pops happened
    await other.close()


# --- busy loops ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("command", "function"),
    [("RG.FCALL", "spin"), ("RG.FCALLASYNC", "spin_async")],
    ids=["sync-function", "coroutine"],
)
async def test_busy_loop_is_stopped_and_a_ping_sent_meanwhile_waits_its_turn(
    server: Server, monkeypatch: pytest.MonkeyPatch, command: str, function: str
) -> None:
    """`while (true) {}` in a sync function (locked) or a coroutine (a background slice): it
    is stopped with the termination error; a PING another client sends *while it spins* (the
    library's log line triggers the send) is answered after the stop; the library still works.
    """
    events = Events()
    events.hook_dispatcher(server, monkeypatch)
    # The dispatcher is watched: calls take the Python path here (tests/test_fastpath.py checks
    # the same turn-taking on the native call path).
    monkeypatch.setattr(server.dispatcher, "fast_path", None)
    spinner = await RawClient.connect(server.port)
    pinger = await RawClient.connect(server.port)
    spinner_id = await spinner.call("CLIENT", "ID")

    def send_ping(message: str) -> None:
        if message == "spinning":
            # Straight onto the socket while the JS spins (the loop is busy in the library).
            pinger.writer.write(b"*2\r\n$4\r\nPING\r\n$6\r\nduring\r\n")
            events.seen.append("ping sent")

    events.on_log = send_ping
    hook = events.hook_logs()
    try:
        assert await spinner.call(command, "hostile", function, "0") == TERMINATED
        assert await pinger.reply() == b"during"
    finally:
        logging.getLogger("jshost").removeHandler(hook)
    called = events.index(f"enter {spinner_id} {command} hostile")
    sent = events.index("ping sent")
    stopped = (
        events.index(f"leave {spinner_id} {command} hostile")
        if command == "RG.FCALL"
        else events.index("log library hostile: background work stopped")
    )
    ping = _index_of_ping(events)
    assert called < sent < stopped < ping, events.seen
    # The library recovers, and the others never noticed.
    assert await spinner.call("RG.FCALL", "hostile", "ok", "0") == b"ok"
    assert await spinner.call(command, "hostile", function, "0") == TERMINATED
    await bystander_works(pinger, 1)
    await spinner.close()
    await pinger.close()


def _index_of_ping(events: Events) -> int:
    for i, event in enumerate(events.seen):
        if event.startswith("enter") and event.endswith("PING during"):
            return i
    raise AssertionError(f"the PING never reached the dispatcher: {events.seen}")


async def test_promise_settled_by_a_spinning_thenable_reports_the_termination(
    server: Server,
) -> None:
    client = await RawClient.connect(server.port)
    other = await RawClient.connect(server.port)
    try:
        await client.send_commands(["RG.FCALLASYNC", "hostile", "wait", "0"])
        await wait_until(
            lambda: _equals(other.call("RG.FCALL", "hostile", "pending", "0"), 1),
            what="the pending promise",
        )
        assert await other.call("RG.FCALL", "hostile", "release_spinning_thenable", "0") == 1
        assert await client.reply() == TERMINATED
        assert await client.call("RG.FCALL", "hostile", "ok", "0") == b"ok"
    finally:
        await client.close()
        await other.close()


_STREAM_PASS = (
    "open: 30 XADDs pipelined by one client are run in one read, and each pumps its entry at "
    "once (inside the command, like a post-notification job), so a PING from another client "
    "waits for all 30 slow callbacks; a pass is now cut every 5 ms, but the per-command pump "
    "remains (see the closing note)"
)


@pytest.mark.xfail(strict=True, reason=_STREAM_PASS)
async def test_slow_stream_consumer_lets_other_clients_in_between_records(
    server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    """30 stream entries for a consumer taking 20 ms each: a PING sent while the first is
    processed must be answered before the last one is (RedisGears takes the lock for each
    record, and Redis serves clients in between)."""
    server.host.load(SLOW_STREAM)
    trigger = server.host.libraries["slowstream"].stream_triggers["slow"]
    events = Events()
    writer = await RawClient.connect(server.port)
    pinger = await RawClient.connect(server.port)
    processed_at_ping: list[int] = []
    dispatch = server.dispatcher.dispatch

    def recording(client: Any, argv: list[bytes]) -> Any:
        if argv[0] == b"PING":
            state = trigger.streams.get(b"slowstream")
            processed_at_ping.append(state.records_processed if state is not None else 0)
        return dispatch(client, argv)

    monkeypatch.setattr(server.dispatcher, "dispatch", recording)

    def send_ping(message: str) -> None:
        if message == "record" and not processed_at_ping and "ping sent" not in events.seen:
            pinger.writer.write(b"*1\r\n$4\r\nPING\r\n")
            events.seen.append("ping sent")

    events.on_log = send_ping
    hook = events.hook_logs()
    try:
        await writer.send_commands(*[["XADD", "slowstream", "*", "n", str(i)] for i in range(30)])
        await writer.replies(30)
        assert await pinger.reply() == Status(b"PONG")
    finally:
        logging.getLogger("jshost").removeHandler(hook)
        await writer.close()
        await pinger.close()
    assert processed_at_ping and processed_at_ping[0] < 30, processed_at_ping


# --- memory and recursion -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("command", "function"),
    [("RG.FCALL", "bomb"), ("RG.FCALLASYNC", "bomb_async")],
    ids=["sync-function", "coroutine"],
)
async def test_memory_bomb_fails_that_call_only(
    server: Server, command: str, function: str
) -> None:
    """A memory bomb under `library-maxmemory` 16mb (its minimum) fails its call; the other
    library answers byte for byte as before; the bombing library recovers its memory."""
    client = await RawClient.connect(server.port)
    try:
        await client.call("HELLO", "3")
        await client.send_commands(["RG.FCALL", "bystander", "hello", "0"])
        before = await client.reply_raw()
        for _ in range(3):
            assert await client.call(command, "hostile", function, "0") == TERMINATED
            assert await client.call("RG.FCALL", "hostile", "alloc", "0") == 100000
            assert await client.call("PING") == Status(b"PONG")
        await client.send_commands(["RG.FCALL", "bystander", "hello", "0"])
        assert await client.reply_raw() == before.replace(b":1\r\n", b":2\r\n")
    finally:
        await client.close()


@pytest.mark.parametrize(
    ("command", "function", "expected"),
    [
        ("RG.FCALL", "recurse", "RangeError: Maximum call stack size exceeded"),
        ("RG.FCALLASYNC", "recurse_async", "RangeError: Maximum call stack size exceeded"),
        ("RG.FCALL", "deep_reply", errors.NESTING_LEVEL_REACHED),
    ],
    ids=["sync-function", "coroutine", "deep-reply"],
)
async def test_deep_recursion_is_a_js_error(
    server: Server, command: str, function: str, expected: str
) -> None:
    client = await RawClient.connect(server.port)
    try:
        for _ in range(3):
            assert await client.call(command, "hostile", function, "0") == ErrorReply(expected)
        assert await client.call("RG.FCALL", "hostile", "ok", "0") == b"ok"
        await bystander_works(client, 1)
    finally:
        await client.close()


# --- subscribers that do not read -------------------------------------------------------------


@pytest.mark.parametrize(
    "limit",
    [OutputBufferLimit(1 << 20, 1 << 30, 60.0), OutputBufferLimit(1 << 30, 256 << 10, 0.0)],
    ids=["hard-limit", "soft-limit"],
)
async def test_subscriber_that_does_not_read_is_dropped(
    problems: list[str], limit: OutputBufferLimit
) -> None:
    """A subscriber that stops reading while messages pour in is closed once its unsent
    output passes the pub/sub output buffer limit (Redis: 32mb hard, 8mb for 60 s); a
    subscriber that reads gets every message, and the publisher carries on."""
    host = Host(EmbeddedStore(), Settings(LOW_LIMITS))
    server = Server(host, port=0, pubsub_output_buffer_limit=limit)
    await server.start()
    try:
        deaf = await deaf_client(server.port)
        good = await RawClient.connect(server.port)
        publisher = await RawClient.connect(server.port)
        for subscriber in (deaf, good):
            assert await subscriber.call("SUBSCRIBE", "news") == [b"subscribe", b"news", 1]
        message = "m" * (64 << 10)
        receivers = []
        # Up to 64 MiB: far past the limits above plus what the kernel's buffers hold.
        while len(receivers) < 1024 and receivers[-1:] != [1]:
            receivers.append(await publisher.call("PUBLISH", "news", message))
            assert await good.reply() == [b"message", b"news", message.encode()]
        assert receivers[0] == 2 and receivers[-1] == 1  # the deaf one was dropped on the way
        await connected(server, 2)
        for _ in range(10):  # the others carry on
            assert await publisher.call("PUBLISH", "news", "after") == 1
            assert await good.reply() == [b"message", b"news", b"after"]
        assert await publisher.call("PING") == Status(b"PONG")
        await deaf.close()
        await good.close()
        await publisher.close()
        await connected(server, 0)
    finally:
        await server.shutdown()
        host.close()
        await host.store.aclose()


# --- AUTH ---------------------------------------------------------------------------------------

#: Commands that must all be refused before AUTH (existing commands with a valid arity).
BEFORE_AUTH = [
    ["PING"],
    ["ECHO", "x"],
    ["GET", "k"],
    ["SET", "k", "v"],
    ["DEL", "k"],
    ["KEYS", "*"],
    ["SELECT", "1"],
    ["MULTI"],
    ["EXEC"],
    ["WATCH", "k"],
    ["SUBSCRIBE", "ch"],
    ["PUBLISH", "ch", "m"],
    ["CLIENT", "LIST"],
    ["CLIENT", "SETNAME", "x"],
    ["CONFIG", "GET", "*"],
    ["CONFIG", "SET", "redisgears_2.error-verbosity", "2"],
    ["INFO"],
    ["DBSIZE"],
    ["FLUSHALL"],
    ["SHUTDOWN"],
    ["BLPOP", "l", "0"],
    ["RG.FUNCTION", "LOAD", library("redis.register_function('f', () => 1);", "intruder")],
    ["RG.FUNCTION", "LIST"],
    ["RG.FUNCTION", "DELETE", "hostile"],
    ["RG.FCALL", "hostile", "ok", "0"],
    ["RG.FCALLASYNC", "hostile", "ok", "0"],
    ["TFCALL", "hostile.ok", "0"],
    ["TFUNCTION", "LIST"],
    ["RG.CONFIG_GET", "error-verbosity"],
    ["TCONFIG_SET", "error-verbosity", "2"],
]


async def test_requirepass_refuses_everything_before_auth(problems: list[str]) -> None:
    async with running_server(requirepass="s3cret", settings=Settings(LOW_LIMITS)) as srv:
        srv.host.load(HOSTILE)
        intruder = await RawClient.connect(srv.port)
        try:
            # One pipeline: each command gets its own refusal, none runs.
            await intruder.send_commands(*BEFORE_AUTH)
            replies = await intruder.replies(len(BEFORE_AUTH))
            assert replies == [ErrorReply(ServerErrors.NOAUTH)] * len(BEFORE_AUTH)
            # Wrong passwords, in every form, change nothing.
            assert await intruder.call("AUTH", "wrong") == ErrorReply(ServerErrors.WRONGPASS)
            assert await intruder.call("AUTH", "default", "wrong") == ErrorReply(
                ServerErrors.WRONGPASS
            )
            assert await intruder.call("HELLO", "3", "AUTH", "default", "wrong") == ErrorReply(
                ServerErrors.WRONGPASS
            )
            assert await intruder.call("HELLO", "3") == ErrorReply(ServerErrors.HELLO_NOAUTH)
            assert await intruder.call("GET", "k") == ErrorReply(ServerErrors.NOAUTH)
            # Nothing the refused commands asked for happened.
            assert set(srv.host.libraries) == {"hostile"}
            assert srv.host.settings["error-verbosity"] == 1
        finally:
            await intruder.close()
        friend = await RawClient.connect(srv.port)
        try:
            hello = await friend.call("HELLO", "3", "AUTH", "default", "s3cret")
            assert hello[b"proto"] == 3
            assert await friend.call("GET", "k") is None  # the refused SET did not run
            assert await friend.call("RG.FCALL", "hostile", "ok", "0") == b"ok"
            assert await friend.call("DBSIZE") == 0
        finally:
            await friend.close()
        other = await RawClient.connect(srv.port)
        try:
            assert await other.call("AUTH", "s3cret") == Status(b"OK")
            assert await other.call("PING") == Status(b"PONG")
        finally:
            await other.close()


# --- helpers ------------------------------------------------------------------------------------


async def _equals(value: Any, expected: object) -> bool:
    return await value == expected


async def _pending_jobs(port: int) -> int:
    return int((await list_library(port, "hostile"))[b"pending_jobs"])
