"""The student's input pixels, decoded and resized once per split (the ``student_inputs`` stage).

Every student stage (the plain student, both distillation stages, every seed and table row) trains on the same
squashed ``input_size`` images, so they are decoded from JPEG and resized once, into one uint8 array per split
(``<split>.npy``, (n, 3, size, size), the split's order) beside ``<split>.json`` (its image ids and size). The
trainers memory-map it and normalise per image with the backbone's mean and std: the pixels are those of
:func:`~wsdkd.data.images.square_input` bit for bit (the same PIL resize, the same float32 arithmetic), so a
run reads the same numbers it would from the JPEGs, without a JPEG decode per image per epoch.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from ..pipeline.atomic import atomic_path
from ..pipeline.errors import DamagedFile, UserError
from .images import SquareImages, load_rgb
from .manifest import Split

FORMAT, FORMAT_VERSION = "wsdkd-student-inputs", 1


def square_pixels(path, size: int) -> np.ndarray:
    """One image as (3, size, size) uint8: the resize of :func:`~wsdkd.data.images.square_input`, before scaling."""
    image = load_rgb(path).resize((size, size), Image.BILINEAR)
    return np.asarray(image, dtype=np.uint8).transpose(2, 0, 1)


def _write_split(split: Split, size: int, out_dir: Path) -> None:
    # Written through a memory map, so a split larger than memory (COCO at 224 px: about 12 GB) never is held.
    pixels = np.lib.format.open_memmap(out_dir / f"{split.name}.npy", "w+", np.uint8, (len(split), 3, size, size))
    for index, path in enumerate(split.paths):
        pixels[index] = square_pixels(path, size)
    pixels.flush()
    del pixels
    info = {"format": FORMAT, "format_version": FORMAT_VERSION, "split": split.name, "size": size,
            "image_ids": split.image_ids.tolist()}
    (out_dir / f"{split.name}.json").write_text(json.dumps(info) + "\n")


def write_inputs(splits: dict[str, Split], size: int, out_dir: Path) -> None:
    """The ``student_inputs`` stage: ``out_dir/<split>.npy`` and ``<split>.json`` for every split of ``splits``
    at ``size`` (the folder appears whole)."""
    with atomic_path(out_dir) as tmp:
        tmp.mkdir(parents=True)
        for split in splits.values():
            _write_split(split, size, tmp)


def stored_size(inputs_dir: Path) -> int | None:
    """The image side the arrays in ``inputs_dir`` hold (None when they are not there)."""
    info_path = inputs_dir / "train.json"
    return json.loads(info_path.read_text())["size"] if info_path.is_file() else None


def open_pixels(inputs_dir: Path, split: Split, size: int) -> np.ndarray:
    """The split's (n, 3, size, size) uint8 pixels, memory-mapped; checked against the split and the size."""
    info_path, pixels_path = inputs_dir / f"{split.name}.json", inputs_dir / f"{split.name}.npy"
    if not info_path.is_file() or not pixels_path.is_file():
        raise UserError(f"{pixels_path}: student inputs not found (run the student_inputs stage first)")
    try:
        info = json.loads(info_path.read_text())
        pixels = np.load(pixels_path, mmap_mode="r")
    except (ValueError, OSError) as exc:
        raise DamagedFile(pixels_path, f"not a whole student-inputs file ({exc})") from None
    if info.get("format") != FORMAT:
        raise DamagedFile(info_path, "not a student-inputs file")
    if info["size"] != size:
        raise UserError(f"{pixels_path}: holds {info['size']} px images, but student.input_size is {size}; rerun "
                        f"the student_inputs stage")
    if not np.array_equal(np.asarray(info["image_ids"]), split.image_ids) or pixels.shape != (len(split), 3, size, size):
        raise DamagedFile(pixels_path, f"its images are not those of the {split.name} split of the dataset")
    return pixels


class CachedSquareImages(SquareImages):
    """:class:`~wsdkd.data.images.SquareImages` read from the decoded array instead of the JPEGs."""

    def __init__(self, pixels: np.ndarray, split: Split, mean: tuple[float, ...], std: tuple[float, ...]) -> None:
        super().__init__(split, pixels.shape[-1], mean, std)
        self.pixels = pixels

    def __getitem__(self, index: int):
        image = torch.from_numpy(np.asarray(self.pixels[index], dtype=np.float32) / 255.0)
        return (image - self.mean) / self.std, torch.from_numpy(self.split.labels[index].astype(np.float32)), index


def student_images(splits: dict[str, Split], size: int, mean, std, inputs_dir: Path | None) -> dict[str, Dataset]:
    """Each split's images as the student sees them: from the ``student_inputs`` arrays in ``inputs_dir``, or,
    with None, decoded from the JPEGs on every read (what the trainers did before; tests and benchmarks)."""
    if inputs_dir is None:
        return {name: SquareImages(split, size, mean, std) for name, split in splits.items()}
    return {name: CachedSquareImages(open_pixels(inputs_dir, split, size), split, mean, std)
            for name, split in splits.items()}
