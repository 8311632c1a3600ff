"""Write outputs under a temporary name and rename them into place.

Snakemake and DVC judge a stage by whether its outputs exist; an interrupted stage must therefore leave
nothing at the final path. The temporary path sits beside the final one so the rename stays on one file system;
a writer killed outright (SIGKILL) leaves its temporary behind, and the next write of the same path removes it.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import uuid
from pathlib import Path
from typing import Iterator


def remove(path: Path) -> None:
    """Delete a file, link or whole folder, if it is there."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


@contextlib.contextmanager
def atomic_path(final: str | Path) -> Iterator[Path]:
    """Yield a temporary sibling of ``final``; on success it replaces ``final`` (file or directory).

    On any exception the temporary path is removed and ``final`` is left as it was.
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    for stale in final.parent.glob(f".{glob.escape(final.name)}.tmp-*"):
        remove(stale)
    tmp = final.with_name(f".{final.name}.tmp-{uuid.uuid4().hex[:8]}")
    try:
        yield tmp
        if final.exists() and final.is_dir() and tmp.is_dir():
            remove(final)
        os.replace(tmp, final)
    except BaseException:
        remove(tmp)
        raise


def write_text_atomic(final: str | Path, text: str) -> None:
    with atomic_path(final) as tmp:
        tmp.write_text(text)
