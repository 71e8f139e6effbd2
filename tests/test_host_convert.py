"""Library host: values between replies and JS, and error texts (SPEC §6.1, §6.3, §6.4)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import pytest

from jshost.host.requests import CallArgs
from jshost.replies import (
    BigNumber,
    ErrorReply,
    Push,
    SetReply,
    Status,
    Verbatim,
)
from jshost.store import CommandTable, Session, Store

# --- a store whose `ECHO <name>` answers with a chosen typed reply ------------------------------

CRAFTED: dict[str, Any] = {
    "status": Status(b"OK"),
    "bulk": b"hello",
    "empty": b"",
    "binary": b"\xff\x00",
    "error": ErrorReply("ERR boom"),
    "integer": 5,
    "negative": -(2**62),
    "double": 1.5,
    "negzero": -0.0,
    "inf": math.inf,
    "nan": math.nan,
    "true": True,
    "false": False,
    "null": None,
    "array": [b"a", 1, None, [Status(b"x")]],
    "empty_array": [],
    "set": SetReply([b"a", 1]),
    "map": {b"a": 1, 5: b"x", Status(b"s"): True, -1: None},
    "map_binary_key": {b"ok": 1, b"\xff": 1},
    "map_double_key": {1.5: 1},
    "map_null_key": {None: 1},
    "map_array_key": {(b"a",): 1},
    "big_number": BigNumber("1234567890123456789012345678901234567890"),
    "verbatim": Verbatim(b"hi", "txt"),
    "verbatim_mkd": Verbatim(b"# t", "mkd"),
    "verbatim_binary": Verbatim(b"\xff", "txt"),
    "verbatim_incomplete": Verbatim(b"ab\xe2\x82", "txt"),
    "push": Push([b"message", b"ch", b"x"]),
    "error_in_array": [b"a", ErrorReply("ERR inner")],
    "error_in_map": {b"k": ErrorReply("EXECABORT Transaction discarded")},
    "error_in_set": SetReply([ErrorReply("ERR in set")]),
    "error_in_nested": [[b"a", [ErrorReply("WRONGTYPE deep")]]],
}


class CraftedSession(Session):
    on_push = None

    @property
    def db(self) -> int:
        return 0

    @property
    def closed(self) -> bool:
        return False

    def call(self, args: Sequence[bytes]) -> Any:
        if args[0].lower() == b"echo":
            return CRAFTED[args[1].decode()]  # (a tuple key stands for an array key)
        return ErrorReply("ERR only ECHO here")

    async def execute(self, args: Sequence[bytes]) -> Any:
        return self.call(args)

    def close(self) -> None:
        pass


class CraftedStore(Store):
    def open_session(self) -> Session:
        return CraftedSession()

    def command_info(self) -> CommandTable:
        return CommandTable.bundled()

    async def aclose(self) -> None:
        pass


DESCRIBE = r"""
const hex = (ab) => Array.from(new Uint8Array(ab)).map((b) => b.toString(16).padStart(2, '0')).join('');
const props = (v) => '(' + ['__reply_type', '__format'].filter((k) => k in v)
    .map((k) => k + '=' + v[k]).join(',') + ')';
function describe(v) {
  if (v === null) return 'null';
  switch (typeof v) {
    case 'undefined': return 'undefined';
    case 'string': return 'string:' + v;
    case 'bigint': return 'bigint:' + v;
    case 'number': return 'number:' + (Object.is(v, -0) ? '-0' : String(v));
    case 'boolean': return 'boolean:' + v;
  }
  if (v instanceof ArrayBuffer) return 'ArrayBuffer:' + hex(v) + props(v);
  if (v instanceof String) return 'String:' + v.valueOf() + props(v);
  if (Array.isArray(v)) return '[' + v.map(describe).join(',') + ']';
  if (v instanceof Set) return 'Set{' + Array.from(v).map(describe).join(',') + '}';
  if (Object.getPrototypeOf(v) === Object.prototype) {
    return '{' + Object.keys(v).map((k) => k + '=' + describe(v[k])).join(',') + '}';
  }
  return 'other';
}
function probe(get) {
  try { return describe(get()); } catch (e) { return 'throw:' + typeof e + ':' + e; }
}
"""


@pytest.fixture(params=["rg", "tf"])
def crafted(request, host_driver):
    drv = host_driver(request.param, store=CraftedStore())
    drv.load(DESCRIBE + f"""
        redis.{drv.api.register}('call', (c, name) => probe(() => c.call('echo', name)));
        redis.{drv.api.register}('raw', (c, name) => probe(() => c.{drv.api.call_raw}('echo', name)));
    """)
    return drv


# (reply name, what `call` gives, what `call_raw` gives); None: the same as `call`.
REPLY_TO_JS = [
    ("status", "string:OK", "ArrayBuffer:4f4b()"),
    ("bulk", "string:hello", "ArrayBuffer:68656c6c6f()"),
    ("empty", "string:", "ArrayBuffer:()"),
    ("binary", "throw:string:Could not decode value as string", "ArrayBuffer:ff00()"),
    ("error", "throw:string:ERR boom", None),
    ("integer", "bigint:5", None),
    ("negative", f"bigint:{-(2**62)}", None),
    ("double", "number:1.5", None),
    ("negzero", "number:-0", None),
    ("inf", "number:Infinity", None),
    ("nan", "number:NaN", None),
    ("true", "boolean:true", None),
    ("false", "boolean:false", None),
    ("null", "null", None),
    ("array", "[string:a,bigint:1,null,[string:x]]",
     "[ArrayBuffer:61(),bigint:1,null,[ArrayBuffer:78()]]"),
    ("empty_array", "[]", None),
    ("set", "Set{string:a,bigint:1}", "Set{ArrayBuffer:61(),bigint:1}"),
    ("map", "{5=string:x,a=bigint:1,s=boolean:true,-1=null}",
     "{5=ArrayBuffer:78(),a=bigint:1,s=boolean:true,-1=null}"),
    ("map_binary_key", "throw:string:Binary map key is not supported", None),
    ("map_double_key", "throw:string:Given object can not be a object key", None),
    ("map_null_key", "throw:string:Given object can not be a object key", None),
    ("map_array_key", "throw:string:Given object can not be a object key", None),
    ("big_number", "String:1234567890123456789012345678901234567890(__reply_type=big_number)",
     None),
    ("verbatim", "String:hi(__reply_type=verbatim,__format=txt)",
     "ArrayBuffer:6869(__reply_type=verbatim,__format=txt)"),
    ("verbatim_mkd", "String:# t(__reply_type=verbatim,__format=mkd)",
     "ArrayBuffer:232074(__reply_type=verbatim,__format=mkd)"),
    ("verbatim_binary", "throw:string:invalid utf-8 sequence of 1 bytes from index 0",
     "ArrayBuffer:ff(__reply_type=verbatim,__format=txt)"),
    ("verbatim_incomplete", "throw:string:incomplete utf-8 byte sequence from index 2",
     "ArrayBuffer:6162e282(__reply_type=verbatim,__format=txt)"),
    ("push", "null", None),
    ("error_in_array", "throw:string:ERR inner", None),
    ("error_in_map", "throw:string:EXECABORT Transaction discarded", None),
    ("error_in_set", "throw:string:ERR in set", None),
    ("error_in_nested", "throw:string:WRONGTYPE deep", None),
]


@pytest.mark.parametrize(("name", "decoded", "raw"), REPLY_TO_JS)
async def test_reply_to_js(crafted, name, decoded, raw):
    assert (await crafted.fcall("call", name)).decode() == decoded
    assert (await crafted.fcall("raw", name)).decode() == (decoded if raw is None else raw)


async def test_map_key_order_follows_js(crafted):
    """Integer keys become properties `"<n>"`; JS enumerates index-like keys first."""
    assert (await crafted.fcall("call", "map")).startswith(b"{5=")


async def test_real_store_replies(jh):
    jh.load(f"""
        redis.{jh.api.register}('types', (c) => {{
            c.call('zadd', 'z', '1.5', 'm'); c.call('sadd', 's', 'a'); c.call('hset', 'h', 'f', 'v');
            const info = c.call('info', 'server');
            return [typeof c.call('ping'), typeof c.call('zscore', 'z', 'm'),
                    c.call('smembers', 's') instanceof Set,
                    JSON.stringify(c.call('hgetall', 'h')),
                    info instanceof String, info.__reply_type, info.__format,
                    typeof c.call('incr', 'n'), c.call('get', 'missing')];
        }});
        redis.{jh.api.register}('bigint_math', (c) => {{
            try {{ return c.call('incr', 'm') + 1; }} catch (e) {{ return e instanceof TypeError; }}
        }});
    """)
    assert await jh.fcall("types") == [b"string", b"number", True, b'{"f":"v"}', True,
                                       b"verbatim", b"txt", b"bigint", None]
    assert await jh.fcall("bigint_math") is True


# --- §6.3 JS → reply ------------------------------------------------------------------------

def same(got: Any, want: Any) -> bool:
    """Equal, with the same reply types all the way down (and -0.0 / nan told apart)."""
    if type(got) is not type(want):
        return False
    if isinstance(want, float):
        return math.copysign(1, got) == math.copysign(1, want) and (
            got == want or (math.isnan(got) and math.isnan(want)))
    if isinstance(want, Verbatim):
        return got == want and got.format == want.format
    if isinstance(want, dict):
        return list(got) == list(want) and all(
            type(a) is type(b) for a, b in zip(got, want)) and all(
            same(got[k], want[k]) for k in want)
    if isinstance(want, list):
        return len(got) == len(want) and all(same(a, b) for a, b in zip(got, want))
    return got == want


def string_object(value: str, **props: str) -> str:
    sets = "".join(f"s.{k} = {v!r}; " for k, v in props.items())
    return f"(() => {{ const s = new String({value!r}); {sets}return s; }})()"


JS_TO_REPLY = [
    # 1-2 numbers: int32 (not -0) is an integer, anything else a double
    ("1", 1), ("0", 0), ("-1", -1), ("2147483647", 2147483647), ("-2147483648", -2147483648),
    ("2147483648", 2147483648.0), ("-2147483649", -2147483649.0), ("1.5", 1.5), ("-0", -0.0),
    ("NaN", math.nan), ("Infinity", math.inf), ("-Infinity", -math.inf),
    ("2 ** 53", 9007199254740992.0), ("0.1 + 0.2", 0.1 + 0.2), ("3.0", 3),
    # BigInt: integers, cut to their low 64 bits
    ("5n", 5), ("-5n", -5), ("2n ** 63n - 1n", 2**63 - 1), ("-(2n ** 63n)", -(2**63)),
    ("2n ** 63n", -(2**63)), ("2n ** 64n + 5n", 5), ("-(2n ** 63n) - 1n", 2**63 - 1),
    ("2n ** 70n", 0),
    # 3 strings
    ("'s'", b"s"), ("''", b""), ("'caf\\u00e9'", "café".encode()),
    # 4 String objects
    (string_object("OK", __reply_type="status"), Status(b"OK")),
    (string_object("hi", __reply_type="verbatim"), Verbatim(b"hi", "txt")),
    (string_object("hi", __reply_type="verbatim", __format="mkd"), Verbatim(b"hi", "mkd")),
    (string_object("123", __reply_type="big_number"), b"123"),
    (string_object("x", __reply_type="other", __format="mkd"), b"x"),
    (string_object("plain"), b"plain"),
    # 5 ArrayBuffer
    ("new Uint8Array([104, 105, 255]).buffer", b"hi\xff"),
    ("new ArrayBuffer(0)", b""),
    # 6-7
    ("null", None), ("true", True), ("false", False),
    # 8 Set: members converted as keys, duplicates collapse
    ("new Set([1, 1n, 'a', new String('a'), true, 2n ** 64n + 1n, -0 + 7])",
     SetReply([1, b"a", True, 7])),
    ("new Set()", SetReply([])),
    # 9 Array
    ("[1, [2, [3.5]], 'x', null, [], true]", [1, [2, [3.5]], b"x", None, [], True]),
    # 10 other objects: enumerable string-keyed properties (own and inherited)
    ("({b: 1, 2: 'x', a: {c: true}, '01': 3, '-1': 4, 4294967295: 5, 4294967294: 6})",
     {2: b"x", 4294967294: 6, b"b": 1, b"a": {b"c": True}, b"01": 3, b"-1": 4,
      b"4294967295": 5}),
    ("({})", {}),
    ("new Map([['a', 1]])", {}),
    ("new Uint8Array([7, 8])", {0: 7, 1: 8}),
    ("new Float64Array([1.5])", {0: 1.5}),
    ("new BigInt64Array([5n, -1n])", {0: 5, 1: -1}),
    ("new Date(0)", {}),
    ("(() => { const d = new Date(0); d.x = 1; return d; })()", {b"x": 1}),
    ("(() => { const f = function () {}; f.x = 'y'; return f; })()", {b"x": b"y"}),
    ("(() => { const e = new Error('m'); e.code = 5; return e; })()", {b"code": 5}),
    (("Object.create({inherited: 1}, {own: {value: 2, enumerable: true},"
     " hidden: {value: 3, enumerable: false}})"), {b"own": 2, b"inherited": 1}),
    ("new (class { constructor() { this.a = 1; } get b() { return 2; } })()", {b"a": 1}),
    ("({[Symbol('s')]: 1, a: 2})", {b"a": 2}),
    ("new Number(5)", {}),
    # 11 anything else
    ("undefined", b"undefined"),
]


@pytest.mark.parametrize(("expression", "reply"), JS_TO_REPLY)
async def test_js_to_reply(jh, expression, reply):
    jh.load(f"redis.{jh.api.register}('f', () => {expression});\n"
            f"redis.{jh.api.register_async}('co', async () => {{ await null; return {expression}; }});")
    got = await jh.fcall("f")
    assert same(got, reply), (got, reply)
    got = await jh.fcall_async("co")  # a resolved value follows the same rules
    assert same(got, reply), (got, reply)


@pytest.mark.parametrize(("expression", "text"), [
    (string_object("hi", __reply_type="verbatim", __format="mk"), "Verbatim format length must be 3."),
    (string_object("hi", __reply_type="verbatim", __format="mkdx"),
     "Verbatim format length must be 3."),
    (string_object("hi", __reply_type="verbatim", __format="m\u00e9d"),
     "Verbatim format must contains only ASCI values."),
    ("new Set([1.5])", "Give value is not a key"),
    ("new Set([null])", "Give value is not a key"),
    ("new Set([{}])", "Give value is not a key"),
    ("new Set([[1]])", "Give value is not a key"),
    ("[1, new Set([undefined])]", "Give value is not a key"),
    ("{a: [1, new Set([0.5])]}", "Give value is not a key"),
])
async def test_js_to_reply_errors(jh, expression, text):
    jh.load(f"redis.{jh.api.register}('f', () => ({expression}));")
    assert await jh.fcall_error("f") == text


async def test_symbol_is_an_error(jh):
    jh.load(f"redis.{jh.api.register}('f', () => Symbol('x'));\n"
            f"redis.{jh.api.register}('g', () => [Symbol('x')]);")
    assert await jh.fcall_error("f")
    assert await jh.fcall_error("g")


async def test_returning_nothing_gives_undefined(jh):
    jh.load(f"redis.{jh.api.register}('f', () => {{}});")
    assert await jh.fcall("f") == b"undefined"


NEST = "(() => {{ let v = {leaf}; for (let i = 0; i < {n}; i++) v = {wrap}; return v; }})()"


@pytest.mark.parametrize(("leaf", "wrap"), [("[]", "[v]"), ("1", "[v]"), ("({})", "({a: v})"),
                                            ("1", "new Set([1]).add(1) && {k: v}")])
async def test_nesting_limit(jh, leaf, wrap):
    jh.load(f"redis.{jh.api.register}('ok', () => {NEST.format(leaf=leaf, n=100, wrap=wrap)});\n"
            f"redis.{jh.api.register}('deep', () => {NEST.format(leaf=leaf, n=101, wrap=wrap)});\n"
            f"redis.{jh.api.register}('deeper', () => {NEST.format(leaf=leaf, n=1000, wrap=wrap)});")
    value = await jh.fcall("ok")
    for _ in range(100):
        value = value[0] if isinstance(value, list) else next(iter(value.values()))
    assert await jh.fcall_error("deep") == "nesting level reached"
    assert await jh.fcall_error("deeper") == "nesting level reached"


async def test_cycles_reach_the_nesting_limit(jh):
    bg = jh.api.background
    jh.load(f"""
        const cycle = () => {{ const a = {{}}; a.self = a; return a; }};
        redis.{jh.api.register}('object', () => cycle());
        redis.{jh.api.register}('array', () => {{ const a = []; a.push(a); return a; }});
        redis.{jh.api.register}('in_function', () => {{ const f = () => 1; f.c = cycle(); return f; }});
        redis.{jh.api.register}('settled', () => (async () => cycle())());
        redis.{jh.api.register_async}('coroutine', async () => cycle());
        redis.{jh.api.register_async}('coroutine_later', async () => {{ await null; return cycle(); }});
        redis.{jh.api.register_async}('pending', (c) => c.{bg}(async () => cycle()));
        redis.{jh.api.register}('alive', () => 'alive');
    """)
    for fn in ("object", "array", "in_function", "settled"):
        assert await jh.fcall_error(fn) == "nesting level reached", fn
    for fn in ("coroutine", "coroutine_later", "pending"):
        assert await jh.fcall_async_error(fn) == "nesting level reached", fn
    assert await jh.fcall("alive") == b"alive"


async def test_call_results_passed_back(jh, host_driver):
    jh.load(f"""
        redis.{jh.api.register}('ping', (c) => c.call('ping'));
        redis.{jh.api.register}('incr', (c) => c.call('incr', 'n'));
        redis.{jh.api.register}('info', (c) => c.call('info', 'server'));
        redis.{jh.api.register}('map', (c) => {{ c.call('hset', 'h', 'b', '1', 'a', '2');
            return c.call('hgetall', 'h'); }});
        redis.{jh.api.register}('raw', (c) => c.{jh.api.call_raw}('ping'));
    """)
    pong = await jh.fcall("ping")
    assert type(pong) is bytes and pong == b"PONG"  # the status type is lost: a bulk string
    assert same(await jh.fcall("incr"), 1)
    info = await jh.fcall("info")
    assert type(info) is Verbatim and info.format == "txt"
    assert same(await jh.fcall("map"), {b"b": b"1", b"a": b"2"})
    assert same(await jh.fcall("raw"), b"PONG")


async def test_crafted_replies_passed_back(host_driver):
    drv = host_driver("rg", store=CraftedStore())
    drv.load("redis.register_function('back', (c, name) => c.call('echo', name));")
    assert same(await drv.fcall("back", "big_number"), b"1234567890123456789012345678901234567890")
    assert same(await drv.fcall("back", "verbatim_mkd"), Verbatim(b"# t", "mkd"))
    assert same(await drv.fcall("back", "set"), SetReply([b"a", 1]))
    # a negative integer key is not an array index: it comes back as a string key
    assert same(await drv.fcall("back", "map"), {5: b"x", b"a": 1, b"s": True, b"-1": None})
    assert same(await drv.fcall("back", "negzero"), -0.0)
    assert same(await drv.fcall("back", "double"), 1.5)


# --- §6.4 error texts ------------------------------------------------------------------------------

THROWN = [
    ("'a string'", "a string", "a string"),
    ("5", "5", "5"),
    ("null", "null", "null"),
    ("undefined", "undefined", "undefined"),
    ("{a: 1}", "[object Object]", "[object Object]"),
    ("[1, 2]", "1,2", "1,2"),
    ("{stack: 'line one\\nline two'}", "[object Object]", "line one|line two"),
    ("{toString() { return 'custom'; }}", "custom", "custom"),
    ("new Error('boom')", "Error: boom", None),
    ("new TypeError('t')", "TypeError: t", None),
]


@pytest.mark.parametrize(("value", "level1", "level2"), THROWN)
async def test_thrown_values(host_driver, value, level1, level2):
    for verbosity, text in (("1", level1), ("2", level2)):
        for era in ("rg", "tf"):
            drv = host_driver(era, error_verbosity=verbosity)
            drv.load(f"redis.{drv.api.register}('f', () => {{ throw {value}; }});\n"
                     f"redis.{drv.api.register_async}('co', async () => {{ throw {value}; }});\n"
                     f"redis.{drv.api.register_async}('later', async () => {{ await null;"
                     f" throw {value}; }});\n"
                     f"redis.{drv.api.register_async}('rejected', () => new Promise("
                     f"(res, rej) => rej({value})));")
            results = [await drv.fcall_error("f"), await drv.fcall_async_error("co"),
                       await drv.fcall_async_error("later"),
                       await drv.fcall_async_error("rejected")]
            for got in results:
                if text is None:  # an Error at level 2: `String(e)` then its frames
                    assert got.startswith(level1 + "|    at ") and "lib.js:" in got, got
                    assert "\n" not in got and "<jshost prelude>" not in got
                else:
                    assert got == text


async def test_engine_errors(jh):
    jh.load(f"redis.{jh.api.register}('f', () => null.x);\n"
            f"redis.{jh.api.register}('g', () => undefinedName);")
    assert (await jh.fcall_error("f")).startswith("TypeError: ")
    assert (await jh.fcall_error("g")).startswith("ReferenceError: ")


async def test_stack_overflow(jh):
    jh.load(f"const f = (n) => f(n + 1) + 1;\nredis.{jh.api.register}('f', () => f(0));")
    assert await jh.fcall_error("f") == "RangeError: Maximum call stack size exceeded"


async def test_level_2_stack_of_a_load_failure(host_driver):
    drv = host_driver("rg", error_verbosity="2")
    text = drv.load_error("redis.register_function('f', () => 1);\nthrow new Error('x');")
    assert text.startswith("Failed loading library: Error: x|    at ")
    assert "lib.js:3" in text and text.endswith(".") and "\n" not in text


async def test_compile_errors_are_always_level_1(host_driver):
    text = host_driver("rg", error_verbosity="2").load_error("foo bar(")
    assert text.startswith("Failed library compilation: SyntaxError: ") and "|" not in text


async def test_verbosity_is_read_when_the_error_happens(rg):
    rg.load("redis.register_function('f', () => { throw new Error('e'); });")
    assert await rg.fcall_error("f") == "Error: e"
    rg.host.settings.set("redisgears_2.error-verbosity", "2")
    assert (await rg.fcall_error("f")).startswith("Error: e|")


async def test_getters_run_while_converting_are_bounded(host_driver):
    """Converting a result may run getters: they run under the deadline, and what they throw
    is the reply."""
    drv = host_driver("rg", lock_redis_timeout="100")
    drv.load("""
        const looping = () => ({ get x() { while (true) {} } });
        const throwing = () => ({ a: 1, get x() { throw new Error('from a getter'); } });
        let later = [];
        redis.register_function('sync_loop', looping);
        redis.register_function('sync_throw', throwing);
        redis.register_async_function('co_loop', async () => looping());
        redis.register_async_function('co_throw', async () => throwing());
        redis.register_async_function('fn_loop', async () => {
            const f = () => 1;
            Object.defineProperty(f, 'x', { get() { while (true) {} }, enumerable: true });
            return f;
        });
        redis.register_async_function('pending_loop', () => new Promise((res) => later.push(res)));
        redis.register_function('release', () => { later.forEach((res) => res(looping())); return 1; });
        redis.register_function('ok', () => 'ok');
    """)
    terminated = "Err Execution was terminated due to OOM or timeout"
    assert await drv.fcall_error("sync_loop") == terminated
    assert await drv.fcall_error("sync_throw") == "Error: from a getter"
    assert await drv.fcall_async_error("co_loop") == terminated
    assert await drv.fcall_async_error("co_throw") == "Error: from a getter"
    assert await drv.fcall_async_error("fn_loop") == terminated
    pending = drv.host.call("rg", CallArgs("lib", "pending_loop", 0, []), asynchronous=True)
    assert await drv.fcall("release") == 1
    assert await drv.error(pending) == terminated
    assert await drv.fcall("ok") == b"ok"
