"""S-Cls w/: the paper's two distillation stages, with the compared methods and ablations as settings of them.

Stage 1 (``features``, Eq. 3-4) trains only the student's conv layers (and the adapter Psi) so that its RoI
features on the teacher's selected proposals match the teacher's, each RoI weighted by s'. Stage 2
(``predictions``, Eq. 5-11) trains the whole student, initialised from stage 1, on BCE plus lambda times a
soft loss against the teacher's cached predictions. Every row of the paper's Tables 1 and 4 is a choice of:

- ``features.method``: ``roi`` (the paper), ``fitnets`` (a hint on a whole middle-layer map) or ``none``;
- ``features.roi_weights``: ``objectness`` (RoI-aware), ``none`` (Table 4's "NMS proposals transfer", and the
  released code's fc7 recipe, whose RoIs are scaled by their prior before the heads on both sides), ``prior``;
- ``predictions.soft_loss``: ``class_aware_l2`` (the paper), ``class_aware_ce`` (released code), ``hinton``,
  ``none``; and ``predictions.attention_weight`` > 0 adds attention transfer.

Both stages run through the shared loop (loop.py). Their datasets yield rows (rows.py), so a step can read
the teacher's outputs of exactly the batch's images; flips are drawn by the steps (the teacher's image and
boxes must flip with the student's), from torch's RNG, which the loop checkpoints.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..backbones.taps import Taps
from ..backbones.zoo import build_backbone
from ..data.manifest import Split
from ..data.student_inputs import student_images
from ..engine import choice
from ..engine.checkpoint import seed_everything
from ..engine.device import resolve_device
from ..engine.epoch_terms import batch_mean
from ..engine.loop import Hardware, fit
from ..engine.memory import StageMemory
from ..engine.rows import OffsetRows, locate
from ..pipeline import resume
from ..pipeline.errors import UserError
from ..student.losses import hard_label_bce
from ..student.memory import student_training
from ..student.model import StudentClassifier, load_student
from ..student.training import MODEL_FILE, describe, loop_config, read_splits, sgd, write_student
from ..teacher.inputs import resize_and_flip
from ..teacher.targets import TeacherTargets
from ..teacher.wsddn import FEATURE_STRIDE, ROI_SIZE, TEACHER_FILE, TWDet, load_teacher, prior_scaled, roi_features
from .diagnostics import positive_readings, temperature_summary
from .losses import (ChannelAdapter, attention_map, attention_transfer_loss, class_aware_soft_loss,
                     fitnets_hint_loss, hinton_kd_loss, hinton_targets, roi_distill_loss, roi_distill_loss_from_terms,
                     roi_distill_terms, softened_student_predictions, softened_teacher_predictions)
from .memory import feature_training
from .per_image_memo import PerImageMemo
from .separable_roi_align import pooling_weights, separable_roi_align
from .teacher_maps import TeacherMaps
from .temperatures import PAPER_INIT, Temperatures

log = logging.getLogger(__name__)

FEATURE_METHODS = ("roi", "fitnets", "none")
LAYERS = ("conv", "fc")
SOFT_LOSSES = ("class_aware_l2", "class_aware_ce", "hinton", "none")
_CLASS_AWARE = {"class_aware_l2": "l2", "class_aware_ce": "sigmoid_ce"}  # -> class_aware_soft_loss's names
TRAIN_SPLITS = ("train", "val")


@dataclass
class TargetPart:
    """One split's share of the training rows and its teacher outputs."""

    offset: int
    targets: TeacherTargets


def _flips(model: nn.Module, enabled: bool, count: int) -> torch.Tensor | None:
    return torch.rand(count) < 0.5 if enabled and model.training else None


def _flip(images: torch.Tensor, flips: torch.Tensor | None) -> torch.Tensor:
    return resize_and_flip(images, images.shape[-1], flips.to(images.device) if flips is not None else None)


# ---- Stage 1 ----

class FeatureStudent(nn.Module):
    """Stage 1's trainable whole: the student and the adapter (Psi of Eq. 4, or FitNets' regressor)."""

    def __init__(self, student: StudentClassifier, adapter: nn.Module) -> None:
        super().__init__()
        self.student, self.adapter = student, adapter

    def conv_parameters(self, layer: str) -> list[nn.Parameter]:
        """What stage 1 may change: the convs up to the distilled layer and the adapter, never the classifier."""
        backbone = self.student.backbone
        modules = [backbone.body16, self.adapter] + ([backbone.roi_head] if layer == "fc" else [])
        return [p for m in modules for p in m.parameters()]


def feature_adapter(method: str, layer: str, student: StudentClassifier, teacher: TWDet,
                    hint_stride: int) -> nn.Module:
    """Psi for ``roi`` (1x1 conv on the stride-16 map, or a linear map of RoI vectors for ``fc``), FitNets'
    regressor (1x1 conv at the hint layer), or nothing."""
    if method == "roi" and layer == "fc":
        width = teacher.classify.in_features
        out = student.backbone.out_features
        return nn.Identity() if out == width else nn.Linear(out, width)
    if method == "roi":
        return ChannelAdapter(student.backbone.channels16, teacher.channels)
    if method == "fitnets":
        return ChannelAdapter(_channels_at(student.backbone.body16, hint_stride),
                              _channels_at(teacher.body, hint_stride))
    return nn.Identity()


def _channels_at(body: nn.Module, stride: int) -> int:
    taps, probe = Taps(body, [stride]), torch.zeros(1, 3, 4 * stride, 4 * stride)
    was_training = body.training
    body.eval()
    with torch.no_grad(), taps.recording(probe):
        body(probe)
    body.train(was_training)
    return taps.maps[0].shape[1]


class FeatureStep:
    """The loop's step for stage 1: Eq. 3 on RoI features (``roi``) or FitNets' hint loss (``fitnets``)."""

    def __init__(self, parts: list[TargetPart], cfg: dict, teacher: TWDet, student_size: int,
                 cached: bool, roi_align: str = "torchvision", teacher_maps_gb: float = 0.0) -> None:
        self.parts, self.cfg, self.teacher, self.size, self.cached = parts, cfg, teacher, student_size, cached
        self.hints = (TeacherMaps(teacher, [cfg["hint_stride"]], teacher_maps_gb)
                      if cfg["method"] == "fitnets" else None)
        self.roi_align = roi_align  # the student's RoIAlign on CPU (params' train.student_roi_align)
        # quadratic: conv-layer RoIs' L_f as a quadratic form of the map, its teacher terms kept per image and flip
        quadratic = roi_align == "quadratic" and cfg["method"] == "roi" and cfg["layer"] == "conv"
        self.terms = PerImageMemo(teacher_maps_gb) if quadratic else None

    def _student_pool(self, maps: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
        if self.roi_align in ("matmul", "quadratic") and maps.device.type == "cpu":
            return separable_roi_align(maps, boxes, ROI_SIZE, 1.0 / FEATURE_STRIDE)
        return roi_features(maps, boxes)

    def __call__(self, model: FeatureStudent, images: torch.Tensor, labels: torch.Tensor, rows: torch.Tensor) -> dict:
        part, indices = locate(self.parts, rows)
        flips = _flips(model, self.cfg["hflip"], len(indices))
        images = _flip(images, flips)
        if self.hints is not None:
            return {"loss": self._hint(model, part, indices, images, flips)}
        return {"loss": self._roi(model, part, indices, images, flips)}

    def _hint(self, model: FeatureStudent, part: TargetPart, indices: np.ndarray, images: torch.Tensor,
              flips: torch.Tensor | None) -> torch.Tensor:
        student_taps = Taps(model.student.backbone.body16, [self.cfg["hint_stride"]])
        with student_taps.recording(images):
            model.student.backbone.body16(images)
        hint, = self.hints(part.targets, part.offset, indices, flips, images.device)
        return fitnets_hint_loss(student_taps.maps[0].float(), hint, model.adapter)

    def _teacher_rois(self, targets: TeacherTargets, indices: np.ndarray, rois, flips: torch.Tensor | None,
                      device: torch.device) -> torch.Tensor:
        """(N R, C, 7, 7) the teacher's pooled RoIs (or, for ``fc``, (N R, D) its head's vectors, Eq. 2)."""
        teacher = self.teacher
        with torch.no_grad():
            if self.cached:
                teacher_rois = targets.cached_features(indices).to(device)
            else:
                teacher_images = targets.teacher_inputs(indices, flips, device)
                teacher_boxes = targets.to_input(indices, rois.boxes, targets.scale, flips).to(device)
                teacher_rois = teacher.pool(teacher.body(teacher_images), teacher_boxes)
            teacher_rois = teacher_rois.float().reshape(rois.boxes.shape[0] * rois.boxes.shape[1], -1, ROI_SIZE,
                                                        ROI_SIZE)
            if self.cfg["layer"] == "fc":  # the head's vector of each RoI, as the teacher computes it (Eq. 2)
                phi = teacher_rois.mean(dim=(2, 3)) if teacher.averaged else teacher_rois
                teacher_rois = teacher.embed(phi, rois.prior.to(device))
        return teacher_rois

    def _terms(self, targets: TeacherTargets, indices: np.ndarray, flips: torch.Tensor | None, map_size,
               device: torch.device) -> list[torch.Tensor]:
        """[G, H, c] of Eq. 3's quadratic form (losses.roi_distill_terms) for these images."""
        cfg = self.cfg
        rois = targets.rois(indices, cfg["roi_source"], cfg["roi_weights"])
        boxes = targets.to_input(indices, rois.boxes, self.size, flips).to(device)
        teacher_rois = self._teacher_rois(targets, indices, rois, flips, device)
        pooling = pooling_weights(boxes.float(), *map_size, ROI_SIZE, 1.0 / FEATURE_STRIDE)
        weights = rois.weights.to(device) if rois.weights is not None else None
        return list(roi_distill_terms(teacher_rois.view(*rois.boxes.shape[:2], *teacher_rois.shape[1:]), pooling,
                                      weights, rois.valid.to(device)))

    def _roi(self, model: FeatureStudent, part: TargetPart, indices: np.ndarray, images: torch.Tensor,
             flips: torch.Tensor | None) -> torch.Tensor:
        cfg, device, teacher, targets = self.cfg, images.device, self.teacher, part.targets
        body = model.student.backbone.body16(images)
        if self.terms is not None:
            maps = model.adapter(body).float()
            terms = self.terms(part.offset, indices, flips,
                               lambda rows, turned: self._terms(targets, rows, turned, maps.shape[2:], device), device)
            return roi_distill_loss_from_terms(maps, *terms)
        rois = targets.rois(indices, cfg["roi_source"], cfg["roi_weights"])
        batch, count = rois.boxes.shape[:2]
        student_boxes = targets.to_input(indices, rois.boxes, self.size, flips).to(device)
        teacher_rois = self._teacher_rois(targets, indices, rois, flips, device)
        if cfg["layer"] == "fc":  # the student's head reads its RoIs scaled like the teacher's (a * s_R + b)
            pooled = prior_scaled(self._student_pool(body, student_boxes), rois.prior.to(device), teacher.a, teacher.b)
            student_rois = model.adapter(model.student.backbone.roi_head(pooled))
        else:
            student_rois = self._student_pool(model.adapter(body), student_boxes)
        shape = (batch, count, *student_rois.shape[1:])
        weights = rois.weights.to(device) if rois.weights is not None else None
        return roi_distill_loss(teacher_rois.reshape(shape), student_rois.float().reshape(shape), weights,
                                rois.valid.to(device))


# ---- Stage 2 ----

def _temperatures(size: int, setting: str | float, init: float, parameterisation: str) -> Temperatures:
    """``setting`` "learnable" (from ``init``) or a number (fixed there, no gradient)."""
    learnable = setting == "learnable"
    return Temperatures(size, init if learnable else float(setting), learnable, parameterisation)


class DistilledStudent(nn.Module):
    """Stage 2's trainable whole: the student and the temperatures of Eq. 6-8 (checkpointed with it)."""

    def __init__(self, student: StudentClassifier, num_classes: int, num_proposals: int, cfg: dict) -> None:
        super().__init__()
        self.student = student
        kind = cfg["temperature_parameterisation"]
        self.student_t = _temperatures(num_classes, cfg["student_temperature"], cfg["student_temperature_init"], kind)
        self.teacher_tc = _temperatures(num_classes, cfg["teacher_temperature"], PAPER_INIT, kind)
        self.teacher_td = _temperatures(num_proposals, cfg["teacher_temperature"], PAPER_INIT, kind)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.student(images)

    def temperatures(self) -> dict[str, torch.Tensor]:
        """t (K,) of Eq. 8, t^c (K,) and t^d (R,) of Eq. 6-7, by the names the curves and model.json use."""
        return {"t": self.student_t(), "tc": self.teacher_tc(), "td": self.teacher_td()}

    def temperature_parameters(self) -> list[nn.Parameter]:
        return [p for m in (self.student_t, self.teacher_tc, self.teacher_td) for p in m.parameters()]


class PredictionStep:
    """The loop's step for stage 2: BCE (Eq. 10) + lambda x the soft loss, plus attention transfer if weighted.

    Its terms (diagnostics.py): each loss term, the temperatures' mean / min / max, and on the positives
    the mean soft target, the mean softened student score and the share where the soft gradient opposes the BCE.
    """

    def __init__(self, parts: list[TargetPart], cfg: dict, teacher: TWDet | None, hflip: bool,
                 teacher_maps_gb: float = 0.0) -> None:
        self.parts, self.cfg, self.hflip = parts, cfg, hflip
        self.strides = cfg["attention_strides"]
        # Attention transfer reads only the teacher's attention maps (C times smaller than its maps): keep those.
        self.attention = (TeacherMaps(teacher, self.strides, teacher_maps_gb, attention_map)
                          if teacher is not None else None)

    def __call__(self, model: DistilledStudent, images: torch.Tensor, labels: torch.Tensor, rows: torch.Tensor) -> dict:
        cfg = self.cfg
        part, indices = locate(self.parts, rows)
        flips = _flips(model, self.hflip, len(indices))
        images, device = _flip(images, flips), images.device
        student_taps = Taps(model.student.backbone.body16, self.strides)
        if self.attention is not None:
            with student_taps.recording(images):
                logits = model(images)
        else:
            logits = model(images)
        m, batch = logits.float(), len(indices)
        loss = hard_label_bce(m, labels)
        terms = batch_mean("bce", loss, batch)
        kind = cfg["soft_loss"]
        if kind in _CLASS_AWARE:
            mc, md, valid = (t.to(device) for t in part.targets.logits(indices))
            temps = model.temperatures()
            target = softened_teacher_predictions(mc, md, temps["tc"], temps["td"], valid)
            soft = class_aware_soft_loss(target, m, temps["t"], _CLASS_AWARE[kind])
            student_soft = softened_student_predictions(m, temps["t"])
            for name, t in temps.items():
                terms.update(temperature_summary(name, t, batch))
        elif kind == "hinton":
            p = part.targets.image_predictions(indices).to(device)
            soft = hinton_kd_loss(m, p, cfg["hinton_temperature"], cfg["hinton_teacher_temperature"])
            target = hinton_targets(p, cfg["hinton_teacher_temperature"])
            student_soft = torch.sigmoid(m / cfg["hinton_temperature"])
        if kind != "none":
            loss = loss + cfg["lam"] * soft
            terms.update({**batch_mean("soft", soft, batch), **positive_readings(target, student_soft, labels)})
        if self.attention is not None:
            attention = attention_transfer_loss([x.float() for x in student_taps.maps],
                                                self.attention(part.targets, part.offset, indices, flips, device))
            loss = loss + cfg["attention_weight"] * attention
            terms.update(batch_mean("attention", attention, batch))
        return {"loss": loss, "logits": logits, "terms": terms}


# ---- Running the stages ----

def _cache_digest(targets: TeacherTargets) -> str:
    return hashlib.sha256(targets.cache.image_scores().tobytes()).hexdigest()


def _open_parts(splits: dict[str, Split], cache_dir: Path, teacher: TWDet | None) -> list[TargetPart]:
    parts, offset = [], 0
    for name in TRAIN_SPLITS:
        parts.append(TargetPart(offset, TeacherTargets(cache_dir / f"{name}.h5", splits[name], teacher)))
        offset += len(splits[name])
    return parts


def _datasets(splits: dict[str, Split], size: int, mean, std, inputs_dir: Path | None) -> dict[str, OffsetRows]:
    images = student_images({name: splits[name] for name in TRAIN_SPLITS}, size, mean, std, inputs_dir)
    datasets, offset = {}, 0
    for name in TRAIN_SPLITS:
        datasets[name] = OffsetRows(splits[name], offset, images[name])
        offset += len(splits[name])
    return datasets


def _image_ids(splits: dict[str, Split]) -> np.ndarray:
    return np.concatenate([splits[name].image_ids for name in TRAIN_SPLITS])


def _frozen_teacher(model_dir: Path, device: torch.device, class_names: list[str] | None = None) -> TWDet:
    teacher, _ = load_teacher(model_dir / TEACHER_FILE, class_names)
    return teacher.requires_grad_(False).eval().to(device)


def uses_cached_features(cfg: dict, cache_has_features: bool) -> bool:
    """Whether stage 1 reads the teacher's RoI features from the cache rather than running the teacher online.

    The cache holds the selected rows' RoI features of unflipped images, so it serves only that case (not
    FitNets, whose hint is a whole feature map).
    """
    servable = cfg["method"] == "roi" and cfg["roi_source"] == "selected" and not cfg["hflip"]
    if cfg["teacher_features"] == "cache":
        if not servable:
            raise UserError("distill.features.teacher_features: cache serves only method: roi with roi_source: "
                            "selected and no hflip; use auto or online")
        return True
    return cfg["teacher_features"] == "auto" and servable and cache_has_features


def _feature_memory(student_cfg: dict, cfg: dict, targets: TeacherTargets) -> StageMemory:
    """Stage 1's memory estimate, with as many RoIs per image as its targets give."""
    num_rois = targets.rois(np.zeros(1, np.int64), cfg["roi_source"], cfg["roi_weights"]).boxes.shape[1]
    return feature_training(student_cfg, len(targets.split.class_names), num_rois, cfg["layer"])


def train_features(student_cfg: dict, cfg: dict, manifest_dir: Path, cache_dir: Path, teacher_dir: Path,
                   out_dir: Path, live_dir: Path, stage: str, hardware: Hardware = Hardware(),
                   inputs_dir: Path | None = None) -> list[dict]:
    """Stage 1: write ``out_dir/model.pt``, the student whose convs learnt the teacher's features.

    ``cfg`` is ``distill.features``; with ``method: none`` the student is written as initialised (so a
    Table 4 row without stage 1 runs the same chain). ``inputs_dir``: the student_inputs stage's arrays
    (None: decode the JPEGs).
    """
    splits = read_splits(manifest_dir)
    seed_everything(student_cfg["seed"])
    device = resolve_device(student_cfg["device"], "student.device")
    student = StudentClassifier(build_backbone(student_cfg["backbone"], "student.backbone"),
                                splits["train"].num_classes)
    if cfg["method"] == "none":
        write_student(out_dir, student, splits, student_cfg, describe(student_cfg, [], stage1="none"), device,
                      predict=False)
        return []
    teacher = _frozen_teacher(teacher_dir, device, splits["train"].class_names)
    parts = _open_parts(splits, cache_dir, teacher)
    try:
        cached = uses_cached_features(cfg, parts[0].targets.cache.has_features)
        log.info("stage 1: %s on %s, teacher features %s", cfg["method"], cfg["layer"],
                 "from the cache" if cached else "computed online")
        model = FeatureStudent(student, feature_adapter(cfg["method"], cfg["layer"], student, teacher,
                                                        cfg["hint_stride"]))
        step = FeatureStep(parts, cfg, teacher, student_cfg["input_size"], cached, hardware.student_roi_align,
                           hardware.teacher_maps_gb)
        # Stage 1's own optimiser and schedule, the same for every stage-1 method (the plateau rule's factor and
        # patience are the student's).
        own = ("lr", "momentum", "weight_decay", "schedule", "warmup_epochs")
        optimizer, scheduler = sgd([{"params": model.conv_parameters(cfg["layer"])}],
                                   {**student_cfg, **{k: cfg[k] for k in own}}, cfg["epochs"], "distill.features")
        datasets = _datasets(splits, student_cfg["input_size"], student.backbone.mean, student.backbone.std,
                             inputs_dir)
        key = resume.fingerprint(student_cfg, cfg, _image_ids(splits).tolist(), _cache_digest(parts[0].targets),
                                 resume.file_digest(teacher_dir / TEACHER_FILE))
        history = fit(model, step, datasets["train"], datasets["val"],
                      loop_config(student_cfg, device, hardware, _feature_memory(student_cfg, cfg, parts[0].targets),
                                  stage, epochs=cfg["epochs"], hflip=False, keep_best=False), optimizer,
                      scheduler, resume.resume_dir(stage, key), live_dir, _image_ids(splits))
    finally:
        for part in parts:
            part.targets.close()
    write_student(out_dir, student, splits, student_cfg, describe(student_cfg, history, stage1=cfg["method"]),
                  device, predict=False)
    resume.clear(stage)
    return history


def stage2_groups(model: DistilledStudent, lr: float, cfg: dict) -> list[dict]:
    """Stage 2's parameter groups: the student's body at ``lr``, its classifier (the released code's fc8) at
    ``lr x classifier_lr_scale``, the learnable temperatures at ``lr x temperature_lr_scale`` (none when all
    are fixed). No weight decay on the temperatures: it would pull them towards 1 (log t) or infinity (1/t),
    priors the paper does not state.
    """
    classifier = list(model.student.classifier.parameters())
    body = [p for p in model.student.parameters() if all(p is not c for c in classifier)]
    groups = [{"params": body}, {"params": classifier, "lr": lr * cfg["classifier_lr_scale"]}]
    temperatures = model.temperature_parameters()
    if temperatures:
        groups.append({"params": temperatures, "lr": lr * cfg["temperature_lr_scale"], "weight_decay": 0.0})
    return groups


def train_distilled(student_cfg: dict, cfg: dict, manifest_dir: Path, cache_dir: Path, teacher_dir: Path,
                    init_dir: Path, out_dir: Path, live_dir: Path, stage: str,
                    hardware: Hardware = Hardware(), inputs_dir: Path | None = None) -> list[dict]:
    """Stage 2: train the student from ``init_dir`` (stage 1's output) and write it like the baseline's folder.

    ``cfg`` is ``distill.predictions``; epochs, batch and optimiser come from ``student_cfg`` so the distilled
    student and the baseline differ only in their losses. ``inputs_dir`` as for :func:`train_features`.
    """
    splits = read_splits(manifest_dir)
    seed_everything(student_cfg["seed"])
    device = resolve_device(student_cfg["device"], "student.device")
    classes = splits["train"].class_names
    student, _ = load_student(init_dir / MODEL_FILE, classes)
    if cfg["soft_loss"] not in SOFT_LOSSES:
        raise ValueError(f"unknown soft loss {cfg['soft_loss']!r} (expected one of {SOFT_LOSSES})")
    teacher = _frozen_teacher(teacher_dir, device, classes) if cfg["attention_weight"] > 0 else None
    parts = _open_parts(splits, cache_dir, teacher)
    try:
        num_proposals = int(parts[0].targets.cache.read("prior", 0).shape[0])
        model = DistilledStudent(student, splits["train"].num_classes, num_proposals, cfg)
        optimizer, scheduler = sgd(stage2_groups(model, student_cfg["lr"], cfg), student_cfg, student_cfg["epochs"],
                                   "student")
        datasets = _datasets(splits, student_cfg["input_size"], student.backbone.mean, student.backbone.std,
                             inputs_dir)
        key = resume.fingerprint(student_cfg, cfg, _image_ids(splits).tolist(), _cache_digest(parts[0].targets),
                                 resume.file_digest(init_dir / MODEL_FILE))
        resume_dir = resume.resume_dir(stage, key)
        history = fit(model, PredictionStep(parts, cfg, teacher, student_cfg["hflip"], hardware.teacher_maps_gb),
                      datasets["train"],
                      datasets["val"],
                      loop_config(student_cfg, device, hardware,
                                  student_training(student_cfg, splits["train"].num_classes), stage, hflip=False),
                      optimizer, scheduler, resume_dir, live_dir, _image_ids(splits))
        selected = choice.restore(resume_dir, model, history, student_cfg["select"])
    finally:
        for part in parts:
            part.targets.close()
    temps = {name: [round(v, 4) for v in t.tolist()] for name, t in model.temperatures().items()}
    write_student(out_dir, student, splits, student_cfg,
                  describe(student_cfg, history, selected_epoch=selected, distillation=cfg, temperatures=temps),
                  device, inputs_dir=inputs_dir)
    resume.clear(stage)
    return history
