"""What a frozen backbone gives each proposal, computed once per (image, scale, flip) and read back per batch.

When the teacher's backbone is frozen (METHOD.md section 9), phi(R) of every proposal (the RoI-pooled stride-16
map, or its 7x7 average for the gap_mlp head) never changes, so an epoch need only run the head on stored
phi. One HDF5 file holds a split's phi at one (scale, flip), one image per chunk, in float16 (half the bytes;
these are O(1)-sized activations). Each file is written atomically, so a run killed while filling the bank
keeps the finished files and redoes only the one in progress. Size per image and (scale, flip): N x C values
for gap_mlp (45 KB at 200 proposals x 112 channels), 49 times more for the heads that keep the 7x7 layout.
"""

from __future__ import annotations

import logging
from pathlib import Path

import h5py
import numpy as np
import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from ..data.images import SquareImages
from ..engine import distributed
from ..engine.device import autocast
from ..pipeline.atomic import atomic_path
from .inputs import SplitProposals
from .wsddn import TWDet

log = logging.getLogger(__name__)


class FeatureBank:
    """``phi(indices, scale, flips)`` -> phi of the proposals of images ``indices`` of one split, (B * N, ...)."""

    def __init__(self, folder: Path, proposals: SplitProposals, model: TWDet, device: torch.device, amp: bool,
                 batch_size: int, num_workers: int) -> None:
        self.folder, self.proposals, self.model = Path(folder), proposals, model
        self.device, self.amp, self.batch_size, self.num_workers = device, amp, batch_size, num_workers
        self._files: dict[tuple[int, bool], h5py.File] = {}

    def _path(self, scale: int, flip: bool) -> Path:
        return self.folder / f"{self.proposals.split.name}_{scale}{'_flip' if flip else ''}.h5"

    def ensure(self, scale: int, flip: bool, progress: bool = True) -> None:
        """Compute phi at (scale, flip) unless its file exists, then keep the file open for reading.

        Under DDP rank 0 computes it while the other ranks wait.
        """
        path = self._path(scale, flip)
        if path.is_file() and distributed.is_main():
            try:  # HDF5 refuses a truncated file on open
                h5py.File(path, "r").close()
            except OSError as exc:
                log.warning("%s: damaged feature bank (%s); computing it again", path, exc)
                path.unlink()
        if not path.is_file() and distributed.is_main():
            self._build(path, scale, flip, progress)
        distributed.barrier()
        self._files[(scale, flip)] = h5py.File(path, "r")

    @torch.no_grad()
    def _build(self, path: Path, scale: int, flip: bool, progress: bool) -> None:
        split, model = self.proposals.split, self.model
        model.to(self.device)
        loader = DataLoader(SquareImages(split, scale, model.mean, model.std), batch_size=self.batch_size,
                            num_workers=self.num_workers, pin_memory=self.device.type == "cuda")
        with atomic_path(path) as tmp, h5py.File(tmp, "w") as file:
            stored = None
            for images, _, index in tqdm(loader, desc=f"phi {path.stem}", leave=False, disable=not progress):
                indices = index.numpy()
                flips = torch.full((len(indices),), flip)
                boxes, _, _ = self.proposals.batch(indices, scale, flips, self.device)
                with autocast(self.device, self.amp):
                    phi = model.phi(model.body(images.to(self.device, non_blocking=True).flip(-1) if flip else
                                               images.to(self.device, non_blocking=True)), boxes)
                phi = phi.float().cpu().numpy().astype(np.float16).reshape(len(indices), -1, *phi.shape[1:])
                if stored is None:
                    stored = file.create_dataset("phi", (len(split), *phi.shape[1:]), np.float16,
                                                 chunks=(1, *phi.shape[1:]))
                stored[int(indices[0]):int(indices[-1]) + 1] = phi

    def phi(self, indices: np.ndarray, scale: int, flips: torch.Tensor | None = None) -> torch.Tensor:
        """phi (B * N, ...) float32 of the images at ``indices``, each at ``scale``, flipped where ``flips``."""
        flips = torch.zeros(len(indices), dtype=torch.bool) if flips is None else flips.cpu()
        rows = [self._files[(scale, bool(f))]["phi"][int(i)] for i, f in zip(indices, flips)]
        stacked = torch.from_numpy(np.stack(rows)).float()
        return stacked.reshape(-1, *stacked.shape[2:])

    def close(self) -> None:
        for file in self._files.values():
            file.close()
        self._files.clear()
