"""jshost.config_json: serde_json's messages and positions, and the LOAD CONFIG texts."""

from __future__ import annotations

from typing import Any

import pytest

from jshost.config_json import JsonSyntaxError, parse_config, parse_json
from jshost.errors import ReplyError

# (input, serde_json's Display text)
SYNTAX_ERRORS: list[tuple[str, str]] = [
    # The four examples of SPEC §2.1.
    ("x", "expected value at line 1 column 1"),
    ("{    ", "EOF while parsing an object at line 1 column 5"),
    ("{}x", "trailing characters at line 1 column 3"),
    ("{1:2}", "key must be a string at line 1 column 2"),
    # EOF.
    ("", "EOF while parsing a value at line 1 column 0"),
    ("   ", "EOF while parsing a value at line 1 column 3"),
    ("{", "EOF while parsing an object at line 1 column 1"),
    ('{"a"', "EOF while parsing an object at line 1 column 4"),
    ('{"a":1', "EOF while parsing an object at line 1 column 6"),
    ('{"a":', "EOF while parsing a value at line 1 column 5"),
    ('{"a":1,', "EOF while parsing a value at line 1 column 7"),
    ("[", "EOF while parsing a list at line 1 column 1"),
    ("[1", "EOF while parsing a list at line 1 column 2"),
    ("[1,", "EOF while parsing a value at line 1 column 3"),
    ('{"a', "EOF while parsing a string at line 1 column 3"),
    ('"abc', "EOF while parsing a string at line 1 column 4"),
    ('"\\', "EOF while parsing a string at line 1 column 2"),
    ('"\\u12', "EOF while parsing a string at line 1 column 5"),
    ('"\\ud800', "EOF while parsing a string at line 1 column 7"),
    ("nul", "EOF while parsing a value at line 1 column 3"),
    ("-", "EOF while parsing a value at line 1 column 1"),
    ("1.", "EOF while parsing a value at line 1 column 2"),
    ("1e", "EOF while parsing a value at line 1 column 2"),
    ("1e+", "EOF while parsing a value at line 1 column 3"),
    # Punctuation.
    ('{"a" 1}', "expected `:` at line 1 column 6"),
    ('{"a":1 "b":2}', "expected `,` or `}` at line 1 column 8"),
    ("[1 2]", "expected `,` or `]` at line 1 column 4"),
    ("[1,]", "trailing comma at line 1 column 4"),
    ('{"a":1,}', "trailing comma at line 1 column 8"),
    ('{,"a":1}', "key must be a string at line 1 column 2"),
    ('{"a":1,2:3}', "key must be a string at line 1 column 8"),
    ("[1]]", "trailing characters at line 1 column 4"),
    ("{} {}", "trailing characters at line 1 column 4"),
    # Values.
    ("nux", "expected ident at line 1 column 3"),
    ("tru", "EOF while parsing a value at line 1 column 3"),
    ("True", "expected value at line 1 column 1"),
    ("fals3", "expected ident at line 1 column 5"),
    ("NaN", "expected value at line 1 column 1"),
    ("Infinity", "expected value at line 1 column 1"),
    ('{"a": NaN}', "expected value at line 1 column 7"),
    ("'a'", "expected value at line 1 column 1"),
    ("\ufeff{}", "expected value at line 1 column 1"),
    ("\x0c{}", "expected value at line 1 column 1"),
    # Numbers.
    ("-Infinity", "invalid number at line 1 column 2"),
    ("-x", "invalid number at line 1 column 2"),
    ("+1", "expected value at line 1 column 1"),
    ("01", "invalid number at line 1 column 2"),
    ("-01", "invalid number at line 1 column 3"),
    ("1.x", "invalid number at line 1 column 3"),
    ("1.e5", "invalid number at line 1 column 3"),
    (".5", "expected value at line 1 column 1"),
    ("1ex", "invalid number at line 1 column 3"),
    ("1e400", "number out of range at line 1 column 5"),
    ("-1e400", "number out of range at line 1 column 6"),
    ("1" * 400, "number out of range at line 1 column 400"),
    ("1e99999999999", "number out of range at line 1 column 12"),
    ("1.5.3", "trailing characters at line 1 column 4"),
    ("0x10", "trailing characters at line 1 column 2"),
    # Strings.
    ('"\\q"', "invalid escape at line 1 column 3"),
    ('"\\u12g4"', "invalid escape at line 1 column 6"),
    ('"\\udc00"', "lone leading surrogate in hex escape at line 1 column 7"),
    ('"\\ud800"', "unexpected end of hex escape at line 1 column 8"),
    ('"\\ud800\\n"', "unexpected end of hex escape at line 1 column 9"),
    ('"\\ud800\\ud800"', "lone leading surrogate in hex escape at line 1 column 13"),
    (
        '"\x01"',
        "control character (\\u0000-\\u001F) found while parsing a string at line 1 column 2",
    ),
    (
        '"a\tb"',
        "control character (\\u0000-\\u001F) found while parsing a string at line 1 column 3",
    ),
    # A raw newline: reported after it, at column 0 of the next line.
    (
        '"a\nb"',
        "control character (\\u0000-\\u001F) found while parsing a string at line 2 column 0",
    ),
    # Lines and byte columns.
    ('{\n  "a": 1,\n  "b" 2\n}', "expected `:` at line 3 column 7"),
    ("\n\n  x", "expected value at line 3 column 3"),
    ('{"é":1 x}', "expected `,` or `}` at line 1 column 9"),  # é is two bytes
    ('"€" x', "trailing characters at line 1 column 7"),
    # Nesting: serde refuses the 128th level.
    ("[" * 128, "recursion limit exceeded at line 1 column 128"),
    ('{"a":' * 128, "recursion limit exceeded at line 1 column 636"),
]


@pytest.mark.parametrize(("text", "message"), SYNTAX_ERRORS)
def test_syntax_errors_follow_serde(text: str, message: str) -> None:
    with pytest.raises(JsonSyntaxError) as info:
        parse_json(text)
    assert str(info.value) == message


def test_syntax_error_parts() -> None:
    with pytest.raises(JsonSyntaxError) as info:
        parse_json('{\n "a" x}')
    assert (info.value.message, info.value.line, info.value.column) == ("expected `:`", 2, 6)


def _nested_lists(depth: int) -> list[Any]:
    """`depth` lists, each inside the next."""
    value: list[Any] = []
    for _ in range(depth - 1):
        value = [value]
    return value


VALID: list[tuple[str, Any]] = [
    ("{}", {}),
    (
        ' \t\r\n{"a": [1, 2.5, -3, true, false, null, "x"]} \n',
        {"a": [1, 2.5, -3, True, False, None, "x"]},
    ),
    ('{"a":1,"a":2}', {"a": 2}),
    ('"\\ud83d\\ude00 \\u00e9 \\/ \\b\\f\\n\\r\\t"', "\U0001f600 é / \b\f\n\r\t"),
    ("-0", 0),
    ("1e308", 1e308),
    ("1.7976931348623157e308", 1.7976931348623157e308),
    ("1e-400", 0.0),
    ("0e99999999999", 0.0),
    ("1e-99999999999", 0.0),
    ("123456789012345678901234567890", 123456789012345678901234567890),
    ("[" * 127 + "]" * 127, _nested_lists(127)),
    ('"tab\\tin escape"', "tab\tin escape"),
]


@pytest.mark.parametrize(("text", "value"), VALID)
def test_valid_json(text: str, value: Any) -> None:
    assert parse_json(text) == value


def test_config_object() -> None:
    assert parse_config('{"a": {"b": [1]}}') == {"a": {"b": [1]}}


@pytest.mark.parametrize("text", ["[]", "1", '"x"', "null", "true"])
def test_config_must_be_an_object(text: str) -> None:
    with pytest.raises(ReplyError) as info:
        parse_config(text)
    assert info.value.text == "configuration must be a valid json object"


@pytest.mark.parametrize(
    ("text", "reply"),
    [
        ("x", "configuration must be a valid json, 'x', expected value at line 1 column 1."),
        (
            "{1:2}",
            "configuration must be a valid json, '{1:2}', key must be a string at line 1 column 2.",
        ),
        (
            '{"a":\nNaN}',
            "configuration must be a valid json, '{\"a\":\nNaN}', expected value at line 2 column 1.",
        ),
        (
            "",
            "configuration must be a valid json, '', EOF while parsing a value at line 1 column 0.",
        ),
    ],
)
def test_config_not_json(text: str, reply: str) -> None:
    with pytest.raises(ReplyError) as info:
        parse_config(text)
    assert info.value.text == reply
