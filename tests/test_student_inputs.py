"""Issue 18's fast CPU path: decoded student inputs, channels_last on CPU, a large validation batch and block
reads of the teacher cache change how fast the student stages run, not what they compute."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import Dataset

from wsdkd.data.images import SquareImages
from wsdkd.data.student_inputs import CachedSquareImages, open_pixels, student_images, write_inputs
from wsdkd.engine.loop import Hardware, LoopConfig, fit
from wsdkd.pipeline.errors import DamagedFile, UserError
from wsdkd.student.training import read_splits, train_student
from wsdkd.teacher.cache import TeacherCache

from .conftest import PROJECT

SIZE = 32
MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


@pytest.fixture(scope="module")
def inputs(tiny_manifest, tmp_path_factory):
    out = tmp_path_factory.mktemp("student_inputs") / "inputs"
    write_inputs(read_splits(tiny_manifest), SIZE, out)
    return out


def test_decoded_inputs_are_the_jpeg_pixels_bit_for_bit(tiny_manifest, inputs):
    splits = read_splits(tiny_manifest)
    assert sorted(p.name for p in inputs.iterdir()) == sorted(f"{s}.{ext}" for s in splits for ext in ("json", "npy"))
    decoded, jpeg = student_images(splits, SIZE, MEAN, STD, inputs), student_images(splits, SIZE, MEAN, STD, None)
    for name, split in splits.items():
        assert isinstance(decoded[name], CachedSquareImages) and type(jpeg[name]) is SquareImages
        assert np.load(inputs / f"{name}.npy").shape == (len(split), 3, SIZE, SIZE)
        for index in range(len(split)):
            pixels, labels, row = decoded[name][index]
            reference, reference_labels, _ = jpeg[name][index]
            assert pixels.dtype == torch.float32 and torch.equal(pixels, reference), f"{name} image {index}"
            assert torch.equal(labels, reference_labels) and row == index


def test_inputs_of_another_size_or_split_are_refused(tiny_manifest, inputs, tmp_path):
    train = read_splits(tiny_manifest)["train"]
    with pytest.raises(UserError, match=r"train\.npy: holds 32 px images, but student.input_size is 48"):
        open_pixels(inputs, train, 48)
    with pytest.raises(DamagedFile, match="not those of the train split"):
        open_pixels(inputs, train.subset(np.arange(len(train) - 1)), SIZE)
    with pytest.raises(UserError, match="student inputs not found .run the student_inputs stage"):
        open_pixels(tmp_path, train, SIZE)


@pytest.fixture
def cfg(default_params, tmp_path, monkeypatch):
    monkeypatch.setenv("WSDKD_CHECKPOINTS", str(tmp_path / "checkpoints"))
    return {**default_params["student"], "input_size": SIZE, "epochs": 2, "batch_size": 8, "device": "cpu",
            "backbone": {"name": "efficientnet_lite0", "weights": "random", "weights_path": None}}


def test_fast_path_repeats_exactly_and_learns_what_the_jpeg_path_learns(cfg, tiny_manifest, inputs, tmp_path):
    fast = Hardware(channels_last=True, eval_batch_size=64)

    def run(name, hardware, inputs_dir):
        history = train_student(cfg, tiny_manifest, tmp_path / name, tmp_path / f"{name}_live", name, hardware,
                                inputs_dir)
        weights = torch.load(tmp_path / name / "model.pt", weights_only=False)["state_dict"]
        return [{k: v for k, v in h.items() if k != "seconds"} for h in history], weights

    first, again, jpeg = run("fast", fast, inputs), run("again", fast, inputs), run("jpeg", fast, None)
    assert first[0] == again[0], "two CPU runs of the fast path must give the same numbers"
    assert all(torch.equal(first[1][k], again[1][k]) for k in first[1])
    assert first[0] == jpeg[0], "the decoded inputs are the JPEGs' pixels, so training sees the same numbers"
    assert all(torch.equal(first[1][k], jpeg[1][k]) for k in first[1])


class Images(Dataset):
    def __init__(self, size: int) -> None:
        generator = torch.Generator().manual_seed(size)
        self.x = torch.randn(size, 3, 8, 8, generator=generator)
        self.y = (torch.rand(size, 2, generator=generator) < 0.5).float()

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, index: int):
        return self.x[index], self.y[index], index


def test_channels_last_and_the_validation_batch_apply_on_cpu(tmp_path):
    seen = []

    def step(model, images, labels, _index):
        seen.append((model.training, len(images), images.is_contiguous(memory_format=torch.channels_last),
                     model[0].weight.is_contiguous(memory_format=torch.channels_last)))
        logits = model(images)
        return {"loss": nn.functional.binary_cross_entropy_with_logits(logits, labels), "logits": logits}

    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2))
    cfg = LoopConfig(epochs=1, batch_size=4, seed=0, num_workers=0, hflip=False, amp=False,
                     device=torch.device("cpu"), hardware=Hardware(channels_last=True, eval_batch_size=6))
    fit(model, step, Images(8), Images(10), cfg, torch.optim.SGD(model.parameters(), lr=0.1), None,
        tmp_path / "resume", tmp_path / "live", np.arange(8))
    assert seen == [(True, 4, True, True)] * 2 + [(False, 6, True, True), (False, 4, True, True)]


def test_rows_read_in_a_block_equal_the_rows_read_one_by_one(tiny_upstream):
    with TeacherCache(tiny_upstream / "cache" / "train.h5") as cache:
        indices = np.random.default_rng(0).permutation(len(cache))[:5]
        for name in ("features", "mc", "selected", "boxes"):
            block = cache.read_rows(name, indices)
            one_by_one = np.stack([cache._read(name, int(i)) for i in indices])
            assert block.dtype == one_by_one.dtype and np.array_equal(block, one_by_one), name


def test_every_student_stage_trains_on_the_one_decoded_copy(default_params):
    from wsdkd.pipeline.dag import read_stages, stage_edges

    specs = {spec.name: spec for spec in read_stages(PROJECT)}
    assert specs["student_inputs"].params == {"student.input_size": default_params["student"]["input_size"]}, \
        "only the input size remakes the copy: a seed, an lr or a table row's loss keeps it"
    readers = {down for up, down in stage_edges(list(specs.values())) if up == "student_inputs"}
    assert readers == {"train_student", "distill_features", "train_distilled"}
    for name in readers:
        assert "--inputs data/student_inputs" in specs[name].cmd
