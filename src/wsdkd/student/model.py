"""S-Cls, the student: a plain multi-label classifier (backbone, image pooling, one K-way linear layer)."""

from __future__ import annotations

import torch
from torch import nn

from ..backbones.zoo import Backbone, build_backbone
from ..engine.model_file import load_weights, read_model_file, save_model_file


class StudentClassifier(nn.Module):
    """Logits m (N, K); p = sigmoid(m) is the prediction of Eq. 8/10 and what runs at test time."""

    def __init__(self, backbone: Backbone, num_classes: int):
        super().__init__()
        self.backbone = backbone
        self.classifier = nn.Linear(backbone.out_features, num_classes)
        # New layers are Xavier-initialised (paper §3.3).
        nn.init.xavier_uniform_(self.classifier.weight)
        nn.init.zeros_(self.classifier.bias)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.backbone(images))


# What a student file says it is; predict refuses files of another kind or a newer layout.
STUDENT_FORMAT, STUDENT_FORMAT_VERSION = "wsdkd-student", 1


def save_student(path, model: StudentClassifier, class_names: list[str], input_size: int, params: dict) -> None:
    """A self-describing model file: weights plus everything needed to predict without params.yaml."""
    save_model_file(path, STUDENT_FORMAT, STUDENT_FORMAT_VERSION, backbone=model.backbone.name,
                    class_names=list(class_names), input_size=input_size, mean=list(model.backbone.mean),
                    std=list(model.backbone.std), params=params, state_dict=model.state_dict())


def load_student(path, class_names: list[str] | None = None) -> tuple[StudentClassifier, dict]:
    """Rebuild a student from its file; returns the model (eval mode) and the file's description.

    ``class_names``: the dataset's, which the file must have been made for.
    """
    blob = read_model_file(path, STUDENT_FORMAT, STUDENT_FORMAT_VERSION, class_names=class_names)
    backbone = build_backbone({"name": blob["backbone"], "weights": "random", "weights_path": None})
    model = StudentClassifier(backbone, len(blob["class_names"]))
    load_weights(model, blob["state_dict"], path)
    return model.eval(), {k: v for k, v in blob.items() if k != "state_dict"}
