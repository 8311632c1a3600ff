"""The built-in synthetic dataset: deterministic, prefix-stable, valid COCO, and structured like the real problem."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pytest
from pycocotools.coco import COCO

from wsdkd.data.coco import load_coco_split
from wsdkd.data.preview import render_samples
from wsdkd.data.synthetic import CLASS_NAMES, SHAPES, scenes, synthesize
from wsdkd.pipeline.errors import UserError

TINY = {
    "seed": 0, "num_train": 24, "num_test": 12, "image_size": 128, "num_classes": 12,
    "objects_per_image": [1, 4], "object_scale": [0.08, 0.20], "distractors_per_image": [2, 4],
    "lines_per_image": [3, 6], "num_scenes": 4, "jpeg_quality": 90,
}
# pycocotools (numpy 2) warns on every annToMask; nothing here can change it.
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:pycocotools.*")

SIZE_SLACK_PX = 2  # rasterisation and antialiasing move a tight box by about a pixel per side


def _make(out: Path, **overrides) -> tuple[dict, dict[str, Path]]:
    cfg = {**TINY, **overrides}
    return cfg, synthesize(out, cfg, {"train": cfg["num_train"], "test": cfg["num_test"]})


def _image_bytes(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted((root / "images").rglob("*.jpg"))}


def _labels(document: dict, num_classes: int) -> np.ndarray:
    row = {image["id"]: i for i, image in enumerate(document["images"])}
    labels = np.zeros((len(row), num_classes), dtype=np.int64)
    for ann in document["annotations"]:
        labels[row[ann["image_id"]], ann["category_id"] - 1] = 1
    return labels


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> tuple[Path, dict, dict[str, Path]]:
    root = tmp_path_factory.mktemp("tiny")
    cfg, paths = _make(root)
    return root, cfg, paths


def test_registry_has_one_drawing_per_class():
    assert len(CLASS_NAMES) == 12 and list(SHAPES) == CLASS_NAMES


def test_same_config_gives_identical_bytes(tiny, tmp_path):
    root, cfg, paths = tiny
    _, again = _make(tmp_path)
    for split in paths:
        assert paths[split].read_bytes() == again[split].read_bytes()
    assert _image_bytes(root) == _image_bytes(tmp_path)


def test_smaller_config_is_a_prefix(tiny, tmp_path):
    root, cfg, paths = tiny
    _, small = _make(tmp_path, num_train=cfg["num_train"] // 2)
    big_doc, small_doc = json.loads(paths["train"].read_text()), json.loads(small["train"].read_text())
    assert small_doc["images"] == big_doc["images"][: len(small_doc["images"])]
    kept = {image["id"] for image in small_doc["images"]}
    assert small_doc["annotations"] == [a for a in big_doc["annotations"] if a["image_id"] in kept]
    big_images = _image_bytes(root)
    assert all(big_images[name] == data for name, data in _image_bytes(tmp_path).items())
    big_test, small_test = (json.loads(p["test"].read_text()) for p in (paths, small))
    for key in ("images", "annotations", "categories"):  # info records the whole config, num_train included
        assert small_test[key] == big_test[key]


def test_splits_use_different_streams_and_ids(tiny):
    root, cfg, paths = tiny
    docs = {split: json.loads(path.read_text()) for split, path in paths.items()}
    train_ids, test_ids = ({image["id"] for image in docs[s]["images"]} for s in ("train", "test"))
    assert not train_ids & test_ids
    first = {s: (root / "images" / s / docs[s]["images"][0]["file_name"]).read_bytes() for s in docs}
    assert first["train"] != first["test"]


def test_pycocotools_loads_it_and_outlines_match_boxes(tiny):
    root, cfg, paths = tiny
    for split, path in paths.items():
        coco = COCO(str(path))
        assert coco.getCatIds() == list(range(1, cfg["num_classes"] + 1))
        assert [c["name"] for c in coco.loadCats(coco.getCatIds())] == CLASS_NAMES[: cfg["num_classes"]]
        assert len(coco.getImgIds()) == cfg[f"num_{split}"]
        for image in coco.loadImgs(coco.getImgIds()):
            assert (root / "images" / split / image["file_name"]).is_file()
            assert image["file_name"] == f"{image['id']:06d}.jpg"
        for ann in coco.loadAnns(coco.getAnnIds()):
            assert ann["iscrowd"] == 0 and ann["area"] > 0
            rows, cols = np.nonzero(coco.annToMask(ann))
            x, y, w, h = ann["bbox"]
            assert abs(cols.min() - x) <= SIZE_SLACK_PX and abs(cols.max() + 1 - (x + w)) <= SIZE_SLACK_PX
            assert abs(rows.min() - y) <= SIZE_SLACK_PX and abs(rows.max() + 1 - (y + h)) <= SIZE_SLACK_PX


def test_boxes_counts_and_sizes_follow_the_config(tiny):
    root, cfg, paths = tiny
    size = cfg["image_size"]
    lo, hi = (s * size for s in cfg["object_scale"])
    for path in paths.values():
        document = json.loads(path.read_text())
        counts = {image["id"]: 0 for image in document["images"]}
        for ann in document["annotations"]:
            counts[ann["image_id"]] += 1
            x, y, w, h = ann["bbox"]
            assert all(isinstance(v, float) for v in ann["bbox"])
            assert w >= 1 and h >= 1 and x >= 0 and y >= 0 and x + w <= size and y + h <= size
            assert lo - SIZE_SLACK_PX <= max(w, h) <= hi + SIZE_SLACK_PX
        low, high = cfg["objects_per_image"]
        assert all(low <= n <= high for n in counts.values())


def test_fewer_classes_use_only_the_first_ones(tmp_path):
    cfg, paths = _make(tmp_path, num_classes=5, num_scenes=2)
    document = json.loads(paths["train"].read_text())
    assert [c["id"] for c in document["categories"]] == [1, 2, 3, 4, 5]
    assert {a["category_id"] for a in document["annotations"]} <= {1, 2, 3, 4, 5}


def test_scenes_make_classes_co_occur(tmp_path):
    cfg, paths = _make(tmp_path, num_train=300, num_test=1, image_size=64)
    labels = _labels(json.loads(paths["train"].read_text()), cfg["num_classes"])
    together = labels.T @ labels / len(labels)
    scene_of = {k: s for s, members in enumerate(scenes(cfg["num_classes"], cfg["num_scenes"])) for k in members}
    pairs = list(itertools.combinations(range(cfg["num_classes"]), 2))
    within = np.mean([together[i, j] for i, j in pairs if scene_of[i] == scene_of[j]])
    across = np.mean([together[i, j] for i, j in pairs if scene_of[i] != scene_of[j]])
    assert within > 3 * across  # about 6x at these settings


def test_render_samples_writes_a_png(tiny, tmp_path):
    root, cfg, paths = tiny
    sheet = tmp_path / "sheet.png"
    render_samples(load_coco_split("train", paths["train"], root / "images" / "train"), sheet, n=6)
    assert sheet.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in tmp_path.iterdir()] == ["sheet.png"]  # no temporary left behind


def test_impossible_config_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="num_scenes"):
        _make(tmp_path, num_classes=3, num_scenes=4)
