"""Images of a split as network inputs: squashed to a square, as the released code does, and normalised."""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torch.utils.data import Dataset

from ..pipeline.errors import UserError
from .manifest import Split


def load_rgb(path) -> Image.Image:
    """Open any image PIL reads (grayscale, CMYK, palette) as RGB; a bad file is a UserError naming it."""
    try:
        with Image.open(path) as image:
            return image.convert("RGB")
    except (UnidentifiedImageError, OSError, SyntaxError) as exc:
        raise UserError(f"{path}: cannot read image ({exc})") from None


def square_input(image: Image.Image, size: int, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """An RGB image as a normalised (3, size, size) tensor: the one preprocessing of training and prediction."""
    image = image.resize((size, size), Image.BILINEAR)
    pixels = torch.from_numpy(np.asarray(image, dtype=np.float32) / 255.0).permute(2, 0, 1)
    return (pixels - mean) / std


class SquareImages(Dataset):
    """``(image tensor, label vector, index)`` for each image of ``split``, resized to ``size`` x ``size``."""

    def __init__(self, split: Split, size: int, mean: tuple[float, ...], std: tuple[float, ...]):
        self.split, self.size = split, size
        self.mean = torch.tensor(mean).view(3, 1, 1)
        self.std = torch.tensor(std).view(3, 1, 1)

    def __len__(self) -> int:
        return len(self.split)

    def __getitem__(self, index: int):
        pixels = square_input(load_rgb(self.split.paths[index]), self.size, self.mean, self.std)
        return pixels, torch.from_numpy(self.split.labels[index].astype(np.float32)), index


def random_hflip(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Flip each image of a batch left-right with probability 1/2, drawn from ``generator`` (resumable)."""
    flip = torch.rand(images.shape[0], generator=generator) < 0.5
    images = images.clone()
    images[flip] = images[flip].flip(-1)
    return images
