"""What the host is asked to do, as plain values: the parsed arguments of its commands.

The command grammar (`jshost.commands.grammar`) builds them from the words a client sent; the
CLI, the pytest plugin and tests build them directly. They live on the host side, so that the
host depends on nothing of the protocol layer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from jshost import errors
from jshost.errors import ReplyError


class CallArgs(NamedTuple):
    """RG.FCALL(ASYNC) / TFCALL(ASYNC): `rest` is every word after numkeys (keys, then args).
    (A named tuple, not a frozen dataclass: one is made for every call.)"""

    library: str
    function: str
    numkeys: int
    rest: list[bytes]


@dataclass(frozen=True)
class ListArgs:
    """RG.FUNCTION LIST / TFUNCTION LIST; `library` None means every library."""

    with_code: bool
    verbosity: int
    library: str | None


def check_enough_arguments(call: CallArgs) -> None:
    """The call's check of its argument count: at least `numkeys` words after numkeys (run by
    the host after it has found the function, as RedisGears' `function_call_command` does)."""
    if len(call.rest) < call.numkeys:
        raise ReplyError(errors.not_enough_arguments(call.numkeys, len(call.rest)))
