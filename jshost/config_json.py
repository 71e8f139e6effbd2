"""Validation of the LOAD `CONFIG` value (RedisGears' function_load_command.rs), with serde_json's
error texts.

The original parsed CONFIG with `serde_json::from_str::<serde_json::Value>`, so a client sees
serde_json's messages, e.g. `expected value at line 1 column 1`. `_Validator` below re-creates
serde_json's recursive-descent parser (de.rs / read.rs, without the `float_roundtrip` or
`arbitrary_precision` features) closely enough to give the same message and position. It was
checked against the real serde_json 1.0.96 to 1.0.120 (the versions of RedisGears' time) on
60,000 inputs with no difference; from about 1.0.128 serde reports a bad hex digit of a `\\u`
escape after all four digits instead of at the digit.

* positions are serde's: `line` is 1-based; `column` counts **bytes** (not characters) since the
  last `\\n`. "Peek" errors point at the next unread byte (1-based column of that byte), other
  errors at the last byte read (so a raw newline in a string reports `column 0` of the next
  line);
* every error category that can arise from `&str` input is covered: EOF in a value, list,
  object or string; expected value / ident / `:` / `,` or `]` / `,` or `}`; key must be a
  string; trailing characters; trailing comma; invalid number; number out of range; invalid
  escape; control character in a string; lone surrogates and unexpected end of a `\\u` pair;
  recursion limit (128 levels).

Not reproduced: I/O errors and serde's custom (`Message`) errors, which cannot happen for a
`Value` read from a `&str`. "number out of range" follows serde's own float computation, so even
the boundary cases near 1.8e308 agree with it.

Once the text is known to be valid, `json.loads` builds the Python value; the validator has
already refused what Python accepts and serde does not (`NaN`, `Infinity`, `1e400`, lone
surrogates, deep nesting).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from jshost import errors
from jshost.errors import ReplyError

# serde_json's `ErrorCode` Display texts.
EOF_WHILE_PARSING_LIST = "EOF while parsing a list"
EOF_WHILE_PARSING_OBJECT = "EOF while parsing an object"
EOF_WHILE_PARSING_STRING = "EOF while parsing a string"
EOF_WHILE_PARSING_VALUE = "EOF while parsing a value"
EXPECTED_COLON = "expected `:`"
EXPECTED_LIST_COMMA_OR_END = "expected `,` or `]`"
EXPECTED_OBJECT_COMMA_OR_END = "expected `,` or `}`"
EXPECTED_SOME_IDENT = "expected ident"
EXPECTED_SOME_VALUE = "expected value"
INVALID_ESCAPE = "invalid escape"
INVALID_NUMBER = "invalid number"
NUMBER_OUT_OF_RANGE = "number out of range"
CONTROL_CHARACTER = "control character (\\u0000-\\u001F) found while parsing a string"
KEY_MUST_BE_A_STRING = "key must be a string"
LONE_LEADING_SURROGATE = "lone leading surrogate in hex escape"
TRAILING_COMMA = "trailing comma"
TRAILING_CHARACTERS = "trailing characters"
UNEXPECTED_END_OF_HEX_ESCAPE = "unexpected end of hex escape"
RECURSION_LIMIT_EXCEEDED = "recursion limit exceeded"

_RECURSION_LIMIT = 128
_U64_MAX = 2**64 - 1
_I32_MAX = 2**31 - 1
_I32_MIN = -(2**31)
_WHITESPACE = b" \n\t\r"
_DIGITS = b"0123456789"
_SIMPLE_ESCAPES = b'"\\/bfnrt'
_HEX = b"0123456789abcdefABCDEF"
_POW10_MAX = 308  # serde's POW10 table holds 1e0 .. 1e308


class JsonSyntaxError(ValueError):
    """A serde_json syntax error: its message and 1-based line / byte column."""

    def __init__(self, message: str, line: int, column: int) -> None:
        super().__init__(f"{message} at line {line} column {column}")
        self.message = message
        self.line = line
        self.column = column


def parse_json(text: str) -> Any:
    """Parse `text` as serde_json would; raise `JsonSyntaxError` with serde's wording."""
    _Validator(text.encode("utf-8")).run()
    return json.loads(text)


def parse_config(text: str) -> dict[str, Any]:
    """The LOAD CONFIG value: a JSON object, or `ReplyError` with RedisGears' exact text."""
    try:
        value = parse_json(text)
    except JsonSyntaxError as exc:
        raise ReplyError(errors.configuration_invalid_json(text, str(exc))) from None
    if not isinstance(value, dict):
        raise ReplyError(errors.CONFIGURATION_NOT_OBJECT)
    return value


def _overflows(value: int, digit: int, limit: int) -> bool:
    """serde's `overflow!(value * 10 + digit, limit)`."""
    return value * 10 + digit > limit


class _Validator:
    """serde_json's `Deserializer<StrRead>` reduced to its checks; `i` is the read index."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.i = 0
        self.depth = _RECURSION_LIMIT

    # --- reading and error positions ---------------------------------------------------------

    def peek(self) -> int | None:
        """The next byte, or None at the end."""
        return self.data[self.i] if self.i < len(self.data) else None

    def peek_digit(self) -> int | None:
        """The next byte if it is an ASCII digit."""
        byte = self.peek()
        return byte if byte is not None and byte in _DIGITS else None

    def skip_digits(self) -> None:
        """Consume a run of ASCII digits."""
        while self.peek_digit() is not None:
            self.i += 1

    def at(self, message: str, index: int) -> JsonSyntaxError:
        """serde's `position_of_index`: line and byte column of the index."""
        start_of_line = self.data.rfind(b"\n", 0, index) + 1
        line = 1 + self.data.count(b"\n", 0, start_of_line)
        return JsonSyntaxError(message, line, index - start_of_line)

    def error(self, message: str) -> JsonSyntaxError:
        """serde's `error`: the position after the last byte read."""
        return self.at(message, self.i)

    def peek_error(self, message: str) -> JsonSyntaxError:
        """serde's `peek_error`: the position of the next byte (capped at the end)."""
        return self.at(message, min(len(self.data), self.i + 1))

    def whitespace(self) -> int | None:
        """serde's `parse_whitespace`: skip blanks, return the next byte or None."""
        while (byte := self.peek()) is not None and byte in _WHITESPACE:
            self.i += 1
        return byte

    # --- grammar -----------------------------------------------------------------------------

    def run(self) -> None:
        """`from_str`: one value, then only whitespace."""
        self.value()
        if self.whitespace() is not None:
            raise self.peek_error(TRAILING_CHARACTERS)

    def value(self) -> None:
        """serde's `deserialize_any`."""
        byte = self.whitespace()
        if byte is None:
            raise self.peek_error(EOF_WHILE_PARSING_VALUE)
        char = chr(byte)
        if char in "ntf":
            self.i += 1
            self.ident({"n": b"ull", "t": b"rue", "f": b"alse"}[char])
        elif char == "-":
            self.i += 1
            self.integer()
        elif byte in _DIGITS:
            self.integer()
        elif char == '"':
            self.i += 1
            self.string()
        elif char in "[{":
            self.nested(self.array if char == "[" else self.object)
        else:
            raise self.peek_error(EXPECTED_SOME_VALUE)

    def ident(self, rest: bytes) -> None:
        """serde's `parse_ident`: the rest of `null`, `true` or `false`."""
        for expected in rest:
            byte = self.peek()
            if byte is None:
                raise self.error(EOF_WHILE_PARSING_VALUE)
            self.i += 1
            if byte != expected:
                raise self.error(EXPECTED_SOME_IDENT)

    def nested(self, body: Callable[[], None]) -> None:
        """serde's `check_recursion!` around an array or object body."""
        self.depth -= 1
        if self.depth == 0:
            raise self.peek_error(RECURSION_LIMIT_EXCEEDED)
        self.i += 1
        body()
        self.depth += 1

    def array(self) -> None:
        """serde's `SeqAccess` loop and `end_seq`, after the `[`."""
        first = True
        while True:
            byte = self.whitespace()
            if byte is None:
                raise self.peek_error(EOF_WHILE_PARSING_LIST)
            if byte == ord("]"):
                self.i += 1
                return
            if first:
                first = False
            elif byte == ord(","):
                self.i += 1
                after = self.whitespace()
                if after == ord("]"):
                    raise self.peek_error(TRAILING_COMMA)
                if after is None:
                    raise self.peek_error(EOF_WHILE_PARSING_VALUE)
            else:
                raise self.peek_error(EXPECTED_LIST_COMMA_OR_END)
            self.value()

    def object(self) -> None:
        """serde's `MapAccess` loop and `end_map`, after the `{`."""
        first = True
        while True:
            byte = self.whitespace()
            if byte == ord("}"):
                self.i += 1
                return
            if byte == ord(",") and not first:
                self.i += 1
                byte = self.whitespace()
            elif byte is None:
                raise self.peek_error(EOF_WHILE_PARSING_OBJECT)
            elif first:
                first = False
            else:
                raise self.peek_error(EXPECTED_OBJECT_COMMA_OR_END)
            self.key(byte)
            self.colon()
            self.value()

    def key(self, byte: int | None) -> None:
        """serde's `next_key_seed` after the comma: a string key."""
        if byte == ord('"'):
            self.i += 1
            self.string()
        elif byte == ord("}"):
            raise self.peek_error(TRAILING_COMMA)
        elif byte is None:
            raise self.peek_error(EOF_WHILE_PARSING_VALUE)
        else:
            raise self.peek_error(KEY_MUST_BE_A_STRING)

    def colon(self) -> None:
        """serde's `parse_object_colon`."""
        byte = self.whitespace()
        if byte == ord(":"):
            self.i += 1
        elif byte is None:
            raise self.peek_error(EOF_WHILE_PARSING_OBJECT)
        else:
            raise self.peek_error(EXPECTED_COLON)

    # --- strings -----------------------------------------------------------------------------

    def string(self) -> None:
        """serde's `parse_str_bytes` (validating), after the opening quote."""
        while True:
            byte = self.peek()
            if byte is None:
                raise self.error(EOF_WHILE_PARSING_STRING)
            self.i += 1
            if byte == ord('"'):
                return
            if byte == ord("\\"):
                self.escape()
            elif byte < 0x20:
                raise self.error(CONTROL_CHARACTER)

    def next_or_eof(self) -> int:
        """serde's `next_or_eof` inside a string."""
        byte = self.peek()
        if byte is None:
            raise self.error(EOF_WHILE_PARSING_STRING)
        self.i += 1
        return byte

    def escape(self) -> None:
        """serde's `parse_escape`, after the backslash."""
        byte = self.next_or_eof()
        if byte == ord("u"):
            self.unicode_escape()
        elif byte not in _SIMPLE_ESCAPES:
            raise self.error(INVALID_ESCAPE)

    def unicode_escape(self) -> None:
        """The `\\uXXXX` part of `parse_escape`: surrogates must come in pairs."""
        first = self.hex_escape()
        if 0xDC00 <= first <= 0xDFFF:
            raise self.error(LONE_LEADING_SURROGATE)
        if not 0xD800 <= first <= 0xDBFF:
            return
        for expected in b"\\u":
            byte = self.peek()
            if byte is None:
                raise self.error(EOF_WHILE_PARSING_STRING)
            self.i += 1  # serde discards the byte before reporting it
            if byte != expected:
                raise self.error(UNEXPECTED_END_OF_HEX_ESCAPE)
        if not 0xDC00 <= self.hex_escape() <= 0xDFFF:
            raise self.error(LONE_LEADING_SURROGATE)

    def hex_escape(self) -> int:
        """serde's `decode_hex_escape`: four hex digits."""
        if self.i + 4 > len(self.data):
            self.i = len(self.data)
            raise self.error(EOF_WHILE_PARSING_STRING)
        value = 0
        for _ in range(4):
            byte = self.data[self.i]
            self.i += 1
            if byte not in _HEX:
                raise self.error(INVALID_ESCAPE)
            value = value * 16 + int(chr(byte), 16)
        return value

    # --- numbers -----------------------------------------------------------------------------

    def integer(self) -> None:
        """serde's `parse_integer`, after an optional `-`."""
        byte = self.peek()
        if byte is None:
            raise self.error(EOF_WHILE_PARSING_VALUE)
        self.i += 1
        if byte == ord("0"):
            if self.peek_digit() is not None:
                raise self.peek_error(INVALID_NUMBER)  # only one leading zero
            self.fraction_or_exponent(0, 0)
            return
        if byte not in _DIGITS:
            raise self.error(INVALID_NUMBER)
        significand = byte - ord("0")
        while (digit := self.peek_digit()) is not None:
            if _overflows(significand, digit - ord("0"), _U64_MAX):
                self.long_integer(significand)
                return
            self.i += 1
            significand = significand * 10 + digit - ord("0")
        self.fraction_or_exponent(significand, 0)

    def long_integer(self, significand: int) -> None:
        """serde's `parse_long_integer`: digits past u64 only raise the exponent."""
        exponent = 0
        while self.peek_digit() is not None:
            self.i += 1
            exponent += 1
        self.fraction_or_exponent(significand, exponent)

    def fraction_or_exponent(self, significand: int, exponent: int) -> None:
        """serde's `parse_number`: continue with `.`, `e`/`E`, or end the number."""
        byte = self.peek()
        if byte == ord("."):
            self.decimal(significand, exponent)
        elif byte in (ord("e"), ord("E")):
            self.exponent(significand, exponent)
        else:
            self.from_parts(significand, exponent)

    def decimal(self, significand: int, exponent: int) -> None:
        """serde's `parse_decimal` (and `parse_decimal_overflow`), at the `.`."""
        self.i += 1
        digits = 0
        overflowed = False
        while (digit := self.peek_digit()) is not None:
            if _overflows(significand, digit - ord("0"), _U64_MAX):
                self.skip_digits()  # serde drops the digits that no longer fit ...
                overflowed = True  # ... and then skips the "one digit at least" test
                break
            self.i += 1
            significand = significand * 10 + digit - ord("0")
            digits += 1
        if digits == 0 and not overflowed:
            no_digit = INVALID_NUMBER if self.peek() is not None else EOF_WHILE_PARSING_VALUE
            raise self.peek_error(no_digit)
        exponent -= digits
        if self.peek() in (ord("e"), ord("E")):
            self.exponent(significand, exponent)
        else:
            self.from_parts(significand, exponent)

    def exponent(self, significand: int, starting: int) -> None:
        """serde's `parse_exponent` (and `parse_exponent_overflow`), at the `e`."""
        self.i += 1
        positive = True
        if self.peek() in (ord("+"), ord("-")):
            positive = self.peek() == ord("+")
            self.i += 1
        byte = self.peek()
        if byte is None:
            raise self.error(EOF_WHILE_PARSING_VALUE)
        self.i += 1
        if byte not in _DIGITS:
            raise self.error(INVALID_NUMBER)
        value = byte - ord("0")
        while (digit := self.peek_digit()) is not None:
            self.i += 1
            if _overflows(value, digit - ord("0"), _I32_MAX):
                if significand != 0 and positive:
                    raise self.error(NUMBER_OUT_OF_RANGE)
                self.skip_digits()
                return
            value = value * 10 + digit - ord("0")
        total = starting + value if positive else starting - value
        self.from_parts(significand, max(_I32_MIN, min(_I32_MAX, total)))

    def from_parts(self, significand: int, exponent: int) -> None:
        """serde's `f64_from_parts`: refuse a value that overflows to infinity."""
        value = float(significand)
        while abs(exponent) > _POW10_MAX:
            if value == 0.0:
                return
            if exponent >= 0:
                raise self.error(NUMBER_OUT_OF_RANGE)
            value /= 1e308
            exponent += 308
        if exponent >= 0 and value * float(f"1e{exponent}") == float("inf"):
            raise self.error(NUMBER_OUT_OF_RANGE)
