"""What stage 2 logs per epoch beside its loss (METHOD.md section 5, "watch the temperatures").

Each function returns *terms*: name -> (sum, count) pairs of floats, which the loop adds up over an epoch's
batches and divides (``engine/epoch_terms.py``), so a mean over positives is exact however the positives fall
into batches. Everything is detached: these are readings, not losses.
"""

from __future__ import annotations

import torch

from ..engine.epoch_terms import Terms



def temperature_summary(name: str, t: torch.Tensor, batch: int) -> Terms:
    """Mean, min and max of a temperature vector; over an epoch, the average over its steps' values."""
    t = t.detach().float()
    return {f"{name}_{stat}": (float(value) * batch, float(batch))
            for stat, value in (("mean", t.mean()), ("min", t.min()), ("max", t.max()))}


def soft_gradient_opposes_bce(target: torch.Tensor, student_soft: torch.Tensor) -> torch.Tensor:
    """(N, K) bool: where the soft loss's gradient on the student's logit m_k points against the BCE's, on a positive.

    On a positive the BCE's gradient sigmoid(m) - 1 is negative (it raises m). Every soft loss here has a
    gradient on m_k with the sign of p'^S_k - target_k (temperatures positive): the L2 of Eq. 5,
    -(p'^T - p'^S) p'^S (1 - p'^S) / t (Eq. 9); the sigmoid cross-entropy, (p'^S - p'^T) / t; Hinton's,
    T (sigmoid(m / T) - q). So the two oppose exactly where the target is below the student's softened score.
    Callers select the positives.
    """
    return student_soft > target


def positive_readings(target: torch.Tensor, student_soft: torch.Tensor, labels: torch.Tensor) -> Terms:
    """On the batch's positives: the mean soft target, the mean softened student score, and the share of
    positives on which the soft gradient opposes the BCE (``soft_gradient_opposes_bce``)."""
    positive = labels > 0
    count = float(positive.sum())
    target, student_soft = target.detach().float(), student_soft.detach().float()
    return {
        "target_on_positives": (float(target[positive].sum()), count),
        "student_on_positives": (float(student_soft[positive].sum()), count),
        "opposing_share": (float(soft_gradient_opposes_bce(target, student_soft)[positive].sum()), count),
    }
