"""The shared LR schedule (warm-up + cosine, or the plateau switch) and the choice of the written epoch."""

from __future__ import annotations

import math

import pytest
import torch

from wsdkd.engine import choice, schedule
from wsdkd.pipeline.errors import UserError

COSINE = {"schedule": "cosine", "warmup_epochs": 1, "lr_decay_factor": 0.1, "lr_patience": 0}


def test_warmup_then_cosine_by_hand():
    factors = [schedule.warmup_cosine_factor(e, 1, 5) for e in range(5)]
    # Warm-up (0 + 1) / 2; then 0.5 (1 + cos(pi k / 4)) for k = 0..3.
    assert factors == pytest.approx([0.5, 1.0, 0.5 + 0.25 * math.sqrt(2), 0.5, 0.5 - 0.25 * math.sqrt(2)])
    assert [schedule.warmup_cosine_factor(e, 0, 2) for e in range(2)] == pytest.approx([1.0, 0.5])
    assert schedule.warmup_cosine_factor(5, 1, 5) == pytest.approx(0.0)  # zero where the run ends


def _optimizer() -> torch.optim.SGD:
    return torch.optim.SGD([{"params": [torch.zeros(1, requires_grad=True)]},
                            {"params": [torch.zeros(1, requires_grad=True)], "lr": 1.0}], lr=0.1)


def _lrs(optimizer, scheduler, records) -> list[list[float]]:
    seen = []
    for record in records:
        seen.append([group["lr"] for group in optimizer.param_groups])
        optimizer.step()
        schedule.advance(scheduler, record)
    return seen


def test_the_cosine_ignores_the_rows_losses_and_keeps_the_groups_ratio():
    runs = []
    for losses in ([1.0, 0.9, 0.8, 0.7, 0.6], [1.0, 2.0, 3.0, 4.0, 5.0]):
        optimizer = _optimizer()
        runs.append(_lrs(optimizer, schedule.build(optimizer, COSINE, 5, "student"),
                         [{"val/loss": loss} for loss in losses]))
    assert runs[0] == runs[1]
    expected = [schedule.warmup_cosine_factor(e, 1, 5) for e in range(5)]
    assert [lr for lr, _ in runs[0]] == pytest.approx([0.1 * f for f in expected])
    assert [big for _, big in runs[0]] == pytest.approx(expected)  # the group with its own lr 1.0


def test_the_plateau_switch_divides_the_lr_when_the_validation_loss_stalls():
    optimizer = _optimizer()
    scheduler = schedule.build(optimizer, {**COSINE, "schedule": "plateau"}, 5, "student")
    lrs = _lrs(optimizer, scheduler, [{"val/loss": v} for v in (1.0, 0.5, 0.5, 0.5)])
    assert [lr for lr, _ in lrs] == pytest.approx([0.1, 0.1, 0.1, 0.01])  # patience 0: the first stall divides


def test_the_cosine_survives_a_checkpoint_round_trip():
    optimizer = _optimizer()
    scheduler = schedule.build(optimizer, COSINE, 5, "student")
    _lrs(optimizer, scheduler, [{}, {}])
    again = _optimizer()  # in the order the loop resumes: scheduler built, then both states loaded
    resumed = schedule.build(again, COSINE, 5, "student")
    again.load_state_dict(optimizer.state_dict())
    resumed.load_state_dict(scheduler.state_dict())
    assert _lrs(again, resumed, [{}] * 3) == _lrs(optimizer, scheduler, [{}] * 3)


def test_a_run_no_longer_than_its_warmup_is_all_warmup_constant_steps_nothing_and_unknown_is_named():
    assert [schedule.warmup_cosine_factor(e, 2, 2) for e in range(3)] == pytest.approx([1 / 3, 2 / 3, 0.0])
    assert schedule.build(_optimizer(), {**COSINE, "schedule": "constant"}, 4, "distill.features") is None
    with pytest.raises(UserError, match=r"distill.features.schedule: 'step' is not one of cosine, plateau, constant"):
        schedule.build(_optimizer(), {**COSINE, "schedule": "step"}, 4, "distill.features")


def test_the_chosen_epoch_is_the_last_or_the_earliest_best_on_val():
    history = [{"val/mAP": m} for m in (30.0, 42.0, 42.0, 40.0)]
    assert choice.chosen_epoch(history, "last") == 4
    assert choice.chosen_epoch(history, "best_val") == 2
    assert [choice.is_new_best(history[:n]) for n in range(1, 5)] == [True, True, False, False]
    with pytest.raises(ValueError, match="best_val needs a validation mAP"):
        choice.chosen_epoch([{"val/loss": 1.0}], "best_val")
