"""The proposals that stage 1 distils (Eq. 4, METHOD.md section 3): NMS on the objectness s', top M, recycled.

The teacher's objectness s' = sum over classes of S ranks the proposals; NMS at a low IoU (0.4 in the paper)
keeps spatially distinct ones, so the M selected RoIs cover different objects instead of M shifts of one.
Like the proposals store, a short list is padded to exactly M rows by repeating it from the top, with the
number of real rows recorded, so every image has the same shape in the cache and in a batch.
"""

from __future__ import annotations

import numpy as np
import torch
from torchvision.ops import nms


def select_proposals(boxes: np.ndarray, scores: np.ndarray, num_real: int, iou: float,
                     count: int) -> tuple[np.ndarray, int]:
    """Row indices (count,) int32 of the boxes kept, best s' first and recycled, and how many are distinct.

    ``boxes`` (N, 4) x1, y1, x2, y2 and ``scores`` (N,) s'; only the first ``num_real`` rows are considered
    (the rest are the proposals store's recycled copies). With no real row the indices are all 0 and the
    count is 0.
    """
    if num_real == 0:
        return np.zeros(count, np.int32), 0
    keep = nms(torch.as_tensor(boxes[:num_real], dtype=torch.float32),
               torch.as_tensor(scores[:num_real], dtype=torch.float32), iou).numpy()[:count]
    return keep[np.arange(count) % len(keep)].astype(np.int32), len(keep)
