"""Redis' pre-auth limits (networking.c, since CVE-2021-32675): behind `--requirepass`, before
AUTH, a multibulk of more than 10 arguments or a bulk of more than 16 KiB is a protocol error as
soon as its header is read, and the connection is closed. So an unauthenticated client can never
make jshost buffer more than about 10 x 16 KiB.

The parser is checked on its own, then a real `jshost serve --requirepass` over real sockets
against a real redis-server 7 given the same bytes.
"""

from __future__ import annotations

import socket
from typing import Any

import pytest
from redis_server import REDIS_SERVER, RedisServer
from server_fixture import JshostProcess

from jshost.errors import ProtocolErrors
from jshost.replies import ErrorReply
from jshost.resp import ProtocolError, RequestParser, encode, encode_command

pytestmark = pytest.mark.timeout(60)

# Redis 7's texts (checked against a real redis-server below).
UNAUTH_MBULK = "ERR Protocol error: unauthenticated multibulk length"
UNAUTH_BULK = "ERR Protocol error: unauthenticated bulk length"


def parse(data: bytes, *, unauthenticated: bool = True) -> list[list[bytes]]:
    parser = RequestParser()
    parser.unauthenticated = unauthenticated
    parser.feed(data)
    return list(parser)


def parse_error(data: bytes) -> str:
    with pytest.raises(ProtocolError) as info:
        parse(data)
    return info.value.message


@pytest.mark.parametrize(
    ("data", "error"),
    [
        (b"*11\r\n", UNAUTH_MBULK),
        (b"*2147483647\r\n", UNAUTH_MBULK),
        (b"*1\r\n$16385\r\n", UNAUTH_BULK),
        (b"*1\r\n$536870000\r\n", UNAUTH_BULK),
        (b"*2\r\n$3\r\nSET\r\n$16385\r\n", UNAUTH_BULK),
        # Redis' own checks come first.
        (b"*2147483648\r\n", ProtocolErrors.ERR_INVALID_MULTIBULK_LENGTH),
        (b"*1\r\n$-5\r\n", ProtocolErrors.ERR_INVALID_BULK_LENGTH),
        (b"*1\r\n$536870913\r\n", ProtocolErrors.ERR_INVALID_BULK_LENGTH),
    ],
)
def test_unauthenticated_limits(data: bytes, error: str) -> None:
    assert parse_error(data) == error


def test_at_the_limits_is_fine() -> None:
    ten = b"*10\r\n" + b"$1\r\nx\r\n" * 10
    big = b"*2\r\n$4\r\nAUTH\r\n$16384\r\n" + b"p" * 16384 + b"\r\n"
    assert parse(ten + big) == [[b"x"] * 10, [b"AUTH", b"p" * 16384]]


def test_the_limits_go_with_authentication() -> None:
    parser = RequestParser()
    parser.unauthenticated = True
    parser.feed(b"*2\r\n$4\r\nAUTH\r\n$2\r\npw\r\n*1\r\n$20000\r\n" + b"x" * 20000 + b"\r\n")
    assert parser.get_command() == [b"AUTH", b"pw"]
    parser.unauthenticated = False  # what the connection does once AUTH has succeeded
    assert parser.get_command() == [b"x" * 20000]


def test_inline_requests_stay_bounded_by_the_inline_limit() -> None:
    assert parse(b"PING\r\n") == [[b"PING"]]
    assert parse_error(b"A" * (64 * 1024 + 1)) == ProtocolErrors.ERR_TOO_BIG_INLINE


# --- the parser fed whole and in pieces, and Redis' answers to the same bytes ------------------

INVALID_MBULK = ProtocolErrors.ERR_INVALID_MULTIBULK_LENGTH
INVALID_BULK = ProtocolErrors.ERR_INVALID_BULK_LENGTH


def parse_requests(data: bytes, chunk: int | None = None, **kwargs: Any) -> tuple[list, str | None]:
    """Feed ``data`` (whole, or in ``chunk``-byte pieces); return (commands, error text)."""
    parser = RequestParser(**kwargs)
    commands: list[list[bytes]] = []
    pieces = [data] if chunk is None else [data[i : i + chunk] for i in range(0, len(data), chunk)]
    try:
        for piece in pieces:
            parser.feed(piece)
            commands.extend(parser)
    except ProtocolError as exc:
        return commands, exc.message
    return commands, None


UNAUTHENTICATED_REQUESTS = [
    # (input, commands returned, error text) for a client that is not authenticated
    (b"*10\r\n$4\r\nPING\r\n", [], None),  # 10 arguments are allowed: it waits for 9 more
    (b"*11\r\n", [], UNAUTH_MBULK),
    (b"*11\rx", [], UNAUTH_MBULK),
    (b"*0\r\n*-5\r\n*11\r\n", [], UNAUTH_MBULK),
    (b"*2147483648\r\n", [], INVALID_MBULK),  # invalid first
    (b"*1\r\n$16384\r\n" + b"x" * 16384 + b"\r\n", [[b"x" * 16384]], None),
    (b"*1\r\n$16385\r\n", [], UNAUTH_BULK),
    (b"*1\r\n$536870913\r\n", [], INVALID_BULK),
    (b"*1\r\n$-1\r\n", [], INVALID_BULK),
    (b"PING " + b"a " * 100 + b"\r\n", [[b"PING"] + [b"a"] * 100], None),  # inline: no such limit
]


@pytest.mark.parametrize(("data", "before", "error"), UNAUTHENTICATED_REQUESTS)
def test_limits_whole_and_in_pieces(data: bytes, before: list, error: str | None) -> None:
    assert parse_requests(data, unauthenticated=True) == (before, error)
    assert parse_requests(data, chunk=7, unauthenticated=True) == (before, error)
    if error in (UNAUTH_MBULK, UNAUTH_BULK):
        assert parse_requests(data)[1] is None  # authenticated (the default): no such limit


@pytest.mark.skipif(REDIS_SERVER is None, reason="redis-server is not installed")
def test_the_table_is_redis_own() -> None:
    """Each input of the table to a redis-server with a password, before AUTH: the protocol
    error it sends is the one the parser raises (and none where the parser raises none)."""
    with RedisServer(password="secret") as server:
        for data, _before, error in UNAUTHENTICATED_REQUESTS:
            with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
                sock.sendall(data)
                sock.shutdown(socket.SHUT_WR)
                received = b"".join(iter(lambda s=sock: s.recv(65536), b""))
            if error is None:
                assert b"Protocol error" not in received, data[:40]
            else:
                assert received == encode(ErrorReply(error)), data[:40]


def test_authentication_takes_effect_at_the_next_command() -> None:
    """AUTH runs before the next command is read: `take` gives one command at a time while the
    client is not authenticated, and the limits go once `unauthenticated` is cleared."""
    auth = encode_command([b"AUTH", b"secret"])
    big = encode_command([b"SET", b"k", b"v" * 20000])
    parser = RequestParser(unauthenticated=True)
    assert parser.feed_and_take(auth + big, 100) == [[b"AUTH", b"secret"]]
    parser.unauthenticated = False
    assert parser.take(100) == [[b"SET", b"k", b"v" * 20000]]
    parser.unauthenticated = True
    with pytest.raises(ProtocolError, match="unauthenticated bulk length"):
        parser.feed_and_take(big, 100)


# --- over real sockets ------------------------------------------------------------------------

#: Each request is sent alone; the server must answer it and close without waiting for more.
REQUESTS = {
    "11 arguments": b"*11\r\n",
    "1 GiB argument": b"*1\r\n$536870000\r\n",
    "16 KiB + 1": b"*1\r\n$16385\r\n",
    "after a first argument": b"*2\r\n$4\r\nPING\r\n$20000\r\n",
}


def exchange(port: int, data: bytes) -> bytes:
    """Send `data`, then read until the server closes the connection."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(data)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    return received


@pytest.fixture(scope="module")
def jshost_port() -> int:
    proc = JshostProcess("--requirepass", "pw").start()
    try:
        yield proc.port
    finally:
        proc.stop()


@pytest.mark.parametrize("data", REQUESTS.values(), ids=REQUESTS.keys())
def test_a_header_alone_gets_the_error_and_the_connection_closes(
    jshost_port: int, data: bytes
) -> None:
    """The error comes, and the connection closes, after the header alone: nothing that the
    header announced was sent, so nothing was waited for or buffered."""
    expected = UNAUTH_MBULK if data.startswith(b"*11") else UNAUTH_BULK
    assert exchange(jshost_port, data) == b"-" + expected.encode() + b"\r\n"


def test_after_auth_big_arguments_are_served(jshost_port: int) -> None:
    value = b"v" * 20000
    request = (
        b"*2\r\n$4\r\nAUTH\r\n$2\r\npw\r\n"
        + b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$20000\r\n" + value + b"\r\n"
        + b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n*1\r\n$4\r\nQUIT\r\n"
    )
    assert exchange(jshost_port, request) == (
        b"+OK\r\n+OK\r\n$20000\r\n" + value + b"\r\n+OK\r\n"
    )


@pytest.mark.skipif(REDIS_SERVER is None, reason="redis-server is not installed")
@pytest.mark.parametrize("data", REQUESTS.values(), ids=REQUESTS.keys())
def test_the_same_as_redis(jshost_port: int, data: bytes) -> None:
    with RedisServer(password="pw") as redis:
        assert exchange(jshost_port, data) == exchange(redis.port, data)
