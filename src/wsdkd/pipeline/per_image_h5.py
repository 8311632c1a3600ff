"""Read-only access to HDF5 files with one row per image (proposals, the teacher cache), without loading them.

Opening reads only ``image_ids`` and ``num_real``; everything else is read image by image. A missing file is
one UserError line naming it; a foreign or damaged one is a DamagedFile: HDF5 checks a truncated file on open,
and the writers give every chunk a checksum (:func:`checksummed`), so a chunk damaged on disk fails to read
instead of reading as wrong numbers.
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path
from typing import Callable

import h5py
import numpy as np

from .errors import DamagedFile, UserError

log = logging.getLogger(__name__)


def checksummed(file: h5py.File) -> Callable[..., h5py.Dataset]:
    """``file.create_dataset`` with a Fletcher-32 checksum on every chunk."""
    return functools.partial(file.create_dataset, fletcher32=True)


class PerImageH5:
    """Base of the readers: ``with Reader(path) as r: r.image_ids, len(r), ...``.

    Subclasses name the file (``KIND``), say how to make it (``HOW_TO_MAKE``) and check its layout in ``check``.
    """

    KIND = "per-image HDF5 file"
    HOW_TO_MAKE = ""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise UserError(f"{self.path}: {self.KIND} not found ({self.HOW_TO_MAKE})")
        try:
            self._file = h5py.File(self.path, "r")
        except OSError as exc:
            raise DamagedFile(self.path, f"not a whole HDF5 file ({exc})") from None
        try:
            self.check(self._file)
            self.image_ids: np.ndarray = self._file["image_ids"][:]
            self.num_real: np.ndarray = self._file["num_real"][:]
        except UserError:
            self._file.close()
            raise
        except (KeyError, OSError) as exc:
            self._file.close()
            raise DamagedFile(self.path, f"not a whole {self.KIND} ({exc})") from None

    def check(self, file: h5py.File) -> None:
        """Raise DamagedFile when ``file`` is not of this kind."""

    def _read(self, name: str, index: int | slice = slice(None)) -> np.ndarray:
        """Rows ``index`` of dataset ``name``; a DamagedFile when a chunk fails its checksum or cannot be read."""
        try:
            return self._file[name][index]
        except OSError as exc:
            raise DamagedFile(self.path, f"damaged data in {name} ({exc})") from None

    def read_rows(self, name: str, indices: np.ndarray) -> np.ndarray:
        """Rows ``indices`` (any order) of dataset ``name`` as one array of the file's dtype, each row read straight
        into its place: one chunk per image, no per-row array or cast (h5py's fancy indexing, which also
        needs sorted indices, was far slower on the teacher cache's features)."""
        dataset = self._file[name]
        out = np.empty((len(indices), *dataset.shape[1:]), dataset.dtype)
        try:
            for row, index in enumerate(indices):
                dataset.read_direct(out, np.s_[int(index)], np.s_[row])
        except OSError as exc:
            raise DamagedFile(self.path, f"damaged data in {name} ({exc})") from None
        return out

    @classmethod
    def finished(cls, path: Path) -> bool:
        """Whether ``path`` is a whole file of this kind (resume folders); a damaged one is named and deleted."""
        if not path.is_file():
            return False
        try:
            cls(path).close()
        except DamagedFile as exc:
            log.warning("%s; making it again", exc)
            path.unlink()
            return False
        return True

    def __enter__(self):
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._file.close()

    def __len__(self) -> int:
        return len(self.image_ids)
