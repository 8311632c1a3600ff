"""The LR plateau watches the validation BCE a step reports, not its total loss (Algorithm 1 stops on L_p)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils.data import Dataset

from wsdkd.engine.loop import LoopConfig, fit
from wsdkd.engine.schedule import PLATEAU_TERM


class _Rows(Dataset):
    def __len__(self) -> int:
        return 4

    def __getitem__(self, i: int):
        return torch.ones(2), torch.ones(1), i


def _run(tmp_path, name, val_values):
    """Three epochs whose validation (loss, bce or None) are ``val_values[epoch]``; returns each epoch's lr."""
    model = torch.nn.Linear(2, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=1.0)
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, factor=0.1, patience=0)
    evaluations = []  # the validation set is one batch: one call per epoch

    def step(model, images, labels, index):
        zero = model(images).sum() * 0.0
        if model.training:
            return {"loss": zero + 1.0}
        loss, bce = val_values[len(evaluations)]
        evaluations.append(loss)
        terms = {} if bce is None else {PLATEAU_TERM: (bce * len(images), float(len(images)))}
        return {"loss": zero + loss, "terms": terms}

    cfg = LoopConfig(epochs=3, batch_size=4, seed=0, num_workers=0, hflip=False, amp=False,
                     device=torch.device("cpu"))
    history = fit(model, step, _Rows(), _Rows(), cfg, optimizer, scheduler, tmp_path / name / "ckpt",
                  tmp_path / name / "live", np.arange(4))
    return [h["lr"] for h in history], history


def test_a_falling_bce_keeps_the_lr_while_the_total_stalls(tmp_path, monkeypatch):
    monkeypatch.setenv("WSDKD_CHECKPOINTS", str(tmp_path / "checkpoints"))
    # the total rises every epoch (a soft term the temperatures move), the BCE falls: no plateau
    lrs, history = _run(tmp_path, "falling", [(1.0, 0.9), (2.0, 0.8), (3.0, 0.7)])
    assert lrs == [1.0, 1.0, 1.0]
    assert history[1]["val/bce"] == pytest.approx(0.8) and history[1]["val/loss"] == pytest.approx(2.0)


def test_a_stalling_bce_lowers_the_lr_while_the_total_falls(tmp_path, monkeypatch):
    monkeypatch.setenv("WSDKD_CHECKPOINTS", str(tmp_path / "checkpoints"))
    lrs, _ = _run(tmp_path, "stalling", [(3.0, 0.5), (2.0, 0.6), (1.0, 0.7)])
    # each epoch logs the lr it trained at; epoch 2's worse BCE (patience 0) lowers epoch 3's
    assert lrs == [1.0, 1.0, pytest.approx(0.1)]


def test_without_a_bce_the_plateau_watches_the_loss(tmp_path, monkeypatch):
    monkeypatch.setenv("WSDKD_CHECKPOINTS", str(tmp_path / "checkpoints"))
    lrs, _ = _run(tmp_path, "stage1", [(1.0, None), (2.0, None), (3.0, None)])  # stage 1: no BCE
    assert lrs == [1.0, 1.0, pytest.approx(0.1)]
