"""jshost.commands.grammar: the command grammars of SPEC §2 and §4.1, with their exact errors."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from jshost import errors
from jshost.commands.grammar import (
    MIN_ARITY,
    DeleteArgs,
    LoadArgs,
    check_arity,
    parse_call,
    parse_delete,
    parse_function_command,
    parse_function_subcommand,
    parse_list,
    parse_load,
)
from jshost.errors import Era, ReplyError
from jshost.host.requests import CallArgs, ListArgs, check_enough_arguments

CODE = b"#!js api_version=1.0 name=lib\nredis.register_function('f', () => 1);"
CODE_TEXT = CODE.decode()
BAD_UTF8 = b"\xff\xfe"


def _words(line: str) -> list[bytes]:
    return [word.encode() for word in line.split()]


def _reply_error(call: Callable[..., object], *args: object) -> str:
    with pytest.raises(ReplyError) as info:
        call(*args)
    return info.value.text


# --- arity ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cmd", "minimum"),
    [
        ("rg.function", 2),
        ("rg.fcall", 4),
        ("rg.fcallasync", 4),
        ("tfunction", 2),
        ("tfcall", 3),
        ("tfcallasync", 3),
    ],
)
def test_arity(cmd: str, minimum: int) -> None:
    assert MIN_ARITY[cmd] == minimum
    check_arity(cmd, minimum)
    check_arity(cmd, minimum + 5)
    assert _reply_error(check_arity, cmd, minimum - 1) == (
        f"ERR wrong number of arguments for '{cmd}' command"
    )


# --- sub-commands ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("word", "era", "subcommand"),
    [
        (b"LOAD", "rg", "load"),
        (b"load", "tf", "load"),
        (b"LiSt", "rg", "list"),
        (b"LIST", "tf", "list"),
        (b"DEL", "rg", "delete"),
        (b"Delete", "tf", "delete"),
    ],
)
def test_subcommands(word: bytes, era: Era, subcommand: str) -> None:
    assert parse_function_subcommand([word], era) == subcommand


@pytest.mark.parametrize(
    ("word", "era", "text"),
    [
        (b"DELETE", "rg", "Unknown subcommand delete"),
        (b"DEL", "tf", "Unknown subcommand del"),
        (b"FooBar", "rg", "Unknown subcommand foobar"),
        (b"CALL", "tf", "Unknown subcommand call"),
        (b"", "rg", "Unknown subcommand "),
        (b"DEBUG", "rg", "Debug command are disabled"),
        (b"debug", "tf", "Debug command are disabled"),
        (BAD_UTF8, "tf", "Couldn't parse as UTF-8 string"),
    ],
)
def test_subcommand_errors(word: bytes, era: Era, text: str) -> None:
    assert _reply_error(parse_function_subcommand, [word, b"x"], era) == text


def test_function_command_dispatch() -> None:
    assert isinstance(parse_function_command([b"load", CODE], "rg"), LoadArgs)
    assert parse_function_command([b"del", b"lib"], "rg") == DeleteArgs("lib")
    assert parse_function_command([b"delete", b"lib"], "tf") == DeleteArgs("lib")
    assert parse_function_command([b"list", b"vv"], "tf") == ListArgs(False, 2, None)


# --- LOAD -----------------------------------------------------------------------------------


def _load(words: list[bytes], era: Era) -> LoadArgs:
    return parse_load([b"LOAD", *words], era)


def _load_error(words: list[bytes], era: Era) -> str:
    return _reply_error(parse_load, [b"LOAD", *words], era)


def test_load_code_only() -> None:
    assert _load([CODE], "rg") == LoadArgs(CODE_TEXT, None, None, False, False)


@pytest.mark.parametrize(
    ("words", "era", "replace", "code"),
    [
        ([b"UPGRADE", CODE], "rg", True, CODE_TEXT),
        ([b"upgrade", b"UpGrAdE", CODE], "rg", True, CODE_TEXT),
        ([b"REPLACE", CODE], "tf", True, CODE_TEXT),
        # The other era's keyword is the code.
        ([b"REPLACE", CODE], "rg", False, "REPLACE"),
        ([b"UPGRADE", CODE], "tf", False, "UPGRADE"),
        # Anything after the code is ignored.
        ([CODE, b"UPGRADE", b"CONFIG"], "rg", False, CODE_TEXT),
        ([CODE, BAD_UTF8], "tf", False, CODE_TEXT),
    ],
)
def test_load_replace_keyword(words: list[bytes], era: Era, replace: bool, code: str) -> None:
    args = _load(words, era)
    assert (args.replace, args.code) == (replace, code)


def test_load_config() -> None:
    args = _load([b"CONFIG", b'{"a": [1, 2]}', CODE], "rg")
    assert (args.config_text, args.config) == ('{"a": [1, 2]}', {"a": [1, 2]})


def test_load_last_config_wins() -> None:
    args = _load([b"config", b'{"a":1}', b"Config", b'{"b":2}', b"UPGRADE", CODE], "rg")
    assert (args.config_text, args.config, args.replace) == ('{"b":2}', {"b": 2}, True)


def test_load_tf_debug() -> None:
    assert _load([b"DEBUG", b"REPLACE", CODE], "tf").debug is True
    assert _load([b"DEBUG", CODE], "rg").code == "DEBUG"


@pytest.mark.parametrize(
    ("words", "era", "text"),
    [
        ([], "rg", "Could not find library payload"),
        ([b"UPGRADE"], "rg", "Could not find library payload"),
        ([b"REPLACE", b"CONFIG", b"{}"], "tf", "Could not find library payload"),
        ([b"CONFIG"], "rg", "configuration value was not given"),
        ([b"UPGRADE", b"config"], "rg", "configuration value was not given"),
        ([b"USER"], "tf", "configuration value was not given"),
        ([b"CONFIG", BAD_UTF8, CODE], "rg", "given configuration value is not a valid string"),
        (
            [b"CONFIG", b"{1:2}", CODE],
            "tf",
            "configuration must be a valid json, '{1:2}', key must be a string at line 1 column 2.",
        ),
        ([b"CONFIG", b"[1]", CODE], "rg", "configuration must be a valid json object"),
        # Each CONFIG is checked as it is met, even if a later one is fine.
        ([b"CONFIG", b"[]", b"CONFIG", b"{}", CODE], "rg", errors.CONFIGURATION_NOT_OBJECT),
        # The first non-UTF-8 word is the code.
        ([BAD_UTF8], "rg", "lib code must a valid string"),
        ([b"UPGRADE", BAD_UTF8, CODE], "rg", "lib code must a valid string"),
        # USER is refused once the whole line has been read.
        ([b"USER", b"bob", CODE], "rg", "Unknown argument user"),
        ([b"user", b"bob", b"REPLACE", CODE], "tf", "Unknown argument user"),
        ([b"USER", b"bob", b"CONFIG", b"[]", CODE], "rg", errors.CONFIGURATION_NOT_OBJECT),
        ([b"USER", b"bob"], "rg", "Could not find library payload"),
        ([b"USER", b"bob", BAD_UTF8], "tf", "lib code must a valid string"),
    ],
)
def test_load_errors(words: list[bytes], era: Era, text: str) -> None:
    assert _load_error(words, era) == text


# --- DEL / DELETE ---------------------------------------------------------------------------


@pytest.mark.parametrize("era", ["rg", "tf"])
def test_delete(era: Era) -> None:
    assert parse_delete([b"DEL", b"MyLib"], era) == DeleteArgs("MyLib")
    assert parse_delete([b"DEL", b"lib", b"extra"], era) == DeleteArgs("lib")
    assert _reply_error(parse_delete, [b"DEL"], era) == "function name was not given"
    assert _reply_error(parse_delete, [b"DEL", BAD_UTF8], era) == "Couldn't parse as UTF-8 string"


# --- LIST -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("LIST", ListArgs(False, 0, None)),
        ("LIST WITHCODE", ListArgs(True, 0, None)),
        ("list withcode WithCode", ListArgs(True, 0, None)),
        ("LIST VERBOSE", ListArgs(False, 1, None)),
        ("LIST v", ListArgs(False, 1, None)),
        ("LIST VV", ListArgs(False, 2, None)),
        ("LIST vvv", ListArgs(False, 3, None)),
        ("LIST v vv vvv VERBOSE", ListArgs(False, 7, None)),
        ("LIST LIBRARY lib", ListArgs(False, 0, "lib")),
        ("LIST library a LIBRARY b", ListArgs(False, 0, "b")),
        ("LIST LIBRARY Lib v WITHCODE", ListArgs(True, 1, "Lib")),
        ("LIST LIBRARY withcode", ListArgs(False, 0, "withcode")),
    ],
)
def test_list(line: str, expected: ListArgs) -> None:
    assert parse_list(_words(line)) == expected


@pytest.mark.parametrize(
    ("words", "text"),
    [
        ([b"LIST", BAD_UTF8], "Binary option is not allowed"),
        ([b"LIST", b"LIBRARY"], "Library name was not given"),
        ([b"LIST", b"v", b"LIBRARY"], "Library name was not given"),
        ([b"LIST", b"LIBRARY", BAD_UTF8], "Library name is not a string"),
        ([b"LIST", b"VVVV"], "Unknown option 'vvvv'"),
        ([b"LIST", b"LIBRARYNAME", b"x"], "Unknown option 'libraryname'"),
        ([b"LIST", b"WithCode", b"Foo"], "Unknown option 'foo'"),
        ([b"LIST", b""], "Unknown option ''"),
    ],
)
def test_list_errors(words: list[bytes], text: str) -> None:
    assert _reply_error(parse_list, words) == text


# --- RG.FCALL / TFCALL ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("words", "era", "expected"),
    [
        (_words("lib fn 2 k1 k2 a"), "rg", CallArgs("lib", "fn", 2, [b"k1", b"k2", b"a"])),
        (_words("lib fn 0"), "rg", CallArgs("lib", "fn", 0, [])),
        (_words("lib.fn 1 k"), "tf", CallArgs("lib", "fn", 1, [b"k"])),
        (_words("lib.fn.extra 0"), "tf", CallArgs("lib", "fn", 0, [])),
        (_words("lib. 0"), "tf", CallArgs("lib", "", 0, [])),
        (_words(".fn 0"), "tf", CallArgs("", "fn", 0, [])),
        # A dot means nothing in rg.
        (_words("a.b c 0"), "rg", CallArgs("a.b", "c", 0, [])),
        # Arguments stay bytes, whatever they hold.
        ([b"lib", b"fn", b"1", BAD_UTF8], "rg", CallArgs("lib", "fn", 1, [BAD_UTF8])),
    ],
)
def test_call(words: list[bytes], era: Era, expected: CallArgs) -> None:
    assert parse_call(words, era) == expected


@pytest.mark.parametrize(
    ("numkeys", "value"),
    [
        ("0", 0),
        ("+5", 5),
        ("007", 7),
        ("+007", 7),
        ("18446744073709551615", 2**64 - 1),
    ],
)
def test_numkeys(numkeys: str, value: int) -> None:
    assert parse_call([b"lib", b"fn", numkeys.encode()], "rg").numkeys == value


@pytest.mark.parametrize(
    ("numkeys", "text"),
    [
        ("", "ERR cannot parse integer from empty string"),
        ("+", "ERR invalid digit found in string"),
        ("-", "ERR invalid digit found in string"),
        ("-1", "ERR invalid digit found in string"),
        ("-0", "ERR invalid digit found in string"),
        ("1.5", "ERR invalid digit found in string"),
        ("1e3", "ERR invalid digit found in string"),
        (" 1", "ERR invalid digit found in string"),
        ("1 ", "ERR invalid digit found in string"),
        ("++1", "ERR invalid digit found in string"),
        ("1_000", "ERR invalid digit found in string"),
        ("١", "ERR invalid digit found in string"),
        ("0x10", "ERR invalid digit found in string"),
        ("18446744073709551616", "ERR number too large to fit in target type"),
        ("99999999999999999999999", "ERR number too large to fit in target type"),
        # Digits are read from the left: whichever problem comes first decides.
        ("99999999999999999999x", "ERR number too large to fit in target type"),
        ("1x99999999999999999999", "ERR invalid digit found in string"),
    ],
)
@pytest.mark.parametrize("era", ["rg", "tf"])
def test_numkeys_errors(numkeys: str, text: str, era: Era) -> None:
    target = [b"lib", b"fn"] if era == "rg" else [b"lib.fn"]
    assert _reply_error(parse_call, [*target, numkeys.encode()], era) == text


@pytest.mark.parametrize(
    ("words", "era", "text"),
    [
        ([BAD_UTF8, b"fn", b"0"], "rg", "Couldn't parse as UTF-8 string"),
        ([b"lib", BAD_UTF8, b"0"], "rg", "Couldn't parse as UTF-8 string"),
        ([b"lib", b"fn", BAD_UTF8], "rg", "Couldn't parse as UTF-8 string"),
        ([b"lib.f\xff", b"0"], "tf", "Couldn't parse as UTF-8 string"),
        ([b"lib.fn", BAD_UTF8], "tf", "Couldn't parse as UTF-8 string"),
        ([b"libfn", b"0"], "tf", "Failed extracting function name"),
        ([b"", b"0"], "tf", "Failed extracting function name"),
        # Check 1 (UTF-8) comes before 1b (the dot), and 1b before 2 (numkeys).
        ([b"libfn", BAD_UTF8], "tf", "Couldn't parse as UTF-8 string"),
        ([b"libfn", b"x"], "tf", "Failed extracting function name"),
        ([b"lib", b"f\xff", b"x"], "rg", "Couldn't parse as UTF-8 string"),
    ],
)
def test_call_errors(words: list[bytes], era: Era, text: str) -> None:
    assert _reply_error(parse_call, words, era) == text


def test_call_needs_the_arity_check() -> None:
    with pytest.raises(ValueError, match="check_arity"):
        parse_call([b"lib.fn"], "tf")


def test_enough_arguments() -> None:
    check_enough_arguments(CallArgs("l", "f", 2, [b"a", b"b"]))
    check_enough_arguments(CallArgs("l", "f", 0, []))
    assert _reply_error(check_enough_arguments, CallArgs("l", "f", 3, [b"a", b"b"])) == (
        "Not enough arguments was given, expected at least 3 arguments, got 2 arguments."
    )
    assert _reply_error(check_enough_arguments, CallArgs("l", "f", 1, [])) == (
        "Not enough arguments was given, expected at least 1 arguments, got 0 arguments."
    )
