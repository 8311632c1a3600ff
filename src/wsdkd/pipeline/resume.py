"""Where long stages keep the partial work they resume from.

Snakemake and DVC both delete a stage's declared outputs before rerunning it, so checkpoints and finished
shards live outside them, under ``.checkpoints/<stage>/<fingerprint>/``. The fingerprint hashes everything
that determines the result (params, input identities), so a run only resumes work made by the same config.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path


def checkpoint_root() -> Path:
    return Path(os.environ.get("WSDKD_CHECKPOINTS", ".checkpoints"))


def fingerprint(*parts: object) -> str:
    """A short stable hash of JSON-serialisable ``parts``."""
    blob = json.dumps(parts, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def file_digest(path: Path) -> str:
    """What identifies an upstream file in a fingerprint: its content, not its path or time."""
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def resume_dir(stage: str, key: str) -> Path:
    """The resume folder of ``stage`` for config ``key``; folders of other configs of that stage are removed."""
    stage_dir = checkpoint_root() / stage
    if stage_dir.is_dir():
        for other in stage_dir.iterdir():
            if other.name != key:
                shutil.rmtree(other, ignore_errors=True)
    path = stage_dir / key
    path.mkdir(parents=True, exist_ok=True)
    return path


def clear(stage: str) -> None:
    """Drop a stage's resume state once its outputs are complete."""
    shutil.rmtree(checkpoint_root() / stage, ignore_errors=True)
