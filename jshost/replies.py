"""Typed Redis reply values: the one vocabulary shared by the RESP layer, the stores and the host.

A reply is made of plain Python values where the type is unambiguous, and of the small marker
types below where RESP3 tells apart things Python would fold together:

| RESP3 type        | Python value                                   |
|-------------------|------------------------------------------------|
| simple string `+` | `Status` (a `bytes` subclass)                  |
| bulk string `$`   | `bytes`                                        |
| error `-`         | `ErrorReply` (a `str` subclass: the text without `-`) |
| integer `:`       | `int`                                          |
| double `,`        | `float`                                        |
| boolean `#`       | `bool`  (test for `bool` before `int`!)        |
| null `_` / `$-1`  | `None`                                         |
| array `*`         | `list`                                         |
| map `%`           | `dict` (insertion order = wire order)          |
| set `~`           | `SetReply` (a `list` subclass: wire order, duplicates kept) |
| verbatim `=`      | `Verbatim` (a `bytes` subclass with `.format`, e.g. ``"txt"``) |
| big number `(`    | `BigNumber` (a `str` subclass holding the digits) |
| push `>`          | `Push` (a `list` subclass)                     |

What a command handler returns is a `Result`: a reply known now (`Immediate`: a reply, a
`RawReply` already encoded, or `NO_REPLY`), a reply to come (an `asyncio.Future` its client waits
for, or a `Pipelined` one it need not wait for), or `CloseAfter` (the reply, then the
connection closes). `jshost.connection` tells them apart by type and `jshost.ordering` puts
them in order.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any, Final, TypeAlias

from jshost.errors import ReplyError, ServerErrors

log = logging.getLogger("jshost.server")


class Status(bytes):
    """A simple-string reply (`+OK`)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return f"Status({bytes(self)!r})"


class ErrorReply(str):
    """An error reply; the text is what follows the `-` (its first word is the error code)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return f"ErrorReply({str(self)!r})"


class SetReply(list[Any]):
    """A RESP3 set reply (`~`); sent as a plain array to RESP2 clients."""

    __slots__ = ()

    def __repr__(self) -> str:
        return f"SetReply({list(self)!r})"


class Push(list[Any]):
    """A RESP3 push message (`>`), e.g. a pub/sub message; an array in RESP2."""

    __slots__ = ()

    def __repr__(self) -> str:
        return f"Push({list(self)!r})"


class Verbatim(bytes):
    """A RESP3 verbatim string (`=`); RESP2 clients get the text as a bulk string."""

    format: str

    def __new__(cls, data: bytes, format: str = "txt") -> Verbatim:
        obj = super().__new__(cls, data)
        obj.format = format
        return obj

    def __repr__(self) -> str:
        return f"Verbatim({bytes(self)!r}, format={self.format!r})"


class BigNumber(str):
    """A RESP3 big number (`(`), kept as its decimal text."""

    __slots__ = ()

    def __repr__(self) -> str:
        return f"BigNumber({str(self)!r})"


OK = Status(b"OK")

#: The union, for annotations. Containers hold replies; their items are `Any` because `list` and
#: `dict` are invariant (a `list[bytes]` is not a `list[Reply]`).
Reply: TypeAlias = None | bool | int | float | bytes | str | list[Any] | dict[Any, Any]


class RawReply(bytes):
    """A reply already encoded for its client's protocol; written as it is.

    Used where the typed vocabulary above cannot say what Redis sends, e.g. the RESP2 null array
    ``*-1`` (BLPOP timeout, EXEC after a WATCH failure), and for a backend Redis's reply bytes.
    """

    __slots__ = ()


class NoReply:
    """Type of `NO_REPLY`."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "NO_REPLY"


#: What a command that sends no reply of its own gives: SUBSCRIBE and its family (their
#: confirmations arrive as pushes), SHUTDOWN, and commands under `CLIENT REPLY OFF|SKIP`.
NO_REPLY: Final = NoReply()

#: What a store session gives for a command: its reply, or `NO_REPLY` (SUBSCRIBE and co.).
StoreReply: TypeAlias = Reply | NoReply

#: A reply known when its command returns.
Immediate: TypeAlias = Reply | RawReply | NoReply


class Pending:
    """A reply to come: the future of a command's outcome, and how to make the client's reply of
    its result (`shape`, applied on success)."""

    __slots__ = ("done", "future", "shape")

    def __init__(
        self, future: asyncio.Future[Any], shape: Callable[[Any], Immediate] | None = None
    ) -> None:
        self.future = future
        self.shape = shape
        #: Whether the reply is in (the future's own method: no Python call on the hot path).
        self.done: Callable[[], bool] = future.done

    def reply(self) -> Immediate:
        """The reply for the client, once `future` is done."""
        future = self.future
        if self.shape is None or future.cancelled() or future.exception() is not None:
            return outcome(future)
        return self.shape(future.result())


class Pipelined(Pending):
    """The reply to come of a pipelined command (run in order on a backend connection): unlike
    a plain future, its client's next commands may run before it is in."""

    __slots__ = ()


class CloseAfter:
    """A reply after which the connection closes (QUIT): later commands are not run."""

    __slots__ = ("reply",)

    def __init__(self, reply: Immediate) -> None:
        self.reply = reply


#: What a command handler returns (see the module docstring).
Result: TypeAlias = Immediate | Pipelined | CloseAfter | asyncio.Future[Any]


def outcome(future: asyncio.Future[Any]) -> Immediate:
    """The reply a finished future stands for: its result, or its error as an error reply."""
    if future.cancelled():
        return ErrorReply(ServerErrors.SHUTTING_DOWN)
    exc = future.exception()
    if exc is None:
        return future.result()  # type: ignore[no-any-return]
    if isinstance(exc, ReplyError):
        return ErrorReply(exc.text)
    log.error("a blocked command failed", exc_info=exc)
    return ErrorReply(ServerErrors.INTERNAL_ERROR.format(type(exc).__name__))
