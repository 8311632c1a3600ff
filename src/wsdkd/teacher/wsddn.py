"""T-WDet, the teacher: WSDDN extended with the proposals' prior scores (paper Eq. 2, METHOD.md section 2).

Each proposal R is RoI-pooled (7x7) from the backbone's stride-16 map, multiplied by ``a * s_R + b`` (s_R the
proposal's prior score), turned into a vector by a head, and scored by two linear branches: classification
logits M^c and detection logits M^d, both (R, K). The two streams meet in :func:`two_stream_scores`.

Every image carries the same number N of proposal rows (the proposals store recycles short lists), so a batch
is a (B, N, ...) tensor: the softmax over proposals runs along the row axis of each image separately, and rows
that are only recycled copies are masked out of it with ``valid``.
"""

from __future__ import annotations

import torch
from torch import nn
from torchvision.ops import box_iou, roi_align, roi_pool

from ..backbones.zoo import Backbone
from ..engine.model_file import load_weights, read_model_file, save_model_file

FEATURE_STRIDE = 16  # every backbone is cut at stride 16 (backbones.py)
ROI_SIZE = 7  # phi: 7x7 RoI pooling, as fc6 of VGG16 expects
# RoIAlign samples ceil(bin size) points per bin (torchvision's adaptive mode): one point for the small bins
# of a short map, more for large boxes at paper scale.
ADAPTIVE_SAMPLING = 0
PROB_EPS = 1e-6  # p is kept in [eps, 1 - eps] so the BCE of Eq. 2 stays finite
ROI_OPS = ("align", "pool")
HEADS = ("backbone", "gap_mlp", "flat_mlp")
_FLAT_CHANNELS = 32  # flat_mlp: 1x1 conv down to this many channels before flattening the 7x7 map


def two_stream_scores(mc: torch.Tensor, md: torch.Tensor, tc: torch.Tensor | None = None,
                      td: torch.Tensor | None = None, valid: torch.Tensor | None = None) -> torch.Tensor:
    """Region scores S (..., R, K) of Eq. 2, or the softened ones of Eq. 6-7 when temperatures are given.

    S[r, k] = softmax_k(M^c[r, :] / t^c)[k] * softmax_r(M^d[:, k] / t^d)[r]: a softmax over classes per
    proposal times a softmax over proposals per class. ``tc`` (K,) is one temperature per class, ``td`` (R,)
    one per proposal slot; both default to 1. ``valid`` (..., R) bool marks real rows: the others get zero
    weight in the softmax over proposals (so S is 0 there). Each image needs at least one valid row.
    """
    if tc is not None:
        mc = mc / tc
    if td is not None:
        md = md / td[..., :, None]
    if valid is not None:
        md = md.masked_fill(~valid[..., None], float("-inf"))
    return torch.softmax(mc, dim=-1) * torch.softmax(md, dim=-2)


def roi_features(maps: torch.Tensor, boxes: torch.Tensor, roi_op: str = "align") -> torch.Tensor:
    """7x7 RoI features (B * N, C, 7, 7) of the (B, N, 4) boxes (input pixels) of each image's stride-16 map.

    Shared by the teacher (phi of Eq. 2) and stage 1, where the student pools the same boxes from its own map.
    """
    batch, rows = boxes.shape[:2]
    owner = torch.arange(batch, device=boxes.device, dtype=boxes.dtype).repeat_interleave(rows)
    rois = torch.cat([owner[:, None], boxes.reshape(-1, 4)], dim=1).to(maps.dtype)
    if roi_op == "align":
        return roi_align(maps, rois, ROI_SIZE, 1.0 / FEATURE_STRIDE, ADAPTIVE_SAMPLING, aligned=True)
    return roi_pool(maps, rois, ROI_SIZE, 1.0 / FEATURE_STRIDE)


def prior_scaled(phi: torch.Tensor, prior: torch.Tensor, a: float, b: float) -> torch.Tensor:
    """Eq. 2's input to the head: each RoI's pooled features phi (B * N, ...) times a * s_R + b, ``prior`` (B, N).

    Shared by the teacher and by stage 1 on ``features.layer: fc``, whose student must see its RoIs scaled the
    same way before its head (as the released stage-1 prototxt does on both sides).
    """
    weight = (a * prior.reshape(-1) + b).to(phi.dtype)
    return phi * weight.view(-1, *([1] * (phi.dim() - 1)))


def image_scores(scores: torch.Tensor, eps: float = PROB_EPS) -> torch.Tensor:
    """Image-level prediction p (..., K) = sum over proposals of S (Eq. 2), clamped into [eps, 1 - eps].

    Without the clamp p is in [0, 1] already (each column of the proposal softmax sums to 1 and every class
    softmax is below 1); the clamp only keeps log p and log(1 - p) of the BCE finite.
    """
    return scores.sum(dim=-2).clamp(eps, 1.0 - eps)


def objectness(scores: torch.Tensor) -> torch.Tensor:
    """s' (..., R) = sum over classes of S: how much of the image's class evidence each proposal holds (Eq. 4)."""
    return scores.sum(dim=-1)


def spatial_regulariser(features: torch.Tensor, scores: torch.Tensor, boxes: torch.Tensor, labels: torch.Tensor,
                        valid: torch.Tensor, iou: float) -> torch.Tensor:
    """The original WSDDN's spatial regulariser (Bilen & Vedaldi, CVPR 2016, Eq. 3), averaged over the batch.

    For each positive class k of an image, take the region r*_k scoring highest in S[:, k]; every real region r
    overlapping it by IoU > ``iou`` is pulled towards its features, weighted by its squared score:
    1/n+ sum_k sum_r 1/2 S_rk^2 ||f_r - f_r*k||^2, with n+ the image's positive classes. ``features`` (B, N, D)
    are the head's region vectors, ``scores`` S (B, N, K), ``boxes`` (B, N, 4), ``labels`` (B, K), ``valid`` (B, N).
    """
    total = features.new_zeros(())
    for feats, s, bx, y, real in zip(features, scores, boxes, labels, valid):
        positive = y.nonzero().flatten()
        if positive.numel() == 0:
            continue
        s_pos = s[:, positive]  # (N, P)
        top = s_pos.masked_fill(~real[:, None], float("-inf")).argmax(dim=0)  # r*_k for each positive class
        near = (box_iou(bx[top], bx) > iou) & real[None, :]  # (P, N)
        distance = (feats[None, :, :] - feats[top][:, None, :]).pow(2).sum(-1)  # (P, N)
        total = total + (0.5 * s_pos.t().pow(2) * distance * near).sum() / positive.numel()
    return total / features.shape[0]


def probability_bce(p: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Eq. 2's loss: -mean[y log p + (1 - y) log(1 - p)] on probabilities (p is a sum, not a sigmoid).

    Written out rather than F.binary_cross_entropy, which CUDA autocast refuses; computed in float32.
    """
    p, labels = p.float(), labels.float()
    return -(labels * torch.log(p) + (1.0 - labels) * torch.log1p(-p)).mean()


def _build_head(kind: str, backbone: Backbone, hidden: int) -> tuple[nn.Module, int]:
    """The RoI head (7x7 maps -> vectors) and its output width.

    ``backbone``: the backbone's own RoI head (VGG16 fc6/fc7 as in the paper; other backbones' remaining
    stages + GAP), the choice when the backbone is fine-tuned. On a frozen backbone at CPU scale the
    EfficientNet tail per RoI costs ~80x more than the lighter heads: ``gap_mlp`` takes the RoI map averaged
    over its 7x7 bins (done in :meth:`TWDet.phi`) through two fc layers; ``flat_mlp`` keeps the 7x7 layout
    (1x1 conv to a few channels, flatten, two fc).
    """
    channels = backbone.channels16
    if kind == "backbone":
        return backbone.roi_head, backbone.out_features
    if kind == "gap_mlp":
        first: nn.Module = nn.Linear(channels, hidden)
    elif kind == "flat_mlp":
        first = nn.Sequential(nn.Conv2d(channels, _FLAT_CHANNELS, 1), nn.ReLU(inplace=True), nn.Flatten(),
                              nn.Linear(_FLAT_CHANNELS * ROI_SIZE * ROI_SIZE, hidden))
    else:
        raise ValueError(f"unknown teacher head {kind!r} (expected one of {HEADS})")
    return nn.Sequential(first, nn.ReLU(inplace=True), nn.Linear(hidden, hidden), nn.ReLU(inplace=True)), hidden


class TWDet(nn.Module):
    """T-WDet: ``forward(images, boxes, prior)`` -> (M^c, M^d), each (B, N, K).

    ``boxes`` (B, N, 4) are x1, y1, x2, y2 in pixels of the network input; ``prior`` (B, N) the scores s_R.
    With ``freeze_backbone`` the stride-16 body keeps its ImageNet weights and stays in eval mode, so its
    maps can be computed once and fed to :meth:`from_maps`. BatchNorm statistics of the body are never
    updated (batches of a few images at varying scales would make them noisy), as usual for detectors.
    """

    def __init__(self, backbone: Backbone, num_classes: int, *, head: str = "backbone", hidden: int = 256,
                 roi_op: str = "align", a: float = 1.0, b: float = 0.0, freeze_backbone: bool = False):
        super().__init__()
        if roi_op not in ROI_OPS:
            raise ValueError(f"unknown roi_op {roi_op!r} (expected one of {ROI_OPS})")
        self.body = backbone.body16
        self.channels = backbone.channels16
        self.mean, self.std = backbone.mean, backbone.std
        self.head, width = _build_head(head, backbone, hidden)
        self.classify = nn.Linear(width, num_classes)  # M^c
        self.detect = nn.Linear(width, num_classes)  # M^d
        self.roi_op, self.a, self.b = roi_op, a, b
        self.averaged = head == "gap_mlp"
        self.freeze_backbone = freeze_backbone
        if freeze_backbone:
            self.body.requires_grad_(False)
        self.train()

    def train(self, mode: bool = True) -> "TWDet":
        super().train(mode)
        if self.freeze_backbone:
            self.body.eval()
        else:
            for module in self.body.modules():
                if isinstance(module, nn.modules.batchnorm._BatchNorm):
                    module.eval()
        return self

    def pool(self, maps: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
        """phi: RoI-pool the (B, N, 4) boxes of each image from its stride-16 map -> (B * N, C, 7, 7)."""
        return roi_features(maps, boxes, self.roi_op)

    def phi(self, maps: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
        """What the head reads of each RoI: phi(R) (B * N, C, 7, 7), or its 7x7 average (B * N, C) for gap_mlp.

        With a frozen body this is fixed per (image, scale, flip), so it can be computed once (feature_bank.py);
        the average is taken here because it commutes with the weighting by a * s_R + b.
        """
        pooled = self.pool(maps, boxes)
        return pooled.mean(dim=(2, 3)) if self.averaged else pooled

    def embed(self, phi: torch.Tensor, prior: torch.Tensor) -> torch.Tensor:
        """The head's vector of each of the (B, N) proposals, from phi * (a * s_R + b) (Eq. 2): (B, N, D)."""
        batch, rows = prior.shape
        return self.head(prior_scaled(phi, prior, self.a, self.b)).view(batch, rows, -1)

    def branches(self, vectors: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(M^c, M^d), each (B, N, K), from the region vectors (B, N, D): Eq. 2's two fc branches."""
        return self.classify(vectors), self.detect(vectors)

    def from_phi(self, phi: torch.Tensor, prior: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(M^c, M^d), each (B, N, K), from phi of the (B, N) proposals."""
        return self.branches(self.embed(phi, prior))

    def from_maps(self, maps: torch.Tensor, boxes: torch.Tensor,
                  prior: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(M^c, M^d) from stride-16 maps (B, C, h, w) and boxes (B, N, 4) in input pixels."""
        return self.from_phi(self.phi(maps, boxes), prior)

    def forward(self, images: torch.Tensor, boxes: torch.Tensor,
                prior: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.from_maps(self.body(images), boxes, prior)


def build_teacher(cfg: dict, num_classes: int, weights: str | None = None) -> TWDet:
    """T-WDet from the ``teacher`` params section; ``weights`` overrides ``cfg.backbone.weights``."""
    from ..backbones.zoo import build_backbone

    backbone_cfg = cfg["backbone"] if weights is None else {**cfg["backbone"], "weights": weights}
    return TWDet(build_backbone(backbone_cfg, "teacher.backbone"), num_classes, head=cfg["head"],
                 hidden=cfg["head_hidden"], roi_op=cfg["roi_op"], a=cfg["a"], b=cfg["b"],
                 freeze_backbone=cfg["freeze_backbone"])


# What a teacher file says it is; the cache stage refuses files of another kind or a newer layout.
TEACHER_FORMAT, TEACHER_FORMAT_VERSION = "wsdkd-teacher", 1
TEACHER_FILE = "model.pt"  # its name inside the train_teacher stage's folder


def save_teacher(path, model: TWDet, class_names: list[str], params: dict, proposals: dict | None = None) -> None:
    """Weights plus the params that built them, so the cache stage needs nothing else; ``proposals``, the
    proposals params it was trained on, lets ``wsdkd predict`` make the same boxes for a new image."""
    save_model_file(path, TEACHER_FORMAT, TEACHER_FORMAT_VERSION, class_names=list(class_names), params=params,
                    proposals=proposals, state_dict=model.state_dict())


def load_teacher(path, class_names: list[str] | None = None) -> tuple[TWDet, dict]:
    """Rebuild a teacher from its file: the model (eval mode) and the file's description.

    ``class_names``: the dataset's, which the file must have been made for.
    """
    blob = read_model_file(path, TEACHER_FORMAT, TEACHER_FORMAT_VERSION, "run the train_teacher stage first",
                           class_names)
    model = build_teacher(blob["params"], len(blob["class_names"]), weights="random")
    load_weights(model, blob["state_dict"], path)
    return model.eval(), {k: v for k, v in blob.items() if k != "state_dict"}
