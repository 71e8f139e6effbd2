"""The pytest plugin (`jshost.pytest_plugin`), exercised the way a library author uses it: a
generated test suite next to a generated library, run by pytester."""

from __future__ import annotations

import textwrap
from importlib.metadata import entry_points

import pytest

import jshost.pytest_plugin as plugin

pytest_plugins = ["pytester"]

# The plugin is normally loaded through its `pytest11` entry point; an environment where the
# package was not reinstalled since the entry point was added loads it explicitly instead.
_REGISTERED = any(ep.name == "jshost" and ep.value == "jshost.pytest_plugin"
                  for ep in entry_points(group="pytest11"))
PLUGIN_ARGS = [] if _REGISTERED else ["-p", "jshost.pytest_plugin"]
# Quiet pytest-asyncio's warning about an unset loop scope in the generated suites.
PLUGIN_ARGS += ["-o", "asyncio_default_fixture_loop_scope=function"]

COUNTER_LIB = """\
#!js api_version=1.0 name=counter
redis.register_function('hello', (client, name) => `hello ${name}`);
redis.register_function('incr', (client, key) => client.call('incr', key));
redis.register_async_function('slow_incr', async (client, key) => {
  await null;
  return client.block((c) => c.call('incr', key));
});
"""

COUNTER_LIB_TF = """\
#!js api_version=1.0 name=counter_tf
redis.registerFunction('incr', (client, key) => client.call('incr', key),
  { description: 'adds one' });
redis.registerAsyncFunction('pop', async (client, key) =>
  client.block((c) => c.callAsync('blpop', key, '0')));
"""

BOOM_LIB = """\
#!js api_version=1.0 name=boom
function check(answer) {
  if (answer !== 42) throw new Error(`the answer is not ${answer}`);
  return answer;
}
redis.register_function('check', (client, answer) => check(Number(answer)));
"""


def _write_libraries(pytester: pytest.Pytester) -> None:
    """Libraries in tests/libs/, to be loaded by tests in tests/ through a relative path."""
    libs = pytester.path / "tests" / "libs"
    libs.mkdir(parents=True)
    (libs / "counter.js").write_text(COUNTER_LIB)
    (libs / "counter_tf.js").write_text(COUNTER_LIB_TF)
    (libs / "boom.js").write_text(BOOM_LIB)


def _write_test(pytester: pytest.Pytester, source: str) -> None:
    (pytester.path / "tests" / "test_generated.py").write_text(textwrap.dedent(source))


def test_plugin_is_registered_through_its_entry_point(request: pytest.FixtureRequest) -> None:
    assert _REGISTERED, "reinstall the package (pip install -e .) to register the entry point"
    assert request.config.pluginmanager.get_plugin("jshost") is plugin


def test_a_passing_suite(pytester: pytest.Pytester) -> None:
    _write_libraries(pytester)
    _write_test(pytester, """
        import pytest
        from jshost.pytest_plugin import JSHostError

        def test_calls(jshost):
            lib = jshost.load_file("libs/counter.js")   # relative to this file, not the cwd
            assert lib.name == "counter"
            assert lib.fcall("hello", args=["world"]) == b"hello world"
            assert lib.fcall("incr", keys=["c"]) == 1
            assert lib.fcall_async("slow_incr", keys=["c"]) == 2
            assert jshost.store.execute("GET", "c") == b"2"
            assert jshost.store.execute("EXPIRE", "c", 100) == 1   # ints are fine as words
            assert [entry["name"] for entry in jshost.list()] == ["counter"]
            assert lib.list(verbosity=1)["functions"][2]["is_async"] is True

        def test_a_fresh_store_per_test(jshost):
            assert jshost.store.execute("GET", "c") is None
            assert jshost.list() == []

        def test_tf_library(jshost):
            lib = jshost.load_file("libs/counter_tf.js", era="tf")
            assert lib.fcall("incr", keys=["n"]) == 1
            jshost.store.execute("RPUSH", "q", "job")
            assert lib.fcall_async("pop", keys=["q"]) == [b"q", b"job"]
            assert lib.list(verbosity=1)["functions"][0]["description"] == "adds one"

        def test_inline_code_and_config(jshost):
            lib = jshost.load(
                "#!js api_version=1.0 name=cfg\\n"
                "redis.register_function('get', () => redis.config.greeting);",
                config={"greeting": "hi"})
            assert lib.fcall("get") == b"hi"
            assert lib.list()["configuration"] == '{"greeting": "hi"}'

        def test_expected_failures(jshost):
            lib = jshost.load_file("libs/boom.js")
            assert lib.fcall("check", args=["42"]) == 42
            with pytest.raises(JSHostError) as info:
                lib.fcall("check", args=["7"])
            assert info.value.text == "Error: the answer is not 7"
            with pytest.raises(JSHostError, match="Unknown function nope"):
                lib.fcall("nope")
            jshost.store.execute("SET", "s", "x")
            with pytest.raises(JSHostError) as info:
                jshost.store.execute("LPUSH", "s", "y")
            assert info.value.text.startswith("WRONGTYPE Operation against a key")

        @pytest.mark.jshost_settings(error_verbosity=2)
        def test_settings_marker(jshost):
            assert jshost.settings["error-verbosity"] == 2
            jshost.config_set("error-verbosity", 1)
            assert jshost.settings["error-verbosity"] == 1
    """)
    result = pytester.runpytest(*PLUGIN_ARGS)
    result.assert_outcomes(passed=6)


def test_a_failing_function_shows_the_js_error(pytester: pytest.Pytester) -> None:
    _write_libraries(pytester)
    _write_test(pytester, """
        import pytest

        def test_default_verbosity(jshost):
            lib = jshost.load_file("libs/boom.js")
            lib.fcall("check", args=["41"])

        @pytest.mark.jshost_settings(error_verbosity=2)
        def test_with_stack(jshost):
            lib = jshost.load_file("libs/boom.js")
            lib.fcall("check", args=["43"])
    """)
    result = pytester.runpytest(*PLUGIN_ARGS)
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines([
        "*JSHostError: RG.FCALL boom check: Error: the answer is not 41",
        "*JSHostError: RG.FCALL boom check: Error: the answer is not 43",
        # The stack, one frame a line, pointing at the library's file and line.
        "E    * at check (tests/libs/boom.js:3:*)",
        "E    * at <anonymous> (tests/libs/boom.js:6:*)",
    ])
    assert "jshost prelude" not in result.stdout.str()
    # The failing line of the test is shown, not the plugin's internals.
    result.stdout.fnmatch_lines(['>*lib.fcall("check", args=?"43"?)'])
    assert "pytest_plugin.py" not in result.stdout.str()


def test_a_failing_load_shows_the_error(pytester: pytest.Pytester) -> None:
    _write_libraries(pytester)
    (pytester.path / "tests" / "libs" / "bad.js").write_text(
        "#!js api_version=1.0 name=bad\nredis.register_function('f', 5);\n")
    _write_test(pytester, """
        def test_load(jshost):
            jshost.load_file("libs/bad.js")
    """)
    result = pytester.runpytest(*PLUGIN_ARGS)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        ("*JSHostError: RG.FUNCTION LOAD tests/libs/bad.js: Failed loading library: Second"
         " argument to 'register_function' must be a function."),
    ])


def test_an_async_suite(pytester: pytest.Pytester) -> None:
    pytest.importorskip("pytest_asyncio")
    _write_libraries(pytester)
    _write_test(pytester, """
        import asyncio
        import pytest
        from jshost.pytest_plugin import JSHostError

        @pytest.mark.asyncio
        async def test_calls(ajshost):
            lib = ajshost.load_file("libs/counter.js")
            assert await lib.fcall("incr", keys=["c"]) == 1
            assert await lib.fcall_async("slow_incr", keys=["c"]) == 2
            assert await ajshost.store.execute("GET", "c") == b"2"
            with pytest.raises(JSHostError, match="you must use RG.FCALLASYNC instead"):
                await lib.fcall("slow_incr", keys=["c"])

        @pytest.mark.asyncio
        async def test_a_call_waits_while_other_clients_run(ajshost):
            lib = ajshost.load_file("libs/counter_tf.js", era="tf")
            pop = asyncio.ensure_future(lib.fcall_async("pop", keys=["q"]))
            await asyncio.sleep(0.01)
            assert not pop.done()
            assert await ajshost.store.execute("RPUSH", "q", "late") == 1
            assert await asyncio.wait_for(pop, 5) == [b"q", b"late"]

        @pytest.mark.asyncio
        async def test_the_sync_fixture_says_what_to_use(jshost):
            lib = jshost.load_file("libs/counter.js")
    """)
    result = pytester.runpytest(*PLUGIN_ARGS)
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(["*use the `ajshost` fixture and `await` its calls*"])


def test_settings_from_the_ini_file(pytester: pytest.Pytester) -> None:
    pytester.makeini("""
        [pytest]
        jshost_settings =
            error-verbosity = 2
            lock-redis-timeout=200
    """)
    pytester.makepyfile("""
        def test_settings(jshost):
            assert jshost.settings["error-verbosity"] == 2
            assert jshost.settings["lock-redis-timeout"] == 200
    """)
    result = pytester.runpytest(*PLUGIN_ARGS)
    result.assert_outcomes(passed=1)


def test_error_message_layout() -> None:
    """The exception keeps the exact reply text and lays the stack out for reading."""
    from pathlib import Path

    text = ("Error: x|    at f (lib.js:2:9)|    at invokeSync (<jshost prelude>:290:69)"
            "|    at <anonymous> (lib.js:4:1)")
    exc = plugin.JSHostError(text, "RG.FCALL lib f", "lib", Path("/abs/dir/lib.js"))
    assert exc.text == text
    assert str(exc).splitlines() == [
        "RG.FCALL lib f: Error: x",
        f"    at f ({plugin._shown_path(Path('/abs/dir/lib.js'))}:2:9)",
        f"    at <anonymous> ({plugin._shown_path(Path('/abs/dir/lib.js'))}:4:1)",
    ]
    assert str(plugin.JSHostError("Unknown function g", "RG.FCALL lib g")) == (
        "RG.FCALL lib g: Unknown function g")


def test_server_fixture_and_redis_url_option(pytester: pytest.Pytester) -> None:
    """`jshost_server` is a real `jshost serve`; with `--jshost-redis-url` the fixtures use that
    Redis (here: the first test's jshost server stands in as "a Redis")."""
    _write_libraries(pytester)
    _write_test(pytester, """
        from pathlib import Path

        def test_through_a_client(jshost_server):
            client = jshost_server.client()
            code = (Path(__file__).parent / "libs" / "counter.js").read_text()
            assert client.execute_command("RG.FUNCTION", "LOAD", code) == b"OK"
            assert client.execute_command("RG.FCALL", "counter", "incr", "1", "c") == 1
            assert client.execute_command("RG.FCALL", "counter", "incr", "1", "c") == 2
    """)
    result = pytester.runpytest(*PLUGIN_ARGS)
    result.assert_outcomes(passed=1)


def test_redis_url_option_runs_the_fixtures_on_a_real_redis(pytester: pytest.Pytester) -> None:
    from tests.redis_server import REDIS_SERVER, RedisServer

    if REDIS_SERVER is None:
        pytest.skip("redis-server is not on PATH")
    _write_libraries(pytester)
    _write_test(pytester, """
        def test_counter_on_redis(jshost):
            lib = jshost.load_file("libs/counter.js")
            assert lib.fcall("incr", keys=["c"]) == 1
            assert jshost.store.execute("GET", "c") == b"1"

        def test_store_is_that_redis(jshost):
            from jshost.store import RemoteStore
            assert isinstance(jshost._core.store, RemoteStore)
    """)
    with RedisServer() as redis_server:
        result = pytester.runpytest(*PLUGIN_ARGS, "--jshost-redis-url", redis_server.url)
    result.assert_outcomes(passed=2)
