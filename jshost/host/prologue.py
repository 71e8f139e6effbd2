"""The library prologue (`#!js api_version=1.0 name=lib`), parsed exactly as RedisGears parses it
(redisgears_plugin_api/src/redisgears_plugin_api/prologue.rs).

`parse_prologue` raises every prologue error with the era's wording. Its checks run in
this order:

1. the parsing errors: invalid → duplicated → api_version missing → api_version
   malformed → name missing → unknown properties;
2. the engine (`Unknown backend <engine>`). The original's prologue parser does not look at the
   engine: the load command looks the backend up by the engine name of the prologue it got
   back, so this check can only come after every parsing error;
3. tf only: the library name rule (`Unallowed library name ...`), which the load command applies
   to the parsed name too.

The supported-version check is separate (`check_api_version`) because it happens at compile
time, after the syntax check (function_load_command.rs): the loader calls it after compiling.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from jshost import errors
from jshost.errors import Era, ReplyError

SUPPORTED_API_VERSIONS: frozenset[tuple[int, int]] = frozenset({(1, 0), (1, 1)})
KNOWN_PROPERTIES = ("api_version", "name")
ENGINE = "js"

# Rust `char::is_whitespace` (Unicode White_Space), which tf's `trim()` strips. Python's
# `str.strip()` would also strip U+001C..U+001F, which Rust keeps.
_RUST_WHITESPACE = (
    "\t\n\v\f\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009"
    "\u200a\u2028\u2029\u202f\u205f\u3000"
)
# Rust `u8::from_str`: an optional `+`, then ASCII digits only (no `_`, no other digits).
_U8 = re.compile(r"\+?[0-9]+")


@dataclass(frozen=True)
class Prologue:
    """A parsed prologue: engine name, requested api_version (major, minor) and library name."""

    engine: str
    api_version: tuple[int, int]
    name: str

    @property
    def api_version_display(self) -> str:
        """The version as LIST shows it: `<major>.<minor>`, so `01.0` shows as `1.0`."""
        major, minor = self.api_version
        return f"{major}.{minor}"


def parse_prologue(code: str, era: Era) -> Prologue:
    """Parse the first line of `code`; raise `ReplyError` with the era's exact text."""
    try:
        prologue = _parse(code, era)
        if prologue.engine != ENGINE:
            raise ReplyError(errors.unknown_backend(prologue.engine))
        if era == "tf":
            _check_tf_library_name(prologue.name)
    except ReplyError as exc:
        # rg sends prologue errors bare; tf prefixes every one of them.
        raise ReplyError(
            exc.text if era == "rg" else errors.compile_failed(era, exc.text)
        ) from None
    return prologue


def check_api_version(prologue: Prologue, era: Era) -> None:
    """The compile-time check: refuse a well-formed but unsupported api_version."""
    if prologue.api_version not in SUPPORTED_API_VERSIONS:
        text = errors.unsupported_api_version(prologue.api_version_display)
        raise ReplyError(errors.compile_failed(era, text))


def _parse(code: str, era: Era) -> Prologue:
    """Parse the first line, step by step as prologue.rs does, raising the bare (unprefixed)
    text."""
    line = _first_line(code)
    if not line.startswith("#!"):
        raise ReplyError(errors.INVALID_PROLOGUE)
    if era == "tf":
        line = line.strip(_RUST_WHITESPACE)
    engine, *pieces = re.split("[ =]", line[2:])
    properties, duplicated = _pairs(pieces)
    if duplicated:
        raise ReplyError(errors.duplicated_prologue_properties(duplicated))
    if "api_version" not in properties:
        raise ReplyError(errors.API_VERSION_MISSING)
    api_version = _parse_api_version(properties["api_version"])
    if "name" not in properties:
        raise ReplyError(errors.LIBRARY_NAME_MISSING)
    unknown = [key for key in properties if key not in KNOWN_PROPERTIES]
    if unknown:
        raise ReplyError(errors.unknown_prologue_properties(unknown))
    return Prologue(engine=engine, api_version=api_version, name=properties["name"])


def _first_line(code: str) -> str:
    """Step 1: the text up to the first `\\n`, without one trailing `\\r`."""
    line = code.split("\n", 1)[0]
    return line.removesuffix("\r")


def _pairs(pieces: list[str]) -> tuple[dict[str, str], list[str]]:
    """Step 5: (key, value) pairs in order; returns the properties and the duplicated keys.

    A key seen before is recorded as duplicated (even with an empty value: that test comes
    first); otherwise an empty key or value, or a piece left over, makes the prologue invalid.
    """
    if len(pieces) % 2:
        # The leftover piece is met last, but "invalid" outranks "duplicated" anyway.
        raise ReplyError(errors.INVALID_PROLOGUE)
    properties: dict[str, str] = {}
    duplicated: list[str] = []
    for key, value in zip(pieces[::2], pieces[1::2], strict=True):
        if key in properties:
            duplicated.append(key)
        elif not key or not value:
            raise ReplyError(errors.INVALID_PROLOGUE)
        else:
            properties[key] = value
    return properties, duplicated


def _parse_api_version(text: str) -> tuple[int, int]:
    """Step 7: `<u8>.<u8>[.anything...]`; parts after the second are ignored."""
    parts = text.split(".")
    if len(parts) < 2:
        raise ReplyError(errors.api_version_malformed(text))
    major, minor = (_parse_u8(part) for part in parts[:2])
    if major is None or minor is None:
        raise ReplyError(errors.api_version_malformed(text))
    return major, minor


def _parse_u8(text: str) -> int | None:
    """Rust `u8::from_str`: 0–255, a leading `+` allowed; None when it does not parse."""
    if not _U8.fullmatch(text):
        return None
    value = int(text)
    return value if value <= 255 else None


def _check_tf_library_name(name: str) -> None:
    """tf only: the library name must match `[A-Za-z0-9_]+`."""
    text = errors.unallowed_name("library", name)
    if text is not None:
        raise ReplyError(text)
