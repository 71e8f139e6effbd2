"""`_rg_internals.*` (issue 16): refused to every client in both eras with tf's text, after
Redis's arity check; listed by COMMAND / COMMAND INFO / COMMAND COUNT on every store with tf's
registration."""

from __future__ import annotations

import pytest

from jshost import errors
from tests.gears_servers import (
    STORE_KINDS,
    Backends,
    backends,
    error_of,
    gears_client,
    gears_server,
    make_store,
)
from tests.server_fixture import RawClient

__all__ = ["backends"]

REFUSED = errors.INTERNAL_COMMAND_REFUSED


@pytest.fixture(params=STORE_KINDS)
def store_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.mark.parametrize(("command", "expected"), [
    (["_rg_internals.function", "load", "USER", "default", "code"], REFUSED),
    (["_rg_internals.function", "del", "lib"], REFUSED),
    (["_RG_INTERNALS.FUNCTION", "nosuch", "x"], REFUSED),
    (["_rg_internals.update_stream_last_read_id", "lib", "t", "s", "1", "2"], REFUSED),
    (["_rg_internals.function", "del"],
     "wrong number of arguments for '_rg_internals.function' command"),
    (["_rg_internals.update_stream_last_read_id", "lib", "t", "s", "1"],
     "wrong number of arguments for '_rg_internals.update_stream_last_read_id' command"),
])
async def test_internal_commands_are_refused(store_kind: str, backends: Backends,
                                             command: list[str], expected: str) -> None:
    async with gears_client(make_store(store_kind, backends)) as client:
        assert (await error_of(client.execute_command(*command))).removeprefix("ERR ") == expected


@pytest.mark.parametrize("protocol", [2, 3])
async def test_command_info_shows_the_internal_rows(store_kind: str, backends: Backends,
                                                    protocol: int) -> None:
    async with gears_server(make_store(store_kind, backends)) as server:
        client = await RawClient.connect(server.port)
        try:
            if protocol == 3:
                await client.call("HELLO", "3")
            function, get, update, missing = await client.call(
                "COMMAND", "INFO", "_rg_internals.function", "get",
                "_rg_internals.update_stream_last_read_id", "nosuch")
            assert function[:6] == [b"_rg_internals.function", -3,
                                    [b"module", b"noscript", b"no_mandatory_keys"], 0, 0, 0]
            assert get[0] == b"get"
            assert update[:6] == [b"_rg_internals.update_stream_last_read_id", 6,
                                  [b"module", b"noscript"], 3, 3, 1]
            (spec,) = update[8]
            spec = dict(zip(spec[::2], spec[1::2], strict=True)) if protocol == 2 else spec
            assert spec[b"flags"] == [b"RW", b"access", b"update"]
            assert missing is None
            count = await client.call("COMMAND", "COUNT")
            names = {entry[0] for entry in await client.call("COMMAND")}
            assert {b"_rg_internals.function",
                    b"_rg_internals.update_stream_last_read_id"} <= names
            assert count == len(names)
        finally:
            await client.close()
