"""Redis's `DEBUG PROTOCOL <type>` (debug.c), which the embedded store answers itself.

RedisGears' tests call it from JS (`client.call('debug', 'protocol', 'map')`, with
`allow_unsafe_redis_commands`) to see how each RESP3 type reaches JS. The store's sessions speak
RESP3; an attribute or a push ahead of the reply is left out (JS never sees them: only the reply
that follows).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from jshost.errors import StoreErrors
from jshost.replies import BigNumber, ErrorReply, SetReply, Verbatim

_REPLIES: dict[bytes, Callable[[], Any]] = {
    b"string": lambda: b"Hello World",
    b"integer": lambda: 12345,
    b"double": lambda: 3.141,
    b"bignum": lambda: BigNumber("1234567999999999999999999999999999999"),
    b"null": lambda: None,
    b"array": lambda: [0, 1, 2],
    b"set": lambda: SetReply([0, 1, 2]),
    b"map": lambda: {0: False, 1: True, 2: False},
    b"attrib": lambda: b"Some real reply following the attribute",
    b"push": lambda: b"Some real reply following the push reply",
    b"verbatim": lambda: Verbatim(b"This is a verbatim\nstring", "txt"),
    b"true": lambda: True,
    b"false": lambda: False,
}


def debug_protocol(args: list[bytes]) -> Any:
    """The reply to `DEBUG PROTOCOL <type>` (`args` the whole command)."""
    if len(args) != 3:
        return ErrorReply(StoreErrors.DEBUG_WRONG_ARITY)
    reply = _REPLIES.get(args[2].lower())
    if reply is None:
        return ErrorReply(StoreErrors.DEBUG_PROTOCOL_TYPE)
    return reply()
