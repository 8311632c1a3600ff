"""Run a classifier over a split and collect its sigmoid scores as Predictions."""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from ..data.images import SquareImages
from ..data.manifest import Split
from ..engine.device import autocast
from ..evaluate.predictions import Predictions


@torch.no_grad()
def predict_split(model: torch.nn.Module, split: Split, input_size: int, mean, std, batch_size: int,
                  device: torch.device, amp: bool, num_workers: int = 0) -> Predictions:
    model.eval().to(device)
    loader = DataLoader(SquareImages(split, input_size, mean, std), batch_size=batch_size,
                        num_workers=num_workers, pin_memory=device.type == "cuda")
    scores = []
    for images, _, _ in tqdm(loader, desc=f"predict {split.name}", leave=False, dynamic_ncols=True):
        with autocast(device, amp):
            logits = model(images.to(device, non_blocking=True))
        scores.append(torch.sigmoid(logits.float()).cpu().numpy())
    return Predictions(split.image_ids, np.concatenate(scores).astype(np.float32), split.labels, split.class_names)
