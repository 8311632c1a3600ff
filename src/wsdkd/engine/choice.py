"""Which epoch's weights a trainer writes, chosen the same way for every row of a comparison (issue 15).

``last`` (the default): the weights after the last epoch, what a fixed schedule that decays to zero is for.
``best_val``: the epoch of the highest validation mAP (the earliest of ties). The loop keeps that epoch's weights
in the run's resume folder (so a resumed run still has them) and the trainer loads them before writing.
"""

from __future__ import annotations

from pathlib import Path

import torch

from ..pipeline.atomic import atomic_path

CHOICES = ("last", "best_val")
BEST = "best.pt"
_MAP = "val/mAP"


def is_new_best(history: list[dict]) -> bool:
    """Whether the last epoch of ``history`` has a validation mAP above every earlier epoch's."""
    *earlier, last = history
    return _MAP in last and all(last[_MAP] > past[_MAP] for past in earlier)


def chosen_epoch(history: list[dict], choice: str) -> int:
    """The 1-based epoch whose weights ``choice`` writes."""
    if choice == "last" or not history:
        return len(history)
    if choice != "best_val":
        raise ValueError(f"model choice {choice!r} is not one of {', '.join(CHOICES)}")
    if any(_MAP not in record for record in history):
        raise ValueError("best_val needs a validation mAP every epoch; this trainer records none")
    return max(range(len(history)), key=lambda i: (history[i][_MAP], -i)) + 1


def keep(resume_dir: Path, model: torch.nn.Module, history: list[dict]) -> None:
    """After an epoch: save its weights as the best so far when they are."""
    if is_new_best(history):
        with atomic_path(resume_dir / BEST) as tmp:
            torch.save({"epoch": len(history), "model": model.state_dict()}, tmp)


def restore(resume_dir: Path, model: torch.nn.Module, history: list[dict], choice: str) -> int:
    """Load the chosen epoch's weights into ``model`` (a no-op for ``last``) and return that epoch."""
    epoch = chosen_epoch(history, choice)
    if epoch == len(history):
        return epoch
    saved = torch.load(resume_dir / BEST, map_location="cpu", weights_only=True)
    if saved["epoch"] != epoch:
        raise ValueError(f"{resume_dir / BEST}: holds epoch {saved['epoch']}, but the best on val is {epoch}")
    model.load_state_dict(saved["model"])
    return epoch
