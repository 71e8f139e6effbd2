"""The vendored rquickjs-sys is the pristine crate plus the patches of vendor/patches/, as
vendor/check.py checks it (see vendor/README.md)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CRATE = "rquickjs-sys-0.14.0.crate"


def check(vendor: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(vendor / "check.py"), *args],
                          capture_output=True, text=True, timeout=120)


def test_vendored_tree_is_the_pristine_crate_plus_the_patches() -> None:
    done = check(REPO / "vendor")
    assert done.returncode == 0, done.stdout + done.stderr
    patches = len(list((REPO / "vendor" / "patches").glob("*.patch")))
    assert done.stdout.endswith(f"plus {patches} patches\n")


def test_a_change_outside_the_patches_is_caught(tmp_path: Path) -> None:
    vendor = tmp_path / "vendor"
    shutil.copytree(REPO / "vendor", vendor)
    source = vendor / "rquickjs-sys" / "quickjs" / "dtoa.c"
    source.write_text(source.read_text() + "/* an edit that no patch explains */\n")
    done = check(vendor)
    assert done.returncode == 1
    assert done.stdout == ("differs from the pristine file (after taking the patches out): "
                           "quickjs/dtoa.c\n")


def test_pristine_record_is_the_published_crate() -> None:
    """pristine.sha256 against the crate itself, when cargo's cache has it (cargo does not
    fetch a crate that [patch.crates-io] replaces, so a fresh machine has not)."""
    cached = sorted(Path.home().glob(f".cargo/registry/cache/*/{CRATE}"))
    if not cached:
        pytest.skip(f"{CRATE} is not in cargo's cache; `python vendor/check.py --crate download`"
                    " checks against crates.io")
    done = check(REPO / "vendor", "--crate", str(cached[0]))
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.endswith("checked against the crate\n")
