"""Check that the vendored rquickjs-sys is the pristine crate plus our patches (vendor/README.md).

    python vendor/check.py                    # vendored tree - patches = pristine.sha256
    python vendor/check.py --crate FILE.crate # also: pristine.sha256 is that crate's content
    python vendor/check.py --crate download   # the same, with the crate fetched from crates.io

The first form needs no network: it copies vendor/rquickjs-sys/ to a temporary directory,
takes the patches of vendor/patches/ out again (`git apply -R`, last patch first) and compares
every file with the SHA-256 that pristine.sha256 records for it; the file sets must match too.
The second form checks the record itself against the published crate (its own SHA-256 first,
which is the checksum of the crates.io index). `--write FILE.crate` rewrites pristine.sha256 from
a crate, for the files vendored now (after an update; then run the check).
Exit status 0 when everything matches; the differences are printed otherwise.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import urllib.request
from pathlib import Path

VENDOR = Path(__file__).resolve().parent
CRATE = "rquickjs-sys"
VERSION = "0.14.0"
TREE = VENDOR / CRATE
PATCHES = VENDOR / "patches"
MANIFEST = VENDOR / "pristine.sha256"
CRATE_URL = f"https://static.crates.io/crates/{CRATE}/{CRATE}-{VERSION}.crate"


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def read_manifest() -> tuple[str, dict[str, str]]:
    """(the crate's SHA-256, {path in the crate: SHA-256 of the pristine file})."""
    crate_sha, files = "", {}
    for line in MANIFEST.read_text(encoding="utf-8").splitlines():
        if line.startswith("# crate sha256 "):
            crate_sha = line.split()[-1]
        elif line and not line.startswith("#"):
            digest, path = line.split(maxsplit=1)
            files[path] = digest
    return crate_sha, files


def tree_files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes()
            for p in sorted(root.rglob("*")) if p.is_file()}


def unpatched_tree() -> dict[str, bytes]:
    """The vendored tree with every patch taken out again."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / CRATE
        shutil.copytree(TREE, root)
        # Outside any repository, `git apply` patches files relative to its working directory.
        env = {**os.environ, "GIT_CEILING_DIRECTORIES": tmp}
        for patch in sorted(PATCHES.glob("*.patch"), reverse=True):
            done = subprocess.run(["git", "apply", "-R", str(patch)], cwd=root, env=env,
                                  capture_output=True, text=True)
            if done.returncode != 0:
                raise SystemExit(f"{patch.name} does not come out of the vendored tree:\n"
                                 f"{done.stderr}")
        return tree_files(root)


def crate_files(crate: bytes) -> dict[str, bytes]:
    """The files of a .crate (a gzipped tar of `<name>-<version>/...`)."""
    prefix = f"{CRATE}-{VERSION}/"
    files = {}
    with tarfile.open(fileobj=io.BytesIO(crate), mode="r:gz") as tar:
        for member in tar.getmembers():
            if member.isfile() and member.name.startswith(prefix):
                extracted = tar.extractfile(member)
                assert extracted is not None
                files[member.name[len(prefix):]] = extracted.read()
    return files


def load_crate(where: str) -> bytes:
    if where == "download":
        with urllib.request.urlopen(CRATE_URL, timeout=60) as response:
            return bytes(response.read())
    return Path(where).read_bytes()


def check_tree() -> list[str]:
    """Differences between (vendored tree - patches) and the manifest."""
    _, expected = read_manifest()
    found = {path: sha256(data) for path, data in unpatched_tree().items()}
    problems = [f"not in pristine.sha256: {path}" for path in sorted(found.keys() - expected)]
    problems += [f"missing from the vendored tree: {path}"
                 for path in sorted(expected.keys() - found)]
    problems += [f"differs from the pristine file (after taking the patches out): {path}"
                 for path in sorted(found.keys() & expected) if found[path] != expected[path]]
    return problems


def check_crate(crate: bytes) -> list[str]:
    """Differences between the manifest and the crate itself."""
    crate_sha, expected = read_manifest()
    if sha256(crate) != crate_sha:
        return [f"the crate's SHA-256 is {sha256(crate)}, pristine.sha256 says {crate_sha}"]
    files = crate_files(crate)
    problems = [f"not in the crate: {path}" for path in sorted(expected.keys() - files)]
    problems += [f"pristine.sha256 is wrong for {path}" for path in sorted(expected.keys() & files)
                 if sha256(files[path]) != expected[path]]
    return problems


def write_manifest(crate: bytes) -> None:
    files = crate_files(crate)
    lines = [f"# {CRATE} {VERSION}, {CRATE_URL}",
             f"# crate sha256 {sha256(crate)}",
             "# The vendored files as the crate has them (see vendor/README.md, vendor/check.py)."]
    for path in sorted(tree_files(TREE)):
        lines.append(f"{sha256(files[path])}  {path}")
    MANIFEST.write_text("\n".join(lines) + "\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--crate", help="a .crate file, or 'download' (from crates.io)")
    parser.add_argument("--write", metavar="CRATE", help="rewrite pristine.sha256 from a .crate")
    args = parser.parse_args(argv)
    if args.write:
        write_manifest(load_crate(args.write))
    problems = check_tree()
    if args.crate:
        problems += check_crate(load_crate(args.crate))
    for problem in problems:
        print(problem)
    if not problems:
        print(f"vendor/{CRATE}: the pristine {CRATE} {VERSION} plus "
              f"{len(list(PATCHES.glob('*.patch')))} patches"
              + (", checked against the crate" if args.crate else ""))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
