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
"""

from __future__ import annotations


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


class SetReply(list):
    """A RESP3 set reply (`~`); sent as a plain array to RESP2 clients."""

    __slots__ = ()

    def __repr__(self) -> str:
        return f"SetReply({list(self)!r})"


class Push(list):
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

Reply = (
    None | bool | int | float | bytes | str | list | dict
)  # the union, for annotations
