"""Loss functions of the paper, as pure functions of tensors."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def per_image_sum(values: torch.Tensor) -> torch.Tensor:
    """The reduction of Eq. 10 and Eq. 5: summed over the K classes (last axis), averaged over the N images.

    Caffe's SigmoidCrossEntropyLoss (normalised by the batch) and EuclideanLoss, which the released code ran,
    reduce the same way; so do every soft loss here, so that lambda weighs them against the BCE as in Eq. 11.
    """
    return values.sum() / values.shape[0]


def hard_label_bce(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Eq. 10: L_p = -1/N sum_n [y log p + (1 - y) log(1 - p)], p = sigmoid(m), y and p vectors of K classes.

    Summed over the classes, averaged over the images (``per_image_sum``). Computed from logits for numerical
    stability.
    """
    return per_image_sum(F.binary_cross_entropy_with_logits(logits, labels, reduction="none"))
