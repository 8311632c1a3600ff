"""The epoch loop every trainer shares: batches, AMP, per-epoch checkpoints, resume, dvclive curves, and
DistributedDataParallel when the stage runs under torchrun (distributed.py).

What differs between trainers (baseline BCE, stage 1, stage 2) is only ``step``: a function of the model and
one batch that returns the loss (and, for classifiers, logits for the validation mAP, and the terms it reports).
A step that draws something once per batch (the teacher's scale) does it in an optional ``begin_batch()``,
which the loop calls before each training batch, so that the micro-batches of one batch share the draw.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from ..data.images import random_hflip
from ..evaluate.metrics import mean_over_classes, per_class_ap
from ..pipeline.atomic import atomic_path
from ..pipeline.errors import UserError
from ..pipeline.progress import progress_bar
from . import checkpoint, choice, distributed, schedule
from .curves import CURVES_FILE, plot_training_curves
from .device import autocast
from .epoch_terms import EpochTerms

log = logging.getLogger(__name__)

# step(model, images, labels, image_indices) -> {"loss": scalar tensor, optional "logits": (B, K) tensor,
# optional "terms": {name: (sum, count)}, averaged per epoch into train/<name> and val/<name>}
Step = Callable[[torch.nn.Module, torch.Tensor, torch.Tensor, torch.Tensor], dict]

@dataclass(frozen=True)
class Hardware:
    """How a trainer uses the machine (params' ``train`` section): speed, not what is learnt."""

    channels_last: bool = False  # NHWC weights and inputs, on CPU and CUDA
    pin_memory: bool = False  # CUDA only
    prefetch_factor: int = 2  # with workers only
    persistent_workers: bool = False  # with workers only
    eval_batch_size: int | None = None  # validation's batch; None: the training batch
    student_roi_align: str = "torchvision"  # stage 1's L_f on the student's map: torchvision | matmul | quadratic
    memory_cap_gb: float | None = None  # per device: batches split into micro-batches to fit (engine/memory.py)
    teacher_maps_gb: float = 0.0  # per-image teacher maps / stage 1's quadratic terms kept (distill/per_image_memo.py)

    @classmethod
    def from_params(cls, train: dict) -> Hardware:
        loader = train["loader"]
        return cls(train["channels_last"], loader["pin_memory"], loader["prefetch_factor"],
                   loader["persistent_workers"], train["eval_batch_size"], train["student_roi_align"],
                   train["memory_cap_gb"], train["teacher_maps_gb"])


@dataclass(frozen=True)
class LoopConfig:
    epochs: int
    batch_size: int  # the global batch; under DDP each rank takes its share
    seed: int
    num_workers: int
    hflip: bool
    amp: bool
    device: torch.device
    hardware: Hardware = Hardware()
    micro_batch: int | None = None  # images per forward/backward pass, gradients accumulated; None: whole batches
    keep_best: bool = False  # save the best-on-val epoch's weights beside the checkpoint (choice.py)


def _loader(data: Dataset, cfg: LoopConfig, sampler: Sampler, batch_size: int) -> DataLoader:
    """One loader per fit, so persistent workers live across epochs; the sampler decides the order.
    ``batch_size`` is this rank's."""
    workers, hardware = cfg.num_workers, cfg.hardware
    # Its own generator seeds the workers, so the global RNG (which steps draw from) is left untouched.
    return DataLoader(data, batch_size=batch_size, sampler=sampler,
                      num_workers=workers, generator=torch.Generator().manual_seed(cfg.seed),
                      pin_memory=hardware.pin_memory and cfg.device.type == "cuda",
                      prefetch_factor=hardware.prefetch_factor if workers else None,
                      persistent_workers=hardware.persistent_workers and workers > 0, drop_last=False)


def _inputs(images: torch.Tensor, cfg: LoopConfig) -> torch.Tensor:
    images = images.to(cfg.device, non_blocking=True)
    if cfg.hardware.channels_last and images.dim() == 4:
        images = images.contiguous(memory_format=torch.channels_last)  # what the model's weights are in
    return images


def _kept(epoch: int, resume_dir: Path) -> str:
    """What a run stopped during ``epoch`` (0-based) leaves to resume from."""
    return (f"the checkpoint after epoch {epoch} is kept in {resume_dir / checkpoint.LAST}" if epoch
            else "no epoch had finished, so there is no checkpoint")


def _check_finite(loss: torch.Tensor, epoch: int, step: int, image_ids: np.ndarray, resume_dir: Path) -> None:
    if not torch.isfinite(loss):
        raise UserError(f"training stopped: loss is {loss.item()} at epoch {epoch + 1}, step {step + 1}; batch "
                        f"image ids {image_ids.tolist()}; {_kept(epoch, resume_dir)}")


def _check_weights(model: torch.nn.Module, epoch: int, resume_dir: Path) -> None:
    """An epoch's last step can leave non-finite weights behind a finite loss; they must not be checkpointed."""
    bad = [name for name, value in model.state_dict().items()
           if value.is_floating_point() and not value.isfinite().all()]
    if bad:
        raise UserError(f"training stopped: weights {', '.join(bad[:3])} are not finite after epoch {epoch + 1}; "
                        f"{_kept(epoch, resume_dir)}")


def accumulate(step: Step, model: torch.nn.Module, images: torch.Tensor, targets: torch.Tensor,
               index: torch.Tensor, cfg: LoopConfig, check: Callable[[torch.Tensor], None],
               terms: EpochTerms | None = None) -> torch.Tensor:
    """Forward and backward of one batch, in micro-batches of at most ``cfg.micro_batch`` images; the batch's
    loss.

    Every step's loss is a mean over its images (Eq. 2, 3, 5, 10), so weighting each micro-batch's loss by its
    share of the batch makes the accumulated gradients those of the whole batch (exactly, up to float
    rounding, for a model without batch normalisation: BN would see the micro-batch's statistics). ``check``
    sees each micro-batch's loss before its backward pass; ``terms`` adds up the terms each reports (sums and
    counts, so micro-batches pool exactly).
    """
    size = len(images)
    chunk = size if cfg.micro_batch is None else cfg.micro_batch
    total = torch.zeros((), device=cfg.device)
    for start in range(0, size, chunk):
        part = slice(start, start + chunk)
        with autocast(cfg.device, cfg.amp):
            out = step(model, images[part], targets[part], index[part])
        loss = out["loss"]
        if terms is not None:
            terms.add(out.get("terms", {}))
        check(loss)
        share = len(images[part]) / size
        (loss * share).backward()
        total += loss.detach() * share
    return total


def evaluate_loss(model: torch.nn.Module, step: Step, loader: DataLoader, cfg: LoopConfig) -> dict:
    """Mean loss over ``loader``'s data, the step's terms and, when it returns logits, the interpolated mAP (%).

    Under DDP each rank evaluates its shard (:class:`distributed.Shard`) and the results are pooled.
    """
    model.eval()
    total, count, scores, labels, terms = 0.0, 0, [], [], EpochTerms()
    with torch.no_grad():
        for images, targets, index in loader:
            images, targets = _inputs(images, cfg), targets.to(cfg.device, non_blocking=True)
            with autocast(cfg.device, cfg.amp):
                out = step(model, images, targets, index)
            total += out["loss"].item() * len(images)
            count += len(images)
            terms.add(out.get("terms", {}))
            if "logits" in out:
                scores.append(torch.sigmoid(out["logits"].float()).cpu().numpy())
                labels.append(targets.cpu().numpy())
    total, count = distributed.sum_all(total, count)
    pooled = distributed.gather((scores, labels))
    scores, labels = [s for part in pooled for s in part[0]], [y for part in pooled for y in part[1]]
    result = {"loss": total / max(count, 1), **terms.means("")}
    if scores:
        ap = per_class_ap(np.concatenate(scores), np.concatenate(labels), interpolated=True)
        result["mAP"] = 100.0 * mean_over_classes(ap, warn=False)
    return result


def fit(model: torch.nn.Module, step: Step, train: Dataset, val: Dataset | None, cfg: LoopConfig,
        optimizer: torch.optim.Optimizer, scheduler: torch.optim.lr_scheduler.LRScheduler | None,
        resume_dir: Path, live_dir: Path, image_ids: np.ndarray) -> list[dict]:
    """Train for ``cfg.epochs``, resuming from ``resume_dir`` if a checkpoint of this config is there.

    ``image_ids`` maps dataset indices to image ids (named in the error when a loss goes non-finite).
    Returns the per-epoch history (also logged with dvclive to ``live_dir``, and drawn there as curves.png).
    Under DDP only rank 0 returns: the other ranks exit when training ends, so what a trainer writes afterwards is written once.
    """
    from dvclive import Live

    model.to(cfg.device)
    if cfg.device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # a few input sizes: cuDNN times its kernels once per size
    if cfg.hardware.channels_last:
        # NHWC: what tensor-core convolutions read fastest, and oneDNN's CPU convolutions too (no reorder per call)
        model.to(memory_format=torch.channels_last)
    history: list[dict] = []
    start = 0
    state = checkpoint.load_last(resume_dir, model, optimizer)
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        if scheduler is not None:
            scheduler.load_state_dict(state["scheduler"])
        checkpoint.set_rng_state(state["rng"])
        history, start = state["history"], state["epoch"]
        log.info("resuming from %s after epoch %d", resume_dir / checkpoint.LAST, start)
    flip_generator = torch.Generator().manual_seed(cfg.seed)
    if state is not None:
        flip_generator.set_state(state["flip_rng"])

    main = distributed.is_main()
    train_step = distributed.wrap(model, step)
    begin_batch = getattr(step, "begin_batch", lambda: None)
    if cfg.micro_batch is not None:
        log.info("batches of %d images run in micro-batches of %d, gradients accumulated (train.memory_cap_gb)",
                 distributed.rank_batch_size(cfg.batch_size), cfg.micro_batch)
    # The shuffle order depends on (seed, epoch) only, so a resumed epoch sees the batches it would have seen.
    sampler = distributed.train_sampler(train, cfg.seed * 100_003)
    train_loader = _loader(train, cfg, sampler, distributed.rank_batch_size(cfg.batch_size))
    # No gradients are kept in validation, so it can take far larger batches than training (each rank its shard).
    val_batch = max(1, (cfg.hardware.eval_batch_size or cfg.batch_size) // distributed.world_size())
    val_loader = _loader(val, cfg, distributed.Shard(len(val)), val_batch) if val is not None and len(val) else None
    # Rank 0 writes the curves beside live_dir and renames them into place at the end, like every other output:
    # a killed run leaves no metrics file that looks finished.
    with atomic_path(live_dir) if main else contextlib.nullcontext() as live_tmp:
        live = Live(str(live_tmp), dvcyaml=False, save_dvc_exp=False, report=None) if main else None
        for past in history if main else ():  # both tools delete outputs before a rerun: rebuild resumed epochs
            _log_epoch(live, past)
        for epoch in range(start, cfg.epochs):
            model.train()
            sampler.set_epoch(epoch)
            distributed.seed_epoch(cfg.seed, epoch, flip_generator)
            started, total, count, terms = time.perf_counter(), 0.0, 0, EpochTerms()
            batches = progress_bar(train_loader, desc=f"epoch {epoch + 1}/{cfg.epochs}", leave=False,
                                   dynamic_ncols=True, disable=not main)
            for step_index, (images, targets, index) in enumerate(batches):
                if cfg.hflip:
                    images = random_hflip(images, flip_generator)
                images, targets = _inputs(images, cfg), targets.to(cfg.device, non_blocking=True)
                begin_batch()
                optimizer.zero_grad(set_to_none=True)
                loss = accumulate(train_step, model, images, targets, index, cfg, lambda value: _check_finite(
                    value, epoch, step_index, image_ids[index.numpy()], resume_dir), terms)
                optimizer.step()
                total += loss.item() * len(images)
                count += len(images)
                batches.set_postfix(loss=f"{total / count:.4f}")
            distributed.sync_buffers(model)  # rank 0's batch-norm statistics, the ones its checkpoint holds
            total, count = distributed.sum_all(total, count)
            record = {"epoch": epoch + 1, "train/loss": total / count, "lr": optimizer.param_groups[0]["lr"],
                      "seconds": time.perf_counter() - started, **terms.means("train/")}
            if val_loader is not None:
                record.update({f"val/{k}": v for k, v in evaluate_loss(model, step, val_loader, cfg).items()})
            if scheduler is not None:
                schedule.advance(scheduler, record)
            _check_weights(model, epoch, resume_dir)
            history.append(record)
            if not main:
                continue
            if cfg.keep_best:  # before the checkpoint: a run killed between the two redoes the epoch
                choice.keep(resume_dir, model, history)
            _log_epoch(live, record)
            log.info("epoch %d/%d %s", epoch + 1, cfg.epochs,
                     " ".join(f"{k}={v:.4g}" for k, v in record.items() if k != "epoch"))
            checkpoint.save(resume_dir, {
                "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict() if scheduler is not None else None,
                "rng": checkpoint.rng_state(), "flip_rng": flip_generator.get_state(),
                "history": history, "epoch": epoch + 1,
            })
        if live is not None:
            live.end()
            # In the log, not model.json: a rerun that learns the same weights must leave the model folder's hash
            log.info("%d epochs in %.1f s", len(history), sum(r["seconds"] for r in history))
            plot_training_curves(history, live_tmp / CURVES_FILE, live_dir.name)
    distributed.finish()
    return history


# Not dvclive curves: the epoch is dvclive's step, and the seconds differ on every run, which would make the
# committed reference curves (and dvc.lock) change with no change in what was learnt. Both stay in the history.
_NOT_CURVES = {"epoch", "seconds"}


def _log_epoch(live, record: dict) -> None:
    for key, value in record.items():
        if key not in _NOT_CURVES and isinstance(value, (int, float)) and math.isfinite(value):
            live.log_metric(key, value)
    live.next_step()
