"""Predict on image files: find the files, batch them through a DataLoader, score them.

The path is shared by every model kind; a :class:`Predictor` supplies the kind's two parts (how a file becomes
inputs, how a batch of inputs becomes probabilities). The student's inputs are prepared exactly as in training
(``SquareImages``): squashed to ``input_size`` x ``input_size``, scaled to [0, 1] and normalised with the model
file's mean and std. A file that cannot be read is reported and skipped, never fatal, so one bad photo does not
cost the predictions of the others.
"""

from __future__ import annotations

import glob
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator, NamedTuple, Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, default_collate
from tqdm import tqdm

from ..data.images import load_rgb, square_input
from ..engine.device import autocast
from ..pipeline.errors import UserError
from ..student.model import StudentClassifier, load_student

# What a folder is searched for; a file named on the command line is tried whatever its suffix.
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm"})
# Used when the model file carries no tuned threshold; the paper's Eq. 1 default.
DEFAULT_THRESHOLD = 0.5


class Predictor(ABC):
    """One model kind's part of prediction; ``meta`` is its file's description (``class_names``, maybe ``threshold``).

    ``dataset(paths)`` yields ``(index, inputs or None, error message or None)`` per file, ``inputs`` being
    anything ``default_collate`` batches; ``probabilities`` maps such a batch to (n, K) scores in [0, 1].
    """

    def __init__(self, model: torch.nn.Module, meta: dict) -> None:
        self.model, self.meta = model, meta

    @abstractmethod
    def dataset(self, paths: Sequence[Path]) -> Dataset: ...

    @abstractmethod
    def probabilities(self, inputs: Any, device: torch.device) -> torch.Tensor:
        """Called under autocast; returns float32."""


class StudentPredictor(Predictor):
    """The student: the training preprocessing, then sigmoid of the logits."""

    def dataset(self, paths: Sequence[Path]) -> Dataset:
        return ImageFiles(paths, self.meta["input_size"], self.meta["mean"], self.meta["std"])

    def probabilities(self, inputs: torch.Tensor, device: torch.device) -> torch.Tensor:
        return torch.sigmoid(self.model(inputs.to(device, non_blocking=True)).float())


def load_model(path: str | Path) -> tuple[StudentClassifier, dict]:
    """``load_student``, with a damaged file (right kind, wrong content) also turned into one UserError line."""
    try:
        return load_student(path)
    except (KeyError, RuntimeError, TypeError, ValueError) as exc:  # missing keys, weights of another shape
        raise UserError(f"{path}: damaged or incompatible student model file ({type(exc).__name__})") from None


def collect_images(specs: Sequence[str]) -> tuple[list[Path], list[str]]:
    """Files as given, folders searched recursively for image suffixes, globs expanded (``**`` included).

    Returns the paths, in the order given and without repeats, and one message per spec that found nothing.
    """
    found: dict[Path, None] = {}  # an ordered set
    problems = []
    for spec in specs:
        path = Path(spec)
        if path.is_dir():
            matches = _images_under(path)
        elif path.is_file():
            matches = [path]
        elif glob.has_magic(spec):
            matches = []
            for hit in sorted(Path(p) for p in glob.glob(spec, recursive=True)):
                if hit.is_dir():
                    matches += _images_under(hit)
                elif hit.suffix.lower() in IMAGE_SUFFIXES:  # a glob is a search, like a folder
                    matches.append(hit)
        else:
            problems.append(f"{spec}: no such file or folder")
            continue
        if not matches:
            problems.append(f"{spec}: no images found")
        found.update(dict.fromkeys(matches))
    return list(found), problems


def _images_under(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


class ImageFiles(Dataset):
    """``(index, tensor or None, error message or None)`` per file: reading errors travel as data, not exceptions."""

    def __init__(self, paths: Sequence[Path], size: int, mean: Sequence[float], std: Sequence[float]):
        self.paths, self.size = list(paths), size
        self.mean = torch.tensor(mean).view(3, 1, 1)
        self.std = torch.tensor(std).view(3, 1, 1)

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> tuple[int, torch.Tensor | None, str | None]:
        try:
            image = load_rgb(self.paths[index])
        except UserError as exc:
            return index, None, str(exc)
        return index, square_input(image, self.size, self.mean, self.std), None


class Batch(NamedTuple):
    """The readable images of a batch, their inputs collated, and the unreadable ones with their messages."""

    indices: list[int]
    inputs: Any  # None when no image of the batch was readable
    failures: list[tuple[int, str]]


def collate_readable(items: list[tuple[int, Any, str | None]]) -> Batch:
    good = [(i, x) for i, x, _ in items if x is not None]
    inputs = default_collate([x for _, x in good]) if good else None
    return Batch([i for i, _ in good], inputs, [(i, err) for i, x, err in items if x is None])


@dataclass(frozen=True)
class ImageScores:
    path: Path
    scores: np.ndarray  # (K,) float32 sigmoid probabilities, class order


@dataclass(frozen=True)
class ImageFailure:
    path: Path
    message: str


@torch.no_grad()
def score_batches(predictor: Predictor, batches: Iterable[Batch], device: torch.device,
                  amp: bool = True) -> Iterator[tuple[Batch, np.ndarray]]:
    """The model part of prediction: each batch with its (n, K) scores, on ``device`` (bf16 on CUDA)."""
    predictor.model.eval().to(device)
    for batch in batches:
        if batch.inputs is None:
            yield batch, np.empty((0, 0), dtype=np.float32)
            continue
        with autocast(device, amp):
            scores = predictor.probabilities(batch.inputs, device)
        yield batch, scores.cpu().numpy()


def predict_files(predictor: Predictor, paths: Sequence[Path], batch_size: int, device: torch.device,
                  workers: int = 0, progress: bool = False, amp: bool = True) -> Iterator[ImageScores | ImageFailure]:
    """Scores of each readable file, or why it could not be read, in the order of ``paths``."""
    dataset = predictor.dataset(paths)
    loader = DataLoader(dataset, batch_size=batch_size, num_workers=workers, collate_fn=collate_readable,
                        pin_memory=device.type == "cuda")
    with tqdm(total=len(dataset), unit="img", desc="predict", disable=not progress, leave=False,
              dynamic_ncols=True) as bar:
        for batch, scores in score_batches(predictor, loader, device, amp):
            outcomes: dict[int, ImageScores | ImageFailure] = {
                i: ImageScores(paths[i], row) for i, row in zip(batch.indices, scores)}
            outcomes.update({i: ImageFailure(paths[i], message) for i, message in batch.failures})
            for i in sorted(outcomes):
                yield outcomes[i]
            bar.update(len(outcomes))
