"""The RedisAI stubs (issue 16): RedisAI is never loaded, so `redis.redisai.create_tensor` and
`client.redisai.open_model` / `open_script` convert their arguments, check what the original
checked, and throw `RedisAI is not initialize` as a plain string, in both eras."""

from __future__ import annotations

import asyncio
import logging

import pytest

from jshost import errors

NOT_INIT = errors.REDISAI_NOT_INITIALIZED


def _catching(expr: str) -> str:
    """A function body that returns what `expr` throws, with its type."""
    return f"try {{ {expr}; return 'no error'; }} catch (e) {{ return [typeof e, e]; }}"


@pytest.mark.parametrize(("expr", "text"), [
    ("redis.redisai.create_tensor('FLOAT', [1, 2n], new ArrayBuffer(8))", NOT_INIT),
    ("redis.redisai.create_tensor('FLOAT', [1.5], new ArrayBuffer(8))",
     errors.TENSOR_DIMS_NOT_INTEGERS),
    ("redis.redisai.create_tensor('FLOAT', [2 ** 31], new ArrayBuffer(8))",
     errors.TENSOR_DIMS_NOT_INTEGERS),
    ("redis.redisai.create_tensor(1, [1], new ArrayBuffer(8))",
     errors.can_not_convert_value(0, "V8LocalUtf8", errors.VALUE_NOT_STRING)),
    ("redis.redisai.create_tensor('FLOAT', 1, new ArrayBuffer(8))",
     errors.can_not_convert_value(1, "V8LocalArray", errors.VALUE_NOT_ARRAY)),
    ("redis.redisai.create_tensor('FLOAT', [1.5], 'data')",  # conversion before the dims
     errors.can_not_convert_value(2, "V8LocalArrayBuffer", errors.VALUE_NOT_ARRAY_BUFFER)),
    ("c.redisai.open_model('m')", NOT_INIT),
    ("c.redisai.open_script('s')", NOT_INIT),
    ("c.redisai.open_model(5)",
     errors.can_not_convert_value(0, "V8LocalUtf8", errors.VALUE_NOT_STRING)),
])
async def test_redisai_throws_plain_strings(jh, expr, text):
    jh.load(f"redis.{jh.api.register}('f', (c) => {{ {_catching(expr)} }});")
    assert await jh.fcall("f") == [b"string", text.encode()]


async def test_uncaught_it_is_the_reply_and_redisai_is_an_object(jh):
    jh.load(f"""
        redis.{jh.api.register}('f', (c) => c.redisai.open_model('m'));
        redis.{jh.api.register}('types', () => [typeof redis.redisai,
                                                 typeof redis.redisai.create_tensor]);
    """)
    assert await jh.fcall_error("f") == NOT_INIT
    assert await jh.fcall("types") == [b"object", b"function"]


async def test_block_client_has_it_the_async_client_does_not(jh):
    background = "executeAsync" if jh.era == "tf" else "run_on_background"
    jh.load(f"""
        redis.{jh.api.register_async}('f', async (c) => [
            typeof c.redisai,
            c.block((b) => {{ {_catching("b.redisai.open_script('s')")} }})]);
        var kept;
        redis.{jh.api.register}('keep', (c) => {{ kept = c; return 1; }});
        redis.{jh.api.register}('expired', () => {{ {_catching("kept.redisai.open_model('m')")} }});
        redis.{jh.api.register}('bg', (c) => c.{background}(async () => 1) && 1);
    """)
    assert await jh.fcall_async("f") == [b"undefined", [b"string", NOT_INIT.encode()]]
    assert await jh.fcall("keep") == 1
    assert await jh.fcall("expired") == [b"string", errors.USED_ON_INVALID_CLIENT.encode()]


async def test_create_tensor_after_the_library_was_deleted(jh, caplog):
    """A job the library queued still runs after DEL; there `create_tensor` names the invalid
    script context (after its argument checks)."""
    background = "executeAsync" if jh.era == "tf" else "run_on_background"
    jh.load(f"""
        redis.{jh.api.register}('f', (c) => {{
            c.{background}(async () => {{
                try {{ redis.redisai.create_tensor('FLOAT', [1], new ArrayBuffer(4)); }}
                catch (e) {{ redis.log('tensor: ' + e); }}
            }});
            return 1;
        }});
    """)
    with caplog.at_level(logging.INFO, logger="jshost.lib"):
        assert await jh.fcall("f") == 1
        jh.host.delete("lib")
        for _ in range(100):
            if any(m.startswith("tensor: ") for m in caplog.messages):
                break
            await asyncio.sleep(0)  # let the loop run the queued job
    assert f"tensor: {errors.REDISAI_INVALID_SCRIPT_CTX}" in caplog.messages
