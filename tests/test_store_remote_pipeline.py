"""The remote store's connection bookkeeping (jshost/store/remote/pipeline.py), with plain
values: commands in, bytes out, replies in, futures completed. No socket, no server."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Sequence
from typing import Any

import pytest

from jshost.replies import ErrorReply, Status
from jshost.resp import ProtocolError, encode_command
from jshost.store.base import NO_REPLY
from jshost.store.remote.pipeline import MARKER, Pipeline

BLOCKING = {b"blpop", b"brpop", b"wait"}


def cmd(line: str) -> list[bytes]:
    return [word.encode() for word in line.split()]


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


class Harness:
    """A pipeline on database 0 whose database changes are recorded."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.dbs: list[int] = []
        self.pipeline = Pipeline(
            0,
            is_blocking=lambda args: args[0].lower() in BLOCKING,
            arity_ok=lambda args: len(args) > 1,
            relogin=lambda: [cmd("HELLO 3")],
            on_db=self.dbs.append,
        )

    def send(self, line: str, raw: bool = False) -> asyncio.Future[Any]:
        future = self.loop.create_future()
        self.pipeline.send(cmd(line), future, raw)
        return future

    def send_tracked(self, line: str) -> asyncio.Future[Any] | None:
        future = self.loop.create_future()
        return future if self.pipeline.send_tracked(cmd(line), future, False) else None

    def written(self) -> bytes:
        out = bytes(self.pipeline.out)
        self.pipeline.out.clear()
        return out

    def reply(self, *values: Any) -> None:
        for value in values:
            self.pipeline.reply(value, b"")


def wire(*lines: str) -> bytes:
    return b"".join(encode_command(cmd(line)) for line in lines)


def results(futures: Sequence[asyncio.Future[Any] | None]) -> list[Any]:
    return [f.result() if f is not None and f.done() else None for f in futures]


def test_replies_complete_commands_in_the_order_sent(loop: asyncio.AbstractEventLoop) -> None:
    h = Harness(loop)
    futures = [h.send("SET a 1"), h.send("GET a"), h.send("INCR n")]
    assert h.written() == wire("SET a 1", "GET a", "INCR n")
    h.reply(Status(b"OK"), b"1")
    assert results(futures) == [Status(b"OK"), b"1", None]
    h.reply(7)
    assert results(futures) == [Status(b"OK"), b"1", 7]
    assert not h.pipeline.pending


def test_a_raw_command_gets_the_reply_bytes(loop: asyncio.AbstractEventLoop) -> None:
    h = Harness(loop)
    future = h.send("GET a", raw=True)
    assert h.pipeline.wants_raw()
    h.pipeline.reply(b"v", b"$1\r\nv\r\n")
    assert future.result() == b"$1\r\nv\r\n"


def test_a_reply_nobody_is_owed_is_a_protocol_error(loop: asyncio.AbstractEventLoop) -> None:
    h = Harness(loop)
    with pytest.raises(ProtocolError):
        h.reply(Status(b"OK"))


def test_commands_after_a_blocking_one_wait_for_its_reply(
        loop: asyncio.AbstractEventLoop) -> None:
    h = Harness(loop)
    blpop = h.send_tracked("BLPOP q 0")
    get = h.send_tracked("GET k")
    assert h.written() == wire("BLPOP q 0")  # GET is held back: it could run mid-section
    assert not h.pipeline.must_wait()  # an atomic section does not wait for BLPOP
    h.reply([b"q", b"x"])
    assert h.written() == wire("GET k")  # released by the reply
    assert h.pipeline.must_wait()
    h.reply(b"v")
    assert results([blpop, get]) == [[b"q", b"x"], b"v"]


def test_client_reply_off_and_skip_send_no_reply(loop: asyncio.AbstractEventLoop) -> None:
    h = Harness(loop)
    assert h.send_tracked("CLIENT REPLY SKIP") is None
    assert h.send_tracked("SET a 1") is None  # the skipped one
    get = h.send_tracked("GET a")
    assert h.send_tracked("CLIENT REPLY OFF") is None
    assert h.send_tracked("SET b 2") is None
    on = h.send_tracked("CLIENT REPLY ON")
    assert len(h.pipeline.pending) == 2
    h.reply(b"1", Status(b"OK"))
    assert results([get, on]) == [b"1", Status(b"OK")]


def test_a_subscription_ends_with_the_marker(loop: asyncio.AbstractEventLoop) -> None:
    h = Harness(loop)
    ok = h.send_tracked("SUBSCRIBE news")
    refused = h.send_tracked("SUBSCRIBE other")
    assert h.written() == wire("SUBSCRIBE news", f"PING {MARKER.decode()}",
                               "SUBSCRIBE other", f"PING {MARKER.decode()}")
    assert h.pipeline.wants_raw()  # (its error is kept with its bytes)
    h.reply(MARKER)  # success: pushes only (the connection hands those out), then the marker
    h.reply(ErrorReply("NOPERM no"), MARKER)
    assert results([ok, refused]) == [NO_REPLY, ErrorReply("NOPERM no")]


def test_select_and_exec_follow_the_database(loop: asyncio.AbstractEventLoop) -> None:
    h = Harness(loop)
    h.send_tracked("SELECT 3")
    h.reply(Status(b"OK"))
    assert (h.pipeline.db, h.dbs) == (3, [3])
    for line in ("MULTI", "SELECT 5", "SET a 1", "EXEC"):
        h.send_tracked(line)
    assert h.pipeline.queued == [] and not h.pipeline.in_multi  # EXEC took the queue
    h.reply(Status(b"OK"), Status(b"QUEUED"), Status(b"QUEUED"))
    h.reply([Status(b"OK"), Status(b"OK")])
    assert (h.pipeline.db, h.dbs) == (5, [3, 5])


def test_reset_goes_home_and_logs_in_again(loop: asyncio.AbstractEventLoop) -> None:
    h = Harness(loop)
    h.send_tracked("SELECT 2")
    h.reply(Status(b"OK"))
    reset = h.send_tracked("RESET")
    assert h.written().endswith(wire("RESET", "HELLO 3"))
    h.reply(Status(b"RESET"), {b"proto": 3})
    assert reset is not None and reset.result() == Status(b"RESET")
    assert (h.pipeline.db, h.dbs) == (0, [2, 0])


def test_fail_answers_everything_owed(loop: asyncio.AbstractEventLoop) -> None:
    h = Harness(loop)
    blpop = h.send_tracked("BLPOP q 0")
    held = h.send_tracked("GET k")
    h.pipeline.fail("ERR gone")
    assert results([blpop, held]) == [ErrorReply("ERR gone"), ErrorReply("ERR gone")]
    assert not h.pipeline.pending and not h.pipeline.later and not h.pipeline.out
