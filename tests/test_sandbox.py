"""The JS sandbox (SPEC §3.7): what a library can reach, and what it cannot.

A library sees only the allowed globals plus `redis`: no file, network, process or module
access, no timers, no `eval`. The `Function` constructor stays (the spec keeps it), but what it
builds runs in the library's own global. The prelude's `native` object (the Python callables
behind `redis`) must be out of reach. And one library never sees another's globals or its
prototype pollution: each has its own runtime.

Each probe runs inside a registered function and reports what it found as a string, so a
failure shows what leaked.
"""

from __future__ import annotations

import pytest
from conftest import HostDriver

pytestmark = pytest.mark.timeout(60)

#: SPEC §3.7: the only globals (rg), plus `redis`; tf adds `Iterator`. `Intl` and `WebAssembly`
#: are allowed but QuickJS has neither.
_ALLOWED_NAMES = (
    "Object Function Array Number parseFloat parseInt Infinity NaN undefined Boolean String "
    "Symbol Date Promise RegExp Error AggregateError RangeError ReferenceError SyntaxError "
    "TypeError URIError globalThis JSON Math Intl ArrayBuffer Uint8Array Int8Array Uint16Array "
    "Int16Array Uint32Array Int32Array Float32Array Float64Array Uint8ClampedArray "
    "BigUint64Array BigInt64Array DataView Map BigInt Set WeakMap WeakSet Proxy Reflect "
    "FinalizationRegistry WeakRef decodeURI decodeURIComponent encodeURI encodeURIComponent "
    "escape unescape isFinite isNaN console WebAssembly redis"
)
ALLOWED = set(_ALLOWED_NAMES.split())

#: Names that give file, network, process, module or timer access in some JS host, or that
#: the spec removes on purpose.
FORBIDDEN = [
    "std",
    "os",
    "bjson",
    "require",
    "module",
    "exports",
    "process",
    "Deno",
    "Bun",
    "fetch",
    "XMLHttpRequest",
    "WebSocket",
    "setTimeout",
    "setInterval",
    "setImmediate",
    "clearTimeout",
    "clearInterval",
    "queueMicrotask",
    "structuredClone",
    "print",
    "scriptArgs",
    "__loadScript",
    "__filename",
    "__dirname",
    "global",
    "window",
    "self",
    "importScripts",
    "performance",
    "navigator",
    "gc",
    "eval",
    "EvalError",
    "SharedArrayBuffer",
    "Atomics",
    "Operators",
    "BigFloat",
    "BigDecimal",
    "load",
    "read",
    "readline",
    "quit",
]


def probe(api_register: str, expression: str, name: str = "probe") -> str:
    """A library body registering `name`: a function returning `expression` (or the text of
    what it threw)."""
    return (
        f"redis.{api_register}('{name}', function (client) {{\n"
        f"  try {{ return String({expression}); }}\n"
        f"  catch (e) {{ return 'threw ' + String(e); }}\n"
        f"}});"
    )


async def run_probe(jh: HostDriver, expression: str) -> str:
    """Load a library that evaluates `expression` in a function and return its text."""
    jh.load(probe(jh.api.register, expression), name="sandboxprobe")
    reply = await jh.fcall("probe", lib="sandboxprobe")
    jh.host.delete("sandboxprobe")
    assert isinstance(reply, bytes)
    return reply.decode()


# --- globals ----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", FORBIDDEN)
async def test_forbidden_globals_are_absent(jh: HostDriver, name: str) -> None:
    got = await run_probe(
        jh, f"[typeof {name}, '{name}' in globalThis, Reflect.has(globalThis, '{name}')]"
    )
    assert got == "undefined,false,false"


async def test_globals_are_only_the_allowed_ones(jh: HostDriver) -> None:
    names = set((await run_probe(jh, "Object.getOwnPropertyNames(globalThis)")).split(","))
    allowed = ALLOWED | ({"Iterator"} if jh.era == "tf" else set())
    assert names <= allowed, f"unexpected globals: {sorted(names - allowed)}"
    assert {"redis", "Function", "Object", "globalThis", "console"} <= names


async def test_console_methods_do_nothing(jh: HostDriver) -> None:
    got = await run_probe(jh, "[console.log('x'), console.error('y'), typeof console.table]")
    assert got == ",,function"


# --- modules --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "specifier",
    [
        "std",
        "os",
        "bjson",
        "fs",
        "./lib.js",
        "/etc/passwd",
        "data:text/javascript,export default 1",
        "node:fs",
    ],
)
async def test_dynamic_import_rejects_cleanly(jh: HostDriver, specifier: str) -> None:
    """`import()` compiles (it is syntax) but every module load is refused: the promise
    rejects with a JS error the library can catch; nothing is read."""
    jh.load(
        f"""
redis.{jh.api.register_async}('imp', async function () {{
  try {{ const m = await import({specifier!r}); return 'imported ' + Object.keys(m); }}
  catch (e) {{ return 'rejected ' + String(e); }}
}});"""
    )
    got = await jh.fcall_async("imp")
    assert isinstance(got, bytes) and got.startswith(b"rejected "), got


async def test_dynamic_import_at_top_level_does_not_break_the_load(jh: HostDriver) -> None:
    jh.load(f"import('std').catch(() => 0);\nredis.{jh.api.register}('f', () => 'ok');")
    assert await jh.fcall("f") == b"ok"


@pytest.mark.parametrize(
    "statement", ["import * as std from 'std';", "import 'os';", "export default 1;"]
)
def test_module_syntax_is_a_compile_error(jh: HostDriver, statement: str) -> None:
    text = jh.load_error(f"{statement}\nredis.{jh.api.register}('f', () => 1);")
    assert text.startswith(jh.api.compile_prefix + "SyntaxError")


# --- eval and the Function constructor ------------------------------------------------------


@pytest.mark.parametrize(
    "expression",
    [
        "typeof eval",
        "typeof globalThis.eval",
        "typeof Reflect.get(globalThis, 'eval')",
        "typeof globalThis['ev' + 'al']",
        "(0, globalThis.eval)",
        "eval('1')",
    ],
)
async def test_eval_is_removed(jh: HostDriver, expression: str) -> None:
    got = await run_probe(jh, expression)
    assert got in (
        "undefined",
        "threw ReferenceError: eval is not defined",
        "threw TypeError: not a function",
    )


#: What V8 throws in a context that disallows code generation from strings (jshost's choice,
#: docs/security.md): `eval` is gone, so the Function constructors go too.
CODE_GENERATION = "threw EvalError: Code generation from strings disallowed for this context"

#: Every way to a constructor that compiles code from a string, the classic ways out of a
#: sandbox among them. Each must refuse, whatever the path to it.
CODE_FROM_STRINGS = {
    "Function": "Function('return globalThis')()",
    "(0, Function)": "(0, Function)('return 1')()",
    "constructor.constructor": "(function(){}).constructor.constructor('return this')()",
    "arrow constructor": "(() => 0).constructor('return this')()",
    "array constructor chain": "[].constructor.constructor('return globalThis')()",
    "new Function": "new Function('return this')()",
    "Function.prototype.constructor": "Function.prototype.constructor('return this')()",
    "Reflect.construct": "Reflect.construct(Function, ['return globalThis'])()",
    "Reflect.apply": "Reflect.apply(Function, null, ['return globalThis'])()",
    "generator constructor": (
        "Object.getPrototypeOf(function*(){}).constructor('yield globalThis')().next().value"
    ),
    "async constructor": "Object.getPrototypeOf(async function(){}).constructor('return 1')",
    "async generator constructor": (
        "Object.getPrototypeOf(async function*(){}).constructor('yield 1')"
    ),
    "async constructor's prototype": (
        "Object.getPrototypeOf(Object.getPrototypeOf(async () => 0).constructor)('return 1')"
    ),
    "bound constructor": "Function.bind(null, 'return globalThis')()()",
    "symbol species": "Symbol.constructor.constructor('return this')()",
    "subclass": "(() => { class F extends Function {} return new F('return 1'); })()",
    "proxy get": "new Proxy({}, {get: (t, k) => Function('return globalThis')()}).x",
}


@pytest.mark.parametrize("code", CODE_FROM_STRINGS.values(), ids=CODE_FROM_STRINGS.keys())
async def test_no_code_from_strings(jh: HostDriver, code: str) -> None:
    assert await run_probe(jh, code) == CODE_GENERATION


async def test_the_error_is_a_catchable_eval_error(jh: HostDriver) -> None:
    got = await run_probe(
        jh,
        "(() => { try { Function('1'); } catch (e) {"
        " return [e instanceof Error, e.name, typeof EvalError].join(','); } })()",
    )
    assert got == "true,EvalError,undefined"


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("((a, b) => a + b).call(null, 1, 2)", "3"),
        ("((a, b) => a + b).apply(null, [1, 2])", "3"),
        ("((a) => a * 2).bind(null, 21)()", "42"),
        ("Function.prototype.call.call((a) => a + 1, null, 1)", "2"),
        ("(function f() {}).toString()", "function f() {}"),
        ("(() => 1) instanceof Function", "true"),
        ("(async () => 1) instanceof Function", "true"),
        ("(function () {}).constructor === Function", "true"),
        ("[Function.name, Function.length, typeof Function].join()", "Function,1,function"),
        ("Object.getPrototypeOf(async function () {}).constructor.name", "AsyncFunction"),
        ("typeof Function.prototype", "function"),
        ("new (class A { m() { return 5; } })().m()", "5"),
    ],
)
async def test_functions_work_as_before(jh: HostDriver, expression: str, expected: str) -> None:
    """Only compiling text is refused: every function, and `Function.prototype`'s methods,
    work as before."""
    assert await run_probe(jh, expression) == expected


# --- the prelude's `native` object ------------------------------------------------------------

WALK = """
(function (roots) {
  // The prelude's internal names (its `native` object, its entry points, the natives).
  const INTERNAL = new RegExp('^(native|entry|invoke(Sync|Async|Trigger)|enterBlock|exitBlock|' +
    'asyncToken|checkBackground|isDeleted|syncClient|asyncClient|stringOf|watch|T)$');
  const seen = new Set(), found = [];
  function walk(o, path, depth) {
    if (o === null || (typeof o !== 'object' && typeof o !== 'function')) return;
    if (seen.has(o) || depth > 8) return;
    seen.add(o);
    for (const k of Reflect.ownKeys(o)) {
      const key = String(k);
      let d; try { d = Reflect.getOwnPropertyDescriptor(o, k); } catch (e) { continue; }
      if (INTERNAL.test(key)) found.push(path + '.' + key);
      for (const v of [d.value, d.get, d.set]) walk(v, path + '.' + key, depth + 1);
    }
    let p; try { p = Reflect.getPrototypeOf(o); } catch (e) { return; }
    walk(p, path + '.__proto__', depth + 1);
  }
  for (const [name, root] of roots) walk(root, name, 0);
  return found.join(' ') || 'nothing';
})
"""


async def test_walking_every_reachable_object_finds_no_native(jh: HostDriver) -> None:
    """From `redis`, a client, the global and their prototypes, no property leads to the
    prelude's internals."""
    got = await run_probe(
        jh, f"{WALK}([['redis', redis], ['client', client], ['globalThis', globalThis]])"
    )
    assert got == "nothing"


async def test_arguments_callee_caller_gives_nothing(jh: HostDriver) -> None:
    """In sloppy mode, `arguments.callee.caller` and `f.caller` would name the prelude function
    that called the library's: they must give no function."""
    jh.load(
        f"""
function sloppy(client) {{
  let a, b;
  try {{ a = arguments.callee.caller; }} catch (e) {{ a = 'threw'; }}
  try {{ b = sloppy.caller; }} catch (e) {{ b = 'threw'; }}
  return [typeof a === 'function' ? 'LEAK ' + String(a) : String(a),
          typeof b === 'function' ? 'LEAK ' + String(b) : String(b)].join(',');
}}
redis.{jh.api.register}('f', sloppy);"""
    )
    got = await jh.fcall("f")
    assert b"LEAK" not in got, got


async def test_error_stack_is_only_text(jh: HostDriver) -> None:
    got = await run_probe(
        jh,
        "(() => { const e = new Error('x'); const o = {}; Error.captureStackTrace(o);"
        " return [typeof e.stack, typeof o.stack, e.stack.includes('native.')]; })()",
    )
    assert got == "string,string,false"


PREPARE_STACK_TRACE = """
function grab() {
  const got = [];
  const before = Error.prepareStackTrace;
  Error.prepareStackTrace = (e, sites) => {
    for (const s of sites) {
      let f;
      try { f = typeof s.getFunction === 'function' ? s.getFunction() : undefined; }
      catch (x) { f = undefined; }
      if (typeof f === 'function') got.push(f);
    }
    return 'custom';
  };
  try { new Error('x').stack; } finally { Error.prepareStackTrace = before; }
  return got;
}
"""



async def test_prepare_stack_trace_hands_out_no_host_function(jh: HostDriver) -> None:
    """`Error.prepareStackTrace` call sites may name the frames, but `getFunction()` must not
    hand the library a function it did not make (the prelude's invokeSync called it)."""
    jh.load(
        f"""{PREPARE_STACK_TRACE}
function probe(client) {{
  const own = new Set([probe, grab]);
  const foreign = grab().filter((f) => !own.has(f));
  return foreign.map((f) => (f.name || '<anonymous>')).join(' ') || 'nothing';
}}
redis.{jh.api.register}('f', probe);"""
    )
    assert await jh.fcall("f") == b"nothing"




async def test_native_callable_not_reachable_through_a_getter_at_the_boundary(
    jh: HostDriver,
) -> None:
    """Library code must never run while a native (Python) callable is on the stack with an
    argument the library controls — else its frames leak. An object with a getter is passed
    to `client.call` after faking `ArrayBuffer`: it must be refused before crossing."""
    jh.load(
        f"""{PREPARE_STACK_TRACE}
function probe(client) {{
  const leaked = [];
  const realArrayBuffer = globalThis.ArrayBuffer;
  globalThis.ArrayBuffer = {{ [Symbol.hasInstance]: () => true }};
  const evil = {{}};
  Object.defineProperty(evil, 'x', {{ enumerable: true, get() {{
    for (const f of grab()) if (!f.name) leaked.push(String(f).replace(/\\s+/g, ' '));
    return 1;
  }} }});
  try {{ client.call('ping', evil); }} catch (e) {{ }}
  globalThis.ArrayBuffer = realArrayBuffer;
  return leaked.join(' | ') || 'nothing';
}}
redis.{jh.api.register}('f', probe);"""
    )
    assert await jh.fcall("f") == b"nothing"


# --- isolation between libraries -------------------------------------------------------------

POLLUTER = """
globalThis.shared = 'from a';
globalThis.redisCopy = redis;
Object.prototype.polluted = 1;
Array.prototype.evil = 'yes';
String.prototype.trim = () => 'hijacked';
Object.defineProperty(Object.prototype, 'then', {get() { return 'thenable'; }, configurable: true});
JSON.stringify = () => 'hijacked';
Math.max = () => -1;
delete globalThis.Map;
Function.prototype.call = () => 'hijacked';
redis.{register}('a', () => [typeof shared, ({}).polluted, typeof Map].join(','));
"""

INSPECTOR = """
redis.{register}('b', () => [
  typeof shared, typeof redisCopy, ({}).polluted, [].evil, ' x '.trim(),
  ({}).then, JSON.stringify([1]), Math.max(1, 2), typeof Map,
  typeof Function.prototype.call.call(() => 'ok'),
].map(String).join(','));
"""


async def test_one_library_cannot_see_another_librarys_globals(
    host_driver: type[HostDriver],
) -> None:
    """Two libraries in one host: globals set, built-ins replaced and prototypes polluted by
    the first are invisible in the second (which loads after it and is called after it)."""
    for era in ("rg", "tf"):
        jh = host_driver(era)  # type: ignore[call-arg]
        register = jh.api.register
        jh.load(POLLUTER.replace("{register}", register), name="polluter")
        jh.load(INSPECTOR.replace("{register}", register), name="inspector")
        assert await jh.fcall("a", lib="polluter") == b"string,1,undefined"
        assert await jh.fcall("b", lib="inspector") == (
            b"undefined,undefined,undefined,undefined,x,undefined,[1],2,function,string"
        )


async def test_a_library_cannot_reach_another_through_shared_objects(
    host_driver: type[HostDriver],
) -> None:
    """Nothing a library gets from the host is shared with another library: not `redis`, not
    the built-ins, not the client class."""
    jh = host_driver("rg")  # type: ignore[call-arg]
    jh.load(
        "redis.register_function('keep', (c) => { globalThis.kept = [redis, Object, c]; "
        "redis.marked = 1; Object.marked = 1; "
        "Object.getPrototypeOf(c).marked = 1; return 1; });",
        name="one",
    )
    jh.load(
        "redis.register_function('look', (c) => [redis.marked, Object.marked, "
        "Object.getPrototypeOf(c).marked].map(String).join(','));",
        name="two",
    )
    assert await jh.fcall("keep", lib="one") == 1
    assert await jh.fcall("look", lib="two") == b"undefined,undefined,undefined"
