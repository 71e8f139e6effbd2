"""The QuickJS engine: the native binding (`jshost._engine`) and the value shapes it uses."""

from jshost._engine import (
    JSError,
    JSFunction,
    JSObject,
    JSPromise,
    JSScript,
    JSTerminated,
    JSThrow,
    JSValueTooLarge,
    MemoryPool,
    Runtime,
)
from jshost.engine.values import UNDEFINED, Boxed, JSMap, JSSet, TypedArray, Undefined

__all__ = [
    "UNDEFINED",
    "Boxed",
    "JSError",
    "JSFunction",
    "JSMap",
    "JSObject",
    "JSPromise",
    "JSScript",
    "JSSet",
    "JSTerminated",
    "JSThrow",
    "JSValueTooLarge",
    "MemoryPool",
    "Runtime",
    "TypedArray",
    "Undefined",
]
