"""RESP fuzzing against an in-process server: one bad client never hurts the others.

Every test runs its own `ServerThread` (the server on its own loop thread, so that hypothesis
and blocking sockets can drive it) and, at the end, checks that it still answers PING on a new
connection, that every connection it accepted went away, and that nothing escaped into the
loop's exception handler or the ``jshost`` error logs (`ServerThread.problems`).

Per example, what the server sent back must be a whole number of valid RESP replies: whatever
the input, it never writes a broken stream.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jshost.errors import ProtocolErrors
from jshost.replies import ErrorReply, Status
from jshost.resp import (
    MAX_MULTIBULK_LEN,
    PROTO_MAX_BULK_LEN,
    ProtocolError,
    RequestParser,
    encode_command,
)

from . import (
    COMMANDS,
    HOSTILE_HEADERS,
    MUTATIONS,
    Client,
    ServerThread,
    mutate,
    parse_replies,
    pipeline,
)

pytestmark = pytest.mark.timeout(300)

PONG = Status(b"PONG")

#: The query buffer limit of the fuzz server (small, so that the fuzz also exercises it).
LIMIT = 256 * 1024

FUZZ = settings(
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def fuzz(examples: int) -> settings:
    """Hypothesis settings for a fuzz test of `examples` examples on one shared server."""
    return settings(FUZZ, max_examples=examples)


@pytest.fixture
def server() -> Iterator[ServerThread]:
    """A fuzz server; after the test: healthy, no connection left, no problem recorded."""
    srv = ServerThread(query_buffer_limit=LIMIT).start()
    try:
        yield srv
        srv.wait_for_connections(0)
        srv.check_healthy()
    finally:
        srv.stop()
    assert srv.problems == []


def exchange(port: int, data: bytes) -> list[object]:
    """Send `data`, half-close, read to the end; the replies (asserted to be valid RESP)."""
    with Client(port) as client:
        try:
            client.send(data)
        except (BrokenPipeError, ConnectionResetError):
            return []  # the server already dropped us (QUIT, a limit): fine
        out, _reset = client.finish()
    return parse_replies(out)


# --- random input ---------------------------------------------------------------------------


@fuzz(150)
@given(data=st.binary(min_size=1, max_size=2048))
def test_random_bytes(server: ServerThread, data: bytes) -> None:
    """Arbitrary bytes: whatever the server answers is valid RESP, then it closes."""
    exchange(server.port, data)


@fuzz(100)
@given(
    data=st.lists(
        st.one_of(
            st.sampled_from(HOSTILE_HEADERS),
            st.binary(max_size=16),
            st.sampled_from([b"*1\r\n$4\r\nPING\r\n", b"PING\r\n", b"\r\n", b"$4\r\n"]),
        ),
        min_size=1,
        max_size=12,
    )
)
def test_hostile_header_soup(server: ServerThread, data: list[bytes]) -> None:
    """Giant counts and lengths, nesting, stray CR/LF, NUL and quotes, glued together."""
    exchange(server.port, b"".join(data))


commands = st.lists(st.sampled_from(COMMANDS), min_size=1, max_size=15)
mutations = st.lists(
    st.tuples(
        st.sampled_from(MUTATIONS),
        st.integers(0, 1 << 16),
        st.integers(0, 1 << 16),
        st.binary(max_size=8),
    ),
    max_size=5,
)


@fuzz(250)
@given(commands=commands, inline=st.lists(st.booleans(), max_size=15), steps=mutations)
def test_mutated_pipelines(
    server: ServerThread,
    commands: list[tuple[bytes, ...]],
    inline: list[bool],
    steps: list[tuple[str, int, int, bytes]],
) -> None:
    """Pipelines of real commands with bit flips, truncations, duplicated, deleted, swapped or
    inserted bytes and spliced hostile headers."""
    exchange(server.port, mutate(pipeline(commands, inline), steps))


@fuzz(40)
@given(commands=commands, inline=st.lists(st.booleans(), max_size=15))
def test_unmutated_pipelines_get_one_reply_per_command(
    server: ServerThread, commands: list[tuple[bytes, ...]], inline: list[bool]
) -> None:
    """The control case: without mutations, the server answers every command (up to a QUIT)
    — so the checks of the mutated cases see real replies, not an idle server."""
    replies = exchange(server.port, pipeline(commands, inline))
    names = [c[0] for c in commands]
    expected = names.index(b"QUIT") + 1 if b"QUIT" in names else len(commands)
    if {b"SUBSCRIBE", b"PUBLISH"} & set(names):
        return  # pushes add replies
    if {b"BLPOP", b"RG.FCALLASYNC"} & set(names):
        assert len(replies) <= expected  # the half-close may drop a blocked command's reply
    else:
        assert len(replies) == expected


def _parse_all(chunks: list[bytes]) -> list[object]:
    """Every command (or the protocol error) a fresh parser gives for `chunks` fed in turn."""
    parser = RequestParser()
    out: list[object] = []
    try:
        for chunk in chunks:
            parser.feed(chunk)
            while (argv := parser.get_command()) is not None:
                out.append(argv)
    except ProtocolError as exc:
        out.append(("error", exc.message))
    return out


@fuzz(200)
@given(
    commands=commands,
    inline=st.lists(st.booleans(), max_size=15),
    steps=mutations,
    cuts=st.lists(st.integers(0, 1 << 16), max_size=6),
)
def test_parser_does_not_care_how_bytes_are_split(
    commands: list[tuple[bytes, ...]],
    inline: list[bool],
    steps: list[tuple[str, int, int, bytes]],
    cuts: list[int],
) -> None:
    """The sans-I/O parser gives the same commands (and the same error) whether a fuzzed
    buffer arrives at once or cut anywhere — except Redis's own "too big" quirk, which
    depends on how much had arrived (documented in jshost.resp)."""
    data = mutate(pipeline(commands, inline), steps)
    points = sorted({c % (len(data) + 1) for c in cuts})
    chunks = [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True)]
    whole, split = _parse_all([data]), _parse_all(chunks)
    if any(isinstance(x, tuple) and "too big" in str(x[1]) for x in whole + split):
        return
    assert split == whole


# --- huge declared lengths --------------------------------------------------------------------


@fuzz(60)
@given(
    count=st.one_of(
        st.integers(-(2**70), 2**70),
        st.sampled_from(
            [MAX_MULTIBULK_LEN, MAX_MULTIBULK_LEN + 1, 2**63 - 1, 2**63, -(2**63), 0, -1, 1]
        ),
    )
)
def test_multibulk_count(server: ServerThread, count: int) -> None:
    """``*<count>`` then ``PING``: skipped when <= 0, waits for '$' up to INT_MAX, refused above
    (or beyond a 64-bit integer) — never an allocation of `count` slots."""
    replies = exchange(server.port, b"*%d\r\nPING\r\n" % count)
    if not -(2**63) <= count < 2**63:
        # not a 64-bit integer
        assert replies == [ErrorReply(ProtocolErrors.ERR_INVALID_MULTIBULK_LENGTH)]
    elif count <= 0:
        assert replies == [PONG]
    elif count <= MAX_MULTIBULK_LEN:
        assert replies == [ErrorReply("ERR Protocol error: expected '$', got 'P'")]
    else:
        assert replies == [ErrorReply(ProtocolErrors.ERR_INVALID_MULTIBULK_LENGTH)]


@fuzz(60)
@given(
    length=st.one_of(
        st.integers(-(2**70), 2**70),
        st.sampled_from(
            [PROTO_MAX_BULK_LEN, PROTO_MAX_BULK_LEN + 1, 2**31 - 1, 2**63 - 1, 2**63, -1, -2]
        ),
    )
)
def test_bulk_length(server: ServerThread, length: int) -> None:
    """``*1 $<length>``: refused when negative or over 512 MiB; otherwise the server waits for
    the bytes (memory grows only with what really arrives)."""
    replies = exchange(server.port, b"*1\r\n$%d\r\n" % length + b"x" * 64)
    if 0 <= length <= PROTO_MAX_BULK_LEN:
        if length + 2 <= 64:  # complete: an unknown command 'xxx...'
            assert len(replies) == 1 and str(replies[0]).startswith("ERR unknown command")
        else:
            assert replies == []  # still waiting when the client went
    else:
        assert replies == [ErrorReply(ProtocolErrors.ERR_INVALID_BULK_LENGTH)]


def test_declared_giants_hold_only_what_arrives(server: ServerThread) -> None:
    """`*2147483647` and `$536870912` headers, then far less data: each client waits, holds
    no more than it sent (nothing is allocated for the declared sizes), and the others are
    served; closing them frees everything."""
    giants = [Client(server.port) for _ in range(20)]
    sent = 0
    try:
        for i, giant in enumerate(giants):
            header = b"*2147483647\r\n" if i % 2 else b"*2\r\n$3\r\nSET\r\n$536870912\r\n"
            data = header + b"$1\r\nx\r\n" * 100
            giant.send(data)
            sent = max(sent, len(data))
        with Client(server.port) as other:
            assert other.call_raw("PING") == b"+PONG\r\n"
            server.wait_for_connections(21)
            held = server.run(lambda: [_held(c._parser) for c in _connections(server)])
            assert max(held) <= sent, held
    finally:
        for giant in giants:
            giant.close()


@fuzz(30)
@given(depth=st.integers(2, 20_000), inner=st.sampled_from([b"*1\r\n", b"*2\r\n", b"*3\r\n"]))
def test_nesting_is_a_protocol_error(server: ServerThread, depth: int, inner: bytes) -> None:
    """Requests cannot nest: ``*1 *1 ...`` is ``expected '$', got '*'`` at the first level,
    whatever the depth (no recursion, no stack)."""
    replies = exchange(server.port, b"PING\r\n" + inner * depth + b"$4\r\nPING\r\n")
    assert replies == [PONG, ErrorReply("ERR Protocol error: expected '$', got '*'")]


# --- slow clients -----------------------------------------------------------------------------


def test_slow_loris_is_served_byte_by_byte_while_others_are_served(server: ServerThread) -> None:
    """A client sending one byte at a time gets its replies; between its bytes another client
    makes full round trips (the interleaving is the synchronisation: no sleeps)."""
    frames = (
        encode_command(["SET", "slow", "loris"])
        + b"GET slow\r\n"
        + encode_command(["RG.FCALL", "fz", "echo", "0", "a"])
    )
    with Client(server.port) as slow, Client(server.port) as other:
        for i, byte in enumerate(frames):
            slow.send(bytes([byte]))
            assert other.call_raw("ECHO", str(i)) == b"$%d\r\n%d\r\n" % (len(str(i)), i)
        assert [slow.reply() for _ in range(3)] == [Status(b"OK"), b"loris", [b"a"]]


def test_many_stalled_partial_frames_do_not_block_anyone(server: ServerThread) -> None:
    """100 clients stall in the middle of a frame (header, bulk, inline line); others are
    served meanwhile; when the stalled clients finish, each gets its own answer."""
    halves = [
        (b"*2\r\n$4\r\nECHO\r\n$5\r\nhel", b"lo\r\n", b"hello"),
        (b"*2\r\n$4\r\nEC", b"HO\r\n$5\r\nhello\r\n", b"hello"),
        (b"*", b"2\r\n$4\r\nECHO\r\n$5\r\nhello\r\n", b"hello"),
        (b"ECHO hel", b"lo\r\n", b"hello"),
    ]
    stalled = [(Client(server.port), halves[i % len(halves)]) for i in range(100)]
    try:
        for client, (first, _, _) in stalled:
            client.send(first)
        with Client(server.port) as other:
            for _ in range(20):
                assert other.call_raw("PING") == b"+PONG\r\n"
        for client, (_, second, expected) in stalled:
            client.send(second)
        for client, (_, _, expected) in stalled:
            assert client.reply() == expected
    finally:
        for client, _ in stalled:
            client.close()


# --- abrupt disconnects -----------------------------------------------------------------------


@fuzz(80)
@given(commands=commands, cut=st.integers(0, 1 << 16), reset=st.booleans())
def test_disconnect_mid_frame(
    server: ServerThread, commands: list[tuple[bytes, ...]], cut: int, reset: bool
) -> None:
    """The client goes (FIN or RST) anywhere inside a pipeline."""
    data = pipeline(commands)
    client = Client(server.port)
    client.send(data[: cut % (len(data) + 1)])
    if reset:
        client.reset()
    else:
        client.close()


@pytest.mark.parametrize("reset", [False, True], ids=["fin", "rst"])
def test_disconnect_mid_reply(server: ServerThread, reset: bool) -> None:
    """Clients that go while big replies are being written (a 200 KiB value asked 50 times, a
    function returning 4 MiB, a pending async call): nothing is logged, nothing leaks."""
    with Client(server.port) as setter:
        assert setter.call_raw("SET", "big", "x" * (200 << 10)) == b"+OK\r\n"
    with Client(server.port) as other:
        for _ in range(10):
            for data in (
                encode_command(["GET", "big"]) * 50,
                encode_command(["RG.FCALL", "fz", "big", "0", str(4 << 20)]) * 3,
                encode_command(["RG.FCALLASYNC", "fz", "later", "0", "x"]) * 100,
            ):
                client = Client(server.port)
                client.send(data)
                client.sock.recv(1)  # the server has started answering
                _disconnect(client, reset)
            waiter = Client(server.port)
            waiter.send_command("RG.FCALLASYNC", "fz", "wait", "0")
            server.wait_until(lambda: _blocked_count(server) == 1, "the call to block")
            _disconnect(waiter, reset)
            server.wait_for_connections(1)
            assert other.call_raw("PING") == b"+PONG\r\n"
        # The ten dropped calls' promises are still there; settling them harms nobody.
        assert other.call_raw("RG.FCALL", "fz", "release", "0") == b":10\r\n"
        assert other.call_raw("DEL", "big") == b":1\r\n"


def test_client_that_never_reads_does_not_block_others(server: ServerThread) -> None:
    """A client pipelining big replies without reading: it is paused (its reads stop), the
    others are served, and it can still go without harm."""
    with Client(server.port) as setter:
        setter.call("SET", "big", "y" * (200 << 10))
    hog = Client(server.port)
    hog.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    try:
        hog.send(encode_command(["GET", "big"]) * 300)
        with Client(server.port) as other:
            for _ in range(20):
                assert other.call_raw("PING") == b"+PONG\r\n"
    finally:
        hog.reset()


# --- the query buffer limit -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("flood", "expected"),
    [
        pytest.param(b"*1\r\n$536870912\r\n" + b"x" * (LIMIT + 1), b"", id="big-bulk"),
        pytest.param(b"*2147483647\r\n" + b"$1\r\nx\r\n" * (LIMIT // 7 + 1), b"", id="many-args"),
        # Lines longer than 64 KiB are protocol errors before the limit is reached.
        pytest.param(
            b"x" * (LIMIT + 1),
            b"-ERR Protocol error: too big inline request\r\n",
            id="endless-inline",
        ),
        pytest.param(
            b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$" + b"9" * (LIMIT + 1),
            b"-ERR Protocol error: too big bulk count string\r\n",
            id="endless-header",
        ),
    ],
)
def test_query_buffer_limit_disconnects_only_the_flooder(
    server: ServerThread, flood: bytes, expected: bytes
) -> None:
    """More than the limit of unprocessed input: that client is disconnected without a reply
    (as Redis does) and another client, served between the flood's chunks, carries on."""
    chunk = 32 * 1024
    with Client(server.port) as other:
        flooder = Client(server.port)
        try:
            for start in range(0, len(flood), chunk):
                try:
                    flooder.send(flood[start : start + chunk])
                except (BrokenPipeError, ConnectionResetError):
                    break
                assert other.call_raw("PING") == b"+PONG\r\n"
            out, _reset = flooder.read_until_closed()
            assert out == expected
        finally:
            flooder.close()
        server.wait_for_connections(1)
        assert other.call_raw("PING") == b"+PONG\r\n"


def test_query_buffer_limit_applies_to_a_blocked_client(server: ServerThread) -> None:
    """A client blocked on a pending RG.FCALLASYNC keeps sending: its unprocessed commands count
    against the limit; once over, it is dropped, and the promise still settles for others."""
    with Client(server.port) as other:
        blocked = Client(server.port)
        try:
            blocked.send_command("RG.FCALLASYNC", "fz", "wait", "0")
            server.wait_until(lambda: _blocked_count(server) == 1, "the call to block")
            ping = encode_command(["PING"])
            try:
                for _ in range(LIMIT // (32 * 1024) + 2):
                    blocked.send(ping * (32 * 1024 // len(ping) + 1))
            except (BrokenPipeError, ConnectionResetError):
                pass
            out, _reset = blocked.read_until_closed()
            assert out == b""
        finally:
            blocked.close()
        server.wait_for_connections(1)
        assert other.call_raw("RG.FCALL", "fz", "release", "0") == b":1\r\n"
        assert other.call_raw("PING") == b"+PONG\r\n"


def test_just_under_the_limit_is_served(server: ServerThread) -> None:
    """The control case: a request just under the limit is executed normally."""
    value = b"v" * (LIMIT - 100)
    with Client(server.port) as client:
        assert client.call_raw("SET", "k", value) == b"+OK\r\n"
        assert client.call("STRLEN", "k") == len(value)


def test_the_limit_reaches_the_parser() -> None:
    """`Server(client_query_buffer_limit=...)` is what each connection's parser enforces."""
    with ServerThread(query_buffer_limit=12345) as srv:
        with Client(srv.port) as client:
            client.call("PING")
            assert srv.server is not None
            connections = srv.run(lambda: list(srv.server.connections))  # type: ignore[union-attr]
            limits = [c._parser.query_buffer_limit for c in connections]
        assert limits == [12345]
        srv.wait_for_connections(0)
    assert srv.problems == []


# --- helpers ----------------------------------------------------------------------------------


def _disconnect(client: Client, reset: bool) -> None:
    if reset:
        client.reset()
    else:
        client.close()


def _connections(server: ServerThread) -> list[Any]:
    assert server.server is not None
    return list(server.server.connections)


def _held(parser: RequestParser) -> int:
    """The request bytes a connection's parser holds (what its query buffer limit counts)."""
    return len(parser._buf) - parser._pos + parser._chunks_len + parser._partial


def _blocked_count(server: ServerThread) -> int:
    """How many of the server's clients wait on a command's future."""
    assert server.server is not None
    return server.run(lambda: sum(c.blocked for c in server.server.connections))
