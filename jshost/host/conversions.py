"""Values between Redis replies and JS, and JS errors into reply texts, by RedisGears' rules.

The engine binding converts losslessly (`jshost.engine.values`); these functions apply the
RedisGears rules on top (RedisGears' sources: `call_result_to_js_object` in
v8_native_functions.rs, `v8_value_to_call_result` in v8_function_ctx.rs, `get_exception_msg`
in redisgears_v8_plugin/src/lib.rs):

- `reply_to_js`: a typed store reply → the Python value the binding turns into the JS value
  `client.call` / `client.call_raw` returns (integers → BigInt, maps → objects, …). Errors are
  raised as `JSThrow(text)`, so JS sees a primitive string.
- `js_to_reply`: what a function returned (as the binding gave it) → a typed reply.
- `error_text`: a JS exception → the error reply text, per `error-verbosity`.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from math import copysign
from typing import Any

from jshost import errors
from jshost.engine import (
    UNDEFINED,
    Boxed,
    JSError,
    JSMap,
    JSObject,
    JSPromise,
    JSSet,
    JSThrow,
    TypedArray,
    is_too_deep,
)
from jshost.replies import (
    BigNumber,
    ErrorReply,
    Push,
    Reply,
    SetReply,
    Status,
    Verbatim,
)

MAX_NESTING = 100
INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1


def settled_result(promise: JSPromise) -> Any:
    """The value or reason of a settled promise; one nested too deep for the binding fails as
    a conversion (`nesting level reached`)."""
    try:
        return promise.result
    except ValueError as exc:
        if is_too_deep(exc):
            raise ConversionError(errors.NESTING_LEVEL_REACHED) from None
        raise


# --- reply → JS (call_result_to_js_object) -------------------------------------------------------


def reply_to_js(reply: Any, raw: bool) -> Any:
    """A store reply as the value `call` (raw=False) or `call_raw` (raw=True) returns."""
    # Fast paths first: the common replies are flat.
    t = type(reply)
    if t is bytes:
        return reply if raw else _decode(reply)
    if t is int or t is float or reply is None or t is bool:
        return reply
    if t is Status:
        return bytes(reply) if raw else reply.decode("utf-8", "replace")
    if t is ErrorReply:
        raise JSThrow(str(reply))
    if t is list:
        return [reply_to_js(x, raw) for x in reply]
    if t is SetReply:
        return JSSet([reply_to_js(x, raw) for x in reply])
    if t is dict:
        return {_map_key(k): reply_to_js(v, raw) for k, v in reply.items()}
    if t is BigNumber:
        return Boxed("string", str(reply), {"__reply_type": "big_number"})
    if t is Verbatim:
        props = {"__reply_type": "verbatim", "__format": reply.format}
        if raw:
            return Boxed("arraybuffer", bytes(reply), props)
        problem = errors.utf8_error(bytes(reply))
        if problem is not None:
            raise JSThrow(problem)
        return Boxed("string", reply.decode("utf-8"), props)
    if t is Push:
        return None
    raise JSThrow(errors.StoreErrors.UNSUPPORTED_REPLY.format(name=t.__name__))


def _decode(data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise JSThrow(errors.COULD_NOT_DECODE_VALUE) from None


def _map_key(key: Any) -> str:
    if isinstance(key, (bytes, Status)):
        try:
            return bytes(key).decode("utf-8")
        except UnicodeDecodeError:
            raise JSThrow(errors.BINARY_MAP_KEY) from None
    if type(key) is int:
        return str(key)
    if isinstance(key, ErrorReply):
        raise JSThrow(str(key))
    raise JSThrow(errors.OBJECT_KEY_NOT_SUPPORTED)


# --- JS → reply (v8_value_to_call_result) --------------------------------------------------------


class ConversionError(Exception):
    """The whole reply becomes this error text (any failure replaces the reply)."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text


def js_to_reply(value: Any, depth: int = 0) -> Reply:
    """The reply for a value a function returned (or a promise resolved with)."""
    if depth > MAX_NESTING:
        raise ConversionError(errors.NESTING_LEVEL_REACHED)
    # (`t is ...` does not narrow `value` for the type checker: the typed locals say what it is)
    t = type(value)
    if t is str:
        encoded: bytes = value.encode("utf-8", "surrogatepass")
        return encoded
    if t is float:
        return _number(value)
    if t is int:
        return _int64(value)
    if t is bool or value is None:
        flag: bool | None = value
        return flag
    if t is bytes:
        data: bytes = value
        return data
    if t is Boxed:
        return _boxed(value, depth)
    if t is JSSet:
        return _set(value, depth)
    if t is list:
        return [js_to_reply(x, depth + 1) for x in value]
    if t is dict:
        return _object_map(value.items(), depth)
    if t is JSMap:
        return {}  # a Map has no enumerable properties of its own
    if t is TypedArray:
        return _object_map(_typed_array_items(value), depth)
    if isinstance(value, JSObject):
        if value.typeof_ == "symbol":
            raise ConversionError(errors.NOT_A_KEY)
        try:
            items = value.for_in()
        except ValueError as exc:
            if is_too_deep(exc):
                raise ConversionError(errors.NESTING_LEVEL_REACHED) from None
            raise
        return _object_map(items, depth)
    # `undefined` (and anything else): the bulk string of String(v)
    if value is UNDEFINED:
        return b"undefined"
    return str(value).encode()


def _number(x: float) -> int | float:
    """an int32 whole Number (not -0) is an integer, any other a double."""
    if x.is_integer() and INT32_MIN <= x <= INT32_MAX and (x != 0 or copysign(1.0, x) > 0):
        return int(x)
    return x


def _int64(n: int) -> int:
    """A BigInt outside the signed 64-bit range is cut to its low 64 bits."""
    n &= (1 << 64) - 1
    return n - (1 << 64) if n >= 1 << 63 else n


def _boxed(b: Boxed, depth: int) -> Reply:
    if b.kind != "string":
        return _object_map(b.props.items(), depth)
    reply_type = b.props.get("__reply_type")
    text: bytes = b.value.encode("utf-8", "surrogatepass")
    if reply_type == "status":
        return Status(text)
    if reply_type == "verbatim":
        fmt = b.props.get("__format", "txt")
        fmt = fmt.value if isinstance(fmt, Boxed) else fmt
        fmt = fmt if isinstance(fmt, str) else str(fmt)
        if len(fmt) != 3:
            raise ConversionError(errors.VERBATIM_FORMAT_LENGTH)
        if not fmt.isascii():
            raise ConversionError(errors.VERBATIM_FORMAT_ASCII)
        return Verbatim(text, fmt)
    return text


def _set(s: JSSet, depth: int) -> SetReply:
    out: list[Any] = []
    seen: set[Any] = set()
    for item in s.items:
        key = _key(item)
        marker = (type(key), key)
        if marker not in seen:
            seen.add(marker)
            out.append(key)
    return SetReply(out)


def _key(value: Any) -> Any:
    """Key conversion for Set members and map keys."""
    t = type(value)
    if t is int:
        return _int64(value)
    if t is float:
        n = _number(value)
        if type(n) is int:
            return n
    elif t is str:
        return value.encode("utf-8", "surrogatepass")
    elif t is Boxed and value.kind == "string":
        return value.value.encode("utf-8", "surrogatepass")
    elif t is bytes or t is bool:
        return value
    raise ConversionError(errors.NOT_A_KEY)


def _is_index(key: str) -> bool:
    """A key that looks like an array index (canonical, below 2**32 - 1) becomes an integer key."""
    return key.isdigit() and key.isascii() and str(int(key)) == key and int(key) < 2**32 - 1


def _object_map(items: Any, depth: int) -> dict[Any, Any]:
    out: dict[Any, Any] = {}
    for k, v in items:
        key: Any = int(k) if _is_index(k) else k.encode("utf-8", "surrogatepass")
        out[key] = js_to_reply(v, depth + 1)
    return out


_ELEMENT_FORMATS = {
    "Int8Array": "b", "Uint8Array": "B", "Uint8ClampedArray": "B", "Int16Array": "h",
    "Uint16Array": "H", "Int32Array": "i", "Uint32Array": "I", "Float16Array": "e",
    "Float32Array": "f", "Float64Array": "d", "BigInt64Array": "q", "BigUint64Array": "Q",
}


def _typed_array_items(view: TypedArray) -> list[tuple[str, Any]]:
    """A typed array's `for…in` set: its indexes with their elements (a DataView has none)."""
    fmt = _ELEMENT_FORMATS.get(view.kind)
    if fmt is None:
        return []
    values = struct.unpack(f"<{len(view.data) // struct.calcsize(fmt)}{fmt}", view.data)
    is_bigint = view.kind.startswith("Big")
    return [(str(i), int(v) if is_bigint else float(v)) for i, v in enumerate(values)]


# --- exceptions → error text (get_exception_msg) -------------------------------------------------

_PRELUDE_FRAME = "(<jshost prelude>:"


def error_text(exc: JSError, verbosity: int = 1) -> str:
    """The reply text for an uncaught JS exception."""
    return _text(exc.text, exc.value, exc.stack, verbosity)


def value_error_text(value: Any, verbosity: int, string_of: Callable[[Any], str]) -> str:
    """The reply text for a rejected value; `string_of` is JS `String(v)` in its runtime."""
    stack = None
    if verbosity >= 2:
        if isinstance(value, JSObject):
            try:
                stack = value.get("stack")
            except JSError:
                stack = None
        elif isinstance(value, dict):
            stack = value.get("stack")
    return _text(string_of(value), value, stack if isinstance(stack, str) else None, verbosity)


# What QuickJS (or the binding) throws when it stops JS for memory or time.
_TERMINATIONS = frozenset({"InternalError: out of memory", "InternalError: interrupted"})


def _text(text: str, value: Any, stack: str | None, verbosity: int) -> str:
    if text in _TERMINATIONS:
        return errors.EXECUTION_TERMINATED
    if text == "InternalError: stack overflow":
        text = errors.STACK_OVERFLOW
    if verbosity < 2 or stack is None:
        return text
    if isinstance(value, dict):
        # A plain object with a `stack` property: that property is the text (V8 reads it as is).
        return stack.replace("\n", "|")
    # An Error: QuickJS's `stack` holds only the frames, so the `String(e)` line goes first
    # (V8's stack starts with it). The prelude's own frames are jshost's, not the library's.
    frames = [line for line in stack.rstrip("\n").split("\n") if _PRELUDE_FRAME not in line]
    return "|".join([text, *frames])
