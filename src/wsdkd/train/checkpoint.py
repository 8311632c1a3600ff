"""Per-epoch checkpoints: everything needed to continue a run bit-for-bit (CPU, fixed seed)."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import torch

from ..atomic import atomic_path
from ..errors import UserError

LAST = "last.pt"


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def rng_state() -> dict:
    return {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])


def save(directory: Path, state: dict) -> None:
    with atomic_path(directory / LAST) as tmp:
        torch.save(state, tmp)


def load_last(directory: Path) -> dict | None:
    """The last checkpoint in ``directory``, or None. A damaged file is named and discarded, never used."""
    path = directory / LAST
    if not path.is_file():
        return None
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # a truncated zip, a pickle error, ...
        path.unlink()
        raise UserError(f"{path}: damaged checkpoint removed ({type(exc).__name__}); rerun to start this stage afresh") from None
