"""The "floor" figures of scenario 2's targets, timed in this process.

- one command on the embedded store: `EmbeddedStore().open_session().call` of SET and of GET
  (the store's own cost, without the protocol and the event loop);
- one synchronous round trip from jshost to redis: `RemoteStore(url).open_session().call(PING)`,
  the call JS `client.call` makes on a remote store.

Each figure is the median of `repeats` timings of `number` calls, in µs per call.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Callable
from typing import Any

from jshost.store import EmbeddedStore, RemoteStore


def per_call_us(call: Callable[[], Any], number: int, repeats: int = 3) -> float:
    """Median over `repeats` of the mean time of `number` calls, in µs."""
    call()  # warm up (connections, first-use caches)
    timings = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(number):
            call()
        timings.append((time.perf_counter() - start) / number * 1e6)
    return statistics.median(timings)


def embedded_command_us(number: int) -> dict[str, float]:
    """µs per SET and per GET on a fresh embedded store, and their mean."""
    session = EmbeddedStore().open_session()
    set_args = [b"SET", b"key:000000000042", b"val"]
    get_args = [b"GET", b"key:000000000042"]
    set_us = per_call_us(lambda: session.call(set_args), number)
    get_us = per_call_us(lambda: session.call(get_args), number)
    return {"set_us": set_us, "get_us": get_us, "command_us": (set_us + get_us) / 2}


def remote_round_trip_us(url: str, number: int) -> float:
    """µs per synchronous PING from a `RemoteStore` session to the redis at `url`."""
    store = RemoteStore(url)
    session = store.open_session()
    ping = [b"PING"]
    try:
        return per_call_us(lambda: session.call(ping), number)
    finally:
        session.close()
        asyncio.run(store.aclose())
