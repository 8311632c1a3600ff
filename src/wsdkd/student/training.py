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
from ..engine import choice, schedule
from ..engine.checkpoint import seed_everything
from ..engine.device import resolve_device
from ..engine.distributed import rank_batch_size
from ..engine.epoch_terms import batch_mean
from ..engine.loop import Hardware, LoopConfig, fit
from ..engine.memory import StageMemory, micro_batch_size
from ..evaluate.predictions import write_predictions
from ..evaluate.reports import DESCRIPTION_FILE
from ..pipeline import resume
from ..pipeline.atomic import atomic_path
from .inference import predict_split
from .losses import hard_label_bce
from .memory import student_training
from .model import StudentClassifier, save_student

log = logging.getLogger(__name__)

MODEL_FILE = "model.pt"
SPLITS = ("train", "val", "test")


def classifier_step(model, images, labels, _index) -> dict:
    logits = model(images)
    loss = hard_label_bce(logits.float(), labels)
    return {"loss": loss, "logits": logits, "terms": batch_mean("bce", loss, len(images))}


def describe(cfg: dict, history: list[dict], **extra) -> dict:
    """What a person needs to know about a trained student, beside its weights."""
    return {"role": "student", "backbone": cfg["backbone"]["name"], "init": cfg["backbone"]["weights"],
            "input_size": cfg["input_size"], "epochs": len(history), **extra}


def read_splits(manifest_dir: Path) -> dict[str, Split]:
    return {name: read_split(manifest_dir, name) for name in SPLITS}


def sgd(groups: list[dict], cfg: dict, epochs: int, where: str):
    """SGD with momentum and weight decay, and the LR schedule ``cfg`` names (schedule.py).

    ``groups`` are torch parameter groups; a group's own ``lr`` / ``weight_decay`` override ``cfg``'s. ``where``
    names the params section in errors.
    """
    optimizer = torch.optim.SGD(groups, lr=cfg["lr"], momentum=cfg["momentum"], weight_decay=cfg["weight_decay"])
    return optimizer, schedule.build(optimizer, cfg, epochs, where)


def loop_config(cfg: dict, device: torch.device, hardware: Hardware, memory: StageMemory, stage: str,
                epochs: int | None = None, hflip: bool | None = None, keep_best: bool | None = None) -> LoopConfig:
    """The loop's settings from ``student``-like ``cfg``; stage 1 overrides epochs, flips and the model choice.
    ``memory``, the stage's estimate, sets the micro-batch when ``train.memory_cap_gb`` is set."""
    micro = micro_batch_size(memory, rank_batch_size(cfg["batch_size"]), hardware.memory_cap_gb, stage)
    return LoopConfig(epochs=cfg["epochs"] if epochs is None else epochs, batch_size=cfg["batch_size"],
                      seed=cfg["seed"], num_workers=cfg["num_workers"],
                      hflip=cfg["hflip"] if hflip is None else hflip, amp=cfg["amp"], device=device,
                      hardware=hardware, micro_batch=micro,
                      keep_best=cfg["select"] == "best_val" if keep_best is None else keep_best)


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
    optimizer, scheduler = sgd([{"params": list(model.parameters())}], cfg, cfg["epochs"], "student")
    # Resume only from a checkpoint of this very config and data.
    key = resume.fingerprint(cfg, (manifest_dir / "classes.json").read_text(), train.image_ids.tolist())
    resume_dir = resume.resume_dir(stage, key)
    history = fit(model, classifier_step, data["train"], data["val"],
                  loop_config(cfg, device, hardware, student_training(cfg, train.num_classes), stage), optimizer,
                  scheduler, resume_dir, live_dir, train.image_ids)
    selected = choice.restore(resume_dir, model, history, cfg["select"])
    write_student(out_dir, model, splits, cfg, describe(cfg, history, selected_epoch=selected), device,
                  inputs_dir=inputs_dir)
    resume.clear(stage)
    return history
