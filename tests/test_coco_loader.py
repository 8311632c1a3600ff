"""COCO instances -> image-level labels, on the real photos of coco-mini and on crafted files."""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pytest

from wsdkd.data.coco import hold_out, load_coco_split
from wsdkd.data.manifest import read_split
from wsdkd.data.prepare import prepare_dataset
from wsdkd.pipeline.errors import UserError


def test_real_val_split_ignores_images_absent_from_the_json(coco_mini):
    split = load_coco_split("test", coco_mini / "annotations/instances_val2017.json", coco_mini / "val2017")
    on_disk = len(list((coco_mini / "val2017").glob("*.jpg")))
    assert on_disk == 159 and len(split) == 79
    assert split.labels.shape == (79, 80)
    assert split.class_names[:3] == ["person", "bicycle", "car"]
    assert split.category_ids == sorted(split.category_ids) and split.category_ids[-1] == 90


def test_labels_match_the_annotations(coco_mini):
    ann_file = coco_mini / "annotations/instances_train2017.json"
    split = load_coco_split("train", ann_file, coco_mini / "train2017")
    coco = json.loads(ann_file.read_text())
    images_per_category = Counter()
    for image_id, category_id in {(a["image_id"], a["category_id"]) for a in coco["annotations"]}:
        images_per_category[category_id] += 1
    expected = np.array([images_per_category[c] for c in split.category_ids])
    np.testing.assert_array_equal(split.labels.sum(axis=0), expected)
    assert split.labels.sum(axis=1).min() >= 1


def _write_coco(tmp_path, images, annotations, categories=({"id": 1, "name": "a"}, {"id": 3, "name": "b"})):
    for image in images:
        (tmp_path / image["file_name"]).write_bytes(b"")
    path = tmp_path / "instances.json"
    path.write_text(json.dumps({"images": images, "annotations": annotations, "categories": list(categories)}))
    return path


def _image(i):
    return {"id": i, "file_name": f"{i}.jpg", "width": 10, "height": 10}


def _ann(i, image_id, category_id):
    return {"id": i, "image_id": image_id, "category_id": category_id, "bbox": [0, 0, 2, 2], "area": 4, "iscrowd": 0}


def test_unlabelled_images_are_dropped_and_classes_follow_category_ids(tmp_path, caplog):
    path = _write_coco(tmp_path, [_image(1), _image(2), _image(5)], [_ann(1, 5, 3), _ann(2, 5, 3), _ann(3, 1, 1)],
                       categories=({"id": 3, "name": "b"}, {"id": 1, "name": "a"}))
    with caplog.at_level("INFO"):
        split = load_coco_split("train", path, tmp_path)
    assert split.image_ids.tolist() == [1, 5]
    assert split.class_names == ["a", "b"]
    np.testing.assert_array_equal(split.labels, [[1, 0], [0, 1]])
    assert "dropped 1 of 3 images" in caplog.text


@pytest.mark.faults(kind="bad inputs")
def test_missing_image_files_are_named(tmp_path):
    path = _write_coco(tmp_path, [_image(1), _image(2)], [_ann(1, 1, 1), _ann(2, 2, 1)])
    (tmp_path / "2.jpg").unlink()
    with pytest.raises(UserError, match=r"1 image files named in instances.json are missing: 2.jpg"):
        load_coco_split("train", path, tmp_path)


@pytest.mark.faults(kind="bad inputs")
@pytest.mark.parametrize("content, message", [
    ("{not json", "not valid JSON"),
    (json.dumps({"images": []}), "not a COCO instances file"),
])
def test_bad_annotation_files_are_one_line(tmp_path, content, message):
    path = tmp_path / "instances.json"
    path.write_text(content)
    with pytest.raises(UserError, match=message):
        load_coco_split("train", path, tmp_path)


def test_unknown_category_is_named(tmp_path):
    path = _write_coco(tmp_path, [_image(1)], [_ann(1, 1, 7)])
    with pytest.raises(UserError, match=r"annotation 1 \(image 1\): category_id 7: expected one of the 2 ids in "
                                        r"'categories' \(1, 3\)"):
        load_coco_split("train", path, tmp_path)


def test_hold_out_is_disjoint_deterministic_and_sized(coco_mini):
    split = load_coco_split("train", coco_mini / "annotations/instances_train2017.json", coco_mini / "train2017")
    fit, val = hold_out(split, 0.1, seed=3)
    again, _ = hold_out(split, 0.1, seed=3)
    assert len(val) == 8 and len(fit) == len(split) - 8 and val.name == "val"
    assert set(fit.image_ids).isdisjoint(val.image_ids)
    np.testing.assert_array_equal(fit.image_ids, again.image_ids)
    with pytest.raises(UserError, match="leaves no training image"):
        hold_out(split.subset([0]), 0.5, seed=0)


def test_prepare_dataset_on_real_coco_writes_a_readable_manifest(tmp_path, coco_mini, default_params):
    cfg = {**default_params["dataset"], "source": "coco", "coco": {
        "root": str(coco_mini), "train_annotations": "annotations/instances_train2017.json",
        "train_images": "train2017", "test_annotations": "annotations/instances_val2017.json",
        "test_images": "val2017"}}
    counts = prepare_dataset(cfg, tmp_path / "dataset")
    assert counts == {"train": 72, "val": 8, "test": 79}
    test = read_split(tmp_path / "dataset", "test")
    # The manifest stores resolved paths, so a symlinked data folder reads the same.
    assert test.paths[0].is_file()
    assert test.annotations == (coco_mini / "annotations/instances_val2017.json").resolve()
    assert [p.name for p in tmp_path.iterdir()] == ["dataset"], "no temporary folder left behind"
