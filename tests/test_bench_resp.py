"""`python -m bench.bench_resp` stays runnable: a tiny run prints every row, old and new."""

from __future__ import annotations

import pytest

from bench import bench_resp


def test_bench_resp_prints_old_and_new_for_every_row(capsys: pytest.CaptureFixture[str]) -> None:
    bench_resp.main(["--runs", "1", "--n", "3"])
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("  ")]
    assert len(rows) == 2 + len(bench_resp.REPLIES) + 6
    assert all(" old " in row and " new " in row for row in rows)
    assert sum(" batch " in row for row in rows) == 2
