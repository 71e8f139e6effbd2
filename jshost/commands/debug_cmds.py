"""`RG.FUNCTION DEBUG ...` / `TFUNCTION DEBUG ...`: RedisGears' debug sub-commands.

The setting `enable-debug-command` (read at start-up, immutable) decides everything: off, the
reply is always `Debug command are disabled`. On, the words after DEBUG are dispatched in
RedisGears' order (`function_debug_command`):

1. a word must follow DEBUG (else Redis's arity error for the command), and be UTF-8;
2. compared exactly (case-sensitive) with the core sub-commands: `help`,
   `allow_unsafe_redis_commands`, `panic_on_thread_pool`, tf's `dump_pending_async_calls`;
3. else it names an engine: only `js`; the rest must be UTF-8, and the next word, lower-cased,
   is the engine sub-command (`isolates_stats`, `isolates_gc`, ...; later words are ignored).

jshost's runtimes are QuickJS runtimes where RedisGears had V8 isolates; they are counted the
same way (`jshost.host.runtimes`). `panic_on_thread_pool` only logs: jshost does not crash
itself on a client's request (docs/migrating-from-redisgears.md).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from jshost import errors
from jshost.errors import Era, ReplyError
from jshost.replies import OK, Result

if TYPE_CHECKING:
    from jshost.host import Host

log = logging.getLogger("jshost")

#: What `panic_on_thread_pool` logs (the original panicked on a worker thread with this).
PANIC_LOG_LINE = "Application panicked, debug panic"


def function_debug(host: Host, era: Era, command: str, args: list[bytes]) -> Result:
    """`<command> DEBUG <args...>` (`args`: the words after DEBUG)."""
    if not host.settings["enable-debug-command"]:
        raise ReplyError(errors.DEBUG_COMMAND_DISABLED)
    if not args:
        raise ReplyError(errors.wrong_arity(command))
    name = _utf8(args[0], errors.NOT_UTF8)
    core = _CORE.get(name)
    if core is not None and (name != "dump_pending_async_calls" or era == "tf"):
        return core(host)
    if name != "js":
        raise ReplyError(errors.debug_unknown_backend(name, era))
    words = [_utf8(word, errors.DEBUG_ARGUMENTS_NOT_STRINGS) for word in args[1:]]
    if not words:
        raise ReplyError(errors.DEBUG_SUBCOMMAND_NOT_PROVIDED)
    sub = words[0].lower()
    engine = _ENGINE.get(sub)
    if engine is None or (sub in _TF_ONLY and era != "tf"):
        raise ReplyError(errors.debug_unknown_subcommand(sub))
    return engine(host, era)


def _utf8(word: bytes, problem: str) -> str:
    try:
        return word.decode("utf-8")
    except UnicodeDecodeError:
        raise ReplyError(problem) from None


# --- core sub-commands ----------------------------------------------------------------------


def _help(host: Host) -> list[bytes]:
    return [line.encode() for line in errors.DEBUG_HELP]


def _allow_unsafe(host: Host) -> Any:
    host.js_commands.script_mode = False  # until the process ends
    return OK


def _panic(host: Host) -> Any:
    log.critical(PANIC_LOG_LINE)
    return OK


def _dump_pending(host: Host) -> dict[bytes, list[bytes]]:
    """tf: every waiting `callAsync`, by library name (libraries already deleted included)."""
    return {name.encode(): [call.encode() for call in calls]
            for name, calls in host.pending_async_calls().items()}


_CORE: dict[str, Callable[[Host], Result]] = {
    "help": _help,
    "allow_unsafe_redis_commands": _allow_unsafe,
    "panic_on_thread_pool": _panic,
    "dump_pending_async_calls": _dump_pending,
}


# --- engine (`js`) sub-commands ----------------------------------------------------------------


def _js_help(host: Host, era: Era) -> list[bytes]:
    return [line.encode() for line in errors.DEBUG_JS_HELP]


def _isolates_stats(host: Host, era: Era) -> Any:
    if era == "rg":
        active, not_active = host.registry.runtimes.counts()
        return [b"active", active, b"not_active", not_active]
    stats: dict[bytes, dict[bytes, int]] = {}
    for lib in host.registry.runtimes.active():
        usage = lib.runtime.memory_usage()
        stats[lib.name.encode()] = {
            b"total_heap_size": int(usage["heap_size"]),
            b"used_heap_size": int(usage["memory_used_size"]),
            b"heap_size_limit": int(usage["malloc_limit"]),
        }
    return stats


def _aggregated_stats(host: Host, era: Era) -> list[Any]:
    runtimes = host.registry.runtimes
    active, not_active = runtimes.counts()
    combined = sum(int(lib.runtime.memory_usage()["heap_size"]) for lib in runtimes.active())
    return [b"active", active, b"not_active", not_active, b"combined_memory_limit", combined]


def _strong_count(host: Host, era: Era) -> list[int]:
    return host.registry.runtimes.holders(host.libraries)


def _isolates_gc(host: Host, era: Era) -> Any:
    host.registry.runtimes.gc()
    return OK


def _request_gc(host: Host, era: Era) -> Any:
    for lib in host.registry.runtimes.active():
        lib.runtime.gc()
    return OK


def _avoid_allow_list(host: Host, era: Era) -> Any:
    host.registry.keep_engine_globals = True  # libraries loaded from now on, until restart
    return OK


_ENGINE: dict[str, Callable[[Host, Era], Result]] = {
    "help": _js_help,
    "isolates_stats": _isolates_stats,
    "isolates_aggregated_stats": _aggregated_stats,
    "isolates_strong_count": _strong_count,
    "isolates_gc": _isolates_gc,
    "request_v8_gc_for_debugging": _request_gc,
    "avoid_global_allow_list": _avoid_allow_list,
}
_TF_ONLY = frozenset({"isolates_aggregated_stats", "request_v8_gc_for_debugging",
                      "avoid_global_allow_list"})
