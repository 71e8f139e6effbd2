"""`Connection.feed_commands`, the batch entry of commands parsed elsewhere (the native request
path hands them over): over a real socket, the fed commands are answered as commands the client
sent, in order, and they wait their turn behind a blocked command, as commands read do.

The rules themselves are `jshost.ordering`'s (tests/test_ordering.py drives them with plain
values); these tests check the glue.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from server_fixture import RawClient, running_server, wait_until

from jshost.connection import Connection
from jshost.replies import Status
from jshost.server import Server

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    async with running_server() as srv:
        yield srv


async def _named(server: Server, client: RawClient, name: str) -> Connection:
    """The server's connection of `client` (named by CLIENT SETNAME)."""
    assert await client.call("CLIENT", "SETNAME", name) == Status(b"OK")
    (conn,) = [
        c for c in server.connections if c.client is not None and c.client.name == name.encode()
    ]
    return conn


async def test_fed_commands_run_in_order(server: Server) -> None:
    c = await RawClient.connect(server.port)
    try:
        conn = await _named(server, c, "fed")
        conn.feed_commands([[b"SET", b"k", b"1"], [b"INCR", b"k"], [b"GET", b"k"]])
        assert await c.replies(3) == [Status(b"OK"), 2, b"2"]
        assert await c.call("PING") == Status(b"PONG")  # the client's own commands run on
    finally:
        await c.close()


async def test_fed_commands_wait_behind_a_blocked_command(server: Server) -> None:
    blocked = await RawClient.connect(server.port)
    other = await RawClient.connect(server.port)
    try:
        conn = await _named(server, blocked, "blocked")
        await blocked.send_commands(["BLPOP", "list", "0"])

        async def is_blocked() -> bool:
            return conn.blocked

        await wait_until(is_blocked, what="BLPOP to block")
        conn.feed_commands([[b"SET", b"after", b"1"], [b"PING"]])
        assert await other.call("GET", "after") is None  # not run while BLPOP waits
        assert await other.call("LPUSH", "list", "x") == 1
        assert await blocked.replies(3) == [[b"list", b"x"], Status(b"OK"), Status(b"PONG")]
        assert await other.call("GET", "after") == b"1"
    finally:
        await blocked.close()
        await other.close()


async def test_fed_commands_run_before_what_the_parser_still_holds(server: Server) -> None:
    blocked = await RawClient.connect(server.port)
    other = await RawClient.connect(server.port)
    try:
        conn = await _named(server, blocked, "blocked")
        # BLPOP blocks; the ECHO behind it stays in the query buffer. Fed commands stand for
        # ones taken from the front of the buffer, so they run before the ECHO.
        await blocked.send_commands(["BLPOP", "list", "0"], ["ECHO", "last"])

        async def is_blocked() -> bool:
            return conn.blocked

        await wait_until(is_blocked, what="BLPOP to block")
        conn.feed_commands([[b"ECHO", b"fed"]])
        assert await other.call("LPUSH", "list", "x") == 1
        assert await blocked.replies(3) == [[b"list", b"x"], b"fed", b"last"]
    finally:
        await blocked.close()
        await other.close()
