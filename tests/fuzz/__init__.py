"""Shared machinery of the fuzz tests (tests/fuzz/) and of the long run (`bench/fuzz.py`).

* `ServerThread`: an in-process jshost `Server` on an event loop of its own, in a thread, so that
  plain blocking sockets (and hypothesis, which wants synchronous tests) can talk to it. It
  records every *problem*: an exception handed to the loop's exception handler, an ERROR record
  of a ``jshost`` logger, a WARNING or worse of ``asyncio`` (e.g. writes after a disconnect), a
  crashed loop thread, a SHUTDOWN that reached the server.
* `Client`: a blocking-socket client (exact bytes out, typed replies in).
* Frame material: `COMMANDS` (real commands), `encode_inline`, `pipeline`, the mutation
  operators (`MUTATIONS`, `mutate`) and `HOSTILE_HEADERS`; all deterministic given their inputs,
  so hypothesis strategies and a seeded `random.Random` produce the same kinds of input.
* Library material: `LIBRARY_FRAGMENTS` (sources that fail in every way a load can fail),
  `LIMIT_FRAGMENTS` (loops and memory bombs), `random_library`, `random_prologue`, and
  `Registry`: a host serving a library whose exact answers must survive every failed load.

`bench/fuzz.py` imports this package as ``tests.fuzz`` (run from the repository root).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import random
import re
import socket
import struct
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final, Self, TypeVar

from jshost import errors
from jshost.errors import Era, ReplyError
from jshost.host import Host
from jshost.host.requests import CallArgs
from jshost.resp import NEED_DATA, ProtocolError, ReplyParser, encode, encode_command
from jshost.server import Server
from jshost.settings import Settings
from jshost.store import EmbeddedStore

T = TypeVar("T")

#: Seconds any single wait of the harness may take before the test fails.
TIMEOUT: Final = 15.0

# --- the server under test ----------------------------------------------------------------------

#: The library every fuzz server has loaded: sync, async, big replies, writes, a pending promise.
FIXTURE_LIBRARY: Final = """#!js api_version=1.0 name=fz
var waiting = [];
redis.register_function('echo', (client, ...args) => args);
redis.register_function('set', (client, key, value) => client.call('set', key, value));
redis.register_function('big', (client, n) => 'x'.repeat(Math.min(Number(n) || 0, 1 << 22)));
redis.register_function('fail', () => { throw new Error('boom'); });
redis.register_async_function('later', async (client, x) => x + '!');
redis.register_async_function('wait', () => new Promise((resolve) => waiting.push(resolve)));
redis.register_function('release', () => {
    const n = waiting.length;
    waiting.splice(0).forEach((resolve) => resolve('released'));
    return n;
});
"""


class ProblemLog(logging.Handler):
    """Collects the log records that mean something went wrong inside the server."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.problems: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        serious = logging.WARNING if record.name.startswith("asyncio") else logging.ERROR
        if record.levelno >= serious:
            text = f"log {record.name} {record.levelname}: {record.getMessage()}"
            if record.exc_info and record.exc_info[1] is not None:
                text += f" ({type(record.exc_info[1]).__name__}: {record.exc_info[1]})"
            self.problems.append(text)


class ServerThread:
    """A started in-process jshost server on its own loop and thread (see the module docstring).

    ::

        with ServerThread(settings={"lock-redis-timeout": "100"}) as server:
            Client(server.port).call("PING")
        assert not server.problems
    """

    def __init__(
        self,
        *,
        settings: Mapping[str, str] | None = None,
        requirepass: str | None = None,
        query_buffer_limit: int | None = None,
        libraries: Sequence[str] = (FIXTURE_LIBRARY,),
    ) -> None:
        self.settings = dict(settings or {})
        self.requirepass = requirepass
        self.query_buffer_limit = query_buffer_limit
        self.libraries = tuple(libraries)
        self.port = 0
        self.server: Server | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self._log = ProblemLog()
        self._loop_problems: list[str] = []
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    @property
    def problems(self) -> list[str]:
        """Everything that went wrong inside the server so far (empty is good)."""
        return [*self._loop_problems, *self._log.problems]

    # --- life cycle ----------------------------------------------------------------------------

    def start(self) -> Self:
        """Start the thread and return once the server listens (raises if it cannot start)."""
        for name in ("jshost", "asyncio"):
            logging.getLogger(name).addHandler(self._log)
        self._thread = threading.Thread(target=self._main, name="jshost-fuzz-server", daemon=True)
        self._thread.start()
        if not self._ready.wait(TIMEOUT):
            raise RuntimeError("the fuzz server did not start")
        if self._error is not None:
            self._detach_log()
            raise RuntimeError("the fuzz server failed to start") from self._error
        return self

    def stop(self) -> None:
        """Shut the server down, join its thread (bounded) and detach the log handler."""
        try:
            if self.loop is not None and self._stop is not None and not self.loop.is_closed():
                self.loop.call_soon_threadsafe(self._stop.set)
            if self._thread is not None:
                self._thread.join(TIMEOUT)
                if self._thread.is_alive():
                    self._loop_problems.append("the server thread did not stop")
        finally:
            self._detach_log()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _detach_log(self) -> None:
        for name in ("jshost", "asyncio"):
            logging.getLogger(name).removeHandler(self._log)

    def _main(self) -> None:
        loop = asyncio.new_event_loop()
        self.loop = loop
        asyncio.set_event_loop(loop)
        loop.set_exception_handler(self._on_loop_exception)
        try:
            loop.run_until_complete(self._serve())
        except BaseException as exc:  # noqa: BLE001 - reported as a problem, not lost
            self._error = exc
            self._loop_problems.append(f"the server loop died: {type(exc).__name__}: {exc}")
        finally:
            self._ready.set()
            loop.close()

    async def _serve(self) -> None:
        host = Host(EmbeddedStore(), Settings(self.settings))
        extra: dict[str, Any] = {}
        if self.query_buffer_limit is not None:
            extra["client_query_buffer_limit"] = self.query_buffer_limit
        server = Server(host, port=0, requirepass=self.requirepass, **extra)
        server.ctx.request_shutdown = self._shutdown_requested
        self._stop = asyncio.Event()
        try:
            for code in self.libraries:
                host.load(code)
            await server.start()
            self.server = server
            self.port = server.port
            self._ready.set()
            await self._stop.wait()
            await server.shutdown()
        finally:
            host.close()
            await host.store.aclose()

    def _shutdown_requested(self) -> None:
        self._loop_problems.append("a client's SHUTDOWN reached the server")

    def _on_loop_exception(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        exc = context.get("exception")
        detail = f" ({type(exc).__name__}: {exc})" if exc is not None else ""
        self._loop_problems.append(f"loop exception handler: {context.get('message')}{detail}")

    # --- looking inside --------------------------------------------------------------------------

    def run(self, fn: Callable[[], T], timeout: float = TIMEOUT) -> T:
        """Call `fn` on the server's loop thread and return its result (or raise its error)."""
        assert self.loop is not None

        async def call() -> T:
            return fn()

        future = asyncio.run_coroutine_threadsafe(call(), self.loop)
        try:
            return future.result(timeout)
        except concurrent.futures.TimeoutError:
            raise AssertionError(f"the server loop did not answer within {timeout}s") from None

    def connection_count(self) -> int:
        """How many clients the server has right now."""
        return self.run(lambda: len(self.server.connections) if self.server else 0)

    def wait_until(
        self, condition: Callable[[], bool], what: str, timeout: float = TIMEOUT
    ) -> None:
        """Re-check `condition` (each check is a round trip to the server's loop) until it holds."""
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}")
            time.sleep(0.002)  # a pause between checks; the check itself is the sync point

    def wait_for_connections(self, count: int) -> None:
        """Wait until the server has exactly `count` clients (e.g. 0: all disconnects seen)."""
        self.wait_until(lambda: self.connection_count() == count, f"{count} connections")

    def check_healthy(self) -> None:
        """The server still answers PING on a new connection, and nothing went wrong inside."""
        with Client(self.port) as client:
            assert client.call_raw("PING") == b"+PONG\r\n"
        assert self.problems == []


# --- a blocking client --------------------------------------------------------------------------


class Client:
    """A blocking-socket client: sends exact bytes, reads typed replies or raw bytes."""

    def __init__(self, port: int, timeout: float = TIMEOUT) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.parser = ReplyParser()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def send_command(self, *args: bytes | str) -> None:
        self.send(encode_command(list(args)))

    def reply(self) -> Any:
        """The next reply, typed (an error is an `ErrorReply`); ConnectionError on EOF."""
        while True:
            value = self.parser.get_reply()
            if value is not NEED_DATA:
                return value
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError("the server closed the connection")
            self.parser.feed(data)

    def reply_raw(self) -> bytes:
        """The exact bytes of the next reply."""
        while True:
            got = self.parser.get_reply_with_raw()
            if got is not None:
                return got[1]
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError("the server closed the connection")
            self.parser.feed(data)

    def call(self, *args: bytes | str) -> Any:
        self.send_command(*args)
        return self.reply()

    def call_raw(self, *args: bytes | str) -> bytes:
        self.send_command(*args)
        return self.reply_raw()

    def finish(self) -> tuple[bytes, bool]:
        """Half-close, then read to the end: (all bytes the server sent, whether it reset)."""
        try:
            self.sock.shutdown(socket.SHUT_WR)
        except OSError:
            return b"", True
        return self.read_until_closed()

    def read_until_closed(self) -> tuple[bytes, bool]:
        """Everything the server still sends until it closes: (bytes, whether it reset)."""
        chunks: list[bytes] = []
        reset = False
        while True:
            try:
                data = self.sock.recv(1 << 20)
            except ConnectionResetError:
                reset = True
                break
            if not data:
                break
            chunks.append(data)
        return b"".join(chunks), reset

    def reset(self) -> None:
        """Abort: close with SO_LINGER 0, so the server gets a RST, not a FIN."""
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.sock.close()

    def close(self) -> None:
        self.sock.close()


def parse_replies(data: bytes) -> list[Any]:
    """Every reply in `data`; AssertionError if the bytes are not a whole number of valid
    RESP2/RESP3 replies (the server must never send anything else)."""
    parser = ReplyParser()
    parser.feed(data)
    replies: list[Any] = []
    try:
        while (value := parser.get_reply()) is not NEED_DATA:
            replies.append(value)
    except ProtocolError as exc:
        raise AssertionError(f"the server sent invalid RESP ({exc}): {data[-200:]!r}") from None
    assert _fully_parsed(parser), f"the server sent a partial reply at the end: {data[-200:]!r}"
    return replies


def _fully_parsed(parser: ReplyParser) -> bool:
    """Whether nothing unparsed is left in `parser` (no partial reply)."""
    return len(parser._buf) - parser._pos + parser._chunks_len == 0


# --- frame material -----------------------------------------------------------------------------

#: Real commands (benign: no SHUTDOWN, FLUSHALL, DEBUG, CONFIG SET, CLIENT KILL).
COMMANDS: Final[tuple[tuple[bytes, ...], ...]] = tuple(
    tuple(word.encode() for word in command.split(" "))
    for command in (
        "PING",
        "PING hello",
        "ECHO abc",
        "SET k v",
        "GET k",
        "INCR n",
        "DEL k",
        "LPUSH l a",
        "LRANGE l 0 -1",
        "HSET h f v",
        "HGETALL h",
        "SADD s m",
        "SMEMBERS s",
        "EXISTS k",
        "MULTI",
        "EXEC",
        "DISCARD",
        "WATCH k",
        "UNWATCH",
        "HELLO 3",
        "HELLO 2",
        "SELECT 1",
        "SELECT 0",
        "CLIENT SETNAME fuzz",
        "CLIENT GETNAME",
        "CLIENT ID",
        "SUBSCRIBE ch",
        "UNSUBSCRIBE ch",
        "PUBLISH ch m",
        "BLPOP nolist 0.01",
        "RESET",
        "QUIT",
        "RG.FCALL fz echo 1 k a b",
        "RG.FCALL fz set 1 k v",
        "RG.FCALL fz big 0 1000",
        "RG.FCALL fz fail 0",
        "RG.FCALLASYNC fz later 0 x",
        "RG.FCALLASYNC fz wait 0",
        "RG.FCALL fz release 0",
        "RG.FCALL fz nosuch 0",
        "RG.FCALL nolib f 0",
        "RG.FUNCTION LIST",
        "RG.FUNCTION LIST WITHCODE LIBRARY fz",
        "TFCALL fz.echo 0 x",
        "TFUNCTION LIST",
        "RG.CONFIG_GET error-verbosity",
        "COMMAND COUNT",
        "DBSIZE",
        "TYPE k",
        "NOSUCHCOMMAND x",
    )
)

#: Headers and fragments that stress the parser's limits.
HOSTILE_HEADERS: Final[tuple[bytes, ...]] = (
    b"*2147483647\r\n",
    b"*2147483648\r\n",
    b"*9223372036854775807\r\n",
    b"*99999999999999999999999\r\n",
    b"*-2147483648\r\n",
    b"*-1\r\n",
    b"*0\r\n",
    b"$536870912\r\n",
    b"$536870913\r\n",
    b"$2147483647\r\n",
    b"$9223372036854775807\r\n",
    b"$-1\r\n",
    b"$-2\r\n",
    b"*1\r\n" * 64,
    b"*2\r\n*1\r\n",
    b"\r\n",
    b"\n",
    b"\x00",
    b'"',
    b"'",
    b"\\x",
    b"*",
    b"$",
    b"*1\r\n$",
    b" " * 100,
)


def encode_inline(argv: Sequence[bytes]) -> bytes:
    """An inline request (``PING hello\\r\\n``) when the words allow it, else the multibulk."""
    if all(word and not any(c in b" \t\r\n\"'\x00\x0b\x0c" for c in word) for word in argv):
        return b" ".join(argv) + b"\r\n"
    return encode_command(list(argv))


def pipeline(commands: Sequence[Sequence[bytes]], inline: Sequence[bool] = ()) -> bytes:
    """The commands as one request buffer, each multibulk or (where `inline` says) inline."""
    parts = []
    for i, argv in enumerate(commands):
        use_inline = inline[i] if i < len(inline) else False
        parts.append(encode_inline(argv) if use_inline else encode_command(list(argv)))
    return b"".join(parts)


#: Mutation operators: (name, position, length/bits, payload) -> new bytes.
MUTATIONS: Final[tuple[str, ...]] = (
    "flip",
    "truncate",
    "duplicate",
    "delete",
    "insert",
    "splice_header",
    "swap",
)


def mutate_once(data: bytes, op: str, position: int, size: int, payload: bytes) -> bytes:
    """Apply one mutation. `position` and `size` are reduced modulo the data's length, so any
    integers work (hypothesis draws them freely)."""
    n = len(data)
    if n == 0:
        return payload if op in ("insert", "splice_header") else data
    pos = position % n
    span = 1 + size % max(1, min(n - pos, 64))
    if op == "flip":
        return data[:pos] + bytes([data[pos] ^ (1 << (size % 8))]) + data[pos + 1 :]
    if op == "truncate":
        return data[:pos]
    if op == "duplicate":
        return data[: pos + span] + data[pos : pos + span] + data[pos + span :]
    if op == "delete":
        return data[:pos] + data[pos + span :]
    if op == "insert":
        return data[:pos] + payload + data[pos:]
    if op == "splice_header":
        header = HOSTILE_HEADERS[size % len(HOSTILE_HEADERS)]
        return data[:pos] + header + data[pos:]
    if op == "swap":
        other = (pos + span) % n
        lo, hi = sorted((pos, other))
        return (
            data[:lo] + data[hi : hi + 1] + data[lo + 1 : hi] + data[lo : lo + 1] + data[hi + 1 :]
        )
    raise ValueError(f"unknown mutation {op!r}")


def mutate(data: bytes, steps: Sequence[tuple[str, int, int, bytes]]) -> bytes:
    """Apply mutations in order."""
    for op, position, size, payload in steps:
        data = mutate_once(data, op, position, size, payload)
    return data


def random_mutations(rng: random.Random, count: int) -> list[tuple[str, int, int, bytes]]:
    """`count` random mutation steps (the seeded counterpart of the hypothesis strategy)."""
    return [
        (
            rng.choice(MUTATIONS),
            rng.randrange(1 << 16),
            rng.randrange(1 << 16),
            rng.randbytes(rng.randrange(9)),
        )
        for _ in range(count)
    ]


def random_frame(rng: random.Random) -> bytes:
    """One fuzzed request buffer: random bytes, a mutated pipeline or a hostile header mix."""
    kind = rng.randrange(10)
    if kind == 0:
        return rng.randbytes(rng.randrange(1, 300))
    if kind == 1:
        return b"".join(rng.choice(HOSTILE_HEADERS) for _ in range(rng.randrange(1, 6)))
    commands = [rng.choice(COMMANDS) for _ in range(rng.randrange(1, 12))]
    data = pipeline(commands, [rng.random() < 0.3 for _ in commands])
    return mutate(data, random_mutations(rng, rng.randrange(0, 5)))


# --- library material ---------------------------------------------------------------------------

#: Sources that fail to load, one way each (to combine with registrations and with each other).
LIBRARY_FRAGMENTS: Final[tuple[str, ...]] = (
    # syntax errors
    "function (",
    "redis.register_function('f', () => {",
    "let let = 1;",
    "})",
    "`unterminated",
    "import x from 'std';",
    "export const x = 1;",
    "await 1;",
    # exceptions at load: every kind of thrown value
    "throw 'a string';",
    "throw null;",
    "throw undefined;",
    "throw 42;",
    "throw {a: 1};",
    "throw Object.create(null);",
    "throw new Error('boom');",
    "throw new TypeError('bad');",
    "throw Symbol('s');",
    "throw {toString() { throw new Error('inner'); }};",
    "throw {get stack() { throw 1; }, toString() { return 'x'; }};",
    "throw new Proxy({}, {get() { throw 2; }});",
    "throw 10n;",
    "undefinedVariable.x;",
    "null.x;",
    "(async () => { throw 1; })();",
    # registration misuse
    "redis.register_function();",
    "redis.register_function('f');",
    "redis.register_function(1, () => 1);",
    "redis.register_function('f', 1);",
    "redis.register_function('f', () => 1, ['nope']);",
    "redis.register_function('f', () => 1, 'no-writes');",
    "redis.register_function('f', async () => 1);",
    "redis.register_function('f', () => 1); redis.register_function('f', () => 2);",
    "redis.register_async_function('f', 1);",
    "redis.register_notifications_consumer('c', 1, () => 1);",
    "redis.register_stream_consumer('s', 'p', 'x', true, () => 1);",
    "redis.register_remote_function('r', () => 1);",
    "redis.log(1);",
    "redis.register_function({toString() { throw 1; }}, () => 1);",
    "new Promise(1);",
    "new Promise(async () => 1);",
    "Promise.resolve(1);",
    "eval('1');",
    "require('fs');",
    # deep recursion (a JS error, never a crash)
    "(function f() { return f() + 1; })();",
    "(function f(n) { try { return f(n + 1); } catch (e) { return f(n + 1); } })(0);",
    "JSON.parse('['.repeat(100000) + ']'.repeat(100000));",
    (
        "const o = []; let p = o; for (let i = 0; i < 100000; i++) { p[0] = []; p = p[0]; }"
        " JSON.stringify(o);"
    ),
    # nothing registered
    "",
    "1 + 1;",
    "globalThis.x = 1;",
)

#: Sources that run into a limit (lock-redis-timeout, library-maxmemory): slow, used sparingly.
LIMIT_FRAGMENTS: Final[tuple[str, ...]] = (
    "while (true) {}",
    "for (;;) { try { while (true) {} } catch (e) {} }",
    "const a = []; for (;;) a.push(new Array(1e5).fill(1.5));",
    "const a = []; for (;;) a.push({x: a.length, s: 'y'.repeat(100)});",
    "let s = 'x'; for (;;) s += s;",
    "new ArrayBuffer(1 << 30);",
    "const m = new Map(); for (let i = 0; ; i++) m.set(i, [i]);",
)


def library_code(body: str, name: str = "lib", prologue: str | None = None) -> str:
    """`body` after an rg prologue (or after the given first line)."""
    first = prologue if prologue is not None else f"#!js api_version=1.0 name={name}"
    return f"{first}\n{body}"


def random_library(rng: random.Random, name: str, *, era: Era = "rg", slow: bool = False) -> str:
    """A library that (most likely) fails to load: a mix of fragments, a registration maybe,
    a random character edit maybe. `slow` admits the fragments that run into a limit."""
    pool = LIBRARY_FRAGMENTS + (LIMIT_FRAGMENTS if slow else ())
    parts = [rng.choice(pool) for _ in range(rng.randrange(1, 4))]
    if rng.random() < 0.5:
        parts.insert(rng.randrange(len(parts) + 1), register_line(era))
    body = to_era(era, "\n".join(parts))
    if rng.random() < 0.3 and body:
        pos = rng.randrange(len(body))
        body = body[:pos] + rng.choice("(){}[];'\"`\\\n\x00") + body[pos + 1 :]
    return library_code(body, name)


PROLOGUE_KEYS: Final = ("api_version", "name", "API_VERSION", "Name", "nam", "api-version", "")
PROLOGUE_VALUES: Final = (
    "1.0",
    "1.1",
    "01.0",
    "1.01",
    "2.0",
    "0.9",
    "1",
    "1.",
    ".1",
    "1.0.0",
    "-1.0",
    "1.x",
    "1e0",
    "99999999999999999999.0",
    "lib",
    "fz_1",
    "",
    "a b",
    "serving",
)


def random_prologue(rng: random.Random) -> str:
    """A first line around ``#!js api_version=... name=...`` (the seeded counterpart of the
    hypothesis strategy in test_library_fuzz)."""
    if rng.random() < 0.1:
        return "".join(chr(rng.randrange(32, 0x3000)) for _ in range(rng.randrange(40)))
    start = rng.choice(["#!", "#!", "#!", "#! ", "#", "!#", "\ufeff#!", " #!"])
    engine = rng.choice(["js", "js", "js", "JS", "lua", "", "js "])
    sep = rng.choice([" ", " ", " ", "  ", "\t", ""])
    pairs = []
    for _ in range(rng.randrange(5)):
        key = rng.choice(PROLOGUE_KEYS)
        eq = rng.choice(["=", "=", "=", "==", " = ", ""])
        value = rng.choice(PROLOGUE_VALUES)
        pairs.append(sep + key + eq + value)
    return start + engine + "".join(pairs)


#: The lowest limits the settings accept: loops and bombs end fast.
LOW_LIMITS = {"lock-redis-timeout": "100", "library-maxmemory": "16mb"}

#: The library that must survive every failed load: its `probe` answers a value of every
#: reply type, so any change in the runtime or the registry shows in the bytes.
SERVING = {
    "rg": """#!js api_version=1.0 name=serving
var calls = 0;
redis.register_function('probe', () => [1, -2.5, 'text', null, true, [1, [2, [3]]],
    {a: 1, b: [null, 'x']}, new Map([['k', 1]]), new Set([1, 2]), 10n ** 20n,
    new Uint8Array([0, 255]).buffer]);
redis.register_function('count', () => ++calls);
""",
    "tf": """#!js api_version=1.0 name=serving
var calls = 0;
redis.registerFunction('probe', () => [1, -2.5, 'text', null, true, [1, [2, [3]]],
    {a: 1, b: [null, 'x']}, new Map([['k', 1]]), new Set([1, 2]), 10n ** 20n,
    new Uint8Array([0, 255]).buffer]);
redis.registerFunction('count', () => ++calls);
""",
}

#: The shapes a load error may take (SPEC §1.3, §1.4), for both eras.
LOAD_ERROR = re.compile(
    "|".join(
        [
            r"Failed library compilation: .+",
            r"Failed to compile library: .+",
            r"Failed loading library: .*\.",
            re.escape(errors.nothing_registered("rg")),
            re.escape(errors.nothing_registered("tf")),
            r"Library .* already exists\.",
            re.escape(errors.INVALID_PROLOGUE),
            re.escape(errors.API_VERSION_MISSING),
            re.escape(errors.LIBRARY_NAME_MISSING),
            r"Duplicated prologue properties found: .*\.",
            r"The API version has been incorrectly specified: .*",
            r"Unknown prologue properties provided: .*",
            r"Unknown backend .*",
        ]
    ),
    re.DOTALL,
)


class Registry:
    """A host with `SERVING` loaded, and the means to check that nothing changed."""

    def __init__(self, era: Era) -> None:
        self.era: Era = era
        self.host = Host(settings=Settings(LOW_LIMITS))
        self.host.load(SERVING[era], era=era)
        self.before = self.snapshot()

    def call(self, function: str) -> Any:
        result = self.host.call(self.era, CallArgs("serving", function, 0, []), asynchronous=False)
        assert not isinstance(result, asyncio.Future)
        return result

    def snapshot(self) -> tuple[Any, ...]:
        """Which library objects are registered, what they hold, and the probe's exact bytes in
        both protocols."""
        reply = self.call("probe")
        return (
            {
                name: (id(lib), lib.code, tuple(lib.functions))
                for name, lib in self.host.libraries.items()
            },
            encode(reply, 2),
            encode(reply, 3),
        )

    def load(self, code: str, *, replace: bool) -> str | None:
        """Load `code`; the library name, or None when it failed (with a valid error text).
        Any exception other than `ReplyError` propagates and fails the test."""
        try:
            name = self.host.load(code, replace=replace, era=self.era)
        except ReplyError as exc:
            assert isinstance(exc.text, str) and exc.text
            assert LOAD_ERROR.fullmatch(exc.text), f"unexpected load error: {exc.text!r}"
            return None
        assert name in self.host.libraries
        return name

    def check_unchanged(self) -> None:
        """The registry and the serving library are exactly as before; it still runs code."""
        assert self.snapshot() == self.before
        assert isinstance(self.call("count"), int)

    def undo(self, name: str) -> None:
        """A fuzzed library that loaded: take it out again (or put `serving` back)."""
        if name == "serving":
            self.host.load(SERVING[self.era], replace=True, era=self.era)
            self.before = self.snapshot()
        else:
            self.host.delete(name)

    def close(self) -> None:
        self.host.close()


def register_line(era: Era, name: str = "ok") -> str:
    fn = "register_function" if era == "rg" else "registerFunction"
    return f"redis.{fn}('{name}', () => 1);"


def to_era(era: Era, body: str) -> str:
    """The rg fragments in the era's API names."""
    if era == "rg":
        return body
    return (
        body.replace("register_async_function", "registerAsyncFunction")
        .replace("register_function", "registerFunction")
        .replace("register_notifications_consumer", "registerKeySpaceTrigger")
        .replace("register_stream_consumer", "registerStreamTrigger")
        .replace("register_remote_function", "registerClusterFunction")
    )
