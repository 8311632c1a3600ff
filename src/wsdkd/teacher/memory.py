"""The teacher's stages' estimated memory (train_teacher, cache_teacher), for ``train.memory_cap_gb``."""

from __future__ import annotations

import torch

from ..engine.memory import (FLOAT_BYTES, PROBE_IMAGES, StageMemory, largest_layer_bytes, meta_tensor, saved_bytes,
                             state_bytes)
from .wsddn import ROI_SIZE, build_teacher


def _teacher_pass(cfg: dict, num_classes: int, num_proposals: int, scale: int):
    """A meta teacher and a closure running PROBE_IMAGES images of ``scale`` px with their proposals through it."""
    with torch.device("meta"):
        model = build_teacher({**cfg, "backbone": {**cfg["backbone"], "weights": "random"}}, num_classes)
    n = PROBE_IMAGES
    boxes, prior = meta_tensor(n, num_proposals, 4), meta_tensor(n, num_proposals)

    def forward():
        if cfg["freeze_backbone"] and model.training:  # the bank holds phi: only the head runs per batch
            shape = (n * num_proposals, model.channels) + (() if model.averaged else (ROI_SIZE, ROI_SIZE))
            return model.from_phi(meta_tensor(*shape), prior)
        return model(meta_tensor(n, 3, scale, scale), boxes, prior)

    return model, forward


def teacher_training(cfg: dict, num_classes: int, num_proposals: int) -> StageMemory:
    """train_teacher: at the largest training scale (Eq. 2), the body fine-tuned unless frozen."""
    model, forward = _teacher_pass(cfg, num_classes, num_proposals, max(cfg["scales"]))
    return StageMemory(state_bytes(model), saved_bytes(forward, model) // PROBE_IMAGES)


def teacher_inference(cfg: dict, num_classes: int, num_proposals: int) -> StageMemory:
    """cache_teacher: the teacher at the caching scale, no gradients."""
    model, forward = _teacher_pass({**cfg, "freeze_backbone": False}, num_classes, num_proposals,
                                   cfg["cache_scale"])
    model.eval()
    return StageMemory(FLOAT_BYTES * sum(p.numel() for p in model.parameters()),
                       largest_layer_bytes(forward, model) // PROBE_IMAGES)
