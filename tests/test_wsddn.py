"""T-WDet's two-stream scores (Eq. 2, Eq. 6-7) against hand-computed values, and the model's batching."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from wsdkd.backbones.zoo import Backbone
from wsdkd.teacher.wsddn import (TWDet, image_scores, objectness, probability_bce, spatial_regulariser,
                                 two_stream_scores)

LN3 = math.log(3.0)
# Two proposals, two classes.
# Class softmax per row:     row 0 of M^c = [0, ln 3] -> [1/4, 3/4];  row 1 = [0, 0] -> [1/2, 1/2]
# Proposal softmax per col:  col 0 of M^d = [ln 3, 0] -> [3/4, 1/4];  col 1 = [0, 0] -> [1/2, 1/2]
# S = [[1/4 * 3/4, 3/4 * 1/2], [1/2 * 1/4, 1/2 * 1/2]] = [[3/16, 3/8], [1/8, 1/4]]
# p = column sums = [5/16, 5/8];  s' = row sums = [9/16, 3/8]
MC = torch.tensor([[0.0, LN3], [0.0, 0.0]])
MD = torch.tensor([[LN3, 0.0], [0.0, 0.0]])


def test_hand_computed_example():
    s = two_stream_scores(MC, MD)
    torch.testing.assert_close(s, torch.tensor([[3 / 16, 3 / 8], [1 / 8, 1 / 4]]))
    torch.testing.assert_close(image_scores(s), torch.tensor([5 / 16, 5 / 8]))
    torch.testing.assert_close(objectness(s), torch.tensor([9 / 16, 3 / 8]))


def test_temperatures():
    # t^c = [1, 2] halves column 1 of M^c: row 0 -> [0, ln3 / 2] -> [1 / (1 + sqrt3), sqrt3 / (1 + sqrt3)].
    # t^d = [2, 1] halves row 0 of M^d: column 0 -> [ln3 / 2, 0] -> [sqrt3 / (sqrt3 + 1), 1 / (sqrt3 + 1)].
    r3 = math.sqrt(3.0)
    s = two_stream_scores(MC, MD, tc=torch.tensor([1.0, 2.0]), td=torch.tensor([2.0, 1.0]))
    expected = torch.tensor([[1 / (1 + r3) * r3 / (r3 + 1), r3 / (1 + r3) * 0.5],
                             [0.5 * 1 / (r3 + 1), 0.5 * 0.5]])
    torch.testing.assert_close(s, expected)
    # Very hot: both softmaxes flatten, S -> 1 / (R K) everywhere.
    hot = two_stream_scores(MC, MD, tc=torch.full((2,), 1e6), td=torch.full((2,), 1e6))
    torch.testing.assert_close(hot, torch.full((2, 2), 0.25))
    # Cold detection stream: each class's proposal softmax becomes the argmax of its column.
    cold = two_stream_scores(MC, MD, td=torch.full((2,), 1e-3))
    assert cold[0, 0] == pytest.approx(0.25) and cold[1, 0] == pytest.approx(0.0)


def test_equal_logits_give_one_over_k():
    rows, classes = 5, 4
    s = two_stream_scores(torch.zeros(rows, classes), torch.zeros(rows, classes))
    torch.testing.assert_close(image_scores(s), torch.full((classes,), 1 / classes))


def test_invalid_rows_get_no_weight():
    s = two_stream_scores(MC, MD, valid=torch.tensor([True, False]))
    torch.testing.assert_close(s[1], torch.zeros(2))
    torch.testing.assert_close(s[0], torch.softmax(MC[0], 0))  # the one valid row holds all proposal weight


def test_probability_bce_matches_torch_and_clamp_keeps_it_finite():
    p, y = torch.tensor([[0.2, 0.9]]), torch.tensor([[0.0, 1.0]])
    torch.testing.assert_close(probability_bce(p, y), F.binary_cross_entropy(p, y))
    s = torch.zeros(3, 2)  # p = 0 exactly
    assert torch.isfinite(probability_bce(image_scores(s), torch.ones(1, 2)))


def _tiny_model(freeze: bool) -> TWDet:
    torch.manual_seed(0)
    body = nn.Sequential(nn.Conv2d(3, 8, 16, stride=16), nn.BatchNorm2d(8), nn.ReLU())
    backbone = Backbone("tiny", body, nn.Identity(), nn.Identity(), channels16=8, out_features=8)
    return TWDet(backbone, 3, head="gap_mlp", hidden=16, freeze_backbone=freeze)


def _inputs(batch: int = 2, rows: int = 6):
    g = torch.Generator().manual_seed(1)
    xy = torch.rand(batch, rows, 2, generator=g) * 40
    boxes = torch.cat([xy, xy + 8 + torch.rand(batch, rows, 2, generator=g) * 20], -1)
    return torch.randn(batch, 3, 64, 64, generator=g), boxes, torch.rand(batch, rows, generator=g)


@pytest.mark.parametrize("freeze", [False, True])
def test_gradients_reach_both_branches(freeze):
    model = _tiny_model(freeze)
    images, boxes, prior = _inputs()
    mc, md = model(images, boxes, prior)
    probability_bce(image_scores(two_stream_scores(mc, md)), torch.tensor([[1.0, 0, 1], [0, 1, 0]])).backward()
    for branch in (model.classify, model.detect, model.head[0]):
        assert branch.weight.grad is not None and branch.weight.grad.abs().sum() > 0
    body_grad = model.body[0].weight.grad
    assert (body_grad is None) == freeze
    assert not model.body[1].training, "the body's BatchNorm statistics are never updated"


def test_batch_keeps_the_proposal_softmax_per_image():
    model = _tiny_model(False).eval()
    images, boxes, prior = _inputs()
    together = two_stream_scores(*model(images, boxes, prior))
    for i in range(2):
        alone = two_stream_scores(*model(images[i:i + 1], boxes[i:i + 1], prior[i:i + 1]))
        torch.testing.assert_close(together[i], alone[0])


def test_prior_weighting_scales_pooled_features():
    model = _tiny_model(False).eval()
    model.a, model.b = 10.0, 1.0
    images, boxes, prior = _inputs(1, 4)
    maps = model.body(images)
    # a * s_R + b multiplies phi(R): equal to pooling maps scaled by that factor, one box at a time.
    expected = model.pool(maps, boxes) * (10.0 * prior.reshape(-1) + 1.0)[:, None, None, None]
    mc, _ = model.from_maps(maps, boxes, prior)
    torch.testing.assert_close(mc.view(-1, 3), model.classify(model.head(expected.mean((2, 3)))))


def _regulariser_case():
    # b1 overlaps b0 by IoU 90/100 = 0.9; b2 is far away.
    boxes = torch.tensor([[[0.0, 0, 10, 10], [0, 0, 10, 9], [20, 20, 30, 30]]])
    scores = torch.tensor([[[0.5, 0.1], [0.3, 0.2], [0.2, 0.7]]])
    features = torch.tensor([[[1.0], [3.0], [5.0]]], requires_grad=True)
    return features, scores, boxes


def test_spatial_regulariser_hand_computed():
    features, scores, boxes = _regulariser_case()
    valid = torch.ones(1, 3, dtype=torch.bool)
    # Class 0 is positive; its top region is b0. b0 adds 0 (no distance), b1 adds 1/2 * 0.3^2 * (3 - 1)^2 = 0.18,
    # b2 is too far (IoU 0). One positive class, one image: 0.18.
    loss = spatial_regulariser(features, scores, boxes, torch.tensor([[1.0, 0.0]]), valid, iou=0.6)
    assert loss.item() == pytest.approx(0.18)
    loss.backward()
    # d/df1 = 0.3^2 * (f1 - f0) = 0.18, d/df0 = -0.18, b2 untouched.
    torch.testing.assert_close(features.grad, torch.tensor([[[-0.18], [0.18], [0.0]]]))
    # Class 1 positive too: its top region b2 overlaps nothing else, adding 0; the mean over n+ = 2 halves it.
    both = spatial_regulariser(features, scores, boxes, torch.tensor([[1.0, 1.0]]), valid, iou=0.6)
    assert both.item() == pytest.approx(0.09)


def test_spatial_regulariser_ignores_recycled_rows_and_negative_images():
    features, scores, boxes = _regulariser_case()
    # With b0 a recycled row, class 0's top real region is b1, which overlaps no other real region.
    masked = spatial_regulariser(features, scores, boxes, torch.tensor([[1.0, 0.0]]),
                                 torch.tensor([[False, True, True]]), iou=0.6)
    assert masked.item() == 0.0
    none = spatial_regulariser(features, scores, boxes, torch.tensor([[0.0, 0.0]]),
                               torch.ones(1, 3, dtype=torch.bool), iou=0.6)
    assert none.item() == 0.0
