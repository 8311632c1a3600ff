"""Run a trained teacher over a split at one scale, batch by batch (memory bounded by one batch)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import numpy as np
import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from ..data.images import SquareImages
from ..data.manifest import Split
from ..engine.device import autocast
from .inputs import SplitProposals
from .wsddn import TWDet, image_scores, objectness, two_stream_scores


@dataclass
class TeacherBatch:
    """The teacher's outputs for images ``indices`` of a split; arrays on the CPU, maps where the model ran."""

    indices: np.ndarray  # (B,) positions in the split
    boxes: np.ndarray  # (B, N, 4) original pixels
    prior: np.ndarray  # (B, N) s_R
    num_real: np.ndarray  # (B,)
    mc: np.ndarray  # (B, N, K) float32 logits M^c
    md: np.ndarray  # (B, N, K) float32 logits M^d
    scores: np.ndarray  # (B, N, K) S of Eq. 2
    objectness: np.ndarray  # (B, N) s'
    p: np.ndarray  # (B, K) image prediction
    maps: torch.Tensor  # (B, C, h, w) stride-16 maps, for pooling features of chosen boxes
    input_boxes: torch.Tensor  # (B, N, 4) boxes in input pixels, on the maps' device


@torch.no_grad()
def run_teacher(model: TWDet, split: Split, proposals: SplitProposals, size: int, batch_size: int,
                device: torch.device, amp: bool, num_workers: int = 0,
                progress: bool = True) -> Iterator[TeacherBatch]:
    """Yield the teacher's outputs on ``split`` at input ``size`` (no flip), in split order."""
    model.eval().to(device)
    loader = DataLoader(SquareImages(split, size, model.mean, model.std), batch_size=batch_size,
                        num_workers=num_workers, pin_memory=device.type == "cuda")
    for images, _, index in tqdm(loader, desc=f"teacher {split.name}", leave=False, disable=not progress):
        indices = index.numpy()
        original, prior_np, num_real = proposals.original(indices)
        boxes, prior, valid = proposals.to_input(indices, original, prior_np, num_real, size, device=device)
        with autocast(device, amp):
            maps = model.body(images.to(device, non_blocking=True))
            mc, md = model.from_maps(maps, boxes, prior)
        mc, md = mc.float(), md.float()
        s = two_stream_scores(mc, md, valid=valid)
        yield TeacherBatch(indices, original, prior_np, num_real, mc.cpu().numpy(), md.cpu().numpy(),
                           s.cpu().numpy(), objectness(s).cpu().numpy(), image_scores(s).cpu().numpy(),
                           maps, boxes)
