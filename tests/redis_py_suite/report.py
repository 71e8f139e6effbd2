"""What a run of redis-py's suite means: the checks, the baseline and the differences file.

`known.toml` (hand-written) says why tests fail on jshost, which tests need per-user ACL (never
expected to pass through `--backend`: one backend user serves every client) and which are
timing-dependent. `baseline.json` (written by `python -m tests.redis_py_suite --record`) holds
the tests each target passed in the recorded run; jshost must not pass fewer.
"""

from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from tests.redis_py_suite.harness import REDIS_PY_VERSION, TARGETS, TargetRun

HERE = Path(__file__).resolve().parent
KNOWN = HERE / "known.toml"
BASELINE = HERE / "baseline.json"
DIFFERENCES = HERE.parents[1] / "docs" / "redis-py-suite.md"
EMBEDDED_SHARE = 0.85  # the embedded store passes at least this share of redis-server's passes


@dataclass
class Known:
    reasons: dict[str, str]  # test id → what jshost lacks (or does differently)
    per_user_acl: dict[str, str]  # test id → why it needs per-user ACL
    timing: dict[str, str]  # test id → why its outcome depends on timing
    notes: dict[str, str] = field(default_factory=dict)  # differences jshost does not cause

    @classmethod
    def load(cls, path: Path = KNOWN) -> Known:
        data = tomllib.loads(path.read_text())
        return cls(data.get("reasons", {}), data.get("per_user_acl", {}), data.get("timing", {}),
                   data.get("notes", {}))


def load_baseline(path: Path = BASELINE) -> dict[str, set[str]]:
    if not path.exists():
        return {target: set() for target in TARGETS}
    data = json.loads(path.read_text())
    return {target: set(data["passed"].get(target, [])) for target in TARGETS}


def write_baseline(runs: dict[str, TargetRun], path: Path = BASELINE) -> None:
    passed = {target: sorted(runs[target].passed) for target in TARGETS}
    data = {"redis_py": REDIS_PY_VERSION, "passed": passed}
    path.write_text(json.dumps(data, indent=1) + "\n")


def problems(
    runs: dict[str, TargetRun], baseline: dict[str, set[str]], known: Known
) -> list[str]:
    """Everything that makes the run fail, one line each (empty: the run is good)."""
    found = [f"{r.target}: the suite did not run:\n{r.crashed}" for r in runs.values() if r.crashed]
    reference = runs["redis-server"].passed
    timing = set(known.timing)
    for test in sorted(reference - runs["backend"].passed - set(known.per_user_acl) - timing):
        found.append(f"backend: {test} passes on redis-server, not through jshost --backend")
    for target in ("backend", "embedded"):
        for test in sorted(baseline[target] - runs[target].passed - timing):
            found.append(f"{target}: {test} passed in the recorded baseline, fails now")
        explained = set(known.reasons) | set(known.per_user_acl) | timing
        unexplained = reference - runs[target].passed - explained
        for test in sorted(unexplained):
            found.append(f"{target}: {test} fails with no reason in known.toml")
    # Counted over redis-server's passes: the embedded store claims 7.2, so it also runs tests
    # that redis-server 7.0 skips.
    share = len(runs["embedded"].passed & reference) / max(1, len(reference))
    if share < EMBEDDED_SHARE:
        found.append(
            f"embedded: passes {share:.0%} of redis-server's passes, less than {EMBEDDED_SHARE:.0%}"
        )
    return found


def summary(runs: dict[str, TargetRun]) -> str:
    return ", ".join(
        f"{t} {len(runs[t].passed)} passed ({runs[t].seconds:.0f} s)" for t in TARGETS
    )


_MARK = {"passed": "pass", "failed": "**fail**", "error": "**error**", "skipped": "skip"}


def differences(runs: dict[str, TargetRun], known: Known) -> str:
    """The differences file (markdown): every test whose outcome is not the same everywhere."""
    tests = sorted(set().union(*(run.outcomes for run in runs.values())))
    varying = [t for t in tests if len({runs[x].outcomes.get(t) for x in TARGETS}) > 1]
    counts = " | ".join(str(len(runs[t].passed)) for t in TARGETS)
    lines = [
        f"# redis-py {REDIS_PY_VERSION}'s test suite against jshost",
        "",
        "<!-- Written by `python -m tests.redis_py_suite --record`; the reasons come from",
        "     tests/redis_py_suite/known.toml. -->",
        "",
        f"`tests/test_redis_py_suite.py` runs redis-py {REDIS_PY_VERSION}'s own",
        "`tests/test_commands.py` (RESP2, `-k 'not tfunction and not tfcall'`, without the",
        "cluster, module, TLS and replica tests) against redis-server 7.0, `jshost serve",
        "--backend` in front of another redis-server (with `admin-commands yes`) and `jshost",
        "serve` on its embedded store, each started on a free port. Failures are run once more",
        "before they count. The test fails when a test that passes on redis-server fails through",
        "`--backend` (except those that need per-user ACL), when jshost passes a test of the",
        "recorded baseline no more, or when the embedded store passes less than",
        f"{EMBEDDED_SHARE:.0%} of redis-server's passes. `python -m tests.redis_py_suite",
        "--protocol 3` runs it over RESP3 (not in CI; the same tests passed when this was",
        "recorded).",
        "",
        "| | redis-server | backend | embedded |",
        "|---|---|---|---|",
        f"| passed (recorded run) | {counts} |",
        "",
        "## Tests that do not pass everywhere",
        "",
        "| test | redis-server | backend | embedded | why |",
        "|---|---|---|---|---|",
    ]
    for test in varying:
        marks = " | ".join(_MARK.get(runs[t].outcomes.get(test, ""), "-") for t in TARGETS)
        why = (known.per_user_acl.get(test) or known.reasons.get(test)
               or known.notes.get(test, ""))
        if test in known.timing:
            why = f"{why} (timing-dependent: {known.timing[test]})".strip()
        lines.append(f"| `{test}` | {marks} | {why} |")
    lines += ["", "## Timing-dependent tests", ""]
    lines += [f"- `{test}`: {why}" for test, why in sorted(known.timing.items())]
    return "\n".join(lines) + "\n"
