"""A damaged upstream output is removed, so that Snakemake and DVC both rerun the stage that made it.

Both tools rerun a stage whose output is missing; neither notices a file damaged after it was written
(Snakemake compares times, DVC only hashes on `dvc status`). A stage that finds one of its inputs damaged
therefore deletes that whole output (the folder, for folder outputs) before stopping, and says so.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Iterator

from .atomic import remove
from .errors import DamagedFile, UserError


@contextlib.contextmanager
def remade_if_damaged(producers: dict[Path, str]) -> Iterator[None]:
    """Run the block; a DamagedFile inside one of ``producers`` (output path -> the stage that writes it, as in
    dvc.yaml) removes that output and becomes one line saying which stage the next run redoes."""
    try:
        yield
    except DamagedFile as exc:
        damaged = Path(exc.path).resolve()
        for output, stage in producers.items():
            output = Path(output)
            if damaged == output.resolve() or output.resolve() in damaged.parents:
                remove(output)
                raise UserError(f"{exc}; removed {output}, so the next run remakes it (stage {stage})") from None
        raise
