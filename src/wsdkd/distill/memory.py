"""Stage 1's estimated memory (distill_features), for ``train.memory_cap_gb``."""

from __future__ import annotations

from ..engine.memory import PROBE_IMAGES, StageMemory, meta_tensor, saved_bytes, state_bytes
from ..student.memory import student_meta
from ..teacher.wsddn import roi_features


def feature_training(cfg: dict, num_classes: int, num_rois: int, layer: str) -> StageMemory:
    """distill_features (Eq. 3-4): the student's stride-16 body and its RoI features of ``num_rois`` boxes
    (through its RoI head for ``layer: fc``); its classifier is not trained. Psi (a 1x1 conv, or nothing when
    the channels agree as for VGG16) is left out."""
    model = student_meta(cfg, num_classes)
    backbone, size = model.backbone, cfg["input_size"]
    trained = list(backbone.body16.parameters()) + (list(backbone.roi_head.parameters()) if layer == "fc" else [])

    def forward():
        maps = backbone.body16(meta_tensor(PROBE_IMAGES, 3, size, size))
        rois = roi_features(maps, meta_tensor(PROBE_IMAGES, num_rois, 4))
        return backbone.roi_head(rois) if layer == "fc" else rois

    return StageMemory(state_bytes(model, trained), saved_bytes(forward, model) // PROBE_IMAGES)
