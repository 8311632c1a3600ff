"""The student's training memory (train_student, and train_distilled's student), for ``train.memory_cap_gb``."""

from __future__ import annotations

import torch

from ..backbones.zoo import build_backbone
from ..engine.memory import PROBE_IMAGES, StageMemory, meta_tensor, saved_bytes, state_bytes
from .model import StudentClassifier


def student_meta(cfg: dict, num_classes: int) -> StudentClassifier:
    """The student of ``cfg`` on the meta device (shapes only)."""
    with torch.device("meta"):
        return StudentClassifier(build_backbone({**cfg["backbone"], "weights": "random"}), num_classes)


def student_training(cfg: dict, num_classes: int) -> StageMemory:
    """train_student and train_distilled: the whole student at its input size (Eq. 10; the soft targets of
    Eq. 5 come from the cache and cost K numbers per image)."""
    model = student_meta(cfg, num_classes)
    size = cfg["input_size"]
    images = meta_tensor(PROBE_IMAGES, 3, size, size)
    return StageMemory(state_bytes(model), saved_bytes(lambda: model(images), model) // PROBE_IMAGES)
