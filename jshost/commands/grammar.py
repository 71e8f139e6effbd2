"""Pure argument parsers for the host commands (as RedisGears' function_load_command.rs,
function_del_command.rs, function_list_command.rs and `function_call_command` parse them).

Each parser takes `args`, the words after the command name (for RG.FUNCTION / TFUNCTION the
sub-command word is `args[0]`), and returns a small frozen dataclass or raises `ReplyError`
with the spec's exact text. Nothing here looks at the library registry or the server: the checks
that need them (library exists, replica, OOM, ...) belong to the host, in RedisGears' order.

Callers run `check_arity` first; the parsers rely on the minimum lengths it guarantees.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from jshost import errors
from jshost.config_json import parse_config
from jshost.errors import Era, ReplyError
from jshost.host.requests import CallArgs, ListArgs

# Minimum argument counts, the command name included.
MIN_ARITY: Mapping[str, int] = {
    "rg.function": 2,
    "rg.fcall": 4,
    "rg.fcallasync": 4,
    "tfunction": 2,
    "tfcall": 3,
    "tfcallasync": 3,
}

Subcommand = Literal["load", "delete", "list"]

# Sub-command words per era (lower-cased); `del` is rg's, `delete` tf's.
_SUBCOMMANDS: Mapping[Era, Mapping[str, Subcommand]] = {
    "rg": {"load": "load", "del": "delete", "list": "list"},
    "tf": {"load": "load", "delete": "delete", "list": "list"},
}
# LOAD: the keyword that allows replacing an existing library; the other era's is code.
_REPLACE_KEYWORD: Mapping[Era, str] = {"rg": "upgrade", "tf": "replace"}
# LIST: what each verbosity option adds.
_VERBOSITY: Mapping[str, int] = {"verbose": 1, "v": 1, "vv": 2, "vvv": 3}
_USIZE_MAX = 2**64 - 1


@dataclass(frozen=True)
class LoadArgs:
    """RG.FUNCTION LOAD / TFUNCTION LOAD.

    `config_text` is the raw CONFIG string (LIST shows it), `config` its parsed object; both
    None without CONFIG. `replace` is UPGRADE (rg) / REPLACE (tf); `debug` is tf's DEBUG.
    """

    code: str
    config_text: str | None
    config: dict[str, Any] | None
    replace: bool
    debug: bool


@dataclass(frozen=True)
class DeleteArgs:
    """RG.FUNCTION DEL / TFUNCTION DELETE."""

    library: str


def check_arity(cmd_lower: str, nargs_including_name: int) -> None:
    """Redis's arity check for the host commands (`cmd_lower` must be in `MIN_ARITY`)."""
    if nargs_including_name < MIN_ARITY[cmd_lower]:
        raise ReplyError(errors.wrong_arity(cmd_lower))


def parse_function_subcommand(args: Sequence[bytes], era: Era) -> Subcommand:
    """Which RG.FUNCTION / TFUNCTION sub-command `args[0]` names (matched lower-cased).

    DEBUG never reaches this parser (`jshost.commands.debug_cmds` answers it); here it is
    refused as with debug commands disabled. A sub-command that is not UTF-8 gets redismodule-rs's
    UTF-8 error, as the original converted it with `try_as_str` before lower-casing it.
    """
    name = _utf8(args[0])
    if name is None:
        raise ReplyError(errors.NOT_UTF8)
    name = name.lower()
    if name == "debug":
        raise ReplyError(errors.DEBUG_COMMAND_DISABLED)
    subcommand = _SUBCOMMANDS[era].get(name)
    if subcommand is None:
        raise ReplyError(errors.unknown_subcommand(name))
    return subcommand


def parse_function_command(args: Sequence[bytes], era: Era) -> LoadArgs | DeleteArgs | ListArgs:
    """Dispatch RG.FUNCTION / TFUNCTION to the parser of its sub-command."""
    subcommand = parse_function_subcommand(args, era)
    if subcommand == "load":
        return parse_load(args, era)
    if subcommand == "delete":
        return parse_delete(args, era)
    return parse_list(args)


def parse_load(args: Sequence[bytes], era: Era) -> LoadArgs:
    """LOAD: keywords (any case) until the first other or non-UTF-8 word, which is the code.

    Errors come in this order: those of a CONFIG or USER keyword as it is met, then no code,
    then code not UTF-8, then USER given (checked once the whole line has been read).
    """
    replace = debug = user_given = False
    config_text: str | None = None
    config: dict[str, Any] | None = None
    code_word: bytes | None = None
    words = iter(args[1:])
    for word in words:
        keyword = _keyword(word)
        if keyword == _REPLACE_KEYWORD[era]:
            replace = True
        elif keyword == "config":
            config_text = _config_text(_keyword_value(words))
            config = parse_config(config_text)  # validated as met; the last CONFIG wins
        elif keyword == "user":
            _keyword_value(words)
            user_given = True
        elif keyword == "debug" and era == "tf":
            debug = True
        else:
            code_word = word  # the rest of the line is ignored
            break
    if code_word is None:
        raise ReplyError(errors.COULD_NOT_FIND_LIBRARY_PAYLOAD)
    code = _utf8(code_word)
    if code is None:
        raise ReplyError(errors.LIB_CODE_NOT_STRING)
    if user_given:
        raise ReplyError(errors.UNKNOWN_ARGUMENT_USER)
    return LoadArgs(code, config_text, config, replace, debug)


def parse_delete(args: Sequence[bytes], era: Era) -> DeleteArgs:
    """DEL / DELETE: the library name (later words are ignored). Both eras use the same texts; `era`
    keeps the call shape of `parse_load`."""
    del era
    if len(args) < 2:
        raise ReplyError(errors.FUNCTION_NAME_NOT_GIVEN)
    library = _utf8(args[1])
    if library is None:
        raise ReplyError(errors.NOT_UTF8)
    return DeleteArgs(library)


def parse_list(args: Sequence[bytes]) -> ListArgs:
    """LIST: options in any order and case; verbosity adds up; the last LIBRARY wins."""
    with_code = False
    verbosity = 0
    library: str | None = None
    words = iter(args[1:])
    for word in words:
        option = _utf8(word)
        if option is None:
            raise ReplyError(errors.BINARY_OPTION)
        option = option.lower()
        if option == "withcode":
            with_code = True
        elif option in _VERBOSITY:
            verbosity += _VERBOSITY[option]
        elif option == "library":
            library = _list_library_name(next(words, None))
        else:
            raise ReplyError(errors.unknown_list_option(option))
    return ListArgs(with_code, verbosity, library)


def parse_call(args: Sequence[bytes], era: Era) -> CallArgs:
    """The first checks of a call: `<lib> <fn> <numkeys> ...` (rg) / `<lib>.<fn> <numkeys> ...`
    (tf). That enough arguments follow is checked by the host once it has found the function
    (`jshost.host.requests.check_enough_arguments`)."""
    fixed = 3 if era == "rg" else 2
    if len(args) < fixed:
        raise ValueError("parse_call needs check_arity to have passed")
    try:
        texts = [word.decode("utf-8") for word in args[:fixed]]
    except UnicodeDecodeError:
        raise ReplyError(errors.NOT_UTF8) from None
    if era == "rg":
        library, function, numkeys_text = texts
    else:
        target, numkeys_text = texts
        library, function = _split_tf_target(target)
    # The common case at once: plain ASCII digits that fit (else the checks in Rust's order).
    if numkeys_text.isascii() and numkeys_text.isdigit() and len(numkeys_text) < 20:
        numkeys = int(numkeys_text)
    else:
        numkeys = _parse_usize(numkeys_text)
    return CallArgs(library, function, numkeys, list(args[fixed:]))


def _utf8(word: bytes) -> str | None:
    """The word as text if it is valid UTF-8 (as Rust's `str::from_utf8`), else None."""
    try:
        return word.decode("utf-8")
    except UnicodeDecodeError:
        return None


def _keyword(word: bytes) -> str | None:
    """The lower-cased word, or None when it is not UTF-8 (then it is the code)."""
    text = _utf8(word)
    return None if text is None else text.lower()


def _keyword_value(words: Iterator[bytes]) -> bytes:
    """The word after CONFIG or USER; its absence is an error (the same text for both)."""
    value = next(words, None)
    if value is None:
        raise ReplyError(errors.CONFIGURATION_VALUE_NOT_GIVEN)
    return value


def _config_text(value: bytes) -> str:
    """The CONFIG value must be UTF-8."""
    text = _utf8(value)
    if text is None:
        raise ReplyError(errors.CONFIGURATION_NOT_STRING)
    return text


def _list_library_name(value: bytes | None) -> str:
    """The word after LIST's LIBRARY."""
    if value is None:
        raise ReplyError(errors.LIBRARY_NAME_NOT_GIVEN)
    name = _utf8(value)
    if name is None:
        raise ReplyError(errors.LIBRARY_NAME_NOT_STRING)
    return name


def _split_tf_target(target: str) -> tuple[str, str]:
    """tf's `<lib>.<fn>`; parts after the second are ignored."""
    parts = target.split(".")
    if len(parts) < 2:
        raise ReplyError(errors.FAILED_EXTRACTING_FUNCTION_NAME)
    return parts[0], parts[1]


def _parse_usize(text: str) -> int:
    """Rust `usize::from_str` (64-bit), digit by digit, with the client-facing error texts.

    An optional leading `+`; then ASCII digits only. Each digit is checked before the
    overflow test, so the first problem met from the left decides the error.
    """
    if not text:
        raise ReplyError(errors.NUMKEYS_EMPTY)
    digits = text[1:] if text[0] == "+" else text
    if not digits:
        raise ReplyError(errors.NUMKEYS_INVALID_DIGIT)  # a lone `+`
    value = 0
    for char in digits:
        if not "0" <= char <= "9":
            raise ReplyError(errors.NUMKEYS_INVALID_DIGIT)
        value = value * 10 + ord(char) - ord("0")
        if value > _USIZE_MAX:
            raise ReplyError(errors.NUMKEYS_TOO_LARGE)
    return value
