"""The `jshost` command-line tools: `load`, `call`, `list`, `check`, `run`, `serve --load/--watch`.

In-process commands (`load --dry-run`, `call --embedded`, `check`, `run`) run through click's
`CliRunner`; the ones that need a server run against a `jshost serve --port 0` subprocess
(`JshostProcess`). Waiting for the watcher polls the server a bounded number of times.
"""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
from click.testing import CliRunner, Result
from server_fixture import REPO, JshostProcess, library

from jshost import errors
from jshost.cli import main
from jshost.cli_remote import format_reply
from jshost.cli_run import run_lines, split_args
from jshost.errors import CliErrors
from jshost.library_folder import detect_era
from jshost.replies import ErrorReply, Status

pytestmark = pytest.mark.timeout(120)

EXAMPLES = REPO / "examples"
HELLO = EXAMPLES / "hello.js"
TF_HELLO = EXAMPLES / "tf_hello.js"


def cli(*args: str | Path) -> Result:
    runner = CliRunner()
    return runner.invoke(main, [str(a) for a in args], catch_exceptions=False)


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def poll(condition: Callable[[], bool], attempts: int = 200, pause: float = 0.05) -> bool:
    """Ask `condition` (a real round trip to the server) up to `attempts` times."""
    for _ in range(attempts):
        if condition():
            return True
        time.sleep(pause)
    return False


def error_lines(result: Result) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.strip()]


# --- help ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("command", ["load", "call", "list", "check", "run", "serve"])
def test_every_command_has_help(command: str) -> None:
    result = cli(command, "--help")
    assert result.exit_code == 0
    assert f"Usage: main {command}" in result.output or f"{command} [OPTIONS]" in result.output


def test_serve_help_shows_load_and_watch() -> None:
    output = cli("serve", "--help").output
    assert "--load DIRECTORY" in output
    assert "--watch" in output


# --- load --dry-run ------------------------------------------------------------------------------


def test_dry_run_prints_the_registrations() -> None:
    result = cli("load", "--dry-run", HELLO)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == "library hello (rg API, api_version 1.0)"
    assert "  hello  flags: -  is_async: no" in lines
    assert "  slow_counter  flags: -  is_async: yes" in lines


def test_dry_run_shows_flags_and_triggers() -> None:
    result = cli("load", "--dry-run", EXAMPLES / "last_updated.js")
    assert result.exit_code == 0, result.output
    assert "  last_updated  flags: no-writes  is_async: no" in result.stdout
    assert 'notifications consumers:\n  stamp  prefix: "user:"' in result.stdout
    stream = cli("load", "--dry-run", EXAMPLES / "stream_totals.js").stdout
    assert '  totals  prefix: "orders:"  window: 1  trim: no' in stream


def test_dry_run_tf() -> None:
    result = cli("load", "--dry-run", "--tf", TF_HELLO)
    assert result.exit_code == 0, result.output
    assert "library hello_tf (tf API, api_version 1.0)" in result.stdout
    assert "  pop  flags: -  is_async: yes" in result.stdout


def test_dry_run_with_the_wrong_api_hints_at_tf() -> None:
    result = cli("load", "--dry-run", TF_HELLO)
    assert result.exit_code == 1
    [line] = error_lines(result)
    assert line.endswith(CliErrors.TRY_TF)


def test_dry_run_uses_config_from_a_file(tmp_path: Path) -> None:
    config = write(tmp_path / "c.json", '{"ttl": "soon"}')
    result = cli("load", "--dry-run", "--config", f"@{config}", EXAMPLES / "config.js")
    assert result.exit_code == 1
    [line] = error_lines(result)
    assert 'ttl must be a positive integer, got "soon"' in line


def test_a_missing_file_is_one_line(tmp_path: Path) -> None:
    result = cli("load", "--dry-run", tmp_path / "nope.js")
    assert result.exit_code == 1
    [line] = error_lines(result)
    assert "cannot read" in line and "nope.js" in line


# --- check ---------------------------------------------------------------------------------------


def test_check_ok() -> None:
    result = cli("check", EXAMPLES / "stream_totals.js")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("ok: ")
    assert "library stream_totals (rg API, api_version 1.0): 1 function, 1 trigger" in (
        result.stdout)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("#!js name=x\n", "prologue: The api version is missing from the prologue."),
        ("#!js api_version=1.0 name=x\nfunction (\n", "Failed library compilation: SyntaxError"),
        ("#!js api_version=1.0 name=x\nthrow 'no';\n", "Failed loading library: no."),
        ("#!js api_version=1.0 name=x\nredis.register_function('f', () => 1, ['nope']);\n",
         "Unknow flag 'nope' was given"),
        ("#!js api_version=1.0 name=x\nlet a = 1;\n", "No function nor registrations was registered"),
        ("#!js api_version=9.0 name=x\nredis.register_function('f', () => 1);\n",
         "unsupported api version"),
    ],
)
def test_check_reports_the_problem(tmp_path: Path, body: str, expected: str) -> None:
    result = cli("check", write(tmp_path / "lib.js", body))
    assert result.exit_code == 1
    [line] = error_lines(result)
    assert expected.lower() in line.lower()
    assert str(tmp_path / "lib.js") in line
    assert "ok:" not in result.stdout


def test_check_verbose_shows_the_js_stack(tmp_path: Path) -> None:
    path = write(tmp_path / "lib.js",
                 "#!js api_version=1.0 name=x\nfunction f() { throw new Error('boom'); }\nf();\n")
    quiet = cli("check", path)
    loud = cli("check", "--verbose", path)
    assert quiet.exit_code == loud.exit_code == 1
    assert "at f" not in quiet.stderr
    assert "at f" in loud.stderr


# --- call --embedded -----------------------------------------------------------------------------


def test_call_embedded() -> None:
    assert cli("call", "--embedded", HELLO, "hello.hello", "world").stdout == '"hello world"\n'
    result = cli("call", "--embedded", HELLO, "--async", "--keys", "a", "hello.slow_counter")
    assert result.stdout == "(integer) 1\n"


def test_call_embedded_tf_and_nested_reply(tmp_path: Path) -> None:
    path = write(tmp_path / "lib.js", library(
        "redis.registerFunction('f', (c, a) => [a, [BigInt(1), null]]);", name="t"))
    result = cli("call", "--embedded", path, "--tf", "t.f", "x")
    assert result.exit_code == 0, result.output
    assert result.stdout == '1) "x"\n2) 1) (integer) 1\n   2) (nil)\n'


def test_call_embedded_error_is_one_line() -> None:
    result = cli("call", "--embedded", HELLO, "hello.nope")
    assert result.exit_code == 1
    assert error_lines(result) == ["Error: Unknown function nope"]


def test_call_embedded_pending_promise_times_out(tmp_path: Path) -> None:
    path = write(tmp_path / "lib.js", library(
        "redis.register_async_function('never', async () => new Promise(() => {}));"))
    result = cli("call", "--embedded", path, "--async", "--timeout", "0.2", "lib.never")
    assert result.exit_code == 1
    assert error_lines(result) == ["Error: " + CliErrors.TIMED_OUT.format(seconds=0.2)]


def test_call_needs_lib_dot_fn() -> None:
    result = cli("call", "--embedded", HELLO, "hello")
    assert result.exit_code == 1
    assert error_lines(result) == ["Error: " + CliErrors.BAD_TARGET.format(target="hello")]


def test_call_embedded_refuses_url() -> None:
    result = cli("call", "--embedded", HELLO, "--url", "redis://127.0.0.1:1", "hello.hello")
    assert result.exit_code == 1
    assert error_lines(result) == ["Error: " + CliErrors.EMBEDDED_WITH_URL]


def test_call_without_a_server_is_one_line() -> None:
    result = cli("call", "--url", "redis://127.0.0.1:1", "hello.hello")
    assert result.exit_code == 1
    [line] = error_lines(result)
    assert line.startswith("Error: cannot reach jshost at redis://127.0.0.1:1")


# --- run -----------------------------------------------------------------------------------------


def test_run_hello() -> None:
    result = cli("run", HELLO)
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        "> RG.FUNCTION LOAD <the file>",
        "OK",
        "> RG.FCALL hello hello 0 world",
        '"hello world"',
        "> RG.FCALL hello counter 1 visits",
        "(integer) 1",
        "> RG.FCALLASYNC hello slow_counter 1 visits",
        "(integer) 2",
    ]


@pytest.mark.parametrize("name", ["binary", "cache", "config", "last_updated", "rollup",
                                  "stream_totals"])
def test_run_every_example(name: str) -> None:
    result = cli("run", EXAMPLES / f"{name}.js")
    assert result.exit_code == 0, result.output
    assert "(error)" not in result.stdout


def test_run_uses_the_header_load_config() -> None:
    result = cli("run", EXAMPLES / "config.js")
    assert '> RG.FCALL greeter greet 0 world\n"hi world"' in result.stdout


def test_run_example_values() -> None:
    assert '"10ff00"' in cli("run", EXAMPLES / "binary.js").stdout
    assert "> RG.FCALLASYNC rollup rollup 1 hits:total hits:\n(integer) 5" in (
        cli("run", EXAMPLES / "rollup.js").stdout)


def test_run_explicit_lines_and_failure(tmp_path: Path) -> None:
    path = write(tmp_path / "lib.js", library(
        "// run: SET k 41\n"
        "// run: RG.FCALL lib incr 1 k\n"
        "// run: RG.FCALL lib nope 0\n"
        "//   RG.FCALL lib ignored 0   (not used: run: lines win)\n"
        "redis.register_function('incr', (c, k) => c.call('incr', k));\n"))
    result = cli("run", path)
    assert result.exit_code == 1
    assert result.stdout.splitlines()[1:] == [
        "> SET k 41", "OK",
        "> RG.FCALL lib incr 1 k", "(integer) 42",
        "> RG.FCALL lib nope 0", "(error) Unknown function nope",
    ]
    assert error_lines(result) == ["Error: " + CliErrors.RUN_FAILED.format(failed=1, total=3)]


def test_run_without_commands(tmp_path: Path) -> None:
    path = write(tmp_path / "lib.js", library("redis.register_function('f', () => 1);"))
    result = cli("run", path)
    assert result.exit_code == 1
    assert error_lines(result) == ["Error: " + CliErrors.NO_RUN_LINES.format(path=path)]


def test_run_lines_of_the_examples() -> None:
    lines = run_lines(EXAMPLES / "rollup.js", (EXAMPLES / "rollup.js").read_text())
    assert [r.words for r in lines] == [
        [b"SET", b"hits:a", b"2"], [b"SET", b"hits:b", b"3"],
        [b"RG.FCALLASYNC", b"rollup", b"rollup", b"1", b"hits:total", b"hits:"],
    ]


def test_split_args_like_redis_cli() -> None:
    assert split_args(r'''SET "a b" '\'x' "\x00\xffz\n"''') == [
        b"SET", b"a b", b"'x", b"\x00\xffz\n"]
    with pytest.raises(ValueError):
        split_args('SET "a')


def test_format_reply() -> None:
    assert format_reply(Status(b"OK")) == "OK"
    assert format_reply(b'a"\n') == r'"a\"\n"'
    assert format_reply(ErrorReply("ERR x")) == "(error) ERR x"
    assert format_reply([]) == "(empty array)"
    assert format_reply({b"k": [1, 2]}) == '1# "k" => 1) (integer) 1\n          2) (integer) 2'


def test_detect_era() -> None:
    assert detect_era(TF_HELLO.read_text()) == "tf"
    assert detect_era(HELLO.read_text()) == "rg"


# --- against a server: load, call, list ----------------------------------------------------------


@pytest.fixture(scope="module")
def server() -> Iterator[JshostProcess]:
    with JshostProcess() as proc:
        yield proc


def url(proc: JshostProcess) -> str:
    return f"redis://127.0.0.1:{proc.port}"


def test_load_call_list_against_a_server(server: JshostProcess) -> None:
    u = url(server)
    r = redis.Redis(port=server.port)
    r.execute_command("RG.FUNCTION", "DEL", "hello") if _has(r, "hello") else None
    result = cli("load", HELLO, "--url", u)
    assert result.exit_code == 0, result.output
    assert result.stdout == "OK\n"
    assert r.execute_command("RG.FCALL", "hello", "hello", "0", "x") == b"hello x"
    again = cli("load", HELLO, "--url", u)
    assert again.exit_code == 1
    assert error_lines(again) == ["Error: " + errors.library_already_exists("hello")]
    assert cli("load", HELLO, "--url", u, "--replace").exit_code == 0

    assert cli("call", "hello.hello", "world", "--url", u).stdout == '"hello world"\n'
    result = cli("call", "--url", u, "--keys", "cli:c", "hello.counter")
    assert result.stdout == "(integer) 1\n"
    result = cli("call", "--url", u, "--async", "--keys", "cli:c", "hello.slow_counter")
    assert result.stdout == "(integer) 2\n"
    refused = cli("call", "--url", u, "--keys", "cli:c", "hello.slow_counter")
    assert refused.exit_code == 1
    assert len(error_lines(refused)) == 1 and "async" in refused.stderr

    table = cli("list", "--url", u)
    assert table.exit_code == 0, table.output
    header, *rows = table.stdout.splitlines()
    assert header.split() == ["LIBRARY", "API", "FUNCTIONS", "TRIGGERS"]
    assert any(row.split()[:2] == ["hello", "1.0"] and "slow_counter" in row for row in rows)
    detailed = cli("list", "--url", u, "-v").stdout
    assert "slow_counter [async]" in detailed
    as_json = json.loads(cli("list", "--url", u, "--json", "-v").stdout)
    [hello] = [lib for lib in as_json if lib["name"] == "hello"]
    assert {"name": "slow_counter", "flags": [], "is_async": True} in hello["functions"]


def test_load_tf_with_config_against_a_server(server: JshostProcess, tmp_path: Path) -> None:
    u = url(server)
    config = write(tmp_path / "c.json", '{"greeting": "hey"}')
    assert cli("load", EXAMPLES / "config.js", "--url", u, "--replace",
               "--config", f"@{config}").exit_code == 0
    assert cli("call", "--url", u, "greeter.greet", "you").stdout == '"hey you"\n'
    assert cli("load", TF_HELLO, "--tf", "--url", u, "--replace").exit_code == 0
    assert cli("call", "--tf", "--url", u, "hello_tf.hello", "tf").stdout == '"hello tf"\n'
    listed = cli("list", "--tf", "--url", u, "--json").stdout
    assert "hello_tf" in [lib["name"] for lib in json.loads(listed)]


def test_load_error_from_the_server_is_one_line(server: JshostProcess, tmp_path: Path) -> None:
    path = write(tmp_path / "bad.js", "#!js api_version=1.0 name=bad\nthrow 'nope';\n")
    result = cli("load", path, "--url", url(server))
    assert result.exit_code == 1
    assert error_lines(result) == ["Error: Failed loading library: nope."]


def _has(r: redis.Redis, name: str) -> bool:
    return any(lib[b"name"] == name.encode() for lib in _libraries(r))


def _libraries(r: redis.Redis) -> list[dict[bytes, object]]:
    reply = r.execute_command("RG.FUNCTION", "LIST")
    return [lib if isinstance(lib, dict) else dict(zip(lib[::2], lib[1::2], strict=True))
            for lib in reply]


# --- serve --load / --watch ----------------------------------------------------------------------


def test_serve_watch_needs_load() -> None:
    result = cli("serve", "--watch", "--port", "0")
    assert result.exit_code == 2
    assert CliErrors.WATCH_WITHOUT_LOAD in result.stderr


def test_serve_load_dir(tmp_path: Path) -> None:
    write(tmp_path / "a.js", library("redis.register_function('f', () => 'a');", name="a"))
    write(tmp_path / "broken.js", "#!js api_version=1.0 name=broken\nfunction (\n")
    write(tmp_path / "t.js", library("redis.registerFunction('f', () => 't');", name="t"))
    with JshostProcess("--load", str(tmp_path)) as proc:
        r = redis.Redis(port=proc.port)
        assert r.execute_command("RG.FCALL", "a", "f", "0") == b"a"
        assert r.execute_command("TFCALL", "t.f", "0") == b"t"
        names = {lib[b"name"] for lib in _libraries(r)}
        assert names == {b"a", b"t"}
        assert proc.stop(signal.SIGTERM) == 0
    log = proc.log()
    assert "could not load" in log and "broken.js" in log
    assert "as library a (rg API)" in log and "as library t (tf API)" in log


def test_serve_watch_reloads_a_changed_file(tmp_path: Path) -> None:
    path = write(tmp_path / "w.js", library("redis.register_function('f', () => 'v1');", name="w"))
    with JshostProcess("--load", str(tmp_path), "--watch") as proc:
        r = redis.Redis(port=proc.port)

        def answer() -> bytes:
            return r.execute_command("RG.FCALL", "w", "f", "0")

        assert answer() == b"v1"
        write(path, library("redis.register_function('f', () => 'version 2');", name="w"))
        assert poll(lambda: answer() == b"version 2"), proc.log()

        # A broken version is logged; the old library keeps serving.
        write(path, library("redis.register_function('f', () => {", name="w"))
        assert poll(lambda: "could not reload" in proc.log()), proc.log()
        assert answer() == b"version 2"

        # Fixed again: reloaded.
        write(path, library("redis.register_function('f', () => 'v3 fixed');", name="w"))
        assert poll(lambda: answer() == b"v3 fixed"), proc.log()

        # A new file in the folder is loaded too.
        write(tmp_path / "n.js", library("redis.register_function('g', () => 'new');", name="n"))
        assert poll(lambda: _has(r, "n")), proc.log()
        assert r.execute_command("RG.FCALL", "n", "g", "0") == b"new"
        assert proc.stop(signal.SIGTERM) == 0


def test_settings_from_environment_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    """`JSHOST_<NAME>` sets a setting (checked like any other), before --config-file/--set."""
    from click.testing import CliRunner

    from jshost.cli import _read_settings, main

    bad = CliRunner().invoke(main, ["serve", "--port", "0"],
                             env={"JSHOST_LOCK_REDIS_TIMEOUT": "50"})
    assert bad.exit_code == 2 and "lock-redis-timeout" in bad.output
    monkeypatch.setenv("JSHOST_ERROR_VERBOSITY", "2")
    assert _read_settings(None, ())["error-verbosity"] == "2"
    assert _read_settings(None, ("error-verbosity=1",))["error-verbosity"] == "1"
