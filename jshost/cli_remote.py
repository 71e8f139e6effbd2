"""The `jshost` commands besides `serve` and `run`: `load`, `call`, `list` and `check`.

`load`, `call` and `list` talk to a running jshost (`--url`, default ``redis://127.0.0.1:6379``
or ``$JSHOST_URL``) with redis-py; `load --dry-run`, `call --embedded` and `check` need no
server: they load the library into a throwaway in-process `SyncHost` (as `jshost run` does,
`jshost.cli_run`).

Errors are one line on stderr and a non-zero exit status. With ``--verbose`` an in-process
command runs at `error-verbosity` 2, so a JS failure shows its stack; against a server the text
is what the server sends (its own `error-verbosity` decides).
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any, NoReturn

import click

from jshost.errors import CliErrors, Era, ReplyError
from jshost.host.library import Library, flag_names
from jshost.host.prologue import parse_prologue
from jshost.library_folder import detect_era
from jshost.replies import BigNumber, ErrorReply, SetReply, Status, Verbatim
from jshost.settings import Settings
from jshost.sync import SyncHost

DEFAULT_URL = "redis://127.0.0.1:6379"
URL_ENV = "JSHOST_URL"


class CliError(click.ClickException):
    """A failure: one line on stderr (`Error: ...`), exit status 1."""


def fail(text: str, verbose: bool = False) -> NoReturn:
    raise CliError(one_line(text, verbose))


def one_line(text: str, verbose: bool = False) -> str:
    """The text as it should be shown: its first line unless `verbose` (the JS stack follows)."""
    text = text.rstrip("\n")
    return text if verbose else (text.splitlines() or [""])[0]


# --- shared options ---------------------------------------------------------------------------

_url_option = click.option(
    "--url",
    default=DEFAULT_URL,
    envvar=URL_ENV,
    show_default=True,
    help=f"The jshost server (redis://[[user]:password@]host[:port][/db]; also ${URL_ENV}).",
)
tf_option = click.option(
    "--tf", is_flag=True, help="The tf API and commands (TFUNCTION LOAD, TFCALL) instead of rg."
)
config_option = click.option(
    "--config",
    "config",
    default=None,
    metavar="JSON|@FILE",
    help="The library configuration (redis.config): JSON text, or @file.json.",
)
verbose_option = click.option(
    "-v", "--verbose", is_flag=True, help="Show the JS stack of a failure (in-process runs)."
)


def _era(tf: bool) -> Era:
    return "tf" if tf else "rg"


def read_source(path: Path) -> str:
    """A library file as text (one-line errors)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        fail(CliErrors.CANNOT_READ.format(path=path, reason=exc.strerror or exc))
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        fail(CliErrors.NOT_UTF8.format(path=path))


def read_config(value: str | None) -> str | None:
    """`--config`: the JSON text itself, or `@path` of a file holding it."""
    if value is None or not value.startswith("@"):
        return value
    return read_source(Path(value[1:]))


def sync_host(verbose: bool) -> SyncHost:
    return SyncHost(settings=Settings({"error-verbosity": "2" if verbose else "1"}))


def _era_hint(code: str, era: Era) -> str:
    """A hint when the load failed and the file looks written for the other API."""
    other = detect_era(code)
    if other == era:
        return ""
    return CliErrors.TRY_TF if other == "tf" else CliErrors.TRY_RG


def load_embedded(host: SyncHost, path: Path, code: str, era: Era, config_text: str | None,
                  verbose: bool, replace: bool = False) -> str:
    """Load into an in-process host; a failure ends the command with `FILE: <error>`."""
    try:
        return host.load(code, config_text, replace, era)
    except ReplyError as exc:
        fail(f"{path}: {one_line(exc.text, verbose)}{_era_hint(code, era)}", verbose)


# --- replies, as redis-cli shows them ---------------------------------------------------------


def quote(data: bytes) -> str:
    """A bulk string as redis-cli prints it (`sdscatrepr`): quoted, with escapes."""
    out = ['"']
    for byte in data:
        char = chr(byte)
        if char in '\\"':
            out.append("\\" + char)
        elif char == "\n":
            out.append("\\n")
        elif char == "\r":
            out.append("\\r")
        elif char == "\t":
            out.append("\\t")
        elif char == "\a":
            out.append("\\a")
        elif char == "\b":
            out.append("\\b")
        elif 32 <= byte < 127:
            out.append(char)
        else:
            out.append(f"\\x{byte:02x}")
    out.append('"')
    return "".join(out)


def format_reply(value: Any) -> str:
    """A reply as redis-cli prints it: `"text"`, `(integer) 1`, `(nil)`, numbered and indented
    nested lists, `1# "key" => value` for maps."""
    return "\n".join(_reply_lines(value))


def _reply_lines(value: Any) -> list[str]:
    if isinstance(value, ErrorReply | ReplyError):
        text = value.text if isinstance(value, ReplyError) else str(value)
        return [f"(error) {text}"]
    if isinstance(value, Status):
        return [bytes(value).decode("utf-8", "replace")]
    if isinstance(value, Verbatim):
        return bytes(value).decode("utf-8", "replace").splitlines() or [""]
    if isinstance(value, bytes):
        return [quote(value)]
    if isinstance(value, str):  # a decoded or internal text (BigNumber included)
        if isinstance(value, BigNumber):
            return [f"(big number) {value}"]
        return [quote(value.encode("utf-8", "surrogateescape"))]
    if value is None:
        return ["(nil)"]
    if isinstance(value, bool):
        return ["(true)" if value else "(false)"]
    if isinstance(value, int):
        return [f"(integer) {value}"]
    if isinstance(value, float):
        return [f"(double) {value:g}"]
    if isinstance(value, dict):
        if not value:
            return ["(empty hash)"]
        items = [(_reply_lines(k), _reply_lines(v)) for k, v in value.items()]
        width = len(str(len(items)))
        lines: list[str] = []
        for number, (key, val) in enumerate(items, start=1):
            head = f"{number:>{width}}# {key[0]} => "
            lines.append(head + val[0])
            lines.extend(" " * len(head) + line for line in val[1:])
        return lines
    if isinstance(value, list | tuple | set | frozenset):
        elements = list(value)
        if not elements:
            return ["(empty set)" if isinstance(value, SetReply | set) else "(empty array)"]
        width = len(str(len(elements)))
        lines = []
        for number, element in enumerate(elements, start=1):
            head = f"{number:>{width}}) "
            sub = _reply_lines(element)
            lines.append(head + sub[0])
            lines.extend(" " * len(head) + line for line in sub[1:])
        return lines
    return [repr(value)]


# --- a running server -------------------------------------------------------------------------


def connect(url: str) -> Any:
    """A redis-py client for `url` that has answered a PING (RESP3, raw bytes)."""
    import redis

    try:
        client = redis.Redis.from_url(url, protocol=3, socket_connect_timeout=5)
    except ValueError as exc:
        fail(CliErrors.BAD_URL.format(url=url, reason=exc))
    try:
        client.ping()
    except redis.exceptions.ConnectionError as exc:
        fail(CliErrors.CANNOT_CONNECT.format(url=url, reason=_first(str(exc))))
    except redis.exceptions.ResponseError as exc:  # NOAUTH and the like
        fail(CliErrors.CANNOT_CONNECT.format(url=url, reason=_first(str(exc))))
    return client


def _first(text: str) -> str:
    return one_line(text) or "connection failed"


def server_command(client: Any, *args: Any, verbose: bool = False) -> Any:
    """One command; a server error ends the command with its text."""
    import redis

    try:
        return client.execute_command(*args)
    except redis.exceptions.ResponseError as exc:
        fail(str(exc), verbose)
    except redis.exceptions.ConnectionError as exc:
        fail(CliErrors.CANNOT_CONNECT.format(url=_client_url(client), reason=_first(str(exc))))


def _client_url(client: Any) -> str:
    kwargs = client.connection_pool.connection_kwargs
    return f"redis://{kwargs.get('host', '?')}:{kwargs.get('port', '?')}"


# --- jshost load -------------------------------------------------------------------------------


@click.command("load")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--replace", is_flag=True,
              help="Replace a library of the same name (rg UPGRADE / tf REPLACE).")
@config_option
@tf_option
@_url_option
@click.option("--dry-run", is_flag=True,
              help="No server: parse the prologue, compile and run the library in process and "
              "print what it registers.")
@verbose_option
def load_command(file: Path, replace: bool, config: str | None, tf: bool, url: str,
                 dry_run: bool, verbose: bool) -> None:
    """Load FILE.js into a running jshost (RG.FUNCTION LOAD, or TFUNCTION LOAD with --tf)."""
    code = read_source(file)
    config_text = read_config(config)
    era = _era(tf)
    if dry_run:
        with sync_host(verbose) as host:
            try:
                parse_prologue(code, era)
            except ReplyError as exc:
                fail(f"{file}: {exc.text}")
            name = load_embedded(host, file, code, era, config_text, verbose)
            click.echo("\n".join(describe_library(host.host.libraries[name])))
        return
    words: list[str] = []
    if replace:
        words.append("REPLACE" if tf else "UPGRADE")
    if config_text is not None:
        words += ["CONFIG", config_text]
    client = connect(url)
    command = "TFUNCTION" if tf else "RG.FUNCTION"
    reply = server_command(client, command, "LOAD", *words, code, verbose=verbose)
    # redis-py hands a simple string over as bytes: LOAD's +OK is shown as redis-cli does.
    click.echo(format_reply(Status(reply) if reply == b"OK" else reply))


def describe_library(lib: Library) -> list[str]:
    """What a library registered, for people: name, API, functions with flags, triggers."""
    head = f"library {lib.name} ({lib.era} API, api_version {lib.prologue.api_version_display})"
    lines = [head]
    if lib.functions:
        lines.append("functions:")
        for f in lib.functions.values():
            flags = ",".join(flag_names(f.flags)) or "-"
            lines.append(f"  {f.name}  flags: {flags}  is_async: {'yes' if f.is_async else 'no'}")
    keyspace_label = "keyspace triggers" if lib.era == "tf" else "notifications consumers"
    if lib.keyspace_triggers:
        lines.append(f"{keyspace_label}:")
        for t in lib.keyspace_triggers.values():
            lines.append(f"  {t.name}  prefix: {quote(t.prefix)}")
    stream_label = "stream triggers" if lib.era == "tf" else "stream consumers"
    if lib.stream_triggers:
        lines.append(f"{stream_label}:")
        for s in lib.stream_triggers.values():
            lines.append(f"  {s.name}  prefix: {quote(s.prefix)}  window: {s.window}  "
                         f"trim: {'yes' if s.trim else 'no'}")
    if lib.remote_functions:
        label = "cluster functions" if lib.era == "tf" else "remote functions"
        lines.append(f"{label}: {', '.join(lib.remote_functions)}")
    return lines


# --- jshost call -------------------------------------------------------------------------------


@click.command("call", context_settings={"ignore_unknown_options": True})
@click.argument("target", metavar="LIB.FN")
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
@click.option("--async", "asynchronous", is_flag=True,
              help="RG.FCALLASYNC / TFCALLASYNC: wait for the function's promise.")
@click.option("--keys", default="", metavar="K1,K2", help="The key names, comma separated.")
@tf_option
@_url_option
@click.option("--embedded", type=click.Path(dir_okay=False, path_type=Path), default=None,
              metavar="FILE.js", help="No server: load FILE.js in process and call it there.")
@config_option
@click.option("--timeout", default=10.0, show_default=True, type=click.FloatRange(min=0.01),
              help="--embedded: give up on a pending promise after this many seconds.")
@verbose_option
def call_command(target: str, args: tuple[str, ...], asynchronous: bool, keys: str, tf: bool,
                 url: str, embedded: Path | None, config: str | None, timeout: float,
                 verbose: bool) -> None:
    """Call LIB.FN with ARGS (RG.FCALL / TFCALL) and print the reply as redis-cli does."""
    library, dot, function = target.partition(".")
    if not dot or not library or not function:
        fail(CliErrors.BAD_TARGET.format(target=target))
    key_list = [k for k in keys.split(",") if k] if keys else []
    era = _era(tf)
    source = click.get_current_context().get_parameter_source("url")
    if embedded is not None and source is click.core.ParameterSource.COMMANDLINE:
        fail(CliErrors.EMBEDDED_WITH_URL)
    if embedded is None:
        client = connect(url)
        if tf:
            command = ["TFCALLASYNC" if asynchronous else "TFCALL", target]
        else:
            command = ["RG.FCALLASYNC" if asynchronous else "RG.FCALL", library, function]
        reply = server_command(client, *command, len(key_list), *key_list, *args,
                               verbose=verbose)
        click.echo(format_reply(reply))
        return
    code = read_source(embedded)
    with sync_host(verbose) as host:
        load_embedded(host, embedded, code, era, read_config(config), verbose)
        coroutine = (host.host.fcall_async if asynchronous else host.host.fcall)(
            library, function, key_list, list(args), era=era)
        try:
            reply = host.loop.run_until_complete(asyncio.wait_for(coroutine, timeout))
        except ReplyError as exc:
            fail(exc.text, verbose)
        except TimeoutError:
            fail(CliErrors.TIMED_OUT.format(seconds=timeout))
    click.echo(format_reply(reply))


# --- jshost list -------------------------------------------------------------------------------


@click.command("list")
@_url_option
@tf_option
@click.option("-v", "--verbose", count=True,
              help="Function flags and trigger details (-vv: also per-stream state).")
@click.option("--json", "as_json", is_flag=True, help="Print the LIST reply as JSON.")
@click.option("--library", default=None, help="Only this library.")
def list_command(url: str, tf: bool, verbose: int, as_json: bool, library: str | None) -> None:
    """List the libraries of a running jshost (RG.FUNCTION LIST / TFUNCTION LIST)."""
    client = connect(url)
    words: list[str] = []
    if verbose:
        words.append("v" * min(verbose, 3))
    if library is not None:
        words += ["LIBRARY", library]
    reply = server_command(client, "TFUNCTION" if tf else "RG.FUNCTION", "LIST", *words)
    libraries = [_plain(lib) for lib in reply or []]
    if as_json:
        click.echo(json.dumps(libraries, indent=2))
        return
    click.echo(format_table(libraries, detailed=bool(verbose)))


def _plain(value: Any) -> Any:
    """A reply as JSON-able values: bytes → text, map keys → text, RESP2 pair lists of a
    library → dicts."""
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, dict):
        return {str(_plain(k)): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def format_table(libraries: list[dict[str, Any]], detailed: bool) -> str:
    """One row per library: name, API version, functions, triggers."""
    if not libraries:
        return "(no libraries)"
    rows = [("LIBRARY", "API", "FUNCTIONS", "TRIGGERS")]
    for lib in libraries:
        functions = [_function_cell(f, detailed) for f in lib.get("functions", [])]
        triggers = []
        for field, kind in (("notifications_consumers", "keyspace"),
                            ("keyspace_triggers", "keyspace"),
                            ("stream_consumers", "stream"), ("stream_triggers", "stream")):
            for t in lib.get(field, []):
                name = t.get("name") if isinstance(t, dict) else t
                prefix = f" {t.get('prefix')!r}" if isinstance(t, dict) else ""
                triggers.append(f"{name} ({kind}{prefix})")
        rows.append((str(lib.get("name")), str(lib.get("api_version")),
                     ", ".join(functions) or "-", ", ".join(triggers) or "-"))
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row[:3], widths, strict=True))
        + "  " + row[3]
        for row in rows
    )


def _function_cell(f: Any, detailed: bool) -> str:
    if not isinstance(f, dict):
        return str(f)
    marks = []
    if detailed and f.get("is_async"):
        marks.append("async")
    if detailed:
        marks += list(f.get("flags") or [])
    return f"{f.get('name')}" + (f" [{' '.join(marks)}]" if marks else "")


# --- jshost check ------------------------------------------------------------------------------


@click.command("check")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@tf_option
@config_option
@verbose_option
def check_command(file: Path, tf: bool, config: str | None, verbose: bool) -> None:
    """Check FILE.js before deploying it: prologue, syntax, top level, registrations, flags.

    Exits 0 with "ok: ..." when the library loads; 1 with the problem otherwise."""
    code = read_source(file)
    era = _era(tf)
    try:
        prologue = parse_prologue(code, era)
    except ReplyError as exc:
        fail(f"{file}: prologue: {exc.text}")
    with sync_host(verbose) as host:
        name = load_embedded(host, file, code, era, read_config(config), verbose)
        lib = host.host.libraries[name]
        triggers = len(lib.keyspace_triggers) + len(lib.stream_triggers)
        click.echo(f"ok: {file}: library {prologue.name} ({era} API, api_version "
                   f"{prologue.api_version_display}): {_count(len(lib.functions), 'function')}, "
                   f"{_count(triggers, 'trigger')}"
                   + (f", {_count(len(lib.remote_functions), 'remote function')}"
                      if lib.remote_functions else ""))


def _count(n: int, what: str) -> str:
    return f"{n} {what}{'' if n == 1 else 's'}"


COMMANDS = (load_command, call_command, list_command, check_command)
