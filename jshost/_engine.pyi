"""Types of `jshost._engine`, the QuickJS-ng binding built from `native/src/` (PyO3).

Checked against the built extension by `tests/test_engine_stub.py` (`mypy.stubtest`): a name or
a signature that differs from the extension fails the tests.

Values cross the boundary by the rules in `native/src/convert.rs`: JS values come back as
`float`, `int` (BigInt), `str`, `bool`, `None`, `bytes`, `list`, `dict`, the classes of
`jshost.engine.values` (`UNDEFINED`, `TypedArray`, `JSMap`, `JSSet`, `Boxed`) or a handle
(`JSObject` and its subclasses); hence `Any`.
"""

from collections.abc import Callable
from types import ModuleType
from typing import Any, Literal, final

from typing_extensions import disjoint_base

__all__ = [
    "ELEMENT_COST",
    "FastCalls",
    "MAX_DEPTH",
    "QUICKJS_VERSION",
    "JSError",
    "JSFunction",
    "JSObject",
    "JSPromise",
    "JSScript",
    "JSTerminated",
    "JSThrow",
    "JSValueTooLarge",
    "MemoryPool",
    "Runtime",
    "_init_types",
    "resp",
]

ELEMENT_COST: int
"""What each value (array item, property, map or set entry) costs in a value limit, in bytes."""
MAX_DEPTH: int
"""Values nested deeper than this are refused, both ways (a cycle would recurse forever)."""
QUICKJS_VERSION: str
"""The version of QuickJS-ng the extension is built with."""

class JSError(Exception):
    """An uncaught JS exception."""

    value: Any
    """The thrown value as it was (a thrown string stays a `str`; an Error stays a handle)."""
    text: Any
    """`String(value)`."""
    name: str | None
    message: str | None
    stack: str | None

class JSTerminated(BaseException):
    """JS execution was stopped at its deadline (not an `Exception`: callbacks cannot swallow it)."""

class JSThrow(Exception):
    """Raise from a Python callable to throw `args[0]` into JS as it is."""

class JSValueTooLarge(ValueError):
    """A value leaving JS costs more than the runtime's value limit."""

    limit: int
    """That limit, in bytes."""

@final
class MemoryPool:
    """A memory budget shared by several runtimes (0 = no limit)."""

    def __new__(cls, limit: int = 0) -> MemoryPool: ...
    @property
    def limit(self) -> int: ...
    @limit.setter
    def limit(self, limit: int) -> None: ...
    @property
    def used(self) -> int:
        """Bytes held by the pool's runtimes together (read by tests only)."""

@final
class Runtime:
    """One QuickJS runtime and its single context."""

    def __new__(
        cls,
        memory_limit: int = 0,
        max_stack_size: int = 1_048_576,
        pool: MemoryPool | None = None,
        stop_on_oom: bool = False,
    ) -> Runtime: ...
    def eval(self, code: str, filename: str = "<eval>") -> Any: ...
    def compile(self, code: str, filename: str = "<eval>") -> JSScript: ...
    @property
    def globals(self) -> JSObject: ...
    def run_jobs(self) -> list[JSError]: ...
    @property
    def has_pending_jobs(self) -> bool: ...
    def set_deadline(self, seconds: float | None) -> None: ...
    def clear_interrupt(self) -> None: ...
    def set_value_limit(self, limit: int, text: str | None = None) -> None: ...
    def charge(self, size: int, force: bool = False) -> bool: ...
    def release(self, size: int) -> None: ...
    def memory_usage(self) -> dict[str, int]: ...
    @property
    def out_of_memory(self) -> bool:
        """An allocation was refused during the last entry into JS."""
    @property
    def heap_size(self) -> int:
        """Bytes the heap holds now, plus what is charged for it outside (no heap walk)."""
    def set_memory_limit(self, limit: int) -> None: ...
    def gc(self) -> None: ...
    def close(self) -> None: ...
    @property
    def closed(self) -> bool: ...
    def roundtrip(self, value: Any) -> Any:
        """Convert a value through JS and back (a test and benchmark aid)."""

@final
class FastCalls:
    """The native call path's table and runner (`jshost.fastpath` is its one user)."""

    def __new__(
        cls,
        enter: Callable[[int, int, bool], int],
        exit: Callable[[], None],
        outcome: Callable[[Any, Any, BaseException | None], Any],
        job_errors: Callable[[Any, list[JSError]], None],
        overrun: Callable[[Any, float], None],
        handback_prefix: bytes,
    ) -> FastCalls: ...
    def add(
        self,
        library: str,
        function: str,
        invoke: JSFunction,
        func: JSFunction,
        flags: int,
        raw: bool,
        oom_exempt: bool,
        lib: Any,
    ) -> None: ...
    def remove_library(self, library: str) -> None: ...
    def clear(self) -> None: ...
    def __len__(self) -> int: ...
    @property
    def open(self) -> bool: ...
    @open.setter
    def open(self, open: bool) -> None: ...
    @property
    def last(self) -> int: ...
    @property
    def ran(self) -> int: ...
    def run(
        self,
        parser: Any,
        out: bytearray,
        protocol: int,
        db: int,
        oom: bool,
        deadline: float | None,
        kill_after: float | None,
        bound: int,
    ) -> list[bytes] | None: ...


@disjoint_base
class JSObject:
    """A handle to a JS object or symbol (made by the extension only)."""

    @property
    def typeof_(self) -> Literal["object", "function", "symbol"]: ...
    def get(self, key: str) -> Any: ...
    def set(self, key: str, value: Any) -> None: ...
    def delete(self, key: str) -> bool: ...
    def for_in(self) -> list[tuple[str, Any]]: ...

@final
class JSFunction(JSObject):
    """A handle to a JS function."""

    def __call__(self, *args: Any, this: Any = None) -> Any: ...
    @property
    def is_async(self) -> bool: ...

@final
class JSPromise(JSObject):
    """A handle to a JS promise."""

    @property
    def state(self) -> Literal["pending", "fulfilled", "rejected"]: ...
    @property
    def result(self) -> Any: ...
    def then(
        self,
        on_fulfilled: Callable[[Any], Any] | None = None,
        on_rejected: Callable[[Any], Any] | None = None,
    ) -> JSPromise: ...

@final
class JSScript(JSObject):
    """A compiled script, not yet run."""

    def run(self) -> Any: ...

def _init_types(
    *, undefined: object, typed_array: type, js_map: type, js_set: type, boxed: type
) -> None:
    """Hand the extension the classes of `jshost.engine.values` (that module does, once)."""

#: The RESP protocol layer (request framing, reply parsing, encoding), reached only through
#: `jshost/resp.py`, which types what it uses from it.
resp: ModuleType
