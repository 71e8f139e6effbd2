"""`jshost/_engine.pyi` says what the built extension `jshost._engine` has, no more, no less.

mypy's stubtest imports the extension and compares every name, signature, property and class
flag with the stub: a method added to `native/src/` or dropped from it without the stub changing
fails here.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def test_the_stub_matches_the_extension(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "mypy.stubtest", "jshost._engine"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={**os.environ, "MYPY_CACHE_DIR": str(tmp_path / "mypy_cache")},
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
