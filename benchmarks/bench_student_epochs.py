"""One epoch of each student training stage on CPU: the path before issue 18 and today's, side by side.

    python benchmarks/bench_student_epochs.py [--steps 8] [--val-passes 2] [--params params.yaml]

Reads the DAG's outputs (data/dataset, data/student_inputs, data/teacher_cache with cache.cache_features: true,
models/teacher; `make run` or `snakemake data/teacher_cache data/student_inputs` first) and, for
train_student, distill_features (stage 1) and train_distilled (stage 2), times training steps as the loop runs
them (loader, flips, step, backward, SGD update) and one validation pass, on each variant:

- before: JPEGs decoded and resized per image per step, contiguous (NCHW) tensors, the backbone's zero padding
  as separate modules, validation at the training batch, the teacher's outputs read image by image from the
  cache file, torchvision's RoIAlign;
- now: the student_inputs arrays, channels_last (``train.channels_last``), the symmetric padding folded into the
  convs (``backbones.zoo.fold_symmetric_padding``), validation at
  ``train.eval_batch_size``, the teacher's outputs as the trainers read them now, and stage 1's student
  RoIAlign as ``train.student_roi_align`` says.

Every stage and variant is set up side by side and stepped in turn, batch by batch (``--steps`` steps each,
untimed, then the same ``--steps`` batches timed, then ``--val-passes`` validation passes each after an
untimed one: a later epoch, with what the first computes once per image kept), so that a busy neighbour slows
all alike; the epoch is the mean step time times the steps of an epoch plus one validation pass. It prints
images per second of each variant, their ratio, stage 2's epoch over the plain student's, the share of each
epoch spent loading data, in forward/backward (with the update), reading the teacher's outputs and validating,
and how much faster each of those parts got. Timings on a shared machine are noisy; compare the ratios of one run.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import wsdkd  # noqa: F401  (first: it sets the OpenMP wait policy, which torch reads as it loads)
import numpy as np
import torch

from bench_cpu_step import pad_apart
from dag_outputs import add_arguments, open_outputs
from wsdkd.backbones.zoo import build_backbone
from wsdkd.data.images import random_hflip
from wsdkd.data.student_inputs import student_images
from wsdkd.distill.training import (DistilledStudent, FeatureStep, FeatureStudent, PredictionStep, _datasets,
                                    _open_parts, feature_adapter, stage2_groups, uses_cached_features)
from wsdkd.engine import distributed
from wsdkd.engine.device import autocast
from wsdkd.engine.loop import Hardware, _inputs, _loader, evaluate_loss
from wsdkd.student.model import StudentClassifier
from wsdkd.student.memory import student_training
from wsdkd.student.training import classifier_step, loop_config, sgd
from wsdkd.teacher.targets import TeacherTargets

STAGES = ("train_student", "distill_features", "train_distilled")
# What TeacherTargets serves a step; each is timed as teacher-target reading (calls within calls count once).
TARGET_READS = ("logits", "image_predictions", "rois", "to_input", "cached_features", "valid_rows")
PARTS = ("data", "forward/backward", "targets", "validation")


def now() -> np.ndarray:
    """(wall-clock, CPU) seconds: the CPU time of the process's threads moves little when neighbours load the
    cores, so its ratios stay meaningful on a shared machine; the wall clock is what an idle run would see."""
    return np.array([time.perf_counter(), time.process_time()])


@dataclass
class Clock:
    """(wall, CPU) seconds spent per part of an epoch, summed over the timed steps."""

    images: int = 0
    parts: dict = field(default_factory=lambda: {name: np.zeros(2) for name in PARTS})
    depth: int = 0

    @contextlib.contextmanager
    def reading(self):
        self.depth += 1
        start = now()
        try:
            yield
        finally:
            self.depth -= 1
            if self.depth == 0:
                self.parts["targets"] += now() - start


def time_target_reads(targets: TeacherTargets, clock: Clock) -> None:
    """Count the time ``targets``' reads take as ``clock``'s teacher-target reading."""
    for name in TARGET_READS:
        read = getattr(targets, name)

        @functools.wraps(read)
        def timed(*args, _read=read, **kwargs):
            with clock.reading():
                return _read(*args, **kwargs)
        setattr(targets, name, timed)


def read_image_by_image(targets: TeacherTargets) -> None:
    """The reader before issue 18: one float32 array per image and row, then stacked."""
    def stack(name, indices):
        return torch.from_numpy(np.stack([targets.cache.read(name, int(i)) for i in indices]))
    targets._stack = stack


@dataclass
class Variant:
    name: str
    hardware: Hardware
    inputs: Path | None  # None: decode the JPEGs
    per_image_reads: bool  # the teacher's outputs read and cast image by image, as before issue 18
    padding_apart: bool  # the backbone's zero padding as separate modules (bench_cpu_step.pad_apart), as before


def build(stage: str, params: dict, splits: dict, teacher, parts, variant: Variant):
    """(model, step, optimiser, train data, val data, the parts' targets) of ``stage``, as its trainer sets it up."""
    student_cfg = params["student"]
    torch.manual_seed(student_cfg["seed"])
    backbone = build_backbone(student_cfg["backbone"], "student.backbone")
    student = StudentClassifier(pad_apart(backbone) if variant.padding_apart else backbone,
                                splits["train"].num_classes)
    mean, std, size = student.backbone.mean, student.backbone.std, student_cfg["input_size"]
    if stage == "train_student":
        data = student_images({n: splits[n] for n in ("train", "val")}, size, mean, std, variant.inputs)
        optimizer, _ = sgd([{"params": list(student.parameters())}], student_cfg, student_cfg["epochs"], "student")
        return student, classifier_step, optimizer, data["train"], data["val"]
    data = _datasets(splits, size, mean, std, variant.inputs)
    if stage == "distill_features":
        cfg = params["distill"]["features"]
        cached = uses_cached_features(cfg, parts[0].targets.cache.has_features)
        model = FeatureStudent(student, feature_adapter(cfg["method"], cfg["layer"], student, teacher,
                                                        cfg["hint_stride"]))
        step = FeatureStep(parts, cfg, teacher, size, cached, variant.hardware.student_roi_align,
                           variant.hardware.teacher_maps_gb)
        own = ("lr", "momentum", "weight_decay", "schedule", "warmup_epochs")
        optimizer, _ = sgd([{"params": model.conv_parameters(cfg["layer"])}],
                           {**student_cfg, **{k: cfg[k] for k in own}}, cfg["epochs"], "distill.features")
        return model, step, optimizer, data["train"], data["val"]
    cfg = params["distill"]["predictions"]
    num_proposals = int(parts[0].targets.cache.read("prior", 0).shape[0])
    model = DistilledStudent(student, splits["train"].num_classes, num_proposals, cfg)
    optimizer, _ = sgd(stage2_groups(model, student_cfg["lr"], cfg), student_cfg, student_cfg["epochs"], "student")
    return model, PredictionStep(parts, cfg, None, student_cfg["hflip"]), optimizer, data["train"], data["val"]


class Runner:
    """One stage on one variant, set up as its trainer sets it up, stepped one batch at a time as the loop steps."""

    def __init__(self, stage: str, params: dict, splits: dict, teacher, cache_dir: Path, variant: Variant,
                 cfg, clock: Clock) -> None:
        self.cfg, self.clock, self.variant = replace(cfg, hardware=variant.hardware), clock, variant
        self.parts = _open_parts(splits, cache_dir, teacher)
        for part in self.parts:
            if variant.per_image_reads:
                read_image_by_image(part.targets)
            time_target_reads(part.targets, clock)
        self.model, self.step_fn, self.optimizer, train, self.val = build(stage, params, splits, teacher,
                                                                          self.parts, variant)
        self.model.to(self.cfg.device).train()
        if self.cfg.hardware.channels_last:
            self.model.to(memory_format=torch.channels_last)
        self.batches = _loader(train, self.cfg, distributed.train_sampler(train, cfg.seed), cfg.batch_size)
        self.flips = torch.Generator().manual_seed(cfg.seed)

    def step(self, batches, timed: bool) -> None:
        cfg, clock, model = self.cfg, self.clock, self.model
        model.train()
        start = now()
        images, labels, rows = next(batches)
        if cfg.hflip:
            images = random_hflip(images, self.flips)
        images, labels = _inputs(images, cfg), labels.to(cfg.device)
        loaded = now()
        before = clock.parts["targets"].copy()
        with autocast(cfg.device, cfg.amp):
            loss = self.step_fn(model, images, labels, rows)["loss"]
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        loss.item()
        done = now()
        if not timed:  # the first epoch: oneDNN builds its kernels once, the teacher terms and maps are kept
            clock.parts["targets"] = before
            return
        clock.images += len(images)
        clock.parts["data"] += loaded - start
        clock.parts["forward/backward"] += done - loaded - (clock.parts["targets"] - before)

    def validate(self, weight: float) -> None:
        """One pass over the validation split, counted with ``weight`` (1 / the passes timed)."""
        before = self.clock.parts["targets"].copy()
        batch = self.cfg.hardware.eval_batch_size or self.cfg.batch_size
        start = now()
        evaluate_loss(self.model, self.step_fn, _loader(self.val, self.cfg, distributed.Shard(len(self.val)), batch),
                      self.cfg)
        self.clock.parts["validation"] += (now() - start) * weight
        self.clock.parts["targets"] = before  # validation's reads count as validation

    def close(self) -> None:
        for part in self.parts:
            part.targets.close()


def epoch_parts(clock: Clock, num_train: int) -> dict[str, np.ndarray]:
    """Each part's (wall, CPU) seconds in an epoch: the steps scaled to the whole split, one validation pass."""
    scale = num_train / clock.images
    return {name: seconds * (1.0 if name == "validation" else scale) for name, seconds in clock.parts.items()}


def epoch_seconds(clock: Clock, num_train: int) -> tuple[np.ndarray, dict]:
    """The epoch's (wall, CPU) seconds and each part's share of its wall time."""
    parts = epoch_parts(clock, num_train)
    total = sum(parts.values())
    return total, {name: seconds[0] / total[0] for name, seconds in parts.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser)
    parser.add_argument("--inputs", type=Path, default=Path("data/student_inputs"))
    parser.add_argument("--steps", type=int, default=8, help="timed steps per stage and variant")
    parser.add_argument("--val-passes", type=int, default=2, help="timed validation passes per stage and variant")
    parser.add_argument("--stages", nargs="+", default=list(STAGES), choices=STAGES)
    args = parser.parse_args()
    params, splits, teacher, _ = open_outputs(args, torch.device("cpu"))
    student_cfg = {**params["student"], "device": "cpu"}
    params = {**params, "student": student_cfg}
    today = Hardware.from_params(params["train"])
    variants = [Variant("before", replace(today, channels_last=False, eval_batch_size=None,
                                          student_roi_align="torchvision"), None, True, True),
                Variant("now", today, args.inputs, False, False)]
    device = torch.device("cpu")
    num_train = len(splits["train"])
    print(f"{num_train} train / {len(splits['val'])} val images, batch {student_cfg['batch_size']}, "
          f"{student_cfg['input_size']} px, {torch.get_num_threads()} threads, {args.steps} steps and {args.val_passes} validation passes per stage")
    clocks = {(stage, v.name): Clock() for stage in STAGES for v in variants}
    runners = []
    try:
        for stage in args.stages:
            cfg = loop_config(student_cfg, device, Hardware(), student_training(student_cfg, splits["train"].num_classes),
                              stage, hflip=student_cfg["hflip"] and stage == "train_student")
            for variant in variants:
                runners.append(Runner(stage, params, splits, teacher, args.cache, variant, cfg,
                                      clocks[stage, variant.name]))
        # Every stage and variant step by step in turn, so that whatever else loads the machine loads all alike
        # (and stage 2's epoch can be set against the plain student's). The same batches twice, the first time
        # untimed, as in a run's later epochs: what the first epoch computes once per image and flip (the
        # teacher's kept maps, stage 1's quadratic terms) is then kept, as for every epoch after the first.
        for timed in (False, True):
            batches = {id(runner): iter(runner.batches) for runner in runners}
            for _ in range(args.steps):
                for runner in runners:
                    runner.step(batches[id(runner)], timed)
            for _ in range(args.val_passes if timed else 1):
                for runner in runners:
                    runner.validate(1.0 / args.val_passes if timed else 0.0)
    finally:
        for runner in runners:
            runner.close()
    report(clocks, variants, args.stages, num_train)


def report(clocks: dict, variants: list[Variant], stages: list[str], num_train: int) -> None:
    epochs = {}
    print(f"\n{'stage':18s} {'path':7s} {'epoch s':>8s} {'img/s':>7s} {'CPU s':>7s}   share of the epoch: data  "
          f"fwd/bwd  targets  validation")
    for stage in stages:
        for path in variants:
            seconds, share = epoch_seconds(clocks[stage, path.name], num_train)
            epochs[stage, path.name] = seconds
            print(f"{stage:18s} {path.name:7s} {seconds[0]:8.1f} {num_train / seconds[0]:7.1f} {seconds[1]:7.1f}   "
                  f"{share['data']:24.0%} {share['forward/backward']:8.0%} {share['targets']:8.0%} "
                  f"{share['validation']:11.0%}")
    print("\nratios (wall clock; CPU time in brackets)")
    for stage in stages:
        wall, cpu = epochs[stage, "before"] / epochs[stage, "now"]
        print(f"  {stage:18s} images/s now / before: {wall:.2f}x ({cpu:.2f}x)" + ("" if wall >= 2.5 else
                                                                                   "   target 2.5x"))
        # What each lever bought: each part's seconds before over now (decoded inputs: data; channels_last:
        # forward/backward; block reads: targets; the large batch and channels_last: validation).
        before, after = (epoch_parts(clocks[stage, name], num_train) for name in ("before", "now"))
        print("    " + ", ".join(f"{part} {before[part][0] / after[part][0]:.2f}x" for part in PARTS
                                 if after[part][0] > 0 and before[part][0] > 0))
    if {"train_student", "train_distilled"} <= set(stages):
        for path in variants:
            wall, cpu = epochs["train_distilled", path.name] / epochs["train_student", path.name]
            print(f"  stage 2 epoch / plain-student epoch, {path.name:6s}: {wall:.2f} ({cpu:.2f})" +
                  ("   target 1.10" if path.name == "now" and wall > 1.10 else ""))
    if not all(np.isfinite(seconds).all() for seconds in epochs.values()):
        raise SystemExit("a timing was not finite")


if __name__ == "__main__":
    main()
