"""Figures 3 and 4: which boxes and labels Figure 3 shows, Figure 4's per-class gains and order, and the PNGs."""

from __future__ import annotations

import numpy as np
import pytest

from wsdkd.data.manifest import read_split
from wsdkd.evaluate.predictions import Predictions
from wsdkd.paper.figures import class_ap_gain, plot_ap_gain, plot_examples, top_boxes, top_labels
from wsdkd.pipeline.errors import UserError

PNG_MAGIC = b"\x89PNG"


def test_top_boxes_rank_the_selected_rows_by_objectness_and_skip_the_recycled_tail():
    boxes = np.arange(5 * 4, dtype=np.float32).reshape(5, 4)
    objectness = np.array([0.1, 0.9, 0.5, 0.7, 0.99], np.float32)
    selected = np.array([0, 1, 2, 1, 0])  # 3 real picks, then recycled copies; row 4 was suppressed by NMS
    np.testing.assert_array_equal(top_boxes(boxes, objectness, selected, 3, k=2), boxes[[1, 2]])
    np.testing.assert_array_equal(top_boxes(boxes, objectness, selected, 3, k=10), boxes[[1, 2, 0]])


def test_top_labels_are_the_best_scores_marked_right_or_wrong():
    scores = np.array([0.2, 0.9, 0.4, 0.8], np.float32)
    labels = np.array([0, 0, 1, 1], np.uint8)
    assert top_labels(scores, labels, 3) == [(1, pytest.approx(0.9), False), (3, pytest.approx(0.8), True),
                                             (2, pytest.approx(0.4), True)]


def _preds(scores, labels, ids=(1, 2, 3, 4)):
    return Predictions(np.array(ids), np.array(scores, np.float32), np.array(labels, np.uint8), ["a", "b"])


def test_class_ap_gain_is_the_ap_difference_with_the_frequent_classes_first():
    labels = [[1, 0], [0, 1], [1, 0], [0, 1]]
    # Class a: w/o ranks a negative first, precision 1/2 then 2/3 at its positives, which the VOC envelope
    # (the reported AP) lifts to 2/3 at both; w/ ranks both positives first (AP 1).
    without = _preds([[0.6, 0.1], [0.9, 0.8], [0.5, 0.7], [0.1, 0.9]], labels)
    # The same images in another order: rows are matched by image id, not position.
    with_ = _preds([[0.1, 0.9], [0.9, 0.1], [0.2, 0.8], [0.8, 0.7]], labels[::-1], ids=(4, 3, 2, 1))
    train_labels = np.array([[1, 1], [0, 1], [0, 1]])
    table = class_ap_gain(without, with_, train_labels)
    assert list(table["class"]) == ["b", "a"] and list(table["train_images"]) == [3, 1]
    a = table.set_index("class").loc["a"]
    assert a["AP_without"] == pytest.approx(100 * 2 / 3)
    assert a["AP_with"] == pytest.approx(100.0)
    assert a["gain"] == pytest.approx(100 / 3)


def test_class_ap_gain_names_missing_images():
    labels = [[1, 0], [0, 1], [1, 0], [0, 1]]
    without = _preds([[0.5, 0.5]] * 4, labels)
    with_ = _preds([[0.5, 0.5]] * 4, labels, ids=(1, 2, 3, 9))
    with pytest.raises(UserError, match=r"no predictions for image ids \[4\]"):
        class_ap_gain(without, with_, np.ones((2, 2)))


def test_both_figures_are_written_as_png(tiny_manifest, tiny_upstream, tmp_path):
    test = read_split(tiny_manifest, "test")
    rng = np.random.default_rng(0)
    without, with_ = (Predictions(test.image_ids, rng.uniform(size=test.labels.shape).astype(np.float32),
                                  test.labels, test.class_names) for _ in range(2))
    plot_examples(test, tiny_upstream / "cache" / "test.h5", without, with_, tmp_path / "f3.png", examples=4, seed=0)
    plot_ap_gain(class_ap_gain(without, with_, read_split(tiny_manifest, "train").labels), tmp_path / "f4.png")
    for name in ("f3.png", "f4.png"):
        assert (tmp_path / name).read_bytes()[:4] == PNG_MAGIC
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f3.png", "f4.png"]  # no temporary file left behind
