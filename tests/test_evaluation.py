"""The evaluation stage's report: headline keys and scaling, class checks, the Markdown table, the PNG."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from wsdkd.evaluate import metrics
from wsdkd.evaluate.predictions import Predictions
from wsdkd.evaluate.scoring import evaluate, per_class_markdown, plot_precision_recall
from wsdkd.pipeline.errors import UserError

CLASSES = ["person", "dog", "kite", "boat"]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
HEADLINE_KEYS = ["mAP", "mAP_noninterp", "F1_C", "F1_O", "P_C", "R_C", "P_O", "R_O", "top3_F1_C", "top3_F1_O",
                 "tuned_threshold", "tuned_F1_C", "tuned_F1_O", "num_images", "num_classes",
                 "classes_without_positives"]


def _predictions(seed: int, n: int = 40, class_names: list[str] = CLASSES) -> Predictions:
    rng = np.random.default_rng(seed)
    k = len(class_names)
    # Positives get a better score on average, so the metrics sit away from 0 and 1.
    labels = (rng.random((n, k)) < np.linspace(0.6, 0.15, k)).astype(np.uint8)
    scores = np.clip(0.35 * labels + 0.65 * rng.random((n, k)), 0, 1).astype(np.float32)
    return Predictions(np.arange(n, dtype=np.int64), scores, labels, list(class_names))


def test_evaluate_keys_and_percent_scaling():
    test, val = _predictions(0), _predictions(1)
    headline, table = evaluate(test, val)
    assert list(headline) == HEADLINE_KEYS
    assert headline["mAP"] == round(100 * metrics.mean_ap(test.scores, test.labels, True), 2)
    assert headline["mAP_noninterp"] == round(100 * metrics.mean_ap(test.scores, test.labels, False), 2)
    at = metrics.f1_at_threshold(test.scores, test.labels, 0.5)
    assert headline["F1_C"] == round(100 * at["F1_C"], 2) and headline["R_O"] == round(100 * at["R_O"], 2)
    top = metrics.f1_topk(test.scores, test.labels, 3, 0.5)
    assert headline["top3_F1_O"] == round(100 * top["F1_O"], 2)
    assert (headline["num_images"], headline["num_classes"], headline["classes_without_positives"]) == (40, 4, 0)
    assert 1 < headline["mAP"] < 100
    assert list(table.columns) == ["class", "positives", "AP", "AP_noninterp", "precision", "recall", "F1"]
    assert list(table["class"]) == CLASSES
    np.testing.assert_array_equal(table["positives"], test.labels.sum(axis=0))
    np.testing.assert_allclose(table["AP"], 100 * metrics.per_class_ap(test.scores, test.labels, True))
    np.testing.assert_allclose(table["F1"], 100 * at["F1"])


def test_tuned_threshold_comes_from_val_not_test():
    test, val = _predictions(0), _predictions(1)
    grid = metrics.threshold_grid(0.1, 0.9, 0.1)
    headline, _ = evaluate(test, val, grid=grid)
    expected, _ = metrics.tune_threshold(val.scores, val.labels, grid)
    assert headline["tuned_threshold"] == expected
    tuned = metrics.f1_at_threshold(test.scores, test.labels, expected)
    assert headline["tuned_F1_O"] == round(100 * tuned["F1_O"], 2)


def test_evaluate_without_val_and_other_top_k():
    headline, _ = evaluate(_predictions(0), None, top_k=2, top_k_min_score=None)
    assert not any(key.startswith("tuned") for key in headline)
    assert "top2_F1_C" in headline and "top3_F1_C" not in headline


def test_evaluate_counts_and_names_classes_without_positives():
    test = _predictions(0)
    labels = test.labels.copy()
    labels[:, 2] = 0
    test = Predictions(test.image_ids, test.scores, labels, test.class_names)
    with pytest.warns(UserWarning, match="kite"):
        headline, table = evaluate(test)
    assert headline["classes_without_positives"] == 1
    assert np.isnan(table.loc[2, "AP"])


def test_mismatched_class_names_is_a_user_error():
    other = _predictions(1, class_names=["person", "dog", "kite", "car"])
    with pytest.raises(UserError) as info:
        evaluate(_predictions(0), other)
    assert "\n" not in str(info.value)


def test_markdown_sorted_by_positives_with_mean_row():
    test = _predictions(0)
    headline, table = evaluate(test)
    text = per_class_markdown(table, "Student on COCO")
    lines = text.strip().splitlines()
    assert lines[0] == "### Student on COCO"
    rows = [line for line in lines if line.startswith("| ") and "---" not in line][1:]
    names = [row.split("|")[1].strip() for row in rows[:-1]]
    expected = [CLASSES[i] for i in np.argsort(-test.labels.sum(axis=0), kind="stable")]
    assert names == expected
    mean_cells = [cell.strip() for cell in rows[-1].split("|")[1:-1]]
    assert mean_cells[0] == "**mean**"
    assert mean_cells[2] == f"{headline['mAP']:.2f}"
    assert mean_cells[6] == f"{headline['F1_C']:.2f}"


def test_markdown_hand_made_order():
    table = pd.DataFrame({"class": ["a", "b", "c"], "positives": [1, 5, 3], "AP": [10.0, np.nan, 30.0]})
    text = per_class_markdown(table, "t")
    body = [line.split("|")[1].strip() for line in text.splitlines()[4:]]
    assert body == ["b", "c", "a", "**mean**"]
    assert "| b | 5 | n/a |" in text and "| **mean** |  | 20.00 |" in text


def test_plot_writes_png(tmp_path):
    path = tmp_path / "figures" / "pr.png"
    plot_precision_recall({"teacher": _predictions(0), "student": _predictions(1)}, path)
    data = path.read_bytes()
    assert data.startswith(PNG_MAGIC) and len(data) > 1000
    assert [p.name for p in path.parent.iterdir()] == ["pr.png"]


def test_plot_rejects_mismatched_classes(tmp_path):
    other = _predictions(1, class_names=["a", "b", "c", "d"])
    with pytest.raises(UserError):
        plot_precision_recall({"teacher": _predictions(0), "student": other}, tmp_path / "pr.png")
    assert not (tmp_path / "pr.png").exists()
