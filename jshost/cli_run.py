"""`jshost run FILE.js`: an example end to end, in process, with no server.

`jshost run FILE.js` runs the commands written in the file's header comment (the comment lines
right after the prologue):

* ``// run: <command line>`` lines, if there are any: exactly those, in order;
* otherwise the indented example lines the bundled examples use::

      //   RG.FCALL hello hello 0 world              -> "hello world"
      //   SET hits:a 2 ; SET hits:b 3

  i.e. a comment line indented by at least two spaces whose first word is an upper-case command
  name. The text after `` -> `` (the expected reply) is ignored, `` ; `` separates commands, and
  words are split as redis-cli splits them (double quotes with ``\\xHH``, ``\\n``... escapes,
  single quotes). A ``RG.FUNCTION LOAD ... "$(cat FILE)"`` / ``TFUNCTION LOAD ...`` line loads
  the file itself with that line's options (``CONFIG``); without one, the file is loaded first
  (tf when a ``TFCALL*`` line is present or with ``--tf``).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from jshost.cli_remote import (
    config_option,
    fail,
    format_reply,
    load_embedded,
    one_line,
    quote,
    read_config,
    read_source,
    sync_host,
    tf_option,
    verbose_option,
)
from jshost.commands.grammar import (
    DeleteArgs,
    LoadArgs,
    check_arity,
    parse_call,
    parse_function_command,
)
from jshost.errors import CliErrors, Era, ReplyError
from jshost.host.listing import list_libraries
from jshost.host.requests import check_enough_arguments
from jshost.replies import ErrorReply, Reply, Status
from jshost.sync import SyncHost

# --- jshost run --------------------------------------------------------------------------------


@dataclass(frozen=True)
class RunLine:
    """One command of a file's header: where it is and its words."""

    line: int
    words: list[bytes]


_COMMAND_WORD = re.compile(r"[A-Z][A-Z0-9_.|-]*")
_RUN_PREFIX = re.compile(r"^run:\s*", re.IGNORECASE)
_LOAD_COMMANDS: dict[bytes, Era] = {b"RG.FUNCTION": "rg", b"TFUNCTION": "tf"}
_CALL_COMMANDS: dict[bytes, tuple[Era, bool]] = {
    b"RG.FCALL": ("rg", False), b"RG.FCALLASYNC": ("rg", True),
    b"TFCALL": ("tf", False), b"TFCALLASYNC": ("tf", True),
}


def header_comment(code: str) -> list[tuple[int, str]]:
    """The comment lines right after the prologue: (line number, text after `//`)."""
    out = []
    for number, line in enumerate(code.splitlines()[1:], start=2):
        stripped = line.strip()
        if not stripped.startswith("//"):
            break
        out.append((number, stripped[2:].lstrip("/") if stripped.startswith("///") else
                    stripped[2:]))
    return out


def run_lines(path: Path, code: str) -> list[RunLine]:
    """The commands of the header comment (see the module docstring)."""
    header = header_comment(code)
    explicit = [(n, _RUN_PREFIX.sub("", text.strip(), count=1)) for n, text in header
                if _RUN_PREFIX.match(text.strip())]
    candidates = explicit or [
        (n, text.strip()) for n, text in header
        if text.startswith("  ") and _COMMAND_WORD.fullmatch(text.split()[0] if text.split()
                                                            else "")
    ]
    lines: list[RunLine] = []
    for number, text in candidates:
        text = text.split(" -> ", 1)[0]
        try:
            words = split_args(text)
        except ValueError as exc:
            fail(CliErrors.RUN_LINE.format(path=path, line=number, text=text, reason=exc))
        command: list[bytes] = []
        for word in [*words, None]:
            if word is None or word == b";":
                if command:
                    lines.append(RunLine(number, command))
                command = []
            else:
                command.append(word)
    return lines


_ESCAPES = {"n": b"\n", "r": b"\r", "t": b"\t", "b": b"\b", "a": b"\a"}


def split_args(text: str) -> list[bytes | None]:
    """Words as redis-cli's `sdssplitargs` splits them; an unquoted `;` word stays a word (the
    caller uses it as a separator)."""
    words: list[bytes | None] = []
    i, n = 0, len(text)
    while True:
        while i < n and text[i].isspace():
            i += 1
        if i >= n:
            return words
        current = bytearray()
        quote_char: str | None = None
        while True:
            if i >= n:
                if quote_char is not None:
                    raise ValueError(CliErrors.UNBALANCED_QUOTES)
                break
            c = text[i]
            if quote_char == '"':
                if c == "\\" and i + 3 < n and text[i + 1] == "x" and _is_hex(text[i + 2:i + 4]):
                    current.append(int(text[i + 2:i + 4], 16))
                    i += 3
                elif c == "\\" and i + 1 < n:
                    current += _ESCAPES.get(text[i + 1], text[i + 1].encode())
                    i += 1
                elif c == '"':
                    if i + 1 < n and not text[i + 1].isspace():
                        raise ValueError(CliErrors.UNBALANCED_QUOTES)
                    i += 1
                    break
                else:
                    current += c.encode()
            elif quote_char == "'":
                if c == "\\" and i + 1 < n and text[i + 1] == "'":
                    current += b"'"
                    i += 1
                elif c == "'":
                    if i + 1 < n and not text[i + 1].isspace():
                        raise ValueError(CliErrors.UNBALANCED_QUOTES)
                    i += 1
                    break
                else:
                    current += c.encode()
            elif c.isspace():
                break
            elif c in "\"'":
                quote_char = c
            else:
                current += c.encode()
            i += 1
        words.append(bytes(current))


def _is_hex(text: str) -> bool:
    return len(text) == 2 and all(c in "0123456789abcdefABCDEF" for c in text)


@click.command("run")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@tf_option
@config_option
@click.option("--timeout", default=5.0, show_default=True, type=click.FloatRange(min=0.01),
              help="Give up on a command still waiting after this many seconds.")
@verbose_option
def run_command(file: Path, tf: bool, config: str | None, timeout: float, verbose: bool) -> None:
    """Run FILE.js end to end in process: load it, then run the commands of its header.

    The commands are the header's `// run: CMD ARGS...` lines or, without any, its indented
    example lines (`//   RG.FCALL hello hello 0 world  -> "hello world"`). Each command is
    printed (`> ...`) with its reply. Exits 1 if a reply is an error."""
    code = read_source(file)
    lines = run_lines(file, code)
    if not lines:
        fail(CliErrors.NO_RUN_LINES.format(path=file))
    era: Era = "tf" if tf or any(_CALL_COMMANDS.get(r.words[0].upper(), ("rg",))[0] == "tf"
                                 for r in lines) else "rg"
    config_text = read_config(config)
    failed = total = 0
    with sync_host(verbose) as host:
        session = host.host.store.open_session()  # a client's session: its writes fire triggers
        if not any(_is_load(r.words, code) for r in lines):
            name = load_embedded(host, file, code, era, config_text, verbose)
            click.echo(f"> loaded {file} as library {name} ({era} API)")
        for run_line in lines:
            words = _with_file(run_line.words, code)
            total += 1
            click.echo("> " + " ".join(_show_word(w) for w in words))
            reply = _run_one(host, session, words, timeout, verbose)
            if isinstance(reply, ErrorReply):
                failed += 1
            click.echo(format_reply(reply))
        _cancel_pending(host)
    if failed:
        fail(CliErrors.RUN_FAILED.format(failed=failed, total=total))


def _cancel_pending(host: SyncHost) -> None:
    """Cancel what a timed-out command left waiting, so the loop closes cleanly."""
    pending = asyncio.all_tasks(host.loop)
    for task in pending:
        task.cancel()
    if pending:
        host.loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))


def _is_load(words: Sequence[bytes], code: str) -> bool:
    return (words[0].upper() in _LOAD_COMMANDS and len(words) > 1
            and words[1].upper() == b"LOAD")


def _with_file(words: list[bytes], code: str) -> list[bytes]:
    """A header LOAD's code word (`"$(cat examples/x.js)"`) stands for this file."""
    if not _is_load(words, code):
        return words
    return [code.encode() if w.startswith(b"$(") and w.endswith(b")") else w for w in words]


def _show_word(word: bytes) -> str:
    if b"\n" in word:
        return "<the file>"
    text = word.decode("utf-8", "replace")
    if word and all(33 <= b < 127 and b not in b"\"'\\" for b in word):
        return text
    return quote(word)


def _run_one(host: SyncHost, session: Any, words: list[bytes], timeout: float,
             verbose: bool) -> Reply:
    """One header command in process: the jshost commands through the host, the rest through a
    store session; an error comes back as an `ErrorReply`."""
    name = words[0].upper()
    try:
        if name in _CALL_COMMANDS:
            era, asynchronous = _CALL_COMMANDS[name]
            check_arity(name.decode().lower(), len(words))
            call = parse_call(words[1:], era)
            check_enough_arguments(call)
            result = host.host.call(era, call, asynchronous=asynchronous)
        elif name in _LOAD_COMMANDS:
            era = _LOAD_COMMANDS[name]
            check_arity(name.decode().lower(), len(words))
            parsed = parse_function_command(words[1:], era)
            if isinstance(parsed, LoadArgs):
                result = Status(b"OK")
                host.load(parsed.code, parsed.config_text, parsed.replace, era)
            elif isinstance(parsed, DeleteArgs):
                host.delete(parsed.library)
                result = Status(b"OK")
            else:
                result = list_libraries(host.host, era, parsed)
        else:
            result = session.execute(words)
        if asyncio.isfuture(result) or asyncio.iscoroutine(result):
            result = host.loop.run_until_complete(asyncio.wait_for(result, timeout))
        host.run_pending()
        return result
    except ReplyError as exc:
        return ErrorReply(one_line(exc.text, verbose))
    except TimeoutError:
        return ErrorReply(CliErrors.TIMED_OUT.format(seconds=timeout))
