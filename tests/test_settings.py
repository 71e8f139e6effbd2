"""jshost.settings: the §9 table, Redis's value parsing and CONFIG GET / CONFIG SET behaviour."""

from __future__ import annotations

import pytest

from jshost.errors import ReplyError
from jshost.settings import (
    SETTINGS,
    Settings,
    check_startup,
    glob_match,
    parse_integer,
    parse_size,
    parse_yes_no,
)

P = "redisgears_2."

DEFAULTS = {
    "execution-threads": "1",
    "library-maxmemory": str(2**30),
    "v8-maxmemory": "200000000",
    "v8-library-initial-memory-usage": "2000000",
    "v8-library-initial-memory-limit": "3000000",
    "v8-library-memory-usage-delta": "1000000",
    "lock-redis-timeout": "500",
    "db-loading-lock-redis-timeout": "30000",
    "remote-task-default-timeout": "500",
    "error-verbosity": "1",
    "library-fatal-failure-policy": "abort",
    "enable-debug-command": "no",
    "gearsbox-address": "http://localhost:3000",
    "v8-plugin-path": "libredisgears_v8_plugin.so",
    "v8-flags": "'--noexpose-wasm'",
    "v8-debug-server-address": "",
    "max-reply-size": str(64 * 2**20),
    "library-max-code-size": str(16 * 2**20),
    "library-max-pending-jobs": "10000",
    "js-maxmemory": str(2 * 2**30),
}
MUTABLE = {
    "lock-redis-timeout",
    "db-loading-lock-redis-timeout",
    "remote-task-default-timeout",
    "error-verbosity",
    "library-fatal-failure-policy",
    "gearsbox-address",
    "max-reply-size",
    "library-max-code-size",
    "library-max-pending-jobs",
    "js-maxmemory",
}


def _set_error(settings: Settings, *pairs: tuple[str, str]) -> str:
    with pytest.raises(ReplyError) as info:
        settings.set_many(list(pairs))
    return info.value.text


def _failed(name: str, reason: str) -> str:
    return f"ERR CONFIG SET failed (possibly related to argument '{name}') - {reason}"


# --- the table ------------------------------------------------------------------------------


def test_defaults() -> None:
    assert dict(Settings().get("*")) == {P + name: value for name, value in DEFAULTS.items()}


def test_mutability() -> None:
    assert {spec.name for spec in SETTINGS if spec.mutable} == MUTABLE


@pytest.mark.parametrize(
    ("name", "low", "high"),
    [
        ("execution-threads", 1, 32),
        ("library-maxmemory", 16 * 2**20, 2 * 2**30),
        ("v8-maxmemory", 2 * 10**6, 10**9),  # down to the initial limit's minimum
        ("v8-library-initial-memory-usage", 10**6, 10 * 10**6),
        ("v8-library-initial-memory-limit", 2 * 10**6, 20 * 10**6),
        ("v8-library-memory-usage-delta", 10**6, 10 * 10**6),
        ("lock-redis-timeout", 100, 10**9),
        ("db-loading-lock-redis-timeout", 100, 10**9),
        ("remote-task-default-timeout", 1, 2**63 - 1),
        ("error-verbosity", 1, 2),
        ("max-reply-size", 2**20, 4 * 2**30),
        ("library-max-code-size", 1024, 2**30),
        ("library-max-pending-jobs", 1, 10**9),
        ("js-maxmemory", 0, 2**50),
    ],
)
def test_ranges(name: str, low: int, high: int) -> None:
    spec = next(spec for spec in SETTINGS if spec.name == name)
    assert (spec.minimum, spec.maximum) == (low, high)


def test_typed_values() -> None:
    settings = Settings()
    assert settings["lock-redis-timeout"] == 500
    assert settings["enable-debug-command"] is False
    assert settings["library-fatal-failure-policy"] == "abort"
    assert settings["library-maxmemory"] == 2**30


# --- value parsing --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("5", 5),
        ("5b", 5),
        ("5B", 5),
        ("1k", 1000),
        ("1K", 1000),
        ("1kb", 1024),
        ("1kB", 1024),
        ("1m", 10**6),
        ("200mb", 200 * 2**20),
        ("200MB", 200 * 2**20),
        ("1g", 10**9),
        ("1gb", 2**30),
        ("1Gb", 2**30),
        ("007mb", 7 * 2**20),
        ("", 0),  # strtoull of nothing is 0 without an error
        ("mb", 0),
        ("99999999999999999999999", 2**64 - 1),  # strtoull saturates
    ],
)
def test_parse_size(text: str, value: int) -> None:
    assert parse_size(text) == value


@pytest.mark.parametrize(
    "text",
    [
        "-1",
        "-1mb",
        "1.5gb",
        "1 gb",
        " 1",
        "1tb",
        "1kib",
        "1\u212a",
        "+1",
        "x",
        "9" * 128,
        "9" * 20 + "gb",
    ],
)
def test_parse_size_errors(text: str) -> None:
    with pytest.raises(ValueError, match="^argument must be a memory value$"):
        parse_size(text)


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("0", 0),
        ("500", 500),
        ("-5", -5),
        ("9223372036854775807", 2**63 - 1),
        ("-9223372036854775808", -(2**63)),
    ],
)
def test_parse_integer(text: str, value: int) -> None:
    assert parse_integer(text) == value


@pytest.mark.parametrize(
    "text", ["", "+5", "05", "-0", " 5", "5 ", "1e3", "1.0", "9223372036854775808", "١", "5ms"]
)
def test_parse_integer_errors(text: str) -> None:
    with pytest.raises(ValueError, match="^argument couldn't be parsed into an integer$"):
        parse_integer(text)


@pytest.mark.parametrize(
    ("text", "value"), [("yes", True), ("YES", True), ("no", False), ("No", False)]
)
def test_parse_yes_no(text: str, value: bool) -> None:
    assert parse_yes_no(text) is value


@pytest.mark.parametrize("text", ["1", "true", "y", ""])
def test_parse_yes_no_errors(text: str) -> None:
    with pytest.raises(ValueError, match="^argument must be 'yes' or 'no'$"):
        parse_yes_no(text)


# --- CONFIG GET -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("patterns", "names"),
    [
        (["redisgears_2.lock-redis-timeout"], ["redisgears_2.lock-redis-timeout"]),
        # An exact name matches without regard to case and is echoed as typed.
        (["REDISGEARS_2.Lock-Redis-Timeout"], ["REDISGEARS_2.Lock-Redis-Timeout"]),
        (["lock-redis-timeout"], []),
        (["redisgears_2.nope"], []),
        # A glob matches without regard to case and reports the full name.
        (
            ["*TIMEOUT"],
            [
                P + "lock-redis-timeout",
                P + "db-loading-lock-redis-timeout",
                P + "remote-task-default-timeout",
            ],
        ),
        (
            ["redisgears_2.v8-library-*"],
            [
                P + "v8-library-initial-memory-usage",
                P + "v8-library-initial-memory-limit",
                P + "v8-library-memory-usage-delta",
            ],
        ),
        (["*.error-verbosit?"], [P + "error-verbosity"]),
        (["*.[e]*"], [P + "execution-threads", P + "error-verbosity", P + "enable-debug-command"]),
        # Each setting once, at its first match.
        (
            ["redisgears_2.error-verbosity", "*verbosity", "REDISGEARS_2.ERROR-VERBOSITY"],
            [P + "error-verbosity"],
        ),
        (["*verbosity", "redisgears_2.error-verbosity"], [P + "error-verbosity"]),
    ],
)
def test_get(patterns: list[str], names: list[str]) -> None:
    assert [name for name, _ in Settings().get(*patterns)] == names


def test_get_values_are_formatted() -> None:
    settings = Settings({"enable-debug-command": "yes", "library-maxmemory": "32mb"})
    assert settings.get(P + "enable-debug-command", P + "library-maxmemory") == [
        (P + "enable-debug-command", "yes"),
        (P + "library-maxmemory", str(32 * 2**20)),
    ]


@pytest.mark.parametrize(
    ("pattern", "string", "matched"),
    [
        ("*", "anything", True),
        ("*", "", False),  # as in Redis: the loop needs a character to look at
        ("", "", True),
        ("a*b", "aXXb", True),
        ("a*b", "aXXc", False),
        ("a**b", "ab", True),
        ("*a*b*", "xxaxxbxx", True),
        ("h?llo", "hello", True),
        ("h?llo", "hllo", False),
        ("HELLO", "hello", True),
        ("h[ae]llo", "hAllo", True),
        ("h[^e]llo", "hello", False),
        ("h[^e]llo", "hallo", True),
        ("h[a-c]llo", "hBllo", True),
        ("h[c-a]llo", "hbllo", True),  # reversed ranges are swapped
        ("h[a-c]llo", "hdllo", False),
        ("a\\*", "a*", True),
        ("a\\*", "ab", False),
        ("[\\]]", "]", True),
        ("[\\A]", "a", False),  # an escaped class member is compared with case
        ("[", "[", False),  # an unterminated class
        ("[]", "x", False),
        ("[a", "a", True),
        ("ab", "abc", False),
        ("abc", "ab", False),
        ("ab*", "ab", True),
    ],
)
def test_glob_match_follows_redis(pattern: str, string: str, matched: bool) -> None:
    assert glob_match(pattern, string) is matched


# --- CONFIG SET -----------------------------------------------------------------------------


def test_set_mutable_values() -> None:
    settings = Settings()
    settings.set(P + "error-verbosity", "2")
    settings.set("REDISGEARS_2.Library-Fatal-Failure-Policy", "KILL")
    settings.set(P + "gearsbox-address", "http://x:1")
    settings.set(P + "remote-task-default-timeout", "9223372036854775807")
    assert settings["error-verbosity"] == 2
    assert settings["library-fatal-failure-policy"] == "kill"
    assert settings["gearsbox-address"] == "http://x:1"
    assert settings["remote-task-default-timeout"] == 2**63 - 1


@pytest.mark.parametrize(
    ("name", "value", "text"),
    [
        (
            P + "nope",
            "1",
            "ERR Unknown option or number of arguments for CONFIG SET - 'redisgears_2.nope'",
        ),
        (
            "lock-redis-timeout",
            "1000",
            "ERR Unknown option or number of arguments for CONFIG SET - 'lock-redis-timeout'",
        ),
        (
            "REDISGEARS_2.EXECUTION-THREADS",
            "2",
            _failed("REDISGEARS_2.EXECUTION-THREADS", "can't set immutable config"),
        ),
        (P + "v8-flags", "x", _failed(P + "v8-flags", "can't set immutable config")),
        (
            "REDISGEARS_2.LOCK-REDIS-TIMEOUT",
            "99",
            _failed(
                P + "lock-redis-timeout", "argument must be between 100 and 1000000000 inclusive"
            ),
        ),
        (
            P + "lock-redis-timeout",
            "1s",
            _failed(P + "lock-redis-timeout", "argument couldn't be parsed into an integer"),
        ),
        (
            P + "error-verbosity",
            "3",
            _failed(P + "error-verbosity", "argument must be between 1 and 2 inclusive"),
        ),
        (
            P + "remote-task-default-timeout",
            "0",
            _failed(
                P + "remote-task-default-timeout",
                "argument must be between 1 and 9223372036854775807 inclusive",
            ),
        ),
        (
            P + "library-fatal-failure-policy",
            "stop",
            _failed(
                P + "library-fatal-failure-policy",
                "argument(s) must be one of the following: abort, kill",
            ),
        ),
    ],
)
def test_set_errors(name: str, value: str, text: str) -> None:
    assert _set_error(Settings(), (name, value)) == text


def test_set_many_first_name_problem_wins() -> None:
    settings = Settings()
    unknown = "ERR Unknown option or number of arguments for CONFIG SET - 'redisgears_2.x'"
    immutable = _failed(P + "v8-flags", "can't set immutable config")
    assert _set_error(settings, (P + "x", "1"), (P + "v8-flags", "1")) == unknown
    assert _set_error(settings, (P + "v8-flags", "1"), (P + "x", "1")) == immutable
    assert _set_error(
        settings, (P + "error-verbosity", "2"), ("REDISGEARS_2.error-verbosity", "1")
    ) == _failed("REDISGEARS_2.error-verbosity", "duplicate parameter")
    # A bad value later in the line does not matter while a name is wrong.
    assert _set_error(settings, (P + "error-verbosity", "9"), (P + "x", "1")) == unknown


def test_set_many_is_all_or_nothing() -> None:
    settings = Settings()
    text = _set_error(
        settings,
        (P + "lock-redis-timeout", "40000"),
        (P + "library-fatal-failure-policy", "kill"),
        (P + "error-verbosity", "3"),
    )
    assert text == _failed(P + "error-verbosity", "argument must be between 1 and 2 inclusive")
    assert settings["lock-redis-timeout"] == 500
    assert settings["db-loading-lock-redis-timeout"] == 30000  # the side effect is undone too
    assert settings["library-fatal-failure-policy"] == "abort"
    settings.set_many([(P + "lock-redis-timeout", "600"), (P + "error-verbosity", "2")])
    assert (settings["lock-redis-timeout"], settings["error-verbosity"]) == (600, 2)


# --- the tf lock timeouts -------------------------------------------------------------------


def test_raising_lock_timeout_raises_db_loading_timeout() -> None:
    settings = Settings()
    settings.set(P + "lock-redis-timeout", "40000")
    assert settings["db-loading-lock-redis-timeout"] == 40000
    settings.set(P + "lock-redis-timeout", "1000")  # lowering leaves it alone
    assert settings["db-loading-lock-redis-timeout"] == 40000
    settings.set(P + "lock-redis-timeout", "35000")
    assert settings["db-loading-lock-redis-timeout"] == 40000


def test_db_loading_timeout_can_not_go_below_lock_timeout() -> None:
    settings = Settings()
    settings.set(P + "lock-redis-timeout", "1000")
    settings.set(P + "db-loading-lock-redis-timeout", "1000")  # equal is fine
    assert _set_error(settings, (P + "db-loading-lock-redis-timeout", "999")) == _failed(
        P + "db-loading-lock-redis-timeout",
        "The db-loading-lock-redis-timeout value can't be less than lock-redis-timeout value.",
    )
    assert settings["db-loading-lock-redis-timeout"] == 1000


def test_set_in_order_with_the_timeout_rule() -> None:
    settings = Settings()
    # Lock first: db-loading is dragged to 40000, then 35000 is below the lock timeout.
    text = _set_error(
        settings,
        (P + "lock-redis-timeout", "40000"),
        (P + "db-loading-lock-redis-timeout", "35000"),
    )
    assert "can't be less than lock-redis-timeout" in text
    # db-loading first: fine.
    settings.set_many(
        [(P + "db-loading-lock-redis-timeout", "50000"), (P + "lock-redis-timeout", "40000")]
    )
    assert (settings["lock-redis-timeout"], settings["db-loading-lock-redis-timeout"]) == (
        40000,
        50000,
    )


# --- start-up -------------------------------------------------------------------------------


def test_startup_overrides() -> None:
    settings = Settings(
        {
            "execution-threads": "4",
            "REDISGEARS_2.library-maxmemory": "512mb",
            "v8-maxmemory": "1g",
            "Enable-Debug-Command": "yes",
        }
    )
    assert settings["execution-threads"] == 4
    assert settings["library-maxmemory"] == 512 * 2**20
    assert settings["v8-maxmemory"] == 10**9
    assert settings["enable-debug-command"] is True


@pytest.mark.parametrize(
    ("overrides", "text"),
    [
        ({"nope": "1"}, "Unknown setting 'nope'"),
        (
            {"lock-redis-timeout": "5"},
            (
                "Invalid value for setting 'lock-redis-timeout':"
                " argument must be between 100 and 1000000000 inclusive"
            ),
        ),
        (
            {"library-maxmemory": "1tb"},
            "Invalid value for setting 'library-maxmemory': argument must be a memory value",
        ),
        (
            {"db-loading-lock-redis-timeout": "400"},
            (
                "Invalid value for setting 'db-loading-lock-redis-timeout': The"
                " db-loading-lock-redis-timeout value can't be less than lock-redis-timeout value."
            ),
        ),
        (
            {"v8-library-initial-memory-usage": "10m", "v8-library-initial-memory-limit": "3m"},
            "V8 library initial initial memory usage can not bypass the initial memory limit.",
        ),
    ],
)
def test_startup_errors(overrides: dict[str, str], text: str) -> None:
    with pytest.raises(ValueError) as info:
        Settings(overrides)
    assert str(info.value) == text


BASE = {
    "v8-maxmemory": 50,
    "v8-library-initial-memory-usage": 10,
    "v8-library-initial-memory-limit": 20,
    "v8-library-memory-usage-delta": 5,
}


@pytest.mark.parametrize(
    ("changes", "text"),
    [
        (
            {"v8-library-initial-memory-usage": 60, "v8-library-initial-memory-limit": 70},
            "V8 library initial memory usage can not bypass the v8 max memory.",
        ),
        (
            {"v8-library-initial-memory-limit": 51},
            "V8 library initial memory limit can not bypass the v8 max memory.",
        ),
        (
            {"v8-library-memory-usage-delta": 51},
            "V8 library memory delta can not bypass the v8 max memory.",
        ),
        (
            {"v8-library-initial-memory-usage": 21},
            "V8 library initial initial memory usage can not bypass the initial memory limit.",
        ),
    ],
)
def test_startup_checks(changes: dict[str, int], text: str) -> None:
    check_startup(BASE)
    with pytest.raises(ValueError) as info:
        check_startup({**BASE, **changes})
    assert str(info.value) == text
