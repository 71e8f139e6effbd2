"""The native (Python) callables behind one library's prelude, and the texts it throws.

The prelude (jshost/js_lib/prelude.js) checks argument shapes; these functions do what needs the
host: the atomic section and client tokens, store commands, `block()`, background work, logging
and registrations -- what RedisGears' v8_native_functions.rs does in Rust.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from jshost import errors
from jshost.engine import JSFunction, JSTerminated, JSThrow
from jshost.host.atomic import AtomicSection, async_token, decode_async_token
from jshost.host.conversions import reply_to_js
from jshost.host.gates import Gates
from jshost.host.library import Library
from jshost.host.log_text import escape_controls, escape_default

if TYPE_CHECKING:
    from jshost.host.js_commands import JSCommands
    from jshost.host.scheduler import Scheduler


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
        "failedSerializingResultWith": errors.failed_serializing_result,
        "failedDeserializingArgument": errors.FAILED_DESERIALIZING_ARGUMENT,
        "failedDeserializingResult": errors.FAILED_DESERIALIZING_RESULT,
        "failedDeserializingResultText": errors.failed_deserializing_result,
        "functionWereUnregistered": errors.FUNCTION_WERE_UNREGISTERED,
        "logNotString": errors.LOG_NOT_STRING,
        "valueNotArrayBuffer": errors.VALUE_NOT_ARRAY_BUFFER,
        "tensorDimsNotIntegers": errors.TENSOR_DIMS_NOT_INTEGERS,
        "redisaiInvalidScriptCtx": errors.REDISAI_INVALID_SCRIPT_CTX,
        "redisaiNotInitialized": errors.REDISAI_NOT_INITIALIZED,
        "codeGeneration": errors.LimitErrors.CODE_GENERATION,
    }


def command_bytes(args: Sequence[Any]) -> list[bytes]:
    """Command words from JS: strings as UTF-8, ArrayBuffers as they are."""
    return [a.encode("utf-8", "surrogatepass") if isinstance(a, str) else a for a in args]


class Natives:
    """The callables of one library, given to its prelude as `native`. They take what they
    need: the atomic section, the scheduler (background jobs, `block()`), the commands JS sends
    to the store, and the gates (replica role, maxmemory) `block()` must pass."""

    def __init__(self, library: Library, section: AtomicSection, scheduler: Scheduler,
                 commands: JSCommands, gates: Gates) -> None:
        self.lib = library
        self.section = section
        self.scheduler = scheduler
        self.commands = commands
        self.gates = gates
        self.log = logging.getLogger(f"jshost.{library.name}")

    def as_dict(self) -> dict[str, Any]:
        lib = self.lib
        return {
            "call": self.call,
            "callAsync": self.call_async,
            "allowBlock": self.allow_block,
            "checkClient": self.check_client,
            "checkBackground": self.check_background,
            "asyncToken": self.async_token,
            "background": self.background,
            "enterBlock": self.enter_block,
            "runBlock": self.run_block,
            "isDeleted": lambda: lib.deleted,
            "log": self.write_log,
            "registerFunction": lib.register_function,
            "registerKeyspace": lib.register_keyspace,
            "registerStream": lib.register_stream,
            "registerRemote": lib.register_remote,
            "remoteFunction": self.remote_function,
        }

    # --- clients ----------------------------------------------------------------------------------

    def _live(self, token: int) -> None:
        section = self.section
        if not section.held:
            raise JSThrow(errors.MAIN_THREAD_NOT_LOCKED)
        if token != section.token:
            raise JSThrow(errors.USED_ON_INVALID_CLIENT)

    def call(self, token: int, raw: bool, words: list[Any]) -> Any:
        """`client.call` / `call_raw` / `callRaw`: run a command now, locked."""
        self._live(token)
        args = command_bytes(words)
        reply = self.commands.run(args)
        return reply_to_js(reply, raw)

    def call_async(self, token: int, raw: bool, words: list[Any], resolve: JSFunction,
                   reject: JSFunction) -> None:
        """tf `callAsync` / `callAsyncRaw`: the promise settles in a background job."""
        self._live(token)
        if self.lib.deleted:
            raise JSThrow(errors.LIBRARY_WAS_ALREADY_DELETED)
        self.commands.run_async(self.lib, command_bytes(words), raw, resolve, reject)

    def allow_block(self, token: int) -> bool:
        section = self.section
        if not section.is_live(token):
            raise JSThrow(errors.USED_ON_INVALID_CLIENT)
        return section.allow_block

    def check_client(self, token: int) -> None:
        """The client of `token` is still usable (RedisAI's `open_model` / `open_script`)."""
        if not self.section.is_live(token):
            raise JSThrow(errors.USED_ON_INVALID_CLIENT)

    def check_background(self, token: int) -> None:
        if not self.section.is_live(token):
            raise JSThrow(errors.background_out_of_context(self.lib.era))

    def async_token(self, token: int) -> int:
        section = self.section
        return async_token(section.flags, section.db)

    def background(self, job: JSFunction, on_terminated: JSFunction | None) -> None:
        """Queue a background job (`run_on_background`, a host `Promise` settling)."""
        self.scheduler.schedule(self.lib, job, on_terminated)

    def remote_function(self, name: str) -> JSFunction:
        """A remote function of this library (on one shard, the shard is this one)."""
        if self.lib.deleted:
            raise JSThrow(errors.FUNCTION_WERE_UNREGISTERED)
        remote = self.lib.remote_functions.get(name)
        if remote is None:
            raise JSThrow(errors.remote_function_not_in_library(name, self.lib.name))
        return remote.fn

    # --- block() ----------------------------------------------------------------------------------

    def enter_block(self, token: int) -> int:
        if self.section.held:
            raise JSThrow(errors.MAIN_THREAD_ALREADY_BLOCKED)
        flags, db = decode_async_token(token)
        refused = self.gates.block_refusal(self.lib.era, flags)
        if refused is not None:
            raise JSThrow(refused)
        if self.lib.deleted:
            raise JSThrow(errors.FUNCTION_WERE_UNREGISTERED)
        return self.scheduler.enter_block(self.lib, flags, db)

    def run_block(self, token: int, body: JSFunction) -> Any:
        """Run `body` (the prelude's wrapper of the `block` callback: 0 returned, 1 thrown) in
        the section `enter_block` opened, and leave it. Stopped at the time or memory limit:
        rg lets the stop go on (uncatchable); tf counts it, lets JS run on, and gives the
        prelude the text to throw as an ordinary, catchable string."""
        lib = self.lib
        try:
            return body()
        except JSTerminated:
            if lib.era == "rg":
                raise
            lib.terminations += 1
            lib.runtime.clear_interrupt()
            return errors.EXECUTION_TERMINATED
        finally:
            self.scheduler.exit_block(lib, token)

    # --- redis.log --------------------------------------------------------------------------------

    def write_log(self, message: str) -> None:
        """tf escapes as Rust's `escape_default`; rg writes the message as it is, but
        with control characters escaped: a library cannot end its line and forge another."""
        self.log.info(escape_default(message) if self.lib.era == "tf" else escape_controls(message))
