"""Loss functions of the paper, as pure functions of tensors."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def hard_label_bce(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Eq. 10: L_p = -1/N sum_n [y log p + (1 - y) log(1 - p)], p = sigmoid(m), averaged over the K classes too.

    Computed from logits for numerical stability.
    """
    return F.binary_cross_entropy_with_logits(logits, labels, reduction="mean")
