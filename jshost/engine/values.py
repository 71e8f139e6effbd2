"""Python-side shapes of JS values that have no exact Python twin.

The native binding (`jshost._engine`) converts losslessly and never guesses: where Python has no
type of its own for a JS value, it uses one of these. The RedisGears rules are applied on
top of them by the host, so every distinction those rules need survives the trip.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from jshost import _engine

TYPED_ARRAY_KINDS = (
    "Uint8ClampedArray", "Int8Array", "Uint8Array", "Int16Array", "Uint16Array", "Int32Array",
    "Uint32Array", "BigInt64Array", "BigUint64Array", "Float16Array", "Float32Array",
    "Float64Array", "DataView",
)


class Undefined:
    """JS `undefined` (distinct from `null`, which is `None`). Use the singleton `UNDEFINED`."""

    _instance: Undefined | None = None

    def __new__(cls) -> Undefined:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __bool__(self) -> bool:
        return False

    def __repr__(self) -> str:
        return "UNDEFINED"

    def __reduce__(self) -> str:
        return "UNDEFINED"


UNDEFINED = Undefined()


@dataclass(frozen=True)
class TypedArray:
    """A typed array or `DataView`: its constructor name (`kind`) and the bytes it views."""

    kind: str
    data: bytes

    def __post_init__(self) -> None:
        if self.kind not in TYPED_ARRAY_KINDS:
            raise ValueError(f"unknown typed array kind {self.kind!r}")


@dataclass
class JSMap:
    """A JS `Map`: its entries as (key, value) pairs in insertion order."""

    items: list[tuple[Any, Any]] = field(default_factory=list)


@dataclass
class JSSet:
    """A JS `Set`: its members in insertion order."""

    items: list[Any] = field(default_factory=list)


@dataclass
class Boxed:
    """A wrapper object (`new String('OK')`, `new Number(1)`, …) with its own enumerable
    properties, e.g. `{"__reply_type": "status"}` — RedisGears reads reply types from them.

    Kind "arraybuffer" builds an ArrayBuffer with extra properties (JS → Python gives `bytes`)."""

    kind: str  # "string" | "number" | "boolean" | "bigint" | "symbol" | "arraybuffer" (to JS only)
    value: Any
    props: dict[str, Any] = field(default_factory=dict)


# The binding converts to and from these classes but imports nothing from this package: it is
# handed them here, once.
_engine._init_types(undefined=UNDEFINED, typed_array=TypedArray, js_map=JSMap, js_set=JSSet, boxed=Boxed)
