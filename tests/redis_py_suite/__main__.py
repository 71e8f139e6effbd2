"""`python -m tests.redis_py_suite [--record]`: run redis-py's suite against the three targets
and print what differs; `--record` also rewrites the baseline and docs/redis-py-suite.md."""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from tests.redis_py_suite.harness import TARGETS, prepare, run_all
from tests.redis_py_suite.report import (
    DIFFERENCES,
    Known,
    differences,
    load_baseline,
    problems,
    summary,
    write_baseline,
)


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.redis_py_suite")
    parser.add_argument("--record", action="store_true", help="rewrite the baseline and docs")
    parser.add_argument("--keep", type=Path, help="keep the junit files and logs in this folder")
    parser.add_argument(
        "--only", choices=TARGETS, action="append", help="run against this target only"
    )
    parser.add_argument(
        "--protocol", type=int, choices=(2, 3), default=2,
        help="the suite's clients speak RESP2 (default; the recorded baseline) or RESP3",
    )
    args = parser.parse_args()
    if (args.only or args.protocol != 2) and args.record:
        parser.error("--record needs every target, over RESP2")
    suite = prepare()
    with tempfile.TemporaryDirectory() as scratch:
        workdir = args.keep or Path(scratch)
        workdir.mkdir(parents=True, exist_ok=True)
        runs = run_all(suite, workdir, args.only or TARGETS, args.protocol)
        for run in runs.values():
            (workdir / f"{run.target}.log").write_text(run.log)
    known = Known.load()
    if args.only or args.protocol != 2:  # exploring: outcomes only
        for run in runs.values():
            print(f"{run.target}: {len(run.passed)} passed ({run.seconds:.0f} s) {run.crashed}")
            print("  not passed:", " ".join(sorted(run.failed)))
        return 0
    print(summary(runs))
    for run in runs.values():
        if run.rerun_passed:
            print(f"{run.target}: passed on the rerun: {', '.join(sorted(run.rerun_passed))}")
    found = problems(runs, load_baseline(), known)
    print("\n".join(found) or "no problems")
    if args.record:
        write_baseline(runs)
        DIFFERENCES.write_text(differences(runs, known))
        reference = runs["redis-server"].passed
        stale = sorted(t for t in known.reasons if all(t in runs[x].passed for x in runs))
        if stale:
            print("known.toml gives reasons for tests that pass everywhere now:", *stale)
        print(f"recorded; {len(reference)} tests pass on redis-server")
    return 1 if found and not args.record else 0


if __name__ == "__main__":
    sys.exit(main())
