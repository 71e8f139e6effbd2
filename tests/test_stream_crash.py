"""A stream consumer on a real Redis survives `kill -9` of jshost: after a restart every entry
has been processed at least once, and none is skipped (SPEC §8.3: exactly once while running,
at least once across a crash; positions are kept in Redis)."""

from __future__ import annotations

import signal
import time
from collections.abc import Callable, Iterator

import pytest
import redis

from tests.redis_server import REDIS_SERVER, RedisServer
from tests.server_fixture import JshostProcess

pytestmark = pytest.mark.skipif(REDIS_SERVER is None, reason="redis-server is not on PATH")

LIB = r"""#!js api_version=1.0 name=crash
// Count every delivery of every entry (a repeat after the crash shows as 2).
redis.register_stream_consumer('count', 'events:', 1, false, (client, data) => {
  client.call('hincrby', 'seen', `${data.id[0]}-${data.id[1]}`, '1');
});
"""

ENTRIES = 3000


@pytest.fixture
def backend() -> Iterator[RedisServer]:
    with RedisServer() as srv:
        yield srv


def _wait_for(condition: Callable[[], bool], timeout: float = 60.0) -> None:
    """Poll state another process changes (no event crosses processes); bounded."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.01)


def test_kill_9_mid_stream_then_restart_loses_nothing(backend: RedisServer) -> None:
    direct = redis.Redis(port=backend.port)
    first = JshostProcess("--backend", backend.url).start()
    try:
        client = redis.Redis(port=first.port)
        client.execute_command("RG.FUNCTION", "LOAD", LIB)
        # Written straight to Redis: jshost processes them as fast as it can, in the background.
        pipe = direct.pipeline(transaction=False)
        ids = [pipe.xadd("events:a", {"n": str(i)}) for i in range(ENTRIES)]
        ids = pipe.execute()
        _wait_for(lambda: direct.hlen("seen") > ENTRIES // 10)
    finally:
        first.stop(signal.SIGKILL, timeout=30)
    assert direct.hlen("seen") < ENTRIES, "the crash came too late to test anything"

    with JshostProcess("--backend", backend.url) as second:
        _wait_for(lambda: direct.hlen("seen") == ENTRIES)
        seen = {k: int(v) for k, v in direct.hgetall("seen").items()}
        assert set(seen) == set(ids)  # none skipped
        assert all(count >= 1 for count in seen.values())  # at least once
        assert second.port
