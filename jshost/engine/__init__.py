"""The JS engine boundary: what the host asks of a JS engine, in one place.

Like Redis' `engineCtx` for scripting engines (`functions.h`: create, call, get_used_memory,
free_function), the host sees an engine only through this module:

* `JSEngine`: makes runtimes, and bounds all their heaps together (`budget`);
* `LibraryRuntime`: one library's runtime (one heap, one deadline) with jshost's prelude
  (jshost/js_lib/prelude.js) installed: compile, install the natives, invoke sync / async, run
  the queued jobs, deadline and limits, used memory, close;
* the vocabulary the host and the engine share: the exceptions (`JSError`, `JSThrow`,
  `JSTerminated`, `JSValueTooLarge`), the handles of JS values (`JSObject`, `JSFunction`,
  `JSPromise`) and the Python shapes of JS values that have no Python twin (`jshost.engine
  .values`).

The one implementation is QuickJS-ng (`jshost.engine.quickjs`, over our Rust binding
`jshost._engine`, which nothing outside this package imports); `new_engine()` gives it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol

from jshost._engine import (
    MAX_DEPTH,
    JSError,
    JSFunction,
    JSObject,
    JSPromise,
    JSTerminated,
    JSThrow,
    JSValueTooLarge,
)
from jshost.engine.quickjs import QuickJS
from jshost.engine.values import UNDEFINED, Boxed, JSMap, JSSet, TypedArray, Undefined

# The binding refuses to convert values nested deeper than this (a cycle, say) with a ValueError.
_TOO_DEEP = f"value nested deeper than {MAX_DEPTH} levels"


class Script(Protocol):
    """Compiled library code, run once (its top level)."""

    def run(self) -> Any: ...


class LibraryRuntime(Protocol):
    """One library's JS runtime with jshost's prelude (see the module docstring).

    Values cross the boundary as Python values (`jshost.engine.values` for those without a
    Python twin); JS functions and promises as handles into the runtime. Every call may raise
    `JSError` (an uncaught JS exception), `JSTerminated` (stopped by the deadline or the memory
    limit) or `JSValueTooLarge` (a value past `set_value_limit`)."""

    @property
    def closed(self) -> bool:
        """Whether `close` has freed it (handles into it then fail cleanly)."""

    @property
    def has_pending_jobs(self) -> bool:
        """Whether promise jobs (microtasks) are queued."""

    def compile(self, code: str, filename: str) -> Script:
        """Compile a library's code (not run yet)."""

    def install(self, natives: Mapping[str, Callable[..., Any]], texts: Mapping[str, Any],
                era: str, config_json: str, engine_version: str,
                keep_engine_globals: bool = False) -> None:
        """Run the prelude: sandbox the globals and build `redis` for the library's `era` on top
        of the `natives` (`jshost.host.natives`); `texts` are every error text it may throw.
        `keep_engine_globals` leaves the engine's `eval`, `EvalError`, `SharedArrayBuffer` and
        `Atomics` in place (tf `DEBUG js avoid_global_allow_list`)."""

    def memory_usage(self) -> dict[str, int]:
        """The engine's heap figures: `heap_size` (what the limit applies to), `malloc_limit`
        (the limit now), `memory_used_size` (QuickJS's own count of allocated bytes), ..."""

    def invoke_sync(self, fn: JSFunction, token: int, args: list[Any]) -> Any:
        """`fn(syncClient, ...args)`: a function body, locked."""

    def invoke_async(self, fn: JSFunction, token: int, args: list[Any]) -> Any:
        """`fn(asyncClient, ...args)`: a coroutine or other background call."""

    def trigger_run(self, data: Mapping[str, Any]) -> JSFunction:
        """One trigger run: a function `(fn, token, is_async)` that calls `fn(client, data)`
        with a new client for `token`, always with the same `data` object."""

    def watch(self, promise: JSPromise, on_fulfilled: Callable[[], None],
              on_rejected: Callable[[], None]) -> None:
        """Call back (as a JS job) when `promise` settles; its value stays in the promise."""

    def string_of(self, value: Any) -> str:
        """JS `String(value)`."""

    def run_jobs(self) -> list[Any]:
        """Run the queued jobs; returns the errors of those that failed."""

    def set_deadline(self, seconds: float | None) -> None:
        """Stop JS (`JSTerminated`) once `seconds` from now have passed; None: no deadline."""

    def clear_interrupt(self) -> None:
        """Inside a native that caught a nested `JSTerminated`: let JS run on from it (tf
        `block()` turns the stop into a catchable error)."""

    def set_value_limit(self, limit: int, text: str) -> None:
        """The most one value leaving JS may cost, and the text of the error past it."""

    def charge(self, size: int, force: bool = False) -> bool:
        """Count `size` bytes held outside the heap against its memory limit; False (nothing
        counted) if that would go over it, unless `force`."""

    def release(self, size: int) -> None:
        """Give back what `charge` counted."""

    def gc(self) -> None:
        """Collect garbage (after a stop, say)."""

    def used_memory(self) -> int:
        """The bytes its heap uses now (INFO)."""

    @property
    def heap_size(self) -> int:
        """The bytes its heap holds now, by the engine's own running account (cheap)."""

    @property
    def out_of_memory(self) -> bool:
        """Whether the last stop (`JSTerminated`) came from its memory limit: a refused
        allocation stops JS uncatchably."""

    def set_memory_limit(self, limit: int) -> None:
        """Its heap limit from now on (0: none of its own)."""

    def close(self) -> None:
        """Free the runtime."""


class MemoryBudget(Protocol):
    """All runtimes' heaps together (`js-maxmemory`)."""

    @property
    def limit(self) -> int:
        """The most all the engine's runtimes may hold (0: no limit)."""

    @limit.setter
    def limit(self, limit: int) -> None: ...

    @property
    def used(self) -> int:
        """The bytes all the engine's runtimes hold now."""


class JSEngine(Protocol):
    """Makes library runtimes."""

    #: The engine's name and version, as `redis.v8_version()` and INFO show it.
    version: str
    #: What one value counts for against `max-reply-size`, besides the bytes of strings.
    element_cost: int

    @property
    def budget(self) -> MemoryBudget:
        """All its runtimes' heaps together."""

    def new_runtime(self, memory_limit: int) -> LibraryRuntime:
        """A fresh runtime whose heap may grow to `memory_limit` bytes (0: no limit of its own)
        and counts against `budget`."""


def new_engine(budget: int) -> JSEngine:
    """The QuickJS engine, all its runtimes' heaps together bounded by `budget` bytes."""
    return QuickJS(budget)


def is_too_deep(exc: BaseException) -> bool:
    """Whether `exc` is the engine's refusal to convert a value nested too deep (or cyclic)."""
    return isinstance(exc, ValueError) and str(exc) == _TOO_DEEP


__all__ = [
    "UNDEFINED",
    "Boxed",
    "JSEngine",
    "JSError",
    "JSFunction",
    "JSMap",
    "JSObject",
    "JSPromise",
    "JSSet",
    "JSTerminated",
    "JSThrow",
    "JSValueTooLarge",
    "LibraryRuntime",
    "MemoryBudget",
    "Script",
    "TypedArray",
    "Undefined",
    "is_too_deep",
    "new_engine",
]
