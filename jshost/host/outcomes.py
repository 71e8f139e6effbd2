"""How a trigger run ends: a `Done` callback, called once, with None or the error it records."""

from __future__ import annotations

from collections.abc import Callable

from jshost import errors
from jshost.host.library import RecordedError

TERMINATED = RecordedError(errors.EXECUTION_TERMINATED, errors.EXECUTION_TERMINATED)
UNREGISTERED = RecordedError(errors.FUNCTION_WERE_UNREGISTERED, errors.FUNCTION_WERE_UNREGISTERED)

#: What a run reports when it ends: None for success, else its error.
Done = Callable[[RecordedError | None], None]


def text_or_none(data: bytes) -> str | None:
    """`data` as a string, or None if it is not UTF-8 (`key`, `stream_name`, `record`)."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def once(done: Done) -> Done:
    """`done`, called at most once (a run can end by settling or by being stopped)."""
    called = False

    def call(error: RecordedError | None) -> None:
        nonlocal called
        if not called:
            called = True
            done(error)

    return call
