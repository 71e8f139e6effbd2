"""`jshost serve --load DIR [--watch]`: load a folder of libraries at start, reload on change.

    loader = LibraryFolder(host, Path("libs"))
    loader.load_all()                 # every *.js, in name order; a failure is logged, skipped
    task = asyncio.create_task(loader.watch())   # with --watch: poll every 0.5 s

A file is loaded with upgrade semantics (`RG.FUNCTION LOAD UPGRADE` / `TFUNCTION LOAD
REPLACE`), so a library already kept by the store (`--dir`, `--backend`) is replaced by the
folder's version, and a changed file replaces its library while the server runs. A load that
fails (syntax, top level throws, nothing registered) is logged and changes nothing: the old
library keeps serving. A file that disappears leaves its library loaded.

The API era of a file is guessed from the registration calls it makes: the tf names
(`redis.registerFunction`, ...) mean `tf`, anything else `rg`.

The watcher polls (modification time, size and inode, then the content) rather than using
inotify: it is portable, needs no dependency and 0.5 s is quick enough for a development loop.
"""

from __future__ import annotations

import asyncio
import logging
import re
from dataclasses import dataclass
from pathlib import Path

from jshost.errors import CliErrors, Era, ReplyError
from jshost.host import Host

log = logging.getLogger("jshost.library_folder")

#: Seconds between two looks at the folder.
POLL_INTERVAL = 0.5

_TF_API = re.compile(
    r"\bredis\s*\.\s*(registerFunction|registerAsyncFunction|registerKeyspaceTrigger|"
    r"registerStreamTrigger|registerClusterFunction)\b"
)


def detect_era(code: str) -> Era:
    """`tf` when the code calls a tf registration function, else `rg`."""
    return "tf" if _TF_API.search(code) else "rg"


@dataclass(frozen=True)
class _Seen:
    """What was last seen of a file: its stat signature and the text that was loaded."""

    signature: tuple[int, int, int]
    code: str | None


def _signature(path: Path) -> tuple[int, int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size, st.st_ino)


class LibraryFolder:
    """The `*.js` files of one folder, loaded into a host (see the module docstring)."""

    def __init__(self, host: Host, folder: Path, interval: float = POLL_INTERVAL) -> None:
        self.host = host
        self.folder = folder
        self.interval = interval
        self._seen: dict[Path, _Seen] = {}

    def files(self) -> list[Path]:
        return sorted(p for p in self.folder.glob("*.js") if p.is_file())

    def load_all(self) -> int:
        """Load every file once; returns how many loaded."""
        files = self.files()
        if not files:
            log.warning(CliErrors.LOAD_DIR_EMPTY.format(path=self.folder))
        return sum(self._load(path, _signature(path), initial=True) for path in files)

    def poll(self) -> int:
        """One look at the folder: (re)load each new or changed file; returns how many loaded."""
        loaded = 0
        for path in self.files():
            signature = _signature(path)
            seen = self._seen.get(path)
            if signature is None or (seen is not None and seen.signature == signature):
                continue
            loaded += self._load(path, signature, initial=False)
        return loaded

    async def watch(self) -> None:
        """Poll forever (until cancelled)."""
        while True:
            await asyncio.sleep(self.interval)
            try:
                self.poll()
            except Exception:  # never let one bad look end the watcher
                log.exception("watching %s failed", self.folder)

    def _load(self, path: Path, signature: tuple[int, int, int] | None, *, initial: bool) -> bool:
        if signature is None:
            return False
        seen = self._seen.get(path)
        try:
            code = path.read_bytes().decode("utf-8")
        except OSError as exc:
            log.error(CliErrors.CANNOT_READ.format(path=path, reason=exc.strerror or exc))
            return False
        except UnicodeDecodeError:
            self._seen[path] = _Seen(signature, seen.code if seen else None)
            log.error(CliErrors.NOT_UTF8.format(path=path))
            return False
        if seen is not None and seen.code == code:  # touched, not changed
            self._seen[path] = _Seen(signature, code)
            return False
        era = detect_era(code)
        try:
            name = self.host.load(code, None, True, era)
        except ReplyError as exc:
            # Remember the signature so that a broken file is not retried every poll, and keep
            # the code still serving (putting that text back then needs no reload).
            self._seen[path] = _Seen(signature, seen.code if seen else None)
            if initial:
                log.error("could not load %s, skipped: %s", path, exc.text)
            else:
                log.error("could not reload %s, the previous version keeps serving: %s",
                          path, exc.text)
            return False
        self._seen[path] = _Seen(signature, code)
        log.info("%s %s as library %s (%s API)", "loaded" if initial else "reloaded", path,
                 name, era)
        return True
