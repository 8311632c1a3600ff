"""The two distillation stages on a tiny dataset: what each may change, the teacher's two feature paths, the
temperatures, the compared methods, resume, and a distilled student that predicts without the teacher."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from wsdkd.backbones.taps import Taps
from wsdkd.backbones.zoo import build_backbone
from wsdkd.data.manifest import read_split
from wsdkd.distill.losses import softened_teacher_predictions
from wsdkd.distill.training import (DistilledStudent, FeatureStep, FeatureStudent, PredictionStep, TargetPart,
                                    _frozen_teacher, feature_adapter, stage2_groups, train_distilled, train_features,
                                    uses_cached_features)
from wsdkd.evaluate.predictions import read_predictions
from wsdkd.student.losses import hard_label_bce
from wsdkd.student.model import StudentClassifier, load_student
from wsdkd.teacher.targets import TeacherTargets
from wsdkd.teacher.wsddn import roi_features

STUDENT_SIZE = 32


@pytest.fixture
def student_cfg(default_params, tmp_path, monkeypatch):
    monkeypatch.setenv("WSDKD_CHECKPOINTS", str(tmp_path / "checkpoints"))
    return {**default_params["student"], "backbone": {"name": "efficientnet_lite0", "weights": "random",
                                                      "weights_path": None},
            "input_size": STUDENT_SIZE, "epochs": 2, "batch_size": 8, "device": "cpu", "amp": False}


@pytest.fixture
def features_cfg(default_params):
    return {**default_params["distill"]["features"], "epochs": 1}


@pytest.fixture
def predictions_cfg(default_params):
    return dict(default_params["distill"]["predictions"])


def _student(num_classes: int) -> StudentClassifier:
    torch.manual_seed(0)
    return StudentClassifier(build_backbone({"name": "efficientnet_lite0", "weights": "random",
                                             "weights_path": None}), num_classes)


def _batch(manifest, teacher, tiny_upstream, size=STUDENT_SIZE):
    """The first 4 training images as a step sees them, with the train split's teacher targets."""
    from wsdkd.data.images import SquareImages

    split = read_split(manifest, "train")
    targets = TeacherTargets(tiny_upstream / "cache" / "train.h5", split, teacher)
    images = SquareImages(split, size, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
    pixels = torch.stack([images[i][0] for i in range(4)])
    labels = torch.from_numpy(split.labels[:4].astype(np.float32))
    return split, [TargetPart(0, targets)], pixels, labels, torch.arange(4)


def _state(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in module.state_dict().items()}


def test_stage1_changes_only_the_convs_up_to_the_distilled_layer(student_cfg, features_cfg, tiny_manifest,
                                                                  tiny_upstream, tmp_path):
    reference = _student(read_split(tiny_manifest, "train").num_classes)
    history = train_features(student_cfg, features_cfg, tiny_manifest, tiny_upstream / "cache",
                             tiny_upstream / "teacher",
                             tmp_path / "stage1", tmp_path / "live", "stage1")
    assert len(history) == 1 and history[0]["train/loss"] > 0 and "val/loss" in history[0]
    trained, _ = load_student(tmp_path / "stage1" / "model.pt")
    # the seed fixes the initialisation, so the untouched parts equal a fresh student's
    fresh = reference.state_dict()
    for name, value in trained.state_dict().items():
        if name.startswith("backbone.body16.") and name.endswith("weight") and value.dim() == 4:
            assert not torch.equal(value, fresh[name]), f"{name} should have learnt"
        elif not name.startswith("backbone.body16."):
            assert torch.equal(value, fresh[name]), f"{name} must be left as it was"
    assert not (tmp_path / "checkpoints" / "stage1").exists(), "resume state goes once the output is whole"


def test_cached_and_online_teacher_features_give_the_same_loss(tiny_manifest, tiny_upstream, features_cfg):
    teacher = _frozen_teacher(tiny_upstream / "teacher", torch.device("cpu"))
    split, parts, pixels, labels, rows = _batch(tiny_manifest, teacher, tiny_upstream)
    student = _student(split.num_classes)
    model = FeatureStudent(student, feature_adapter("roi", "conv", student, teacher, 4)).eval()
    losses = [FeatureStep(parts, features_cfg, teacher, STUDENT_SIZE, cached)(model, pixels, labels, rows)["loss"]
              for cached in (True, False)]
    assert losses[0].item() > 0
    assert losses[0].item() == pytest.approx(losses[1].item(), rel=1e-3)  # the cache holds the same RoIs' features


def test_roi_weights_change_the_loss(tiny_manifest, tiny_upstream, features_cfg):
    teacher = _frozen_teacher(tiny_upstream / "teacher", torch.device("cpu"))
    split, parts, pixels, labels, rows = _batch(tiny_manifest, teacher, tiny_upstream)
    student = _student(split.num_classes)
    model = FeatureStudent(student, feature_adapter("roi", "conv", student, teacher, 4)).eval()
    loss = {w: FeatureStep(parts, {**features_cfg, "roi_weights": w}, teacher, STUDENT_SIZE, False)(
        model, pixels, labels, rows)["loss"].item() for w in ("objectness", "none", "prior")}
    # s' and the priors are below 1, so weighting can only shrink each RoI's term
    assert loss["objectness"] < loss["none"] and loss["prior"] < loss["none"]


@pytest.mark.parametrize("method,layer,source", [("roi", "fc", "all"), ("fitnets", "conv", "selected")])
def test_other_feature_methods_train_the_convs_and_leave_the_classifier(method, layer, source, student_cfg,
                                                                        features_cfg, tiny_manifest, tiny_upstream,
                                                                        tmp_path):
    cfg = {**features_cfg, "method": method, "layer": layer, "roi_source": source, "roi_weights": "prior"}
    fresh = _student(read_split(tiny_manifest, "train").num_classes).state_dict()
    train_features(student_cfg, cfg, tiny_manifest, tiny_upstream / "cache", tiny_upstream / "teacher", tmp_path / "s1",
                   tmp_path / "live", "s1")
    trained = load_student(tmp_path / "s1" / "model.pt")[0].state_dict()
    assert torch.equal(trained["classifier.weight"], fresh["classifier.weight"])
    assert not torch.equal(trained["backbone.body16.0.weight"], fresh["backbone.body16.0.weight"])


def test_cached_features_are_used_only_where_they_apply():
    cfg = {"method": "roi", "roi_source": "selected", "hflip": False, "teacher_features": "auto"}
    assert uses_cached_features(cfg, cache_has_features=True)
    assert not uses_cached_features(cfg, cache_has_features=False)
    assert not uses_cached_features({**cfg, "hflip": True}, cache_has_features=True)
    assert not uses_cached_features({**cfg, "method": "fitnets"}, cache_has_features=True)
    assert not uses_cached_features({**cfg, "teacher_features": "online"}, cache_has_features=True)
    with pytest.raises(Exception, match="cache serves only"):
        uses_cached_features({**cfg, "roi_source": "all", "teacher_features": "cache"}, True)


def test_temperatures_stay_positive_and_receive_gradient(tiny_manifest, tiny_upstream, predictions_cfg):
    split, parts, pixels, labels, rows = _batch(tiny_manifest, None, tiny_upstream)
    model = DistilledStudent(_student(split.num_classes), split.num_classes, 8, predictions_cfg).train()
    loss = PredictionStep(parts, predictions_cfg, None, hflip=True)(model, pixels, labels, rows)["loss"]
    loss.backward()
    for temps in (model.student_t, model.teacher_tc, model.teacher_td):
        assert temps.theta.grad is not None and temps.theta.grad.abs().sum() > 0
        assert (temps() > 0).all()
    # the released code's fixed teacher temperature is a buffer: no gradient, value kept
    fixed = DistilledStudent(_student(split.num_classes), split.num_classes, 8,
                             {**predictions_cfg, "teacher_temperature": 0.5, "student_temperature_init": 5.0})
    assert not fixed.teacher_tc.learnable and torch.allclose(fixed.teacher_tc(), torch.full((split.num_classes,), 0.5))
    assert torch.allclose(fixed.student_t(), torch.full((split.num_classes,), 5.0))
    assert all(p is not fixed.teacher_tc.theta for p in fixed.temperature_parameters())


@pytest.mark.parametrize("soft_loss,attention", [("hinton", 0.0), ("hinton", 10.0), ("class_aware_ce", 0.0),
                                                 ("none", 0.0)])
def test_compared_soft_losses_add_to_the_hard_loss(soft_loss, attention, tiny_manifest, tiny_upstream, predictions_cfg):
    from wsdkd.student.losses import hard_label_bce

    teacher = _frozen_teacher(tiny_upstream / "teacher", torch.device("cpu")) if attention else None
    split, parts, pixels, labels, rows = _batch(tiny_manifest, teacher, tiny_upstream)
    cfg = {**predictions_cfg, "soft_loss": soft_loss, "attention_weight": attention}
    model = DistilledStudent(_student(split.num_classes), split.num_classes, 8, cfg).eval()
    out = PredictionStep(parts, cfg, teacher, hflip=False)(model, pixels, labels, rows)
    hard = hard_label_bce(out["logits"].float(), labels).item()
    assert out["loss"].item() > hard if soft_loss != "none" or attention else out["loss"].item() == pytest.approx(hard)


def test_taps_find_the_paper_layers_of_vgg16():
    body = build_backbone({"name": "vgg16", "weights": "random", "weights_path": None}).body16
    taps = Taps(body, [16, 4, 8])
    images = torch.zeros(1, 3, 64, 64)
    with torch.no_grad(), taps.recording(images):
        out = body(images)
    # conv3_3, conv4_3, conv5_3 (after ReLU), in stride order
    assert [tuple(m.shape[1:]) for m in taps.maps] == [(256, 16, 16), (512, 8, 8), (512, 4, 4)]
    assert taps.maps[-1] is out
    with pytest.raises(ValueError, match="no map at stride"):
        with torch.no_grad(), Taps(body, [32]).recording(images):
            body(images)


def test_stage2_writes_a_student_that_predicts_without_the_teacher(student_cfg, features_cfg, predictions_cfg,
                                                                   tiny_manifest, tiny_upstream, tmp_path):
    train_features(student_cfg, features_cfg, tiny_manifest, tiny_upstream / "cache", tiny_upstream / "teacher",
                   tmp_path / "s1", tmp_path / "live1", "s1")
    history = train_distilled(student_cfg, predictions_cfg, tiny_manifest, tiny_upstream / "cache",
                              tiny_upstream / "teacher",
                              tmp_path / "s1", tmp_path / "s2", tmp_path / "live2", "s2")
    assert [h["epoch"] for h in history] == [1, 2] and "val/mAP" in history[-1]
    model, description = load_student(tmp_path / "s2" / "model.pt")
    assert description["class_names"] == read_split(tiny_manifest, "train").class_names
    with torch.no_grad():
        assert model(torch.zeros(2, 3, STUDENT_SIZE, STUDENT_SIZE)).shape == (2, len(description["class_names"]))
    preds = read_predictions(tmp_path / "s2" / "predictions_test.parquet")
    assert preds.scores.shape == read_split(tiny_manifest, "test").labels.shape
    # every learnt temperature is saved, t^d too; every epoch logs the diagnostics, train and val
    temps = json.loads((tmp_path / "s2" / "model.json").read_text())["temperatures"]
    assert len(temps["t"]) == len(temps["tc"]) == len(description["class_names"]) and len(temps["td"]) == 8
    for key in ("bce", "soft", "t_mean", "t_min", "t_max", "tc_mean", "td_max", "target_on_positives",
                "student_on_positives", "opposing_share"):
        assert f"train/{key}" in history[-1] and f"val/{key}" in history[-1], key
    assert 0.0 <= history[-1]["val/opposing_share"] <= 1.0
    logged = (tmp_path / "live2" / "plots" / "metrics" / "val" / "opposing_share.tsv").read_text().splitlines()
    assert len(logged) == 3  # header + one row per epoch


def test_interrupted_stage2_resumes_to_the_same_result(student_cfg, features_cfg, predictions_cfg, tiny_manifest,
                                                       tiny_upstream, tmp_path, killed_after_first_checkpoint):
    train_features(student_cfg, {**features_cfg, "method": "none"}, tiny_manifest, tiny_upstream / "cache",
                   tiny_upstream / "teacher", tmp_path / "s1", tmp_path / "live1", "s1")

    def run(name):
        return train_distilled(student_cfg, predictions_cfg, tiny_manifest, tiny_upstream / "cache",
                               tiny_upstream / "teacher",
                               tmp_path / "s1", tmp_path / name, tmp_path / f"live_{name}", "s2")

    run("straight")
    killed_after_first_checkpoint(run, "resumed")
    assert not (tmp_path / "resumed").exists(), "an interrupted stage leaves no output"
    run("resumed")
    np.testing.assert_allclose(read_predictions(tmp_path / "resumed" / "predictions_test.parquet").scores,
                               read_predictions(tmp_path / "straight" / "predictions_test.parquet").scores,
                               rtol=1e-5, atol=1e-6)


def test_fc_layer_scales_the_students_rois_like_the_teachers(tiny_manifest, tiny_upstream, features_cfg):
    # The teacher's head reads phi * (a s_R + b) (Eq. 2); the student's head must read its own RoIs scaled the same.
    teacher = _frozen_teacher(tiny_upstream / "teacher", torch.device("cpu"))
    teacher.a, teacher.b = 2.0, 0.5
    split, parts, pixels, labels, rows = _batch(tiny_manifest, teacher, tiny_upstream)
    student = _student(split.num_classes)
    cfg = {**features_cfg, "layer": "fc", "roi_source": "all", "roi_weights": "none"}
    model = FeatureStudent(student, feature_adapter("roi", "fc", student, teacher, 4)).eval()
    seen = []
    student.backbone.roi_head.register_forward_pre_hook(lambda _module, args: seen.append(args[0].detach()))
    FeatureStep(parts, cfg, teacher, STUDENT_SIZE, False)(model, pixels, labels, rows)
    rois = parts[0].targets.rois(rows.numpy(), "all", "none")
    boxes = parts[0].targets.to_input(rows.numpy(), rois.boxes, STUDENT_SIZE)
    with torch.no_grad():
        unscaled = roi_features(student.backbone.body16(pixels), boxes)
    expected = unscaled * (2.0 * rois.prior.reshape(-1) + 0.5).view(-1, 1, 1, 1)
    assert unscaled.abs().max() > 0  # a random student's features are small (~1e-6): compare relatively
    assert torch.allclose(seen[0], expected, rtol=1e-4, atol=1e-12)
    assert not torch.allclose(seen[0], unscaled, rtol=1e-2, atol=0)


def test_class_aware_ce_sends_no_gradient_to_learnable_teacher_temperatures(tiny_manifest, tiny_upstream,
                                                                           predictions_cfg):
    split, parts, pixels, labels, rows = _batch(tiny_manifest, None, tiny_upstream)
    for soft_loss, reaches in (("class_aware_l2", True), ("class_aware_ce", False)):
        cfg = {**predictions_cfg, "soft_loss": soft_loss}
        model = DistilledStudent(_student(split.num_classes), split.num_classes, 8, cfg).train()
        PredictionStep(parts, cfg, None, hflip=False)(model, pixels, labels, rows)["loss"].backward()
        for temps in (model.teacher_tc, model.teacher_td):
            assert (temps.theta.grad is not None and temps.theta.grad.abs().sum() > 0) == reaches, soft_loss
        assert model.student_t.theta.grad.abs().sum() > 0


def test_stage2_step_reports_its_terms(tiny_manifest, tiny_upstream, predictions_cfg):
    split, parts, pixels, labels, rows = _batch(tiny_manifest, None, tiny_upstream)
    model = DistilledStudent(_student(split.num_classes), split.num_classes, 8, predictions_cfg).eval()
    with torch.no_grad():
        out = PredictionStep(parts, predictions_cfg, None, hflip=False)(model, pixels, labels, rows)
    terms = out["terms"]
    bce = hard_label_bce(out["logits"].float(), labels).item()
    assert terms["bce"] == (pytest.approx(4 * bce), 4.0)
    assert out["loss"].item() == pytest.approx(bce + predictions_cfg["lam"] * terms["soft"][0] / 4, rel=1e-5)
    assert terms["t_mean"] == (4.0, 4.0) and terms["td_min"] == (4.0, 4.0)  # every temperature starts at 1
    mc, md, valid = parts[0].targets.logits(rows.numpy())
    p_t = softened_teacher_predictions(mc, md, torch.ones(split.num_classes), torch.ones(8), valid)
    positive = labels > 0
    assert terms["target_on_positives"][0] / terms["target_on_positives"][1] == pytest.approx(
        p_t[positive].mean().item(), rel=1e-5)
    student = torch.sigmoid(out["logits"].float())
    assert terms["opposing_share"] == (float((student > p_t)[positive].sum()), float(positive.sum()))


def test_released_code_preset_builds_its_recipe(default_params, tiny_manifest, tiny_upstream):
    from wsdkd.pipeline.config import validate_params
    from wsdkd.pipeline.presets import load_preset, merge

    params = merge(default_params, load_preset("released_code"))
    validate_params(params, "released_code.yaml over params.yaml")
    cfg = params["distill"]["predictions"]
    split = read_split(tiny_manifest, "train")
    model = DistilledStudent(_student(split.num_classes), split.num_classes, 8, cfg)
    assert not model.teacher_tc.learnable and not model.teacher_td.learnable
    assert torch.allclose(model.teacher_tc(), torch.full((split.num_classes,), 0.5))
    # the student's scale 1/T is what is learnt, from 0.2
    assert model.student_t.learnable and torch.allclose(model.student_t.theta, torch.full((split.num_classes,), 0.2))
    groups = stage2_groups(model, 1e-3, cfg)
    assert [g.get("lr") for g in groups] == [None, pytest.approx(1e-2), pytest.approx(1e-2)]
    assert groups[1]["params"] == list(model.student.classifier.parameters())
    assert groups[2]["params"] == [model.student_t.theta] and groups[2]["weight_decay"] == 0.0
    n_student = sum(1 for _ in model.student.parameters())
    assert len(groups[0]["params"]) + len(groups[1]["params"]) == n_student


def test_fixed_student_temperature_and_no_temperature_group(tiny_manifest, predictions_cfg):
    split = read_split(tiny_manifest, "train")
    cfg = {**predictions_cfg, "student_temperature": 2.0, "teacher_temperature": 0.5}
    model = DistilledStudent(_student(split.num_classes), split.num_classes, 8, cfg)
    assert not model.student_t.learnable and torch.allclose(model.student_t(), torch.full((split.num_classes,), 2.0))
    assert len(stage2_groups(model, 1e-3, cfg)) == 2  # nothing left to learn among the temperatures
