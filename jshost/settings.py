"""RedisGears' settings (redisgears_core/src/config.rs), with Redis 7.2's `CONFIG GET` /
`CONFIG SET` behaviour.

In RedisGears these were module configs named `redisgears_2.<name>`. jshost offers both eras,
so the table holds the settings of both; `SettingSpec.era` says which era had each one.

Values are parsed as Redis parses module configs: sizes with `memtoull` (`200mb`, `1gb`, `1k`),
other numbers with `string2ll` (no `+`, no leading zeros), booleans as `yes`/`no`, enums by
name without regard to case; then the range is checked. `CONFIG GET` shows sizes as plain byte
counts, as Redis does for memory configs.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from jshost import errors
from jshost.errors import ReplyError

PREFIX = "redisgears_2."

SettingKind = Literal["int", "bytes", "ms", "enum", "bool", "string"]
SettingEra = Literal["both", "rg", "tf", "jshost"]
SettingValue = int | bool | str

_MB = 10**6
_MIB = 2**20
_GIB = 2**30
_LLONG_MAX = 2**63 - 1
_ULLONG_MAX = 2**64 - 1
# Redis `memtoull` units, compared without regard to ASCII case.
_SIZE_UNITS: Mapping[str, int] = {
    "": 1,
    "b": 1,
    "k": 1000,
    "kb": 1024,
    "m": _MB,
    "mb": _MIB,
    "g": 10**9,
    "gb": _GIB,
}
# Redis `string2ll`: an optional `-`, then `0` alone or digits without a leading zero.
_LL = re.compile(r"0|-?[1-9][0-9]*")
_GLOB_CHARS = frozenset("[*?")


@dataclass(frozen=True)
class SettingSpec:
    """One setting."""

    name: str
    era: SettingEra
    kind: SettingKind
    default: SettingValue
    minimum: int | None = None
    maximum: int | None = None
    mutable: bool = False
    choices: tuple[str, ...] = ()

    @property
    def full_name(self) -> str:
        """The name as `CONFIG GET` / `CONFIG SET` know it."""
        return PREFIX + self.name

    def parse(self, text: str) -> SettingValue:
        """The typed value of `text`; `ValueError` carries Redis's reason text."""
        if self.kind == "bool":
            return parse_yes_no(text)
        if self.kind == "enum":
            return _parse_enum(text, self.choices)
        if self.kind == "string":
            return text
        value = parse_size(text) if self.kind == "bytes" else parse_integer(text)
        low, high = self.minimum, self.maximum
        if low is not None and high is not None and not low <= value <= high:
            raise ValueError(errors.config_out_of_range(low, high))
        return value

    def format(self, value: SettingValue) -> str:
        """The value as `CONFIG GET` shows it."""
        if isinstance(value, bool):
            return "yes" if value else "no"
        return str(value)


SETTINGS: tuple[SettingSpec, ...] = (
    SettingSpec("execution-threads", "both", "int", 1, 1, 32),
    SettingSpec("library-maxmemory", "rg", "bytes", _GIB, 16 * _MIB, 2 * _GIB),
    # Down to the initial limit's own minimum (RedisGears' tests start at 20 MiB; the
    # cross-checks keep it over the initial limit and usage).
    SettingSpec("v8-maxmemory", "tf", "bytes", 200 * _MB, 2 * _MB, 1000 * _MB),
    SettingSpec("v8-library-initial-memory-usage", "tf", "bytes", 2 * _MB, _MB, 10 * _MB),
    SettingSpec("v8-library-initial-memory-limit", "tf", "bytes", 3 * _MB, 2 * _MB, 20 * _MB),
    SettingSpec("v8-library-memory-usage-delta", "tf", "bytes", _MB, _MB, 10 * _MB),
    SettingSpec("lock-redis-timeout", "both", "ms", 500, 100, 10**9, mutable=True),
    SettingSpec("db-loading-lock-redis-timeout", "tf", "ms", 30000, 100, 10**9, mutable=True),
    SettingSpec("remote-task-default-timeout", "both", "ms", 500, 1, _LLONG_MAX, mutable=True),
    SettingSpec("error-verbosity", "both", "int", 1, 1, 2, mutable=True),
    SettingSpec(
        "library-fatal-failure-policy",
        "both",
        "enum",
        "abort",
        mutable=True,
        choices=("abort", "kill"),
    ),
    SettingSpec("enable-debug-command", "both", "bool", False),
    SettingSpec("gearsbox-address", "both", "string", "http://localhost:3000", mutable=True),
    SettingSpec("v8-plugin-path", "both", "string", "libredisgears_v8_plugin.so"),
    SettingSpec("v8-flags", "tf", "string", "'--noexpose-wasm'"),
    SettingSpec("v8-debug-server-address", "tf", "string", ""),
    # jshost's own limits (docs/security.md): what one library, or all of them, may cost.
    SettingSpec("max-reply-size", "both", "bytes", 64 * _MIB, _MIB, 4 * _GIB, mutable=True),
    SettingSpec("library-max-code-size", "both", "bytes", 16 * _MIB, 1024, _GIB, mutable=True),
    SettingSpec("library-max-pending-jobs", "both", "int", 10000, 1, 10**9, mutable=True),
    SettingSpec("js-maxmemory", "both", "bytes", 2 * _GIB, 0, 2**50, mutable=True),
)

_BY_FULL_NAME: Mapping[str, SettingSpec] = {spec.full_name.lower(): spec for spec in SETTINGS}

#: jshost's own settings (era "jshost"): given at start-up like the others (`--set`, the config
#: file, `JSHOST_<NAME>`), read by jshost, and not part of `CONFIG GET` / `CONFIG SET`.
JSHOST_SETTINGS: tuple[SettingSpec, ...] = (
    # Let clients send administrative commands to a backend Redis (docs/security.md).
    SettingSpec("admin-commands", "jshost", "bool", False),
)
_JSHOST_BY_NAME: Mapping[str, SettingSpec] = {spec.name: spec for spec in JSHOST_SETTINGS}


def parse_size(text: str) -> int:
    """Redis `memtoull`: digits and an optional unit (k=1000, kb=1024, m, mb, g, gb, b).

    Like Redis, an empty digit part reads as 0 and a too-long number saturates (then fails the
    range check). `ValueError` carries Redis's reason text.
    """
    digits = text[: len(text) - len(text.lstrip("0123456789"))]
    unit = text[len(digits) :]
    multiplier = _SIZE_UNITS.get(unit.lower()) if unit.isascii() else None
    if multiplier is None or len(digits) >= 128:
        raise ValueError(errors.CONFIG_NOT_MEMORY)
    value = min(int(digits or "0"), _ULLONG_MAX)  # strtoull saturates
    if value > _ULLONG_MAX // multiplier:
        raise ValueError(errors.CONFIG_NOT_MEMORY)
    return value * multiplier


def parse_integer(text: str) -> int:
    """Redis `string2ll`: a signed 64-bit decimal, strictly written."""
    if not _LL.fullmatch(text) or not -_LLONG_MAX - 1 <= int(text) <= _LLONG_MAX:
        raise ValueError(errors.CONFIG_NOT_INTEGER)
    return int(text)


def parse_yes_no(text: str) -> bool:
    """Redis `yesnotoi`: `yes` or `no`, any case."""
    lowered = text.lower() if text.isascii() else text
    if lowered not in ("yes", "no"):
        raise ValueError(errors.CONFIG_NOT_YES_NO)
    return lowered == "yes"


def _parse_enum(text: str, choices: tuple[str, ...]) -> str:
    """An enum value by name, any case; returns the canonical name."""
    lowered = text.lower() if text.isascii() else text
    if lowered not in choices:
        raise ValueError(errors.config_not_in_enum(choices))
    return lowered


class Settings:
    """The current values of every setting, with Redis-style `get` and `set`."""

    def __init__(self, overrides: Mapping[str, str] | None = None) -> None:
        """Start from the defaults, apply start-up `overrides` (short or full names, any case;
        immutable settings included), then run the tf start-up checks. Raises `ValueError`."""
        self._values: dict[str, SettingValue] = {
            spec.name: spec.default for spec in (*SETTINGS, *JSHOST_SETTINGS)}
        #: Counts the changes: who derives values from settings recomputes them when it moves.
        self.version = 0
        for name, text in (overrides or {}).items():
            spec = _JSHOST_BY_NAME.get(name.lower()) or _lookup(
                name if name.lower().startswith(PREFIX) else PREFIX + name)
            if spec is None:
                raise ValueError(errors.unknown_setting(name))
            try:
                self._assign(spec, spec.parse(text))
            except ValueError as exc:
                raise ValueError(errors.invalid_setting(name, str(exc))) from None
        check_startup(self._values)

    def __getitem__(self, name: str) -> SettingValue:
        """The typed value of a setting by its short name, e.g. `lock-redis-timeout`."""
        return self._values[name]

    def get(self, *patterns: str) -> list[tuple[str, str]]:
        """`CONFIG GET` over the full names: (name, value) pairs, each setting at most once.

        A pattern without `*`, `?` or `[` is a case-insensitive exact name and is reported as
        typed; a glob matches without regard to case and reports the full name. The order is
        that of the first match (Redis's dict order is unspecified).
        """
        found: dict[str, tuple[str, str]] = {}
        for pattern in patterns:
            if _GLOB_CHARS.isdisjoint(pattern):
                spec = _lookup(pattern)
                if spec is not None:
                    found.setdefault(spec.name, (pattern, self._display(spec)))
                continue
            for spec in SETTINGS:
                if spec.name not in found and glob_match(pattern, spec.full_name):
                    found[spec.name] = (spec.full_name, self._display(spec))
        return list(found.values())

    def set(self, name: str, value: str) -> None:
        """`CONFIG SET <full name> <value>`; raises `ReplyError` with Redis's text."""
        self.set_many([(name, value)])

    def set_many(self, pairs: Sequence[tuple[str, str]]) -> None:
        """`CONFIG SET` of several pairs, all or nothing, as Redis 7.2 does it.

        Names are checked first, in order (unknown, immutable, given twice: the first problem
        wins); then the values are set in order, and a bad one restores every setting.
        """
        specs = self._check_names([name for name, _ in pairs])
        snapshot = dict(self._values)
        for spec, (_, text) in zip(specs, pairs, strict=True):
            try:
                self._assign(spec, spec.parse(text))
            except ValueError as exc:
                self._values = snapshot
                raise ReplyError(errors.config_set_failed(spec.full_name, str(exc))) from None

    def _int(self, name: str) -> int:
        """The value of a numeric setting."""
        return int(self._values[name])

    def _display(self, spec: SettingSpec) -> str:
        """The current value of `spec` as `CONFIG GET` shows it."""
        return spec.format(self._values[spec.name])

    @staticmethod
    def _check_names(names: Sequence[str]) -> list[SettingSpec]:
        """The first loop of Redis's `configSetCommand`."""
        specs: list[SettingSpec] = []
        for name in names:
            spec = _lookup(name)
            if spec is None:
                raise ReplyError(errors.config_set_unknown(name))
            if not spec.mutable:
                raise ReplyError(errors.config_set_failed(name, errors.CONFIG_IMMUTABLE))
            if spec in specs:
                raise ReplyError(errors.config_set_failed(name, errors.CONFIG_DUPLICATE))
            specs.append(spec)
        return specs

    def _assign(self, spec: SettingSpec, value: SettingValue) -> None:
        """Store a parsed value, with tf's rules tying the two lock timeouts."""
        lock, db_loading = "lock-redis-timeout", "db-loading-lock-redis-timeout"
        if spec.name == db_loading and int(value) < self._int(lock):
            raise ValueError(errors.DB_LOADING_TIMEOUT_TOO_LOW)
        self.version += 1
        self._values[spec.name] = value
        if spec.name == lock and self._int(db_loading) < int(value):
            # Raising the lock timeout drags the db-loading one up with it.
            self._values[db_loading] = value


def check_startup(values: Mapping[str, SettingValue]) -> None:
    """tf's `verify_v8_mem_usage_values` over short-named values; raises `ValueError` with the
    exact text RedisGears gives."""
    usage = int(values["v8-library-initial-memory-usage"])
    limit = int(values["v8-library-initial-memory-limit"])
    delta = int(values["v8-library-memory-usage-delta"])
    maximum = int(values["v8-maxmemory"])
    checks = (
        (usage, maximum, errors.V8_INITIAL_USAGE_OVER_MAX),
        (limit, maximum, errors.V8_INITIAL_LIMIT_OVER_MAX),
        (delta, maximum, errors.V8_DELTA_OVER_MAX),
        (usage, limit, errors.V8_INITIAL_USAGE_OVER_LIMIT),
    )
    for value, bound, text in checks:
        if value > bound:
            raise ValueError(text)


def _lookup(full_name: str) -> SettingSpec | None:
    """A setting by its full name, without regard to case (Redis config names)."""
    return _BY_FULL_NAME.get(full_name.lower())


def glob_match(pattern: str, string: str) -> bool:
    """Redis `stringmatchlen` with `nocase`, as `CONFIG GET` uses it.

    `*`, `?`, `[...]` with `^` negation and `a-z` ranges, and `\\` escapes. Case is folded for
    ASCII letters only (C `tolower`), except for an escaped character inside `[...]`.
    """
    return _match(pattern, 0, string, 0, [False], 0)


def _lower(char: str) -> str:
    """C `tolower` in the C locale: ASCII letters only."""
    return char.lower() if "A" <= char <= "Z" else char


def _match(
    pattern: str, pi: int, string: str, si: int, skip_longer: list[bool], nesting: int
) -> bool:
    """`stringmatchlen_impl` from position `pi` of the pattern and `si` of the string."""
    if nesting > 1000:  # Redis's protection against abusive patterns
        return False
    while pi < len(pattern) and si < len(string):
        char = pattern[pi]
        if char == "*":
            while pi + 1 < len(pattern) and pattern[pi + 1] == "*":
                pi += 1
            if pi + 1 == len(pattern):
                return True
            while si < len(string):
                if _match(pattern, pi + 1, string, si, skip_longer, nesting + 1):
                    return True
                if skip_longer[0]:
                    return False
                si += 1
            # No match for the rest from anywhere: longer matches of earlier stars cannot help.
            skip_longer[0] = True
            return False
        if char == "[":
            pi, matched = _match_class(pattern, pi + 1, string[si])
            if not matched:
                return False
        elif char != "?":
            if char == "\\" and pi + 1 < len(pattern):
                pi += 1
            if _lower(pattern[pi]) != _lower(string[si]):
                return False
        si += 1
        pi += 1
        if si == len(string):
            while pi < len(pattern) and pattern[pi] == "*":
                pi += 1
            break
    return pi == len(pattern) and si == len(string)


def _match_class(pattern: str, pi: int, char: str) -> tuple[int, bool]:
    """The `[...]` case, from just after `[`: the index of its last pattern character (the
    `]`, or the last one when unterminated) and whether `char` matched."""
    negate = pi < len(pattern) and pattern[pi] == "^"
    if negate:
        pi += 1
    matched = False
    while True:
        left = len(pattern) - pi
        current = pattern[pi] if left else "\0"
        if current == "\\" and left >= 2:
            pi += 1
            matched = matched or pattern[pi] == char
        elif current == "]":
            break
        elif left == 0:
            pi -= 1
            break
        elif left >= 3 and pattern[pi + 1] == "-":
            start, end = sorted((pattern[pi], pattern[pi + 2]))
            matched = matched or _lower(start) <= _lower(char) <= _lower(end)
            pi += 2
        else:
            matched = matched or _lower(current) == _lower(char)
        pi += 1
    return pi, matched != negate
