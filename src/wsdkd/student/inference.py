"""Run a classifier over a split and collect its sigmoid scores as Predictions."""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from ..data.manifest import Split
from ..engine.device import autocast
from ..evaluate.predictions import Predictions
from ..pipeline.progress import progress_bar


@torch.no_grad()
def predict_split(model: torch.nn.Module, split: Split, images: Dataset, batch_size: int, device: torch.device,
                  amp: bool, num_workers: int = 0) -> Predictions:
    """The model's scores of ``split``, whose images (``(pixels, ...)`` in the split's order) ``images`` yields."""
    model.eval().to(device)
    loader = DataLoader(images, batch_size=batch_size, num_workers=num_workers, pin_memory=device.type == "cuda")
    scores = []
    for images, _, _ in progress_bar(loader, desc=f"predict {split.name}", leave=False, dynamic_ncols=True):
        with autocast(device, amp):
            logits = model(images.to(device, non_blocking=True))
        scores.append(torch.sigmoid(logits.float()).cpu().numpy())
    return Predictions(split.image_ids, np.concatenate(scores).astype(np.float32), split.labels, split.class_names)
