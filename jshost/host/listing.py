"""`RG.FUNCTION LIST` / `TFUNCTION LIST` replies (RedisGears' function_list_command.rs).

rg maps follow the field order the RedisGears docs show; tf maps are sorted by field name, as the
original's BTreeMaps were. Error texts inside (`last_error`) are worked out when LIST runs, at the
current `error-verbosity`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from jshost.errors import Era
from jshost.host.conversions import value_error_text
from jshost.host.library import (
    FunctionInfo,
    KeyspaceTrigger,
    Library,
    RecordedError,
    StreamState,
    StreamTrigger,
    flag_names,
)
from jshost.host.requests import ListArgs

if TYPE_CHECKING:
    from jshost.host import Host

NONE_TEXT = "None"  # rg shows a missing value as the bulk string "None"


def list_libraries(host: Host, era: Era, args: ListArgs) -> list[dict[str, Any]]:
    """One map per library (all, or the one named by LIBRARY)."""
    libs: Iterable[Library] = host.libraries.values()
    if args.library is not None:
        libs = [lib for lib in libs if lib.name == args.library]
    describe = _rg_library if era == "rg" else _tf_library
    return [describe(host, lib, args) for lib in libs]


def _rg_library(host: Host, lib: Library, args: ListArgs) -> dict[str, Any]:
    v = args.verbosity
    out: dict[str, Any] = {
        "engine": "js",
        "api_version": lib.prologue.api_version_display,
        "name": lib.name,
        "pending_jobs": lib.pending_jobs,
        "user": lib.user,
        "configuration": lib.config_text,
        "functions": [_rg_function(f) if v else f.name for f in lib.functions.values()],
        "remote_functions": list(lib.remote_functions),
        "stream_consumers": [_rg_stream(host, lib, s, v) if v else s.name
                             for s in lib.stream_triggers.values()],
        "notifications_consumers": [_rg_keyspace(host, lib, t) if v else t.name
                                    for t in lib.keyspace_triggers.values()],
    }
    if args.with_code:
        out["code"] = lib.code
    if v:
        out["gears_box_info"] = None
    return out


def _tf_library(host: Host, lib: Library, args: ListArgs) -> dict[str, Any]:
    v = args.verbosity
    out: dict[str, Any] = {
        "api_version": lib.prologue.api_version_display,
        "cluster_functions": list(lib.remote_functions),
    }
    if args.with_code:
        out["code"] = lib.code
    out.update({
        "configuration": lib.config_text,
        "engine": "js",
        "functions": [_tf_function(f) if v else f.name for f in lib.functions.values()],
        "keyspace_triggers": [_tf_keyspace(host, lib, t) if v else t.name
                              for t in lib.keyspace_triggers.values()],
        "name": lib.name,
        "pending_async_calls": host.pending_async_calls().get(lib.name, []),
        "pending_jobs": lib.pending_jobs,
        "stream_triggers": [_tf_stream(host, lib, s, v) if v else s.name
                            for s in lib.stream_triggers.values()],
        "user": lib.user,
    })
    return out


def _rg_function(f: FunctionInfo) -> dict[str, Any]:
    return {"name": f.name, "flags": flag_names(f.flags), "is_async": f.is_async}


def _tf_function(f: FunctionInfo) -> dict[str, Any]:
    return {"description": f.description, "flags": flag_names(f.flags), "is_async": f.is_async,
            "name": f.name}


def _error(host: Host, lib: Library, value: Any) -> str | None:
    """A recorded failure as the text LIST shows (None when there was none)."""
    if value is None:
        return None
    if isinstance(value, RecordedError):
        return value.at(host.verbosity)
    return value_error_text(value, host.verbosity, lib.string_of)


def _rg_keyspace(host: Host, lib: Library, t: KeyspaceTrigger) -> dict[str, Any]:
    s = t.stats
    last_error = _error(host, lib, s.last_error)
    return {
        "name": t.name,
        "num_triggered": s.num_triggered,
        "num_finished": s.num_finished,
        "num_success": s.num_success,
        "num_failed": s.num_failed,
        "last_error": NONE_TEXT if last_error is None else last_error,
        "last_exection_time": s.last_execution_ms,
        "total_exection_time": s.total_execution_ms,
        "avg_exection_time": _ratio(s.total_execution_ms, s.num_finished),
    }


def _tf_keyspace(host: Host, lib: Library, t: KeyspaceTrigger) -> dict[str, Any]:
    s = t.stats
    return {
        "description": t.description,
        "last_error": _error(host, lib, s.last_error),
        "last_execution_time": s.last_execution_ms,
        "name": t.name,
        "num_failed": s.num_failed,
        "num_finished": s.num_finished,
        "num_success": s.num_success,
        "num_trigger": s.num_triggered,
        "total_execution_time": s.total_execution_ms,
    }


def _rg_stream(host: Host, lib: Library, t: StreamTrigger, v: int) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": t.name,
        "prefix": t.prefix,
        "window": t.window,
        "trim": "enabled" if t.trim else "disabled",
        "num_streams": len(t.streams),
    }
    if v >= 2:
        out["streams"] = [_rg_stream_state(host, lib, name, state, v)
                          for name, state in t.streams.items()]
    return out


def _tf_stream(host: Host, lib: Library, t: StreamTrigger, v: int) -> dict[str, Any]:
    out: dict[str, Any] = {"description": t.description, "name": t.name, "prefix": t.prefix}
    if v >= 2:
        out["streams"] = [_tf_stream_state(host, lib, name, state)
                          for name, state in t.streams.items()]
    out.update({"trim": t.trim, "window": t.window})
    return out


def _rg_stream_state(host: Host, lib: Library, name: bytes, st: StreamState,
                     v: int) -> dict[str, Any]:
    last_error = _error(host, lib, st.last_error)
    out: dict[str, Any] = {
        "name": name,
        "last_processed_time": st.last_processed_ms,
        "avg_processed_time": _ratio(st.total_processed_ms, st.records_processed),
        "last_lag": st.last_lag_ms,
        "avg_lag": _ratio(st.total_lag_ms, st.records_processed),
        "total_record_processed": st.records_processed,
        "id_to_read_from": NONE_TEXT if st.last_read_id is None else st.last_read_id,
        "last_error": NONE_TEXT if last_error is None else last_error,
    }
    if v >= 3:
        out["pending_ids"] = list(st.pending_ids)
    return out


def _tf_stream_state(host: Host, lib: Library, name: bytes, st: StreamState) -> dict[str, Any]:
    return {
        "id_to_read_from": st.last_read_id,
        "last_error": _error(host, lib, st.last_error),
        "last_lag": st.last_lag_ms,
        "last_processed_time": st.last_processed_ms,
        "name": name,
        "pending_ids": list(st.pending_ids),
        "total_lag": st.total_lag_ms,
        "total_processed_time": st.total_processed_ms,
        "total_record_processed": st.records_processed,
    }


def _ratio(total: float, count: int) -> float:
    """total / count as a double; 0/0 is NaN (written `nan`)."""
    return total / count if count else float("nan")
