"""`INFO`'s `# jshost` section: libraries, functions, pending async calls, terminations, memory."""

from __future__ import annotations

import asyncio

import redis.asyncio as aioredis

from jshost.settings import Settings
from tests.server_fixture import running_server, wait_until

LIB = r"""#!js api_version=1.0 name=ops
let waiting = [];
redis.register_async_function('wait', async () => new Promise((res) => waiting.push(res)));
redis.register_function('release', () => { waiting.forEach((r) => r('done')); return waiting.length; });
redis.register_function('spin', () => { while (true) {} });
"""


def _fields(info: dict) -> dict[str, str]:
    """redis-py parses INFO's `name:value` lines into a dict; keep the values as text."""
    return {str(k): str(v) for k, v in info.items()}


async def test_info_jshost_section_counts_what_happens() -> None:
    async with running_server(settings=Settings({"lock-redis-timeout": "100"})) as server:
        c = aioredis.Redis(port=server.port)
        waiter = aioredis.Redis(port=server.port)
        try:
            await c.execute_command("RG.FUNCTION", "LOAD", LIB)
            fields = _fields(await c.execute_command("INFO", "jshost"))
            assert (fields["libraries"], fields["functions"], fields["terminations"]) == (
                "1", "3", "0")
            assert "memory=" in fields["library_ops"] or "'memory'" in fields["library_ops"]
            pending = waiter.execute_command("RG.FCALLASYNC", "ops", "wait", "0")
            task = asyncio.ensure_future(pending)

            async def shows_pending() -> bool:
                info = _fields(await c.execute_command("INFO", "jshost"))
                return info["pending_async_calls"] == "1"

            await wait_until(shows_pending, what="the pending call in INFO")
            try:
                await c.execute_command("RG.FCALL", "ops", "spin", "0")
            except aioredis.ResponseError:
                pass
            assert await c.execute_command("RG.FCALL", "ops", "release", "0") == 1
            assert await task == b"done"
            fields = _fields(await c.execute_command("INFO"))  # also in the full INFO
            assert (fields["pending_async_calls"], fields["terminations"]) == ("0", "1")
        finally:
            await c.aclose()
            await waiter.aclose()
