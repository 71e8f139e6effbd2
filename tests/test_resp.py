"""Tests of the sans-I/O RESP layer (jshost/resp.py).

Request-side expectations marked "redis 7.0.15" were observed on a real redis-server 7.0.15
(networking.c is the same in 7.2 for these paths).
"""

from __future__ import annotations

import gc
import math
import weakref

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jshost import resp
from jshost.errors import ProtocolErrors
from jshost.replies import BigNumber, ErrorReply, Push, SetReply, Status, Verbatim
from jshost.resp import (
    NEED_DATA,
    ProtocolError,
    QueryBufferLimitExceeded,
    ReplyParser,
    RequestParser,
    encode,
    encode_command,
    encode_into,
    format_double,
    split_args,
    split_reply,
)

K64 = 64 * 1024


# --- helpers ------------------------------------------------------------------------------------


def typed(value):
    """A comparable form of a reply that keeps the exact types (Status != bytes, True != 1)."""
    if isinstance(value, dict):
        return ("dict", [(typed(k), typed(v)) for k, v in value.items()])
    if isinstance(value, list):
        return (type(value).__name__, [typed(v) for v in value])
    if isinstance(value, tuple):
        return ("tuple", [typed(v) for v in value])
    if isinstance(value, Verbatim):
        return ("Verbatim", bytes(value), value.format)
    if isinstance(value, float):
        return ("float", repr(value))
    return (type(value).__name__, value)


def parse_requests(data: bytes, chunk: int | None = None, **kwargs) -> tuple[list, str | None]:
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


def parse_replies(data: bytes, chunk: int | None = None, **kwargs) -> list:
    parser = ReplyParser(**kwargs)
    out = []
    pieces = [data] if chunk is None else [data[i : i + chunk] for i in range(0, len(data), chunk)]
    for piece in pieces:
        parser.feed(piece)
        while (value := parser.get_reply()) is not NEED_DATA:
            out.append(value)
    return out


# --- format_double ------------------------------------------------------------------------------

DOUBLES = [
    (0.1, "0.1"),
    (3.5, "3.5"),
    (-1.5, "-1.5"),
    (100.0, "100"),
    (2147483648.0, "2147483648"),
    (1e21, "1e+21"),
    (1e22, "1e+22"),
    (1.5e-7, "1.5e-7"),
    (1e-7, "1e-7"),
    (1e-6, "0.000001"),
    (1e-5, "0.00001"),
    (123456.789, "123456.789"),
    (12345.6789012, "1.23456789012e+4"),  # fpconv: K=-7 and |X|=4 -> exponent form
    (-2.5e-10, "-2.5e-10"),
    (-0.0, "-0"),
    (0.0, "0"),
    (math.nan, "nan"),
    (math.inf, "inf"),
    (-math.inf, "-inf"),
    (2.0**62, "4611686018427387904"),  # double2ll bound is inclusive
    (-(2.0**62), "-4611686018427387904"),
    (2.0**62 + 1024, "4611686018427389000"),  # next double: fpconv, shortest digits + zeros
    (2.0**63, "9223372036854776000"),
    (1e16 + 2, "10000000000000002"),
    (1 / 3, "0.3333333333333333"),
    (5e-324, "5e-324"),
    (1.7976931348623157e308, "1.7976931348623157e+308"),
]


@pytest.mark.parametrize(("value", "text"), DOUBLES)
def test_format_double(value, text):
    assert format_double(value) == text


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_format_double_round_trips_without_padded_exponent(value):
    text = format_double(value)
    assert float(text) == value
    assert "e+0" not in text and "e-0" not in text and "." not in text.partition("e")[2]
    if value.is_integer() and 0 < abs(value) <= 2**62:
        assert text == str(int(value))


# --- RequestParser: valid input -----------------------------------------------------------------

SET_CMD = b"*3\r\n$3\r\nSET\r\n$5\r\nkey:1\r\n$3\r\nval\r\n"

VALID_REQUESTS = [
    (SET_CMD, [[b"SET", b"key:1", b"val"]]),
    (SET_CMD * 3, [[b"SET", b"key:1", b"val"]] * 3),
    (b"*2\r\n$0\r\n\r\n$10\r\n0123456789\r\n", [[b"", b"0123456789"]]),
    (b"*1\r\n$4\r\nPI\r\n\r\n", [[b"PI\r\n"]]),  # bulk data is binary
    # redis 7.0.15 quirks: the byte after a header's \r and the 2 bytes after a bulk are skipped
    (b"*1\rX$4\r\nPING\r\n", [[b"PING"]]),
    (b"*1\r\n$4\r\nPINGxx*1\r\n$4\r\nPING\r\n", [[b"PING"], [b"PING"]]),
    # counts <= 0 are skipped (redis 7.0.15)
    (b"*-1\r\nPING\r\n", [[b"PING"]]),
    (b"*0\r\n*0\r\nPING\r\n", [[b"PING"]]),
    (b"*-5\r\nPING\r\n", [[b"PING"]]),
    (b"*-9223372036854775808\r\nPING\r\n", [[b"PING"]]),
    (b"*10\r\n" + b"$1\r\nx\r\n" * 10, [[b"x"] * 10]),
    # inline (redis 7.0.15)
    (b"PING\r\n", [[b"PING"]]),
    (b"set a b\n", [[b"set", b"a", b"b"]]),
    (b"\r\n\n   \r\nping\r\n", [[b"ping"]]),
    (
        b'set "a\\x41b" \'c\\\'d\'\r\nget "a\\x41b"\n',
        [[b"set", b"aAb", b"c'd"], [b"get", b"aAb"]],
    ),
    (b'echo "\\n\\q\\x4g"\r\n', [[b"echo", b"\nqx4g"]]),
    (b"echo a\x0bb\r\n", [[b"echo", b"a\x0bb"]]),
    (b"\x0b\x0cecho  x\r\n", [[b"echo", b"x"]]),
    (b'echo ""\r\n', [[b"echo", b""]]),
    (b"echo \xff\xfe\r\n", [[b"echo", b"\xff\xfe"]]),
    (b"echo 'a\\\\b'\r\n", [[b"echo", b"a\\\\b"]]),
    (b"ping\rx\n", [[b"ping", b"x"]]),
    (b"echo a\rb\r\n", [[b"echo", b"a", b"b"]]),
    (b"PING\r\n" + SET_CMD + b"PING\n", [[b"PING"], [b"SET", b"key:1", b"val"], [b"PING"]]),
]


@pytest.mark.parametrize(("data", "expected"), VALID_REQUESTS)
def test_request_parser_valid(data, expected):
    assert parse_requests(data) == (expected, None)


@pytest.mark.parametrize(("data", "expected"), VALID_REQUESTS)
def test_request_parser_byte_by_byte(data, expected):
    assert parse_requests(data, chunk=1) == (expected, None)
    assert parse_requests(data, chunk=3) == (expected, None)


@pytest.mark.parametrize(
    "data",
    [
        b"*3\r\n$3\r\nSET\r\n$5\r\nkey:1\r\n$3\r\nval\r",
        b"*3\r\n$3\r\nSET\r\n$5\r\nkey",
        b"*3\r\n$3",
        b"*3\r\n$3\r",
        b"*1\r",
        b"*",
        b"PING\r",
        b"set 'a b",
        b"*1\r\n$536870912\r\n",  # exactly proto-max-bulk-len: accepted, waits for the data
        b"*2147483647\r\n",  # INT_MAX arguments accepted (redis 7.0.15)
        b"*1048577\r\n",
        b"a" * K64,  # an inline request may be exactly 64 KiB without its newline
    ],
)
def test_request_parser_incomplete(data):
    parser = RequestParser()
    parser.feed(data)
    assert parser.get_command() is None
    assert parser.get_command() is None


def test_request_parser_resumes_after_incomplete():
    parser = RequestParser()
    parser.feed(SET_CMD[:20])
    assert parser.get_command() is None
    parser.feed(SET_CMD[20:] + b"PI")
    assert parser.get_command() == [b"SET", b"key:1", b"val"]
    assert parser.get_command() is None
    parser.feed(b"NG\r\n")
    assert list(parser) == [[b"PING"]]


def test_request_parser_copies_mutable_input():
    data = bytearray(SET_CMD[:10])
    parser = RequestParser()
    parser.feed(data)
    parser.feed(memoryview(SET_CMD[10:]))
    data[:] = b"X" * len(data)
    assert parser.get_command() == [b"SET", b"key:1", b"val"]


def test_request_parser_args_are_bytes():
    parser = RequestParser()
    parser.feed(bytearray(SET_CMD))
    assert all(type(arg) is bytes for arg in parser.get_command())


def test_request_parser_big_bulk_in_small_chunks_is_joined_once():
    value = bytes(range(256)) * 4096  # 1 MiB
    data = encode_command([b"SET", b"k", value])
    parser = RequestParser()
    pieces = [data[i : i + 1000] for i in range(0, len(data), 1000)]
    for piece in pieces[:-1]:
        parser.feed(piece)
        assert parser.get_command() is None
        assert len(parser._buf) < 2000  # chunks wait unjoined until the bulk can be complete
    parser.feed(pieces[-1])
    assert parser.get_command() == [b"SET", b"k", value]


# --- RequestParser: errors ----------------------------------------------------------------------

INVALID_MB = ProtocolErrors.ERR_INVALID_MULTIBULK_LENGTH
INVALID_BULK = ProtocolErrors.ERR_INVALID_BULK_LENGTH

ERROR_REQUESTS = [
    # (input, commands returned before the error, error text) -- all as in redis 7.0.15
    (b"*-0\r\n", [], INVALID_MB),
    (b"*01\r\n", [], INVALID_MB),
    (b"*+1\r\n", [], INVALID_MB),
    (b"* 1\r\n", [], INVALID_MB),
    (b"*\r\n", [], INVALID_MB),
    (b"*1x\r\n", [], INVALID_MB),
    (b"*2147483648\r\n", [], INVALID_MB),
    (b"*-9223372036854775809\r\n", [], INVALID_MB),
    (b"*" + b"1" * 30 + b"\r\n", [], INVALID_MB),
    (b"*1\r\n$-1\r\n", [], INVALID_BULK),
    (b"*1\r\n$01\r\n", [], INVALID_BULK),
    (b"*1\r\n$+1\r\n", [], INVALID_BULK),
    (b"*1\r\n$\r\n", [], INVALID_BULK),
    (b"*1\r\n$536870913\r\n", [], INVALID_BULK),
    (b"*1\r\n$" + b"1" * 30 + b"\r\n", [], INVALID_BULK),
    (b"*1\r\n:1\r\n", [], "ERR Protocol error: expected '$', got ':'"),
    (b"*1\r\n$4\r\nPING\r\n*1\r\n+x\r\n", [[b"PING"]], "ERR Protocol error: expected '$', got '+'"),
    (b"*2\r\n$4\r\nECHO\r\n*1\r\n", [], "ERR Protocol error: expected '$', got '*'"),
    (b'echo "a"b\r\n', [], ProtocolErrors.ERR_UNBALANCED_QUOTES),
    (b"echo 'a\r\n", [], ProtocolErrors.ERR_UNBALANCED_QUOTES),
    (b'echo "a\\"\r\n', [], ProtocolErrors.ERR_UNBALANCED_QUOTES),
    (b'echo a"b c"d\r\n', [], ProtocolErrors.ERR_UNBALANCED_QUOTES),
    (b"PING\r\necho 'x\n", [[b"PING"]], ProtocolErrors.ERR_UNBALANCED_QUOTES),
    (b"a" * (K64 + 1), [], ProtocolErrors.ERR_TOO_BIG_INLINE),
    (b"*" + b"1" * K64, [], ProtocolErrors.ERR_TOO_BIG_MBULK_COUNT),
    (b"*1\r\n$" + b"1" * K64, [], ProtocolErrors.ERR_TOO_BIG_BULK_COUNT),
    (b"*1\r\n" + b"x" * (K64 + 1), [], ProtocolErrors.ERR_TOO_BIG_BULK_COUNT),
    (b"*1\r\n$4\r\nPING\r\n" + b"x" * (K64 + 1), [[b"PING"]], ProtocolErrors.ERR_TOO_BIG_INLINE),
    # a NUL hides the delimiter from Redis's strchr: the line waits until it is too big
    (b"*1\x00\r\n" + b"x" * K64, [], ProtocolErrors.ERR_TOO_BIG_MBULK_COUNT),
    (b"*1\r\n$\x004\r\n" + b"x" * K64, [], ProtocolErrors.ERR_TOO_BIG_BULK_COUNT),
    (b"*1\r\n\x00\r\n" + b"x" * K64, [], ProtocolErrors.ERR_TOO_BIG_BULK_COUNT),
    (b"ping\x00 x\r\n" + b"x" * K64, [], ProtocolErrors.ERR_TOO_BIG_INLINE),
]


@pytest.mark.parametrize(("data", "before", "error"), ERROR_REQUESTS)
def test_request_parser_errors(data, before, error):
    assert parse_requests(data) == (before, error)


@pytest.mark.parametrize(("data", "before", "error"), ERROR_REQUESTS)
def test_request_parser_errors_in_chunks(data, before, error):
    chunk = 1 if len(data) < 100 else 4096
    assert parse_requests(data, chunk=chunk) == (before, error)


@pytest.mark.parametrize(
    "data", [b"*1\x00\r\n", b"*1\r\n$\x004\r\n", b"*1\r\n\x00\r\n", b"ping\x00 x\r\n"]
)
def test_request_parser_nul_before_delimiter_waits(data):
    parser = RequestParser()
    parser.feed(data)
    assert parser.get_command() is None


def test_protocol_error_reply_is_exact_on_the_wire():
    # redis 7.0.15: "-ERR Protocol error: expected '$', got ' '" for a CR, the raw byte for 0xE9
    for data, wire in [
        (b"*1\r\n\r\r\n", b"-ERR Protocol error: expected '$', got ' '\r\n"),
        (b"*1\r\n\xe9\r\n", b"-ERR Protocol error: expected '$', got '\xe9'\r\n"),
        (b"*1\r\n$-1\r\n", b"-ERR Protocol error: invalid bulk length\r\n"),
    ]:
        parser = RequestParser()
        parser.feed(data)
        with pytest.raises(ProtocolError) as info:
            parser.get_command()
        assert encode(info.value.reply, 2) == wire
        assert encode(info.value.reply, 3) == wire


def test_request_parser_error_is_sticky():
    parser = RequestParser()
    parser.feed(b"*1\r\n$4\r\nPING\r\n*2\r\n$3\r\nGET\r\n:1\r\n")
    assert parser.get_command() == [b"PING"]
    for _ in range(2):
        with pytest.raises(ProtocolError, match="expected '\\$', got ':'"):
            parser.get_command()
        parser.feed(b"*1\r\n$4\r\nPING\r\n")


def test_request_parser_limits_are_parameters():
    assert parse_requests(b"*1\r\n$10\r\n0123456789\r\n", max_bulk_len=10) == (
        [[b"0123456789"]],
        None,
    )
    assert parse_requests(b"*1\r\n$11\r\n", max_bulk_len=10) == ([], INVALID_BULK)
    assert parse_requests(b"*1\r\n$2\r\n", max_bulk_len=1) == ([], INVALID_BULK)
    assert parse_requests(b"*2\r\n$1\r\na\r\n$1\r\nb\r\n", max_multibulk_len=2)[1] is None
    assert parse_requests(b"*3\r\n", max_multibulk_len=2) == ([], INVALID_MB)
    assert parse_requests(b"a" * 11, max_inline_size=10) == ([], ProtocolErrors.ERR_TOO_BIG_INLINE)
    assert parse_requests(b"a" * 10, max_inline_size=10) == ([], None)


def test_request_parser_defaults():
    parser = RequestParser()
    assert parser.max_bulk_len == 512 * 1024 * 1024
    assert parser.max_multibulk_len == 2**31 - 1
    assert parser.max_inline_size == 64 * 1024
    assert parser.query_buffer_limit == 1024**3


# --- RequestParser: query buffer limit ----------------------------------------------------------


def test_query_buffer_limit_on_unparsed_data():
    parser = RequestParser(query_buffer_limit=100)
    parser.feed(b"*1\r\n$200\r\n" + b"x" * 90)  # exactly 100 bytes: allowed
    assert parser.get_command() is None
    with pytest.raises(QueryBufferLimitExceeded):
        parser.feed(b"x")


def test_query_buffer_limit_counts_consumed_part_of_a_pending_command():
    parser = RequestParser(query_buffer_limit=100)
    first = b"*2\r\n$60\r\n" + b"a" * 60 + b"\r\n"  # 71 bytes, its argument gets extracted
    parser.feed(first + b"$60\r\n")
    assert parser.get_command() is None
    parser.feed(b"b" * 24)  # 76 consumed + 24 buffered = 100
    assert parser.get_command() is None
    with pytest.raises(QueryBufferLimitExceeded):
        parser.feed(b"b")


def test_query_buffer_limit_resets_after_each_command():
    cmd = encode_command([b"SET", b"k", b"v" * 60])
    assert 80 < len(cmd) <= 100
    parser = RequestParser(query_buffer_limit=100)
    for _ in range(5):
        parser.feed(cmd[:50])
        assert parser.get_command() is None
        parser.feed(cmd[50:])
        assert parser.get_command() == [b"SET", b"k", b"v" * 60]


def test_query_buffer_limit_huge_declared_length_does_not_allocate():
    parser = RequestParser(query_buffer_limit=1000)
    parser.feed(b"*1\r\n$536870912\r\n")
    assert parser.get_command() is None
    assert len(parser._buf) < 100
    with pytest.raises(QueryBufferLimitExceeded):
        for _ in range(100):
            parser.feed(b"x" * 100)
            assert parser.get_command() is None


# --- RequestParser: batch fast path (_parse_batch) ----------------------------------------------


def test_batch_queues_commands_and_keeps_them_counted_as_unparsed():
    cmd = encode_command([b"SET", b"k", b"v" * 20])
    parser = RequestParser(query_buffer_limit=3 * len(cmd))
    parser.feed(cmd * 3)
    assert parser.get_command() == [b"SET", b"k", b"v" * 20]
    # The two queued commands still count against the query buffer limit.
    assert len(parser._buf) - parser._pos == 2 * len(cmd)
    parser.feed(b"x" * len(cmd))  # waits in the chunks: the queued commands sit before it
    with pytest.raises(QueryBufferLimitExceeded):
        parser.feed(b"x")


def test_batch_queue_then_more_data_then_error():
    cmd = encode_command([b"GET", b"k"])
    parser = RequestParser()
    parser.feed(cmd * 3 + b"*1\r\n$1\r\n")
    assert parser.get_command() == [b"GET", b"k"]
    parser.feed(b"a\r\n*1\r\n+PING\r\n")
    assert [parser.get_command() for _ in range(3)] == [[b"GET", b"k"], [b"GET", b"k"], [b"a"]]
    with pytest.raises(ProtocolError, match="expected '\\$', got '\\+'"):
        parser.get_command()


@pytest.mark.parametrize(
    "args",
    [
        [b"SET", b"k", b"a\r\nb"],  # a CRLF inside a value
        [b"SET", b"k", b"\r\n"],
        [b"SET", b"k", b"x" * 1023],
        [b"SET", b"k", b"x" * 1024],  # too long for the token stage
        [b"SET", b"k", b"x" * 40000],  # longer than the token window
        [b"x"] * 1023,
        [b"x"] * 1024,  # too many arguments for the token stage
        [b"", b"", b"*1", b"$1"],
    ],
)
@pytest.mark.parametrize("before", [0, 1, 5])
def test_batch_unusual_values_in_a_pipeline(args, before):
    small = [b"PING"]
    wire = encode_command(small) * before + encode_command(args) + encode_command(small) * 2
    expected = [small] * before + [args] + [small] * 2
    assert parse_requests(wire) == (expected, None)
    assert parse_requests(wire, chunk=777) == (expected, None)


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"max_bulk_len": 3}, "ERR Protocol error: invalid bulk length"),
        ({"max_multibulk_len": 2}, "ERR Protocol error: invalid multibulk length"),
    ],
)
def test_batch_respects_small_limits(kwargs, error):
    wire = encode_command([b"GET", b"k"]) * 2 + encode_command([b"SET", b"k", b"four"])
    assert parse_requests(wire, **kwargs) == ([[b"GET", b"k"]] * 2, error)


def test_batch_mixed_with_empty_and_inline_commands():
    wire = encode_command([b"A"]) + b"*0\r\n*-1\r\n" + encode_command([b"B"]) + b"C d\r\n"
    wire += encode_command([b"E"]) * 2
    expected = [[b"A"], [b"B"], [b"C", b"d"], [b"E"], [b"E"]]
    assert parse_requests(wire) == (expected, None)


# --- RequestParser: property test ---------------------------------------------------------------

commands_strategy = st.lists(
    st.lists(st.binary(max_size=40), min_size=1, max_size=6), min_size=1, max_size=12
)


@settings(max_examples=300)
@given(commands=commands_strategy, data=st.data())
def test_encoded_commands_parse_back_in_any_chunking(commands, data):
    wire = b"".join(encode_command(c) for c in commands)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(wire)), max_size=10)))
    parser = RequestParser()
    got = []
    last = 0
    for cut in [*cuts, len(wire)]:
        parser.feed(wire[last:cut])
        last = cut
        got.extend(parser)
    assert got == commands


# --- split_args ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "args"),
    [
        (b"", []),
        (b"   ", []),
        (b"a b  c", [b"a", b"b", b"c"]),
        (b"\ta\tb\t", [b"a", b"b"]),
        (b'"a b" c', [b"a b", b"c"]),
        (b'a"b c"', [b"ab c"]),  # a quote may open inside a word
        (b'"\\x41\\x4a\\x4"', [b"AJx4"]),
        (b'"\\n\\r\\t\\b\\a\\\\\\""', [b'\n\r\t\b\x07\\"']),
        (b"'\\n\\''", [b"\\n'"]),
        (b"a\x0bb \x0cc", [b"a\x0bb", b"c"]),  # \v \f: blanks only when leading
        (b"a\x0cb", [b"a\x0cb"]),
        (b"a\x00b c", [b"a"]),  # C string: a NUL ends the line
        (b'"a"\t"b"', [b"a", b"b"]),
        (b'"a"b', None),
        (b"'a'b", None),
        (b'"abc', None),
        (b"'abc", None),
    ],
)
def test_split_args(line, args):
    assert split_args(line) == args


# --- ReplyParser --------------------------------------------------------------------------------

REPLIES = [
    (b"+OK\r\n", Status(b"OK")),
    (b"+\r\n", Status(b"")),
    (b"-ERR bad thing\r\n", ErrorReply("ERR bad thing")),
    (b"!8\r\nERR a\r\nb\r\n", ErrorReply("ERR a\r\nb")),
    (b":0\r\n", 0),
    (b":-42\r\n", -42),
    (b":9223372036854775807\r\n", 2**63 - 1),
    (b"$5\r\nhel\r\n\r\n", b"hel\r\n"),
    (b"$0\r\n\r\n", b""),
    (b"$-1\r\n", None),
    (b"*-1\r\n", None),
    (b"_\r\n", None),
    (b",3.5\r\n", 3.5),
    (b",-0\r\n", -0.0),
    (b",1e+21\r\n", 1e21),
    (b",inf\r\n", math.inf),
    (b",-inf\r\n", -math.inf),
    (b",nan\r\n", math.nan),
    (b"#t\r\n", True),
    (b"#f\r\n", False),
    (
        b"(3492890328409238509324850943850943825024385\r\n",
        BigNumber("3492890328409238509324850943850943825024385"),
    ),
    (b"(-1\r\n", BigNumber("-1")),
    (b"=15\r\ntxt:Some string\r\n", Verbatim(b"Some string", "txt")),
    (b"=4\r\nmkd:\r\n", Verbatim(b"", "mkd")),
    (b"*0\r\n", []),
    (b"*2\r\n$1\r\na\r\n:1\r\n", [b"a", 1]),
    (b"%0\r\n", {}),
    (b"%2\r\n+a\r\n:1\r\n$1\r\nb\r\n#f\r\n", {Status(b"a"): 1, b"b": False}),
    (b"~0\r\n", SetReply()),
    (b"~2\r\n:1\r\n:1\r\n", SetReply([1, 1])),
    (b">3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$2\r\nhi\r\n", Push([b"message", b"ch", b"hi"])),
    (b">0\r\n", Push()),
    (
        b"*3\r\n*1\r\n*0\r\n%1\r\n~1\r\n_\r\n*1\r\n:2\r\n>1\r\n,1.5\r\n",
        [[[]], {(None,): [2]}, Push([1.5])],  # set key -> tuple
    ),
    (b"%1\r\n*2\r\n:1\r\n:2\r\n+v\r\n", {(1, 2): Status(b"v")}),  # aggregate key -> tuple
    # attributes are dropped; the following value takes their place
    (b"|1\r\n+key-popularity\r\n%1\r\n$1\r\na\r\n,0.19\r\n*2\r\n:2\r\n:3\r\n", [2, 3]),
    (b"*2\r\n|1\r\n+ttl\r\n:3600\r\n$1\r\nx\r\n:7\r\n", [b"x", 7]),
    (b"|0\r\n:1\r\n", 1),
    # an attribute whose value holds an attribute: all of it is dropped
    (b"*1\r\n|1\r\n+a\r\n*1\r\n|1\r\n+b\r\n:1\r\n:2\r\n:3\r\n", [3]),
]


@pytest.mark.parametrize(("data", "expected"), REPLIES)
def test_reply_parser_types(data, expected):
    assert [typed(v) for v in parse_replies(data)] == [typed(expected)]


@pytest.mark.parametrize(("data", "expected"), REPLIES)
def test_reply_parser_byte_by_byte(data, expected):
    parser = ReplyParser()
    for i in range(len(data) - 1):
        parser.feed(data[i : i + 1])
        assert parser.get_reply() is NEED_DATA
    parser.feed(data[-1:])
    assert typed(parser.get_reply()) == typed(expected)
    assert parser.get_reply() is NEED_DATA


def test_reply_parser_raw_bytes_and_split_reply():
    stream = b"".join(data for data, _ in REPLIES)
    for chunk in (None, 1, 7, 64):
        parser = ReplyParser()
        raws = []
        pieces = (
            [stream]
            if chunk is None
            else [stream[i : i + chunk] for i in range(0, len(stream), chunk)]
        )
        for piece in pieces:
            parser.feed(piece)
            while (item := parser.get_reply_with_raw()) is not None:
                raws.append(item)
        assert [raw for _, raw in raws] == [data for data, _ in REPLIES]
        assert [typed(v) for v, _ in raws] == [typed(e) for _, e in REPLIES]
    pos = 0
    for data, _ in REPLIES:
        assert split_reply(data) == len(data)
        assert split_reply(data[:-1]) is None
        assert split_reply(stream, pos) == pos + len(data)
        pos += len(data)


def test_reply_parser_raw_survives_buffer_compaction():
    parser = ReplyParser()
    parser.feed(b":1\r\n+OK\r\n*2\r\n$3\r\nab")
    assert parser.get_reply() == 1
    assert parser.get_reply_with_raw() == (Status(b"OK"), b"+OK\r\n")
    assert parser.get_reply_with_raw() is None
    parser.feed(b"c\r\n")
    parser.feed(b":5\r\n")
    assert parser.get_reply_with_raw() == ([b"abc", 5], b"*2\r\n$3\r\nabc\r\n:5\r\n")


def test_reply_parser_big_bulk_waits_unjoined():
    value = b"v" * 100_000
    data = b"$100000\r\n" + value + b"\r\n"
    parser = ReplyParser()
    pieces = [data[i : i + 1000] for i in range(0, len(data), 1000)]
    for piece in pieces[:-1]:
        parser.feed(piece)
        assert parser.get_reply() is NEED_DATA
        assert len(parser._buf) <= 2000
    parser.feed(pieces[-1])
    assert parser.get_reply_with_raw() == (value, data)


def nested(depth: int) -> bytes:
    return b"*1\r\n" * depth + b":1\r\n"


def test_reply_parser_depth_limit():
    value = parse_replies(nested(1000))[0]
    for _ in range(1000):
        assert type(value) is list and len(value) == 1
        value = value[0]
    assert value == 1
    with pytest.raises(ProtocolError, match="deeper than 1000"):
        parse_replies(nested(1001))
    with pytest.raises(ProtocolError, match="deeper than 3"):
        parse_replies(nested(4), max_depth=3)
    assert parse_replies(nested(3), max_depth=3) == [[[[1]]]]


def test_reply_parser_very_deep_nesting_has_no_recursion():
    depth = 50_000
    value = parse_replies(nested(depth), max_depth=depth)[0]
    for _ in range(depth):
        value = value[0]
    assert value == 1


@pytest.mark.parametrize(
    "data",
    [
        b"?x\r\n",
        b":abc\r\n",
        b":1.5\r\n",
        b"#x\r\n",
        b"_x\r\n",
        b",abc\r\n",
        b"(12a\r\n",
        b"$3\r\nabcXY",
        b"$x\r\n",
        b"$-2\r\n",
        b"=3\r\ntxt\r\n",
        b"=5\r\ntxt;a\r\n",
        b"=-1\r\n",
        b"%-1\r\n",
        b"*-2\r\n",
        b"*1\r\n?\r\n",
    ],
)
def test_reply_parser_protocol_errors(data):
    parser = ReplyParser()
    parser.feed(data)
    with pytest.raises(ProtocolError):
        parser.get_reply()
    parser.feed(b"+OK\r\n")
    with pytest.raises(ProtocolError):  # sticky
        parser.get_reply()


@pytest.mark.parametrize(
    "data", [b"?x\r\n", b"$3\r\nabcXY", b"$-2\r\n", b"%-1\r\n", b"*1\r\n?\r\n"]
)
def test_split_reply_protocol_errors(data):
    with pytest.raises(ProtocolError):
        split_reply(data)


def test_split_reply_accepts_buffer_types():
    data = b"*2\r\n$1\r\na\r\n:1\r\nrest"
    assert split_reply(bytearray(data)) == len(data) - 4
    assert split_reply(memoryview(data)) == len(data) - 4


# --- Encoder ------------------------------------------------------------------------------------

ENCODINGS = [
    # (value, RESP2, RESP3)
    (b"abc", b"$3\r\nabc\r\n", b"$3\r\nabc\r\n"),
    (b"", b"$0\r\n\r\n", b"$0\r\n\r\n"),
    (bytearray(b"ab"), b"$2\r\nab\r\n", b"$2\r\nab\r\n"),
    ("héllo", b"$6\r\nh\xc3\xa9llo\r\n", b"$6\r\nh\xc3\xa9llo\r\n"),
    (42, b":42\r\n", b":42\r\n"),
    (-7, b":-7\r\n", b":-7\r\n"),
    (True, b":1\r\n", b"#t\r\n"),
    (False, b":0\r\n", b"#f\r\n"),
    (3.5, b"$3\r\n3.5\r\n", b",3.5\r\n"),
    (1e21, b"$5\r\n1e+21\r\n", b",1e+21\r\n"),
    (-0.0, b"$2\r\n-0\r\n", b",-0\r\n"),
    (10.0, b"$2\r\n10\r\n", b",10\r\n"),
    (math.inf, b"$3\r\ninf\r\n", b",inf\r\n"),
    (None, b"$-1\r\n", b"_\r\n"),
    ([], b"*0\r\n", b"*0\r\n"),
    ([b"a", 1, None], b"*3\r\n$1\r\na\r\n:1\r\n$-1\r\n", b"*3\r\n$1\r\na\r\n:1\r\n_\r\n"),
    ((1, 2), b"*2\r\n:1\r\n:2\r\n", b"*2\r\n:1\r\n:2\r\n"),
    (
        {b"k": 1, "j": True},
        b"*4\r\n$1\r\nk\r\n:1\r\n$1\r\nj\r\n:1\r\n",
        b"%2\r\n$1\r\nk\r\n:1\r\n$1\r\nj\r\n#t\r\n",
    ),
    ({}, b"*0\r\n", b"%0\r\n"),
    (SetReply([1, 1]), b"*2\r\n:1\r\n:1\r\n", b"~2\r\n:1\r\n:1\r\n"),
    (SetReply(), b"*0\r\n", b"~0\r\n"),
    (frozenset([5]), b"*1\r\n:5\r\n", b"~1\r\n:5\r\n"),
    (Push([b"message"]), b"*1\r\n$7\r\nmessage\r\n", b">1\r\n$7\r\nmessage\r\n"),
    (Status(b"OK"), b"+OK\r\n", b"+OK\r\n"),
    (Status(b"a\r\nb\0"), b"+a  b\0\r\n", b"+a  b\0\r\n"),
    (ErrorReply("ERR x"), b"-ERR x\r\n", b"-ERR x\r\n"),
    (ErrorReply("Unknown\r\nlib\0x\ry"), b"-Unknown  lib x y\r\n", b"-Unknown  lib x y\r\n"),
    (ErrorReply("ERR é"), b"-ERR \xc3\xa9\r\n", b"-ERR \xc3\xa9\r\n"),
    (Verbatim(b"hi", "txt"), b"$2\r\nhi\r\n", b"=6\r\ntxt:hi\r\n"),
    (Verbatim(b"", "mkd"), b"$0\r\n\r\n", b"=4\r\nmkd:\r\n"),
    (
        BigNumber("123456789012345678901234567890"),
        b"$30\r\n123456789012345678901234567890\r\n",
        b"(123456789012345678901234567890\r\n",
    ),
    (
        [[b"x"], {b"k": [True]}],
        b"*2\r\n*1\r\n$1\r\nx\r\n*2\r\n$1\r\nk\r\n*1\r\n:1\r\n",
        b"*2\r\n*1\r\n$1\r\nx\r\n%1\r\n$1\r\nk\r\n*1\r\n#t\r\n",
    ),
]


@pytest.mark.parametrize(("value", "resp2", "resp3"), ENCODINGS)
def test_encode(value, resp2, resp3):
    assert encode(value, 2) == resp2
    assert encode(value, 3) == resp3


def test_encode_into_appends():
    out = bytearray(b"+QUEUED\r\n")
    encode_into(out, [1, b"a"], 3)
    encode_into(out, None, 2)
    assert out == b"+QUEUED\r\n*2\r\n:1\r\n$1\r\na\r\n$-1\r\n"


def test_encode_big_bulk():
    value = b"z" * 100_000
    assert encode(value) == b"$100000\r\n" + value + b"\r\n"


def test_encode_rejects_unknown_types_and_bad_verbatim_format():
    with pytest.raises(TypeError):
        encode(object(), 2)
    with pytest.raises(TypeError):
        encode([1, object()], 3)
    with pytest.raises(ValueError):
        encode(Verbatim(b"x", "text"), 3)


def test_encode_deep_nesting_has_no_recursion():
    depth = 50_000
    value: list = [1]
    for _ in range(depth - 1):
        value = [value]
    wire = encode(value, 3)
    assert wire == nested(depth)


def test_encode_lone_surrogates():
    assert encode("a\udcffb", 3) == b"$3\r\na\xffb\r\n"  # surrogateescape -> the raw byte
    assert encode("a\ud800b", 3) == b"$3\r\na?b\r\n"  # other lone surrogates: replaced


def test_error_text_from_redis_is_forwarded_byte_exact():
    wire = b"-ERR no such key '\xff\xfe'\r\n"
    parser = ReplyParser()
    parser.feed(wire)
    value = parser.get_reply()
    assert type(value) is ErrorReply
    assert encode(value, 3) == wire


def test_common_reply_constants():
    assert resp.PONG_REPLY == encode(Status(b"PONG")) == b"+PONG\r\n"
    assert resp.QUEUED_REPLY == encode(Status(b"QUEUED")) == b"+QUEUED\r\n"


# --- Round trips encode -> ReplyParser ----------------------------------------------------------

ROUND_TRIP = [
    b"bulk",
    "text",
    0,
    -(2**63),
    True,
    False,
    2.5,
    -0.0,
    math.nan,
    math.inf,
    None,
    [],
    [b"a", [1, [None]]],
    {b"k": b"v", b"n": {b"inner": [1, 2]}},
    {},
    SetReply([b"a", 1]),
    Push([b"message", b"chan", b"data"]),
    Status(b"OK"),
    ErrorReply("WRONGTYPE Operation against a key"),
    Verbatim(b"line1\nline2", "txt"),
    BigNumber("-98765432109876543210"),
]

RESP2_FOLDED = [
    b"bulk",
    b"text",
    0,
    -(2**63),
    1,
    0,
    b"2.5",
    b"-0",
    b"nan",
    b"inf",
    None,
    [],
    [b"a", [1, [None]]],
    [b"k", b"v", b"n", [b"inner", [1, 2]]],
    [],
    [b"a", 1],
    [b"message", b"chan", b"data"],
    Status(b"OK"),
    ErrorReply("WRONGTYPE Operation against a key"),
    b"line1\nline2",
    b"-98765432109876543210",
]


@pytest.mark.parametrize(("value", "folded"), list(zip(ROUND_TRIP, RESP2_FOLDED, strict=True)))
def test_round_trip(value, folded):
    expected3 = value.encode() if type(value) is str else value  # plain str is sent as bulk
    assert [typed(v) for v in parse_replies(encode(value, 3))] == [typed(expected3)]
    assert [typed(v) for v in parse_replies(encode(value, 3), chunk=1)] == [typed(expected3)]
    assert [typed(v) for v in parse_replies(encode(value, 2))] == [typed(folded)]


scalars = st.one_of(
    st.binary(max_size=20),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.booleans(),
    st.floats(),
    st.none(),
    st.binary(max_size=10).map(lambda b: Status(b.replace(b"\r", b"").replace(b"\n", b""))),
    st.text(max_size=10).map(
        lambda s: ErrorReply(s.replace("\r", "").replace("\n", "").replace("\0", ""))
    ),
    st.tuples(st.binary(max_size=10), st.sampled_from(["txt", "mkd"])).map(lambda t: Verbatim(*t)),
    st.integers().map(lambda i: BigNumber(str(i))),
)
replies_strategy = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.lists(children, max_size=4).map(SetReply),
        st.lists(children, max_size=4).map(Push),
        st.dictionaries(st.binary(max_size=5), children, max_size=3),
    ),
    max_leaves=20,
)


@settings(max_examples=300)
@given(values=st.lists(replies_strategy, min_size=1, max_size=5), chunk=st.integers(1, 50))
def test_resp3_round_trip_property(values, chunk):
    wire = b"".join(encode(v, 3) for v in values)
    assert [typed(v) for v in parse_replies(wire, chunk=chunk)] == [typed(v) for v in values]
    pos = 0
    for v in values:
        pos = split_reply(wire, pos)
        assert pos is not None
    assert pos == len(wire)


# --- encode_command -----------------------------------------------------------------------------


def test_encode_command():
    assert encode_command(["SET", b"k\r\n", 10, 1.5, "é"]) == (
        b"*5\r\n$3\r\nSET\r\n$3\r\nk\r\n\r\n$2\r\n10\r\n$3\r\n1.5\r\n$2\r\n\xc3\xa9\r\n"
    )
    assert encode_command([]) == b"*0\r\n"
    with pytest.raises(TypeError):
        encode_command([True])
    with pytest.raises(TypeError):
        encode_command([None])


# --- RequestParser: a command after a split bulk ------------------------------------------------


def test_request_parser_command_after_a_split_bulk_is_not_held_back():
    """A big argument arrives in parts, a PING follows it in the same read, then the next read
    starts before the PING was taken (a blocked client): the PING is there at once, not once
    as many bytes as the big argument needed have arrived."""
    parser = RequestParser()
    parser.feed(b"*2\r\n$3\r\nSET\r\n$1000\r\n")
    assert parser.get_command() is None
    parser.feed(b"x" * 1000 + b"\r\nPING\r\n")
    assert parser.get_command() == [b"SET", b"x" * 1000]
    parser.feed(b"P")
    assert parser.get_command() == [b"PING"]


# --- RequestParser: a whole read buffer at once (take, feed_and_take) ---------------------------


def test_feed_and_take_returns_every_complete_command_up_to_the_maximum():
    parser = RequestParser()
    wire = encode_command([b"GET", b"k"]) * 5 + b"PING\r\n*1\r\n$4\r\nPI"
    assert parser.feed_and_take(wire, 3) == [[b"GET", b"k"]] * 3
    assert parser.held == len(wire) - 3 * len(encode_command([b"GET", b"k"]))
    assert parser.take(100) == [[b"GET", b"k"]] * 2 + [[b"PING"]]
    assert parser.feed_and_take(b"NG\r\n", 100) == [[b"PING"]]
    assert parser.take(100) == []
    assert parser.held == 0


def test_take_returns_the_commands_before_a_protocol_error_then_raises_it():
    parser = RequestParser()
    commands = parser.feed_and_take(b"PING\r\nECHO x\r\n*1\r\n:1\r\n", 100)
    assert commands == [[b"PING"], [b"ECHO", b"x"]]
    for _ in range(2):  # sticky, as with get_command
        with pytest.raises(ProtocolError, match="expected '\\$', got ':'"):
            parser.take(100)


def test_take_raises_the_query_buffer_limit_before_parsing():
    parser = RequestParser(query_buffer_limit=10)
    with pytest.raises(QueryBufferLimitExceeded):
        parser.feed_and_take(b"PING\r\nPING\r\n", 100)


# --- check_bulk: the owner may refuse a long bulk by its header ----------------------------------


def test_check_bulk_sees_long_bulks_by_their_header() -> None:
    seen: list[tuple[list[bytes], int]] = []

    def check(argv: list[bytes], length: int) -> str | None:
        seen.append((list(argv), length))
        return "ERR too big" if length > 100_000 else None

    parser = RequestParser()
    parser.check_bulk = check
    value = b"v" * 70_000
    parser.feed(b"*2\r\n$3\r\nSET\r\n$70000\r\n")  # the header first, as from a socket
    assert parser.get_command() is None
    parser.feed(value + b"\r\n")
    assert parser.get_command() == [b"SET", value]
    parser.feed(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$200000\r\n")
    with pytest.raises(ProtocolError) as info:
        parser.get_command()
    assert info.value.message == "ERR too big"
    assert seen == [([b"SET"], 70_000), ([b"SET", b"k"], 200_000)]


def test_short_bulks_are_not_checked() -> None:
    parser = RequestParser()
    parser.check_bulk = lambda argv, length: "ERR never"
    parser.feed(b"*2\r\n$3\r\nGET\r\n$65536\r\n" + b"k" * 65536 + b"\r\n")
    assert parser.get_command() == [b"GET", b"k" * 65536]


def test_a_wholly_buffered_long_bulk_is_not_checked() -> None:
    """The hook is for bulks still to come: one already in the buffer costs nothing more, so
    the common path makes no Python call."""
    parser = RequestParser()
    parser.check_bulk = lambda argv, length: "ERR never"
    parser.feed(b"*2\r\n$3\r\nSET\r\n$70000\r\n" + b"v" * 70_000 + b"\r\n")
    assert parser.get_command() == [b"SET", b"v" * 70_000]


def test_a_refused_bulk_stays_refused_when_the_rest_arrives() -> None:
    parser = RequestParser()
    parser.check_bulk = lambda argv, length: "ERR too big"
    parser.feed(b"PING\r\n*3\r\n$11\r\nRG.FUNCTION\r\n$4\r\nLOAD\r\n$70000\r\n")
    assert parser.get_command() == [b"PING"]
    for _ in range(2):
        with pytest.raises(ProtocolError, match="ERR too big"):
            parser.get_command()
        parser.feed(b"c" * 70_000 + b"\r\n")  # now wholly buffered: still refused
    with pytest.raises(ProtocolError, match="ERR too big"):
        parser.take(10)


def test_an_exception_of_check_bulk_propagates_and_it_is_asked_again() -> None:
    answers = iter([ValueError("boom"), None])

    def check(argv: list[bytes], length: int) -> str | None:
        answer = next(answers)
        if isinstance(answer, Exception):
            raise answer
        return answer

    parser = RequestParser()
    parser.check_bulk = check
    parser.feed(b"*2\r\n$3\r\nSET\r\n$70000\r\n")
    with pytest.raises(ValueError, match="boom"):
        parser.get_command()
    assert parser.get_command() is None  # asked again: accepted, so the bulk is awaited
    parser.feed(b"v" * 70_000 + b"\r\n")
    assert parser.get_command() == [b"SET", b"v" * 70_000]


def test_a_parser_and_an_owner_its_check_bulk_refers_to_are_collected() -> None:
    """The connection hands the parser its own bound method: a reference cycle the garbage
    collector must see through (else every closed connection would stay in memory)."""

    class Owner:
        def __init__(self) -> None:
            self.parser = RequestParser()
            self.parser.check_bulk = self.check

        def check(self, argv: list[bytes], length: int) -> str | None:
            return None

    owner = Owner()
    assert owner.parser.check_bulk == owner.check
    gone = weakref.ref(owner)
    del owner
    gc.collect()
    assert gone() is None


def test_the_pre_auth_limits_apply_from_the_next_command() -> None:
    """A command read after `unauthenticated` is set (a RESET behind a password) gets the
    pre-auth limits, even if its bytes were buffered before: Redis reads one command at a time."""
    parser = RequestParser()
    parser.feed(b"RESET\r\n" + encode_command([b"SET", b"k", b"v" * 20_000]))
    assert parser.get_command() == [b"RESET"]
    parser.unauthenticated = True
    with pytest.raises(ProtocolError, match="unauthenticated bulk length"):
        parser.get_command()


def test_take_returns_the_commands_before_a_failing_check_bulk() -> None:
    """The commands read before the hook failed are not lost: they come, and the next call
    asks the hook again."""
    answers = iter([ValueError("boom"), ValueError("boom")])

    def check(argv: list[bytes], length: int) -> str | None:
        answer = next(answers)
        if isinstance(answer, Exception):
            raise answer
        return answer

    parser = RequestParser()
    parser.check_bulk = check
    assert parser.feed_and_take(b"PING\r\n*2\r\n$3\r\nSET\r\n$70000\r\n", 10) == [[b"PING"]]
    with pytest.raises(ValueError, match="boom"):
        parser.take(10)
    assert parser.feed_and_take(b"v" * 70_000 + b"\r\n", 10) == [[b"SET", b"v" * 70_000]]
