"""Libraries and data that outlive a jshost process: in a real Redis (as Redis functions, which
survive FLUSHALL and are shared by every jshost in front of it) and in `--dir` for the embedded
store."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from jshost.host import Host
from jshost.host.archive import (
    DirectoryArchive,
    LibraryFollower,
    RedisArchive,
    SavedLibrary,
)
from jshost.store import EmbeddedStore, RemoteStore
from jshost.store.embedded.datafile import load_data, save_data
from tests.redis_server import RedisServer

V1 = "#!js api_version=1.0 name=lib\nredis.register_function('v', () => 1);"
V2 = "#!js api_version=1.0 name=lib\nredis.register_function('v', () => 2);"
TF = "#!js api_version=1.0 name=tflib\nredis.registerFunction('f', () => redis.config.x);"

@pytest.fixture(scope="module")
def server(store_server: str) -> Iterator[RedisServer]:
    with RedisServer(binary=store_server) as srv:
        yield srv


def remote_host(url: str) -> Host:
    store = RemoteStore(url)
    host = Host(store)
    host.archive = RedisArchive(host.session(0))
    return host


async def test_libraries_kept_in_redis_survive_flushall_and_restart(server: RedisServer) -> None:
    first = remote_host(server.url)
    first.session(0).call([b"FUNCTION", b"FLUSH"])
    first.load(V1)
    first.load(TF, config_text='{"x": 7}', era="tf")
    first.session(0).call([b"FLUSHALL"])
    first.close()
    await first.store.aclose()

    second = remote_host(server.url)
    assert second.restore(second.archive.load_all()) == 2
    assert await second.fcall("lib", "v") == 1
    assert await second.fcall("tflib", "f", era="tf") == 7
    second.delete("lib")
    assert [lib.name for lib in second.archive.load_all()] == ["tflib"]
    second.close()
    await second.store.aclose()


async def test_a_change_on_one_instance_reaches_the_other(server: RedisServer) -> None:
    a, b = remote_host(server.url), remote_host(server.url)
    a.session(0).call([b"FUNCTION", b"FLUSH"])
    changed = asyncio.Event()

    def apply(name: str, saved: SavedLibrary | None) -> None:
        b.follow(name, saved)
        changed.set()

    follower = LibraryFollower(b.archive, b.store.open_session, apply, lambda: list(b.libraries))
    await follower.start()
    a.load(V1)
    await asyncio.wait_for(changed.wait(), 10)
    assert await b.fcall("lib", "v") == 1
    changed.clear()
    a.load(V2, replace=True)
    await asyncio.wait_for(changed.wait(), 10)
    assert await b.fcall("lib", "v") == 2
    changed.clear()
    a.delete("lib")
    await asyncio.wait_for(changed.wait(), 10)
    assert "lib" not in b.libraries
    follower.stop()
    for h in (a, b):
        h.close()
        await h.store.aclose()


async def test_the_follower_subscribes_again_and_reloads_after_client_kill(
        server: RedisServer) -> None:
    """Issue 12 item 9: `CLIENT KILL TYPE pubsub` on the backend cut the library subscription
    for good. The follower must subscribe again, and reload what changed meanwhile."""
    import redis.asyncio as aioredis

    from tests.server_fixture import wait_until

    a, b = remote_host(server.url), remote_host(server.url)
    a.session(0).call([b"FUNCTION", b"FLUSH"])
    a.load(V1)
    b.restore(b.archive.load_all())
    follower = LibraryFollower(b.archive, b.store.open_session, b.follow,
                               lambda: list(b.libraries))
    await follower.start()
    direct = aioredis.Redis(port=server.port)

    async def subscribed() -> bool:
        (_, count), = (await direct.pubsub_numsub("jshost:libraries"))
        return count == 1

    try:
        await wait_until(subscribed, what="the first subscription")
        assert await direct.client_kill_filter(_type="pubsub") >= 1
        a.load(V2, replace=True)  # announced while nobody here listens
        a.load(TF, era="tf")
        await wait_until(lambda: _resolved("tflib" in b.libraries), what="the reload")
        assert await b.fcall("lib", "v") == 2
        await wait_until(subscribed, what="the new subscription")
        a.delete("tflib")  # and the new subscription delivers again
        await wait_until(lambda: _resolved("tflib" not in b.libraries), what="the delete")
    finally:
        await direct.aclose()
        follower.stop()
        for h in (a, b):
            h.close()
            await h.store.aclose()


async def _resolved(value: bool) -> bool:
    return value


async def test_tampered_stored_libraries_are_skipped(server: RedisServer,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    """Issue 12 item 7: a Lua library named jshost_... with a malformed payload crashed the next
    start (TypeError, ValueError); now each bad entry is logged and skipped."""
    import base64
    import json

    from jshost.host.archive import redis_library_name

    host = remote_host(server.url)
    session = host.session(0)
    session.call([b"FUNCTION", b"FLUSH"])
    host.load(V1)

    def plant(lua_name: str, payload: object) -> None:
        text = payload if isinstance(payload, str) else json.dumps(payload)
        encoded = base64.b64encode(text.encode()).decode()
        code = (f"#!lua name={lua_name}\nlocal payload = '{encoded}'\n"
                f"redis.register_function{{function_name='{lua_name}', "
                "callback=function() return payload end, flags={'no-writes'}}\n")
        assert session.call([b"FUNCTION", b"LOAD", code.encode()]) == lua_name.encode()

    good = {"name": "zz", "era": "rg", "code": V1.replace("name=lib", "name=zz"),
            "config_text": None}
    plant("jshost_zz", {"evil": 1})  # unknown field: the TypeError of the issue
    plant("jshost_aa", {**good, "era": "xx"})  # bad era: the ValueError of the issue
    plant("jshost_bb", "not json")
    plant("jshost_cc", good)  # a valid library, kept under another library's name
    plant(redis_library_name("yy"), {**good, "name": "yy"})  # code declares zz
    plant(redis_library_name("ww"), {**good, "name": "ww", "code": 7})
    with caplog.at_level("WARNING", logger="jshost.persistence"):
        assert [lib.name for lib in host.archive.load_all()] == ["lib"]
    skipped = [r.getMessage() for r in caplog.records if "skipping the stored library" in
               r.getMessage()]
    assert len(skipped) == 6
    assert host.archive.load_one("yy") is None
    session.call([b"FUNCTION", b"FLUSH"])
    host.close()
    await host.store.aclose()


async def test_directory_keeps_libraries_and_data(tmp_path: Path) -> None:
    store = EmbeddedStore()
    host = Host(store)
    host.archive = DirectoryArchive(tmp_path)
    host.load(V1)
    session = store.open_session()
    session.call([b"SET", b"k", b"v"])
    session.call([b"SELECT", b"3"])
    session.call([b"HSET", b"h", b"f", b"x"])
    session.call([b"PEXPIRE", b"h", b"100000"])
    assert save_data(store, tmp_path) == 2
    host.close()

    store2 = EmbeddedStore()
    host2 = Host(store2)
    host2.archive = DirectoryArchive(tmp_path)
    assert host2.restore(host2.archive.load_all()) == 1
    assert load_data(store2, tmp_path) == 2
    assert await host2.fcall("lib", "v") == 1
    s2 = store2.open_session()
    assert s2.call([b"GET", b"k"]) == b"v"
    s2.call([b"SELECT", b"3"])
    assert s2.call([b"HGETALL", b"h"]) == {b"f": b"x"}
    assert 0 < s2.call([b"PTTL", b"h"]) <= 100000
    host2.delete("lib")
    assert DirectoryArchive(tmp_path).load_all() == []


# --- through `jshost serve` -----------------------------------------------------------------------


def _client(port: int):
    import redis

    return redis.Redis(port=port, decode_responses=False)


def test_serve_with_dir_keeps_libraries_and_data_across_restarts(tmp_path: Path) -> None:
    from tests.server_fixture import JshostProcess

    with JshostProcess("--dir", str(tmp_path)) as first:
        c = _client(first.port)
        c.execute_command("RG.FUNCTION", "LOAD", V1)
        c.set("k", "v")
        assert first.stop() == 0  # graceful: data written at shutdown
    with JshostProcess("--dir", str(tmp_path)) as second:
        c = _client(second.port)
        assert c.execute_command("RG.FCALL", "lib", "v", "0") == 1
        assert c.get("k") == b"v"
        c.set("k", "w")
        assert c.execute_command("SAVE") in (b"OK", True)
        second.kill()  # no graceful shutdown: only what SAVE wrote survives
    with JshostProcess("--dir", str(tmp_path)) as third:
        assert _client(third.port).get("k") == b"w"


def test_serve_with_backend_shares_libraries_between_instances(server: RedisServer) -> None:
    from tests.server_fixture import JshostProcess

    _client(server.port).function_flush()
    with JshostProcess("--backend", server.url) as a, JshostProcess("--backend", server.url) as b:
        ca, cb = _client(a.port), _client(b.port)
        ca.execute_command("RG.FUNCTION", "LOAD", V1)
        assert ca.execute_command("RG.FCALL", "lib", "v", "0") == 1
        # b learns of it through pub/sub; poll its LIST (an event on another process).
        _wait_for(lambda: cb.execute_command("RG.FUNCTION", "LIST") != [])
        assert cb.execute_command("RG.FCALL", "lib", "v", "0") == 1
        ca.execute_command("RG.FUNCTION", "LOAD", "UPGRADE", V2)
        _wait_for(lambda: cb.execute_command("RG.FCALL", "lib", "v", "0") == 2)
    _client(server.port).flushall()
    with JshostProcess("--backend", server.url) as c:
        assert _client(c.port).execute_command("RG.FCALL", "lib", "v", "0") == 2


def _wait_for(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    """Poll a condition that another process makes true (there is no event to await across
    processes); fails after `timeout`."""
    import time

    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.02)


# --- the data file: JSON of typed values, never pickles (issue 12 item 1) -----------------------


def _fill_every_type(store: EmbeddedStore) -> None:
    from tests.test_dump_restore import FILL, words

    session = store.open_session()
    for command in FILL:
        session.call(words(*command))
    session.call(words("JSON.SET", "doc", "$", '{"a": [1, 2.5, null, true], "b": "x"}'))
    session.call(words("HSET", "fieldttl", "f", "v", "g", "w"))
    session.call(words("HEXPIRE", "fieldttl", "1000", "FIELDS", "1", "f"))
    session.call(words("SELECT", "5"))
    session.call(words("SET", "ttl", "v", "PX", "100000"))
    session.close()


def test_data_file_keeps_every_type(tmp_path: Path) -> None:
    from tests.test_dump_restore import KEYS, snapshot, words

    first = EmbeddedStore()
    _fill_every_type(first)
    saved = save_data(first, tmp_path)
    assert saved == len(KEYS) + 3
    second = EmbeddedStore()
    assert load_data(second, tmp_path) == saved
    a, b = first.open_session(), second.open_session()
    for key in KEYS:
        assert snapshot(lambda *w: b.call(words(*w)), key) == snapshot(
            lambda *w: a.call(words(*w)), key), key
    assert b.call(words("JSON.GET", "doc")) == a.call(words("JSON.GET", "doc"))
    assert b.call(words("HGETALL", "fieldttl")) == {b"f": b"v", b"g": b"w"}
    assert b.call(words("HPEXPIRETIME", "fieldttl", "FIELDS", "2", "f", "g")) == a.call(
        words("HPEXPIRETIME", "fieldttl", "FIELDS", "2", "f", "g"))
    for session in (a, b):
        session.call(words("SELECT", "5"))
    assert b.call(words("PEXPIRETIME", "ttl")) == a.call(words("PEXPIRETIME", "ttl"))  # absolute
    assert b"pickle" not in (tmp_path / "data.jsonl").read_bytes()


def test_old_pickle_data_file_is_refused_and_runs_nothing(tmp_path: Path) -> None:
    import base64
    import json

    from jshost.errors import DumpErrors
    from jshost.store.embedded.datafile import DataFileError
    from tests.test_dump_restore import pickle_payload

    marker = tmp_path / "pwned"
    line = {"db": 0, "key": base64.b64encode(b"k").decode(),
            "dump": base64.b64encode(pickle_payload(marker)).decode(), "pttl": 0}
    (tmp_path / "data.jsonl").write_text(json.dumps(line) + "\n")
    store = EmbeddedStore()
    with pytest.raises(DataFileError) as info:
        load_data(store, tmp_path)
    assert str(info.value) == DumpErrors.DATA_FILE_PICKLE.format(path=tmp_path / "data.jsonl")
    assert not marker.exists()
    assert list(store.export_values()) == []


@pytest.mark.parametrize(("line", "reason"), [
    ('{"db": 0, "key": "aw==", "expire_at": null, "type": "list", "value": "aw=="}',
     "expected a list"),
    ('{"db": 99, "key": "aw==", "expire_at": null, "type": "string", "value": "aw=="}',
     "bad database 99"),
    ('{"db": 0, "key": "aw==", "expire_at": null, "type": "code", "value": "x"}',
     "unknown value type 'code'"),
    (('{"db": 0, "key": "aw==", "expire_at": null, "type": "stream", "value": {"entries": '
      '[["2-0", ["Zg==", "dg=="]], ["1-0", ["Zg==", "dg=="]]], "last_id": "2-0", '
      '"entries_added": 2, "max_deleted_id": "0-0", "groups": []}}'),
     "stream entry ids must increase"),
    ("not json", "Expecting value"),
])
def test_a_bad_data_file_is_refused_whole(tmp_path: Path, line: str, reason: str) -> None:
    import json

    from jshost.store.embedded.datafile import DATA_HEADER, DataFileError

    good = '{"db": 0, "key": "Zw==", "expire_at": null, "type": "string", "value": "aw=="}'
    (tmp_path / "data.jsonl").write_text(f"{json.dumps(DATA_HEADER)}\n{good}\n{line}\n")
    store = EmbeddedStore()
    with pytest.raises(DataFileError) as info:
        load_data(store, tmp_path)
    assert f"data.jsonl:3: not a value jshost wrote: {reason}" in str(info.value)
    assert list(store.export_values()) == []  # nothing stored, the good line neither


def test_serve_refuses_an_old_data_file_and_keeps_it(tmp_path: Path) -> None:
    import base64
    import json
    import subprocess
    import sys

    from tests.test_dump_restore import pickle_payload

    marker = tmp_path / "pwned"
    line = {"db": 0, "key": "aw==", "dump": base64.b64encode(pickle_payload(marker)).decode(),
            "pttl": 0}
    data = tmp_path / "data.jsonl"
    data.write_text(json.dumps(line) + "\n")
    before = data.read_bytes()
    done = subprocess.run([sys.executable, "-m", "jshost", "serve", "--port", "0", "--dir",
                           str(tmp_path)], check=False, capture_output=True, timeout=60)
    assert done.returncode != 0
    assert b"held Python pickles" in done.stderr
    assert not marker.exists()
    assert data.read_bytes() == before  # not overwritten by a shutdown save
