"""The frozen teacher's middle-layer maps of a batch, computed once per (image, flip) and kept for later epochs.

FitNets' hint (stage 1) and attention transfer (stage 2) read the teacher's maps at chosen strides for every
batch. The teacher is frozen and in eval mode, so the map of one image in one orientation is the same in every
epoch; running the teacher's body on every batch made an epoch of these rows cost about six of a plain student's.
Keeping what the loss reads (the maps, or only their attention maps) runs the body about once per image and
orientation over a whole run (``per_image_memo.py``). A memory budget bounds what is kept; past it the rest is
computed online as before.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch

from ..backbones.taps import Taps
from ..teacher.targets import TeacherTargets
from ..teacher.wsddn import TWDet
from .per_image_memo import PerImageMemo


class TeacherMaps:
    """``maps(targets, offset, indices, flips, device)`` -> one tensor per stride, ``reduce`` applied to each.

    ``offset`` tells the split's rows apart (the training rows of train and val share one index space);
    ``budget_gb`` is how much may be kept (0: nothing, the teacher runs on every batch).
    """

    def __init__(self, teacher: TWDet, strides: list[int], budget_gb: float,
                 reduce: Callable[[torch.Tensor], torch.Tensor] = lambda x: x) -> None:
        self.teacher, self.taps, self.reduce = teacher, Taps(teacher.body, strides), reduce
        self.memo = PerImageMemo(budget_gb)

    def _run(self, targets: TeacherTargets, indices: np.ndarray, flips: torch.Tensor | None,
             device: torch.device) -> list[torch.Tensor]:
        images = targets.teacher_inputs(indices, flips, device)
        with torch.no_grad(), self.taps.recording(images):
            self.teacher.body(images)
        return [self.reduce(m.float()) for m in self.taps.maps]

    def __call__(self, targets: TeacherTargets, offset: int, indices: np.ndarray, flips: torch.Tensor | None,
                 device: torch.device) -> list[torch.Tensor]:
        return self.memo(offset, indices, flips, lambda rows, turned: self._run(targets, rows, turned, device), device)
