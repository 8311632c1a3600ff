"""The frozen teacher's middle-layer maps of a batch, computed once per (image, flip) and kept for later epochs.

FitNets' hint (stage 1) and attention transfer (stage 2) read the teacher's maps at chosen strides for every
batch. The teacher is frozen and in eval mode, so the map of one image in one orientation is the same in every
epoch; running the teacher's body on every batch made an epoch of these rows cost about six of a plain student's.
Keeping what the loss reads (the maps, or only their attention maps) runs the body about once per image and
orientation over a whole run. A memory budget bounds what is kept; past it the rest is computed online as before.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch

from ..backbones.taps import Taps
from ..teacher.targets import TeacherTargets
from ..teacher.wsddn import TWDet

GIB = 1024 ** 3


class TeacherMaps:
    """``maps(targets, offset, indices, flips, device)`` -> one tensor per stride, ``reduce`` applied to each.

    ``offset`` tells the split's rows apart (the training rows of train and val share one index space);
    ``budget_gb`` is how much may be kept (0: nothing, the teacher runs on every batch).
    """

    def __init__(self, teacher: TWDet, strides: list[int], budget_gb: float,
                 reduce: Callable[[torch.Tensor], torch.Tensor] = lambda x: x) -> None:
        self.teacher, self.taps, self.reduce = teacher, Taps(teacher.body, strides), reduce
        self.budget, self.kept_bytes = int(budget_gb * GIB), 0
        self.kept: dict[tuple[int, bool], list[torch.Tensor]] = {}
        self.teacher_images = 0  # images the body has run on: what keeping saves shows here

    def _run(self, targets: TeacherTargets, indices: np.ndarray, flips: torch.Tensor | None,
             device: torch.device) -> list[torch.Tensor]:
        images = targets.teacher_inputs(indices, flips, device)
        with torch.no_grad(), self.taps.recording(images):
            self.teacher.body(images)
        self.teacher_images += len(indices)
        return [self.reduce(m.float()) for m in self.taps.maps]

    def _keep(self, key: tuple[int, bool], maps: list[torch.Tensor]) -> list[torch.Tensor]:
        size = sum(m.numel() * m.element_size() for m in maps)
        if self.kept_bytes + size > self.budget:
            return maps
        # A copy, not a view: a view would keep the whole batch's tensor alive.
        self.kept[key] = [m.clone() for m in maps]
        self.kept_bytes += size
        return self.kept[key]

    def __call__(self, targets: TeacherTargets, offset: int, indices: np.ndarray, flips: torch.Tensor | None,
                 device: torch.device) -> list[torch.Tensor]:
        flipped = flips.tolist() if flips is not None else [False] * len(indices)
        keys = [(offset + int(i), bool(f)) for i, f in zip(indices, flipped)]
        per_image: list[list[torch.Tensor] | None] = [self.kept.get(key) for key in keys]
        missing = [n for n, maps in enumerate(per_image) if maps is None]
        if missing:
            fresh = self._run(targets, indices[missing], flips[missing] if flips is not None else None, device)
            for j, n in enumerate(missing):
                per_image[n] = self._keep(keys[n], [layer[j] for layer in fresh])
        return [torch.stack([maps[layer] for maps in per_image]).to(device)
                for layer in range(len(self.taps.strides))]
