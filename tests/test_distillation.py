"""The distillation losses (Eq. 3-11, Hinton KD, FitNets, attention transfer) and the learnable temperatures."""

from __future__ import annotations

import math

import pytest
import torch
from torch.autograd import gradcheck

from wsdkd.distill.diagnostics import positive_readings, soft_gradient_opposes_bce, temperature_summary
from wsdkd.distill.losses import (ChannelAdapter, attention_map, attention_transfer_loss, class_aware_l2, class_aware_sigmoid_ce,
                                  class_aware_soft_loss, fitnets_hint_loss, hinton_kd_loss, multi_layer_roi_distill_loss,
                                  roi_distill_loss, softened_student_predictions, softened_teacher_predictions)
from wsdkd.distill.temperatures import Temperatures
from wsdkd.engine.epoch_terms import batch_mean
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
    assert class_aware_sigmoid_ce(p_t, logits, t).item() == pytest.approx(LN2)
    assert class_aware_soft_loss(p_t, logits, t, "l2").item() == pytest.approx(0.0)
    assert class_aware_soft_loss(p_t, logits, t, "sigmoid_ce").item() == pytest.approx(LN2)
    with pytest.raises(ValueError, match="soft_loss must be one of"):
        class_aware_soft_loss(p_t, logits, t, "kl")


def test_bce_and_soft_losses_are_summed_over_classes_averaged_over_images():
    # Eq. 10-11: 2 images x 3 classes, every logit 0 -> each (image, class) BCE is ln 2; per image 3 ln 2.
    logits, labels = torch.zeros(2, 3), torch.tensor([[1.0, 0.0, 1.0], [0.0, 0.0, 1.0]])
    assert hard_label_bce(logits, labels).item() == pytest.approx(3 * LN2)
    # p'^S = 0.5 everywhere, p'^T = 1 on image 0's classes, 0.5 elsewhere: squared errors 3 x 0.25 = 0.75 -> / 2N
    p_t = torch.tensor([[1.0, 1.0, 1.0], [0.5, 0.5, 0.5]])
    assert class_aware_l2(p_t, torch.full((2, 3), 0.5)).item() == pytest.approx(0.75 / 4)
    # CE: image 0 three terms ln 2 (target 1, p 0.5), image 1 three terms ln 2 (target 0.5) -> 6 ln 2 / 2
    assert class_aware_sigmoid_ce(p_t, logits, torch.ones(3)).item() == pytest.approx(3 * LN2)
    # Hinton at T 1: each term is ln 2 at p = 0.5 whatever the target -> 3 ln 2 per image
    assert hinton_kd_loss(logits, torch.full((2, 3), 0.8), 1.0).item() == pytest.approx(3 * LN2)


def test_the_paper_lambda_is_k_times_the_old_one():
    # The ratio of the soft term to the BCE grows by K against a BCE averaged over classes: what lambda = K undoes.
    k = 5
    logits = torch.randn(4, k, generator=torch.Generator().manual_seed(0))
    labels = (torch.rand(4, k, generator=torch.Generator().manual_seed(1)) > 0.5).float()
    p_t = torch.rand(4, k, generator=torch.Generator().manual_seed(2))
    soft = class_aware_soft_loss(p_t, logits, torch.ones(k), "l2")
    old_bce = torch.nn.functional.binary_cross_entropy_with_logits(logits, labels)  # the mean over N x K
    assert (soft / hard_label_bce(logits, labels)).item() == pytest.approx((soft / old_bce).item() / k)


def test_old_scale_is_lambda_k_at_lr_over_k():
    # One SGD step (momentum, weight decay) on BCE-mean + L2 at lr 0.01 moves the weights exactly as Eq. 10-11
    # with lambda K at lr 0.01 / K and weight decay x K; with decay as small as the paper's, lambda K alone.
    k, lr, wd = 4, 0.01, 5e-4
    x = torch.randn(3, 6, generator=torch.Generator().manual_seed(0))
    labels = torch.tensor([[1.0, 0, 0, 1], [0, 1, 0, 0], [1, 1, 1, 0]])
    p_t = torch.rand(3, k, generator=torch.Generator().manual_seed(1))

    def step(loss_fn, lr, wd):
        torch.manual_seed(0)
        layer = torch.nn.Linear(6, k)
        opt = torch.optim.SGD(layer.parameters(), lr=lr, momentum=0.9, weight_decay=wd)
        for _ in range(2):
            opt.zero_grad()
            loss_fn(layer(x)).backward()
            opt.step()
        return layer.weight.detach()

    old = step(lambda m: torch.nn.functional.binary_cross_entropy_with_logits(m, labels)
               + class_aware_soft_loss(p_t, m, torch.ones(k)), lr, wd)
    new = step(lambda m: hard_label_bce(m, labels) + k * class_aware_soft_loss(p_t, m, torch.ones(k)), lr / k, wd * k)
    assert torch.allclose(old, new, atol=1e-7)


def test_cross_entropy_never_back_propagates_into_the_teacher_side():
    # Learnable t^c, t^d: the L2 of Eq. 5 sends a gradient into p'^T (the paper); the released CE does not.
    mc, md = _f64(1, 3, 2), _f64(1, 3, 2, seed=1)
    logits, t = _f64(1, 2, seed=2).requires_grad_(), torch.ones(2, dtype=torch.float64)
    for soft_loss, reaches in (("l2", True), ("sigmoid_ce", False)):
        tc = torch.ones(2, dtype=torch.float64, requires_grad=True)
        td = torch.ones(3, dtype=torch.float64, requires_grad=True)
        p_t = softened_teacher_predictions(mc, md, tc, td)
        class_aware_soft_loss(p_t, logits, t, soft_loss).backward()
        assert (tc.grad is not None and tc.grad.abs().sum() > 0) == reaches, soft_loss
        assert (td.grad is not None and td.grad.abs().sum() > 0) == reaches, soft_loss


def test_ce_gradient_on_the_student_is_unchanged_by_the_detach():
    # d/dm of the CE at t = 2: (sigmoid(m / 2) - p'^T) / 2, summed over classes, / N: m = 0, p'^T = 0.9 -> -0.2
    logits = torch.zeros(1, 1, requires_grad=True)
    class_aware_sigmoid_ce(torch.tensor([[0.9]], requires_grad=True), logits, torch.tensor([2.0])).backward()
    assert logits.grad.item() == pytest.approx((0.5 - 0.9) / 2)


@pytest.mark.parametrize("soft_loss", ["l2", "sigmoid_ce"])
def test_soft_loss_gradcheck(soft_loss):
    p_t = torch.rand(2, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    assert gradcheck(lambda m, t: class_aware_soft_loss(p_t, m, t, soft_loss),
                     (_f64(2, 3).requires_grad_(), (_f64(3, seed=1).abs() + 0.5).requires_grad_()))


# ---- Temperatures ----

def test_temperatures_stay_positive_under_large_sgd_steps():
    temps = Temperatures(3)
    opt = torch.optim.SGD(temps.parameters(), lr=1.0)  # 10^4 times the paper's stage-2 learning rate
    for _ in range(500):  # a loss that pulls t towards -5: first step theta 0 -> -12
        opt.zero_grad()
        loss = (temps() + 5.0).pow(2).sum()
        loss.backward()
        assert temps.theta.grad is not None and torch.all(temps.theta.grad != 0)
        opt.step()
        assert torch.all(temps() > 0) and torch.all(torch.isfinite(temps()))


def test_temperature_gradient_is_t_times_eq9():
    # loss = sigmoid(m / t) at m = ln3, t = 3: dL/dt = -m/t^2 s(1-s) (Eq. 9), dL/dtheta = t dL/dt
    m = torch.tensor([[LN3]])
    temps = Temperatures(1, init=3.0)
    softened_student_predictions(m, temps()).sum().backward()
    s = torch.sigmoid(torch.tensor(LN3 / 3.0)).item()
    assert temps.theta.grad.item() == pytest.approx(3.0 * (-LN3 / 9.0) * s * (1 - s))


def test_fixed_temperatures_get_no_gradient():
    fixed = Temperatures(4, init=0.5, learnable=False)
    assert list(fixed.parameters()) == [] and not fixed().requires_grad
    assert torch.allclose(fixed(), torch.full((4,), 0.5))
    assert torch.allclose(Temperatures(2, init=5.0)(), torch.full((2,), 5.0))
    Temperatures(4).load_state_dict(fixed.state_dict())  # same key either way
    with pytest.raises(ValueError, match="positive"):
        Temperatures(2, init=0.0)
    with pytest.raises(ValueError, match="parameterisation"):
        Temperatures(2, parameterisation="sqrt")


def test_inverse_temperature_learns_the_scale_with_a_larger_step_in_t():
    # The released code learns s = 1/T from 0.2 (T = 5). On loss = T: dT/ds = -1/s^2 = -25, dT/dlogT = T = 5.
    inverse, log = Temperatures(1, init=5.0, parameterisation="inverse"), Temperatures(1, init=5.0)
    assert inverse.theta.item() == pytest.approx(0.2) and inverse().item() == pytest.approx(5.0)
    for temps in (inverse, log):
        temps().sum().backward()
    assert inverse.theta.grad.item() == pytest.approx(-25.0)
    assert log.theta.grad.item() == pytest.approx(5.0)
    # One SGD step of lr 1e-3: s 0.2 -> 0.225 (T 4.444); log T ln 5 -> ln 5 - 0.005 (T 4.975).
    with torch.no_grad():
        inverse.theta -= 1e-3 * inverse.theta.grad
        log.theta -= 1e-3 * log.theta.grad
    assert inverse().item() == pytest.approx(1 / 0.225)
    assert log().item() == pytest.approx(5.0 * math.exp(-0.005))
    # dT = -T^2 ds against dT = T dlogT: at T = 5 a step in s moves T 25x as far (22.3x at this finite step)
    assert (5.0 - inverse().item()) / (5.0 - log().item()) == pytest.approx(22.28, abs=0.01)


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
    # hand gradient away from the match: d/dm = T * (sigmoid(m/T) - q) / N, here q = 0.75, m = 0
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
    q_t = attention_map(teacher)
    assert q_t.tolist() == [[[0.0, 9.0]]]
    assert attention_transfer_loss([student], [q_t]).item() == pytest.approx(1.0)
    assert attention_transfer_loss([student, student], [q_t, q_t]).item() == pytest.approx(2.0)
    s, t = torch.randn(2, 3, 4, 4), torch.randn(2, 5, 8, 8)  # other channel counts and sizes
    base = attention_transfer_loss([s], [attention_map(t)]).item()
    assert attention_transfer_loss([7.0 * s], [attention_map(0.1 * t)]).item() == pytest.approx(base, rel=1e-5)
    with pytest.raises(ValueError):
        attention_transfer_loss([s], [attention_map(t)] * 2)


def test_attention_transfer_gradcheck():
    teachers = [attention_map(_f64(2, 3, 4, 4)), attention_map(_f64(2, 5, 2, 2, seed=1))]
    assert gradcheck(lambda a, b: attention_transfer_loss([a, b], teachers),
                     (_f64(2, 2, 2, 2, seed=2).requires_grad_(), _f64(2, 2, 2, 2, seed=3).requires_grad_()))


# ---- What stage 2 logs (distill/diagnostics.py) and the temperatures' calibration ----

def test_learnable_temperatures_calibrate_the_class_aware_signal_away():
    # One image, two classes, one proposal: p'^T = softmax_k(M^c / t^c); M^c = [ln 3, 0] -> p'^T = [3/4, 1/4].
    # The student's logits are 0 (p'^S = 1/2 at any t), so L2 = (1/4^2 + 1/4^2) / 2 = 1/16 and its gradient on
    # m_0 is -(3/4 - 1/2) * 1/4 = -1/16: "the teacher is surer than you on class 0".
    mc, md = torch.tensor([[[LN3, 0.0]]]), torch.zeros(1, 1, 2)
    logits = torch.zeros(1, 2, requires_grad=True)

    def l2(tc, td, t):
        return class_aware_soft_loss(softened_teacher_predictions(mc, md, tc(), td()), logits, t(), "l2")

    start = l2(Temperatures(2), Temperatures(1), Temperatures(2))
    start.backward()
    assert start.item() == pytest.approx(1 / 16) and logits.grad[0, 0].item() == pytest.approx(-1 / 16)
    # Training only the temperatures (the logits held fixed) flattens the teacher's target instead.
    for learnable in (True, False):
        temps = [Temperatures(2, learnable=learnable), Temperatures(1, learnable=learnable), Temperatures(2)]
        params = [p for m in temps for p in m.parameters()]
        opt = torch.optim.SGD(params, lr=5.0)
        for _ in range(200):
            opt.zero_grad()
            l2(*temps).backward()
            opt.step()
        logits.grad = None
        end = l2(*temps)
        end.backward()
        if learnable:  # t^c grew: p'^T -> [1/2, 1/2], the signal on m_0 nearly gone
            assert end.item() < 0.1 * start.item() and abs(logits.grad[0, 0].item()) < 0.1 / 16
            assert temps[0]()[0].item() > 3.0
        else:  # teacher temperatures fixed (released code): m = 0 makes t inert, the signal stays
            assert end.item() == pytest.approx(1 / 16) and logits.grad[0, 0].item() == pytest.approx(-1 / 16)


def test_soft_gradient_opposes_bce_where_the_target_is_below_the_student():
    # Two positives, student p'^S = 1/2 (m = 0, t = 1); targets 0.9 and 0.2: only class 1's soft gradient
    # (dL2/dm = -(p'^T - p'^S) p'^S (1 - p'^S) = +0.075 > 0) points against the BCE's (sigmoid(0) - 1 < 0).
    target, labels = torch.tensor([[0.9, 0.2]]), torch.ones(1, 2)
    logits = torch.zeros(1, 2, requires_grad=True)
    for soft_loss in ("l2", "sigmoid_ce"):
        logits.grad = None
        class_aware_soft_loss(target, logits, torch.ones(2), soft_loss).backward()
        soft_sign = torch.sign(logits.grad)
        bce_sign = torch.sign(torch.sigmoid(logits.detach()) - labels)
        expected = (soft_sign * bce_sign < 0)
        assert torch.equal(soft_gradient_opposes_bce(target, torch.full((1, 2), 0.5)), expected)
    assert expected.tolist() == [[False, True]]
    readings = positive_readings(target, torch.full((1, 2), 0.5), torch.tensor([[1.0, 1.0]]))
    assert readings["opposing_share"] == (1.0, 2.0)
    assert readings["target_on_positives"] == pytest.approx((1.1, 2.0))
    assert readings["student_on_positives"] == (1.0, 2.0)
    none = positive_readings(target, torch.full((1, 2), 0.5), torch.zeros(1, 2))
    assert none["opposing_share"] == (0.0, 0.0)  # no positive: the epoch's mean leaves the batch out


def test_temperature_summary_and_batch_mean_are_sums_and_counts():
    summary = temperature_summary("tc", torch.tensor([0.5, 1.0, 3.0]), batch=4)
    assert summary == {"tc_mean": (pytest.approx(6.0), 4.0), "tc_min": (2.0, 4.0), "tc_max": (12.0, 4.0)}
    assert batch_mean("bce", torch.tensor(0.25), 8) == {"bce": (2.0, 8.0)}
