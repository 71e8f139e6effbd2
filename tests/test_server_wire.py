"""Byte-exact tests of what `jshost serve` writes, for RESP2 and RESP3 clients (raw sockets).

The expected bytes are those Redis 7.2 sends (SPEC §0.3): one row of SPEC §6.3 per JS value,
error texts without `ERR ` and with CR/LF/NUL turned into spaces, HELLO's map, and the RESP2
shapes Redis gives where RESP3 has a richer type.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from server_fixture import RawClient, library, running_server

from jshost.server import Server

pytestmark = pytest.mark.timeout(60)

WIRE_LIB = library(
    r"""
const status = new String('OK'); status.__reply_type = 'status';
const verbatim = new String('text'); verbatim.__reply_type = 'verbatim'; verbatim.__format = 'mkd';
const plainVerbatim = new String('t'); plainVerbatim.__reply_type = 'verbatim';
const values = {
    int: () => 42,
    negint: () => -7,
    bigint: () => 2n ** 40n,
    bigint_wrapped: () => 2n ** 64n + 5n,
    bigint_min: () => 2n ** 63n,
    double: () => 3.5,
    beyond_int32: () => 2147483648,
    neg_zero: () => -0,
    inf: () => Infinity,
    neg_inf: () => -Infinity,
    nan: () => NaN,
    big_exponent: () => 1e21,
    small: () => 1.5e-7,
    string: () => 'h\u00e9llo',
    status: () => status,
    verbatim: () => verbatim,
    verbatim_txt: () => plainVerbatim,
    string_object: () => new String('obj'),
    array_buffer: () => new Uint8Array([0, 255, 10]).buffer,
    null: () => null,
    true: () => true,
    false: () => false,
    set: () => new Set(['a', 1, 'a']),
    array: () => [1, 'two', [null]],
    object: () => ({b: 1, a: 'x', 5: true}),
    map: () => new Map([['k', 'v']]),
    typed_array: () => new Uint8Array([7, 8]),
    undefined: () => undefined,
    bad_key: () => new Set([{}]),
    error_text: () => { throw 'a\r\nb\0c'; },
    error_object: () => { throw new TypeError('bad\nline'); },
};
for (const [name, fn] of Object.entries(values)) {
    redis.register_function(name, fn);
}
""",
    name="w",
)

# (function, RESP2 bytes, RESP3 bytes): SPEC §6.3 in table order, written as Redis would.
CONVERSIONS: list[tuple[str, bytes, bytes]] = [
    # 1 integers
    ("int", b":42\r\n", b":42\r\n"),
    ("negint", b":-7\r\n", b":-7\r\n"),
    ("bigint", b":1099511627776\r\n", b":1099511627776\r\n"),
    ("bigint_wrapped", b":5\r\n", b":5\r\n"),  # cut to the low 64 bits
    ("bigint_min", b":-9223372036854775808\r\n", b":-9223372036854775808\r\n"),
    # 2 doubles (RESP2: bulk string of the formatted number)
    ("double", b"$3\r\n3.5\r\n", b",3.5\r\n"),
    ("beyond_int32", b"$10\r\n2147483648\r\n", b",2147483648\r\n"),
    ("neg_zero", b"$2\r\n-0\r\n", b",-0\r\n"),
    ("inf", b"$3\r\ninf\r\n", b",inf\r\n"),
    ("neg_inf", b"$4\r\n-inf\r\n", b",-inf\r\n"),
    ("nan", b"$3\r\nnan\r\n", b",nan\r\n"),
    ("big_exponent", b"$5\r\n1e+21\r\n", b",1e+21\r\n"),
    ("small", b"$6\r\n1.5e-7\r\n", b",1.5e-7\r\n"),
    # 3 string
    ("string", b"$6\r\nh\xc3\xa9llo\r\n", b"$6\r\nh\xc3\xa9llo\r\n"),
    # 4 String objects
    ("status", b"+OK\r\n", b"+OK\r\n"),
    ("verbatim", b"$4\r\ntext\r\n", b"=8\r\nmkd:text\r\n"),
    ("verbatim_txt", b"$1\r\nt\r\n", b"=5\r\ntxt:t\r\n"),
    ("string_object", b"$3\r\nobj\r\n", b"$3\r\nobj\r\n"),
    # 5 ArrayBuffer
    ("array_buffer", b"$3\r\n\x00\xff\n\r\n", b"$3\r\n\x00\xff\n\r\n"),
    # 6 null
    ("null", b"$-1\r\n", b"_\r\n"),
    # 7 booleans
    ("true", b":1\r\n", b"#t\r\n"),
    ("false", b":0\r\n", b"#f\r\n"),
    # 8 Set (duplicates collapse)
    ("set", b"*2\r\n$1\r\na\r\n:1\r\n", b"~2\r\n$1\r\na\r\n:1\r\n"),
    # 9 Array
    (
        "array",
        b"*3\r\n:1\r\n$3\r\ntwo\r\n*1\r\n$-1\r\n",
        b"*3\r\n:1\r\n$3\r\ntwo\r\n*1\r\n_\r\n",
    ),
    # 10 other objects: maps of the for...in properties, integer-like keys as integers
    (
        "object",
        b"*6\r\n:5\r\n:1\r\n$1\r\nb\r\n:1\r\n$1\r\na\r\n$1\r\nx\r\n",
        b"%3\r\n:5\r\n#t\r\n$1\r\nb\r\n:1\r\n$1\r\na\r\n$1\r\nx\r\n",
    ),
    ("map", b"*0\r\n", b"%0\r\n"),
    ("typed_array", b"*4\r\n:0\r\n:7\r\n:1\r\n:8\r\n", b"%2\r\n:0\r\n:7\r\n:1\r\n:8\r\n"),
    # 11 anything else
    ("undefined", b"$9\r\nundefined\r\n", b"$9\r\nundefined\r\n"),
    # key conversion failure, and errors: the text as is, CR/LF/NUL -> space, no ERR added
    ("bad_key", b"-Give value is not a key\r\n", b"-Give value is not a key\r\n"),
    ("error_text", b"-a  b c\r\n", b"-a  b c\r\n"),
    ("error_object", b"-TypeError: bad line\r\n", b"-TypeError: bad line\r\n"),
]


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    async with running_server() as srv:
        srv.host.load(WIRE_LIB)
        yield srv


async def connect(server: Server, protocol: int) -> RawClient:
    c = await RawClient.connect(server.port)
    if protocol == 3:
        await c.send_commands(["HELLO", "3"])
        await c.reply_raw()
    return c


async def raw(c: RawClient, *args: str | bytes) -> bytes:
    await c.send_commands(args)
    return await c.reply_raw()


@pytest.mark.parametrize("protocol", [2, 3])
async def test_conversions(server: Server, protocol: int) -> None:
    c = await connect(server, protocol)
    try:
        for function, resp2, resp3 in CONVERSIONS:
            got = await raw(c, "RG.FCALL", "w", function, "0")
            assert got == (resp2 if protocol == 2 else resp3), function
    finally:
        await c.close()


@pytest.mark.parametrize("protocol", [2, 3])
async def test_conversions_through_tfcall_and_async_call(server: Server, protocol: int) -> None:
    c = await connect(server, protocol)
    try:
        for function, resp2, resp3 in CONVERSIONS[::4]:
            expected = resp2 if protocol == 2 else resp3
            assert await raw(c, "TFCALL", f"w.{function}", "0") == expected, function
            assert await raw(c, "RG.FCALLASYNC", "w", function, "0") == expected, function
    finally:
        await c.close()


async def test_spec_errors_go_out_without_err_prefix(server: Server) -> None:
    c = await connect(server, 2)
    try:
        assert await raw(c, "RG.FCALL", "nosuch", "f", "0") == b"-Unknown library nosuch\r\n"
        assert await raw(c, "RG.FUNCTION", "LOAD", "x") == (
            b"-Invalid or missing prologue. The rules for the prologue are: a) It starts on the"
            b' first line. b) It is formatted as follows: "#!<engine name> <key>=<value>".\r\n'
        )
        assert await raw(c, "RG.FCALL", "w") == (
            b"-ERR wrong number of arguments for 'rg.fcall' command\r\n"
        )
        bad_load = "#!js api_version=1.0 name=bad\nthrow 'line1\\nline2';"
        assert await raw(c, "RG.FUNCTION", "LOAD", bad_load) == (
            b"-Failed loading library: line1 line2.\r\n"
        )
    finally:
        await c.close()


async def test_hello_replies(server: Server) -> None:
    c = await RawClient.connect(server.port)
    try:
        client_id = int((await raw(c, "CLIENT", "ID"))[1:-2])
        body = (
            b"$6\r\nserver\r\n$5\r\nredis\r\n$7\r\nversion\r\n$5\r\n7.2.4\r\n"
            b"$5\r\nproto\r\n:%d\r\n$2\r\nid\r\n:" + str(client_id).encode() + b"\r\n"
            b"$4\r\nmode\r\n$10\r\nstandalone\r\n$4\r\nrole\r\n$6\r\nmaster\r\n"
            b"$7\r\nmodules\r\n*0\r\n"
        )
        assert await raw(c, "HELLO") == b"*14\r\n" + body % 2
        assert await raw(c, "HELLO", "3") == b"%7\r\n" + body % 3
        assert await raw(c, "HELLO") == b"%7\r\n" + body % 3  # stays on RESP3
        assert await raw(c, "HELLO", "2") == b"*14\r\n" + body % 2
        assert await raw(c, "HELLO", "1") == b"-NOPROTO unsupported protocol version\r\n"
        assert await raw(c, "HELLO", "3", "SETNAME", "a b") == (
            b"-ERR Client names cannot contain spaces, newlines or special characters.\r\n"
        )
    finally:
        await c.close()


async def test_connection_replies(server: Server) -> None:
    c = await connect(server, 2)
    try:
        assert await raw(c, "PING") == b"+PONG\r\n"
        assert await raw(c, "CLIENT", "GETNAME") == b"$-1\r\n"
        assert await raw(c, "NOSUCH", "a") == (
            b"-ERR unknown command 'NOSUCH', with args beginning with: 'a' \r\n"
        )
        await c.send(b"*1\r\n$3\r\nGET\r\n*1\r\n$1")  # a complete command, then a partial one
        assert await c.reply_raw() == b"-ERR wrong number of arguments for 'get' command\r\n"
        await c.send(b"\r\nX\r\n")
        assert await c.reply_raw() == (b"-ERR unknown command 'X', with args beginning with: \r\n")
        await c.send(b"*1\r\n$x\r\n")
        assert await c.reply_raw() == b"-ERR Protocol error: invalid bulk length\r\n"
        assert await c.read_until_closed() == b""
    finally:
        await c.close()


@pytest.mark.parametrize("protocol", [2, 3])
async def test_transaction_replies(server: Server, protocol: int) -> None:
    c = await connect(server, protocol)
    other = await connect(server, protocol)
    try:
        assert await raw(c, "MULTI") == b"+OK\r\n"
        assert await raw(c, "SET", "k", "v") == b"+QUEUED\r\n"
        assert await raw(c, "RG.FCALL", "w", "double", "0") == b"+QUEUED\r\n"
        assert await raw(c, "BLPOP", "nolist", "0") == b"+QUEUED\r\n"
        expected_double = b"$3\r\n3.5\r\n" if protocol == 2 else b",3.5\r\n"
        null_array = b"*-1\r\n" if protocol == 2 else b"_\r\n"
        # BLPOP does not wait inside EXEC: it answers its timeout reply, a null array.
        assert await raw(c, "EXEC") == b"*3\r\n+OK\r\n" + expected_double + null_array
        assert await raw(c, "WATCH", "k") == b"+OK\r\n"
        assert await raw(other, "SET", "k", "changed") == b"+OK\r\n"
        assert await raw(c, "MULTI") == b"+OK\r\n"
        assert await raw(c, "GET", "k") == b"+QUEUED\r\n"
        assert await raw(c, "EXEC") == null_array
        assert await raw(c, "MULTI") == b"+OK\r\n"
        assert await raw(c, "NOSUCH") == (
            b"-ERR unknown command 'NOSUCH', with args beginning with: \r\n"
        )
        assert await raw(c, "EXEC") == (
            b"-EXECABORT Transaction discarded because of previous errors.\r\n"
        )
    finally:
        await c.close()
        await other.close()


@pytest.mark.parametrize("protocol", [2, 3])
async def test_store_replies_in_the_clients_protocol(server: Server, protocol: int) -> None:
    c = await connect(server, protocol)
    try:
        await raw(c, "ZADD", "z", "1.5", "a", "2", "b")
        await raw(c, "HSET", "h", "f", "v")
        await raw(c, "XADD", "s", "1-1", "field", "value")
        zrange = await raw(c, "ZRANGE", "z", "0", "-1", "WITHSCORES")
        hgetall = await raw(c, "HGETALL", "h")
        xread = await raw(c, "XREAD", "STREAMS", "s", "0")
        blpop = await raw(c, "BLPOP", "nolist", "0.01")
        entries = b"*1\r\n*2\r\n$3\r\n1-1\r\n*2\r\n$5\r\nfield\r\n$5\r\nvalue\r\n"
        if protocol == 2:
            assert zrange == b"*4\r\n$1\r\na\r\n$3\r\n1.5\r\n$1\r\nb\r\n$1\r\n2\r\n"
            assert hgetall == b"*2\r\n$1\r\nf\r\n$1\r\nv\r\n"
            assert xread == b"*1\r\n*2\r\n$1\r\ns\r\n" + entries
            assert blpop == b"*-1\r\n"
        else:
            assert zrange == b"*2\r\n*2\r\n$1\r\na\r\n,1.5\r\n*2\r\n$1\r\nb\r\n,2\r\n"
            assert hgetall == b"%1\r\n$1\r\nf\r\n$1\r\nv\r\n"
            assert xread == b"%1\r\n$1\r\ns\r\n" + entries
            assert blpop == b"_\r\n"
    finally:
        await c.close()


async def test_list_reply_bytes(server: Server) -> None:
    c = await connect(server, 3)
    try:
        got = await raw(c, "TFUNCTION", "LIST", "LIBRARY", "w")
        assert got.startswith(
            b"*1\r\n%11\r\n$11\r\napi_version\r\n$3\r\n1.0\r\n$17\r\ncluster_functions\r\n*0\r\n"
            b"$13\r\nconfiguration\r\n_\r\n$6\r\nengine\r\n$2\r\njs\r\n$9\r\nfunctions\r\n"
        )
    finally:
        await c.close()
