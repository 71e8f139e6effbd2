"""The native (Python) callables behind one library's prelude, and the texts it throws.

The prelude (jshost/js_lib/prelude.js) checks argument shapes; these functions do what needs the
host: the lock and client tokens (§4.10, §4.11), store commands (§5, §6.1), `block()` (§4.8),
background work (§4.9), logging (§3.6) and registrations (§3).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from jshost import errors
from jshost.conversions import reply_to_js
from jshost.engine import JSFunction, JSThrow
from jshost.library import ALLOW_OOM, NO_WRITES, Library
from jshost.lock import async_token, decode_async_token

if TYPE_CHECKING:
    from jshost.host import Host


def prelude_texts(era: errors.Era) -> dict[str, Any]:
    """Every text the prelude may throw, from the one module that holds them."""
    return {
        # JS numbers arrive as floats: the position is shown as an integer (`position 0`).
        "canNotConvert": lambda pos, type_name, reason: errors.can_not_convert_value(
            int(pos), type_name, reason),
        "failedGettingField": errors.failed_getting_field,
        "unknownProperties": lambda names: errors.unknown_properties_given(names),
        "valueNotString": errors.VALUE_NOT_STRING,
        "valueNotLong": errors.VALUE_NOT_LONG,
        "valueNotBoolean": errors.VALUE_NOT_BOOLEAN,
        "valueNotArray": errors.VALUE_NOT_ARRAY,
        "wrongNumberOfArguments": errors.WRONG_NUMBER_OF_ARGUMENTS_GIVEN,
        "mustBeObject": errors.ARGUMENT_MUST_BE_OBJECT,
        "callArgumentNotBytes": errors.CALL_ARGUMENT_NOT_BYTES,
        "blockNotFunction": errors.BLOCK_NOT_FUNCTION,
        "backgroundNeedsAsync": errors.background_needs_async(era),
        "promiseBadArgument": errors.PROMISE_BAD_ARGUMENT,
        "libraryWasDeleted": errors.LIBRARY_WAS_DELETED,
        "functionNotFunction": errors.function_not_a_function(era),
        "keyspaceCallbackNotFunction": errors.keyspace_callback_not_function(era),
        "onTriggerFiredNotFunction": errors.ON_TRIGGER_FIRED_NOT_FUNCTION,
        "keyspaceBadPrefix": errors.keyspace_bad_prefix(era),
        "streamCallbackNotFunction": errors.stream_callback_not_function(era),
        "streamBadPrefix": errors.stream_bad_prefix(era),
        "windowNotPositive": errors.WINDOW_NOT_POSITIVE,
        "remoteCallbackNotFunction": errors.remote_callback_not_function(era),
        "remoteMustBeAsync": errors.REMOTE_FUNCTION_MUST_BE_ASYNC,
        "failedSerializingArguments": errors.FAILED_SERIALIZING_ARGUMENTS,
        "failedSerializingResult": errors.FAILED_SERIALIZING_RESULT,
        "failedSerializingResultWith": errors.failed_serializing_result,
        "failedDeserializingArgument": errors.FAILED_DESERIALIZING_ARGUMENT,
        "failedDeserializingResult": errors.FAILED_DESERIALIZING_RESULT,
        "logNotString": errors.LOG_NOT_STRING,
        "codeGeneration": errors.LimitErrors.CODE_GENERATION,
    }


def command_bytes(args: Sequence[Any]) -> list[bytes]:
    """Command words from JS: strings as UTF-8, ArrayBuffers as they are."""
    return [a.encode("utf-8", "surrogatepass") if isinstance(a, str) else a for a in args]


# What could end a log line, or start a forged one, or confuse a terminal: C0 controls but tab,
# C1 controls, DEL, the Unicode line and paragraph separators, and lone surrogates (not UTF-8 at all).
_UNSAFE_IN_LOG = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")
_LOG_ESCAPES = {"\t": "\\t", "\r": "\\r", "\n": "\\n"}


def escape_controls(text: str) -> str:
    """rg `redis.log`: the message as written, but each character that could end the log line
    (or forge another) escaped as `escape_default` writes it (`\\n`, `\\u{1b}`)."""
    if _UNSAFE_IN_LOG.search(text) is None:
        return text
    return _UNSAFE_IN_LOG.sub(
        lambda m: _LOG_ESCAPES.get(m.group(), f"\\u{{{ord(m.group()):x}}}"), text)


def escape_default(text: str) -> str:
    """Rust's `str::escape_default` (tf `redis.log`, §3.6)."""
    out = []
    for ch in text:
        if ch in "\t\r\n":
            out.append({"\t": "\\t", "\r": "\\r", "\n": "\\n"}[ch])
        elif ch in "\\'\"":
            out.append("\\" + ch)
        elif " " <= ch <= "~":
            out.append(ch)
        else:
            out.append(f"\\u{{{ord(ch):x}}}")
    return "".join(out)


class Natives:
    """The callables of one library, given to its prelude as `native`."""

    def __init__(self, host: Host, library: Library) -> None:
        self.host = host
        self.lib = library
        self.log = logging.getLogger(f"jshost.{library.name}")

    def as_dict(self) -> dict[str, Any]:
        lib = self.lib
        return {
            "call": self.call,
            "callAsync": self.call_async,
            "allowBlock": self.allow_block,
            "checkBackground": self.check_background,
            "asyncToken": self.async_token,
            "background": self.background,
            "enterBlock": self.enter_block,
            "exitBlock": self.exit_block,
            "isDeleted": lambda: lib.deleted,
            "log": self.write_log,
            "registerFunction": lib.register_function,
            "registerKeyspace": lib.register_keyspace,
            "registerStream": lib.register_stream,
            "registerRemote": lib.register_remote,
            "remoteFunction": self.remote_function,
        }

    # --- clients (§4.10, §4.11) ---------------------------------------------------------------

    def _live(self, token: int) -> None:
        lock = self.host.lock
        if not lock.held:
            raise JSThrow(errors.MAIN_THREAD_NOT_LOCKED)
        if token != lock.token:
            raise JSThrow(errors.USED_ON_INVALID_CLIENT)

    def call(self, token: int, raw: bool, words: list[Any]) -> Any:
        """`client.call` / `call_raw` / `callRaw`: run a command now, locked."""
        self._live(token)
        args = command_bytes(words)
        reply = self.host.run_js_command(args)
        return reply_to_js(reply, raw)

    def call_async(self, token: int, raw: bool, words: list[Any], resolve: JSFunction,
                   reject: JSFunction) -> None:
        """tf `callAsync` / `callAsyncRaw`: the promise settles in a background job."""
        self._live(token)
        if self.lib.deleted:
            raise JSThrow(errors.LIBRARY_WAS_ALREADY_DELETED)
        self.host.run_js_command_async(self.lib, command_bytes(words), raw, resolve, reject)

    def allow_block(self, token: int) -> bool:
        lock = self.host.lock
        if not lock.is_live(token):
            raise JSThrow(errors.USED_ON_INVALID_CLIENT)
        return lock.allow_block

    def check_background(self, token: int) -> None:
        if not self.host.lock.is_live(token):
            raise JSThrow(errors.background_out_of_context(self.lib.era))

    def async_token(self, token: int) -> int:
        lock = self.host.lock
        return async_token(lock.flags, lock.db)

    def background(self, job: JSFunction, on_terminated: JSFunction | None) -> None:
        """Queue a background job (`run_on_background`, a host `Promise` settling)."""
        self.host.schedule(self.lib, job, on_terminated)

    def remote_function(self, name: str) -> JSFunction:
        """A remote function of this library (§10: the one shard is this one)."""
        if self.lib.deleted:
            raise JSThrow(errors.FUNCTION_WERE_UNREGISTERED)
        remote = self.lib.remote_functions.get(name)
        if remote is None:
            raise JSThrow(errors.remote_function_not_in_library(name, self.lib.name))
        return remote.fn

    # --- block() (§4.8) -----------------------------------------------------------------------

    def enter_block(self, token: int) -> int:
        host = self.host
        if host.lock.held:
            raise JSThrow(errors.MAIN_THREAD_ALREADY_BLOCKED)
        flags, db = decode_async_token(token)
        if not flags & (NO_WRITES | ALLOW_OOM) and host.store_is_oom():
            raise JSThrow(errors.can_not_lock_redis(errors.LOCK_OOM_REASON))
        if self.lib.deleted:
            raise JSThrow(errors.FUNCTION_WERE_UNREGISTERED)
        return host.enter_block(self.lib, flags, db)

    def exit_block(self, token: int) -> None:
        self.host.exit_block(self.lib, token)

    # --- redis.log (§3.6) ---------------------------------------------------------------------

    def write_log(self, message: str) -> None:
        """tf escapes as Rust's `escape_default` (§3.6); rg writes the message as it is, but
        with control characters escaped: a library cannot end its line and forge another."""
        self.log.info(escape_default(message) if self.lib.era == "tf" else escape_controls(message))
