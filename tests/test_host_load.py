"""Library host: the prologue at load, the load stages, upgrade and delete (SPEC §1, §2.1, §2.2).

Texts are written out here from the spec, not taken from jshost.errors, so these tests check
the texts too.
"""

from __future__ import annotations

import asyncio

import pytest

from jshost.host.requests import CallArgs

INVALID = (
    "Invalid or missing prologue. The rules for the prologue are: a) It starts on the first"
    ' line. b) It is formatted as follows: "#!<engine name> <key>=<value>".'
)
BODY = "\nredis.register_function('f', () => 1);"  # rg; tf libraries below use their own
TF_BODY = "\nredis.registerFunction('f', () => 1);"
TERMINATED = "Err Execution was terminated due to OOM or timeout"

# (first line, error text) — rg gets the text bare, tf with `Failed to compile library: `.
PROLOGUE_ERRORS = [
    ("", INVALID),
    ("js api_version=1.0 name=lib", INVALID),
    (" #!js api_version=1.0 name=lib", INVALID),
    ("\ufeff#!js api_version=1.0 name=lib", INVALID),
    ("#!js api_version=1.0  name=lib", INVALID),
    ("#!js api_version=1.0 name=", INVALID),
    ("#!js api_version=1.0 name=lib stray", INVALID),
    ("#!js api_version=1.0 name=lib=x", INVALID),
    ("#!js api_version=1.0 name=lib name=other", "Duplicated prologue properties found: name."),
    ("#!js name=lib", "The api version is missing from the prologue."),
    ("#!js api_version=1 name=lib",
     ('The API version has been incorrectly specified: "1". The expected format is'
     ' "<major>.<minor>". An example: "1.1".')),
    ("#!js api_version=1.x name=lib",
     ('The API version has been incorrectly specified: "1.x". The expected format is'
     ' "<major>.<minor>". An example: "1.1".')),
    ("#!js api_version=1.0", "The library name is missing from the prologue."),
    ("#!js api_version=1.0 name=lib foo=1 bar=2",
     'Unknown prologue properties provided: "foo", "bar". Known properties: api_version, name.'),
    ("#!lua api_version=1.0 name=lib", "Unknown backend lua"),
    ("#!JS api_version=1.0 name=lib", "Unknown backend JS"),
]


@pytest.mark.parametrize(("line", "text"), PROLOGUE_ERRORS)
def test_prologue_errors_reach_load(host_driver, line, text):
    rg, tf = host_driver("rg"), host_driver("tf")
    assert rg.load_error(line + BODY, raw=True) == text
    assert tf.load_error(line + TF_BODY, raw=True) == "Failed to compile library: " + text
    assert not rg.host.libraries and not tf.host.libraries


def test_tf_library_name_rule_and_rg_freedom(host_driver):
    tf = host_driver("tf")
    assert tf.load_error("#!js api_version=1.0 name=a-b" + TF_BODY, raw=True) == (
        "Failed to compile library: Unallowed library name 'a-b', Unallowed char was given '-'.")
    rg = host_driver("rg")
    assert rg.load("#!js api_version=1.0 name=a-b" + BODY, raw=True) == "a-b"


def test_trailing_space_in_prologue(host_driver):
    """rg: a trailing space makes the prologue invalid; tf trims it (§1.2 step 3)."""
    assert host_driver("rg").load_error("#!js api_version=1.0 name=lib " + BODY,
                                        raw=True) == INVALID
    assert host_driver("tf").load("#!js api_version=1.0 name=lib " + TF_BODY, raw=True) == "lib"


def test_prologue_checked_before_compiling(jh):
    assert jh.load_error("#!js name=lib\nthis is not javascript", raw=True).endswith(
        "The api version is missing from the prologue.")


def test_compile_error_wording(host_driver):
    rg, tf = host_driver("rg"), host_driver("tf")
    rg_text = rg.load_error("redis.register_function('f', () => 1);\nfoo bar(")
    tf_text = tf.load_error("redis.registerFunction('f', () => 1);\nfoo bar(")
    assert rg_text.startswith("Failed library compilation: SyntaxError: ")
    assert tf_text.startswith("Failed to compile library: SyntaxError: ")
    assert rg_text.removeprefix("Failed library compilation: ") == tf_text.removeprefix(
        "Failed to compile library: ")


@pytest.mark.parametrize("version", ["1.2", "2.0", "0.9"])
def test_unsupported_api_version_is_a_compile_error(jh, version):
    text = jh.load_error(jh.code(f"redis.{jh.api.register}('f', () => 1);",
                                 api_version=version), raw=True)
    assert text == (jh.api.compile_prefix + f"An unsupported API version was requested:"
                    f" {version}. The supported versions are 1.0, 1.1.")


def test_unsupported_api_version_shown_normalised(jh):
    code = jh.code(f"redis.{jh.api.register}('f', () => 1);", api_version="02.00")
    assert jh.load_error(code, raw=True) == (
        jh.api.compile_prefix
        + "An unsupported API version was requested: 2.0. The supported versions are 1.0, 1.1.")


def test_syntax_error_wins_over_unsupported_version(jh):
    text = jh.load_error(jh.code("foo bar(", api_version="1.2"), raw=True)
    assert text.startswith(jh.api.compile_prefix + "SyntaxError")


@pytest.mark.parametrize("version", ["1.0", "1.1", "1.0.7", "+1.0"])
async def test_supported_versions_get_the_newest_api(jh, version):
    jh.load(jh.code(f"redis.{jh.api.register}('v', () => redis.{jh.api.api_version}());",
                    api_version=version), raw=True)
    assert await jh.fcall("v") == b"1.1"


async def test_engine_version_is_a_string(jh):
    jh.load(f"redis.{jh.api.register}('v', () => typeof redis.{jh.api.engine_version}()"
            f" + ':' + redis.{jh.api.engine_version}());")
    assert (await jh.fcall("v")).startswith(b"string:quickjs-ng ")


def test_library_already_exists(jh):
    body = f"redis.{jh.api.register}('f', () => 1);"
    jh.load(body)
    assert jh.load_error(body) == "Library lib already exists."


def test_syntax_error_and_unsupported_version_win_over_the_name_clash(jh):
    body = f"redis.{jh.api.register}('f', () => 1);"
    jh.load(body)
    assert jh.load_error("foo bar(").startswith(jh.api.compile_prefix + "SyntaxError")
    assert jh.load_error(jh.code(body, api_version="1.5"), raw=True).startswith(
        jh.api.compile_prefix + "An unsupported API version")


def test_name_clash_before_running_top_level(jh, caplog):
    """The clash is found before the new code runs: its top level never logs."""
    body = f"redis.{jh.api.register}('f', () => 1);"
    jh.load(body)
    with caplog.at_level("INFO", logger="jshost.lib"):
        assert jh.load_error("redis.log('ran');" + body) == "Library lib already exists."
    assert "ran" not in caplog.messages


@pytest.mark.parametrize(("top_level", "msg"), [
    ("throw 'bad config';", "bad config"),
    ("throw new Error('boom');", "Error: boom"),
    ("throw new Error('ends with a stop.');", "Error: ends with a stop."),
    ("throw new TypeError('t');", "TypeError: t"),
    ("throw null;", "null"),
    ("throw 5;", "5"),
    ("throw {a: 1};", "[object Object]"),
    ("undefinedName.x;", None),
])
def test_failed_loading_library(jh, top_level, msg):
    text = jh.load_error(f"redis.{jh.api.register}('f', () => 1);\n{top_level}")
    assert text.startswith("Failed loading library: ") and text.endswith(".")
    if msg is not None:
        assert text == f"Failed loading library: {msg}."
    else:
        assert text.startswith("Failed loading library: ReferenceError: ")
    assert "lib" not in jh.host.libraries


def test_double_full_stop(jh):
    assert jh.load_error("throw 'x.';") == "Failed loading library: x.."


def test_registration_error_while_loading_is_wrapped(jh):
    assert jh.load_error(f"redis.{jh.api.register}('f', 5);") == (
        f"Failed loading library: Second argument to '{jh.api.register}' must be a function.")


def test_caught_registration_error_does_not_fail_the_load(jh):
    jh.load(f"try {{ redis.{jh.api.register}('f', 5); }} catch (e) {{}}\n"
            f"redis.{jh.api.register}('g', () => 1);")
    assert set(jh.host.libraries["lib"].functions) == {"g"}


def test_nothing_registered(host_driver):
    assert host_driver("rg").load_error("const x = 1;") == (
        "No function nor registrations was registered")
    assert host_driver("tf").load_error("const x = 1;") == (
        "Neither function nor other registrations were found.")


def test_remote_functions_alone_do_not_count(host_driver):
    rg, tf = host_driver("rg"), host_driver("tf")
    assert rg.load_error("redis.register_remote_function('r', async () => 1);") == (
        "No function nor registrations was registered")
    assert tf.load_error("redis.registerClusterFunction('r', async () => 1);") == (
        "Neither function nor other registrations were found.")


def test_triggers_count_as_registrations(host_driver):
    assert host_driver("rg").load("redis.register_notifications_consumer('n', 'p', () => 1);")
    assert host_driver("rg").load(
        "redis.register_stream_consumer('s', 'p', 1, false, () => 1);")
    assert host_driver("tf").load("redis.registerKeySpaceTrigger('n', 'p', () => 1);")
    assert host_driver("tf").load("redis.registerStreamTrigger('s', 'p', () => 1);")


async def test_top_level_loop_is_stopped(host_driver):
    for era in ("rg", "tf"):
        drv = host_driver(era, lock_redis_timeout="100")
        body = f"redis.{drv.api.register}('f', () => 1);\n"
        assert drv.load_error(body + "while (true) {}") == (
            f"Failed loading library: {TERMINATED}.")
        assert drv.load_error(body + "try { while (true) {} } catch (e) {}") == (
            f"Failed loading library: {TERMINATED}.")
        assert drv.load(body) == "lib"  # the host still loads libraries
        assert await drv.fcall("f") == 1


async def test_shebang_line_counts_in_stacks(rg):
    """The prologue stays part of the code: line numbers in stacks count it (§1.1)."""
    rg.load("// line 2\nredis.register_function('where', () => new Error('x').stack);")
    assert ":3:" in (await rg.fcall("where")).decode()


async def test_redis_config(jh):
    jh.load(f"redis.{jh.api.register}('cfg', () => JSON.stringify(redis.config));\n"
            f"redis.{jh.api.register}('n', () => typeof redis.config.n);",
            config_text='{"n": 5, "s": "x", "nested": {"a": [1, 2]}}')
    assert await jh.fcall("cfg") == b'{"n":5,"s":"x","nested":{"a":[1,2]}}'
    assert await jh.fcall("n") == b"number"


async def test_redis_config_defaults_to_empty_object(jh):
    jh.load(f"redis.{jh.api.register}('cfg', () => [typeof redis.config,"
            f" JSON.stringify(redis.config)]);")
    assert await jh.fcall("cfg") == [b"object", b"{}"]


def test_config_checked_by_the_library(jh):
    body = (f"if (redis.config.mode !== 'fast') throw 'mode must be fast';\n"
            f"redis.{jh.api.register}('f', () => 1);")
    assert jh.load_error(body, config_text='{"mode": "slow"}') == (
        "Failed loading library: mode must be fast.")
    assert jh.load(body, config_text='{"mode": "fast"}') == "lib"


def test_library_keeps_what_load_was_given(rg):
    rg.load("redis.register_function('f', () => 1);", config_text='{"a":1}', user="alice")
    lib = rg.host.libraries["lib"]
    assert (lib.config_text, lib.user, lib.era, lib.prologue.api_version) == (
        '{"a":1}', "alice", "rg", (1, 0))
    assert lib.code.startswith("#!js api_version=1.0 name=lib\n")


# --- upgrade (§2.1) ----------------------------------------------------------------------------

OLD = """
let n = 0;
redis.{register}('inc', () => ++n);
redis.{register}('only_old', () => 'old');
redis.{register}('which', () => 'v1');
"""


@pytest.mark.parametrize("new_body", [
    "foo bar(",
    "redis.{register}('which', () => 'v2');\nthrow 'no';",
    "redis.{register}('which', () => 'v2');\nthrow new Error('no');",
    "const nothing = 1;",
    "redis.{register}('which', () => 'v2');\nwhile (true) {{}}",
    "redis.{register}('which', () => 'v2');\nredis.{register}('which', () => 'v3');",
])
async def test_failed_upgrade_leaves_the_old_library_serving(host_driver, new_body):
    for era in ("rg", "tf"):
        drv = host_driver(era, lock_redis_timeout="100")
        drv.load(OLD.format(register=drv.api.register))
        assert await drv.fcall("inc") == 1
        old = drv.host.libraries["lib"]
        drv.load_error(new_body.format(register=drv.api.register), replace=True)
        assert drv.host.libraries["lib"] is old
        assert await drv.fcall("inc") == 2  # the same runtime: its state is intact
        assert await drv.fcall("which") == b"v1"
        assert await drv.fcall("only_old") == b"old"


async def test_failed_upgrade_texts(rg):
    rg.load(OLD.format(register="register_function"))
    assert rg.load_error("throw 'no';", replace=True) == "Failed loading library: no."
    assert rg.load_error("const x = 1;", replace=True) == (
        "No function nor registrations was registered")
    assert rg.load_error("foo bar(", replace=True).startswith(
        "Failed library compilation: SyntaxError")


async def test_upgrade_refuses_a_stream_prefix_change(host_driver):
    for era, register in (("rg", "redis.register_stream_consumer('s', '{p}', 1, false, () => 1)"),
                          ("tf", "redis.registerStreamTrigger('s', '{p}', () => 1)")):
        drv = host_driver(era)
        drv.load(register.format(p="a") + f";\nredis.{drv.api.register}('which', () => 'v1');")
        old = drv.host.libraries["lib"]
        text = drv.load_error(register.format(p="b")
                              + f";\nredis.{drv.api.register}('which', () => 'v2');",
                              replace=True)
        assert text == ("Failed loading library: Can not upgrade an existing consumer with"
                        " different prefix, consumer: 's', old_prefix: a, new_prefix: b..")
        assert drv.host.libraries["lib"] is old
        assert old.stream_triggers["s"].prefix == b"a"
        assert await drv.fcall("which") == b"v1"


async def test_successful_upgrade_replaces_functions_wholesale(jh):
    jh.load(OLD.format(register=jh.api.register))
    assert await jh.fcall("inc") == 1
    jh.load(f"let n = 100;\nredis.{jh.api.register}('inc', () => ++n);\n"
            f"redis.{jh.api.register}('which', () => 'v2');\n"
            f"redis.{jh.api.register}('only_new', () => 'new');", replace=True)
    assert await jh.fcall("inc") == 101
    assert await jh.fcall("which") == b"v2"
    assert await jh.fcall("only_new") == b"new"
    assert await jh.fcall_error("only_old") == "Unknown function only_old"


async def test_upgrade_without_existing_library_is_a_load(jh):
    assert jh.load(f"redis.{jh.api.register}('f', () => 1);", replace=True) == "lib"
    assert await jh.fcall("f") == 1


async def test_queued_background_work_of_the_old_version_finishes(rg):
    """rg: a job queued by the old version runs in the old runtime after the upgrade."""
    rg.load("redis.register_async_function('bg', (c) =>"
            " c.run_on_background(async () => 'answer from v1'));")
    pending = rg.host.call("rg", CallArgs("lib", "bg", 0, []), asynchronous=True)
    assert isinstance(pending, asyncio.Future) and not pending.done()
    rg.load("redis.register_async_function('bg', async () => 'v2');", replace=True)
    assert await pending == b"answer from v1"
    assert await rg.fcall_async("bg") == b"v2"


async def test_pending_coroutine_of_the_old_version_answers_after_upgrade(tf):
    tf.load("redis.registerAsyncFunction('pop', async (ac, key) => {\n"
            "  const v = await ac.block((c) => c.callAsync('blpop', key, '0'));\n"
            "  return 'v1 got ' + v[1];\n"
            "});\n"
            "redis.registerFunction('push', (c, key, v) => c.call('rpush', key, v));")
    waiting = asyncio.ensure_future(tf.fcall_async("pop", keys=("q",)))
    old = tf.host.libraries["lib"]
    while not old.pending_async_calls:  # the coroutine has reached its BLPOP
        await asyncio.sleep(0)
    tf.load("redis.registerAsyncFunction('pop', async () => 'v2');\n"
            "redis.registerFunction('push', (c, key, v) => c.call('rpush', key, v));",
            replace=True)
    assert tf.host.libraries["lib"] is not old
    assert not waiting.done()
    assert await tf.fcall("push", "x", keys=("q",)) == 1
    assert await waiting == b"v1 got x"
    assert await tf.fcall_async("pop") == b"v2"


# --- delete (§2.2) -----------------------------------------------------------------------------

async def test_delete(jh):
    jh.load(f"redis.{jh.api.register}('f', () => 1);")
    jh.host.delete("lib")
    assert await jh.fcall_error("f") == "Unknown library lib"
    assert jh.load(f"redis.{jh.api.register}('f', () => 2);") == "lib"
    assert await jh.fcall("f") == 2


def test_delete_unknown_library(jh):
    from jshost.errors import ReplyError

    with pytest.raises(ReplyError) as info:
        jh.host.delete("nope")
    assert info.value.text == "library does not exists"


async def test_delete_lets_started_background_work_finish(rg):
    rg.load("redis.register_async_function('bg', (c) =>"
            " c.run_on_background(async () => 'finished'));")
    pending = rg.host.call("rg", CallArgs("lib", "bg", 0, []), asynchronous=True)
    rg.host.delete("lib")
    assert await pending == b"finished"


async def test_top_level_completion_value_is_ignored(jh):
    jh.load(f"redis.{jh.api.register}('f', () => 1);\n"
            "const a = {}; a.self = a; a")  # a cyclic last value, no newline at the end
    jh.load(f"redis.{jh.api.register}('f', () => 2);\n// a comment at the end", name="other")
    assert await jh.fcall("f") == 1
    assert await jh.fcall("f", lib="other") == 2


def test_load_outside_an_event_loop_keeps_its_jobs(rg):
    """A library loaded before any loop runs may resolve promises at top level: the jobs wait
    for the loop instead of failing the load."""
    rg.load("let v = 'unset';\n"
            "new Promise((res) => res('set')).then((x) => { v = x; });\n"
            "redis.register_function('get', () => v);\n"
            "redis.register_async_function('co', async () => v);")

    async def later():
        assert await rg.fcall("get") == b"unset"
        return await rg.fcall_async("co")  # starts after the deferred job ran

    assert asyncio.run(later()) == b"set"
