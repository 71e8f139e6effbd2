"""Sans-I/O RESP2/RESP3 protocol layer: state machines fed with bytes (in the style of h11).

Nothing here touches sockets, asyncio or command semantics. The work is done natively, in the
Rust extension (`jshost._engine.resp`, source in ``native/src/resp/``); this module is the one
way Python reaches it, and the home of its Python vocabulary (the exceptions, `NEED_DATA`, the
reply types of `jshost.replies` and the texts of `jshost.errors`, handed to the extension once,
below). Three parts:

* `RequestParser` (server side): client bytes -> commands (``list[bytes]``). It mirrors Redis 7
  ``processMultibulkBuffer`` / ``processInlineBuffer`` (networking.c), including their limits,
  their exact protocol error texts and their quirks, checked against a real redis-server 7.0.
  ``feed_and_take(data, n)`` parses a whole read buffer in one call. Its owner sets
  ``unauthenticated`` (Redis' pre-AUTH limits: 10 arguments, 16 KiB bulks) and may set
  ``check_bulk(argv_so_far, length) -> str | None``, asked about each bulk over 64 KiB whose
  header arrives before the bulk does: a text refuses the bulk (a protocol error) before it is
  buffered.
* `ReplyParser` (client side): bytes from a Redis server -> typed replies (`jshost.replies`),
  RESP2 and RESP3, optionally with the exact raw bytes of each top-level reply; `split_reply`
  only finds where a reply ends.
* Encoding: `encode` / `encode_into` (typed reply -> wire bytes for a RESP2 or RESP3 client),
  `encode_command` (a request for a real Redis) and `format_double` (Redis 7.2 ``d2string``).

Wire format reminder (every line ends with CRLF)::

    request   *3\\r\\n$3\\r\\nSET\\r\\n$1\\r\\nk\\r\\n$1\\r\\nv\\r\\n   or inline   SET k v\\r\\n
    +OK  -ERR text  :42  $5\\r\\nhello  $-1  *2 ...  *-1          (RESP2)
    _  ,3.5  #t  (12345678901234567890  =7\\r\\ntxt:abc  %1 ...  ~2 ...  >3 ...  |1 ... (RESP3)

A parser raises `ProtocolError` on malformed input; the caller then writes ``exc.reply`` (request
side) and closes the connection. The error is sticky: every later call raises it again.

The pure-Python implementation this replaced lives on as ``tests/resp_oracle.py``, the oracle of
the differential tests (``tests/fuzz/test_resp_differential.py``, ``python -m bench.fuzz``).
"""

from __future__ import annotations

from typing import Final

from jshost._engine import resp as _native

from .errors import ProtocolErrors
from .replies import BigNumber, ErrorReply, Push, SetReply, Status, Verbatim

# --- Limits (Redis 7 defaults; defined with the native parsers) ---------------------------------

PROTO_INLINE_MAX_SIZE: Final[int] = _native.PROTO_INLINE_MAX_SIZE  # also caps a header line
PROTO_MAX_BULK_LEN: Final[int] = _native.PROTO_MAX_BULK_LEN  # proto-max-bulk-len
# Redis 7 accepts up to INT_MAX arguments (the 1M cap is Redis <= 6.2); verified on 7.0.15.
MAX_MULTIBULK_LEN: Final[int] = _native.MAX_MULTIBULK_LEN
CLIENT_QUERY_BUFFER_LIMIT: Final[int] = (
    _native.CLIENT_QUERY_BUFFER_LIMIT
)  # client-query-buffer-limit
# Before AUTH (when a password is required), as Redis since CVE-2021-32675: an unauthenticated
# client can make the server hold at most about 10 x 16 KiB.
UNAUTH_MAX_MULTIBULK_LEN: Final[int] = _native.UNAUTH_MAX_MULTIBULK_LEN
UNAUTH_MAX_BULK_LEN: Final[int] = _native.UNAUTH_MAX_BULK_LEN
# Bulks longer than this are shown to `RequestParser.check_bulk` when their header is read.
CHECKED_BULK_LEN: Final[int] = _native.CHECKED_BULK_LEN
MAX_REPLY_DEPTH: Final[int] = _native.MAX_REPLY_DEPTH

# --- Common replies (the same bytes in RESP2 and RESP3) -----------------------------------------

PONG_REPLY: Final = b"+PONG\r\n"
QUEUED_REPLY: Final = b"+QUEUED\r\n"


class RespError(Exception):
    """Base class: after any of these the connection must be closed."""


class ProtocolError(RespError):
    """Malformed input. ``message`` is the exact error text (e.g. ``ERR Protocol error: ...``)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    @property
    def reply(self) -> ErrorReply:
        """The error reply Redis sends before closing (``-<message>\\r\\n`` once encoded)."""
        return ErrorReply(self.message)


class QueryBufferLimitExceeded(RespError):
    """More unparsed request data buffered than the query buffer limit; close without a reply."""


class _NeedData:
    __slots__ = ()

    def __repr__(self) -> str:
        return "NEED_DATA"


NEED_DATA: Final = _NeedData()
"""Returned by `ReplyParser.get_reply` when the buffered bytes do not hold a whole reply."""

_native.configure(
    status=Status,
    error_reply=ErrorReply,
    set_reply=SetReply,
    push=Push,
    verbatim=Verbatim,
    big_number=BigNumber,
    protocol_error=ProtocolError,
    query_buffer_limit_exceeded=QueryBufferLimitExceeded,
    need_data=NEED_DATA,
    texts=ProtocolErrors,
)

# --- The native parts, under their names --------------------------------------------------------

RequestParser = _native.RequestParser
"""Client bytes -> commands (``feed``, ``get_command``, iteration, ``take``/``feed_and_take``;
``unauthenticated``, ``check_bulk``)."""
ReplyParser = _native.ReplyParser
"""Bytes from a Redis server -> typed replies (``feed``, ``get_reply``, ``get_reply_with_raw``)."""
split_args = _native.split_args
split_reply = _native.split_reply
format_double = _native.format_double
encode = _native.encode
encode_into = _native.encode_into
encode_command = _native.encode_command
