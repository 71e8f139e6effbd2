"""Library fuzzing through `Host.load`, in process: a bad library never hurts the others.

Random prologues and random sources (syntax errors, every kind of thrown value, registration
misuse, top-level infinite loops under a low `lock-redis-timeout`, deep recursion, memory bombs
under the minimum `library-maxmemory`) are loaded as new libraries and as upgrades of a library
that is already serving. Every failure must be a `ReplyError` with one of the load errors' texts
(never another exception), and a failed load or upgrade must leave the registry exactly as it
was: the same library objects, and the old library answering byte for byte the same.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jshost import errors
from jshost.errors import Era, ReplyError
from jshost.host import Host
from jshost.host.requests import CallArgs
from jshost.settings import Settings

from . import (
    LIBRARY_FRAGMENTS,
    LIMIT_FRAGMENTS,
    LOW_LIMITS,
    PROLOGUE_KEYS,
    PROLOGUE_VALUES,
    SERVING,
    Registry,
    library_code,
    register_line,
    to_era,
)

pytestmark = pytest.mark.timeout(300)

FUZZ = settings(
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.fixture(params=["rg", "tf"])
def registry(request: pytest.FixtureRequest) -> Iterator[Registry]:
    reg = Registry(request.param)
    try:
        yield reg
    finally:
        reg.close()


# --- prologues --------------------------------------------------------------------------------

# The same key and value pools as the long fuzz run (`tests.fuzz`), plus arbitrary text.
_keys = st.one_of(st.sampled_from(PROLOGUE_KEYS), st.text(max_size=8))
_values = st.one_of(st.sampled_from(PROLOGUE_VALUES), st.text(max_size=12))
_pairs = st.lists(
    st.tuples(_keys, st.sampled_from(["=", "==", " = ", "", "=\t"]), _values), max_size=4
)
_engines = st.one_of(
    st.sampled_from(["js", "JS", "lua", "", "js ", "javascript"]), st.text(max_size=6)
)
_separators = st.sampled_from([" ", "  ", "\t", " \u00a0", ""])
prologues = st.one_of(
    st.builds(
        lambda start, engine, pairs, sep: (
            start + engine + "".join(sep + key + eq + value for key, eq, value in pairs)
        ),
        st.sampled_from(["#!", "#! ", "#", "!#", "//#!", "\ufeff#!", " #!"]),
        _engines,
        _pairs,
        _separators,
    ),
    st.text(max_size=60).map(lambda t: t.split("\n", 1)[0]),
)


@settings(FUZZ, max_examples=150)
@given(first_line=prologues, replace=st.booleans())
def test_random_prologues(registry: Registry, first_line: str, replace: bool) -> None:
    name = registry.load(
        library_code(register_line(registry.era), prologue=first_line), replace=replace
    )
    if name is not None:
        registry.undo(name)
    registry.check_unchanged()


@settings(FUZZ, max_examples=40)
@given(api_version=st.text(max_size=10).filter(lambda v: " " not in v and "\n" not in v))
def test_random_api_versions_upgrading_the_serving_library(
    registry: Registry, api_version: str
) -> None:
    """An upgrade of `serving` with a random api_version: a supported one replaces it, any
    other leaves it serving."""
    code = library_code(
        to_era(registry.era, SERVING["rg"].split("\n", 1)[1]),
        prologue=f"#!js api_version={api_version} name=serving",
    )
    name = registry.load(code, replace=True)
    if name is not None:
        assert api_version in ("1.0", "1.1") or re.fullmatch(r"0*1\.0*[01]", api_version)
        registry.undo(name)
    registry.check_unchanged()


# --- sources ----------------------------------------------------------------------------------

_fragments = st.lists(st.sampled_from(LIBRARY_FRAGMENTS), min_size=1, max_size=3)
_edits = st.lists(
    st.tuples(st.integers(0, 10_000), st.sampled_from(list("(){}[];'\"`\\\n\x00/*=>.,"))),
    max_size=3,
)


def assemble(era: Era, parts: list[str], register: bool, edits: list[tuple[int, str]]) -> str:
    """Fragments (in the era's API), maybe a valid registration, maybe a few characters
    replaced."""
    body = "\n".join([*parts, register_line(era)] if register else parts)
    body = to_era(era, body)
    for position, char in edits:
        if body:
            pos = position % len(body)
            body = body[:pos] + char + body[pos + 1 :]
    return body


@settings(FUZZ, max_examples=150)
@given(parts=_fragments, register=st.booleans(), edits=_edits, upgrade=st.booleans())
def test_random_sources(
    registry: Registry,
    parts: list[str],
    register: bool,
    edits: list[tuple[int, str]],
    upgrade: bool,
) -> None:
    """New libraries and upgrades of `serving` from broken sources."""
    body = assemble(registry.era, parts, register, edits)
    name = "serving" if upgrade else "fresh"
    loaded = registry.load(library_code(body, name), replace=upgrade)
    if loaded is not None:
        registry.undo(loaded)
    registry.check_unchanged()


@settings(FUZZ, max_examples=20)
@given(
    fragment=st.sampled_from(LIMIT_FRAGMENTS),
    before=st.sampled_from(["", "let x = 1;"]),
    register=st.booleans(),
)
def test_sources_that_hit_a_limit(
    registry: Registry, fragment: str, before: str, register: bool
) -> None:
    """Infinite loops and memory bombs at top level (slow: few examples)."""
    parts = [before, fragment] if before else [fragment]
    body = assemble(registry.era, parts, register, [])
    assert registry.load(library_code(body, "serving"), replace=True) is None
    registry.check_unchanged()


# --- the limits, one by one -------------------------------------------------------------------

TERMINATED = errors.failed_loading_library(errors.EXECUTION_TERMINATED)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("while (true) {}", TERMINATED),
        ("for (;;) { try { while (true) {} } catch (e) {} }", TERMINATED),
        (
            "(function f(n) { try { return f(n + 1); } catch (e) { return f(n + 1); } })(0);",
            TERMINATED,
        ),
        ("const a = []; for (;;) a.push(new Array(1e5).fill(1.5));", TERMINATED),
        ("const a = []; for (;;) a.push({x: a.length, s: 'y'.repeat(100)});", TERMINATED),
        ("new ArrayBuffer(1 << 30);", TERMINATED),
        (
            "(function f() { return f() + 1; })();",
            "Failed loading library: RangeError: Maximum call stack size exceeded.",
        ),
        (
            "JSON.parse('['.repeat(100000) + ']'.repeat(100000));",
            "Failed loading library: RangeError: Maximum call stack size exceeded.",
        ),
        ("throw {toString() { while (true) {} }};", TERMINATED),
    ],
    ids=[
        "loop",
        "loop-catching",
        "recursion-catching",
        "array-bomb",
        "object-bomb",
        "buffer-bomb",
        "recursion",
        "json-depth",
        "looping-toString",
    ],
)
def test_limits_at_load_are_load_errors(registry: Registry, body: str, expected: str) -> None:
    """Each limit gives its exact load error, as a new library and as an upgrade."""
    for name, replace in (("fresh", False), ("serving", True)):
        code = library_code(f"{register_line(registry.era)}\n{body}", name)
        with pytest.raises(ReplyError) as info:
            registry.host.load(code, replace=replace, era=registry.era)
        assert info.value.text == expected
        registry.check_unchanged()


async def test_failed_upgrade_keeps_pending_calls_of_the_old_library() -> None:
    """A call waiting on the old library's promise when an upgrade fails: it still settles,
    from the old library, afterwards."""
    host = Host(settings=Settings(LOW_LIMITS))
    try:
        host.load(
            "#!js api_version=1.0 name=serving\nvar waiting = [];\n"
            "redis.register_async_function('wait', () => new Promise((r) => waiting.push(r)));\n"
            "redis.register_function('release', () => { waiting.forEach((r) => r('old')); "
            "return waiting.length; });"
        )
        pending = host.call("rg", CallArgs("serving", "wait", 0, []), asynchronous=True)
        assert isinstance(pending, asyncio.Future)
        for body in ("while (true) {}", "throw 1;", "syntax error here", ""):
            with pytest.raises(ReplyError):
                host.load(f"#!js api_version=1.0 name=serving\n{body}", replace=True)
        assert not pending.done()
        assert await host.fcall("serving", "release") == 1
        assert await asyncio.wait_for(pending, 10) == b"old"
    finally:
        host.close()
