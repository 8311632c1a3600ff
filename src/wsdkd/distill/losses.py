"""Distillation losses: the paper's two stages (Eq. 3-11) and the compared methods (Table 1/2), as pure functions.

Conventions shared by every loss here:
- A batch has N images on the leading axis; "1/(2N) sum_n ||.||^2" (Eq. 3 and 5) sums the squared error over
  everything inside an image and averages over images, as the paper writes it (and as Caffe's EuclideanLoss
  computes). FitNets and attention transfer use the same reduction so their weights read alike.
- Stage 2's losses are summed over the K classes and averaged over the N images (``losses.per_image_sum``), the
  reduction of Eq. 10 and Eq. 5, so lambda of Eq. 11 weighs each against the BCE as the paper's lambda does.
- Teacher tensors are targets: callers pass them detached (or from a frozen model). The one exception is p'^T,
  which the learnable t^c, t^d of Eq. 6-7 reach: the L2 of Eq. 5 back-propagates into it (the paper), the
  released code's cross-entropy detaches it itself (Caffe's ``propagate_down: 0``).
- When a teacher map and a student map differ in spatial size (the teacher runs at a larger input), the
  teacher's map is resized to the student's, so no interpolation sits on the student's gradient path.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..student.losses import per_image_sum
from ..teacher.wsddn import PROB_EPS, two_stream_scores

SOFT_LOSSES = ("l2", "sigmoid_ce")  # paper Eq. 5 | released code's sigmoid cross-entropy


# ---- Stage 1: RoI-aware feature distillation (Eq. 3-4) ----

class ChannelAdapter(nn.Module):
    """Psi of Eq. 4: maps the student's conv map (N, c_student, H, W) to the teacher's channel count.

    Identity when the counts are equal (the paper's VGG16-to-VGG16 case), else a 1x1 convolution trained with
    the student. Apply it to the conv map before RoI pooling, as Eq. 4 writes Psi(F^S_conv).
    """

    def __init__(self, c_student: int, c_teacher: int) -> None:
        super().__init__()
        self.proj: nn.Module = (nn.Identity() if c_student == c_teacher
                                else nn.Conv2d(c_student, c_teacher, kernel_size=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x)


def roi_distill_loss(teacher_rois: torch.Tensor, student_rois: torch.Tensor, weights: torch.Tensor | None = None,
                     valid: torch.Tensor | None = None) -> torch.Tensor:
    """Eq. 3-4: L_f = 1/(2N) sum_n 1/|R'_n| || s' * F^T - s' * F^S ||^2 over the selected RoIs of each image.

    ``teacher_rois`` and ``student_rois`` are (N, R, ...): the R RoI-pooled maps (C, h, w) per image, or RoI
    vectors (D,) when distilling a fully connected layer (every image has the same R rows because the selection
    recycles short lists). ``weights`` (N, R) is s' (Eq. 4), multiplying
    both sides; None weighs every RoI by 1 (the "NMS proposals transfer" ablation row). ``valid`` (N, R) bool
    marks the real RoIs: recycled copies are left out of the sum and of |R'_n|, so a short list is not
    counted twice. An image with no valid RoI contributes 0.
    """
    diff = teacher_rois - student_rois
    if weights is not None:
        diff = diff * weights.view(*weights.shape, *([1] * (diff.dim() - 2)))  # s'(F^T - F^S) = s'F^T - s'F^S
    per_roi = diff.pow(2).flatten(2).sum(-1)  # (N, R)
    if valid is None:
        valid = torch.ones_like(per_roi, dtype=torch.bool)
    per_roi = per_roi * valid
    num_rois = valid.sum(-1).clamp_min(1)  # |R'_n|; the clamp only guards an image with no valid RoI
    return (per_roi.sum(-1) / num_rois).sum() / (2 * per_roi.shape[0])


def roi_distill_terms(teacher_rois: torch.Tensor, pooling: torch.Tensor, weights: torch.Tensor | None = None,
                      valid: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Eq. 3 as a quadratic form of the student's map: the terms (G, H, c) that depend only on the teacher.

    RoIAlign is linear: RoI r of image n is A_r F, with F (HW, C) the map and A_r (bins, HW) its rows of
    ``pooling`` (N, R * bins, HW; ``separable_roi_align.pooling_weights``). So Eq. 3's sum over RoIs,
    sum_r u_r ||T_r - A_r F||^2 with u_r = s'_r^2 [r valid] / |R'_n|, is c - 2 <G, F> + <F, H F> with
    G = sum_r u_r T_r^T A_r (C, HW), H = sum_r u_r A_r^T A_r (HW, HW) and c = sum_r u_r ||T_r||^2.
    None depends on the student, so they are computed once per image and flip (``FeatureStep``) and the R
    pooled maps (R x C x bins floats per image) and their backward are never formed.
    ``teacher_rois`` (N, R, C, h, w); ``weights`` s' and ``valid`` (N, R) as in :func:`roi_distill_loss`.
    """
    batch, rows, channels = teacher_rois.shape[:3]
    pixels = pooling.shape[-1]
    if valid is None:
        valid = torch.ones(batch, rows, dtype=torch.bool, device=pooling.device)
    scale = valid.double() / valid.sum(-1, keepdim=True).clamp_min(1)  # |R'_n|, as in roi_distill_loss
    if weights is not None:
        scale = scale * weights.double() ** 2
    dtype = torch.promote_types(teacher_rois.dtype, torch.float32)  # float32 in training, float64 in tests
    with torch.no_grad():
        a = pooling.to(dtype).view(batch * rows, -1, pixels)  # (N R, bins, HW)
        t = teacher_rois.to(dtype).reshape(batch * rows, channels, -1)  # (N R, C, bins)
        scaled = a * scale.to(dtype).view(-1, 1, 1)
        g = torch.bmm(t, scaled).view(batch, rows, channels, pixels).sum(1)  # (N, C, HW)
        h = torch.bmm(scaled.view(batch, -1, pixels).transpose(1, 2), a.view(batch, -1, pixels))  # (N, HW, HW)
        c = (torch.linalg.vector_norm(t, dim=(1, 2)).double().view(batch, rows) ** 2 * scale).sum(-1)  # (N,)
    return g, h, c


def roi_distill_loss_from_terms(maps: torch.Tensor, g: torch.Tensor, h: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    """:func:`roi_distill_loss` of the RoIs whose :func:`roi_distill_terms` are (g, h, c), on ``maps`` (N, C, H, W):
    1/(2N) sum_n (c - 2 <G, F> + <F, H F>), in float64 (the terms cancel as the student nears the teacher)."""
    f = maps.double().reshape(*maps.shape[:2], -1)  # (N, C, HW)
    per_image = c - 2 * (g.double() * f).sum((1, 2)) + (torch.bmm(f, h.double()) * f).sum((1, 2))
    return (per_image.sum() / (2 * len(f))).to(maps.dtype)


def multi_layer_roi_distill_loss(layer_pairs: Sequence[tuple[torch.Tensor, torch.Tensor]],
                                 weights: torch.Tensor | None = None,
                                 valid: torch.Tensor | None = None) -> torch.Tensor:
    """Sum of Eq. 3 over several layers: ``layer_pairs`` holds (teacher_rois, student_rois) per layer.

    The paper uses conv5_3 alone; the same RoIs, s' and mask apply to every layer.
    """
    return sum((roi_distill_loss(t, s, weights, valid) for t, s in layer_pairs), start=torch.zeros(()))


# ---- Stage 2: class-aware prediction distillation (Eq. 5-11) ----

def softened_teacher_predictions(mc: torch.Tensor, md: torch.Tensor, tc: torch.Tensor, td: torch.Tensor,
                                 valid: torch.Tensor | None = None) -> torch.Tensor:
    """Eq. 6-7: p'^T (N, K) = sum over proposals of softmax_k(M^c / t^c) * softmax_r(M^d / t^d).

    ``mc``, ``md`` (N, R, K) are the teacher's logits, ``tc`` (K,) one temperature per class, ``td`` (R,) one per
    proposal slot, ``valid`` (N, R) the real proposal rows (see ``two_stream_scores``). With all temperatures 1
    this is the teacher's own prediction p of Eq. 2 (unclamped). It lies in [0, 1]: each column of the
    proposal softmax sums to 1 and each class softmax is at most 1.
    """
    return two_stream_scores(mc, md, tc, td, valid).sum(dim=-2)


def softened_student_predictions(m: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Eq. 8: p'^S = sigmoid(m_k / t_k), ``m`` (N, K) the student's logits, ``t`` (K,) one temperature per class.

    Autograd gives Eq. 9: dp'/dm = s(1 - s) / t and dp'/dt = s(1 - s) * (-m / t^2).
    """
    return torch.sigmoid(m / t)


def class_aware_l2(p_t: torch.Tensor, p_s: torch.Tensor) -> torch.Tensor:
    """Eq. 5: L_p' = 1/(2N) sum_n || p'^T - p'^S ||^2, summed over the K classes, averaged over the N images."""
    return per_image_sum((p_t - p_s).pow(2)) / 2


def class_aware_sigmoid_ce(p_t: torch.Tensor, student_logits: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Released-code soft loss: sigmoid cross-entropy of the student's softened logits m / t against p'^T.

    Reduced like Eq. 10 (``per_image_sum``), as the released code ran the same Caffe sigmoid cross-entropy layer
    for both losses. The target is detached (``propagate_down: 0``): with learnable t^c, t^d a gradient into it
    would move the teacher's target toward the student's own scores. Computed on logits for numerical stability.
    """
    return per_image_sum(F.binary_cross_entropy_with_logits(student_logits / t, p_t.detach(), reduction="none"))


def class_aware_soft_loss(p_t: torch.Tensor, student_logits: torch.Tensor, t_student: torch.Tensor,
                          soft_loss: str = "l2") -> torch.Tensor:
    """L_p' of Eq. 11 (weighted by lambda there): ``soft_loss`` "l2" (Eq. 5, the paper) or "sigmoid_ce" (released).

    ``p_t`` (N, K) is p'^T of Eq. 6 and ``t_student`` (K,) the student's temperatures of Eq. 8. The student's
    temperatures are taken rather than its softened probabilities because the cross-entropy needs the logits.
    """
    if soft_loss == "l2":
        return class_aware_l2(p_t, softened_student_predictions(student_logits, t_student))
    if soft_loss == "sigmoid_ce":
        return class_aware_sigmoid_ce(p_t, student_logits, t_student)
    raise ValueError(f"soft_loss must be one of {SOFT_LOSSES}, got {soft_loss!r}")


# ---- Compared methods (Table 1/2, METHOD.md section 6) ----

def hinton_targets(teacher_probs: torch.Tensor, teacher_temperature: float) -> torch.Tensor:
    """Hinton KD's soft targets q = sigmoid(logit(p) / T_teacher) from the teacher's image prediction p (N, K)."""
    return torch.sigmoid(torch.logit(teacher_probs, eps=PROB_EPS) / teacher_temperature)


def hinton_kd_loss(student_logits: torch.Tensor, teacher_probs: torch.Tensor, temperature: float,
                   teacher_temperature: float | None = None) -> torch.Tensor:
    """Hinton et al.'s distillation, made multi-label: one softened binary distribution per class.

    Hinton softens a softmax over classes; a multi-label student has a sigmoid per class, so each class is a
    two-way softmax (= sigmoid) softened by a fixed temperature shared by all classes. The teacher's image
    prediction p (N, K) in [0, 1] (WSDDN's p is a sum of scores, not a sigmoid) is turned back into a logit,
    log(p / (1 - p)), divided by the teacher's temperature and squashed: q = sigmoid(logit(p) / T_teacher). The
    student's softened prediction is sigmoid(m / T). Loss = T^2 * binary cross-entropy(q, sigmoid(m / T)),
    summed over classes and averaged over images like Eq. 10; the T^2 keeps the gradient's size independent of T, as in
    Hinton (d/dm = T * (sigmoid(m / T) - q)). At sigmoid(m / T) = q the gradient is zero (the value is the
    targets' entropy, not zero). ``teacher_temperature`` defaults to ``temperature``; the paper tuned them
    apart (teacher 1 / student 5 on COCO, 2 / 5 on NUS-WIDE).
    """
    t_teacher = temperature if teacher_temperature is None else teacher_temperature
    targets = hinton_targets(teacher_probs, t_teacher)
    soft = F.binary_cross_entropy_with_logits(student_logits / temperature, targets, reduction="none")
    return temperature ** 2 * per_image_sum(soft)


def _resize_to(x: torch.Tensor, size: torch.Size | tuple[int, int]) -> torch.Tensor:
    """Resize (N, C, H, W) to ``size`` bilinearly, antialiased so a large teacher map is averaged, not aliased."""
    if x.shape[-2:] == size:
        return x
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=True)


def fitnets_hint_loss(student_feat: torch.Tensor, teacher_feat: torch.Tensor,
                      regressor: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
    """FitNets' hint loss: 1/(2N) sum_n || u_h - r(v_g) ||^2.

    ``student_feat`` (N, C_s, h, w) is the guided middle layer v_g, ``regressor`` r maps it to the teacher's
    channels (a ``ChannelAdapter`` or any conv), ``teacher_feat`` (N, C_t, H, W) is the hint u_h. The paper
    takes conv3_3 as the hint layer. When (H, W) != (h, w) the hint is resized to the regressor's output.
    """
    guided = regressor(student_feat)
    hint = _resize_to(teacher_feat, guided.shape[-2:])
    return (hint - guided).pow(2).sum() / (2 * guided.shape[0])


def attention_map(feat: torch.Tensor, p: float = 2.0) -> torch.Tensor:
    """Zagoruyko & Komodakis' activation-based attention: mean over channels of |A|^p, (N, C, H, W) -> (N, H, W)."""
    return feat.abs().pow(p).mean(dim=1)


def attention_transfer_loss(student_feats: Sequence[torch.Tensor], teacher_attention: Sequence[torch.Tensor],
                            p: float = 2.0) -> torch.Tensor:
    """Attention transfer: sum over layer pairs j of 1/(2N) sum_n || Q^S_j / ||Q^S_j|| - Q^T_j / ||Q^T_j|| ||^2.

    Q is the vectorised ``attention_map``; normalising it makes the loss blind to the maps' scale and to the
    channel counts, so no adapter is needed. The distance is squared (as in the authors' released code, whose
    mean over positions differs only by a constant factor folded into the weight) so it is smooth at zero. The
    paper uses conv3_3, conv4_3 and conv5_3. The student's side is its feature maps (N, C, h, w); the teacher's
    is already its attention maps Q^T (N, H, W) (``attention_map`` with the same p: the frozen teacher's are
    computed once and kept, ``teacher_maps.py``), resized to the student's when they differ.
    """
    if len(student_feats) != len(teacher_attention):
        raise ValueError(f"{len(student_feats)} student layers but {len(teacher_attention)} teacher layers")
    total = torch.zeros(())
    for s_feat, q_t in zip(student_feats, teacher_attention):
        q_s = attention_map(s_feat, p)
        q_t = _resize_to(q_t[:, None], q_s.shape[-2:])[:, 0]
        diff = F.normalize(q_s.flatten(1), dim=1) - F.normalize(q_t.flatten(1), dim=1)
        total = total + diff.pow(2).sum() / (2 * diff.shape[0])
    return total
