"""jshost.errors: every text is the spec's, byte for byte."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from jshost import errors
from jshost.errors import ReplyError

# shared/ sits beside the repository (locally and in CI).
SPEC_PATH = Path(__file__).resolve().parents[2] / "shared" / "SPEC.md"

# (what jshost produces, the text as the spec writes it). Placeholders such as `<name>` are
# passed through the functions, so each expected text is also a literal of SPEC.md.
SPEC_TEXTS: list[tuple[str, str]] = [
    (
        errors.INVALID_PROLOGUE,
        (
            "Invalid or missing prologue. The rules for the prologue are: a) It starts on the first"
            ' line. b) It is formatted as follows: "#!<engine name> <key>=<value>".'
        ),
    ),
    (
        errors.duplicated_prologue_properties(["name"]),
        "Duplicated prologue properties found: name.",
    ),
    (errors.API_VERSION_MISSING, "The api version is missing from the prologue."),
    (
        errors.api_version_malformed("<v>"),
        (
            'The API version has been incorrectly specified: "<v>". The expected format is'
            ' "<major>.<minor>". An example: "1.1".'
        ),
    ),
    (errors.LIBRARY_NAME_MISSING, "The library name is missing from the prologue."),
    (
        errors.unknown_prologue_properties(["foo", "bar"]),
        'Unknown prologue properties provided: "foo", "bar". Known properties: api_version, name.',
    ),
    (
        errors.unsupported_api_version("1.2"),
        "An unsupported API version was requested: 1.2. The supported versions are 1.0, 1.1.",
    ),
    (errors.unknown_backend("<engine>"), "Unknown backend <engine>"),
    (
        errors.unallowed_name_text("library", "<name>", errors.unallowed_char_reason("<c>")),
        "Unallowed library name '<name>', Unallowed char was given '<c>'.",
    ),
    (
        errors.unallowed_name_text("function", "<name>", errors.EMPTY_NAME_REASON),
        "Unallowed function name '<name>', Empty name is not allowed.",
    ),
    (
        errors.unallowed_name_text("key space trigger", "<n>", "<reason>"),
        "Unallowed key space trigger name '<n>', <reason>.",
    ),
    (
        errors.compile_failed("rg", "<exception text>"),
        "Failed library compilation: <exception text>",
    ),
    (
        errors.compile_failed("tf", "<exception text>"),
        "Failed to compile library: <exception text>",
    ),
    (errors.library_already_exists("<name>"), "Library <name> already exists."),
    (errors.failed_loading_library("<msg>"), "Failed loading library: <msg>."),
    (errors.failed_evaluating_module("<text>"), "Failed evaluating module: <text>"),
    (errors.nothing_registered("rg"), "No function nor registrations was registered"),
    (errors.nothing_registered("tf"), "Neither function nor other registrations were found."),
    (errors.unknown_subcommand("<lowercased name>"), "Unknown subcommand <lowercased name>"),
    (errors.wrong_arity("<cmd>"), "ERR wrong number of arguments for '<cmd>' command"),
    (errors.COULD_NOT_FIND_LIBRARY_PAYLOAD, "Could not find library payload"),
    (errors.CONFIGURATION_VALUE_NOT_GIVEN, "configuration value was not given"),
    (errors.CONFIGURATION_NOT_STRING, "given configuration value is not a valid string"),
    (
        errors.configuration_invalid_json("<value>", "<parser error>"),
        "configuration must be a valid json, '<value>', <parser error>.",
    ),
    (errors.CONFIGURATION_NOT_OBJECT, "configuration must be a valid json object"),
    (errors.LIB_CODE_NOT_STRING, "lib code must a valid string"),
    (errors.UNKNOWN_ARGUMENT_USER, "Unknown argument user"),
    (
        errors.DEBUG_SERVER_ADDRESS_NOT_SPECIFIED,
        "The debug server address was not specified in the configuration.",
    ),
    (errors.FUNCTION_NAME_NOT_GIVEN, "function name was not given"),
    (errors.NOT_UTF8, "Couldn't parse as UTF-8 string"),
    (errors.LIBRARY_DOES_NOT_EXIST, "library does not exists"),
    (errors.BINARY_OPTION, "Binary option is not allowed"),
    (errors.LIBRARY_NAME_NOT_GIVEN, "Library name was not given"),
    (errors.LIBRARY_NAME_NOT_STRING, "Library name is not a string"),
    (errors.unknown_list_option("<lowercased option>"), "Unknown option '<lowercased option>'"),
    (errors.DEBUG_COMMAND_DISABLED, "Debug command are disabled"),
    (errors.failed_getting_field("<f>", "<reason>"), "Failed getting field <f>, <reason>."),
    (errors.unknown_properties_given(["<p1>", "<p2>"]), "Unknown properties given: <p1>,<p2>"),
    (
        errors.LOG_NOT_STRING,
        "Can not convert value at position 0 into V8LocalUtf8. Value is not string.",
    ),
    (
        errors.CALL_ARGUMENT_NOT_BYTES,
        "Failed consuming arguments. Can not convert value into bytes buffer.",
    ),
    (
        errors.function_not_a_function("rg"),
        "Second argument to 'register_function' must be a function",
    ),
    (
        errors.function_not_a_function("tf"),
        "Second argument to 'registerFunction' must be a function",
    ),
    (
        errors.function_is_async("rg"),
        (
            "'register_function' can not be used with async function,"
            " use 'register_async_function' instead."
        ),
    ),
    (
        errors.function_is_async("tf"),
        (
            "'registerFunction' can not be used with async function,"
            " use 'registerAsyncFunction' instead."
        ),
    ),
    (errors.FLAGS_WRONG_TYPE, "Failed parsing function flags, wrong type of string value"),
    (errors.unknown_flag("<f>"), "Failed parsing function flags, Unknow flag '<f>' was given"),
    (errors.FUNCTION_OUT_OF_CONTEXT, "Called 'register_function' out of context"),
    (errors.function_already_exists("<name>"), "Function <name> already exists"),
    (
        errors.keyspace_callback_not_function("rg"),
        "Third argument to 'register_notifications_consumer' must be a function",
    ),
    (
        errors.keyspace_callback_not_function("tf"),
        "Third argument to 'registerKeySpaceTrigger' must be a function",
    ),
    (
        errors.keyspace_bad_prefix("rg"),
        (
            "Second argument to 'register_notifications_consumer' must be a string or ArrayBuffer"
            " representing the prefix"
        ),
    ),
    (
        errors.keyspace_bad_prefix("tf"),
        (
            "Second argument to 'registerKeySpaceTrigger' must be a string or ArrayBuffer"
            " representing the prefix"
        ),
    ),
    (
        errors.keyspace_out_of_context("rg"),
        "Called 'register_notifications_consumer' out of context",
    ),
    (errors.keyspace_out_of_context("tf"), "Called 'registerKeySpaceTrigger' out of context"),
    (
        errors.ON_TRIGGER_FIRED_NOT_FUNCTION,
        "'onTriggerFired' argument to 'registerKeySpaceTrigger' must be a function",
    ),
    (errors.NOTIFICATION_CONSUMER_EXISTS, "Notification consumer already exists"),
    (
        errors.stream_callback_not_function("rg"),
        "The fifth argument to 'register_stream_consumer' must be a function",
    ),
    (
        errors.stream_callback_not_function("tf"),
        "The fifth argument to 'registerStreamTrigger' must be a function",
    ),
    (
        errors.stream_bad_prefix("rg"),
        (
            "Second argument to 'register_stream_consumer' must be a String or ArrayBuffer"
            " representing the prefix"
        ),
    ),
    (
        errors.stream_bad_prefix("tf"),
        (
            "Second argument to 'registerStreamTrigger' must be a String or ArrayBuffer"
            " representing the prefix"
        ),
    ),
    (errors.stream_out_of_context("rg"), "Called 'register_function' out of context"),
    (errors.stream_out_of_context("tf"), "Called 'registerFunction' out of context"),
    (errors.WINDOW_NOT_POSITIVE, "window argument must be a positive number"),
    (errors.STREAM_REGISTRATION_EXISTS, "Stream registration already exists"),
    (
        errors.remote_callback_not_function("rg"),
        "Second argument to 'register_remote_function' must be a function",
    ),
    (
        errors.remote_callback_not_function("tf"),
        "Second argument to 'registerClusterFunction' must be a function",
    ),
    (errors.remote_out_of_context("rg"), "Called 'register_remote_function' out of context"),
    (errors.remote_out_of_context("tf"), "Called 'registerClusterFunction' out of context"),
    (errors.REMOTE_FUNCTION_MUST_BE_ASYNC, "Remote function must be async"),
    (errors.remote_function_already_exists("<name>"), "Remote function <name> already exists"),
    (errors.PROMISE_BAD_ARGUMENT, "Bad argument to 'Promise' function"),
    (errors.LIBRARY_WAS_DELETED, "Library was deleted"),
    (errors.FAILED_EXTRACTING_FUNCTION_NAME, "Failed extracting function name"),
    (errors.NUMKEYS_INVALID_DIGIT, "ERR invalid digit found in string"),
    (errors.NUMKEYS_EMPTY, "ERR cannot parse integer from empty string"),
    (errors.NUMKEYS_TOO_LARGE, "ERR number too large to fit in target type"),
    (errors.unknown_library("<lib>"), "Unknown library <lib>"),
    (errors.unknown_function("<fn>"), "Unknown function <fn>"),
    (
        errors.writes_on_replica("rg"),
        "Err can not run a function that might perform writes on a replica",
    ),
    (
        errors.writes_on_replica("tf"),
        (
            "Err can not run a function that might perform writes on a replica or when the"
            ' "avoid replication traffic" option is enabled'
        ),
    ),
    (errors.OOM_CAN_NOT_RUN, "OOM can not run the function when out of memory"),
    (
        errors.async_needs_async_command("rg"),
        (
            "The function is declared as async and was called while blocking was not allowed; note"
            " that you cannot invoke async functions from within Lua or MULTI, and you must use"
            " RG.FCALLASYNC instead."
        ),
    ),
    (errors.JS_ENGINE_OOM, "JS engine reached OOM state and can not run any more code"),
    (errors.CAN_NOT_CONVERT_ARGUMENT_TO_STRING, "Can not convert argument to string"),
    (
        errors.CAN_NOT_BLOCK_CLIENT,
        (
            "Can not block client for background execution, Blocking is not allow inside"
            " multi/exec, Lua, or within another module (RM_Call)."
        ),
    ),
    (
        errors.PROMISE_DROPPED,
        "Promise was dropped without been resolved. Usually happened because of timeout or OOM.",
    ),
    (errors.NOT_ALLOWED_FROM_SCRIPT, "This Redis command is not allowed from script"),
    (
        errors.not_allowed_on_script_mode("rg.fcall"),
        "ERR command 'rg.fcall' is not allowed on script mode",
    ),
    (
        errors.write_not_allowed("<fullname>"),
        "ERR Write command '<fullname>' was called while write is not allowed.",
    ),
    (errors.BLOCK_NOT_FUNCTION, "Argument to 'block' must be a function"),
    (errors.MAIN_THREAD_ALREADY_BLOCKED, "Main thread is already blocked"),
    (
        errors.can_not_lock_redis(errors.lock_replica_reason("rg")),
        "Can not lock Redis, Can not lock redis for write on replica",
    ),
    (
        errors.can_not_lock_redis(errors.lock_replica_reason("tf")),
        (
            "Can not lock Redis, Can not lock redis for write on replica or when the"
            ' "avoid replication traffic" option is enabled'
        ),
    ),
    (
        errors.can_not_lock_redis(errors.LOCK_OOM_REASON),
        "Can not lock Redis, OOM Can not lock redis for write",
    ),
    (errors.FUNCTION_WERE_UNREGISTERED, "Function were unregistered"),
    (errors.background_out_of_context("rg"), "Called 'run_on_background' out of context"),
    (errors.background_out_of_context("tf"), "Called 'executeAsync' out of context"),
    (
        errors.background_needs_async("rg"),
        "First argument to 'run_on_background' must be an async function",
    ),
    (
        errors.background_needs_async("tf"),
        "First argument to 'executeAsync' must be an async function",
    ),
    (errors.MAIN_THREAD_NOT_LOCKED, "Main thread is not locked"),
    (errors.USED_ON_INVALID_CLIENT, "Used on invalid client"),
    (errors.LIBRARY_WAS_ALREADY_DELETED, "Library was already deleted"),
    (errors.COMMAND_WAS_ABORTED, "Command was aborted"),
    (errors.EXECUTION_TERMINATED, "Err Execution was terminated due to OOM or timeout"),
    (
        errors.failed_loading_library(errors.EXECUTION_TERMINATED),
        "Failed loading library: Err Execution was terminated due to OOM or timeout.",
    ),
    (
        errors.no_permissions_on_key("<user>", b"<key>", "<acl error>"),
        "User '<user>' has no permissions on key '<key>', <acl error>.",
    ),
    (errors.REDIS_OOM, "OOM command not allowed when used memory > 'maxmemory'."),
    (errors.COULD_NOT_DECODE_VALUE, "Could not decode value as string"),
    (errors.BINARY_MAP_KEY, "Binary map key is not supported"),
    (errors.OBJECT_KEY_NOT_SUPPORTED, "Given object can not be a object key"),
    (errors.COULD_NOT_DECODE_BIG_NUMBER, "Could not decode big number as string"),
    (errors.utf8_error(b"\xff"), "invalid utf-8 sequence of 1 bytes from index 0"),
    (errors.VERBATIM_FORMAT_LENGTH, "Verbatim format length must be 3."),
    (errors.VERBATIM_FORMAT_ASCII, "Verbatim format must contains only ASCI values."),
    (errors.NOT_A_KEY, "Give value is not a key"),
    (errors.NESTING_LEVEL_REACHED, "nesting level reached"),
    (
        errors.DB_LOADING_TIMEOUT_TOO_LOW,
        "The db-loading-lock-redis-timeout value can't be less than lock-redis-timeout value.",
    ),
    (
        errors.V8_INITIAL_USAGE_OVER_MAX,
        "V8 library initial memory usage can not bypass the v8 max memory.",
    ),
    (
        errors.V8_INITIAL_LIMIT_OVER_MAX,
        "V8 library initial memory limit can not bypass the v8 max memory.",
    ),
    (errors.V8_DELTA_OVER_MAX, "V8 library memory delta can not bypass the v8 max memory."),
    (
        errors.V8_INITIAL_USAGE_OVER_LIMIT,
        "V8 library initial initial memory usage can not bypass the initial memory limit.",
    ),
    (errors.FAILED_SERIALIZING_ARGUMENTS, "Failed serializing arguments"),
    (
        errors.failed_serializing_result("<exception>"),
        "Failed serializing result, <exception>.",
    ),
    (errors.FAILED_DESERIALIZING_ARGUMENT, "Failed deserializing remote function argument"),
    (errors.FAILED_DESERIALIZING_RESULT, "Failed deserializing remote function result"),
    (
        errors.failed_deserializing_result("<text>"),
        "Failed deserializing remote function result '<text>'",
    ),
    (
        errors.library_not_on_remote_shard("<lib>"),
        "Library <lib> does not exists on remote shard",
    ),
    (
        errors.remote_function_not_in_library("<name>", "<lib>"),
        "Remote function <name> does not exists on library <lib>",
    ),
    (errors.STACK_OVERFLOW, "RangeError: Maximum call stack size exceeded"),
    # Debug sub-commands, RedisAI, DEBUG PROTOCOL (issue 16)
    (errors.debug_unknown_backend("<name>", "rg"), "Backend '<name>' does not exists"),
    (errors.debug_unknown_backend("<name>", "tf"),
     "Backend '<name>' does not exists or not yet loaded"),
    (errors.debug_unknown_subcommand("<lowercased>"), "Unknown subcommand '<lowercased>'"),
    *((line, line) for line in (*errors.DEBUG_HELP, *errors.DEBUG_JS_HELP)),
]

# Constants that do not come from the spec: Redis 7.2's CONFIG SET reasons.
NOT_SPEC_CONSTANTS = {
    "CONFIG_IMMUTABLE",
    "CONFIG_DUPLICATE",
    "CONFIG_NOT_INTEGER",
    "CONFIG_NOT_MEMORY",
    "CONFIG_NOT_YES_NO",
    "VALUE_NOT_ARRAY_BUFFER",  # a converter reason the spec leaves to best effort (SPEC §3)
}


def _normalised(text: str) -> str:
    """Collapse whitespace runs: the spec wraps long texts across lines."""
    return " ".join(text.split())


@pytest.fixture(scope="module")
def spec_text() -> str:
    """SPEC.md with whitespace collapsed; the spec tests need it to be beside the repo."""
    if not SPEC_PATH.exists():
        pytest.skip(f"{SPEC_PATH} not found")
    return _normalised(SPEC_PATH.read_text(encoding="utf-8"))


@pytest.mark.parametrize(("produced", "expected"), SPEC_TEXTS)
def test_text_is_exact(produced: str, expected: str) -> None:
    assert produced == expected


@pytest.mark.parametrize("expected", [expected for _, expected in SPEC_TEXTS])
def test_expected_text_is_in_the_spec(spec_text: str, expected: str) -> None:
    assert f"`{_normalised(expected)}`" in spec_text or _normalised(expected) in spec_text


def _public_constants() -> list[tuple[str, str]]:
    """Every public text constant of jshost.errors, except the Redis ones."""
    return [
        (name, value)
        for name, value in vars(errors).items()
        if re.fullmatch(r"[A-Z][A-Z0-9_]*", name)
        and isinstance(value, str)
        and name not in NOT_SPEC_CONSTANTS
    ]


@pytest.mark.parametrize(("name", "value"), _public_constants())
def test_every_constant_comes_from_the_spec(spec_text: str, name: str, value: str) -> None:
    assert _normalised(value) in spec_text


def test_debug_protocol_text_is_the_spec_table_cell(spec_text: str) -> None:
    """The spec writes it in a table, with each `|` escaped."""
    cell = _normalised(errors.StoreErrors.DEBUG_PROTOCOL_TYPE).replace("|", "\\|")
    assert f"`{cell}`" in spec_text


def test_odd_spellings_are_kept() -> None:
    assert "Unknow flag" in errors.unknown_flag("x")
    assert errors.LIBRARY_DOES_NOT_EXIST.endswith("does not exists")
    assert "does not exists" in errors.library_not_on_remote_shard("l")
    assert errors.LIB_CODE_NOT_STRING == "lib code must a valid string"
    assert "ASCI values" in errors.VERBATIM_FORMAT_ASCII
    assert "initial initial" in errors.V8_INITIAL_USAGE_OVER_LIMIT


def test_tf_async_text_names_tfcallasync() -> None:
    rg = errors.async_needs_async_command("rg")
    assert errors.async_needs_async_command("tf") == rg.replace("RG.FCALLASYNC", "TFCALLASYNC")
    assert errors.async_needs_async_command("tf").endswith("must use TFCALLASYNC instead.")


def test_doubled_full_stop_after_prefix_change() -> None:
    text = errors.failed_loading_library(errors.stream_prefix_changed("c", b"a", b"b"))
    assert text == (
        "Failed loading library: Can not upgrade an existing consumer with different prefix,"
        " consumer: 'c', old_prefix: a, new_prefix: b.."
    )


def test_binary_prefixes_and_keys_are_shown_as_binary_data() -> None:
    assert errors.stream_prefix_changed("c", b"\xff", b"ok").endswith(
        "old_prefix: [binary data], new_prefix: ok."
    )
    assert "key '[binary data]'" in errors.no_permissions_on_key("u", b"\x80", "e")


def test_failed_loading_library_always_adds_a_full_stop() -> None:
    assert errors.failed_loading_library("Error: boom.") == "Failed loading library: Error: boom.."


@pytest.mark.parametrize(
    ("text", "wire"),
    [
        ("a\r\nb", "a  b"),
        ("a\0b", "a b"),
        ("line1\nline2\n", "line1 line2 "),
        ("tab\tstays é", "tab\tstays é"),
    ],
)
def test_wire_error_text(text: str, wire: str) -> None:
    assert errors.wire_error_text(text) == wire


def test_reply_error_carries_the_text_unchanged() -> None:
    exc = ReplyError("Unknown library foo")
    assert exc.text == "Unknown library foo"
    assert str(exc) == "Unknown library foo"


def test_unknown_era_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown era"):
        errors.nothing_registered("xx")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("lib_1", None),
        ("ABCxyz09", None),
        ("", "Unallowed library name '', Empty name is not allowed."),
        ("my-lib", "Unallowed library name 'my-lib', Unallowed char was given '-'."),
        ("a b.c", "Unallowed library name 'a b.c', Unallowed char was given ' '."),
        ("libé", "Unallowed library name 'libé', Unallowed char was given 'é'."),
        ("x١", "Unallowed library name 'x١', Unallowed char was given '١'."),
    ],
)
def test_unallowed_name(name: str, expected: str | None) -> None:
    assert errors.unallowed_name("library", name) == expected


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"fine \xc3\xa9", None),
        (b"\xff", "invalid utf-8 sequence of 1 bytes from index 0"),
        (b"ab\xe2\x28\xa1", "invalid utf-8 sequence of 1 bytes from index 2"),
        (b"ab\xe2\x82", "incomplete utf-8 byte sequence from index 2"),
        (b"\xed\xa0\x80", "invalid utf-8 sequence of 1 bytes from index 0"),
    ],
)
def test_utf8_error_follows_rust(data: bytes, expected: str | None) -> None:
    assert errors.utf8_error(data) == expected


def test_unknown_command_follows_redis() -> None:
    assert errors.unknown_command(b"foo", []) == (
        "ERR unknown command 'foo', with args beginning with: "
    )
    assert errors.unknown_command(b"foo", [b"a", b"b c"]) == (
        "ERR unknown command 'foo', with args beginning with: 'a' 'b c' "
    )


def test_unknown_command_cuts_long_arguments() -> None:
    text = errors.unknown_command(b"x" * 200, [b"a" * 100, b"b" * 100, b"c"])
    # The name is cut to 128 bytes; arguments are added while fewer than 128 bytes are shown,
    # each cut to what is left of the 128.
    assert text == (
        "ERR unknown command '" + "x" * 128 + "', with args beginning with: "
        "'" + "a" * 100 + "' '" + "b" * 25 + "' "
    )


def test_unknown_command_stops_at_nul() -> None:
    assert errors.unknown_command(b"ab\0cd", [b"x\0y"]) == (
        "ERR unknown command 'ab', with args beginning with: 'x' "
    )
