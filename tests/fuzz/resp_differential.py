"""Differential fuzzing of the RESP layer: the native one (`jshost.resp`) against its oracle, the
pure-Python implementation it replaced (`tests/resp_oracle.py`).

Each *case* draws its input from a seeded `random.Random` and runs it through both: the same
byte streams (random, hostile, mutated pipelines, mutated replies) split at random points and
fed in the same order, with the same calls in between, must give the same commands, replies,
raw bytes, errors (class and text) and the same bytes held for the query buffer limit; the same
values must encode to the same bytes (or fail with the same exception). Request parsers switch
the pre-auth limits on and off between calls (``unauthenticated``) and have a `check_bulk`
hook that refuses, accepts or fails by the bulk's length: both must ask it the same questions
(arguments so far and length) at the same calls. A case returns None
when both agree, else a description of the first difference (with the case's seed, so it can be
replayed with `run_case`).

Used by `tests/fuzz/test_resp_differential.py` (a few thousand cases in CI) and by
``python -m bench.fuzz --differential 100000``.
"""

from __future__ import annotations

import enum
import math
import random
import struct
from collections.abc import Callable
from typing import Any, Final

from jshost import resp as native
from jshost.replies import BigNumber, ErrorReply, Push, SetReply, Status, Verbatim
from tests import resp_oracle as oracle

from . import COMMANDS, HOSTILE_HEADERS, mutate, pipeline, random_mutations

# --- comparable outcomes ------------------------------------------------------------------------


def typed(value: Any) -> Any:
    """A comparable form of a value that keeps the exact types (Status != bytes, True != 1)."""
    if isinstance(value, dict):
        return (type(value).__name__, [(typed(k), typed(v)) for k, v in value.items()])
    if isinstance(value, (list, tuple)):
        return (type(value).__name__, [typed(v) for v in value])
    if isinstance(value, Verbatim):
        return ("Verbatim", bytes(value), value.format)
    if isinstance(value, float):
        return ("float", repr(value))
    if value is native.NEED_DATA:
        return "NEED_DATA"
    return (type(value).__name__, value)


def outcome(function: Callable[..., Any], *args: Any) -> Any:
    """What a call gives: its typed result, or its exception's class name and text."""
    try:
        return ("ok", typed(function(*args)))
    except Exception as exc:  # noqa: BLE001 - the exception is the outcome compared
        return ("raised", type(exc).__name__, str(exc))


# --- requests -----------------------------------------------------------------------------------

#: More hostile material: the pre-authentication limits, lines around small limits, NULs.
REQUEST_EXTRAS: Final[tuple[bytes, ...]] = (
    b"*10\r\n",
    b"*11\r\n",
    b"*1\r\n$16384\r\n",
    b"*1\r\n$16385\r\n",
    b"$16385\r\n",
    b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$20000\r\n" + b"v" * 20000 + b"\r\n",
    b"x" * 300,
    b"*" + b"9" * 300,
    b"*1\r\n$" + b"9" * 300,
    b"*1\x00\r\n",
    b"ping\x00 x\r\n",
    b"set \"a\\x41\" 'b\\'c'\r\n",
    b'echo "unbalanced\r\n',
    b"\x0b\x0cPING\r\n",
    b"*1\rX$4\r\nPINGxx",
    b"*-9223372036854775808\r\n",
    b"*1\r\n$0\r\n\r\n",
    b"*1\r\n$65537\r\n",
)

#: Lengths of the long bulks the `check_bulk` hook is asked about (over 64 KiB), and around.
LONG_BULKS: Final = (65535, 65536, 65537, 65538, 65539, 65541, 66000, 70002, 70007)


def long_bulk_command(rng: random.Random) -> bytes:
    """A command with a bulk around 64 KiB (a library LOAD, or any), often cut short."""
    length = rng.choice(LONG_BULKS)
    head = rng.choice(([b"RG.FUNCTION", b"LOAD"], [b"SET", b"k"], [b"TFUNCTION"], []))
    data = b"*%d\r\n" % (len(head) + 1 + rng.randrange(2))
    data += b"".join(b"$%d\r\n%s\r\n" % (len(arg), arg) for arg in head)
    data += b"$%d\r\n" % length + b"c" * length + b"\r\n"
    if rng.random() < 0.3:
        data = data[: rng.randrange(len(data) + 1)]
    return data


def request_stream(rng: random.Random) -> bytes:
    """One request byte stream: mutated pipelines, hostile fragments, random bytes."""
    parts = []
    for _ in range(rng.randrange(1, 4)):
        kind = rng.randrange(10)
        if kind == 0:
            parts.append(rng.randbytes(rng.randrange(1, 200)))
        elif kind == 1:
            parts.append(b"".join(rng.choice(HOSTILE_HEADERS) for _ in range(rng.randrange(1, 5))))
        elif kind == 2:
            parts.append(b"".join(rng.choice(REQUEST_EXTRAS) for _ in range(rng.randrange(1, 4))))
        elif kind in (3, 4):
            parts.append(long_bulk_command(rng))
        else:
            commands = [rng.choice(COMMANDS) for _ in range(rng.randrange(1, 12))]
            if rng.random() < 0.2:
                commands.append((b"SET", b"big", rng.randbytes(rng.randrange(1000, 5000))))
            data = pipeline(commands, [rng.random() < 0.3 for _ in commands])
            parts.append(mutate(data, random_mutations(rng, rng.choice((0, 0, 1, 2, 4)))))
    return b"".join(parts)


def request_limits(rng: random.Random) -> dict[str, Any]:
    """Parser options: mostly Redis' defaults, sometimes tiny limits."""
    limits: dict[str, Any] = {"unauthenticated": rng.random() < 0.3}
    if rng.random() < 0.3:
        limits["max_bulk_len"] = rng.randrange(0, 64)
    if rng.random() < 0.3:
        limits["max_multibulk_len"] = rng.randrange(0, 16)
    if rng.random() < 0.3:
        limits["max_inline_size"] = rng.randrange(0, 300)
    if rng.random() < 0.3:
        limits["query_buffer_limit"] = rng.randrange(0, 4000)
    return limits


def chunks(rng: random.Random, data: bytes) -> list[bytes]:
    """`data` cut at random points (sometimes byte by byte at the start)."""
    if rng.random() < 0.1:
        head = rng.randrange(min(len(data), 40) + 1)
        return [data[i : i + 1] for i in range(head)] + [data[head:]]
    cuts = sorted(rng.randrange(len(data) + 1) for _ in range(rng.randrange(0, 8)))
    return [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True)]


def _repeat(call: Callable[[], Any], times: int) -> list[Any]:
    return [call() for _ in range(times)]


def _held(parser: Any) -> int:
    return len(parser._buf) - parser._pos + parser._chunks_len + parser._partial


def _oracle_take(parser: oracle.RequestParser, max_commands: int) -> list[list[bytes]]:
    """What the native `take` does, by `get_command` calls (one command while unauthenticated)."""
    out: list[list[bytes]] = []
    limit = min(max_commands, 1) if parser.unauthenticated else max_commands
    while len(out) < limit:
        try:
            argv = parser.get_command()
        except Exception:  # a protocol error, or the check's: met again by the next call
            if not out:
                raise
            break
        if argv is None:
            break
        out.append(argv)
    return out


class BulkCheck:
    """A `check_bulk` hook that records what it is asked; it refuses a length divisible by 3,
    fails (raises) on one divisible by 7 (once, or always) and accepts the others."""

    def __init__(self, fails_once: bool) -> None:
        self.asked: list[tuple[list[bytes], int]] = []
        self.fails_once = fails_once
        self.failed: set[int] = set()

    def __call__(self, argv: list[bytes], length: int) -> str | None:
        self.asked.append((list(argv), length))
        if length % 7 == 0 and not (self.fails_once and length in self.failed):
            self.failed.add(length)
            raise ValueError(f"check failed at {length}")
        if length % 3 == 0:
            return f"ERR refused: {length} bytes after {len(argv)} arguments"
        return None

    def take(self) -> list[tuple[list[bytes], int]]:
        asked, self.asked = self.asked, []
        return asked


def request_case(rng: random.Random) -> str | None:
    """One request stream through both parsers, with the same calls; the first difference."""
    data = request_stream(rng)
    limits = request_limits(rng)
    checks = fails_once = None
    if rng.random() < 0.7:
        fails_once = rng.random() < 0.5
        checks = (BulkCheck(fails_once), BulkCheck(fails_once))
    ops: list[tuple[str, Any]] = []
    for chunk in chunks(rng, data):
        ops.append(("feed", chunk))
        for _ in range(rng.randrange(0, 3)):
            op = rng.randrange(6)
            if op == 0:
                ops.append(("take", rng.randrange(0, 20)))
            elif op == 1:
                ops.append(("unauthenticated", rng.random() < 0.5))
            else:
                ops.append(("get", rng.randrange(1, 4)))
    ops.append(("get", 1000))
    ops.append(("get", 1))  # a protocol error is raised again
    parsers = (oracle.RequestParser(**limits), native.RequestParser(**limits))
    if checks is not None:
        for parser, check in zip(parsers, checks, strict=True):
            parser.check_bulk = check
    for i, (op, arg) in enumerate(ops):
        results = []
        for parser in parsers:
            if op == "feed":
                results.append(outcome(parser.feed, arg))
            elif op == "unauthenticated":  # AUTH, RESET: the switch between any two calls
                parser.unauthenticated = arg
                results.append(None)
            elif op == "take":
                take = _oracle_take if parser is parsers[0] else type(parser).take
                results.append(outcome(take, parser, arg))
            else:
                results.append(outcome(_repeat, parser.get_command, arg))
            results.append(_held(parser) if parser is parsers[0] else parser.held)
        if checks is not None:
            results[2:2] = [checks[0].take()]
            results.append(checks[1].take())
        if results[: len(results) // 2] != results[len(results) // 2 :]:
            half = len(results) // 2
            hook = "none" if checks is None else "fails once" if fails_once else "fails always"
            return (
                f"requests differ at op {i} {op}({arg!r:.60}): oracle {results[:half]!r:.600} "
                f"native {results[half:]!r:.600}; limits {limits}, check_bulk {hook}, "
                f"stream {data!r:.800}"
            )
    return None


# --- replies ------------------------------------------------------------------------------------

#: Reply fragments the encoder never makes: attributes, blob errors, odd doubles, aggregate keys,
#: bad headers and values.
REPLY_EXTRAS: Final[tuple[bytes, ...]] = (
    b"|1\r\n+ttl\r\n:3600\r\n",
    b"|0\r\n",
    b"|-1\r\n",
    b"!8\r\nERR a\r\nb\r\n",
    b"!-1\r\n",
    b"=15\r\ntxt:Some string\r\n",
    b"=3\r\ntxt\r\n",
    b"=5\r\n\xffxx:a\r\n",
    b",1_000.5\r\n",
    b", 1.5 \r\n",
    b",-nan\r\n",
    b",Infinity\r\n",
    b",1e400\r\n",
    b",abc\r\n",
    b",\r\n",
    b":007\r\n",
    b":-0\r\n",
    b":123456789012345678901234567890\r\n",
    b":-\r\n",
    b":+1\r\n",
    b"(00012345678901234567890\r\n",
    b"(1a\r\n",
    b"#t\r\n#x\r\n",
    b"_\r\n_x\r\n",
    b"%1\r\n*2\r\n:1\r\n:2\r\n+v\r\n",
    b"%2\r\n%1\r\n:1\r\n*1\r\n:2\r\n:3\r\n~1\r\n*0\r\n:4\r\n",
    b"%1\r\n|1\r\n+a\r\n+b\r\n*1\r\n%0\r\n:5\r\n",
    b"%1\r\n>2\r\n~0\r\n%0\r\n_\r\n",
    b"%2\r\n:1\r\n:2\r\n:1\r\n:3\r\n",
    b"*1\r\n" * 12 + b":1\r\n",
    b"*-1\r\n",
    b"*-2\r\n",
    b"%-1\r\n",
    b"$-2\r\n",
    b"$3\r\nabcXY",
    b"$99999999999999999999999\r\n",
    b"*99999999999999999999999\r\n",
    b"$x\r\n",
    b"?x\r\n",
    b"-ERR \xff\xfe\r\n",
    b"+\r\n",
    b"\r\n",
)


def random_value(rng: random.Random, depth: int = 0) -> Any:
    """A typed reply value (as the stores and host make them), nested a little."""
    kind = rng.randrange(22 if depth < 4 else 14)
    if kind == 0:
        return rng.randbytes(rng.randrange(0, 12))
    if kind == 1:
        return rng.choice(["", "text", "héllo", "a\udcffb", "a\ud800b", "x" * 70000, "\0\r\n"])
    if kind == 2:
        return rng.choice([0, -1, 42, 2**63 - 1, -(2**63), 2**64, -(3**50), rng.getrandbits(70)])
    if kind == 3:
        return rng.random() < 0.5
    if kind == 4:
        return random_double(rng)
    if kind == 5:
        return None
    if kind == 6:
        return Status(rng.choice([b"OK", b"", b"a\r\nb\0", rng.randbytes(5)]))
    if kind == 7:
        return ErrorReply(rng.choice(["ERR x", "Unknown\r\nlib\0x", "ERR é", "ERR \udcff", ""]))
    if kind == 8:
        return Verbatim(
            rng.randbytes(rng.randrange(6)), rng.choice(["txt", "mkd", "text", "", "é"])
        )
    if kind == 9:
        return BigNumber(rng.choice(["123456789012345678901234567890", "-1", "é1", ""]))
    if kind == 10:
        return bytearray(rng.randbytes(3))
    if kind == 11:
        return memoryview(rng.randbytes(4))
    if kind == 12:
        return rng.choice([object(), 1j, _Int.ONE, _Str("sub"), _Bytes(b"sub")])
    if kind == 13:
        return b"z" * rng.choice([65535, 65536, 100000])
    children = [random_value(rng, depth + 1) for _ in range(rng.randrange(0, 4))]
    if kind in (14, 15):
        return children
    if kind == 16:
        return tuple(children)
    if kind == 17:
        return SetReply(children)
    if kind == 18:
        return Push(children)
    if kind == 19:
        keys = [rng.choice([rng.randbytes(2), "k", 1, 1.5, None, (1, 2), True]) for _ in children]
        return dict(zip(keys, children, strict=True))
    if kind == 20:
        return rng.choice([set, frozenset])(rng.randbytes(2) for _ in children)
    return rng.choice([_List(children), _Dict(enumerate(children))])


class _Int(enum.IntEnum):
    ONE = 1


class _Str(str):
    __slots__ = ()


class _Bytes(bytes):
    __slots__ = ()


class _List(list):
    __slots__ = ()


class _Dict(dict):
    __slots__ = ()


def random_double(rng: random.Random) -> float:
    """Any double: random bits, specials, round numbers, around the ±2**62 bound."""
    kind = rng.randrange(6)
    if kind == 0:
        return struct.unpack("<d", rng.randbytes(8))[0]
    if kind == 1:
        return rng.choice([math.nan, math.inf, -math.inf, 0.0, -0.0, 5e-324, 2.0**62, -(2.0**62)])
    if kind == 2:
        return float(rng.randrange(-(10**20), 10**20)) / 10 ** rng.randrange(0, 25)
    if kind == 3:
        return rng.choice([1.0, -1.0]) * 2.0 ** rng.randrange(-1074, 1024)
    if kind == 4:
        return math.nextafter(2.0**62, rng.choice([math.inf, -math.inf])) * rng.choice([1, -1])
    return rng.uniform(-1e6, 1e6)


def reply_stream(rng: random.Random) -> bytes:
    """A reply byte stream: encoded values (RESP2/RESP3), extras, mutations, random bytes."""
    parts = []
    for _ in range(rng.randrange(1, 6)):
        kind = rng.randrange(8)
        if kind == 0:
            parts.append(rng.choice(REPLY_EXTRAS))
        elif kind == 1:
            parts.append(rng.randbytes(rng.randrange(1, 60)))
        else:
            try:
                parts.append(oracle.encode(random_value(rng), rng.choice((2, 3))))
            except (TypeError, ValueError):
                continue
    data = b"".join(parts)
    if rng.random() < 0.4:
        data = mutate(data, random_mutations(rng, rng.randrange(1, 4)))
    return data


def reply_case(rng: random.Random) -> str | None:
    """One reply stream through both parsers, with the same calls; then `split_reply`."""
    data = reply_stream(rng)
    depth = rng.choice([native.MAX_REPLY_DEPTH, rng.randrange(1, 8)])
    ops: list[tuple[str, Any]] = []
    for chunk in chunks(rng, data):
        ops.append(("feed", chunk))
        ops.extend(
            (rng.choice(("get", "raw")), rng.randrange(1, 4)) for _ in range(rng.randrange(3))
        )
    ops.append(("get", 1000))
    ops.append(("get", 1))
    parsers = (oracle.ReplyParser(max_depth=depth), native.ReplyParser(max_depth=depth))
    for i, (op, arg) in enumerate(ops):
        results = []
        for parser in parsers:
            if op == "feed":
                results.append(outcome(parser.feed, arg))
            elif op == "raw":
                results.append(outcome(_repeat, parser.get_reply_with_raw, arg))
            else:
                results.append(outcome(_repeat, parser.get_reply, arg))
            results.append(len(parser._buf) - parser._pos + parser._chunks_len)
        if results[:2] != results[2:]:
            return (
                f"replies differ at op {i} {op}: oracle {results[:2]!r:.600} native "
                f"{results[2:]!r:.600}; max_depth {depth}, stream {data!r:.800}"
            )
    for pos in sorted({0, *(rng.randrange(len(data) + 1) for _ in range(3))}):
        for buf in (data, bytearray(data)):
            expected = outcome(oracle.split_reply, buf, pos)
            got = outcome(native.split_reply, buf, pos)
            if got != expected:
                return f"split_reply({pos}) differs: oracle {expected} native {got}; {data!r:.800}"
    return None


# --- encoding and the small functions -----------------------------------------------------------


def encoding_case(rng: random.Random) -> str | None:
    """A random value encoded for RESP2 and RESP3, into new bytes and into a bytearray."""
    value = random_value(rng)
    for protocol in (2, 3):
        expected = outcome(oracle.encode, value, protocol)
        got = outcome(native.encode, value, protocol)
        if got != expected:
            return (
                f"encode({value!r:.300}, {protocol}): oracle {expected!r:.300} native {got!r:.300}"
            )
        outs = (bytearray(b"+QUEUED\r\n"), bytearray(b"+QUEUED\r\n"))
        expected = outcome(oracle.encode_into, outs[0], value, protocol)
        got = outcome(native.encode_into, outs[1], value, protocol)
        if (got, outs[1]) != (expected, outs[0]):
            return (
                f"encode_into({value!r:.300}, {protocol}) differs: oracle {expected!r:.200} "
                f"{bytes(outs[0])!r:.300} native {got!r:.200} {bytes(outs[1])!r:.300}"
            )
    return None


def double_case(rng: random.Random) -> str | None:
    x = random_double(rng)
    expected, got = oracle.format_double(x), native.format_double(x)
    return None if got == expected else f"format_double({x!r}): oracle {expected} native {got}"


_ARG_MATERIAL: Final = (
    b"k",
    b"",
    "é",
    "a\udcffb",
    "a\ud800b",
    0,
    -5,
    2**70,
    1.5,
    math.inf,
    math.nan,
    -0.0,
    True,
    None,
    bytearray(b"ba"),
    memoryview(b"mv"),
    _Int.ONE,
    _Str("s"),
    _Bytes(b"b"),
    object(),
)


def command_case(rng: random.Random) -> str | None:
    args = [rng.choice(_ARG_MATERIAL) for _ in range(rng.randrange(0, 5))]
    expected = outcome(oracle.encode_command, args)
    got = outcome(native.encode_command, args)
    return None if got == expected else f"encode_command({args!r}): oracle {expected} native {got}"


_LINE_MATERIAL: Final = b"ab \t\r\n\x0b\x0c\"'\\x41\x00\xffn"


def split_args_case(rng: random.Random) -> str | None:
    line = bytes(rng.choice(_LINE_MATERIAL) for _ in range(rng.randrange(0, 24)))
    expected = outcome(oracle.split_args, line)
    got = outcome(native.split_args, line)
    return None if got == expected else f"split_args({line!r}): oracle {expected} native {got}"


#: The kinds of case, by name.
CASES: Final[dict[str, Callable[[random.Random], str | None]]] = {
    "requests": request_case,
    "replies": reply_case,
    "encoding": encoding_case,
    "doubles": double_case,
    "commands": command_case,
    "split_args": split_args_case,
}


def run_case(kind: str, seed: int) -> str | None:
    """Replay one case (the seed a failure reported)."""
    failure = CASES[kind](random.Random(seed))
    return None if failure is None else f"[{kind} seed {seed}] {failure}"


def run(count: int, seed: int, kinds: tuple[str, ...] = tuple(CASES)) -> list[str]:
    """`count` cases of each kind, seeds `seed`, `seed + 1`, ...; the differences found."""
    failures = []
    for kind in kinds:
        for i in range(count):
            failure = run_case(kind, seed + i)
            if failure is not None:
                failures.append(failure)
    return failures
