"""What distillation reads of the teacher for a batch of one split's images (METHOD.md sections 3-5).

Everything comes from the teacher cache (``cache.py``) by the image's index in the split, whose order the
cache keeps: the logits M^c, M^d that stage 2 softens, and for stage 1 the RoIs (the NMS-selected rows, or all
proposals as in the released code) with their weights. Stage 1 also needs the teacher's RoI features: from the
cache when it holds them, else from the frozen teacher run online on the batch's images at the caching scale.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..data.images import SquareImages
from ..data.manifest import Split
from ..pipeline.errors import DamagedFile, UserError
from .cache import TeacherCache
from .inputs import boxes_to_input, resize_and_flip
from .wsddn import TWDet

ROI_SOURCES = ("selected", "all")  # paper: NMS on s', top M | released code: every EdgeBoxes proposal
ROI_WEIGHTS = ("objectness", "prior", "none")  # paper: s' | released code: the proposals' scores | Table 4 row


@dataclass
class RoiBatch:
    """Stage 1's RoIs of a batch: boxes (B, R, 4) in original pixels, weights (B, R) or None, valid (B, R)."""

    boxes: torch.Tensor
    weights: torch.Tensor | None
    valid: torch.Tensor
    prior: torch.Tensor  # (B, R) the proposals' scores s_R, which the teacher's head multiplies in (Eq. 2)


class TeacherTargets:
    """One split's teacher outputs, read per batch; ``teacher`` (frozen) is needed only for online features."""

    def __init__(self, cache_path: Path, split: Split, teacher: TWDet | None = None) -> None:
        self.split, self.teacher = split, teacher
        self.cache = TeacherCache(cache_path)
        if not np.array_equal(self.cache.image_ids, split.image_ids):
            self.cache.close()
            raise DamagedFile(cache_path, f"its images are not those of the {split.name} split of the dataset")
        self.scale = int(self.cache.attrs["cache_scale"])
        self.images = (SquareImages(split, self.scale, teacher.mean, teacher.std) if teacher is not None else None)

    def close(self) -> None:
        self.cache.close()

    def _stack(self, name: str, indices: np.ndarray) -> torch.Tensor:
        """The batch's rows of ``name``, float16 cast to float32 once for the whole block."""
        rows = torch.from_numpy(self.cache.read_rows(name, indices))
        return rows.float() if rows.dtype == torch.float16 else rows

    def valid_rows(self, indices: np.ndarray) -> torch.Tensor:
        """(B, N) bool: the real proposal rows (the rest are recycled copies)."""
        num_rows = self.cache.read("prior", int(indices[0])).shape[0]
        return torch.arange(num_rows)[None, :] < torch.from_numpy(self.cache.num_real[indices].astype(np.int64))[:, None]

    def logits(self, indices: np.ndarray) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(M^c, M^d (B, N, K) float32, valid (B, N)): what Eq. 6-7 soften."""
        return self._stack("mc", indices).float(), self._stack("md", indices).float(), self.valid_rows(indices)

    def image_predictions(self, indices: np.ndarray) -> torch.Tensor:
        """The teacher's p (B, K) of Eq. 2, the target of Hinton's distillation."""
        return self._stack("p", indices)

    def rois(self, indices: np.ndarray, source: str, weighting: str) -> RoiBatch:
        """Stage 1's RoIs: ``source`` in ROI_SOURCES, ``weighting`` in ROI_WEIGHTS."""
        if source == "selected":
            rows = self.cache.read_rows("selected", indices).astype(np.int64)
            counts = torch.from_numpy(self.cache.num_selected[indices].astype(np.int64))
            valid = torch.arange(rows.shape[1])[None, :] < counts[:, None]
        elif source == "all":
            valid = self.valid_rows(indices)
            rows = np.broadcast_to(np.arange(valid.shape[1]), valid.shape).copy()
        else:
            raise ValueError(f"unknown roi source {source!r} (expected one of {ROI_SOURCES})")
        take = torch.from_numpy(rows)
        boxes = torch.gather(self._stack("boxes", indices), 1, take[..., None].expand(-1, -1, 4))
        prior = torch.gather(self._stack("prior", indices), 1, take)
        if weighting == "none":
            weights = None
        elif weighting == "prior":
            weights = prior
        elif weighting == "objectness":
            weights = torch.gather(self._stack("objectness", indices), 1, take)
        else:
            raise ValueError(f"unknown roi weighting {weighting!r} (expected one of {ROI_WEIGHTS})")
        return RoiBatch(boxes, weights, valid, prior)

    def to_input(self, indices: np.ndarray, boxes: torch.Tensor, size: int,
                 flips: torch.Tensor | None = None) -> torch.Tensor:
        """Boxes (B, R, 4) in original pixels -> pixels of the ``size`` input, mirrored where ``flips``."""
        widths = torch.from_numpy(self.split.widths[indices].astype(np.float32))
        heights = torch.from_numpy(self.split.heights[indices].astype(np.float32))
        return boxes_to_input(boxes, widths, heights, size, flips)

    def cached_features(self, indices: np.ndarray) -> torch.Tensor:
        """The cache's RoI features (B, M, C, 7, 7) of the selected rows, in the order of ``rois(.., "selected")``."""
        if not self.cache.has_features:
            raise UserError(f"{self.cache.path}: holds no RoI features; set cache.cache_features: true and rerun "
                            f"cache_teacher, or let stage 1 run the teacher online")
        return self._stack("features", indices)

    def teacher_inputs(self, indices: np.ndarray, flips: torch.Tensor | None,
                       device: torch.device) -> torch.Tensor:
        """The batch's images as the online teacher sees them: squashed to the caching scale, flipped like the
        student's."""
        pixels = torch.stack([self.images[int(i)][0] for i in indices]).to(device, non_blocking=True)
        return resize_and_flip(pixels, self.scale, flips.to(device) if flips is not None else None)
