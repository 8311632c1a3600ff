"""Training on several splits at once (train and val) when a step needs more than pixels per image.

The teacher's and the distillation steps look up per-image data (proposals, cached teacher outputs) by the
image's index in its split. Their datasets therefore yield a *row* of the concatenation [train images, val
images]; :func:`locate` turns the rows of a batch (which never mixes splits: each split has its own loader)
back into a split's part and indices.
"""

from __future__ import annotations

from typing import Protocol, Sequence, TypeVar

import numpy as np
import torch
from torch.utils.data import Dataset

from ..data.manifest import Split


class OffsetRows(Dataset):
    """``(pixels from images, or an empty tensor when images is None, labels, offset + index)`` for each image
    of ``split``; ``images`` yields ``(pixels, ...)`` in the split's order (SquareImages, CachedSquareImages)."""

    def __init__(self, split: Split, offset: int, images: Dataset | None) -> None:
        self.split, self.offset, self.images = split, offset, images

    def __len__(self) -> int:
        return len(self.split)

    def __getitem__(self, index: int):
        pixels = self.images[index][0] if self.images is not None else torch.empty(0)
        return pixels, torch.from_numpy(self.split.labels[index].astype(np.float32)), self.offset + index


class HasOffset(Protocol):
    offset: int


Part = TypeVar("Part", bound=HasOffset)


def locate(parts: Sequence[Part], rows: torch.Tensor) -> tuple[Part, np.ndarray]:
    """The part the batch's ``rows`` belong to, and their indices within its split."""
    first = int(rows[0])
    part = max((p for p in parts if p.offset <= first), key=lambda p: p.offset)
    return part, rows.numpy() - part.offset
