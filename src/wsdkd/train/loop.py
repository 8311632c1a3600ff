"""The epoch loop every trainer shares: batches, AMP, per-epoch checkpoints, resume, dvclive curves.

What differs between trainers (baseline BCE, stage 1, stage 2) is only ``step``: a function of the model and
one batch that returns the loss (and, for classifiers, logits for the validation mAP).
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from ..atomic import atomic_path
from ..data.images import random_hflip
from ..errors import UserError
from ..metrics import mean_over_classes, per_class_ap
from . import checkpoint
from .device import autocast

log = logging.getLogger(__name__)

# step(model, images, labels, image_indices) -> {"loss": scalar tensor, optional "logits": (B, K) tensor}
Step = Callable[[torch.nn.Module, torch.Tensor, torch.Tensor, torch.Tensor], dict]


@dataclass(frozen=True)
class LoopConfig:
    epochs: int
    batch_size: int
    seed: int
    num_workers: int
    hflip: bool
    amp: bool
    device: torch.device


def _loader(data: Dataset, cfg: LoopConfig, shuffle: bool, epoch: int) -> DataLoader:
    # The shuffle order depends on (seed, epoch) only, so a resumed epoch sees the batches it would have seen.
    generator = torch.Generator().manual_seed(cfg.seed * 100_003 + epoch)
    return DataLoader(data, batch_size=cfg.batch_size, shuffle=shuffle, num_workers=cfg.num_workers,
                      generator=generator, pin_memory=cfg.device.type == "cuda",
                      persistent_workers=False, drop_last=False)


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


def evaluate_loss(model: torch.nn.Module, step: Step, data: Dataset, cfg: LoopConfig) -> dict:
    """Mean loss over ``data`` and, when ``step`` returns logits, the interpolated mAP (%)."""
    model.eval()
    total, count, scores, labels = 0.0, 0, [], []
    with torch.no_grad():
        for images, targets, index in _loader(data, cfg, shuffle=False, epoch=0):
            images, targets = images.to(cfg.device, non_blocking=True), targets.to(cfg.device, non_blocking=True)
            with autocast(cfg.device, cfg.amp):
                out = step(model, images, targets, index)
            total += out["loss"].item() * len(images)
            count += len(images)
            if "logits" in out:
                scores.append(torch.sigmoid(out["logits"].float()).cpu().numpy())
                labels.append(targets.cpu().numpy())
    result = {"loss": total / max(count, 1)}
    if scores:
        ap = per_class_ap(np.concatenate(scores), np.concatenate(labels), interpolated=True)
        result["mAP"] = 100.0 * mean_over_classes(ap, warn=False)
    return result


def fit(model: torch.nn.Module, step: Step, train: Dataset, val: Dataset | None, cfg: LoopConfig,
        optimizer: torch.optim.Optimizer, scheduler: torch.optim.lr_scheduler.ReduceLROnPlateau | None,
        resume_dir: Path, live_dir: Path, image_ids: np.ndarray) -> list[dict]:
    """Train for ``cfg.epochs``, resuming from ``resume_dir`` if a checkpoint of this config is there.

    ``image_ids`` maps dataset indices to image ids (named in the error when a loss goes non-finite).
    Returns the per-epoch history (also logged with dvclive to ``live_dir``).
    """
    from dvclive import Live

    model.to(cfg.device)
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

    # The curves are written beside live_dir and renamed into place at the end, like every other output:
    # a killed run leaves no metrics file that looks finished.
    with atomic_path(live_dir) as live_tmp:
        live = Live(str(live_tmp), dvcyaml=False, save_dvc_exp=False, report=None)
        for past in history:  # both tools delete outputs before a rerun: rebuild the curves of resumed epochs
            _log_epoch(live, past)

        for epoch in range(start, cfg.epochs):
            model.train()
            started, total, count = time.perf_counter(), 0.0, 0
            batches = tqdm(_loader(train, cfg, shuffle=True, epoch=epoch), desc=f"epoch {epoch + 1}/{cfg.epochs}",
                           leave=False, dynamic_ncols=True)
            for step_index, (images, targets, index) in enumerate(batches):
                if cfg.hflip:
                    images = random_hflip(images, flip_generator)
                images, targets = images.to(cfg.device, non_blocking=True), targets.to(cfg.device, non_blocking=True)
                with autocast(cfg.device, cfg.amp):
                    loss = step(model, images, targets, index)["loss"]
                _check_finite(loss, epoch, step_index, image_ids[index.numpy()], resume_dir)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                total += loss.item() * len(images)
                count += len(images)
                batches.set_postfix(loss=f"{total / count:.4f}")
            record = {"epoch": epoch + 1, "train/loss": total / count, "lr": optimizer.param_groups[0]["lr"],
                      "seconds": time.perf_counter() - started}
            if val is not None and len(val):
                record.update({f"val/{k}": v for k, v in evaluate_loss(model, step, val, cfg).items()})
                if scheduler is not None:
                    scheduler.step(record["val/loss"])
            _check_weights(model, epoch, resume_dir)
            history.append(record)
            _log_epoch(live, record)
            log.info("epoch %d/%d %s", epoch + 1, cfg.epochs,
                     " ".join(f"{k}={v:.4g}" for k, v in record.items() if k != "epoch"))
            checkpoint.save(resume_dir, {
                "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict() if scheduler is not None else None,
                "rng": checkpoint.rng_state(), "flip_rng": flip_generator.get_state(),
                "history": history, "epoch": epoch + 1,
            })
        live.end()
    return history


def _log_epoch(live, record: dict) -> None:
    for key, value in record.items():
        if key != "epoch" and isinstance(value, (int, float)) and math.isfinite(value):
            live.log_metric(key, value)
    live.next_step()
