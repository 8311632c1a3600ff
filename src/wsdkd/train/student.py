"""Train S-Cls without distillation (the paper's "S-Cls w/o" baseline): sigmoid BCE on image labels (Eq. 10)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import torch

from .. import resume
from ..atomic import atomic_path
from ..data.images import SquareImages
from ..data.manifest import read_split
from ..inference import predict_split
from ..losses import hard_label_bce
from ..models.backbones import build_backbone
from ..models.student import StudentClassifier, save_student
from ..predictions import write_predictions
from ..reports import DESCRIPTION_FILE
from .checkpoint import seed_everything
from .device import resolve_device
from .loop import LoopConfig, fit

log = logging.getLogger(__name__)

MODEL_FILE = "model.pt"


def classifier_step(model, images, labels, _index) -> dict:
    logits = model(images)
    return {"loss": hard_label_bce(logits.float(), labels), "logits": logits}


def describe(cfg: dict, history: list[dict]) -> dict:
    """What a person needs to know about a trained student, beside its weights."""
    return {"role": "student", "backbone": cfg["backbone"]["name"], "init": cfg["backbone"]["weights"],
            "input_size": cfg["input_size"], "epochs": len(history),
            "train_seconds": round(sum(r["seconds"] for r in history), 1)}


def train_student(cfg: dict, manifest_dir: Path, out_dir: Path, live_dir: Path, stage: str) -> list[dict]:
    """Train, then write ``out_dir`` atomically: ``model.pt`` and ``predictions_{val,test}.parquet``."""
    splits = {name: read_split(manifest_dir, name) for name in ("train", "val", "test")}
    train = splits["train"]
    seed_everything(cfg["seed"])
    device = resolve_device(cfg["device"], "student.device")
    model = StudentClassifier(build_backbone(cfg["backbone"], "student.backbone"), train.num_classes)
    mean, std = model.backbone.mean, model.backbone.std
    data = {name: SquareImages(split, cfg["input_size"], mean, std) for name, split in splits.items()}

    optimizer = torch.optim.SGD(model.parameters(), lr=cfg["lr"], momentum=cfg["momentum"],
                                weight_decay=cfg["weight_decay"])
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, factor=cfg["lr_decay_factor"],
                                                           patience=cfg["lr_patience"])
    loop = LoopConfig(epochs=cfg["epochs"], batch_size=cfg["batch_size"], seed=cfg["seed"],
                      num_workers=cfg["num_workers"], hflip=cfg["hflip"], amp=cfg["amp"], device=device)
    # Resume only from a checkpoint of this very config and data.
    key = resume.fingerprint(cfg, (manifest_dir / "classes.json").read_text(), train.image_ids.tolist())
    resume_dir = resume.resume_dir(stage, key)
    history = fit(model, classifier_step, data["train"], data["val"], loop, optimizer, scheduler,
                  resume_dir, live_dir, train.image_ids)

    with atomic_path(out_dir) as tmp:
        tmp.mkdir(parents=True)
        save_student(tmp / MODEL_FILE, model.cpu(), train.class_names, cfg["input_size"], cfg)
        (tmp / DESCRIPTION_FILE).write_text(json.dumps(describe(cfg, history), indent=2) + "\n")
        for name in ("val", "test"):
            preds = predict_split(model, splits[name], cfg["input_size"], mean, std, cfg["batch_size"],
                                  device, cfg["amp"], cfg["num_workers"])
            write_predictions(tmp / f"predictions_{name}.parquet", preds)
    resume.clear(stage)
    return history
