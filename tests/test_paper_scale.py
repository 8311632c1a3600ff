"""The paper's COCO 2014 setup through every stage of the DAG on real photos (marker ``paper_scale``).

`wsdkd preset coco2014_paper` applied to a COCO 2014-shaped folder of 6 coco-mini training photos and 3 test
photos, 1 epoch per trainer, random initial weights; every size as the paper's: VGG16, teacher fine-tuned at
{480..832} px with flips, 500 proposals, cache at 672 with the RoI features, student at 224, batch 32 (the
teacher accumulating micro-batches under train.memory_cap_gb). Several minutes on 2 CPU cores.
"""

from __future__ import annotations

import json

import h5py
import pytest
import torch
import yaml

from wsdkd.pipeline import paper_smoke
from wsdkd.teacher.memory import teacher_training

from .conftest import PROJECT

pytestmark = pytest.mark.paper_scale

COUNTS = {"train": 6, "test": 3}  # the training photos hold one out for val (dataset.val_fraction 0.1)
PAPER_SCALES = [480, 576, 672, 736, 832]


@pytest.fixture(scope="module")
def run(coco_mini, tmp_path_factory):
    root = tmp_path_factory.mktemp("paper_scale")
    figures = paper_smoke.run(PROJECT, coco_mini, root, COUNTS)
    return root, figures


def test_every_stage_runs_at_the_paper_settings(run):
    root, figures = run
    assert set(figures) == {s.name for s in paper_smoke.ordered_stages(PROJECT)}
    params = yaml.safe_load((root / "params.yaml").read_text())
    teacher = params["teacher"]
    assert (params["dataset"]["source"], teacher["backbone"]["name"], teacher["scales"], teacher["hflip"],
            teacher["cache_scale"], params["proposals"]["num_proposals"], params["student"]["input_size"]) == (
        "coco2014", "vgg16", PAPER_SCALES, True, 672, 500, 224)
    evaluation = json.loads((root / "reports/coco_evaluation.json").read_text())
    assert evaluation["dataset"] == {"source": "coco2014", "split": "test", "num_images": 3, "num_classes": 80}
    metrics = json.loads((root / "reports/coco_metrics.json").read_text())
    assert all(0 <= metrics[m]["mAP"] <= 100 for m in ("wo", "teacher", "w"))
    for figure in ("figure3", "figure4"):
        assert (root / f"reports/{figure}.png").read_bytes()[:4] == b"\x89PNG"


def test_the_shapes_at_paper_sizes(run):
    root, _ = run
    with h5py.File(root / "data/proposals/train.h5") as proposals:
        assert proposals["boxes"].shape == (5, 500, 4)
    with h5py.File(root / "data/teacher_cache/train.h5") as cache:
        features = cache["features"]
        assert features.shape == (5, 100, 512, 7, 7) and features.dtype == "float16"  # VGG16 conv5_3, 100 RoIs
        assert cache.attrs["cache_scale"] == 672
    description = json.loads((root / "models/teacher/model.json").read_text())
    assert (description["backbone"], description["freeze_backbone"], description["head"]) == ("vgg16", False,
                                                                                             "backbone")
    student = torch.load(root / "models/student_w/model.pt", map_location="cpu", weights_only=False)
    assert student["input_size"] == 224


def test_the_teacher_accumulated_micro_batches_within_the_cap(run):
    root, figures = run
    log = (root / "train_teacher.log").read_text()
    assert "batches of 32 images run in micro-batches of 1, gradients accumulated" in log
    estimate = teacher_training(yaml.safe_load((root / "params.yaml").read_text())["teacher"],
                                                80, 500)
    # The whole batch of 5 at 832 px would need more than the micro-batched run's peak RSS (which includes
    # Python, the libraries and the data).
    assert figures["train_teacher"]["peak_mb"] * 2 ** 20 < estimate.peak_bytes(5)


def test_the_file_sizes_at_paper_sizes(run):
    root, figures = run
    cache_bytes = figures["cache_teacher"]["bytes"] / 9  # 5 train + 1 val + 3 test images
    features = 100 * 512 * 7 * 7 * 2  # fp16 RoI features of the selected proposals: 5 MB per image
    assert features < cache_bytes < 1.5 * features
    vgg16 = 4 * 134_260_544  # VGG16 without fc8, float32
    assert vgg16 < figures["train_teacher"]["bytes"] < 1.1 * vgg16
