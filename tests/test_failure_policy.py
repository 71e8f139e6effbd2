"""`library-fatal-failure-policy`: `abort` stops locked code at `lock-redis-timeout`; `kill`
logs and lets locked code finish (as RedisGears did), but background slices, which run on the
event loop in jshost, still stop at a hard ceiling."""

from __future__ import annotations

import logging

import pytest

from jshost import errors
from jshost.errors import ReplyError
from jshost.host import Host
from jshost.host.limits import KILL_POLICY_CEILING
from jshost.settings import Settings

LIB = r"""#!js api_version=1.0 name=slow
// Busy for `ms` milliseconds of wall clock (Date.now is the only clock JS has here).
const busy = (ms) => { const end = Date.now() + Number(ms); while (Date.now() < end) {} };
redis.register_function('busy', (c, ms) => { busy(ms); return 'done'; });
redis.register_async_function('forever', async () => { while (true) {} });
"""


def host(policy: str) -> Host:
    h = Host(settings=Settings({"lock-redis-timeout": "100",
                                "library-fatal-failure-policy": policy}))
    h.load(LIB)
    return h


async def test_abort_stops_locked_code() -> None:
    with pytest.raises(ReplyError) as info:
        await host("abort").fcall("slow", "busy", [], ["400"])
    assert info.value.text == errors.EXECUTION_TERMINATED


async def test_kill_logs_and_lets_locked_code_finish(caplog: pytest.LogCaptureFixture) -> None:
    h = host("kill")
    with caplog.at_level(logging.WARNING, logger="jshost"):
        assert await h.fcall("slow", "busy", [], ["400"]) == b"done"
    assert any("policy kill" in r.getMessage() for r in caplog.records)


async def test_kill_still_stops_a_runaway_background_slice() -> None:
    h = host("kill")
    assert h.limits.background_timeout == pytest.approx(0.1 * KILL_POLICY_CEILING)
    with pytest.raises(ReplyError) as info:
        await h.fcall_async("slow", "forever")
    assert info.value.text == errors.EXECUTION_TERMINATED
