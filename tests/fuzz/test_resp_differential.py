"""The native RESP layer against its oracle (the pure-Python one it replaced): the same inputs
give the same commands, replies, errors and bytes (see `tests.fuzz.resp_differential`).

A few thousand seeded cases here; ``python -m bench.fuzz --differential 100000`` runs many more.
"""

from __future__ import annotations

import pytest

from . import resp_differential as diff

#: Cases per kind in CI.
COUNTS = {
    "requests": 2000,
    "replies": 2000,
    "encoding": 1000,
    "doubles": 5000,
    "commands": 500,
    "split_args": 1000,
}


@pytest.mark.parametrize("kind", list(diff.CASES))
def test_native_resp_matches_the_oracle(kind: str) -> None:
    failures = diff.run(COUNTS[kind], seed=1000, kinds=(kind,))
    assert failures == [], f"{len(failures)} differences, the first: {failures[0]}"


def test_a_difference_is_reported() -> None:
    """The harness can fail: a parser that drops the last argument of every command is caught."""

    class Lossy(diff.native.RequestParser):
        def get_command(self):
            argv = super().get_command()
            return argv[:-1] if argv else argv

    original = diff.native.RequestParser
    diff.native.RequestParser = Lossy  # type: ignore[misc]
    try:
        failures = diff.run(50, seed=1, kinds=("requests",))
    finally:
        diff.native.RequestParser = original  # type: ignore[misc]
    assert failures and "requests differ" in failures[0]
