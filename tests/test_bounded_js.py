"""Bounded JS (issue 14): JS that spends its time inside QuickJS-ng's C builtins is stopped at
its deadline like any other JS.

The runaways are bench/runaways.py's table: each repeats one builtin call, sized to take
milliseconds, for ten times the limit by its own clock (QuickJS-ng's interpreter polls the
deadline only every 10 000 branches, so before the vendored patches these all ran to the end;
`python -m bench.runaways` measures how soon they stop). Each one is run:

- in every context a library runs JS in (a sync function, a `block()` section, a background
  slice of an async function, a keyspace-trigger callback, the top level of a `LOAD`), where it
  must end with RedisGears' termination text and leave the library answering (for the load: the
  old library);
- on a bare runtime, twice, where the second interruption must leave the heap as the first one
  left it: an interrupted builtin frees what it made (no leak per interruption).
"""

from __future__ import annotations

import pytest

from bench.runaways import (
    LIBRARY,
    RUNAWAYS,
    TRIGGER_PREFIX,
    Runaway,
    library_code,
    load_time_code,
    loop_js,
)
from jshost import _engine
from jshost.errors import EXECUTION_TERMINATED, failed_loading_library
from jshost.settings import PREFIX

#: The smallest lock-redis-timeout (RedisGears' minimum): every runaway would run 10 times it.
LIMIT_MS = 100
RUN_MS = str(10 * LIMIT_MS)
SANDBOXED = [r for r in RUNAWAYS if r.sandboxed]


def ids(runaway: Runaway) -> str:
    return runaway.name


def test_the_table_covers_the_issue() -> None:
    """At least 25 runaways, names unique, and one for each family the issue names."""
    names = [r.name for r in RUNAWAYS]
    assert len(SANDBOXED) >= 25 and len(set(names)) == len(names)
    families = {name.split(".")[0] for name in names}
    assert {"array", "typed", "arraybuffer", "string", "json", "map", "set", "bigint"} <= families


@pytest.mark.parametrize("runaway", SANDBOXED, ids=ids)
async def test_runaway_is_stopped_in_every_context(host_driver, runaway: Runaway) -> None:
    drv = host_driver("rg", lock_redis_timeout=str(LIMIT_MS))
    drv.load(library_code([runaway]), raw=True)
    settings = drv.host.settings
    settings.set(PREFIX + "lock-redis-timeout", "60000")  # the data first, at leisure
    assert await drv.fcall("prepare", runaway.name, lib=LIBRARY) == b"ready"
    settings.set(PREFIX + "lock-redis-timeout", str(LIMIT_MS))

    assert await drv.fcall_error("sync", runaway.name, RUN_MS, lib=LIBRARY) == (
        EXECUTION_TERMINATED)
    assert await drv.fcall_async_error("block", runaway.name, RUN_MS, lib=LIBRARY) == (
        EXECUTION_TERMINATED)
    assert await drv.fcall_async_error("background", runaway.name, RUN_MS, lib=LIBRARY) == (
        EXECUTION_TERMINATED)
    session = drv.host.store.open_session()
    assert session.call([b"SET", f"{TRIGGER_PREFIX}{RUN_MS}:{runaway.name}".encode(), b"1"]) == (
        b"OK")
    trigger = drv.host.libraries[LIBRARY].keyspace_triggers["trigger"].stats
    assert (trigger.num_finished, trigger.num_failed) == (1, 1)
    assert trigger.last_error.at(1) == EXECUTION_TERMINATED
    # The library answers, with its state: every run started, none finished.
    assert await drv.fcall("ping", lib=LIBRARY) == b"pong"
    assert await drv.fcall("calls", lib=LIBRARY) == 4

    assert drv.load_error(load_time_code(runaway, 10 * LIMIT_MS), raw=True, replace=True) == (
        failed_loading_library(EXECUTION_TERMINATED))
    assert await drv.fcall("ping", lib=LIBRARY) == b"pong"  # the old library still serves


# --- the heap after an interruption ---------------------------------------------------------

ENGINE_LIMIT_S = 0.05


def interrupt(rt: _engine.Runtime, runaway: Runaway) -> dict[str, int]:
    """Run `runaway` until the deadline stops it, then set its data up afresh (some runaways
    change it: a splice cut in two); the heap afterwards, after a GC."""
    rt.set_deadline(ENGINE_LIMIT_S)
    try:
        with pytest.raises(_engine.JSTerminated):
            rt.eval(f"{{ {loop_js(runaway, str(int(ENGINE_LIMIT_S * 10_000)))} n; }}")
    finally:
        rt.set_deadline(None)
    rt.eval(f"D = {{}}; {runaway.setup}")
    rt.gc()
    return rt.memory_usage()


@pytest.mark.parametrize("runaway", RUNAWAYS, ids=ids)
def test_interrupted_builtin_leaves_the_heap_as_it_was(runaway: Runaway) -> None:
    """The first interruption may leave lasting things behind (atoms, shapes, caches); a second
    one of the same code must not add to them: what an interrupted builtin made is freed."""
    rt = _engine.Runtime(memory_limit=1 << 30)
    rt.eval(f"var D = {{}}; {runaway.setup}")
    first = interrupt(rt, runaway)
    second = interrupt(rt, runaway)
    assert second["malloc_count"] == first["malloc_count"]  # not one block more
    assert second["obj_count"] == first["obj_count"]
    assert second["memory_used_size"] == first["memory_used_size"]
    # The bytes held: the same blocks, but malloc may hand a block a chunk a little larger than
    # asked (a free chunk too small to split is given whole), and which chunks are free depends
    # on where the deadline struck: up to a few such 16-byte roundings apart.
    assert abs(second["heap_size"] - first["heap_size"]) < 64
    assert rt.eval("typeof D") == "object"  # the runtime goes on, its data intact
    assert rt.eval("[1, 2, 3].map((x) => x * 2).join()") == "2,4,6"


def test_an_interrupted_delete_leaves_the_array_whole() -> None:
    """`delete` on a fast array first turns it into a normal one, property by property. The
    deadline (already passed here) stops that half-way; it is undone: the array is the same
    fast array, holding no more memory, and a later `delete` works."""
    rt = _engine.Runtime(memory_limit=1 << 30)
    rt.eval("var a = []; for (let i = 0; i < 1e6; i++) a.push(i);")
    rt.gc()
    heap = [rt.memory_usage()["heap_size"]]
    for _ in range(2):
        rt.set_deadline(0)
        with pytest.raises(_engine.JSTerminated):
            rt.eval("delete a[7]")
        rt.set_deadline(None)
        rt.gc()
        heap.append(rt.memory_usage()["heap_size"])
    # The room made for a million properties (24 MB) is given back; what is left is the
    # array's own shape and the first error's lasting bits, the same after the second time.
    assert heap[1] - heap[0] < 64 * 1024 and heap[2] == heap[1]
    assert rt.eval("[a.length, a[7], a[999999], a.indexOf(999999), Object.keys(a).length]") == [
        1_000_000, 7, 999_999, 999_999, 1_000_000]
    assert rt.eval("delete a[7]; [7 in a, a[8], a.length]") == [False, 8, 1_000_000]
