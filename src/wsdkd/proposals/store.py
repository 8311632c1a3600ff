"""The proposals file: one HDF5 file per split, written once, read image by image by every later stage.

Datasets (``num_images`` rows in the split's order; ``N`` = ``num_proposals``):

- ``boxes`` (num_images, N, 4) float32: x1, y1, x2, y2 in original-image pixels, best first, recycled to N rows
- ``scores`` (num_images, N) float32: the prior s_R of each row
- ``num_real`` (num_images,) int32: how many leading rows are distinct boxes; 0 marks an unreadable image
- ``image_ids`` (num_images,) int64

``boxes`` and ``scores`` are chunked one image per chunk, so reading an image touches only its own bytes.
Attributes: ``source`` (the proposal source), ``params`` (JSON of the ``proposals`` params that made it),
``bad_images`` (JSON list of the skipped unreadable images, each ``{image_id, path, error}``).
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any, Iterator, Sequence

import h5py
import numpy as np

from ..pipeline.atomic import atomic_path
from ..pipeline.errors import DamagedFile, UserError
from ..pipeline.per_image_h5 import PerImageH5, checksummed

DATASETS = ("boxes", "scores", "num_real", "image_ids")


class ProposalWriter:
    """Fills the rows of a proposals file opened by :func:`proposal_writer`."""

    def __init__(self, file: h5py.File) -> None:
        self._file = file

    def write(self, start: int, image_ids: np.ndarray, boxes: np.ndarray, scores: np.ndarray,
              num_real: np.ndarray) -> None:
        """Write rows ``start .. start + len(image_ids)``."""
        stop = start + len(image_ids)
        self._file["image_ids"][start:stop] = image_ids
        self._file["boxes"][start:stop] = boxes
        self._file["scores"][start:stop] = scores
        self._file["num_real"][start:stop] = num_real


@contextlib.contextmanager
def proposal_writer(path: str | Path, num_images: int, num_proposals: int,
                    attrs: dict[str, Any]) -> Iterator[ProposalWriter]:
    """Create the proposals file at ``path`` atomically: it appears only once the block completes.

    ``attrs`` values that are not strings or numbers are stored as JSON strings.
    """
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as file:
        create = checksummed(file)
        rows = max(num_images, 1)  # h5py refuses a chunk larger than an empty dataset
        create("boxes", (num_images, num_proposals, 4), np.float32, chunks=(1, num_proposals, 4))
        create("scores", (num_images, num_proposals), np.float32, chunks=(1, num_proposals))
        create("num_real", (num_images,), np.int32, chunks=(min(rows, 4096),))
        create("image_ids", (num_images,), np.int64, chunks=(min(rows, 4096),))
        for key, value in attrs.items():
            file.attrs[key] = value if isinstance(value, (str, int, float)) else json.dumps(value)
        yield ProposalWriter(file)


def write_proposals(path: str | Path, image_ids: np.ndarray, boxes: np.ndarray, scores: np.ndarray,
                    num_real: np.ndarray, attrs: dict[str, Any]) -> None:
    """Write a whole proposals file (or shard) from arrays in memory."""
    with proposal_writer(path, len(image_ids), boxes.shape[1], attrs) as writer:
        writer.write(0, image_ids, boxes, scores, num_real)


def merge_proposals(parts: Sequence[Path], path: str | Path, num_proposals: int, attrs: dict[str, Any]) -> list[dict]:
    """Concatenate proposal files ``parts`` (in order) into ``path``; return their pooled ``bad_images``."""
    readers = [ProposalReader(part) for part in parts]
    try:
        bad_images = [bad for reader in readers for bad in reader.bad_images]
        total = sum(len(reader) for reader in readers)
        with proposal_writer(path, total, num_proposals, {**attrs, "bad_images": bad_images}) as writer:
            start = 0
            for reader in readers:
                writer.write(start, reader.image_ids, *reader.all_rows(), reader.num_real)
                start += len(reader)
        return bad_images
    finally:
        for reader in readers:
            reader.close()


class ProposalReader(PerImageH5):
    """Random access to a proposals file without loading it: ``with ProposalReader(path) as props: ...``.

    ``image_ids`` and ``num_real`` (a few bytes per image) are read at open; boxes and scores on demand.
    """

    KIND = "proposals file"
    HOW_TO_MAKE = "run the proposals stage first"

    def __init__(self, path: str | Path) -> None:
        super().__init__(path)
        self._index = {int(image_id): k for k, image_id in enumerate(self.image_ids)}

    def check(self, file: h5py.File) -> None:
        missing = [name for name in DATASETS if name not in file]
        if missing:
            raise DamagedFile(self.path, f"not a proposals file (missing {', '.join(missing)})")

    @property
    def num_proposals(self) -> int:
        return int(self._file["boxes"].shape[1])

    @property
    def source(self) -> str:
        return str(self._file.attrs.get("source", ""))

    @property
    def params(self) -> dict:
        return json.loads(self._file.attrs.get("params", "{}"))

    @property
    def bad_images(self) -> list[dict]:
        return json.loads(self._file.attrs.get("bad_images", "[]"))

    def get(self, index: int) -> tuple[np.ndarray, np.ndarray, int]:
        """``(boxes (N, 4), scores (N,), num_real)`` of the image at row ``index``."""
        return self._read("boxes", index), self._read("scores", index), int(self.num_real[index])

    def index_of(self, image_id: int) -> int:
        """The row of ``image_id``; a UserError when the file has no such image (made for another split?)."""
        try:
            return self._index[int(image_id)]
        except KeyError:
            raise UserError(f"{self.path}: no proposals for image id {image_id} "
                            f"(was this file made for another split or dataset?)") from None

    def all_rows(self) -> tuple[np.ndarray, np.ndarray]:
        """Every image's boxes and scores at once: for shards and small files only."""
        return self._read("boxes"), self._read("scores")
