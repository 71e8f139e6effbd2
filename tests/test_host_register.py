"""Library host: the `redis` global — registration, options, log, the sandbox (SPEC §3)."""

from __future__ import annotations

import asyncio
import logging

import pytest

from jshost.host.requests import CallArgs

CHECK8 = ("The function is declared as async and was called while blocking was not allowed;"
          " note that you cannot invoke async functions from within Lua or MULTI, and you must"
          " use {cmd} instead.")

# §3.3 in order. `{reg}` / `{areg}`: the era's register_function / register_async_function.
# Each row: (top-level code, rg text, tf text); the load fails with `Failed loading library: …`.
REGISTRATION_ERRORS = [
    # 1. argument types
    ("redis.{reg}(5, () => 1);",
     "Can not convert value at position 0 into V8LocalUtf8. Value is not string.",
     "Can not convert value at position 0 into V8LocalUtf8. Value is not string."),
    ("redis.{reg}(5, 5);",  # types before the callback check
     "Can not convert value at position 0 into V8LocalUtf8. Value is not string.",
     "Can not convert value at position 0 into V8LocalUtf8. Value is not string."),
    ("redis.{reg}('f', 5, 'no-writes');",  # rg: flags must be an array, checked before step 2
     "Can not convert value at position 2 into Option < V8LocalArray >. Value is not an array.",
     ("Can not convert value at position 2 into Option < NativeFunctionOptionalArgs >."
     " Given argument must be an object.")),
    # 2. callback is a function
    ("redis.{reg}('f', 5);",
     "Second argument to 'register_function' must be a function",
     "Second argument to 'registerFunction' must be a function"),
    ("redis.{areg}('f', 'x');",
     "Second argument to 'register_function' must be a function",
     "Second argument to 'registerFunction' must be a function"),
    # 3. async function given to the sync API (before the flag checks)
    ("redis.{reg}('f', async () => 1);",
     ("'register_function' can not be used with async function, use 'register_async_function'"
     " instead."),
     ("'registerFunction' can not be used with async function, use 'registerAsyncFunction'"
     " instead.")),
    ("redis.{reg}('f', async () => 1, {flags_bad});",
     ("'register_function' can not be used with async function, use 'register_async_function'"
     " instead."),
     ("'registerFunction' can not be used with async function, use 'registerAsyncFunction'"
     " instead.")),
    ("redis.{reg}('a-b', async () => 1);",  # before the tf name rule
     ("'register_function' can not be used with async function, use 'register_async_function'"
     " instead."),
     ("'registerFunction' can not be used with async function, use 'registerAsyncFunction'"
     " instead.")),
    # 4. flags
    ("redis.{reg}('f', () => 1, {flags_nonstring});",
     "Failed parsing function flags, wrong type of string value",
     "Failed parsing function flags, wrong type of string value"),
    ("redis.{reg}('f', () => 1, {flags_bad});",
     "Failed parsing function flags, Unknow flag 'bogus' was given",
     "Failed parsing function flags, Unknow flag 'bogus' was given"),
    ("redis.{reg}('a-b', () => 1, {flags_bad});",  # before the tf name rule
     "Failed parsing function flags, Unknow flag 'bogus' was given",
     "Failed parsing function flags, Unknow flag 'bogus' was given"),
    # 7. duplicates (sync and async share one namespace)
    ("redis.{reg}('f', () => 1); redis.{reg}('f', () => 2);",
     "Function f already exists", "Function f already exists"),
    ("redis.{reg}('f', () => 1); redis.{areg}('f', async () => 2);",
     "Function f already exists", "Function f already exists"),
    # missing arguments
    ("redis.{reg}('f');",
     "Can not convert value at position 1 into V8LocalValue. Wrong number of arguments given.",
     "Can not convert value at position 1 into V8LocalValue. Wrong number of arguments given."),
]

FLAGS = {
    "rg": {"flags_bad": "['no-writes', 'bogus']", "flags_nonstring": "['no-writes', 5]"},
    "tf": {"flags_bad": "{flags: ['no-writes', 'bogus']}",
           "flags_nonstring": "{flags: [redis.functionFlags.NO_WRITES, 5]}"},
}


def _fill(jh, template: str) -> str:
    return template.format(reg=jh.api.register, areg=jh.api.register_async, **FLAGS[jh.era])


@pytest.mark.parametrize(("top_level", "rg_text", "tf_text"), REGISTRATION_ERRORS)
def test_registration_errors_in_order(jh, top_level, rg_text, tf_text):
    text = rg_text if jh.era == "rg" else tf_text
    assert jh.load_error(_fill(jh, top_level)) == f"Failed loading library: {text}."


@pytest.mark.parametrize(("name", "reason"), [
    ("a-b", "Unallowed char was given '-'"),
    ("a.b", "Unallowed char was given '.'"),
    ("caf\u00e9", "Unallowed char was given '\u00e9'"),
    ("", "Empty name is not allowed"),
])
def test_tf_function_name_rule(host_driver, name, reason):
    tf = host_driver("tf")
    assert tf.load_error(f"redis.registerFunction('{name}', () => 1);") == (
        f"Failed loading library: Unallowed function name '{name}', {reason}..")
    rg = host_driver("rg")
    assert rg.load(f"redis.register_function('{name}', () => 1);") == "lib"
    assert name in rg.host.libraries["lib"].functions


def test_tf_name_rule_allows_letters_digits_underscore(tf):
    tf.load("redis.registerFunction('Az_09', () => 1);")
    assert "Az_09" in tf.host.libraries["lib"].functions


async def test_registration_out_of_context(jh):
    """Both eras name the snake_case API (§3.3 rule 5); the check follows the flag checks and
    precedes the tf name rule."""
    jh.load(f"""
        const tryIt = (f) => {{ try {{ f(); return 'registered'; }} catch (e) {{ return e; }} }};
        redis.{jh.api.register}('late', () => tryIt(() => redis.{jh.api.register}('x', () => 1)));
        redis.{jh.api.register}('late_async',
            () => tryIt(() => redis.{jh.api.register_async}('x', async () => 1)));
        redis.{jh.api.register}('late_bad_name',
            () => tryIt(() => redis.{jh.api.register}('a-b', () => 1)));
        redis.{jh.api.register}('late_bad_flag',
            () => tryIt(() => redis.{jh.api.register}('x', () => 1, {FLAGS[jh.era]['flags_bad']})));
        redis.{jh.api.register}('late_not_fn',
            () => tryIt(() => redis.{jh.api.register}('x', 5)));
    """)
    out_of_context = b"Called 'register_function' out of context"
    assert await jh.fcall("late") == out_of_context
    assert await jh.fcall("late_async") == out_of_context
    assert await jh.fcall("late_bad_name") == out_of_context
    assert await jh.fcall("late_bad_flag") == (
        b"Failed parsing function flags, Unknow flag 'bogus' was given")
    assert await jh.fcall("late_not_fn") == (
        f"Second argument to '{jh.api.register}' must be a function".encode())
    assert set(jh.host.libraries["lib"].functions) == {
        "late", "late_async", "late_bad_name", "late_bad_flag", "late_not_fn"}


async def test_other_registrations_out_of_context(host_driver):
    rg = host_driver("rg")
    rg.load("""
        const tryIt = (f) => { try { f(); return 'registered'; } catch (e) { return e; } };
        redis.register_function('ks', () => tryIt(
            () => redis.register_notifications_consumer('n', 'p', () => 1)));
        redis.register_function('st', () => tryIt(
            () => redis.register_stream_consumer('s', 'p', 1, false, () => 1)));
        redis.register_function('rm', () => tryIt(
            () => redis.register_remote_function('r', async () => 1)));
    """)
    assert await rg.fcall("ks") == b"Called 'register_notifications_consumer' out of context"
    assert await rg.fcall("st") == b"Called 'register_function' out of context"
    assert await rg.fcall("rm") == b"Called 'register_remote_function' out of context"
    tf = host_driver("tf")
    tf.load("""
        const tryIt = (f) => { try { f(); return 'registered'; } catch (e) { return e; } };
        redis.registerFunction('ks', () => tryIt(
            () => redis.registerKeySpaceTrigger('n', 'p', () => 1)));
        redis.registerFunction('st', () => tryIt(
            () => redis.registerStreamTrigger('s', 'p', () => 1)));
        redis.registerFunction('rm', () => tryIt(
            () => redis.registerClusterFunction('r', async () => 1)));
    """)
    assert await tf.fcall("ks") == b"Called 'registerKeySpaceTrigger' out of context"
    assert await tf.fcall("st") == b"Called 'registerFunction' out of context"
    assert await tf.fcall("rm") == b"Called 'registerClusterFunction' out of context"


def test_registration_errors_are_thrown_as_strings(jh):
    jh.load(f"""
        let caught;
        try {{ redis.{jh.api.register}('f', 5); }} catch (e) {{ caught = e; }}
        if (typeof caught !== 'string' || caught instanceof Error) throw 'not a string';
        redis.{jh.api.register}('ok', () => 1);
    """)


# --- flags and is_async (§3.3, §4.3) --------------------------------------------------------

def test_flags_are_recorded(host_driver):
    rg = host_driver("rg")
    rg.load("redis.register_function('f', () => 1, ['raw-arguments', 'no-writes', 'allow-oom']);"
            "redis.register_function('g', () => 1, []);")
    from jshost.host.library import flag_names

    fns = rg.host.libraries["lib"].functions
    assert flag_names(fns["f"].flags) == ["no-writes", "allow-oom", "raw-arguments"]
    assert flag_names(fns["g"].flags) == []
    tf = host_driver("tf")
    tf.load("redis.registerFunction('f', () => 1, {flags: [redis.functionFlags.ALLOW_OOM]});")
    assert flag_names(tf.host.libraries["lib"].functions["f"].flags) == ["allow-oom"]


async def test_tf_function_flags_constant(host_driver):
    tf = host_driver("tf")
    tf.load("redis.registerFunction('f', () => JSON.stringify(redis.functionFlags));")
    assert await tf.fcall("f") == (
        b'{"NO_WRITES":"no-writes","ALLOW_OOM":"allow-oom","RAW_ARGUMENTS":"raw-arguments"}')
    rg = host_driver("rg")
    rg.load("redis.register_function('f', () => typeof redis.functionFlags);")
    assert await rg.fcall("f") == b"undefined"


async def test_is_async_follows_the_registration_api(jh):
    jh.load(f"""
        redis.{jh.api.register}('sync', (c) => c.{jh.api.allow_block}());
        redis.{jh.api.register_async}('async_api_sync_fn', (c) => c.call('ping'));
        redis.{jh.api.register_async}('async_api_async_fn', async (ac) => typeof ac.block);
    """)
    fns = jh.host.libraries["lib"].functions
    assert (fns["sync"].is_async, fns["async_api_sync_fn"].is_async,
            fns["async_api_async_fn"].is_async) == (False, True, True)
    assert (fns["sync"].coroutine, fns["async_api_sync_fn"].coroutine,
            fns["async_api_async_fn"].coroutine) == (False, False, True)
    check8 = CHECK8.format(cmd=jh.api.async_command)
    assert await jh.fcall_error("async_api_sync_fn") == check8
    assert await jh.fcall_error("async_api_async_fn") == check8
    assert await jh.fcall("sync") is False
    assert await jh.fcall_async("sync") is True
    assert await jh.fcall_async("async_api_sync_fn") == b"PONG"  # locked, with a sync client
    assert await jh.fcall_async("async_api_async_fn") == b"function"


# --- §3.2 tf options object ------------------------------------------------------------------

TF_OPTIONS = "Can not convert value at position 2 into Option < NativeFunctionOptionalArgs >. "
FLAGS_WRONG_TYPE = "Failed parsing function flags, wrong type of string value"


@pytest.mark.parametrize(("options", "text"), [
    ("undefined", TF_OPTIONS + "Given argument must be an object."),
    ("null", TF_OPTIONS + "Given argument must be an object."),
    ("5", TF_OPTIONS + "Given argument must be an object."),
    ("'no-writes'", TF_OPTIONS + "Given argument must be an object."),
    ("{foo: 1}", TF_OPTIONS + "Unknown properties given: foo."),
    ("{foo: 1, description: 'd', bar: 2}", TF_OPTIONS + "Unknown properties given: foo,bar."),
    ("{description: 5}", TF_OPTIONS + "Failed getting field description, Value is not string.."),
    ("{flags: 'no-writes'}", TF_OPTIONS + "Failed getting field flags, Value is not an array.."),
    # Arrays, functions and boxed primitives are objects (issue 16): their own keys are unknown.
    ("[1]", TF_OPTIONS + "Unknown properties given: 0."),
    ("new String('ab')", TF_OPTIONS + "Unknown properties given: 0,1."),
    # Flag strings are checked by the API, after the conversion.
    ("Object.assign([], {flags: [1]})", FLAGS_WRONG_TYPE),
    ("{flags: [1]}", FLAGS_WRONG_TYPE),
    # The known fields are taken in declaration order: description's type error comes first.
    ("{flags: 5, description: 5}",
     TF_OPTIONS + "Failed getting field description, Value is not string.."),
    ("{x: 1, flags: 5}", TF_OPTIONS + "Failed getting field flags, Value is not an array.."),
])
def test_tf_options_errors(tf, options, text):
    assert tf.load_error(f"redis.registerFunction('f', () => 1, {options});") == (
        f"Failed loading library: {text}.")


@pytest.mark.parametrize(("api", "options", "reason"), [
    ("registerFunction('f', () => 1, {o})", "[1]", "Unknown properties given: 0"),
    ("registerAsyncFunction('f', async () => 1, {o})", "{flags: 1}",
     "Failed getting field flags, Value is not an array."),
    ("registerStreamTrigger('s', 'p', () => 1, {o})", "{window: 1.5}",
     "Failed getting field window, Value is not long."),
    ("registerStreamTrigger('s', 'p', () => 1, {o})", "{isStreamTrimmed: 1}",
     "Failed getting field isStreamTrimmed, Value is not a boolean."),
    ("registerStreamTrigger('s', 'p', () => 1, {o})", "{description: 1}",
     "Failed getting field description, Value is not string."),
    ("registerStreamTrigger('s', 'p', () => 1, {o})", "{flags: []}",
     "Unknown properties given: flags"),
    ("registerKeySpaceTrigger('k', 'p', () => 1, {o})", "{description: 1}",
     "Failed getting field description, Value is not string."),
    ("registerKeySpaceTrigger('k', 'p', () => 1, {o})", "[0]", "Unknown properties given: 0"),
    ("registerKeySpaceTrigger('k', 'p', () => 1, {o})", "null", "Given argument must be an object"),
    # Conversion comes before the API's own checks (the callback is not a function here).
    ("registerStreamTrigger('s', 'p', 5, {o})", "{w: 1}", "Unknown properties given: w"),
    ("registerKeySpaceTrigger('k', 'p', 5, {o})", "{w: 1}", "Unknown properties given: w"),
])
def test_tf_options_conversion_per_api(tf, api, options, reason):
    position, type_name = {
        "registerFunction": (2, "Option < NativeFunctionOptionalArgs >"),
        "registerAsyncFunction": (2, "Option < NativeFunctionOptionalArgs >"),
        "registerStreamTrigger": (3, "Option < StreamTriggerOptionalArgs >"),
        "registerKeySpaceTrigger": (3, "Option < NoficationConsumerOptionalArgs >"),
    }[api.partition("(")[0]]
    assert tf.load_error(f"redis.{api.replace('{o}', options)};") == (
        f"Failed loading library: Can not convert value at position {position} into {type_name}."
        f" {reason}..")


def test_tf_options_worked_example_and_rg_contrast(rg, tf):
    assert tf.load_error("redis.registerFunction('f', () => 1, [1]);") == (
        "Failed loading library: Can not convert value at position 2 into Option <"
        " NativeFunctionOptionalArgs >. Unknown properties given: 0..")
    assert rg.load_error("redis.register_function('f', () => 1, [1]);") == (
        "Failed loading library: Failed parsing function flags, wrong type of string value.")



async def test_tf_options_leave_the_callers_object_empty(tf):
    tf.load("""
        const o = {description: 'd', flags: ['no-writes']};
        const t = {description: 'd', window: 2, isStreamTrimmed: false};
        const k = {description: 'd', onTriggerFired: () => 1};
        redis.registerFunction('f', () => 1, o);
        redis.registerStreamTrigger('s', 'p', () => 1, t);
        redis.registerKeySpaceTrigger('k', 'p', () => 1, k);
        redis.registerFunction('left', () => JSON.stringify([o, t, k]));
    """)
    assert await tf.fcall("left") == b"[{},{},{}]"


@pytest.mark.parametrize(("options", "description", "flags"), [
    ("{}", None, 0),
    ("{description: null, flags: undefined}", None, 0),
    ("{description: 'says hi'}", "says hi", 0),
    ("{description: 'd', flags: ['no-writes']}", "d", 1),
    ("[]", None, 0),  # an array is an object (issue 16)
    ("function () {}", None, 0),
    ("Object.assign(() => 1, {description: 'fn'})", "fn", 0),
])
def test_tf_options_accepted(tf, options, description, flags):
    tf.load(f"redis.registerFunction('f', () => 1, {options});")
    fn = tf.host.libraries["lib"].functions["f"]
    assert (fn.description, fn.flags) == (description, flags)


def test_tf_options_for_async_registration(tf):
    tf.load("redis.registerAsyncFunction('f', async () => 1, {description: 'a',"
            " flags: [redis.functionFlags.RAW_ARGUMENTS]});")
    fn = tf.host.libraries["lib"].functions["f"]
    assert (fn.description, fn.flags, fn.is_async) == ("a", 4, True)


# --- §3.4 other registrations (the texts the host owns) ---------------------------------------

@pytest.mark.parametrize(("era", "top_level", "text"), [
    ("rg", "redis.register_notifications_consumer('n', 'p', 5)",
     "Third argument to 'register_notifications_consumer' must be a function"),
    ("rg", "redis.register_notifications_consumer('n', new String('p'), () => 1)",
     ("Second argument to 'register_notifications_consumer' must be a string or ArrayBuffer"
     " representing the prefix")),
    ("rg", ("redis.register_notifications_consumer('n', 'p', () => 1);"
           "redis.register_notifications_consumer('n', 'q', () => 1)"),
     "Notification consumer already exists"),
    ("rg", "redis.register_stream_consumer('s', 'p', 1, false, 5)",
     "The fifth argument to 'register_stream_consumer' must be a function"),
    ("rg", "redis.register_stream_consumer('s', 5, 1, false, () => 1)",
     ("Second argument to 'register_stream_consumer' must be a String or ArrayBuffer"
     " representing the prefix")),
    ("rg", "redis.register_stream_consumer('s', 'p', 1.5, false, () => 1)",
     "Can not convert value at position 2 into i64. Value is not long."),
    ("rg", "redis.register_stream_consumer('s', 'p', 1, 'yes', () => 1)",
     "Can not convert value at position 3 into bool. Value is not a boolean."),
    ("rg", ("redis.register_stream_consumer('s', 'p', 1, false, () => 1);"
           "redis.register_stream_consumer('s', 'q', 1, false, () => 1)"),
     "Stream registration already exists"),
    ("rg", "redis.register_remote_function('r', 5)",
     "Second argument to 'register_remote_function' must be a function"),
    ("rg", "redis.register_remote_function('r', () => 1)", "Remote function must be async"),
    ("rg", ("redis.register_remote_function('r', async () => 1);"
           "redis.register_remote_function('r', async () => 1)"),
     "Remote function r already exists"),
    ("tf", "redis.registerKeySpaceTrigger('n', 'p', 5)",
     "Third argument to 'registerKeySpaceTrigger' must be a function"),
    ("tf", "redis.registerKeySpaceTrigger('n', 'p', () => 1, {onTriggerFired: async () => 1})",
     "'onTriggerFired' argument to 'registerKeySpaceTrigger' must be a function"),
    ("tf", "redis.registerKeySpaceTrigger('n-1', 'p', () => 1)",
     "Unallowed key space trigger name 'n-1', Unallowed char was given '-'."),
    ("tf", "redis.registerStreamTrigger('s', 'p', 5)",
     "The fifth argument to 'registerStreamTrigger' must be a function"),
    ("tf", "redis.registerStreamTrigger('s', 'p', () => 1, {window: 0})",
     "window argument must be a positive number"),
    ("tf", "redis.registerStreamTrigger('s', 'p', () => 1, undefined)",
     ("Can not convert value at position 3 into Option < StreamTriggerOptionalArgs >."
     " Given argument must be an object.")),
    ("tf", "redis.registerClusterFunction('r', () => 1)", "Remote function must be async"),
    ("tf", "redis.registerClusterFunction('r-', async () => 1)",
     "Unallowed cluster function name 'r-', Unallowed char was given '-'."),
])
def test_other_registration_errors(host_driver, era, top_level, text):
    drv = host_driver(era)
    assert drv.load_error(top_level + f";\nredis.{drv.api.register}('f', () => 1);") == (
        f"Failed loading library: {text}.")


# --- redis.log (§3.6) --------------------------------------------------------------------------

async def test_log_goes_to_the_library_logger(host_driver, caplog):
    message = "a\nb\t\"q\" 'x' \\ caf\u00e9 \U0001F600"
    escaped = "a\\nb\\t\\\"q\\\" \\'x\\' \\\\ caf\\u{e9} \\u{1f600}"
    # rg writes the message as it is, but for the control characters that could end the line.
    rg_escaped = "a\\nb\t\"q\" 'x' \\ caf\u00e9 \U0001F600"
    for era, expected in (("rg", rg_escaped), ("tf", escaped)):
        drv = host_driver(era)
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="jshost.lib"):
            drv.load(f"redis.log({message!r}.normalize());\n"
                     f"redis.{drv.api.register}('f', () => 1);")
        records = [r for r in caplog.records if r.name == "jshost.lib"]
        assert [(r.levelno, r.getMessage()) for r in records] == [(logging.INFO, expected)]


@pytest.mark.parametrize(("message", "logged"), [
    ("ok\nINFO:jshost:forged line", "ok\\nINFO:jshost:forged line"),
    ("a\r\nb", "a\\r\\nb"),
    ("\x1b[2Jclear screen", "\\u{1b}[2Jclear screen"),
    ("nul\0del\x7fc1\x85", "nul\\u{0}del\\u{7f}c1\\u{85}"),
    ("line\u2028separator\u2029", "line\\u{2028}separator\\u{2029}"),
    ("tab\tand caf\u00e9 stay", "tab\tand caf\u00e9 stay"),
])
async def test_rg_log_cannot_forge_lines(rg, caplog, message, logged):
    """rg wrote the message unchanged (§3.6); jshost escapes what could end the log line, so a
    library cannot write a line that looks like jshost's own."""
    rg.load("redis.register_function('log', (c, m) => { redis.log(m); return 1; });")
    with caplog.at_level(logging.INFO, logger="jshost.lib"):
        await rg.fcall("log", message)
    assert [r.getMessage() for r in caplog.records if r.name == "jshost.lib"] == [logged]


async def test_log_works_locked_in_background_and_returns_undefined(jh, caplog):
    jh.load(f"""
        redis.{jh.api.register}('locked', () => typeof redis.log('from a function'));
        redis.{jh.api.register_async}('bg', async (ac) => {{
            await null;
            redis.log('from the background');
            return ac.block(() => {{ redis.log(new String('from block')); return 'done'; }});
        }});
    """)
    with caplog.at_level(logging.INFO, logger="jshost.lib"):
        assert await jh.fcall("locked") == b"undefined"
        assert await jh.fcall_async("bg") == b"done"
    assert [r.getMessage() for r in caplog.records if r.name == "jshost.lib"] == [
        "from a function", "from the background", "from block"]


async def test_log_needs_a_string(jh):
    jh.load(f"""
        redis.{jh.api.register}('f', () => {{
            try {{ redis.log(5); }} catch (e) {{ return [typeof e, e]; }}
        }});
    """)
    assert await jh.fcall("f") == [
        b"string", b"Can not convert value at position 0 into V8LocalUtf8. Value is not string."]


# --- §3.7 globals --------------------------------------------------------------------------------

ALLOWED_GLOBALS = {
    "Object", "Function", "Array", "Number", "parseFloat", "parseInt", "Infinity", "NaN",
    "undefined", "Boolean", "String", "Symbol", "Date", "Promise", "RegExp", "Error",
    "AggregateError", "RangeError", "ReferenceError", "SyntaxError", "TypeError", "URIError",
    "globalThis", "JSON", "Math", "Intl", "ArrayBuffer", "Uint8Array", "Int8Array",
    "Uint16Array", "Int16Array", "Uint32Array", "Int32Array", "Float32Array", "Float64Array",
    "Uint8ClampedArray", "BigUint64Array", "BigInt64Array", "DataView", "Map", "BigInt",
    "Set", "WeakMap", "WeakSet", "Proxy", "Reflect", "FinalizationRegistry", "WeakRef",
    "decodeURI", "decodeURIComponent", "encodeURI", "encodeURIComponent", "escape",
    "unescape", "isFinite", "isNaN", "console", "WebAssembly",
}
NOT_IN_QUICKJS = {"Intl", "WebAssembly"}  # §11 row 17: left out


async def test_only_the_allowed_globals(jh):
    jh.load(f"redis.{jh.api.register}('g', () =>"
            f" Object.getOwnPropertyNames(globalThis).join(' '));")
    names = set((await jh.fcall("g")).decode().split())
    expected = (ALLOWED_GLOBALS - NOT_IN_QUICKJS) | {"redis"}
    if jh.era == "tf":
        expected.add("Iterator")
    assert names == expected


@pytest.mark.parametrize("name", [
    "eval", "EvalError", "SharedArrayBuffer", "Atomics", "std", "os", "print", "scriptArgs",
    "bjson", "Operators", "BigFloat", "BigDecimal", "__loadScript", "setTimeout", "setInterval",
    "queueMicrotask", "structuredClone", "performance", "navigator",
])
async def test_removed_globals(jh, name):
    jh.load(f"redis.{jh.api.register}('t', () => typeof globalThis['{name}'] + ':' +"
            f" (() => {{ try {{ {name}; return 'found'; }}"
            f" catch (e) {{ return e.name; }} }})());")
    assert await jh.fcall("t") == b"undefined:ReferenceError"


async def test_iterator_is_tf_only(host_driver):
    rg, tf = host_driver("rg"), host_driver("tf")
    rg.load("redis.register_function('t', () => typeof Iterator);")
    tf.load("redis.registerFunction('t', () => typeof Iterator);")
    assert (await rg.fcall("t"), await tf.fcall("t")) == (b"undefined", b"function")


async def test_the_other_era_api_is_absent(host_driver):
    rg, tf = host_driver("rg"), host_driver("tf")
    rg.load("redis.register_function('t', () => [typeof redis.registerFunction,"
            " typeof redis.register_function, Object.keys(redis).sort().join(',')]);")
    tf.load("redis.registerFunction('t', () => [typeof redis.register_function,"
            " typeof redis.registerFunction, Object.keys(redis).sort().join(',')]);")
    assert await rg.fcall("t") == [
        b"undefined", b"function",
        (b"api_version,config,log,redisai,register_async_function,register_function,"
        b"register_notifications_consumer,register_remote_function,register_stream_consumer,"
        b"v8_version")]
    assert await tf.fcall("t") == [
        b"undefined", b"function",
        (b"apiVersion,config,functionFlags,log,redisai,registerAsyncFunction,"
        b"registerClusterFunction,registerFunction,registerKeySpaceTrigger,registerStreamTrigger,"
        b"v8Version")]


async def test_console_is_a_no_op(jh, caplog):
    jh.load(f"redis.{jh.api.register}('t', () => ["
            f" console.log('x'), console.error('y'), console.warn('z'), console.info('i'),"
            f" console.debug('d'), typeof console.log]);")
    with caplog.at_level(logging.DEBUG):
        assert await jh.fcall("t") == [b"undefined"] * 5 + [b"function"]
    assert not [r for r in caplog.records if r.name.startswith("jshost.lib")]


# --- §3.7 the replaced Promise ---------------------------------------------------------------

async def test_promise_static_methods_are_undefined(jh):
    jh.load(f"redis.{jh.api.register}('t', () => ['resolve', 'reject', 'all', 'allSettled',"
            f" 'any', 'race', 'withResolvers', 'try'].map((m) => typeof Promise[m]));")
    assert await jh.fcall("t") == [b"undefined"] * 8


async def test_promise_instances(jh):
    jh.load(f"""
        redis.{jh.api.register}('t', () => {{
            const p = new Promise(() => {{}});
            const q = Promise(() => {{}});  // the host function returns the promise
            return [p instanceof Promise, typeof p.then, typeof q.then,
                    (async () => 1)() instanceof Promise];
        }});
    """)
    assert await jh.fcall("t") == [False, b"function", b"function", False]


@pytest.mark.parametrize("executor", ["async () => {}", "5", "undefined", "'f'",
                                      "async function () {}"])
async def test_promise_needs_a_sync_function(jh, executor):
    jh.load(f"redis.{jh.api.register}('t', () => {{"
            f" try {{ new Promise({executor}); }} catch (e) {{ return [typeof e, e]; }} }});")
    assert await jh.fcall("t") == [b"string", b"Bad argument to 'Promise' function"]


async def test_promise_executor_runs_at_once(jh):
    jh.load(f"redis.{jh.api.register}('t', () => {{ let ran = false;"
            f" new Promise(() => {{ ran = true; }}); return ran; }});")
    assert await jh.fcall("t") is True


async def test_resolve_settles_in_a_later_job(jh):
    jh.load(f"""
        redis.{jh.api.register_async}('t', async () => {{
            let resolve;
            const p = new Promise((res) => {{ resolve = res; }});
            let done = false;
            p.then(() => {{ done = true; }});
            resolve('v');
            for (let i = 0; i < 10; i++) await null;  // microtasks alone do not settle it
            const before = done;
            const value = await p;
            return [before, done, value];
        }});
    """)
    assert await jh.fcall_async("t") == [False, True, b"v"]


async def test_resolved_promise_is_pending_when_sync_code_returns(jh):
    jh.load(f"redis.{jh.api.register}('t', () => new Promise((res) => res('later')));")
    assert await jh.fcall_error("t") == (
        "Can not block client for background execution, Blocking is not allow inside"
        " multi/exec, Lua, or within another module (RM_Call).")
    assert await jh.fcall_async("t") == b"later"


@pytest.mark.parametrize(("executor", "outcome"), [
    ("(res, rej) => { res('first'); res('second'); rej('third'); }", b"first"),
    ("(res, rej) => { rej('first'); res('second'); rej('third'); }", "first"),
])
async def test_only_the_first_settle_counts(jh, executor, outcome):
    jh.load(f"redis.{jh.api.register_async}('t', () => new Promise({executor}));")
    if isinstance(outcome, bytes):
        assert await jh.fcall_async("t") == outcome
    else:
        assert await jh.fcall_async_error("t") == outcome


async def test_resolve_after_delete_throws_library_was_deleted(jh):
    jh.load(f"""
        let saved;
        redis.{jh.api.register}('keep', () => {{ new Promise((res) => {{ saved = res; }}); return 1; }});
        redis.{jh.api.register_async}('later', (c) => c.{jh.api.background}(async () => {{
            try {{ saved('x'); return 'no error'; }} catch (e) {{ return [typeof e, e]; }}
        }}));
        redis.{jh.api.register_async}('make', (c) => c.{jh.api.background}(async () =>
            new Promise((res) => res('made'))));
    """)
    assert await jh.fcall("keep") == 1
    later = jh.host.call(jh.era, CallArgs("lib", "later", 0, []), asynchronous=True)
    make = jh.host.call(jh.era, CallArgs("lib", "make", 0, []), asynchronous=True)
    assert isinstance(later, asyncio.Future) and isinstance(make, asyncio.Future)
    jh.host.delete("lib")
    assert await later == [b"string", b"Library was deleted"]
    assert await jh.error(make) == "Library was deleted"
