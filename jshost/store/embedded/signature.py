"""fakeredis `Signature`s for the commands jshost adds to the embedded store."""

from __future__ import annotations

from fakeredis._commands import Signature


def signature(name: str, func_name: str, fixed: tuple[object, ...],
              repeat: tuple[object, ...] = (), flags: str = "") -> Signature:
    """A fakeredis `Signature` (its argument types are classes or `Key` instances)."""
    # fakeredis annotates `fixed` and `repeat` as 1-tuples of types (`tuple[X]`, not
    # `tuple[X, ...]`), which no other signature here fits.
    return Signature(name, func_name, fixed, repeat, flags=flags)  # type: ignore[arg-type]
