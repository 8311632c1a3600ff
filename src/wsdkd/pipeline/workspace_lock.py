"""One pipeline run per workspace: Snakemake takes the lock that `dvc repro` holds, so neither overwrites the other.

DVC holds ``.dvc/tmp/lock`` (an flock, through zc.lockfile) for the whole of ``dvc repro``. The Snakefile takes
the same flock before its first job and keeps it until its last, so a second run of either tool is refused
before it touches a file: Snakemake by :meth:`WorkspaceLock.acquire` (one line naming the holder), DVC by its own
"Unable to acquire lock". An flock dies with its process, so a killed run never leaves a stale lock.
Holders write " <pid>" in the file (zc.lockfile's format); ours adds " snakemake", so a refusal can name the tool.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from .errors import UserError

DVC_LOCK = Path(".dvc") / "tmp" / "lock"
_OURS = "snakemake"


def _holder(text: str) -> str:
    words = text.split()
    if not words:
        return "another process"
    tool = "another snakemake run" if _OURS in words[1:] else "dvc"
    return f"{tool} (pid {words[0]})"


class WorkspaceLock:
    """DVC's workspace lock held by this process until :meth:`release` (or until the process ends)."""

    def __init__(self, root: str | Path = ".") -> None:
        self.path = Path(root) / DVC_LOCK
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock, or raise UserError naming who holds it; never waits."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(os.pread(fd, 256, 0).decode(errors="replace"))
            os.close(fd)
            raise UserError(f"{self.path}: the workspace is in use by {holder}; nothing was run or overwritten "
                            f"(wait for it to finish)") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f" {os.getpid()} {_OURS}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor drops the flock
            self._fd = None

