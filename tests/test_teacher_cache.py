"""Teacher end to end on a tiny dataset (train, resume, cache, evaluate), the cache format, and CorLoc."""

from __future__ import annotations

import json
import tracemalloc

import numpy as np
import pytest

from wsdkd.data.manifest import SPLITS, read_split
from wsdkd.proposals.store import write_proposals
from wsdkd.teacher.cache import CacheLayout, TeacherCache, cache_teacher, cache_writer
from wsdkd.teacher.evaluation import detection_report, predictions_from_cache, top_box_hits
from wsdkd.teacher.training import train_teacher

from .conftest import TINY_PROPOSALS as NUM_PROPOSALS

CACHE_CFG = {"cache_features": True, "nms_iou": 0.4, "num_selected": 4, "dtype": "float16"}


@pytest.fixture(scope="module")
def proposals(tiny_proposals):
    return tiny_proposals


@pytest.fixture
def cfg(default_params, tmp_path, monkeypatch):
    monkeypatch.setenv("WSDKD_CHECKPOINTS", str(tmp_path / "checkpoints"))
    return {"backbone": {"name": "efficientnet_lite0", "weights": "random", "weights_path": None},
            "freeze_backbone": True, "head": "gap_mlp", "head_hidden": 16, "roi_op": "align", "a": 1.0, "b": 0.0,
            "scales": [48, 64], "cache_scale": 64, "epochs": 2, "batch_size": 8, "lr": 0.01, "momentum": 0.9,
            "weight_decay": 5e-4, "lr_decay_factor": 0.1, "lr_patience": 2, "hflip": True, "seed": 0,
            "num_workers": 0, "device": "cpu", "amp": True, "spatial_reg": 0.1, "spatial_reg_iou": 0.6}


def _run(cfg, manifest, proposals, root, name):
    model = root / name / "model"
    history = train_teacher(cfg, manifest, proposals, model, root / name / "live", f"teacher_{name}", progress=False)
    cache_teacher(cfg, CACHE_CFG, manifest, proposals, model, root / name / "cache", progress=False)
    return history


@pytest.mark.parametrize("freeze", [True, False])
def test_train_cache_and_evaluate(cfg, tiny_manifest, proposals, tmp_path, freeze):
    cfg = {**cfg, "freeze_backbone": freeze, "epochs": 1}
    history = _run(cfg, tiny_manifest, proposals, tmp_path, "run")
    assert {"train/loss", "val/loss", "val/mAP"} <= set(history[0])
    assert sorted(p.name for p in (tmp_path / "run" / "model").iterdir()) == ["model.json", "model.pt"]
    assert not (tmp_path / "checkpoints" / "teacher_run_phi").exists(), "the bank goes once outputs are whole"
    test = read_split(tiny_manifest, "test")
    with TeacherCache(tmp_path / "run" / "cache" / "test.h5") as cache:
        assert len(cache) == len(test) and cache.attrs["cache_scale"] == 64
        image = cache.get(0)
        assert image.mc.shape == (NUM_PROPOSALS, test.num_classes) and image.num_real == NUM_PROPOSALS - 2
        np.testing.assert_allclose(image.scores.sum(0), image.p, rtol=1e-2, atol=1e-3)
        np.testing.assert_allclose(image.objectness, image.scores.sum(1), rtol=1e-2, atol=1e-3)
        assert image.features.shape == (4, 112, 7, 7) and (image.selected < image.num_real).all()
        preds = predictions_from_cache(cache, test)
        assert preds.scores.shape == test.labels.shape
        report = detection_report(cache, test, nms_iou=0.3)
        assert 0 <= report["corloc"] <= 100 and 0 <= report["box_ap50"] <= 100


def test_interrupted_run_resumes_to_the_same_result(cfg, tiny_manifest, proposals, tmp_path, killed_after_first_checkpoint):
    _run(cfg, tiny_manifest, proposals, tmp_path, "straight")
    with TeacherCache(tmp_path / "straight" / "cache" / "test.h5") as cache:
        reference = cache.image_scores()

    killed_after_first_checkpoint(_run, cfg, tiny_manifest, proposals, tmp_path, "resumed")
    assert not (tmp_path / "resumed" / "model").exists(), "an interrupted stage leaves no output"
    history = _run(cfg, tiny_manifest, proposals, tmp_path, "resumed")
    assert [h["epoch"] for h in history] == [1, 2]
    with TeacherCache(tmp_path / "resumed" / "cache" / "test.h5") as cache:
        np.testing.assert_allclose(cache.image_scores(), reference, rtol=1e-5, atol=1e-6)


def _layout(n: int) -> CacheLayout:
    return CacheLayout(num_images=n, num_proposals=6, num_classes=3, num_selected=2, dtype="float32",
                       feature_channels=8)


def _rows(n: int, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {"image_ids": np.arange(10, 10 + n), "num_real": np.full(n, 6), "num_selected": np.full(n, 2),
            "boxes": rng.random((n, 6, 4)), "prior": rng.random((n, 6)), "mc": rng.random((n, 6, 3)),
            "md": rng.random((n, 6, 3)), "scores": rng.random((n, 6, 3)), "objectness": rng.random((n, 6)),
            "p": rng.random((n, 3)), "selected": rng.integers(0, 6, (n, 2)),
            "features": rng.random((n, 2, 8, 7, 7)).astype(np.float16)}


def test_cache_round_trip(tmp_path):
    rows = _rows(3)
    with cache_writer(tmp_path / "c.h5", _layout(3), {"note": {"a": 1}}) as writer:
        writer.write(0, {k: v[:2] for k, v in rows.items()})  # written in two batches, as the stage streams
        writer.write(2, {k: v[2:] for k, v in rows.items()})
    with TeacherCache(tmp_path / "c.h5") as cache:
        assert cache.attrs["note"] == {"a": 1} and cache.has_features
        for i in range(3):
            image = cache.get(i)
            assert image.image_id == 10 + i
            for name in ("boxes", "prior", "mc", "md", "scores", "objectness", "p", "selected", "features"):
                np.testing.assert_allclose(getattr(image, name), rows[name][i].astype(getattr(image, name).dtype),
                                           rtol=1e-6, err_msg=name)


def test_reader_loads_one_image_at_a_time(tmp_path):
    n = 200
    with cache_writer(tmp_path / "c.h5", _layout(n), {}) as writer:
        writer.write(0, _rows(n))
    one_image = sum(v[0].nbytes for v in _rows(1).values()) * 2  # float32 copies of the float16 features
    tracemalloc.start()
    with TeacherCache(tmp_path / "c.h5") as cache:
        cache.get(n // 2)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 4 * one_image + 64 * 1024, f"reading one image allocated {peak} bytes"


def test_missing_or_foreign_cache_is_a_user_error(tmp_path):
    from wsdkd.pipeline.errors import UserError

    with pytest.raises(UserError, match="not found"):
        TeacherCache(tmp_path / "none.h5")
    write_proposals(tmp_path / "p.h5", np.array([1]), np.zeros((1, 2, 4), np.float32), np.zeros((1, 2), np.float32),
                    np.array([2]), {})
    with pytest.raises(UserError, match="not a teacher cache"):
        TeacherCache(tmp_path / "p.h5")


def test_corloc_on_a_crafted_image():
    # Classes 0 and 1 are present, 2 is not. Class 0's best row (row 1) overlaps its GT box at 0.81: a hit.
    # Class 1's best row (row 0) is far from its GT box: a miss. Class 2 is not a positive pair at all.
    boxes = np.array([[0, 0, 10, 10], [20, 20, 40, 40], [21, 21, 41, 41]], np.float32)
    scores = np.array([[0.1, 0.9, 0.5], [0.8, 0.0, 0.1], [0.1, 0.1, 0.1]], np.float32)
    gt = {0: np.array([[22.0, 22, 42, 42]]), 1: np.array([[60.0, 60, 80, 80]])}
    assert top_box_hits(scores, boxes, np.array([1, 1, 0]), gt) == {0: True, 1: False}


def test_detection_report_hand_answer(tmp_path):
    """Two images; 3 positive pairs, 2 localised -> CorLoc 66.67; perfect boxes for class a -> its AP is 100."""
    categories = [{"id": 3, "name": "a"}, {"id": 7, "name": "b"}]
    images = [{"id": 1, "width": 100, "height": 100, "file_name": "1.jpg"},
              {"id": 2, "width": 100, "height": 100, "file_name": "2.jpg"}]
    anns = [{"id": 1, "image_id": 1, "category_id": 3, "bbox": [10, 10, 30, 30], "area": 900, "iscrowd": 0},
            {"id": 2, "image_id": 1, "category_id": 7, "bbox": [50, 50, 40, 40], "area": 1600, "iscrowd": 0},
            {"id": 3, "image_id": 2, "category_id": 3, "bbox": [0, 0, 20, 20], "area": 400, "iscrowd": 0}]
    (tmp_path / "gt.json").write_text(json.dumps({"images": images, "annotations": anns, "categories": categories}))
    boxes = np.array([[[10, 10, 40, 40], [0, 0, 5, 5]], [[0, 0, 20, 20], [50, 50, 90, 90]]], np.float32)
    # Image 1: class a's best row hits (row 0); class b's best row (row 1) misses. Image 2: class a hits.
    scores = np.array([[[0.9, 0.1], [0.0, 0.8]], [[0.7, 0.0], [0.0, 0.0]]], np.float32)
    layout = CacheLayout(2, 2, 2, 1, "float32", None)
    with cache_writer(tmp_path / "c.h5", layout, {}) as writer:
        writer.write(0, {"image_ids": np.array([1, 2]), "num_real": np.array([2, 2]), "boxes": boxes,
                         "scores": scores, "p": scores.sum(1)})
    from wsdkd.data.manifest import Split

    split = Split("test", np.array([1, 2]), [], np.array([100, 100]), np.array([100, 100]),
                  np.array([[1, 1], [1, 0]], np.uint8), ["a", "b"], [3, 7], tmp_path / "gt.json")
    with TeacherCache(tmp_path / "c.h5") as cache:
        report = detection_report(cache, split, nms_iou=0.3)
    assert report["corloc"] == pytest.approx(66.67) and report["num_pairs"] == 3
    assert report["corloc_per_class"] == {"a": 100.0, "b": 0.0}
    # Class a: both GT boxes found first (AP 100); class b: its only detection misses (AP 0); mean 50.
    assert report["box_ap50"] == pytest.approx(50.0)
