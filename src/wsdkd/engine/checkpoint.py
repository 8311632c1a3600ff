"""Per-epoch checkpoints: everything needed to continue a run bit-for-bit (CPU, fixed seed)."""

from __future__ import annotations

import logging
import random
from pathlib import Path

import numpy as np
import torch

from ..pipeline.atomic import atomic_path
from .model_file import weight_mismatches

log = logging.getLogger(__name__)

LAST = "last.pt"
_KEYS = {"model", "optimizer", "scheduler", "rng", "flip_rng", "history", "epoch"}


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


def _misfits(state: object, model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> list[str]:
    if not isinstance(state, dict) or not _KEYS <= set(state):
        return ["not a training checkpoint"]
    problems = weight_mismatches(model, state["model"])
    groups = [len(group["params"]) for group in state["optimizer"]["param_groups"]]
    expected = [len(group["params"]) for group in optimizer.param_groups]
    if groups != expected:
        problems.append(f"optimiser has parameter groups of sizes {groups}, expected {expected}")
    return problems


def load_last(directory: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> dict | None:
    """The last checkpoint in ``directory`` if it fits ``model`` and ``optimizer``, else None.

    A damaged or misfitting file (truncated, or from code that built another model) is named in a warning and
    deleted, and training starts afresh: never from a state that does not belong to this run.
    """
    path = directory / LAST
    if not path.is_file():
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
        problems = _misfits(state, model, optimizer)
    except Exception as exc:  # a truncated zip, a pickle error, ...
        problems = [f"unreadable ({type(exc).__name__})"]
    if problems:
        log.warning("%s: checkpoint discarded, training starts afresh: %s", path, "; ".join(problems[:3]))
        path.unlink()
        return None
    return state
