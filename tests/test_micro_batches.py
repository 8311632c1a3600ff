"""Micro-batches with gradient accumulation (train.memory_cap_gb) and the memory estimate that sizes them."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from wsdkd.backbones.zoo import Backbone
from wsdkd.engine import memory as me
from wsdkd.engine.loop import Hardware, LoopConfig, accumulate, fit
from wsdkd.pipeline.errors import UserError
from wsdkd.student.training import loop_config
from wsdkd.teacher.memory import teacher_training
from wsdkd.teacher.wsddn import TWDet, image_scores, probability_bce, two_stream_scores

from .test_training_hardware import Points

CPU = torch.device("cpu")
GB = me.GB


def _cfg(micro: int | None, batch: int = 8, epochs: int = 1) -> LoopConfig:
    return LoopConfig(epochs=epochs, batch_size=batch, seed=0, num_workers=0, hflip=False, amp=False, device=CPU,
                      micro_batch=micro)


def _tiny_teacher(classes: int = 3) -> TWDet:
    """T-WDet on a small conv body cut at stride 16 (no batch norm), the paper's structure in miniature."""
    torch.manual_seed(0)
    body = nn.Sequential(nn.Conv2d(3, 8, 3, stride=4, padding=1), nn.ReLU(), nn.Conv2d(8, 16, 3, stride=4, padding=1),
                         nn.ReLU())
    roi_head = nn.Sequential(nn.Flatten(), nn.Linear(16 * 49, 32), nn.ReLU())
    backbone = Backbone("tiny", body, nn.Identity(), roi_head, channels16=16, out_features=32)
    return TWDet(backbone, classes, head="backbone")


_GENERATOR = torch.Generator().manual_seed(1)
_CORNERS = torch.rand(8, 6, 2, generator=_GENERATOR) * 40
BOXES, PRIOR = torch.cat([_CORNERS, _CORNERS + 20], dim=-1), torch.rand(8, 6, generator=_GENERATOR)


def _eq2_step(model, images, labels, rows):
    """Eq. 2 on each image's own proposals (by row, as the real steps fetch them): the teacher's BCE of
    p = sum over proposals of S, averaged over the batch."""
    mc, md = model(images, BOXES[rows], PRIOR[rows])
    return {"loss": probability_bce(image_scores(two_stream_scores(mc, md)), labels)}


def _gradients(model: nn.Module, micro: int | None, images, labels) -> list[torch.Tensor]:
    model.zero_grad(set_to_none=True)
    loss = accumulate(_eq2_step, model, images, labels, torch.arange(len(images)), _cfg(micro), lambda _: None)
    return [loss.detach().clone()] + [p.grad.clone() for p in model.parameters()]


def test_accumulated_gradients_equal_one_big_batch():
    model = _tiny_teacher()
    generator = torch.Generator().manual_seed(0)
    images = torch.rand(8, 3, 64, 64, generator=generator)
    labels = (torch.rand(8, 3, generator=generator) < 0.5).float()
    whole = _gradients(model, None, images, labels)
    for micro in (1, 3, 4):  # 3: uneven micro-batches (3 + 3 + 2), each weighted by its share
        split = _gradients(model, micro, images, labels)
        for big, accumulated in zip(whole, split):
            torch.testing.assert_close(accumulated, big, rtol=1e-5, atol=1e-7)
    assert any(g.abs().sum() > 0 for g in whole[1:])  # the comparison is not between zeros


def test_micro_batches_train_to_the_same_weights_and_history(tmp_path):
    runs = {}
    for micro in (None, 3):
        torch.manual_seed(0)
        model = nn.Linear(6, 3)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.5, momentum=0.9)

        def step(m, x, y, _index):
            return {"loss": nn.functional.binary_cross_entropy_with_logits(m(x), y)}

        history = fit(model, step, Points(24, 1), None, _cfg(micro, epochs=2), optimizer, None,
                      tmp_path / f"{micro}" / "resume", tmp_path / f"{micro}" / "live", np.arange(24))
        runs[micro] = (model.weight.detach().clone(), [r["train/loss"] for r in history])
    torch.testing.assert_close(runs[3][0], runs[None][0], rtol=1e-5, atol=1e-6)
    assert runs[3][1] == pytest.approx(runs[None][1], rel=1e-6)


def test_a_draw_per_batch_is_shared_by_its_micro_batches(tmp_path):
    class ScaleStep:
        def __init__(self):
            self.scale, self.seen = None, []

        def begin_batch(self):
            self.scale = int(torch.randint(1000, ()))

        def __call__(self, m, x, y, _index):
            self.seen.append(self.scale)
            return {"loss": nn.functional.binary_cross_entropy_with_logits(m(x), y)}

    step = ScaleStep()
    model = nn.Linear(6, 3)
    fit(model, step, Points(16, 1), None, _cfg(3), torch.optim.SGD(model.parameters(), lr=0.1), None,
        tmp_path / "resume", tmp_path / "live", np.arange(16))
    assert len(step.seen) == 6  # two batches of 8, each in micro-batches of 3, 3, 2
    assert len(set(step.seen[:3])) == 1 and len(set(step.seen[3:])) == 1 and step.seen[0] != step.seen[3]


def test_the_micro_batch_is_the_largest_that_fits_the_cap():
    memory = me.StageMemory(state_bytes=1 * GB, per_image_bytes=GB // 2)
    assert memory.peak_bytes(4) == 3 * GB
    assert me.micro_batch_size(memory, 32, 3.0, "train_teacher") == 4  # (3 - 1) / 0.5
    assert me.micro_batch_size(memory, 32, 3.2, "train_teacher") == 4  # rounded down
    assert me.micro_batch_size(memory, 4, 3.0, "train_teacher") is None  # the whole batch fits
    assert me.micro_batch_size(memory, 32, None, "train_teacher") is None  # no cap
    with pytest.raises(UserError, match=r"train.memory_cap_gb: 1.2 GB cannot hold one image of train_teacher: its "
                                        r"weights and optimiser state take 1.00 GB and one image 0.50 GB more"):
        me.micro_batch_size(memory, 32, 1.2, "train_teacher")


def test_state_and_saved_bytes_by_hand():
    layer = nn.Linear(10, 5)  # 50 weights + 5 biases
    assert me.state_bytes(layer) == 4 * 3 * 55  # value, gradient, momentum
    assert me.state_bytes(layer, [layer.bias]) == 4 * (50 + 3 * 5)
    x = torch.zeros(2, 10, requires_grad=True)
    assert me.saved_bytes(lambda: layer(x), layer) == 2 * 10 * 4  # the input, for the weight's gradient
    net = nn.Sequential(nn.Linear(10, 5), nn.ReLU())
    assert me.largest_layer_bytes(lambda: net(torch.zeros(3, 10)), net) == 4 * 3 * (10 + 5)


def test_paper_teacher_estimate_holds_what_it_must():
    cfg = {"backbone": {"name": "vgg16", "weights": "imagenet", "weights_path": None}, "head": "backbone",
           "head_hidden": 256, "roi_op": "align", "a": 1.0, "b": 0.0, "freeze_backbone": False,
           "scales": [480, 832], "cache_scale": 672}
    memory = teacher_training(cfg, 80, 500)
    vgg16_without_fc8 = 138_357_544 - (4096 * 1000 + 1000)
    branches = 2 * (4096 * 80 + 80)
    assert memory.state_bytes == 4 * 3 * (vgg16_without_fc8 + branches)
    conv1_1 = 64 * 832 * 832 * 4  # one 832 px map of the first layer, saved for its ReLU's and conv1_2's backward
    fc6_input = 500 * 512 * 7 * 7 * 4
    assert conv1_1 + fc6_input < memory.per_image_bytes < 3 * GB
    frozen = teacher_training({**cfg, "freeze_backbone": True}, 80, 500)
    assert frozen.per_image_bytes < fc6_input * 2 and frozen.state_bytes < memory.state_bytes


def test_the_trainers_take_their_micro_batch_from_the_cap():
    student = {"epochs": 1, "batch_size": 32, "seed": 0, "num_workers": 0, "hflip": False, "amp": False,
               "select": "last"}
    memory = me.StageMemory(state_bytes=GB, per_image_bytes=GB // 4)
    assert loop_config(student, CPU, Hardware(memory_cap_gb=3.0), memory, "train_student").micro_batch == 8
    assert loop_config(student, CPU, Hardware(), memory, "train_student").micro_batch is None
