"""redis-py 5.0's own Triggers-and-Functions methods (`tfunction_load`, `tfunction_list`,
`tfcall`, `tfcall_async`, `tfunction_delete`; later redis-py versions dropped them) work against
`jshost serve`, on the embedded store and on `--backend` (a real redis-server). redis-py 5.0 is installed into a folder of its own for this test, so the
project's newer redis-py is untouched."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.redis_server import REDIS_SERVER, RedisServer
from tests.server_fixture import JshostProcess

SCRIPT = r'''
import sys
import redis
assert redis.__version__.startswith("5.0"), redis.__version__
r = redis.Redis(port=int(sys.argv[1]))
code = """#!js api_version=1.0 name=lib
redis.registerFunction('hello', (c, who) => 'hello ' + who);
redis.registerAsyncFunction('count', async (c, key) => c.block((s) => s.call('incr', key)));
"""
assert r.tfunction_load(code) in (b"OK", True)
assert r.tfunction_load(code, replace=True) in (b"OK", True)
assert r.tfcall("lib", "hello", None, "you") == b"hello you"
assert r.tfcall_async("lib", "count", ["k"]) == 1
listing = r.tfunction_list(verbose=1, lib_name="lib")
assert listing[0][listing[0].index(b"name") + 1] == b"lib", listing
assert r.tfunction_delete("lib") in (b"OK", True)
print("ok")
'''


@pytest.fixture(scope="module")
def redis_py5(tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = tmp_path_factory.mktemp("redis-py-5")
    done = subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check",
         "--no-deps", "--target", str(target), "redis>=5.0,<5.1"],
        capture_output=True, text=True, timeout=300, check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"could not install redis-py 5.0 from PyPI: {done.stderr.strip()[-300:]}")
    return target


def _run_script(redis_py5: Path, port: int) -> None:
    env = {**os.environ, "PYTHONPATH": str(redis_py5)}
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(port)],
        capture_output=True, text=True, timeout=60, env=env, check=False,
    )
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr


def test_redis_py5_tf_methods(redis_py5: Path) -> None:
    with JshostProcess() as server:
        _run_script(redis_py5, server.port)


@pytest.mark.skipif(REDIS_SERVER is None, reason="redis-server is not on PATH")
def test_redis_py5_tf_methods_on_a_backend(redis_py5: Path) -> None:
    with RedisServer() as backend, JshostProcess("--backend", backend.url) as server:
        _run_script(redis_py5, server.port)
