"""Stage 1's matmul RoIAlign gives torchvision's values and gradients (aligned, adaptive sampling), and its L_f as a
quadratic form of the map gives that of the pooled RoIs."""

from __future__ import annotations

import pytest
import torch

from wsdkd.distill.separable_roi_align import axis_weights, separable_roi_align
from wsdkd.teacher.wsddn import FEATURE_STRIDE, ROI_SIZE, roi_features


def test_axis_weights_by_hand():
    # One bin over map pixels [0.5, 2.5): two samples at 1.0 and 2.0, each on a pixel centre -> half on 1, half on 2.
    weights = axis_weights(torch.tensor([0.5]), torch.tensor([2.0]), size=4, bins=1)
    assert torch.equal(weights, torch.tensor([[[0.0, 0.5, 0.5, 0.0]]]))
    # Past the last pixel (but within one of it) reads the edge; more than one pixel outside weighs nothing.
    assert torch.equal(axis_weights(torch.tensor([3.2]), torch.tensor([0.4]), 4, 1), torch.tensor([[[0., 0., 0., 1.]]]))
    assert torch.equal(axis_weights(torch.tensor([-3.0]), torch.tensor([0.5]), 4, 1), torch.zeros(1, 1, 4))


@pytest.mark.parametrize("side, image", [(6, 96), (14, 224)])  # the student's maps: 1 sample per bin, and 1-3
def test_values_and_gradients_are_torchvisions(side, image):
    generator = torch.Generator().manual_seed(side)
    maps = torch.randn(3, 5, side, side, dtype=torch.float64, generator=generator)
    corner = torch.rand(3, 40, 2, dtype=torch.float64, generator=generator) * image * 1.1 - image * 0.05
    boxes = torch.cat([corner, corner + torch.rand(3, 40, 2, dtype=torch.float64, generator=generator) * image], -1)
    boxes[0, 0] = torch.tensor([10.0, 10.0, 10.0, 30.0], dtype=torch.float64)  # no width: zeros
    boxes[0, 1] = torch.tensor([-60.0, -60.0, -30.0, -30.0], dtype=torch.float64)  # off the map: zeros
    ours_in, theirs_in = maps.clone().requires_grad_(), maps.clone().requires_grad_()
    ours = separable_roi_align(ours_in, boxes, ROI_SIZE, 1.0 / FEATURE_STRIDE)
    theirs = roi_features(theirs_in, boxes)
    assert ours.shape == theirs.shape == (120, 5, ROI_SIZE, ROI_SIZE)
    torch.testing.assert_close(ours, theirs, rtol=0, atol=1e-12)
    assert not ours[0].any() and not ours[1].any()
    upstream = torch.randn(ours.shape, dtype=torch.float64, generator=generator)
    (ours * upstream).sum().backward()
    (theirs * upstream).sum().backward()
    torch.testing.assert_close(ours_in.grad, theirs_in.grad, rtol=0, atol=1e-10)


def test_channels_last_maps_give_the_same_values():
    maps = torch.randn(2, 4, 6, 6)
    boxes = torch.tensor([[[0.0, 0.0, 96.0, 96.0], [10.0, 20.0, 50.0, 40.0]]]).expand(2, -1, -1)
    torch.testing.assert_close(separable_roi_align(maps.contiguous(memory_format=torch.channels_last), boxes, 7, 1 / 16),
                               separable_roi_align(maps, boxes, 7, 1 / 16), rtol=0, atol=1e-6)


def test_stage1_with_it_repeats_exactly_and_learns_what_torchvisions_learns(default_params, tiny_manifest,
                                                                           tiny_upstream, tmp_path, monkeypatch):
    from wsdkd.distill.training import train_features
    from wsdkd.engine.loop import Hardware
    from wsdkd.student.model import load_student

    monkeypatch.setenv("WSDKD_CHECKPOINTS", str(tmp_path / "checkpoints"))
    student = {**default_params["student"], "input_size": 32, "batch_size": 8, "device": "cpu", "amp": False,
               "backbone": {"name": "efficientnet_lite0", "weights": "random", "weights_path": None}}
    features = {**default_params["distill"]["features"], "epochs": 2}

    def run(name, roi_align):
        history = train_features(student, features, tiny_manifest, tiny_upstream / "cache", tiny_upstream / "teacher",
                                 tmp_path / name, tmp_path / f"{name}_live", name,
                                 Hardware(channels_last=True, student_roi_align=roi_align))
        model, _ = load_student(tmp_path / name / "model.pt")
        return [h["train/loss"] for h in history] + [h["val/loss"] for h in history], model.state_dict()

    (losses, weights), (again, weights_again) = run("quadratic", "quadratic"), run("again", "quadratic")
    assert losses == again and all(torch.equal(weights[k], weights_again[k]) for k in weights)
    reference, _ = run("torchvision", "torchvision")
    pooled, _ = run("matmul", "matmul")
    # Epoch 1 agrees to rounding; from a random start (losses ~130) that rounding grows, by 1.4% in epoch 2 here.
    # The quadratic form combines its terms in float64, the pooled paths sum in float32: 1.2e-4 apart after epoch
    # 1's 3 steps here.
    first = [0, 2]  # epoch 1's train and val loss
    for fast, rtol in ((pooled, 1e-4), (losses, 2e-4)):
        torch.testing.assert_close(torch.tensor(fast)[first], torch.tensor(reference)[first], rtol=rtol, atol=0)


def test_the_loss_on_the_map_is_the_loss_of_its_pooled_rois():
    """Eq. 3 as a quadratic form of the map: roi_distill_loss's value and gradient, with s' weights, recycled
    (invalid) RoIs and an image without a valid RoI."""
    from wsdkd.distill.losses import roi_distill_loss, roi_distill_loss_from_terms, roi_distill_terms
    from wsdkd.distill.separable_roi_align import pooling_weights

    def on_map(teacher, maps, boxes, weights, valid):
        return roi_distill_loss_from_terms(maps, *roi_distill_terms(teacher, pooling_weights(boxes, 6, 6, ROI_SIZE, 1 / 16),
                                                                    weights, valid))

    generator = torch.Generator().manual_seed(3)
    maps = torch.randn(3, 4, 6, 6, dtype=torch.float64, generator=generator)
    corner = torch.rand(3, 10, 2, dtype=torch.float64, generator=generator) * 80
    boxes = torch.cat([corner, corner + 4 + torch.rand(3, 10, 2, dtype=torch.float64, generator=generator) * 60], -1)
    teacher = torch.randn(3, 10, 4, ROI_SIZE, ROI_SIZE, dtype=torch.float64, generator=generator)
    weights = torch.rand(3, 10, dtype=torch.float64, generator=generator)
    valid = torch.ones(3, 10, dtype=torch.bool)
    valid[0, 6:] = False  # recycled copies
    valid[2] = False  # no valid RoI: contributes 0
    direct_in, quadratic_in = maps.clone().requires_grad_(), maps.clone().requires_grad_()
    pooled = separable_roi_align(direct_in, boxes, ROI_SIZE, 1.0 / FEATURE_STRIDE).view(3, 10, 4, ROI_SIZE, ROI_SIZE)
    for w in (weights, None):
        direct = roi_distill_loss(teacher, pooled, w, valid)
        quadratic = on_map(teacher, quadratic_in, boxes, w, valid)
        torch.testing.assert_close(quadratic, direct, rtol=1e-12, atol=0)
        direct_grad, = torch.autograd.grad(direct, direct_in, retain_graph=True)
        quadratic_grad, = torch.autograd.grad(quadratic, quadratic_in)
        torch.testing.assert_close(quadratic_grad, direct_grad, rtol=1e-10, atol=1e-12)
    # The loss is zero where the student's map reproduces the teacher's RoIs exactly.
    exact = separable_roi_align(maps, boxes, ROI_SIZE, 1 / 16).view(3, 10, 4, ROI_SIZE, ROI_SIZE)
    zero = on_map(exact, maps, boxes, weights, valid)
    assert abs(zero.item()) < 1e-12 * on_map(teacher, maps, boxes, weights, valid).item()
