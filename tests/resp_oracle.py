"""The pure-Python RESP layer: the oracle of the differential tests of the native one.

This is the RESP layer jshost had before it moved into the Rust extension (`jshost._engine.resp`,
reached through `jshost.resp`). It stays here, under tests/, as the reference the native code
is checked against: the same byte streams (random, hostile, split at random points) must give
the same commands, errors, replies and encodings (`tests/fuzz/test_resp_differential.py`,
`bench/fuzz.py --differential`). It shares only the vocabulary with the product (exception
classes, `NEED_DATA`, limits and error texts, all from `jshost.resp` / `jshost.errors`), so a
bug in one implementation is not hidden by the other.

Changes since it left the product, all mirrored natively: `RequestParser.check_bulk` is asked
only about a long bulk not wholly buffered when its header is read (it was asked on the general
path, whatever was buffered), and a request protocol error is sticky (Redis stops reading such a
client; a bulk refused by `check_bulk` must not pass once the rest of it arrives); commands
parsed ahead are parsed again once ``unauthenticated`` is set (they escaped its limits); a command that follows a big one split across reads is no
longer held back until bytes it does not need arrive (`_need` is reset with every command); a
`ReplyParser` error is sticky for sure (it used to parse again from a half-built state, which
could give garbage instead of the error); a protocol error while a partly read command resumes
no longer appends to the arguments kept (seen when a "too big" error later goes away, as
Redis' quirk allows once more bytes arrive).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from itertools import chain
from typing import Any, Final

from jshost.errors import ProtocolErrors
from jshost.replies import BigNumber, ErrorReply, Push, SetReply, Status, Verbatim
from jshost.resp import (
    CHECKED_BULK_LEN,
    CLIENT_QUERY_BUFFER_LIMIT,
    MAX_MULTIBULK_LEN,
    MAX_REPLY_DEPTH,
    NEED_DATA,
    PROTO_INLINE_MAX_SIZE,
    PROTO_MAX_BULK_LEN,
    UNAUTH_MAX_BULK_LEN,
    UNAUTH_MAX_MULTIBULK_LEN,
    ProtocolError,
    QueryBufferLimitExceeded,
)

ERR_INVALID_MULTIBULK_LENGTH: Final = ProtocolErrors.ERR_INVALID_MULTIBULK_LENGTH
ERR_INVALID_BULK_LENGTH: Final = ProtocolErrors.ERR_INVALID_BULK_LENGTH
ERR_EXPECTED_DOLLAR: Final = ProtocolErrors.ERR_EXPECTED_DOLLAR
ERR_TOO_BIG_INLINE: Final = ProtocolErrors.ERR_TOO_BIG_INLINE
ERR_TOO_BIG_MBULK_COUNT: Final = ProtocolErrors.ERR_TOO_BIG_MBULK_COUNT
ERR_TOO_BIG_BULK_COUNT: Final = ProtocolErrors.ERR_TOO_BIG_BULK_COUNT
ERR_UNBALANCED_QUOTES: Final = ProtocolErrors.ERR_UNBALANCED_QUOTES
ERR_UNAUTH_MBULK_COUNT: Final = ProtocolErrors.ERR_UNAUTH_MBULK_COUNT
ERR_UNAUTH_BULK_LENGTH: Final = ProtocolErrors.ERR_UNAUTH_BULK_LENGTH
MSG_QUERY_BUFFER_LIMIT: Final = ProtocolErrors.MSG_QUERY_BUFFER_LIMIT
ERR_REPLY_BAD_TYPE: Final = ProtocolErrors.ERR_REPLY_BAD_TYPE
ERR_REPLY_BAD_LENGTH: Final = ProtocolErrors.ERR_REPLY_BAD_LENGTH
ERR_REPLY_BAD_VALUE: Final = ProtocolErrors.ERR_REPLY_BAD_VALUE
ERR_REPLY_NO_CRLF: Final = ProtocolErrors.ERR_REPLY_NO_CRLF
ERR_REPLY_TOO_DEEP: Final = ProtocolErrors.ERR_REPLY_TOO_DEEP

_LLONG_MIN: Final = -(2**63)
_LLONG_MAX: Final = 2**63 - 1


def _byte_char(c: int) -> str:
    # Redis prints the raw byte with %c; surrogateescape makes `encode` emit that same byte.
    return bytes((c,)).decode("utf-8", "surrogateescape")


def _string2ll(s: bytes) -> int | None:
    """Redis ``string2ll``: optional ``-``, no ``+``, no spaces, no leading zeros, fits int64."""
    if not s or len(s) >= 21:
        return None
    if s == b"0":
        return 0
    digits = s[1:] if s[0] == 45 else s  # '-'
    if not digits.isdigit() or digits[0] == 48:  # bytes.isdigit is ASCII-only; '0'
        return None
    value = int(s)
    return value if _LLONG_MIN <= value <= _LLONG_MAX else None


# --- Inline command splitting (sdssplitargs) ----------------------------------------------------

_C_SPACE: Final = frozenset(b" \t\n\r\x0b\x0c")  # C isspace() in the "C" locale
_HEX: Final = frozenset(b"0123456789abcdefABCDEF")
_ESCAPES: Final = {ord("n"): 10, ord("r"): 13, ord("t"): 9, ord("b"): 8, ord("a"): 7}
# Bytes where sdssplitargs differs from bytes.split(): quotes, and \v \f (leading blanks only).
_SPLIT_SPECIAL: Final = b"\"'\x0b\x0c"


def split_args(line: bytes) -> list[bytes] | None:
    """Split an inline request line like Redis ``sdssplitargs``; None for unbalanced quotes.

    ``set "a\\x41" 'it\\'s'`` -> ``[b"set", b"aA", b"it's"]``. In double quotes ``\\xHH``, ``\\n``,
    ``\\r``, ``\\t``, ``\\b``, ``\\a`` and ``\\<any>`` are escapes; in single quotes only ``\\'``.
    A closing quote must be followed by a blank or the end. As in C, a NUL byte ends the line.
    """
    nul = line.find(b"\0")
    if nul >= 0:
        line = line[:nul]
    if len(line.translate(None, _SPLIT_SPECIAL)) == len(line):
        return line.split()  # fast path: no quotes, the separators are exactly " \t\r\n"
    return _split_args_quoted(line)


def _split_args_quoted(line: bytes) -> list[bytes] | None:
    n = len(line)

    def at(i: int) -> int:  # C's *(p+i): past the end reads the terminating NUL
        return line[i] if i < n else 0

    args: list[bytes] = []
    p = 0
    while True:
        while p < n and line[p] in _C_SPACE:
            p += 1
        if p >= n:
            return args
        current = bytearray()
        in_dq = in_sq = False
        while True:
            c = at(p)
            if in_dq:
                if c == 92 and at(p + 1) == 120 and at(p + 2) in _HEX and at(p + 3) in _HEX:
                    current.append(int(line[p + 2 : p + 4], 16))  # \xHH
                    p += 3
                elif c == 92 and at(p + 1):
                    p += 1
                    current.append(_ESCAPES.get(line[p], line[p]))
                elif c == 34:  # closing "
                    if at(p + 1) and at(p + 1) not in _C_SPACE:
                        return None
                    p += 1
                    break
                elif not c:
                    return None
                else:
                    current.append(c)
            elif in_sq:
                if c == 92 and at(p + 1) == 39:  # \'
                    p += 1
                    current.append(39)
                elif c == 39:  # closing '
                    if at(p + 1) and at(p + 1) not in _C_SPACE:
                        return None
                    p += 1
                    break
                elif not c:
                    return None
                else:
                    current.append(c)
            elif c in (32, 10, 13, 9, 0):  # only these end an unquoted word (not \v \f)
                break
            elif c == 34:
                in_dq = True
            elif c == 39:
                in_sq = True
            else:
                current.append(c)
            p += 1
        args.append(bytes(current))


# --- Input buffering shared by both parsers -----------------------------------------------------


class _Buffered:
    """Input buffer: ``_buf[_pos:]`` is unparsed; later chunks wait in ``_chunks`` unjoined.

    Joining only when ``_need`` bytes (counted from ``_pos``) are available keeps the cost linear
    when a big bulk or a slow header arrives in many small reads; in the common case a read ends
    on a command boundary and the chunk simply becomes the new buffer, without any copy.
    """

    __slots__ = ("_buf", "_chunks", "_chunks_len", "_need", "_pos")

    def __init__(self) -> None:
        self._buf = b""
        self._pos = 0
        self._chunks: list[bytes] = []
        self._chunks_len = 0
        self._need = 0  # bytes needed from _pos before parsing can make progress

    def _keep(self) -> int:
        """Offset of the first byte that must survive a buffer compaction."""
        return self._pos

    def _rebase(self, offset: int) -> None:
        self._pos -= offset

    def feed(self, data: bytes | bytearray | memoryview) -> None:
        """Append received bytes (copied if mutable)."""
        if self._chunks or self._keep() < len(self._buf):
            chunk = bytes(data)
            self._chunks.append(chunk)
            self._chunks_len += len(chunk)
        else:
            self._rebase(len(self._buf))
            self._buf = bytes(data)

    def _have_enough(self) -> bool:
        """Join waiting chunks if they may complete the next item; False if they cannot yet."""
        if len(self._buf) - self._pos + self._chunks_len < self._need:
            return False
        keep = self._keep()
        self._buf = b"".join((memoryview(self._buf)[keep:], *self._chunks))
        self._rebase(keep)
        self._chunks = []
        self._chunks_len = 0
        self._need = 0
        return True


# --- Server side: requests ----------------------------------------------------------------------


# `RequestParser._parse_batch` token stage: canonical headers it recognizes, and its window.
_TOKEN_MAX_BULK: Final = 1024  # values shorter than this
_TOKEN_MAX_COUNT: Final = 1024  # commands with fewer arguments than this
_TOKEN_HEADERS: Final = [b"$%d" % n for n in range(_TOKEN_MAX_BULK)]
_TOKEN_COUNTS: Final = {b"*%d" % n: n for n in range(1, _TOKEN_MAX_COUNT)}
_TOKEN_WINDOW: Final = 4096


class RequestParser(_Buffered):
    """Client bytes -> commands, exactly like Redis 7 reads a query buffer.

    Usage::

        parser.feed(data)
        for argv in parser:            # or: while (argv := parser.get_command()) is not None
            dispatch(argv)             # argv: list[bytes], never empty

    Multibulk (``*<n>\\r\\n`` then n times ``$<len>\\r\\n<bytes>\\r\\n``) and inline requests (a
    line split by `split_args`) are accepted; ``*0``, ``*-1`` (any count <= 0) and blank inline
    lines are skipped. Redis quirks kept on purpose: the byte after a header's ``\\r`` and the two
    bytes after a bulk are skipped unchecked; a NUL before a header's ``\\r`` or an inline ``\\n``
    hides it (Redis uses strchr), so such a line waits until it is too big. Whether a long line
    is "too big" depends, as in Redis, on how much had arrived when it was looked at.

    While ``unauthenticated`` is set (the connection's owner keeps it in step with AUTH), a
    multibulk of more than 10 arguments or a bulk of more than 16 KiB is a protocol error as
    soon as its header is read, as in Redis: a client that has not authenticated cannot make the
    server buffer more than that.

    ``check_bulk(argv_so_far, length)``, if set, is asked about each bulk longer than 64 KiB
    whose header is read while the bulk is not wholly buffered: a text it returns is raised as a
    protocol error there, before the bulk is buffered (the owner refuses a too big library
    that way).

    ``ProtocolError`` (text in ``.message``) is raised when the bad command is reached, after all
    the commands before it were returned, and again by every later call. `feed` raises
    `QueryBufferLimitExceeded` when the bytes held for unreturned commands (unparsed data plus
    the consumed part of a partly read command) exceed ``query_buffer_limit``.
    """

    __slots__ = (
        "_argv",
        "_bulklen",
        "_ends",
        "_error",
        "_partial",
        "_queue",
        "_remaining",
        "check_bulk",
        "max_bulk_len",
        "max_inline_size",
        "max_multibulk_len",
        "query_buffer_limit",
        "unauthenticated",
    )

    def __init__(
        self,
        *,
        max_bulk_len: int = PROTO_MAX_BULK_LEN,
        max_multibulk_len: int = MAX_MULTIBULK_LEN,
        max_inline_size: int = PROTO_INLINE_MAX_SIZE,
        query_buffer_limit: int = CLIENT_QUERY_BUFFER_LIMIT,
        unauthenticated: bool = False,
    ) -> None:
        super().__init__()
        self.unauthenticated = unauthenticated  # apply the pre-AUTH limits
        self.check_bulk: Callable[[list[bytes], int], str | None] | None = None
        self._error: str | None = None  # the protocol error found: raised again by every call
        self.max_bulk_len = max_bulk_len
        self.max_multibulk_len = max_multibulk_len
        self.max_inline_size = max_inline_size
        self.query_buffer_limit = query_buffer_limit
        # State of a partly read multibulk command.
        self._argv: list[bytes] | None = None
        self._remaining = 0  # arguments still to read
        self._bulklen = -1  # length of the argument being read; -1: its header is not read yet
        self._partial = 0  # bytes consumed since the last returned command
        # Commands parsed ahead by `_parse_batch`, not yet returned: both lists in reverse
        # order, `_ends[i]` the offset just past `_queue[i]`. `_pos` stays at the start of the
        # first of them, so the buffer and the query buffer limit see them as unparsed.
        self._queue: list[list[bytes]] = []
        self._ends: list[int] = []

    def feed(self, data: bytes | bytearray | memoryview) -> None:
        """Append received bytes; raise `QueryBufferLimitExceeded` past the limit."""
        super().feed(data)
        held = len(self._buf) - self._pos + self._chunks_len + self._partial
        if held > self.query_buffer_limit:
            raise QueryBufferLimitExceeded(
                MSG_QUERY_BUFFER_LIMIT.format(held, self.query_buffer_limit)
            )

    def __iter__(self) -> Iterator[list[bytes]]:
        """Iterate over the complete commands buffered so far."""
        return iter(self.get_command, None)

    def get_command(self) -> list[bytes] | None:
        """Return the next complete command, or None if more data is needed."""
        if self._error is not None:
            raise ProtocolError(self._error)
        argv = self._next_command()
        if argv is not None:
            self._need = 0  # what was needed is met: never hold the next command back
        return argv

    def _next_command(self) -> list[bytes] | None:
        queue = self._queue
        if queue and self.unauthenticated:
            # Parsed ahead before the pre-auth limits were switched on (a RESET): parse again.
            queue.clear()
            self._ends.clear()
        if queue:
            self._pos = self._ends.pop()
            return queue.pop()
        if self._chunks and not self._have_enough():
            return None
        data = self._buf
        pos = self._pos
        argv = self._argv
        if argv is None and pos < len(data) and data[pos] == 42 and not self.unauthenticated:
            argv = self._parse_batch(data, pos)
            if argv is not None:
                return argv
        find = data.find
        end = len(data)
        if argv is None:
            while True:  # skip empty commands (*0, *-1, blank inline lines)
                if pos >= end:
                    self._pos = pos
                    self._need = 1
                    return None
                if data[pos] != 42:  # not '*': inline
                    inline = self._inline(data, pos, end)
                    if inline is None:
                        self._pos = pos
                        self._need = end - pos + 1
                        return None
                    argv, pos = inline
                    if argv:
                        self._pos = pos
                        return argv
                    continue
                cr = find(b"\r", pos)
                count = None
                if 0 <= cr < end - 1:  # Redis wants one byte after '\r' and never checks it
                    if cr - pos == 2 and 49 <= data[pos + 1] <= 57:  # fast path: *1 .. *9
                        count = data[pos + 1] - 48
                    else:
                        count = _string2ll(data[pos + 1 : cr])
                    if count is not None and count > self.max_multibulk_len:
                        count = None
                if count is None:
                    self._header_error(data, pos, end, cr, bulk=False)
                    self._pos = pos
                    self._need = end - pos + 1
                    return None
                if count > UNAUTH_MAX_MULTIBULK_LEN and self.unauthenticated:
                    raise self._fail(ERR_UNAUTH_MBULK_COUNT)
                pos = cr + 2
                if count > 0:
                    break
            argv = []
            remaining = count
            bulklen = -1
        else:
            argv = list(argv)  # a copy: a protocol error below must not change what is kept
            remaining = self._remaining
            bulklen = self._bulklen

        max_bulk = self.max_bulk_len
        while remaining:
            if bulklen < 0:
                cr = find(b"\r", pos)
                if 0 <= cr < end - 1 and data[pos] == 36:  # '$'
                    digits = data[pos + 1 : cr]
                    # No sign and no leading zero: exactly what string2ll accepts here.
                    if digits.isdigit() and (digits[0] != 48 or cr - pos == 2):
                        bulklen = int(digits)
                if bulklen < 0 or bulklen > max_bulk:
                    self._header_error(data, pos, end, cr, bulk=True)
                    bulklen = -1
                    self._need = end - pos + 1
                    break
                if bulklen > UNAUTH_MAX_BULK_LEN and self.unauthenticated:
                    raise self._fail(ERR_UNAUTH_BULK_LENGTH)
                pos = cr + 2
                # Not wholly buffered (data and CRLF): the owner may refuse it now.
                if bulklen > CHECKED_BULK_LEN and pos + bulklen + 2 > end and self.check_bulk:
                    problem = self.check_bulk(argv[:], bulklen)
                    if problem is not None:
                        raise self._fail(problem)
            stop = pos + bulklen
            if stop + 2 > end:
                self._need = stop + 2 - pos
                break
            argv.append(data[pos:stop])
            pos = stop + 2  # the CRLF is skipped unchecked, as in Redis
            bulklen = -1
            remaining -= 1
        else:
            self._pos = pos
            if self._argv is not None:  # it was resumed
                self._argv = None
                self._partial = 0
            return argv
        # Incomplete: remember where we are (slow path).
        self._partial += pos - self._pos
        self._pos = pos
        self._argv = argv
        self._remaining = remaining
        self._bulklen = bulklen
        return None

    def _parse_batch(self, data: bytes, pos: int) -> list[bytes] | None:
        """Fast path: parse every complete, plainly well-formed multibulk command from ``pos``.

        Returns the first one (queueing the others) or None. It stops before the first command
        that is not a ``*<n>`` with ``n > 0`` and only ``$<len>`` arguments, all canonical and
        within the limits, and wholly buffered: `get_command`'s general path then handles it,
        with its errors and quirks. What is accepted here is parsed exactly as that path would.
        """
        find = data.find
        end = len(data)
        last = end - 1  # a header's '\r' must be followed by one more (unchecked) byte
        max_bulk = self.max_bulk_len
        max_count = self.max_multibulk_len
        commands: list[list[bytes]] = []
        ends: list[int] = []
        if max_bulk >= _TOKEN_MAX_BULK and max_count >= _TOKEN_MAX_COUNT:
            # Stage 1: split a window into CRLF-separated tokens. A command whose tokens are
            # "*<n>", then n times "$<len(value)>" and a value, is exactly those canonical bytes
            # (the tokens are contiguous and each is followed by a CRLF), so it is taken whole.
            get_count = _TOKEN_COUNTS.get
            header = _TOKEN_HEADERS.__getitem__
            tokens = data[pos : pos + _TOKEN_WINDOW].split(b"\r\n")
            last_token = len(tokens) - 1  # not followed by a CRLF inside the window
            i = 0
            while True:
                count = get_count(tokens[i])
                if count is None:
                    break
                j = i + 1 + 2 * count  # just past the command's tokens
                if j > last_token:
                    if i and pos + _TOKEN_WINDOW < end:  # progress, and more data: next window
                        tokens = data[pos : pos + _TOKEN_WINDOW].split(b"\r\n")
                        last_token = len(tokens) - 1
                        i = 0
                        continue
                    break
                values = tokens[i + 2 : j : 2]
                try:
                    if list(map(header, map(len, values))) != tokens[i + 1 : j : 2]:
                        break
                except IndexError:  # a value of _TOKEN_MAX_BULK bytes or more
                    break
                pos += sum(map(len, tokens[i:j])) + 2 * (j - i)
                commands.append(values)
                ends.append(pos)
                i = j
        # Stage 2: scan the rest in place (long values, values holding CRLFs, past the window).
        while True:
            cr = find(b"\r", pos)
            if not 0 <= cr < last or data[pos] != 42:  # '*'
                break
            if cr - pos == 2:
                count = data[pos + 1] - 48
                if not 0 < count <= 9:
                    break
            else:
                digits = data[pos + 1 : cr]
                if not digits.isdigit() or digits[0] == 48 or len(digits) > 18:
                    break
                count = int(digits)
            if count > max_count:
                break
            p = cr + 2
            argv: list[bytes] = []
            append = argv.append
            for _ in range(count):
                cr = find(b"\r", p)
                if not 0 <= cr < last or data[p] != 36:  # '$'
                    break
                if cr - p == 2:
                    n = data[p + 1] - 48
                    if not 0 <= n <= 9:
                        break
                else:
                    digits = data[p + 1 : cr]
                    if not digits.isdigit() or digits[0] == 48:
                        break
                    n = int(digits)
                if n > max_bulk:
                    break
                p = cr + 2
                stop = p + n
                if stop + 2 > end:
                    break
                append(data[p:stop])
                p = stop + 2  # the CRLF is skipped unchecked, as in Redis
            else:
                commands.append(argv)
                ends.append(p)
                pos = p
                continue
            break
        if not commands:
            return None
        first = commands[0]
        self._pos = ends[0]
        if len(commands) > 1:
            commands.reverse()
            ends.reverse()
            commands.pop()
            ends.pop()
            self._queue = commands
            self._ends = ends
        return first

    def _fail(self, message: str) -> ProtocolError:
        """The protocol error to raise, kept to be raised again by every later call."""
        self._error = message
        return ProtocolError(message)

    def _header_error(self, data: bytes, pos: int, end: int, cr: int, *, bulk: bool) -> None:
        """Raise Redis's error for the bad or incomplete header line at ``pos``.

        Returns normally when more data may still complete it. ``cr`` is the first CR at or
        after ``pos`` (-1 if none); Redis finds it with strchr, which stops at a NUL.
        """
        if cr >= 0 and data.find(b"\0", pos, cr) >= 0:
            cr = -1
        if cr < 0:
            if end - pos > self.max_inline_size:
                raise self._fail(ERR_TOO_BIG_BULK_COUNT if bulk else ERR_TOO_BIG_MBULK_COUNT)
            return
        if cr >= end - 1:
            return
        if not bulk:
            raise self._fail(ERR_INVALID_MULTIBULK_LENGTH)
        if data[pos] != 36:
            raise self._fail(ERR_EXPECTED_DOLLAR.format(_byte_char(data[pos])))
        raise self._fail(ERR_INVALID_BULK_LENGTH)

    def _inline(self, data: bytes, pos: int, end: int) -> tuple[list[bytes], int] | None:
        """Parse one inline line at ``pos``: (args, next pos), or None if it is incomplete."""
        nl = data.find(b"\n", pos)
        if nl < 0 or data.find(b"\0", pos, nl) >= 0:
            if end - pos > self.max_inline_size:
                raise self._fail(ERR_TOO_BIG_INLINE)
            return None
        args = split_args(data[pos:nl])  # a final '\r' is a blank to split_args: no need to cut it
        if args is None:
            raise self._fail(ERR_UNBALANCED_QUOTES)
        return args, nl + 1


# --- Client side: replies -----------------------------------------------------------------------


_BULKS: Final = frozenset(b"$=!")  # length-prefixed strings
_AGGREGATES: Final = frozenset(b"*%~>|")
_MAP, _ATTR, _ARRAY = 37, 124, 42  # '%', '|', '*'
_CONTAINERS: Final = {42: list, 37: list, 124: list, 126: SetReply, 62: Push}
_EMPTY: Final = {42: list, 37: dict, 126: SetReply, 62: Push}


def _reply_int(s: bytes, what: str = "integer") -> int:
    if s.isdigit() or (s[:1] == b"-" and s[1:].isdigit()):
        return int(s)
    raise ProtocolError(ERR_REPLY_BAD_VALUE.format(what, s))


def _reply_length(s: bytes) -> int:
    if s.isdigit() or s == b"-1":
        return int(s)
    raise ProtocolError(ERR_REPLY_BAD_LENGTH.format(s))


def _hashable(key: Any) -> Any:
    """Map keys may be aggregates on the wire; Python dict keys must be hashable."""
    if isinstance(key, list):
        return tuple(_hashable(k) for k in key)
    if isinstance(key, dict):
        return tuple((_hashable(k), _hashable(v)) for k, v in key.items())
    return key


def _make_map(flat: list[Any]) -> dict[Any, Any]:
    it = iter(flat)
    try:
        return dict(zip(it, it))
    except TypeError:
        it = iter(flat)
        return {_hashable(k): v for k, v in zip(it, it)}


def _line_value(t: int, line: bytes) -> Any:
    """Decode a one-line reply (type byte ``t``, text ``line``)."""
    if t == 43:  # '+'
        return Status(line)
    if t == 58:  # ':'
        return _reply_int(line)
    if t == 45:  # '-'
        return ErrorReply(line.decode("utf-8", "surrogateescape"))
    if t == 95:  # '_'
        if line:
            raise ProtocolError(ERR_REPLY_BAD_VALUE.format("null", line))
        return None
    if t == 44:  # ','  (inf, -inf, nan, 1.5, 1e+21 ...)
        try:
            return float(line)
        except ValueError:
            raise ProtocolError(ERR_REPLY_BAD_VALUE.format("double", line)) from None
    if t == 35:  # '#'
        if line == b"t":
            return True
        if line == b"f":
            return False
        raise ProtocolError(ERR_REPLY_BAD_VALUE.format("boolean", line))
    if t == 40:  # '('
        _reply_int(line, "big number")
        return BigNumber(line.decode("ascii"))
    raise ProtocolError(ERR_REPLY_BAD_TYPE.format(chr(t)))


class ReplyParser(_Buffered):
    """Bytes from a Redis server -> typed replies (see `jshost.replies`), RESP2 and RESP3.

    ``+`` Status, ``-`` / ``!`` ErrorReply (returned, not raised), ``:`` int, ``$`` bytes
    (``$-1`` None), ``*`` list (``*-1`` None), ``_`` None, ``,`` float, ``#`` bool, ``(``
    BigNumber, ``=`` Verbatim (``.format`` = the 3-char prefix), ``%`` dict (aggregate keys become
    tuples), ``~`` SetReply, ``>`` Push. Attributes (``|``) are parsed and dropped: the value after
    them is returned in their place (the raw bytes keep them). RESP3 streamed strings/aggregates
    (``$?``) are not supported (Redis never sends them).

    Parsing is iterative (no recursion) and resumable: partial input gives `NEED_DATA` (or None
    from `get_reply_with_raw`) and later calls continue where it stopped. More than
    ``max_depth`` nested aggregates raise `ProtocolError`.
    """

    __slots__ = ("_error", "_stack", "_start", "max_depth")

    def __init__(self, *, max_depth: int = MAX_REPLY_DEPTH) -> None:
        super().__init__()
        self.max_depth = max_depth
        self._error: str | None = None  # the first protocol error: raised again on every call
        self._stack: list[list[Any]] = []  # open aggregates: [items, total, type byte]
        self._start = 0  # where the current top-level reply begins in _buf

    def _keep(self) -> int:
        return self._start

    def _rebase(self, offset: int) -> None:
        self._pos -= offset
        self._start -= offset

    def get_reply(self) -> Any:
        """Return the next complete reply, or `NEED_DATA`."""
        value = self._next()
        if value is not NEED_DATA:
            self._start = self._pos
        return value

    def get_reply_with_raw(self) -> tuple[Any, bytes] | None:
        """Return ``(value, raw bytes of the whole top-level reply)``, or None if incomplete."""
        value = self._next()
        if value is NEED_DATA:
            return None
        raw = self._buf[self._start : self._pos]
        self._start = self._pos
        return value, raw

    def _next(self) -> Any:
        if self._error is not None:
            raise ProtocolError(self._error)
        if self._chunks and not self._have_enough():  # may move _start: read it afterwards
            return NEED_DATA
        try:
            return self._parse()
        except ProtocolError as exc:
            self._error = exc.message
            raise

    def _parse(self) -> Any:
        data = self._buf
        pos = self._pos
        end = len(data)
        stack = self._stack
        while True:
            nl = data.find(b"\r\n", pos)
            if nl < 0:
                self._pos = pos
                self._need = end - pos + 1
                return NEED_DATA
            t = data[pos]
            if t in _BULKS:
                n = _reply_length(data[pos + 1 : nl])
                if n < 0:
                    if t != 36:  # only $-1 is a null bulk
                        raise ProtocolError(ERR_REPLY_BAD_LENGTH.format(data[pos:nl]))
                    value = None
                    pos = nl + 2
                else:
                    begin = nl + 2
                    stop = begin + n
                    if stop + 2 > end:
                        self._pos = pos  # resume at the header: it is cheap to read again
                        self._need = stop + 2 - pos
                        return NEED_DATA
                    if data[stop : stop + 2] != b"\r\n":
                        raise ProtocolError(ERR_REPLY_NO_CRLF)
                    if t == 36:  # '$'
                        value = data[begin:stop]
                    elif t == 61:  # '=' e.g. "txt:hello"
                        text = data[begin:stop]
                        if n < 4 or text[3] != 58:  # ':'
                            raise ProtocolError(ERR_REPLY_BAD_VALUE.format("verbatim", text))
                        value = Verbatim(text[4:], text[:3].decode("ascii", "replace"))
                    else:  # '!' blob error
                        value = ErrorReply(data[begin:stop].decode("utf-8", "surrogateescape"))
                    pos = stop + 2
            elif t in _AGGREGATES:
                header = data[pos:nl]
                n = _reply_length(header[1:])
                pos = nl + 2
                if n > 0:
                    if len(stack) >= self.max_depth:
                        raise ProtocolError(ERR_REPLY_TOO_DEEP.format(self.max_depth))
                    total = 2 * n if t == _MAP or t == _ATTR else n
                    stack.append([_CONTAINERS[t](), total, t])
                    continue
                if t == _ATTR and n == 0:
                    continue
                if n == 0:
                    value = _EMPTY[t]()
                elif t == _ARRAY:
                    value = None  # RESP2 null array *-1
                else:
                    raise ProtocolError(ERR_REPLY_BAD_LENGTH.format(header))
            else:
                value = _line_value(t, data[pos + 1 : nl])
                pos = nl + 2
            # Attach the value to the open aggregates, closing those that become complete.
            while stack:
                frame = stack[-1]
                items = frame[0]
                items.append(value)
                if len(items) < frame[1]:
                    break
                stack.pop()
                kind = frame[2]
                if kind == _ATTR:
                    break  # dropped: the next value takes the attribute's place
                value = _make_map(items) if kind == _MAP else items
            else:
                self._pos = pos
                return value


def split_reply(buf: bytes | bytearray | memoryview, pos: int = 0) -> int | None:
    """Return the offset just past the complete reply starting at ``buf[pos]``, or None.

    Only counts elements (no values are built, no recursion), so a proxy can forward
    ``buf[pos:end]`` unchanged. Raises `ProtocolError` on an unknown type byte or bad length.
    """
    buf = bytes(buf) if isinstance(buf, memoryview) else buf
    end = len(buf)
    pending = 1  # elements still to read
    while pending:
        nl = buf.find(b"\r\n", pos)
        if nl < 0:
            return None
        t = buf[pos]
        if t in _BULKS or t in _AGGREGATES:
            header = bytes(buf[pos:nl])
            n = _reply_length(header[1:])
            if n < 0 and t != 36 and t != _ARRAY:  # only $-1 and *-1 are nulls
                raise ProtocolError(ERR_REPLY_BAD_LENGTH.format(header))
        if t in _BULKS:
            pos = nl + 2 if n < 0 else nl + n + 4
            if pos > end:
                return None
            if n >= 0 and buf[pos - 2 : pos] != b"\r\n":
                raise ProtocolError(ERR_REPLY_NO_CRLF)
            pending -= 1
        elif t in _AGGREGATES:
            pos = nl + 2
            if t == _ATTR:
                pending += 2 * n  # the value after the attribute still fills the slot
            elif n >= 0:
                pending += (2 * n if t == _MAP else n) - 1
            else:
                pending -= 1
        elif t in b"+-:_,#(":
            pos = nl + 2
            pending -= 1
        else:
            raise ProtocolError(ERR_REPLY_BAD_TYPE.format(chr(t)))
    return pos


# --- Encoding -----------------------------------------------------------------------------------

_TWO_POW_62: Final = float(2**62)


def format_double(x: float) -> str:
    """Format a double like Redis 7.2 ``d2string`` (used for RESP3 ``,`` and RESP2 bulk doubles).

    * ``nan``, ``inf``, ``-inf``, ``-0``, ``0``.
    * Integral values with ``-2**62 <= x <= 2**62`` print as integers (``double2ll`` accepts
      ``[-(LLONG_MAX/2), LLONG_MAX/2]``, which as doubles is exactly ``±2**62``).
    * Anything else: the shortest round-tripping digits (Python's ``repr``; Redis uses Grisu2,
      which agrees except in rare cases) laid out by fpconv's ``emit_digits``, with ``K`` the
      power of ten of the last digit and ``X`` that of the first:

      - ``K >= 0`` and ``K < 8``: integer with ``K`` zeros (``2**63`` -> ``9223372036854776000``);
      - ``K < 0`` and (``K > -7`` or ``|X| < 4``): plain decimal (``0.00001``, ``123456.789``);
      - otherwise ``d.ddde±X``, exponent not padded (``1e+21``, ``1.5e-7``, ``5e-324``).
    """
    if math.isnan(x):
        return "nan"
    if x == math.inf:
        return "inf"
    if x == -math.inf:
        return "-inf"
    if x == 0:
        return "-0" if math.copysign(1.0, x) < 0 else "0"
    if -_TWO_POW_62 <= x <= _TWO_POW_62 and x.is_integer():
        return str(int(x))
    text = repr(x)
    sign = ""
    if text[0] == "-":
        sign = "-"
        text = text[1:]
    mantissa, _, exponent = text.partition("e")
    whole, _, fraction = mantissa.partition(".")
    digits = (whole + fraction).lstrip("0")
    k = (int(exponent) if exponent else 0) - len(fraction)
    significant = digits.rstrip("0")
    k += len(digits) - len(significant)
    digits = significant
    nd = len(digits)
    x10 = k + nd - 1
    if k >= 0 and abs(x10) < nd + 7:
        return sign + digits + "0" * k
    if k < 0 and (k > -7 or abs(x10) < 4):
        offset = nd + k
        if offset <= 0:
            return sign + "0." + "0" * -offset + digits
        return sign + digits[:offset] + "." + digits[offset:]
    head = digits[0] + ("." + digits[1:] if nd > 1 else "")
    return f"{sign}{head}e{'-' if x10 < 0 else '+'}{abs(x10)}"


def _utf8(text: str) -> bytes:
    # surrogateescape restores raw bytes decoded that way (e.g. error texts read from Redis).
    try:
        return text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:  # other lone surrogates (possible in JS strings)
        return text.encode("utf-8", "replace")


def _bulk(out: bytearray, data: bytes) -> None:
    if len(data) < 65536:
        out += b"$%d\r\n%b\r\n" % (len(data), data)
    else:  # avoid an extra copy of big values
        out += b"$%d\r\n" % len(data)
        out += data
        out += b"\r\n"


def _status_text(text: bytes) -> bytes:
    # A CR or LF inside a simple string would corrupt the stream.
    if b"\r" in text or b"\n" in text:
        return text.replace(b"\r", b" ").replace(b"\n", b" ")
    return text


def _error_text(text: str) -> bytes:
    # SPEC §0.3: every CR, LF and NUL in an error text becomes a space.
    data = _utf8(text)
    if b"\r" in data or b"\n" in data or b"\0" in data:
        return data.replace(b"\r", b" ").replace(b"\n", b" ").replace(b"\0", b" ")
    return data


def encode(value: Any, protocol: int = 2) -> bytes:
    """Encode a typed reply for a client speaking RESP ``protocol`` (2 or 3).

    See `encode_into` for the mapping.
    """
    out = bytearray()
    encode_into(out, value, protocol)
    return bytes(out)


def encode_into(out: bytearray, value: Any, protocol: int = 2) -> None:
    """Append the encoding of ``value`` to ``out``; iterative, so any nesting depth works.

    ======================== ===================== ==========================
    value                    RESP2                 RESP3
    ======================== ===================== ==========================
    bytes / bytearray        ``$3\\r\\nabc``         same
    str                      bulk of its UTF-8     same
    int                      ``:42``               same
    bool                     ``:1`` / ``:0``       ``#t`` / ``#f``
    float                    bulk ``format_double``  ``,<format_double>``
    None                     ``$-1``               ``_``
    list / tuple             ``*n``                same
    dict                     ``*2n`` k1 v1 ...     ``%n`` k1 v1 ...
    SetReply / set           ``*n``                ``~n``
    Push                     ``*n``                ``>n``
    Status                   ``+text``             same
    ErrorReply               ``-text``             same
    Verbatim                 bulk of the text      ``=<len+4>\\r\\nfmt:text``
    BigNumber                bulk of the digits    ``(digits``
    ======================== ===================== ==========================

    CR and LF in a Status, and CR, LF and NUL in an ErrorReply, become spaces.
    """
    resp3 = protocol >= 3
    stack: list[Iterator[Any]] = []
    while True:
        t = type(value)
        if t is bytes:
            _bulk(out, value)
        elif t is int:
            out += b":%d\r\n" % value
        elif t is str:
            _bulk(out, _utf8(value))
        elif t is list or t is tuple:
            out += b"*%d\r\n" % len(value)
            if value:
                stack.append(iter(value))
        elif value is None:
            out += b"_\r\n" if resp3 else b"$-1\r\n"
        elif t is Status:
            out += b"+%b\r\n" % _status_text(value)
        elif t is dict:
            out += b"%%%d\r\n" % len(value) if resp3 else b"*%d\r\n" % (2 * len(value))
            if value:
                stack.append(chain.from_iterable(value.items()))
        else:
            _encode_other(out, value, resp3, stack)
        # Next value: continue the innermost unfinished aggregate.
        while stack:
            value = next(stack[-1], stack)  # the stack itself marks exhaustion
            if value is not stack:
                break
            stack.pop()
        else:
            return


def _encode_other(out: bytearray, value: Any, resp3: bool, stack: list[Iterator[Any]]) -> None:
    """The less common types of `encode_into` (subclasses are tested before their bases)."""
    if isinstance(value, bool):
        if resp3:
            out += b"#t\r\n" if value else b"#f\r\n"
        else:
            out += b":1\r\n" if value else b":0\r\n"
    elif isinstance(value, float):
        text = format_double(value).encode()
        if resp3:
            out += b",%b\r\n" % text
        else:
            _bulk(out, text)
    elif isinstance(value, ErrorReply):
        out += b"-%b\r\n" % _error_text(value)
    elif isinstance(value, BigNumber):
        if resp3:
            out += b"(%b\r\n" % value.encode("ascii")
        else:
            _bulk(out, value.encode("ascii"))
    elif isinstance(value, Verbatim):
        if resp3:
            fmt = value.format.encode()
            if len(fmt) != 3:
                raise ValueError(f"verbatim format must be 3 bytes, got {value.format!r}")
            out += b"=%d\r\n%b:%b\r\n" % (len(value) + 4, fmt, value)
        else:
            _bulk(out, bytes(value))
    elif isinstance(value, Status):
        out += b"+%b\r\n" % _status_text(value)
    elif isinstance(value, (bytes, bytearray, memoryview)):
        _bulk(out, bytes(value))
    elif isinstance(value, (SetReply, set, frozenset)):
        out += b"~%d\r\n" % len(value) if resp3 else b"*%d\r\n" % len(value)
        if value:
            stack.append(iter(value))
    elif isinstance(value, Push):
        out += b">%d\r\n" % len(value) if resp3 else b"*%d\r\n" % len(value)
        if value:
            stack.append(iter(value))
    elif isinstance(value, (list, tuple)):
        out += b"*%d\r\n" % len(value)
        if value:
            stack.append(iter(value))
    elif isinstance(value, dict):
        out += b"%%%d\r\n" % len(value) if resp3 else b"*%d\r\n" % (2 * len(value))
        if value:
            stack.append(chain.from_iterable(value.items()))
    elif isinstance(value, int):
        out += b":%d\r\n" % value
    elif isinstance(value, str):
        _bulk(out, _utf8(value))
    else:
        raise TypeError(f"cannot encode {type(value).__name__} as a RESP reply")


def encode_command(args: list[bytes | str | int | float]) -> bytes:
    """Encode a request for a Redis server: ``*<n>\\r\\n`` then ``$<len>\\r\\n<arg>\\r\\n`` each.

    str is sent as UTF-8, int as its decimal digits, float with ``repr`` (Redis parses it).
    """
    parts = [b"*%d\r\n" % len(args)]
    for arg in args:
        if isinstance(arg, (bytes, bytearray, memoryview)):
            data = bytes(arg)
        elif isinstance(arg, str):
            data = _utf8(arg)
        elif isinstance(arg, bool):  # ambiguous (1/0? true/false?): refuse, like redis-py
            raise TypeError("cannot send a bool as a command argument")
        elif isinstance(arg, (int, float)):
            data = repr(arg).encode()
        else:
            raise TypeError(f"cannot send {type(arg).__name__} as a command argument")
        parts.append(b"$%d\r\n%b\r\n" % (len(data), data))
    return b"".join(parts)
