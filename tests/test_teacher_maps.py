"""The teacher's maps kept per (image, flip) for FitNets and attention transfer (distill/teacher_maps.py): the
same values as running the teacher on every batch, the body run only on images not yet kept, and the budget."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from wsdkd.backbones.taps import Taps
from wsdkd.data.manifest import read_split
from wsdkd.distill.losses import attention_map
from wsdkd.distill.per_image_memo import PerImageMemo
from wsdkd.distill.teacher_maps import TeacherMaps
from wsdkd.distill.training import _frozen_teacher
from wsdkd.teacher.targets import TeacherTargets

CPU = torch.device("cpu")


@pytest.fixture
def teacher_and_targets(tiny_manifest, tiny_upstream):
    teacher = _frozen_teacher(tiny_upstream / "teacher", CPU)
    targets = TeacherTargets(tiny_upstream / "cache" / "train.h5", read_split(tiny_manifest, "train"), teacher)
    yield teacher, targets
    targets.close()


def _online(teacher, targets, indices, flips, strides):
    """What the steps computed before maps were kept: the teacher's body on the whole batch."""
    taps = Taps(teacher.body, strides)
    images = targets.teacher_inputs(indices, flips, CPU)
    with torch.no_grad(), taps.recording(images):
        teacher.body(images)
    return [m.float() for m in taps.maps]


def test_kept_maps_equal_the_online_ones_and_the_body_runs_once_per_image_and_flip(teacher_and_targets):
    teacher, targets = teacher_and_targets
    maps = TeacherMaps(teacher, [4, 8], budget_gb=1.0)
    first, flips = np.array([0, 1, 2]), torch.tensor([False, True, False])
    got = maps(targets, 0, first, flips, CPU)
    for kept, online in zip(got, _online(teacher, targets, first, flips, [4, 8])):
        assert torch.allclose(kept, online, atol=1e-5)
    assert maps.memo.computed == 3

    # images 1 (flipped) and 2 (not) are kept; image 1 unflipped and image 3 are new: only those two run
    second, flips2 = np.array([1, 2, 1, 3]), torch.tensor([True, False, False, False])
    got = maps(targets, 0, second, flips2, CPU)
    assert maps.memo.computed == 5
    for kept, online in zip(got, _online(teacher, targets, second, flips2, [4, 8])):
        assert torch.allclose(kept, online, atol=1e-5)
    assert not torch.allclose(got[0][0], got[0][2]), "a flipped image's map is its own, not the unflipped one's"

    # the same row of another split's part is another image
    maps(targets, 100, np.array([0]), None, CPU)
    assert maps.memo.computed == 6 and len(maps.memo.kept) == 6


def test_the_budget_bounds_what_is_kept(teacher_and_targets):
    teacher, targets = teacher_and_targets
    indices = np.array([0, 1])
    nothing = TeacherMaps(teacher, [4], budget_gb=0.0)
    for _ in range(2):
        nothing(targets, 0, indices, None, CPU)
    assert nothing.memo.computed == 4 and not nothing.memo.kept

    probe = _online(teacher, targets, indices[:1], None, [4])[0]
    budget = probe.numel() * probe.element_size() / 1024 ** 3  # exactly one image's map
    room_for_one = TeacherMaps(teacher, [4], budget_gb=budget)
    first = room_for_one(targets, 0, indices, None, CPU)
    again = room_for_one(targets, 0, indices, None, CPU)
    assert len(room_for_one.memo.kept) == 1 and room_for_one.memo.computed == 3
    assert torch.allclose(first[0], again[0])


def test_attention_transfer_keeps_only_attention_maps(teacher_and_targets):
    teacher, targets = teacher_and_targets
    maps = TeacherMaps(teacher, [4, 8, 16], budget_gb=1.0, reduce=attention_map)
    indices = np.array([0, 1])
    got = maps(targets, 0, indices, None, CPU)
    online = _online(teacher, targets, indices, None, [4, 8, 16])
    assert [q.dim() for q in got] == [3, 3, 3]
    for q, feat in zip(got, online):
        assert q.shape == (2, *feat.shape[-2:])
        assert torch.allclose(q, attention_map(feat), rtol=1e-5, atol=1e-7)
    assert maps.memo.kept_bytes == sum(q.numel() * 4 for q in got)  # both images, float32


def test_memo_hands_compute_only_the_images_not_kept_with_their_flips_and_keys_by_split_offset():
    calls = []

    def compute(rows, flips):
        calls.append((rows.tolist(), None if flips is None else flips.tolist()))
        # one kind: the row number, negated when flipped, so a wrong image or flip shows in the values
        sign = 1.0 if flips is None else 1.0 - 2.0 * flips.float()
        return [torch.as_tensor(rows, dtype=torch.float32) * sign]

    memo = PerImageMemo(budget_gb=1.0)
    first = memo(0, np.array([3, 4]), torch.tensor([False, True]), compute, CPU)
    assert first[0].tolist() == [3.0, -4.0]
    again = memo(0, np.array([4, 5, 3]), torch.tensor([True, False, True]), compute, CPU)
    assert again[0].tolist() == [-4.0, 5.0, -3.0]
    assert calls[1] == ([5, 3], [False, True])  # (4, flipped) was kept
    memo(10, np.array([3]), None, compute, CPU)  # another split's row 3: not the first split's
    assert calls[2] == ([3], None) and memo.computed == 5


def test_memo_keeps_nothing_past_its_budget():
    memo, calls = PerImageMemo(budget_gb=0.0), []
    for _ in range(2):
        out = memo(0, np.array([1, 2]), None, lambda rows, flips: calls.append(rows.tolist()) or [torch.ones(2, 3)],
                   CPU)
    assert calls == [[1, 2], [1, 2]] and out[0].shape == (2, 3) and memo.kept_bytes == 0
