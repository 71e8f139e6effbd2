"""The QuickJS-ng engine (`jshost.engine.JSEngine`), over our Rust binding `jshost._engine`.

`QuickJSRuntime` is a binding `Runtime` with jshost's prelude (jshost/js_lib/prelude.js)
installed: the prelude's entry points (`invokeSync`, `invokeAsync`, `triggerRun`, `stringOf`,
`watch`) become its methods. The methods the host calls for every request are the binding's
own bound methods and the prelude's function handles, set as attributes: a call through this
class costs no more than a call into the binding. `entry_points` keeps the prelude's handles for
code that calls them itself (the native request path).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib import resources
from typing import Any

from jshost._engine import ELEMENT_COST, QUICKJS_VERSION, JSFunction, MemoryPool, Runtime

_PRELUDE = resources.files("jshost").joinpath("js_lib/prelude.js").read_text("utf-8")


@dataclass(frozen=True)
class EntryPoints:
    """The prelude's functions, as handles into one runtime."""

    invoke_sync: JSFunction  # (fn, token, args) -> fn(syncClient, ...args)
    invoke_async: JSFunction  # (fn, token, args) -> fn(asyncClient, ...args)
    trigger_run: JSFunction  # (data) -> (fn, token, isAsync) -> fn(client, data)
    string_of: JSFunction  # (value) -> String(value)
    watch: JSFunction  # (promise, onFulfilled, onRejected)


def _not_installed(*_args: Any) -> Any:
    raise RuntimeError("the prelude is not installed")


class QuickJSRuntime:
    """One library's QuickJS runtime (`jshost.engine.LibraryRuntime`)."""

    # The prelude's entry points, once `install` has run.
    invoke_sync: Callable[[JSFunction, int, list[Any]], Any]
    invoke_async: Callable[[JSFunction, int, list[Any]], Any]
    trigger_run: Callable[[Mapping[str, Any]], JSFunction]
    watch: Callable[[Any, Callable[[], None], Callable[[], None]], None]
    string_of: Callable[[Any], str]

    def __init__(self, memory_limit: int, pool: MemoryPool) -> None:
        # A refused allocation stops JS uncatchably (RedisGears' V8 terminated it).
        rt = Runtime(memory_limit=memory_limit, pool=pool, stop_on_oom=True)
        self._rt = rt
        self.entry_points: EntryPoints | None = None
        self.invoke_sync = self.invoke_async = self.trigger_run = _not_installed
        self.watch = self.string_of = _not_installed
        # The binding's own methods: no wrapper in between.
        self.run_jobs: Callable[[], list[Any]] = rt.run_jobs
        self.set_deadline: Callable[[float | None], None] = rt.set_deadline
        self.clear_interrupt: Callable[[], None] = rt.clear_interrupt
        self.charge: Callable[..., bool] = rt.charge
        self.release: Callable[[int], None] = rt.release
        self.gc: Callable[[], None] = rt.gc
        self.memory_usage: Callable[[], dict[str, int]] = rt.memory_usage  # QuickJS's figures
        self.set_memory_limit: Callable[[int], None] = rt.set_memory_limit

    @property
    def closed(self) -> bool:
        return bool(self._rt.closed)

    @property
    def has_pending_jobs(self) -> bool:
        return bool(self._rt.has_pending_jobs)

    def compile(self, code: str, filename: str) -> Any:
        return self._rt.compile(code, filename)

    def install(self, natives: Mapping[str, Callable[..., Any]], texts: Mapping[str, Any],
                era: str, config_json: str, engine_version: str,
                keep_engine_globals: bool = False) -> None:
        rt = self._rt
        install = rt.eval(_PRELUDE, "<jshost prelude>")
        entry = install(dict(natives), dict(texts), era, config_json, engine_version,
                        keep_engine_globals)
        points = EntryPoints(
            invoke_sync=entry.get("invokeSync"),
            invoke_async=entry.get("invokeAsync"),
            trigger_run=entry.get("triggerRun"),
            string_of=entry.get("stringOf"),
            watch=entry.get("watch"),
        )
        self.entry_points = points
        self.invoke_sync = points.invoke_sync
        self.invoke_async = points.invoke_async
        self.trigger_run = points.trigger_run
        self.watch = points.watch
        self.string_of = points.string_of
        if not keep_engine_globals:
            rt.globals.delete("eval")

    def set_value_limit(self, limit: int, text: str) -> None:
        self._rt.set_value_limit(limit, text)

    @property
    def heap_size(self) -> int:
        return self._rt.heap_size  # (0 once closed)

    @property
    def out_of_memory(self) -> bool:
        return bool(self._rt.out_of_memory)

    def used_memory(self) -> int:
        return 0 if self._rt.closed else int(self._rt.memory_usage()["memory_used_size"])

    def close(self) -> None:
        if not self._rt.closed:
            self._rt.close()


class QuickJS:
    """The QuickJS-ng engine (`jshost.engine.JSEngine`)."""

    version = f"quickjs-ng {QUICKJS_VERSION}"
    element_cost: int = ELEMENT_COST

    def __init__(self, budget: int) -> None:
        self.budget = MemoryPool(budget)

    def new_runtime(self, memory_limit: int) -> QuickJSRuntime:
        return QuickJSRuntime(memory_limit, self.budget)
