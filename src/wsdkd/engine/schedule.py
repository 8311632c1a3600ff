"""The learning-rate schedule, the same for every row of a comparison (issue 15).

``cosine`` (the default): a linear warm-up over ``warmup_epochs``, then a cosine decay that would reach zero at
the end of the last epoch. It depends only on the epoch, never on the row's own losses, so every row of a table
(whatever its soft term) trains with the same learning rates. ``plateau``: the paper's rule, the LR divided by
``lr_decay_factor`` when the validation loss has not improved for ``lr_patience`` epochs; its epochs differ per
row, so it is kept as a switch, not for comparisons. ``constant``: the LR never changes (the paper's stage 1,
"lr 1e-5 fixed"), the same for every row too.
"""

from __future__ import annotations

import math
from functools import partial

import torch

from ..pipeline.errors import UserError

SCHEDULES = ("cosine", "plateau", "constant")


def warmup_cosine_factor(epoch: int, warmup_epochs: int, epochs: int) -> float:
    """The LR of 0-based ``epoch`` as a fraction of the base LR.

    Warm-up epochs e < W get (e + 1) / (W + 1), so the first step is already small but not zero; from epoch W on,
    0.5 (1 + cos(pi (e - W) / (epochs - W))): 1 at e = W, falling towards 0 at e = epochs, which is never trained. A run
    no longer than its warm-up (the few-epoch test runs) is all warm-up.
    """
    if epoch >= epochs:  # the scheduler's step after the last epoch asks; nothing trains at it
        return 0.0
    if epoch < warmup_epochs:
        return (epoch + 1) / (warmup_epochs + 1)
    return 0.5 * (1.0 + math.cos(math.pi * (epoch - warmup_epochs) / (epochs - warmup_epochs)))


def build(optimizer: torch.optim.Optimizer, cfg: dict, epochs: int, where: str):
    """The scheduler ``cfg`` names (keys ``schedule``, ``warmup_epochs``, ``lr_decay_factor``, ``lr_patience``).

    Every parameter group keeps its ratio to the others (a group's own ``lr`` is scaled by the same factor).
    ``constant`` has no scheduler (None).
    """
    if cfg["schedule"] not in SCHEDULES:
        raise UserError(f"{where}.schedule: {cfg['schedule']!r} is not one of {', '.join(SCHEDULES)}")
    if cfg["schedule"] == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, factor=cfg["lr_decay_factor"],
                                                          patience=cfg["lr_patience"])
    if cfg["schedule"] == "constant":
        return None  # the loop steps no scheduler
    factor = partial(warmup_cosine_factor, warmup_epochs=cfg["warmup_epochs"], epochs=epochs)
    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


# The term the LR plateau watches when the step reports it: the classification loss L_p (Algorithm 1 stops on
# it), never a total whose soft term the learnable temperatures can move. Stage 1 reports none: its own loss.
PLATEAU_TERM = "bce"


def advance(scheduler, record: dict) -> None:
    """Step ``scheduler`` after an epoch: the plateau rule reads the epoch's validation classification loss
    (``PLATEAU_TERM``, else the validation loss), the cosine none."""
    if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
        if "val/loss" in record:
            scheduler.step(record.get(f"val/{PLATEAU_TERM}", record["val/loss"]))
    else:
        scheduler.step()
