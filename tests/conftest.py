"""Shared fixtures: the real COCO photos beside the project, and small built-in datasets."""

from __future__ import annotations

from pathlib import Path

import collections

import pytest
import torch
import yaml
from torch import nn

PROJECT = Path(__file__).resolve().parents[1]
COCO_MINI = PROJECT.parent / "shared" / "data" / "coco-mini"
# The tiny student that the predict and export tests share.
CLASSES = ["cat", "dog", "kite"]
INPUT_SIZE = 32
TINY_PROPOSALS = 8  # rows per image of the tiny proposals, the last two recycled copies
# The teacher params of the tiny runs (frozen backbone, one scale, one epoch).
TINY_TEACHER = {"backbone": {"name": "efficientnet_lite0", "weights": "random", "weights_path": None},
                "freeze_backbone": True, "head": "gap_mlp", "head_hidden": 16, "roi_op": "align", "a": 1.0,
                "b": 0.0, "scales": [64], "cache_scale": 64, "epochs": 1, "batch_size": 8, "lr": 0.01,
                "momentum": 0.9, "weight_decay": 5e-4, "lr_decay_factor": 0.1, "lr_patience": 2, "hflip": False,
                "seed": 0, "num_workers": 0, "device": "cpu", "amp": False, "spatial_reg": 0.0,
                "spatial_reg_iou": 0.6}


_FAULTS_SURVIVED: collections.Counter = collections.Counter()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Count each passed fault-injection test under the kind of fault it tried (its ``faults`` marker)."""
    report = (yield).get_result()
    marker = item.get_closest_marker("faults")
    if marker is not None and report.when == "call" and report.passed:
        _FAULTS_SURVIVED[marker.kwargs["kind"]] += 1


def pytest_terminal_summary(terminalreporter):
    if _FAULTS_SURVIVED:
        tried = ", ".join(f"{kind} {count}" for kind, count in sorted(_FAULTS_SURVIVED.items()))
        terminalreporter.write_line(f"faults tried and survived, nothing lost: {tried} "
                                    f"(total {sum(_FAULTS_SURVIVED.values())})")


@pytest.fixture(scope="session")
def coco_mini() -> Path:
    if not (COCO_MINI / "annotations" / "instances_val2017.json").is_file():
        pytest.skip(f"real COCO photos not found at {COCO_MINI} (they sit beside the project in CI, not in a user's clone)")
    return COCO_MINI


@pytest.fixture(scope="session")
def default_params() -> dict:
    return yaml.safe_load((PROJECT / "params.yaml").read_text())


def tiny_dataset_cfg(default_params: dict, num_train: int = 24, num_test: int = 12, image_size: int = 96) -> dict:
    cfg = {**default_params["dataset"], "val_fraction": 0.25}
    cfg["builtin"] = {**cfg["builtin"], "num_train": num_train, "num_test": num_test, "image_size": image_size}
    return cfg


@pytest.fixture
def killed_after_first_checkpoint(monkeypatch):
    """Call the returned function to run training that dies (KeyboardInterrupt) right after its first checkpoint.

    The real checkpoint is written first, as a SIGKILL between epochs would leave it; training afterwards is
    normal again, so the next run resumes from that checkpoint.
    """
    from wsdkd.engine import checkpoint

    real_save = checkpoint.save

    def save_then_die(directory, state):
        real_save(directory, state)
        raise KeyboardInterrupt("killed after the first epoch")

    def run_killed(train, *args):
        monkeypatch.setattr(checkpoint, "save", save_then_die)
        try:
            with pytest.raises(KeyboardInterrupt):
                train(*args)
        finally:
            monkeypatch.setattr(checkpoint, "save", real_save)

    return run_killed


@pytest.fixture(scope="session")
def tiny_manifest(tmp_path_factory, default_params) -> Path:
    """A built-in dataset of a few dozen small images, prepared once per test session."""
    from wsdkd.data.prepare import prepare_dataset

    out = tmp_path_factory.mktemp("tiny") / "dataset"
    prepare_dataset(tiny_dataset_cfg(default_params), out)
    return out


@pytest.fixture(scope="session")
def tiny_student(tmp_path_factory) -> Path:
    """A random-weights student whose scores differ between images and classes.

    Freshly initialised, its activations vanish and every score is 0.5; re-estimating batch-norm statistics on
    random batches brings them back, so thresholds and rankings have something to act on.
    """
    from wsdkd.backbones.zoo import build_backbone
    from wsdkd.student.model import StudentClassifier, save_student

    torch.manual_seed(0)
    model = StudentClassifier(build_backbone({"name": "efficientnet_lite0", "weights": "random",
                                              "weights_path": None}), len(CLASSES))
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.reset_running_stats()
            module.momentum = None  # a plain average over the calibration batches
    model.train()
    with torch.no_grad():
        model(torch.randn(16, 3, INPUT_SIZE, INPUT_SIZE))
    path = tmp_path_factory.mktemp("model") / "model.pt"
    save_student(path, model.eval(), CLASSES, INPUT_SIZE, {"note": "test"})
    return path


@pytest.fixture(scope="session")
def tiny_proposals(tiny_manifest, tmp_path_factory) -> Path:
    """Random boxes for every split of the tiny dataset, the last two rows of each image recycled copies."""
    import numpy as np

    from wsdkd.data.manifest import SPLITS, read_split
    from wsdkd.proposals.store import write_proposals

    folder = tmp_path_factory.mktemp("proposals")
    rng = np.random.default_rng(0)
    for name in SPLITS:
        split = read_split(tiny_manifest, name)
        n = len(split)
        xy = rng.uniform(0, 48, (n, TINY_PROPOSALS, 2))
        boxes = np.concatenate([xy, xy + rng.uniform(16, 48, (n, TINY_PROPOSALS, 2))], -1).astype(np.float32)
        boxes[:, -2:] = boxes[:, :2]
        write_proposals(folder / f"{name}.h5", split.image_ids, boxes,
                        rng.uniform(0.1, 1, (n, TINY_PROPOSALS)).astype(np.float32),
                        np.full(n, TINY_PROPOSALS - 2), {"source": "test"})
    return folder


@pytest.fixture(scope="session")
def tiny_upstream(tiny_manifest, tiny_proposals, tmp_path_factory) -> Path:
    """A tiny trained teacher and its cache (features included), as the distillation stages read them."""
    from wsdkd.teacher.cache import cache_teacher
    from wsdkd.teacher.training import train_teacher

    root = tmp_path_factory.mktemp("upstream")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("WSDKD_CHECKPOINTS", str(root / "checkpoints"))
        train_teacher(TINY_TEACHER, tiny_manifest, tiny_proposals, root / "teacher", root / "live", "t", progress=False)
        cache_cfg = {"cache_features": True, "nms_iou": 0.4, "num_selected": 4, "dtype": "float32"}
        cache_teacher(TINY_TEACHER, cache_cfg, tiny_manifest, tiny_proposals, root / "teacher", root / "cache",
                      progress=False)
    return root
