"""Remote (cluster) functions on a standalone jshost (SPEC §10): `run_on_key` /
`run_on_all_shards` (rg) and `runOnKey` / `runOnShards` (tf) run the library's remote function
here, in the background, with no-writes, through the JSON / ArrayBuffer round trip."""

from __future__ import annotations

from jshost import errors
from jshost.errors import ReplyError
from jshost.host import Host

RG = r"""#!js api_version=1.0 name=rf
redis.register_remote_function('remote_get', async (c, key, extra) => {
  return c.block((s) => ({ value: s.call('get', key), extra }));
});
redis.register_remote_function('remote_set', async (c, key) => c.block((s) => s.call('set', key, 'x')));
redis.register_remote_function('nothing', async () => undefined);
redis.register_async_function('get', async (c, key) => (await c.run_on_key(key, 'remote_get', key, [1, 'a'])));
redis.register_async_function('all', async (c, key) => c.run_on_all_shards('remote_get', key, null));
redis.register_async_function('write', async (c, key) => {
  try { await c.run_on_key(key, 'remote_set', key); return 'wrote'; } catch (e) { return e; }
});
redis.register_async_function('missing', async (c) => {
  try { await c.run_on_key('k', 'nope'); } catch (e) { return e; }
});
redis.register_async_function('bad_arg', async (c) => {
  try { await c.run_on_key('k', 'remote_get', undefined); } catch (e) { return e; }
});
redis.register_async_function('bigint_arg', async (c) => {
  try { c.run_on_key('k', 'remote_get', {n: 1n}); } catch (e) { return [typeof e, e]; }
});
redis.register_remote_function('bigint', async () => ({n: 1n}));
redis.register_async_function('bigint_result', async (c) => {
  try { await c.run_on_key('k', 'bigint'); } catch (e) { return e; }
});
redis.register_async_function('all_no_result', async (c) => c.run_on_all_shards('nothing'));
redis.register_async_function('all_bad_arg', async (c) => c.run_on_all_shards('nothing', () => 1));
redis.register_remote_function('buffer', async (c, b) => b);
redis.register_async_function('buffer', async (c) => {
  const b = await c.run_on_key('k', 'buffer', new Uint8Array([1, 2]).buffer);
  return [b instanceof ArrayBuffer, b.byteLength];
});
redis.register_async_function('no_result', async (c) => {
  try { await c.run_on_key('k', 'nothing'); } catch (e) { return e; }
});
"""

TF = r"""#!js api_version=1.0 name=rftf
redis.registerClusterFunction('echo', async (c, v) => v);
redis.registerAsyncFunction('one', async (c) => c.runOnKey('k', 'echo', {a: [1, 2]}));
redis.registerAsyncFunction('shards', async (c) => c.runOnShards('echo', 'x'));
"""


async def test_run_on_key_and_all_shards() -> None:
    host = Host()
    host.load(RG)
    host.session(0).call([b"SET", b"k", b"v"])
    assert await host.fcall_async("rf", "get", ["k"]) == {b"value": b"v", b"extra": [1, b"a"]}
    assert await host.fcall_async("rf", "all", ["k"]) == [[{b"value": b"v", b"extra": None}], []]
    written = await host.fcall_async("rf", "write", ["k"])
    assert written == errors.write_not_allowed("set").encode()
    assert await host.fcall_async("rf", "missing") == (
        errors.remote_function_not_in_library("nope", "rf").encode())
    host.close()


async def test_serialisation_errors_as_the_original_gave_them() -> None:
    """A function, undefined or a Symbol goes as the text `undefined`, which the other side
    cannot parse; a value whose stringify throws fails at once (issue 16)."""
    host = Host()
    host.load(RG)
    assert await host.fcall_async("rf", "bad_arg") == errors.FAILED_DESERIALIZING_ARGUMENT.encode()
    assert await host.fcall_async("rf", "no_result") == errors.FAILED_DESERIALIZING_RESULT.encode()
    assert await host.fcall_async("rf", "bigint_arg") == [
        b"string", errors.FAILED_SERIALIZING_ARGUMENTS.encode()]
    got = await host.fcall_async("rf", "bigint_result")
    assert got.startswith(errors.failed_serializing_result("TypeError: ")[:-1].encode())
    assert got.endswith(b".")
    assert await host.fcall_async("rf", "all_no_result") == [
        [], [errors.failed_deserializing_result("undefined").encode()]]
    assert await host.fcall_async("rf", "all_bad_arg") == [
        [], [errors.FAILED_DESERIALIZING_ARGUMENT.encode()]]
    assert await host.fcall_async("rf", "buffer") == [1, 2]
    host.close()


async def test_tf_run_on_key_and_shards() -> None:
    host = Host()
    host.load(TF, era="tf")
    assert await host.fcall_async("rftf", "one", era="tf") == {b"a": [1, 2]}
    assert await host.fcall_async("rftf", "shards", era="tf") == [[b"x"], []]
    host.close()


def test_remote_functions_are_not_called_directly() -> None:
    host = Host()
    host.load(RG)
    try:
        import asyncio

        asyncio.run(host.fcall("rf", "remote_get", ["k"]))
    except ReplyError as exc:
        assert exc.text == errors.unknown_function("remote_get")
    else:
        raise AssertionError("a remote function answered RG.FCALL")
    host.close()
