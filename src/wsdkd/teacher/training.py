"""Train T-WDet on image labels only (Eq. 2): multi-scale squashed inputs, flips, BCE on p = sum of S.

The shared loop (loop.py) hands ``step`` a batch of (inputs, labels, rows). The teacher needs more than
pixels: each image's proposals, and, with a frozen backbone, its precomputed RoI features. So the datasets
yield rows (rows.py) and :class:`TeacherStep` fetches what they need: proposals always, phi from the
:class:`FeatureBank` when frozen, else it runs the body on the batch's pixels.
In training mode the step draws one scale per batch (in ``begin_batch``, so the micro-batches of a batch
share it) and a flip per image from torch's global RNG, which the loop checkpoints, so an interrupted run
resumes onto the same draws; in eval mode (validation) it uses the test scale without flips.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..data.images import SquareImages
from ..data.manifest import read_split
from ..engine.checkpoint import seed_everything
from ..engine.device import resolve_device
from ..engine.distributed import rank_batch_size
from ..engine.loop import Hardware, LoopConfig, fit
from ..engine.memory import micro_batch_size
from ..engine.rows import OffsetRows, locate
from ..evaluate.reports import DESCRIPTION_FILE
from ..pipeline import resume
from ..pipeline.atomic import atomic_path
from .feature_bank import FeatureBank
from .inputs import SplitProposals, resize_and_flip
from .memory import teacher_training
from .wsddn import (TEACHER_FILE, TWDet, build_teacher, image_scores, probability_bce, save_teacher,
                    spatial_regulariser, two_stream_scores)

TRAIN_SPLITS = ("train", "val")


@dataclass
class TeacherPart:
    """One split's share of the rows: its proposals and, when frozen, its bank of phi."""

    offset: int
    proposals: SplitProposals
    bank: FeatureBank | None


class TeacherStep:
    """The loop's step for T-WDet (see the module docstring); returns the BCE of Eq. 2 and logit(p)."""

    def __init__(self, parts: list[TeacherPart], scales: list[int], test_scale: int, hflip: bool,
                 spatial_reg: float = 0.0, spatial_reg_iou: float = 0.6) -> None:
        self.parts, self.scales, self.test_scale, self.hflip = parts, scales, test_scale, hflip
        self.spatial_reg, self.spatial_reg_iou = spatial_reg, spatial_reg_iou
        self.scale = scales[0]

    def begin_batch(self) -> None:
        self.scale = self.scales[int(torch.randint(len(self.scales), ()))]

    def __call__(self, model: TWDet, images: torch.Tensor, labels: torch.Tensor, rows: torch.Tensor) -> dict:
        part, indices = locate(self.parts, rows)
        device = labels.device
        if model.training:
            scale = self.scale
            flips = torch.rand(len(indices)) < 0.5 if self.hflip else None
        else:
            scale, flips = self.test_scale, None
        boxes, prior, valid = part.proposals.batch(indices, scale, flips, device)
        if part.bank is not None:
            phi = part.bank.phi(indices, scale, flips).to(device, non_blocking=True)
        else:
            phi = model.phi(model.body(resize_and_flip(images, scale, flips)), boxes)
        vectors = model.embed(phi, prior)
        mc, md = model.branches(vectors)
        scores = two_stream_scores(mc.float(), md.float(), valid=valid)
        p = image_scores(scores)
        loss = probability_bce(p, labels)
        if self.spatial_reg > 0 and model.training:
            loss = loss + self.spatial_reg * spatial_regulariser(vectors.float(), scores, boxes, labels, valid,
                                                                 self.spatial_reg_iou)
        return {"loss": loss, "logits": torch.logit(p)}


def describe(cfg: dict, history: list[dict]) -> dict:
    """What a person needs to know about a trained teacher, beside its weights."""
    return {"role": "teacher", "backbone": cfg["backbone"]["name"], "init": cfg["backbone"]["weights"],
            "freeze_backbone": cfg["freeze_backbone"], "head": cfg["head"], "scales": cfg["scales"],
            "cache_scale": cfg["cache_scale"], "epochs": len(history)}


def _bank(model: TWDet, cfg: dict, proposals: SplitProposals, folder: Path, device: torch.device,
          progress: bool) -> FeatureBank:
    """Fill (or reopen) the phi the run uses: train at every (scale, flip), val at the test scale."""
    bank = FeatureBank(folder, proposals, model, device, cfg["amp"], cfg["batch_size"], cfg["num_workers"])
    if proposals.split.name == "train":
        uses = [(s, f) for s in cfg["scales"] for f in ((False, True) if cfg["hflip"] else (False,))]
    else:
        uses = [(cfg["cache_scale"], False)]
    for scale, flip in uses:
        bank.ensure(scale, flip, progress)
    return bank


def train_teacher(cfg: dict, manifest_dir: Path, proposals_dir: Path, out_dir: Path, live_dir: Path,
                  stage: str, progress: bool = True, hardware: Hardware = Hardware()) -> list[dict]:
    """Train, then write ``out_dir`` atomically: ``model.pt`` and ``model.json``.

    Proposals are read from ``proposals_dir / {train,val}.h5``. With ``freeze_backbone`` phi of every proposal is
    computed first into a bank under the resume folder (kept across an interruption, dropped at the end).
    """
    splits = {name: read_split(manifest_dir, name) for name in TRAIN_SPLITS}
    seed_everything(cfg["seed"])
    device = resolve_device(cfg["device"], "teacher.device")
    model = build_teacher(cfg, splits["train"].num_classes)
    ids = [int(i) for s in splits.values() for i in s.image_ids]
    key = resume.fingerprint(cfg, (manifest_dir / "classes.json").read_text(), ids)
    resume_dir = resume.resume_dir(stage, key)
    bank_stage = f"{stage}_phi"  # keyed by what phi depends on, so an LR change keeps the bank
    bank_dir = (resume.resume_dir(bank_stage, resume.fingerprint(
        cfg["backbone"], cfg["head"], cfg["roi_op"], cfg["scales"], cfg["cache_scale"], cfg["hflip"], ids,
        [str(proposals_dir / f"{name}.h5") for name in splits])) if cfg["freeze_backbone"] else None)

    parts, datasets, offset = [], {}, 0
    for name, split in splits.items():
        proposals = SplitProposals(split, proposals_dir / f"{name}.h5")
        bank = _bank(model, cfg, proposals, bank_dir, device, progress) if bank_dir is not None else None
        parts.append(TeacherPart(offset, proposals, bank))
        size = None if bank is not None else (max(cfg["scales"]) if name == "train" else cfg["cache_scale"])
        datasets[name] = OffsetRows(split, offset, SquareImages(split, size, model.mean, model.std)
                                    if size is not None else None)
        offset += len(split)
    # The train split's, so predict makes the boxes the teacher learnt from (files made by tests may have none).
    proposals_params = parts[0].proposals.reader.params or None
    step = TeacherStep(parts, cfg["scales"], cfg["cache_scale"], cfg["hflip"], cfg["spatial_reg"],
                       cfg["spatial_reg_iou"])

    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.SGD(trainable, lr=cfg["lr"], momentum=cfg["momentum"], weight_decay=cfg["weight_decay"])
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, factor=cfg["lr_decay_factor"],
                                                           patience=cfg["lr_patience"])
    # Flips are the step's business (boxes flip with the image), so the loop's own image flip is off.
    micro = micro_batch_size(teacher_training(cfg, splits["train"].num_classes, parts[0].proposals.num_proposals),
                             rank_batch_size(cfg["batch_size"]), hardware.memory_cap_gb, stage)
    loop = LoopConfig(epochs=cfg["epochs"], batch_size=cfg["batch_size"], seed=cfg["seed"],
                      num_workers=cfg["num_workers"], hflip=False, amp=cfg["amp"], device=device, hardware=hardware,
                      micro_batch=micro)
    try:
        history = fit(model, step, datasets["train"], datasets["val"], loop, optimizer, scheduler, resume_dir,
                      live_dir, np.array(ids, np.int64))
    finally:
        for part in parts:
            part.proposals.close()
            if part.bank is not None:
                part.bank.close()

    with atomic_path(out_dir) as tmp:
        tmp.mkdir(parents=True)
        save_teacher(tmp / TEACHER_FILE, model.cpu(), splits["train"].class_names, cfg, proposals_params)
        (tmp / DESCRIPTION_FILE).write_text(json.dumps(describe(cfg, history), indent=2) + "\n")
    resume.clear(stage)
    resume.clear(bank_stage)
    return history
