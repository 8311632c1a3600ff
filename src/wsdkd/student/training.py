"""Train S-Cls without distillation (the paper's "S-Cls w/o" baseline): sigmoid BCE on image labels (Eq. 10).

The helpers here (optimiser, loop settings, the output folder) are shared with the distillation trainer
(distill.py), so the baseline and the distilled student differ only in their losses.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import torch

from ..backbones.zoo import build_backbone
from ..data.manifest import Split, read_split
from ..data.student_inputs import student_images
from ..engine.checkpoint import seed_everything
from ..engine.device import resolve_device
from ..engine.loop import Hardware, LoopConfig, fit
from ..evaluate.predictions import write_predictions
from ..evaluate.reports import DESCRIPTION_FILE
from ..pipeline import resume
from ..pipeline.atomic import atomic_path
from .inference import predict_split
from .losses import hard_label_bce
from .model import StudentClassifier, save_student

log = logging.getLogger(__name__)

MODEL_FILE = "model.pt"
SPLITS = ("train", "val", "test")


def classifier_step(model, images, labels, _index) -> dict:
    logits = model(images)
    return {"loss": hard_label_bce(logits.float(), labels), "logits": logits}


def describe(cfg: dict, history: list[dict], **extra) -> dict:
    """What a person needs to know about a trained student, beside its weights."""
    return {"role": "student", "backbone": cfg["backbone"]["name"], "init": cfg["backbone"]["weights"],
            "input_size": cfg["input_size"], "epochs": len(history),
            "train_seconds": round(sum(r["seconds"] for r in history), 1), **extra}


def read_splits(manifest_dir: Path) -> dict[str, Split]:
    return {name: read_split(manifest_dir, name) for name in SPLITS}


def sgd(groups: list[dict], cfg: dict) -> tuple[torch.optim.SGD, torch.optim.lr_scheduler.ReduceLROnPlateau]:
    """SGD with momentum and weight decay, the LR divided when the validation loss stalls (paper section 3.3).

    ``groups`` are torch parameter groups; a group's own ``lr`` / ``weight_decay`` override ``cfg``'s.
    """
    optimizer = torch.optim.SGD(groups, lr=cfg["lr"], momentum=cfg["momentum"], weight_decay=cfg["weight_decay"])
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, factor=cfg["lr_decay_factor"],
                                                           patience=cfg["lr_patience"])
    return optimizer, scheduler


def loop_config(cfg: dict, device: torch.device, hardware: Hardware, epochs: int | None = None,
                hflip: bool | None = None) -> LoopConfig:
    return LoopConfig(epochs=cfg["epochs"] if epochs is None else epochs, batch_size=cfg["batch_size"],
                      seed=cfg["seed"], num_workers=cfg["num_workers"],
                      hflip=cfg["hflip"] if hflip is None else hflip, amp=cfg["amp"], device=device,
                      hardware=hardware)


def write_student(out_dir: Path, model: StudentClassifier, splits: dict[str, Split], cfg: dict, description: dict,
                  device: torch.device, predict: bool = True, inputs_dir: Path | None = None) -> None:
    """Write ``out_dir`` atomically: ``model.pt``, ``model.json`` and, with ``predict``, ``predictions_{val,test}``
    (of the images in ``inputs_dir``, the student_inputs stage's arrays; None: decoded from the JPEGs)."""
    mean, std = model.backbone.mean, model.backbone.std
    named = ("val", "test") if predict else ()
    images = student_images({name: splits[name] for name in named}, cfg["input_size"], mean, std, inputs_dir)
    with atomic_path(out_dir) as tmp:
        tmp.mkdir(parents=True)
        save_student(tmp / MODEL_FILE, model.cpu(), splits["train"].class_names, cfg["input_size"], cfg)
        (tmp / DESCRIPTION_FILE).write_text(json.dumps(description, indent=2) + "\n")
        for name in named:
            preds = predict_split(model, splits[name], images[name], cfg["batch_size"], device, cfg["amp"],
                                  cfg["num_workers"])
            write_predictions(tmp / f"predictions_{name}.parquet", preds)


def train_student(cfg: dict, manifest_dir: Path, out_dir: Path, live_dir: Path, stage: str,
                  hardware: Hardware = Hardware(), inputs_dir: Path | None = None) -> list[dict]:
    """Train, then write ``out_dir`` atomically: ``model.pt`` and ``predictions_{val,test}.parquet``.

    ``inputs_dir``: the student_inputs stage's decoded arrays (None: decode the JPEGs on every read)."""
    splits = read_splits(manifest_dir)
    train = splits["train"]
    seed_everything(cfg["seed"])
    device = resolve_device(cfg["device"], "student.device")
    model = StudentClassifier(build_backbone(cfg["backbone"], "student.backbone"), train.num_classes)
    mean, std = model.backbone.mean, model.backbone.std
    data = student_images({name: splits[name] for name in ("train", "val")}, cfg["input_size"], mean, std,
                          inputs_dir)
    optimizer, scheduler = sgd([{"params": list(model.parameters())}], cfg)
    # Resume only from a checkpoint of this very config and data.
    key = resume.fingerprint(cfg, (manifest_dir / "classes.json").read_text(), train.image_ids.tolist())
    history = fit(model, classifier_step, data["train"], data["val"], loop_config(cfg, device, hardware), optimizer,
                  scheduler, resume.resume_dir(stage, key), live_dir, train.image_ids)
    write_student(out_dir, model, splits, cfg, describe(cfg, history), device, inputs_dir=inputs_dir)
    resume.clear(stage)
    return history
