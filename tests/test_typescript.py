"""The TypeScript declarations `jshost/js_lib/redis.d.ts` against the examples and the prelude.

* Every example library type-checks with `tsc --allowJs --checkJs --strict` against the
  declarations, and a library with the usual mistakes does not (so the check is not vacuous).
* The API names the prelude really installs (read from a live library of each era) and the names
  the declarations give are the same, so the two cannot drift apart.

`tsc` comes from Debian's `node-typescript` package; without it the type-check tests are skipped.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from jshost.sync import SyncHost

ROOT = Path(__file__).resolve().parent.parent
DTS = ROOT / "jshost" / "js_lib" / "redis.d.ts"
EXAMPLES = sorted((ROOT / "examples").glob("*.js"))

TSC = shutil.which("tsc")
needs_tsc = pytest.mark.skipif(
    TSC is None, reason="tsc not found: install Debian's node-typescript (apt-get install -y "
    "node-typescript) to type-check the examples against redis.d.ts")

# `--moduleDetection force` gives each library its own top-level scope, as each library has its
# own runtime; `--strict` makes an untyped callback parameter an error, which proves that the
# declarations give every callback its parameter types.
TSC_OPTIONS = ["--allowJs", "--checkJs", "--noEmit", "--strict", "--target", "es2022",
               "--moduleDetection", "force", "--pretty", "false"]


def _blank_prologue(code: str) -> str:
    """The library code with its `#!js ...` prologue line emptied; line numbers are kept."""
    first, newline, rest = code.partition("\n")
    return ("" if first.startswith("#!") else first) + newline + rest


def _type_check(tmp_path: Path, sources: dict[str, str]) -> tuple[int, str]:
    """Run tsc over `sources` (name -> library code) laid out as in the repository, so that an
    example's `/// <reference path="../jshost/js_lib/redis.d.ts" />` resolves to the copy."""
    dts = tmp_path / "jshost" / "js_lib" / "redis.d.ts"
    dts.parent.mkdir(parents=True)
    shutil.copy(DTS, dts)
    (tmp_path / "examples").mkdir()
    files = []
    for name, code in sources.items():
        path = tmp_path / "examples" / name
        path.write_text(_blank_prologue(code), encoding="utf-8")
        files.append(f"examples/{name}")
    assert TSC is not None
    result = subprocess.run([TSC, *TSC_OPTIONS, "jshost/js_lib/redis.d.ts", *files], check=False,
                            cwd=tmp_path, capture_output=True, text=True, timeout=300)
    return result.returncode, result.stdout + result.stderr


def test_there_are_examples() -> None:
    assert len(EXAMPLES) >= 8


@needs_tsc
def test_examples_type_check(tmp_path: Path) -> None:
    sources = {path.name: path.read_text(encoding="utf-8") for path in EXAMPLES}
    returncode, output = _type_check(tmp_path, sources)
    assert returncode == 0, f"tsc found errors in examples/ (paths relative to the repo):\n{output}"


BAD_LIBRARY = """\
#!js api_version=1.0 name=bad
redis.register_function('a', (client, key) => client.call('expire', key, 5));
redis.register_function('b', (client, key) => client.block((c) => c.call('get', key)));
redis.register_async_function('c', async (client, key) => client.call('get', key));
redis.register_function('d', (client, key) => key.byteLength);
redis.register_function('e', (client) => 1, ['no-write']);
redis.register_stream_consumer('s', 'p', 1, false, (client, data) => data.id[0] + 1);
const p = Promise.resolve(1);
setTimeout(() => 1, 10);
redis.registerFunction('f', (client, key) => client.call_raw('get', key));
redis.registerFunction('g', (client, key) => key.byteLength,
  { flags: [redis.functionFlags.RAW_ARGUMENTS] });
"""

# (line, TypeScript error code) for each mistake above; line 12 (raw arguments) is correct.
BAD_LIBRARY_ERRORS = {
    (2, "TS2345"),  # a number as a command argument: the host refuses it
    (3, "TS2339"),  # `block` on a sync client
    (4, "TS2339"),  # `call` on the async client of a coroutine
    (5, "TS2339"),  # `byteLength` of a string argument (no raw-arguments flag)
    (6, "TS2820"),  # an unknown flag
    (7, "TS2365"),  # BigInt id + number
    (8, "TS2339"),  # `Promise.resolve` does not exist on the replaced Promise
    (9, "TS2304"),  # no timers in the sandbox
    (10, "TS2551"),  # rg name on the tf client
}


@needs_tsc
def test_mistakes_are_caught(tmp_path: Path) -> None:
    returncode, output = _type_check(tmp_path, {"bad.js": BAD_LIBRARY})
    assert returncode != 0
    found = {(int(line), code) for line, code in
             re.findall(r"^examples/bad\.js\((\d+),\d+\): error (TS\d+)", output, re.MULTILINE)}
    # Each mistake is reported with the expected error; follow-up errors (an untyped parameter
    # inside a rejected callback) may come too, but nothing on a correct line.
    assert BAD_LIBRARY_ERRORS <= found, output
    assert {line for line, _ in found} <= {line for line, _ in BAD_LIBRARY_ERRORS}, output


# --- the declarations and the prelude name the same API ------------------------------------------

# Interfaces of redis.d.ts per surface, and the runtime object each describes.
DTS_INTERFACES = {
    "rg": {"redis": "RgApi", "sync client": "RgSyncClient", "async client": "RgAsyncClient"},
    "tf": {"redis": "TfApi", "sync client": "TfSyncClient", "async client": "TfAsyncClient"},
}

# Declared (SPEC §10) but not in the prelude yet: remote/cluster calls come with cluster support.
# When the prelude gains them, this test fails until they are removed from here.
NOT_YET_IN_PRELUDE: dict[tuple[str, str], set[str]] = {}

SURFACE_PROBE = """\
#!js api_version=1.0 name=surface_{era}
const methods = (o) => Object.getOwnPropertyNames(Object.getPrototypeOf(o))
  .filter((n) => n !== 'constructor');
redis.{register}('api', () => Object.keys(redis));
redis.{register}('sync', (client) => methods(client));
redis.{register_async}('async', async (client) => methods(client));
"""


def _runtime_names(era: str) -> dict[str, set[str]]:
    """The names a library of `era` really sees: `redis` members and client methods."""
    register, register_async = (("register_function", "register_async_function") if era == "rg"
                                else ("registerFunction", "registerAsyncFunction"))
    code = SURFACE_PROBE.format(era=era, register=register, register_async=register_async)
    with SyncHost() as host:
        lib = host.load(code, era=era)  # type: ignore[arg-type]
        replies = {
            "redis": host.fcall(lib, "api", era=era),  # type: ignore[arg-type]
            "sync client": host.fcall(lib, "sync", era=era),  # type: ignore[arg-type]
            "async client": host.fcall_async(lib, "async", era=era),  # type: ignore[arg-type]
        }
    return {what: {name.decode() for name in names} for what, names in replies.items()}


def _dts_members(interface: str) -> set[str]:
    """Member names of `interface` in redis.d.ts: the identifiers that start a line at member
    indentation (comments start with `*` or `/`, nested types are indented further)."""
    text = DTS.read_text(encoding="utf-8")
    body = rf"^  interface {interface}\b[^{{]*\{{\n(.*?)^  \}}"
    match = re.search(body, text, re.MULTILINE | re.DOTALL)
    assert match, f"interface {interface} not found in redis.d.ts"
    member = r"^    (?:readonly )?([A-Za-z_]\w*)\??\s*[<(:]"
    return set(re.findall(member, match.group(1), re.MULTILINE))


@pytest.mark.parametrize("era", ["rg", "tf"])
def test_declarations_match_the_prelude(era: str) -> None:
    runtime = _runtime_names(era)
    for what, interface in DTS_INTERFACES[era].items():
        declared = _dts_members(interface)
        pending = NOT_YET_IN_PRELUDE.get((era, what), set())
        assert runtime[what] - declared == set(), f"{era} {what}: missing from redis.d.ts"
        assert declared - runtime[what] == pending, f"{era} {what}: declared but not installed"


def test_declarations_parse_as_expected() -> None:
    """Guard the simple parser above: a few members it must see."""
    assert {"register_function", "config", "log", "v8_version"} <= _dts_members("RgApi")
    assert {"registerFunction", "functionFlags", "apiVersion"} <= _dts_members("TfApi")
    assert {"call", "call_raw", "allow_block", "run_on_background", "redisai"} == (
        _dts_members("RgSyncClient"))
