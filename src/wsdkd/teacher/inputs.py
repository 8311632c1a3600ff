"""What the teacher sees of an image at one input scale: the squashed (and maybe flipped) image and its boxes.

Images are squashed to a square of side ``size`` (the released code's choice), so a box in original pixels
maps to the input by scaling x by size / width and y by size / height; a horizontal flip maps x to size - x.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ..data.manifest import Split
from ..pipeline.errors import UserError
from ..proposals import ProposalReader


def boxes_to_input(boxes: torch.Tensor, widths: torch.Tensor, heights: torch.Tensor, size: int,
                   flips: torch.Tensor | None = None) -> torch.Tensor:
    """Boxes (B, N, 4) in original pixels -> pixels of the size x size input, mirrored where ``flips`` (B,)."""
    scale = torch.stack([size / widths, size / heights, size / widths, size / heights], dim=1).to(boxes.dtype)
    out = boxes * scale[:, None, :]
    if flips is not None:
        mirrored = torch.stack([size - out[..., 2], out[..., 1], size - out[..., 0], out[..., 3]], dim=-1)
        out = torch.where(flips[:, None, None], mirrored, out)
    return out


def boxes_to_original(boxes: torch.Tensor, width: float, height: float, size: int) -> torch.Tensor:
    """The inverse of :func:`boxes_to_input` (no flip) for one image's boxes (N, 4)."""
    scale = torch.tensor([width / size, height / size, width / size, height / size], dtype=boxes.dtype)
    return boxes * scale.to(boxes.device)


def resize_and_flip(images: torch.Tensor, size: int, flips: torch.Tensor | None = None) -> torch.Tensor:
    """A batch of square images resized to ``size`` (antialiased when shrinking), mirrored where ``flips``."""
    if images.shape[-1] != size:
        images = F.interpolate(images, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
    if flips is not None and bool(flips.any()):
        images = torch.where(flips[:, None, None, None].to(images.device), images.flip(-1), images)
    return images


class SplitProposals:
    """The proposals of one split's images in the split's order: ``batch(indices, size, flips)`` for the model."""

    def __init__(self, split: Split, path) -> None:
        self.split = split
        self.reader = ProposalReader(path)
        self.rows = np.array([self.reader.index_of(i) for i in split.image_ids], np.int64)
        self.num_real = self.reader.num_real[self.rows]
        unreadable = split.image_ids[self.num_real == 0]
        if len(unreadable):
            raise UserError(f"{path}: images {unreadable[:5].tolist()} of split {split.name!r} have no proposals "
                            f"(unreadable when the proposals were made); fix or drop them from the dataset")

    @property
    def num_proposals(self) -> int:
        return self.reader.num_proposals

    def close(self) -> None:
        self.reader.close()

    def original(self, indices: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Boxes (B, N, 4) in original pixels, prior scores (B, N) and num_real (B,) of the images at ``indices``."""
        rows = [self.reader.get(int(self.rows[i])) for i in indices]
        return (np.stack([r[0] for r in rows]), np.stack([r[1] for r in rows]),
                np.array([r[2] for r in rows], np.int64))

    def batch(self, indices: np.ndarray, size: int, flips: torch.Tensor | None = None,
              device: torch.device | str = "cpu") -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(boxes in input pixels (B, N, 4), prior (B, N), valid (B, N) bool)`` on ``device``."""
        return self.to_input(indices, *self.original(indices), size, flips, device)

    def to_input(self, indices: np.ndarray, boxes: np.ndarray, prior: np.ndarray, num_real: np.ndarray, size: int,
                 flips: torch.Tensor | None = None,
                 device: torch.device | str = "cpu") -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """:meth:`batch` from rows already read with :meth:`original` (no second read of the file)."""
        widths = torch.from_numpy(self.split.widths[indices].astype(np.float32))
        heights = torch.from_numpy(self.split.heights[indices].astype(np.float32))
        boxes = boxes_to_input(torch.from_numpy(boxes), widths, heights, size, flips)
        valid = torch.arange(boxes.shape[1])[None, :] < torch.from_numpy(num_real)[:, None]
        return boxes.to(device), torch.from_numpy(prior).to(device), valid.to(device)
