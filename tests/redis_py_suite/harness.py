"""Run redis-py 5.0.8's own `tests/test_commands.py` against redis-server and jshost.

The suite comes from redis-py's source distribution on PyPI (`pip download --no-binary`) and
runs in a virtualenv of its own (redis-py 5.0.8 and the pytest it was released with), so the
project's test environment (a newer redis-py) is untouched. Both live in a cache folder
(`$XDG_CACHE_HOME/jshost/redis-py-5.0.8`, default `~/.cache/...`), built once under a file lock.

Three targets run the suite at the same time, each on servers of its own on free ports:

- `redis-server`: Debian's redis-server itself, the reference;
- `backend`: `jshost serve --backend` in front of another redis-server (with
  `admin-commands yes`: the suite is its operator and sends `MODULE`, `REPLICAOF`, …);
- `embedded`: `jshost serve` on its embedded store.

Failed tests are run once more (`rerun`), on the same servers, before they count as failed.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import fcntl
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tests.redis_server import REDIS_SERVER, RedisServer
from tests.server_fixture import JshostProcess

REDIS_PY_VERSION = "5.0.8"
# What redis-py 5.0.8's dev_requirements.txt pins for running its tests (`packaging` is imported
# by its conftest).
SUITE_REQUIREMENTS = ["pytest==7.2.0", "pytest-timeout==2.1.0", "packaging>=20.4"]
TEST_FILE = "tests/test_commands.py"
# Left out: T&F (tfunction/tfcall: the project's own tests cover them), and test_client_setinfo,
# which opens clients on localhost:6379 whatever --redis-url says (someone else's server, maybe).
KEYWORDS = "not tfunction and not tfcall and not test_client_setinfo"
# What redis-py's own CI leaves out of a standalone run: cluster-only and module tests, TLS, and
# the replica tests (they talk to a replica on the fixed port 6380).
MARKERS = "not replica and not onlycluster and not redismod and not ssl"
PER_TEST_TIMEOUT = 60  # seconds; a hung test fails instead of stopping the run
RUN_TIMEOUT = 900  # seconds for one target's whole run
TARGETS = ("redis-server", "backend", "embedded")

Outcome = str  # "passed", "failed", "error" or "skipped"
_WORST = {"passed": 0, "skipped": 1, "failed": 2, "error": 3}


class SuiteUnavailable(RuntimeError):
    """redis-py's suite could not be fetched or installed (no network, PyPI down, …)."""


def cache_dir() -> Path:
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "jshost" / f"redis-py-{REDIS_PY_VERSION}"


@dataclass
class Suite:
    """redis-py's unpacked source tree and the python of its own virtualenv."""

    source: Path
    python: Path


def prepare(cache: Path | None = None) -> Suite:
    """Fetch and install the suite once; later calls (from any process) reuse it."""
    cache = cache or cache_dir()
    cache.mkdir(parents=True, exist_ok=True)
    suite = Suite(cache / f"redis-{REDIS_PY_VERSION}", cache / "venv" / "bin" / "python")
    ready = cache / "ready"
    with open(cache / "lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another test run may be building it right now
        if not ready.exists():
            _build(cache, suite)
            ready.touch()
    return suite


def _build(cache: Path, suite: Suite) -> None:
    for stale in (suite.source, cache / "venv"):
        shutil.rmtree(stale, ignore_errors=True)
    with tempfile.TemporaryDirectory(dir=cache) as download:
        _run_or_raise(
            [sys.executable, "-m", "pip", "download", "-q", "--disable-pip-version-check",
             "--no-deps", "--no-binary", ":all:", "-d", download, f"redis=={REDIS_PY_VERSION}"],
            "download the redis-py sdist",
        )
        (sdist,) = Path(download).glob("redis-*.tar.gz")
        with tarfile.open(sdist) as archive:
            archive.extractall(cache, filter="data")
    _run_or_raise([sys.executable, "-m", "venv", str(cache / "venv")], "create its virtualenv")
    _run_or_raise(
        [str(suite.python), "-m", "pip", "install", "-q", "--disable-pip-version-check",
         *SUITE_REQUIREMENTS],
        "install its test requirements",
    )


def _run_or_raise(command: list[str], what: str) -> None:
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
    if done.returncode != 0:
        raise SuiteUnavailable(f"could not {what}: {done.stderr.strip()[-500:]}")


@dataclass
class TargetRun:
    """One target's results: outcome per test id (`Class::test_name[param]`)."""

    target: str
    outcomes: dict[str, Outcome] = field(default_factory=dict)
    rerun_passed: set[str] = field(default_factory=set)  # failed first, passed on the rerun
    log: str = ""
    seconds: float = 0.0  # the run's wall time, rerun included
    crashed: str = ""  # why the suite did not run at all (its last output lines)

    @property
    def passed(self) -> set[str]:
        return {test for test, outcome in self.outcomes.items() if outcome == "passed"}

    @property
    def failed(self) -> set[str]:
        return {t for t, outcome in self.outcomes.items() if outcome in ("failed", "error")}


def run_suite(suite: Suite, url: str, target: str, workdir: Path, protocol: int = 2) -> TargetRun:
    """The suite against `url` (its clients speaking RESP`protocol`), then its failures once
    more."""
    result = TargetRun(target)
    started = time.monotonic()
    first = _pytest(suite, url, workdir / f"{target}.xml", [TEST_FILE], protocol)
    result.outcomes = _outcomes(workdir / f"{target}.xml")
    result.log = first
    if not result.outcomes:  # e.g. its conftest could not read INFO: every test fails
        result.crashed = "\n".join(first.strip().splitlines()[-3:])
        result.seconds = time.monotonic() - started
        return result
    again = sorted(result.failed)
    if again:
        node_ids = [f"{TEST_FILE}::{test}" for test in again]
        result.log += _pytest(suite, url, workdir / f"{target}-rerun.xml", node_ids, protocol)
        for test, outcome in _outcomes(workdir / f"{target}-rerun.xml").items():
            if outcome == "passed":
                result.rerun_passed.add(test)
                result.outcomes[test] = "passed"
    result.seconds = time.monotonic() - started
    return result


def _pytest(suite: Suite, url: str, junit: Path, selection: list[str], protocol: int) -> str:
    command = [
        str(suite.python), "-m", "pytest", *selection, "-q", "-p", "no:cacheprovider",
        f"--redis-url={url}", f"--protocol={protocol}", "-k", KEYWORDS, "-m", MARKERS,
        f"--timeout={PER_TEST_TIMEOUT}",
        "-W", "ignore::pytest.PytestUnknownMarkWarning", f"--junitxml={junit}", "-rfE",
    ]
    done = subprocess.run(
        command, cwd=suite.source, capture_output=True, text=True, timeout=RUN_TIMEOUT,
        check=False,
    )
    return done.stdout + done.stderr


def _outcomes(junit: Path) -> dict[str, Outcome]:
    """Test id → outcome. A test appears twice when its teardown failed too: the worst wins."""
    if not junit.exists():
        return {}
    outcomes: dict[str, Outcome] = {}
    for case in ET.parse(junit).iter("testcase"):
        test = f"{case.get('classname', '').rsplit('.', 1)[-1]}::{case.get('name')}"
        tags = {child.tag for child in case}
        outcome = next((o for o in ("error", "failure", "skipped") if o in tags), "passed")
        outcome = "failed" if outcome == "failure" else outcome
        if _WORST[outcome] >= _WORST[outcomes.get(test, "passed")]:
            outcomes[test] = outcome
    return outcomes


@contextlib.contextmanager
def servers(workdir: Path, targets: Sequence[str] = TARGETS) -> Iterator[dict[str, str]]:
    """The targets' URLs, each server started on a free port and stopped afterwards."""
    if REDIS_SERVER is None:
        raise RuntimeError("redis-server is not on PATH (CI installs it with apt)")

    def redis_server(name: str) -> RedisServer:
        (workdir / name).mkdir(exist_ok=True)  # where the suite's SAVE writes dump.rdb
        return stack.enter_context(RedisServer("--dir", str(workdir / name)))

    with contextlib.ExitStack() as stack:
        urls = {}
        if "redis-server" in targets:
            urls["redis-server"] = redis_server("redis-server").url
        jshosts: dict[str, JshostProcess] = {}
        if "backend" in targets:
            behind = redis_server("backend")
            jshosts["backend"] = JshostProcess("--backend", behind.url, "--set",
                                               "admin-commands=yes")
        if "embedded" in targets:
            jshosts["embedded"] = JshostProcess()
        for target, jshost in jshosts.items():
            urls[target] = f"redis://127.0.0.1:{stack.enter_context(jshost).port}/0"
            # Its log, for a look at what went wrong (written when it has stopped).
            stack.callback(lambda t=target, j=jshost: (workdir / f"{t}-jshost.log").write_text(
                j.log()))
        yield urls


def run_all(
    suite: Suite, workdir: Path, targets: Sequence[str] = TARGETS, protocol: int = 2
) -> dict[str, TargetRun]:
    """The suite against the targets at once (each run mostly waits on its server)."""
    with servers(workdir, targets) as urls, concurrent.futures.ThreadPoolExecutor(len(urls)) as pool:
        futures = {
            target: pool.submit(run_suite, suite, url, target, workdir, protocol)
            for target, url in urls.items()
        }
        return {target: future.result() for target, future in futures.items()}
