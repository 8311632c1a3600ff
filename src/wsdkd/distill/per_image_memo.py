"""Per-(image, flip) tensors that do not change over a run, computed once and kept for later epochs.

Stage 1 and stage 2 read quantities of the frozen teacher that depend only on the image and its orientation:
its middle-layer maps (FitNets' hint, attention transfer; ``teacher_maps.py``) and the terms of Eq. 3 as a
quadratic form of the student's map (``FeatureStep``). Computing them once per image and flip saves their cost
in every later epoch. A memory budget bounds what is kept; past it the rest is computed on every batch.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch

GIB = 1024 ** 3


class PerImageMemo:
    """``memo(offset, indices, flips, compute, device)`` -> the batch's tensors, one per kind, stacked over its images.

    An image is (``offset`` + its row in ``indices``, its flip in ``flips``; None: unflipped); ``offset`` tells
    the splits' rows apart. ``compute(indices, flips)`` gets the images not kept yet (their rows and flips, in
    batch order) and returns one tensor per kind with them along its first axis. ``budget_gb`` bounds the bytes
    kept (0: nothing, ``compute`` runs on every batch).
    """

    def __init__(self, budget_gb: float) -> None:
        self.budget, self.kept_bytes = int(budget_gb * GIB), 0
        self.kept: dict[tuple[int, bool], list[torch.Tensor]] = {}
        self.computed = 0  # images ``compute`` has run on: what keeping saves shows here

    def _keep(self, key: tuple[int, bool], tensors: list[torch.Tensor]) -> list[torch.Tensor]:
        size = sum(t.numel() * t.element_size() for t in tensors)
        if self.kept_bytes + size > self.budget:
            return tensors
        # A copy, not a view: a view would keep the whole batch's tensor alive.
        self.kept[key] = [t.clone() for t in tensors]
        self.kept_bytes += size
        return self.kept[key]

    def __call__(self, offset: int, indices: np.ndarray, flips: torch.Tensor | None,
                 compute: Callable[[np.ndarray, torch.Tensor | None], list[torch.Tensor]],
                 device: torch.device) -> list[torch.Tensor]:
        flipped = flips.tolist() if flips is not None else [False] * len(indices)
        keys = [(offset + int(i), bool(f)) for i, f in zip(indices, flipped)]
        per_image: list[list[torch.Tensor] | None] = [self.kept.get(key) for key in keys]
        missing = np.array([n for n, tensors in enumerate(per_image) if tensors is None], dtype=np.int64)
        if len(missing):
            fresh = compute(indices[missing], flips[missing] if flips is not None else None)
            self.computed += len(missing)
            for j, n in enumerate(missing):
                per_image[n] = self._keep(keys[n], [kind[j] for kind in fresh])
        return [torch.stack([tensors[kind] for tensors in per_image]).to(device) for kind in range(len(per_image[0]))]

