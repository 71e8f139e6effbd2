"""Calls of library functions: `RG.FCALL` / `RG.FCALLASYNC` (and tf's `TFCALL` / `TFCALLASYNC`).

`Calls.call` is synchronous and returns either a reply or, for a result still pending, an
`asyncio.Future` of the reply. A sync function runs locked: in the atomic section, start to end,
under `lock-redis-timeout`. A promise it returns that is still pending is awaited (the callbacks
run as JS jobs) when the command may block. An async function (a coroutine) under the async
command runs as a background job whose promise gives the reply.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from jshost import errors
from jshost.engine import JSError, JSPromise, JSTerminated, JSValueTooLarge, is_too_deep
from jshost.errors import Era, ReplyError
from jshost.host.atomic import AtomicSection, async_token
from jshost.host.conversions import (
    ConversionError,
    error_text,
    js_to_reply,
    settled_result,
    value_error_text,
)
from jshost.host.gates import Gates
from jshost.host.library import RAW_ARGUMENTS, FunctionInfo, Library
from jshost.host.limits import Limits
from jshost.host.registry import Registry
from jshost.host.requests import CallArgs, check_enough_arguments
from jshost.host.scheduler import Scheduler, log_job_errors
from jshost.replies import Reply


class Calls:
    """Runs library functions (see the module docstring)."""

    def __init__(self, registry: Registry, section: AtomicSection, scheduler: Scheduler,
                 limits: Limits, gates: Gates) -> None:
        self.registry = registry
        self.section = section
        self.scheduler = scheduler
        self.limits = limits
        self.gates = gates

    def call(self, era: Era, call: CallArgs, *, asynchronous: bool, blocking_allowed: bool = True,
             db: int = 0) -> Reply | asyncio.Future[Reply]:
        """Run `RG.FCALL` (asynchronous=False) or `RG.FCALLASYNC` (True) with parsed arguments.

        Returns the reply, or a future of it when the result is a promise still pending and
        blocking is allowed. Raises `ReplyError` with the reply text on failure.
        `blocking_allowed=False` is the MULTI/EXEC case."""
        if self.scheduler.deferred:
            self.scheduler.flush_deferred()
        lib = self.registry.get(call.library)
        fn = lib.functions.get(call.function)
        if fn is None:
            raise ReplyError(errors.unknown_function(call.function))
        refused = self.gates.entry_refusal(era, fn.flags)
        if refused is not None:
            raise ReplyError(refused)
        check_enough_arguments(call)
        if fn.is_async and not asynchronous:
            raise ReplyError(errors.async_needs_async_command(era))
        heap = self.limits.heap
        refused = heap.entry_refusal(lib)  # tf's OOM state
        if refused is not None:
            raise ReplyError(refused)
        heap.before_entry(lib)
        args = _arguments(call.rest, fn.flags & RAW_ARGUMENTS)
        allow_block = asynchronous and blocking_allowed
        if fn.coroutine:
            if not allow_block:
                raise ReplyError(errors.CAN_NOT_BLOCK_CLIENT)
            return self._start_coroutine(lib, fn, args, db)
        return self._call_locked(lib, fn, args, db, allow_block)

    def _call_locked(self, lib: Library, fn: FunctionInfo, args: list[Any], db: int,
                     allow_block: bool) -> Reply | asyncio.Future[Reply]:
        rt = lib.runtime
        deadline, kill = self.limits.current()
        token = self.section.enter(fn.flags, db, allow_block)
        rt.set_deadline(deadline)
        started = time.monotonic() if kill else 0.0
        try:
            try:
                value = rt.invoke_sync(fn.fn, token, args)
                if rt.has_pending_jobs:
                    log_job_errors(lib, rt.run_jobs())
            except (JSTerminated, JSError, JSValueTooLarge, ValueError) as exc:
                return self.sync_outcome(lib, None, exc, allow_block)
            return self.sync_outcome(lib, value, None, allow_block)
        finally:
            rt.set_deadline(None)
            self.section.exit()
            self.limits.heap.after_entry(lib)
            if kill:
                self.limits.check_overrun(lib, started)

    def sync_outcome(self, lib: Library, value: Any, error: BaseException | None,
                     allow_block: bool) -> Reply | asyncio.Future[Reply]:
        """The reply of a sync call that has run, still in its section under its deadline:
        from the value it returned (after its microtasks ran), or from the exception the call,
        the conversion of its value or its microtasks raised. The native call path
        (`jshost.fastpath`) hands over here every outcome it does not encode itself."""
        try:
            if error is not None:
                raise error
            if isinstance(value, JSPromise):
                return self._promise_reply(lib, value, allow_block)
            return js_to_reply(value)
        except JSTerminated:
            lib.terminations += 1
            self.limits.heap.stopped(lib)
            lib.runtime.gc()
            raise ReplyError(errors.EXECUTION_TERMINATED) from None
        except JSError as exc:
            raise ReplyError(error_text(exc, self.limits.verbosity)) from None
        except ConversionError as exc:
            raise ReplyError(exc.text) from None
        except JSValueTooLarge as exc:  # the return value costs more than max-reply-size
            raise ReplyError(str(exc)) from None
        except ValueError as exc:
            if is_too_deep(exc):  # the return value itself could not be converted
                raise ReplyError(errors.NESTING_LEVEL_REACHED) from None
            raise

    def _promise_reply(self, lib: Library, promise: JSPromise,
                       allow_block: bool) -> Reply | asyncio.Future[Reply]:
        state = promise.state
        if state == "pending":
            if not allow_block:
                raise ReplyError(errors.CAN_NOT_BLOCK_CLIENT)
            return self._await_promise(lib, promise)
        return self._settled_reply(lib, promise, state == "fulfilled")

    def _settled_reply(self, lib: Library, promise: JSPromise, fulfilled: bool) -> Reply:
        """The reply for a settled promise: its converted value, or its reason's error text."""
        try:
            value = settled_result(promise)
            if fulfilled:
                return js_to_reply(value)
        except ConversionError as exc:
            raise ReplyError(exc.text) from None
        except JSValueTooLarge as exc:
            raise ReplyError(str(exc)) from None
        except JSError as exc:  # a getter threw while the value was converted
            raise ReplyError(error_text(exc, self.limits.verbosity)) from None
        raise ReplyError(value_error_text(value, self.limits.verbosity, lib.string_of))

    def _await_promise(self, lib: Library, promise: JSPromise) -> asyncio.Future[Reply]:
        """A future settled when `promise` settles (the callbacks run as JS jobs)."""
        future: asyncio.Future[Reply] = self.scheduler.loop().create_future()
        lib.inflight += 1

        def settle(outcome: Callable[[], Reply]) -> None:
            lib.inflight -= 1
            self.scheduler.close_soon_if_idle(lib)
            if future.done():
                return
            try:
                future.set_result(outcome())
            except ReplyError as exc:
                future.set_exception(exc)
            except JSTerminated:  # converting the value ran out of time
                lib.terminations += 1
                future.set_exception(ReplyError(errors.EXECUTION_TERMINATED))
                raise

        lib.runtime.watch(promise,
                          lambda: settle(lambda: self._settled_reply(lib, promise, True)),
                          lambda: settle(lambda: self._settled_reply(lib, promise, False)))
        return future

    def _start_coroutine(self, lib: Library, fn: FunctionInfo, args: list[Any],
                         db: int) -> asyncio.Future[Reply]:
        """An async function under the async command: a background job whose promise gives
        the reply."""
        scheduler = self.scheduler
        future: asyncio.Future[Reply] = scheduler.loop().create_future()
        lib.inflight += 1
        lib.pending_jobs += 1
        token = async_token(fn.flags, db)

        def start() -> None:
            lib.pending_jobs -= 1
            lib.inflight -= 1
            if lib.runtime.closed:
                _set_error(future, errors.FUNCTION_WERE_UNREGISTERED)
                return
            outcome: list[Any] = []

            def run() -> None:
                # The call, its microtasks, and the reply if the promise has settled: all in
                # the slice, under its deadline (converting may run getters).
                try:
                    value = lib.runtime.invoke_async(fn.fn, token, args)
                    log_job_errors(lib, lib.runtime.run_jobs())
                    if isinstance(value, JSPromise):
                        outcome.append(self._promise_reply(lib, value, allow_block=True))
                    else:
                        outcome.append(_converted(value))
                except ReplyError as exc:
                    outcome.append(exc)
                except JSError as exc:
                    outcome.append(ReplyError(error_text(exc, self.limits.verbosity)))
                except JSValueTooLarge as exc:
                    outcome.append(ReplyError(str(exc)))
                except ValueError as exc:
                    if not is_too_deep(exc):
                        raise
                    outcome.append(ReplyError(errors.NESTING_LEVEL_REACHED))

            problem = scheduler.run_background(lib, run)
            if problem is not None:
                _set_error(future, problem)
            elif not outcome:
                _set_error(future, errors.PROMISE_DROPPED)
            else:
                _chain(outcome[0], future)
            scheduler.close_if_idle(lib)

        scheduler.jobs.add(lib, start)
        return future


def _arguments(rest: list[bytes], raw: int) -> list[Any]:
    """Function arguments: strings, or ArrayBuffers with `raw-arguments`."""
    if raw:
        return list(rest)
    try:
        return [a.decode("utf-8") for a in rest]
    except UnicodeDecodeError:
        raise ReplyError(errors.CAN_NOT_CONVERT_ARGUMENT_TO_STRING) from None


def _converted(value: Any) -> Reply:
    try:
        return js_to_reply(value)
    except ConversionError as exc:
        raise ReplyError(exc.text) from None


def _set_error(future: asyncio.Future[Reply], text: str) -> None:
    if not future.done():
        future.set_exception(ReplyError(text))


def _chain(source: Any, target: asyncio.Future[Reply]) -> None:
    """Complete `target` from a reply, a ReplyError or a future of a reply."""
    if isinstance(source, asyncio.Future):
        def copy(done: asyncio.Future[Reply]) -> None:
            if target.done():
                return
            if done.exception() is not None:
                target.set_exception(done.exception())  # type: ignore[arg-type]
            else:
                target.set_result(done.result())
        source.add_done_callback(copy)
    elif isinstance(source, ReplyError):
        if not target.done():
            target.set_exception(source)
    elif not target.done():
        target.set_result(source)
