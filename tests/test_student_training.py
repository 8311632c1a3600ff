"""The baseline student trains, writes its outputs whole, resumes exactly, and stops on a non-finite loss."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from wsdkd.evaluate.predictions import read_predictions
from wsdkd.pipeline.errors import UserError
from wsdkd.student import training as student_module
from wsdkd.student.training import train_student


@pytest.fixture
def cfg(default_params, tmp_path, monkeypatch):
    monkeypatch.setenv("WSDKD_CHECKPOINTS", str(tmp_path / "checkpoints"))
    return {**default_params["student"], "input_size": 32, "epochs": 2, "batch_size": 8, "device": "cpu",
            "backbone": {"name": "efficientnet_lite0", "weights": "random", "weights_path": None}}


def _train(cfg, manifest, root, name="run"):
    return train_student(cfg, manifest, root / name / "model", root / name / "live", stage=f"student_{name}")


def test_outputs_and_predictions(cfg, tiny_manifest, tmp_path):
    history = _train(cfg, tiny_manifest, tmp_path)
    out = tmp_path / "run" / "model"
    assert sorted(p.name for p in out.iterdir()) == [
        "model.json", "model.pt", "predictions_test.parquet", "predictions_val.parquet"]
    test = read_predictions(out / "predictions_test.parquet")
    assert test.scores.shape == (12, 12) and ((test.scores >= 0) & (test.scores <= 1)).all()
    assert [h["epoch"] for h in history] == [1, 2]
    assert {"train/loss", "val/loss", "val/mAP", "lr"} <= set(history[0])
    live = json.loads((tmp_path / "run" / "live" / "metrics.json").read_text())
    assert live["step"] == 1 and "train" in live
    assert "seconds" not in live, "a timing would change the committed curves on every run"
    assert (tmp_path / "run" / "live" / "curves.png").read_bytes()[:4] == b"\x89PNG", "what the report shows"
    assert not (tmp_path / "checkpoints" / "student_run").exists(), "resume state is dropped once outputs are whole"


def test_interrupted_run_resumes_to_the_same_result(cfg, tiny_manifest, tmp_path, killed_after_first_checkpoint):
    _train(cfg, tiny_manifest, tmp_path, "straight")
    reference = read_predictions(tmp_path / "straight" / "model" / "predictions_test.parquet")

    killed_after_first_checkpoint(_train, cfg, tiny_manifest, tmp_path, "resumed")
    assert not (tmp_path / "resumed" / "model").exists(), "an interrupted stage leaves no output"
    history = _train(cfg, tiny_manifest, tmp_path, "resumed")
    resumed = read_predictions(tmp_path / "resumed" / "model" / "predictions_test.parquet")
    np.testing.assert_allclose(resumed.scores, reference.scores, rtol=1e-5, atol=1e-6)
    assert [h["epoch"] for h in history] == [1, 2]
    live = json.loads((tmp_path / "resumed" / "live" / "metrics.json").read_text())
    assert live["step"] == 1, "the curves of the epoch done before the kill are rebuilt"


def test_non_finite_loss_names_step_and_images(cfg, tiny_manifest, tmp_path, monkeypatch):
    def nan_step(model, images, labels, index):
        logits = model(images)
        return {"loss": logits.sum() * torch.tensor(float("nan")), "logits": logits}

    monkeypatch.setattr(student_module, "classifier_step", nan_step)
    with pytest.raises(UserError, match=r"loss is nan at epoch 1, step 1; batch image ids \[\d+"):
        _train(cfg, tiny_manifest, tmp_path)


@pytest.mark.parametrize("select", ["last", "best_val"])
def test_the_written_weights_are_the_chosen_epochs_on_the_shared_schedule(cfg, tiny_manifest, tmp_path, monkeypatch,
                                                                          select):
    from wsdkd.engine import loop
    from wsdkd.engine.schedule import warmup_cosine_factor
    from wsdkd.student.model import load_student

    # Which epoch is best on val must not hang on a CPU's rounding: the loop sees a crafted mAP whose best is
    # epoch 2 of 3, and the weights it evaluated at each epoch are kept to compare with what was written.
    crafted, weights, real_evaluate = iter([10.0, 30.0, 20.0]), [], loop.evaluate_loss

    def evaluate_with_crafted_map(model, step, loader, loop_cfg):
        weights.append({k: v.detach().clone() for k, v in model.state_dict().items()})
        return {**real_evaluate(model, step, loader, loop_cfg), "mAP": next(crafted)}

    monkeypatch.setattr(loop, "evaluate_loss", evaluate_with_crafted_map)
    cfg = {**cfg, "epochs": 3, "lr": 0.05, "select": select}
    history = _train(cfg, tiny_manifest, tmp_path)
    assert [h["lr"] for h in history] == pytest.approx([0.05 * warmup_cosine_factor(e, 1, 3) for e in range(3)])
    epoch = {"last": 3, "best_val": 2}[select]
    assert json.loads((tmp_path / "run" / "model" / "model.json").read_text())["selected_epoch"] == epoch
    written, _ = load_student(tmp_path / "run" / "model" / "model.pt")
    for name, value in written.state_dict().items():
        torch.testing.assert_close(value, weights[epoch - 1][name], rtol=0, atol=0, msg=f"{name} of epoch {epoch}")
    assert any(not torch.equal(value, weights[1][name]) for name, value in weights[2].items()), \
        "epochs 2 and 3 differ, so the comparison tells them apart"
