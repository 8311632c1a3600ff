"""The distillation losses (Eq. 3-11, Hinton KD, FitNets, attention transfer) and the learnable temperatures."""

from __future__ import annotations

import math

import pytest
import torch
from torch.autograd import gradcheck

from wsdkd.distill.losses import (ChannelAdapter, attention_transfer_loss, class_aware_l2, class_aware_sigmoid_ce,
                                  fitnets_hint_loss, hinton_kd_loss, multi_layer_roi_distill_loss, roi_distill_loss,
                                  softened_student_predictions, softened_teacher_predictions, stage2_loss)
from wsdkd.distill.temperatures import RELEASED_STUDENT_INIT, RELEASED_TEACHER_T, Temperatures
from wsdkd.student.losses import hard_label_bce
from wsdkd.teacher.wsddn import two_stream_scores

LN3 = math.log(3.0)
LN2 = math.log(2.0)


def _f64(*shape: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=g, dtype=torch.float64)


# ---- Stage 1 ----

def test_roi_distill_hand_value():
    # Two images, two RoIs, 1x1x1 maps.
    # image 0: diff [1, 2], s' [1, 0.5] -> (1*1)^2 + (2*0.5)^2 = 2, over |R'| = 2 -> 1
    # image 1: diff [2, 5], s' [0.5, 1], second RoI recycled -> (2*0.5)^2 = 1, over |R'| = 1 -> 1
    # L_f = (1 + 1) / (2 * 2) = 0.5
    teacher = torch.tensor([[1.0, 2.0], [3.0, 5.0]]).view(2, 2, 1, 1, 1)
    student = torch.tensor([[0.0, 0.0], [1.0, 0.0]]).view(2, 2, 1, 1, 1)
    weights = torch.tensor([[1.0, 0.5], [0.5, 1.0]])
    valid = torch.tensor([[True, True], [True, False]])
    assert roi_distill_loss(teacher, student, weights, valid).item() == pytest.approx(0.5)


def test_roi_distill_sums_over_channels_and_cells():
    # one image, one RoI, a 2x2x2 map of unit differences: 8 / 1 / (2 * 1) = 4; no weights = all ones
    assert roi_distill_loss(torch.ones(1, 1, 2, 2, 2), torch.zeros(1, 1, 2, 2, 2)).item() == pytest.approx(4.0)


def test_roi_distill_zero_weights_give_zero_loss_and_gradient():
    student = _f64(2, 3, 2, 2, 2).requires_grad_()
    loss = roi_distill_loss(_f64(2, 3, 2, 2, 2, seed=1), student, torch.zeros(2, 3, dtype=torch.float64))
    loss.backward()
    assert loss.item() == 0.0
    assert torch.all(student.grad == 0)


def test_roi_distill_recycled_rois_are_masked():
    teacher, student = _f64(1, 2, 3, 2, 2), _f64(1, 2, 3, 2, 2, seed=1)
    weights = torch.tensor([[0.7, 0.2]], dtype=torch.float64)
    # a third row recycling the first one, marked not valid, changes nothing
    recycled = roi_distill_loss(torch.cat([teacher, teacher[:, :1]], 1), torch.cat([student, student[:, :1]], 1),
                                torch.cat([weights, weights[:, :1]], 1), torch.tensor([[True, True, False]]))
    assert recycled.item() == pytest.approx(roi_distill_loss(teacher, student, weights).item())


def test_roi_distill_gradcheck():
    teacher = _f64(2, 3, 2, 2, 2)
    valid = torch.tensor([[True, True, False], [True, False, False]])
    assert gradcheck(lambda s, w: roi_distill_loss(teacher, s, w, valid),
                     (_f64(2, 3, 2, 2, 2, seed=1).requires_grad_(), _f64(2, 3, seed=2).requires_grad_()))


def test_multi_layer_roi_distill_is_the_sum_over_layers():
    pairs = [(_f64(1, 2, 3, 2, 2, seed=i), _f64(1, 2, 3, 2, 2, seed=i + 10)) for i in range(2)]
    weights = torch.tensor([[1.0, 0.5]], dtype=torch.float64)
    expected = sum(roi_distill_loss(t, s, weights).item() for t, s in pairs)
    assert multi_layer_roi_distill_loss(pairs, weights).item() == pytest.approx(expected)


def test_channel_adapter():
    x = torch.randn(2, 4, 3, 3)
    assert ChannelAdapter(4, 4)(x) is x  # Psi(F) = F for equal channel counts (paper 3.3)
    assert ChannelAdapter(4, 6)(x).shape == (2, 6, 3, 3)


# ---- Stage 2 ----

def test_softened_teacher_hand_value():
    # mc rows: [0, 0] -> [0.5, 0.5]; [ln3, 0] -> [0.75, 0.25]
    # md columns with td = [1, 0.5]: [0, ln3] / td = [0, 2 ln3] -> [0.1, 0.9]; [0, 0] -> [0.5, 0.5]
    # p'^T = [0.5*0.1 + 0.75*0.9, 0.5*0.5 + 0.25*0.5] = [0.725, 0.375]
    mc = torch.tensor([[[0.0, 0.0], [LN3, 0.0]]])
    md = torch.tensor([[[0.0, 0.0], [LN3, 0.0]]])
    p = softened_teacher_predictions(mc, md, torch.ones(2), torch.tensor([1.0, 0.5]))
    assert torch.allclose(p, torch.tensor([[0.725, 0.375]]))


def test_softened_teacher_at_unit_temperature_is_the_teachers_p():
    mc, md = _f64(2, 5, 3), _f64(2, 5, 3, seed=1)
    p = softened_teacher_predictions(mc, md, torch.ones(3, dtype=torch.float64), torch.ones(5, dtype=torch.float64))
    assert torch.allclose(p, two_stream_scores(mc, md).sum(-2))


def test_softened_teacher_gradcheck():
    valid = torch.tensor([[True, True], [True, False]])
    assert gradcheck(lambda mc, md, tc, td: softened_teacher_predictions(mc, md, tc, td, valid),
                     (_f64(2, 2, 3).requires_grad_(), _f64(2, 2, 3, seed=1).requires_grad_(),
                      (_f64(3, seed=2).abs() + 0.5).requires_grad_(), (_f64(2, seed=3).abs() + 0.5).requires_grad_()))


def test_softened_student_hand_value_and_eq9_gradient():
    m = torch.tensor([[LN3]], requires_grad=True)
    t = torch.tensor([1.0], requires_grad=True)
    p = softened_student_predictions(m, t)
    assert p.item() == pytest.approx(0.75)  # sigmoid(ln3) = 3/4
    p.sum().backward()
    s = 0.75
    assert m.grad.item() == pytest.approx(s * (1 - s) / 1.0)  # Eq. 9: 1/t
    assert t.grad.item() == pytest.approx(-LN3 / 1.0 ** 2 * s * (1 - s))  # Eq. 9: -m/t^2
    assert softened_student_predictions(m, torch.tensor([0.5])).item() == pytest.approx(0.9)  # sigmoid(2 ln3) = 9/10


def test_softened_student_gradcheck():
    assert gradcheck(softened_student_predictions,
                     (_f64(2, 3).requires_grad_(), (_f64(3, seed=1).abs() + 0.5).requires_grad_()))


def test_class_aware_l2_hand_value():
    # squared errors 1 + 0 + 0.25 + 0 = 1.25, over 2N = 4 -> 0.3125
    p_t = torch.tensor([[1.0, 0.0], [0.5, 0.5]])
    p_s = torch.tensor([[0.0, 0.0], [0.0, 0.5]])
    assert class_aware_l2(p_t, p_s).item() == pytest.approx(0.3125)


def test_soft_loss_switch_changes_the_value():
    # target 0.5, student logit 0: L2 = 0, sigmoid CE = -(0.5 ln 0.5 + 0.5 ln 0.5) = ln 2
    p_t, logits, t = torch.tensor([[0.5]]), torch.zeros(1, 1), torch.ones(1)
    labels = torch.ones(1, 1)
    assert class_aware_sigmoid_ce(p_t, logits, t).item() == pytest.approx(LN2)
    assert stage2_loss(logits, labels, p_t, t, soft_loss="l2").item() == pytest.approx(LN2)  # BCE(0, 1) = ln 2
    assert stage2_loss(logits, labels, p_t, t, soft_loss="sigmoid_ce").item() == pytest.approx(2 * LN2)
    with pytest.raises(ValueError):
        stage2_loss(logits, labels, p_t, t, soft_loss="kl")


def test_stage2_loss_hand_value():
    # BCE(sigmoid(0), 1) = ln 2; p'^S = 0.5 vs p'^T = 1: L2 = 0.25 / 2 = 0.125; lambda = 2 -> ln 2 + 0.25
    logits, labels, p_t, t = torch.zeros(1, 1), torch.ones(1, 1), torch.ones(1, 1), torch.ones(1)
    assert stage2_loss(logits, labels, p_t, t, lam=2.0).item() == pytest.approx(LN2 + 0.25)
    assert stage2_loss(logits, labels, p_t, t, lam=0.0).item() == pytest.approx(hard_label_bce(logits, labels).item())


@pytest.mark.parametrize("soft_loss", ["l2", "sigmoid_ce"])
def test_stage2_loss_gradcheck(soft_loss):
    labels = torch.tensor([[1.0, 0.0, 1.0], [0.0, 0.0, 1.0]], dtype=torch.float64)
    p_t = torch.rand(2, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    assert gradcheck(lambda m, t: stage2_loss(m, labels, p_t, t, soft_loss=soft_loss),
                     (_f64(2, 3).requires_grad_(), (_f64(3, seed=1).abs() + 0.5).requires_grad_()))


# ---- Temperatures ----

def test_temperatures_stay_positive_under_large_sgd_steps():
    temps = Temperatures(3)
    opt = torch.optim.SGD(temps.parameters(), lr=1.0)  # 10^4 times the paper's stage-2 learning rate
    for _ in range(500):  # a loss that pulls t towards -5: first step theta 0 -> -12
        opt.zero_grad()
        loss = (temps() + 5.0).pow(2).sum()
        loss.backward()
        assert temps.log_t.grad is not None and torch.all(temps.log_t.grad != 0)
        opt.step()
        assert torch.all(temps() > 0) and torch.all(torch.isfinite(temps()))


def test_temperature_gradient_is_t_times_eq9():
    # loss = sigmoid(m / t) at m = ln3, t = 3: dL/dt = -m/t^2 s(1-s) (Eq. 9), dL/dtheta = t dL/dt
    m = torch.tensor([[LN3]])
    temps = Temperatures(1, init=3.0)
    softened_student_predictions(m, temps()).sum().backward()
    s = torch.sigmoid(torch.tensor(LN3 / 3.0)).item()
    assert temps.log_t.grad.item() == pytest.approx(3.0 * (-LN3 / 9.0) * s * (1 - s))


def test_fixed_temperatures_get_no_gradient():
    fixed = Temperatures(4, init=RELEASED_TEACHER_T, learnable=False)
    assert list(fixed.parameters()) == [] and not fixed().requires_grad
    assert torch.allclose(fixed(), torch.full((4,), RELEASED_TEACHER_T))
    assert torch.allclose(Temperatures(2, init=RELEASED_STUDENT_INIT)(), torch.full((2,), RELEASED_STUDENT_INIT))
    Temperatures(4).load_state_dict(fixed.state_dict())  # same key either way
    with pytest.raises(ValueError):
        Temperatures(2, init=0.0)


# ---- Compared methods ----

def test_hinton_kd_hand_values():
    teacher = torch.tensor([[0.75]])  # logit ln3
    student = torch.zeros(1, 1)  # sigmoid(0 / T) = 0.5 at any T, so BCE = ln 2 whatever the target
    assert hinton_kd_loss(student, teacher, 1.0).item() == pytest.approx(LN2)
    assert hinton_kd_loss(student, teacher, 2.0).item() == pytest.approx(4 * LN2)  # T^2 = 4
    # teacher at T=0.5: target sigmoid(2 ln3) = 0.9; student logit ln3 at T=1: 0.75
    # BCE = -(0.9 ln 0.75 + 0.1 ln 0.25)
    expected = -(0.9 * math.log(0.75) + 0.1 * math.log(0.25))
    loss = hinton_kd_loss(torch.tensor([[LN3]]), teacher, 1.0, teacher_temperature=0.5)
    assert loss.item() == pytest.approx(expected)


def test_hinton_kd_gradient():
    teacher = torch.tensor([[0.2, 0.9]], dtype=torch.float64)
    student = torch.logit(teacher).requires_grad_()  # student == teacher
    hinton_kd_loss(student, teacher, 4.0).backward()
    assert torch.allclose(student.grad, torch.zeros_like(student.grad), atol=1e-12)
    # hand gradient away from the match: d/dm = T * (sigmoid(m/T) - q) / (N K), here q = 0.75, m = 0
    student = torch.zeros(1, 1, dtype=torch.float64, requires_grad=True)
    hinton_kd_loss(student, torch.tensor([[0.75]], dtype=torch.float64), 1.0).backward()
    assert student.grad.item() == pytest.approx(0.5 - 0.75)
    assert gradcheck(lambda m: hinton_kd_loss(m, teacher, 3.0, teacher_temperature=2.0), (_f64(1, 2).requires_grad_(),))


def test_fitnets_hand_value_and_resize():
    # regressor doubles 1 -> 2, hint 5: (5 - 2)^2 / (2 * 1) = 4.5; a constant 2x2 hint resizes to the same 5
    double = lambda x: 2 * x  # noqa: E731
    assert fitnets_hint_loss(torch.ones(1, 1, 1, 1), torch.full((1, 1, 1, 1), 5.0), double).item() == pytest.approx(4.5)
    assert fitnets_hint_loss(torch.ones(1, 1, 1, 1), torch.full((1, 1, 2, 2), 5.0), double).item() == pytest.approx(4.5)


def test_fitnets_gradcheck_through_the_regressor():
    regressor = ChannelAdapter(2, 3).double()
    teacher = _f64(2, 3, 4, 4)  # larger than the student's 2x2 map
    assert gradcheck(lambda s: fitnets_hint_loss(s, teacher, regressor), (_f64(2, 2, 2, 2, seed=1).requires_grad_(),))


def test_attention_transfer_hand_value_scale_invariance_and_sum():
    # student [1, 0] -> Q [1, 0] -> [1, 0]; teacher [0, 3] -> Q [0, 9] -> [0, 1]; ||[1, -1]||^2 / (2 * 1) = 1
    student, teacher = torch.tensor([[[[1.0, 0.0]]]]), torch.tensor([[[[0.0, 3.0]]]])
    assert attention_transfer_loss([student], [teacher]).item() == pytest.approx(1.0)
    assert attention_transfer_loss([student, student], [teacher, teacher]).item() == pytest.approx(2.0)
    s, t = torch.randn(2, 3, 4, 4), torch.randn(2, 5, 8, 8)  # other channel counts and sizes
    base = attention_transfer_loss([s], [t]).item()
    assert attention_transfer_loss([7.0 * s], [0.1 * t]).item() == pytest.approx(base, rel=1e-5)
    with pytest.raises(ValueError):
        attention_transfer_loss([s], [t, t])


def test_attention_transfer_gradcheck():
    teachers = [_f64(2, 3, 4, 4), _f64(2, 5, 2, 2, seed=1)]
    assert gradcheck(lambda a, b: attention_transfer_loss([a, b], teachers),
                     (_f64(2, 2, 2, 2, seed=2).requires_grad_(), _f64(2, 2, 2, 2, seed=3).requires_grad_()))
