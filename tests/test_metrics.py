"""The metrics against hand-computed answers, a literal port of the VOC devkit, and scikit-learn."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, f1_score, precision_score, recall_score

from wsdkd.evaluate import metrics

SEEDS = [0, 1, 2, 3, 4]


def _random_untied(seed: int, n: int = 60, k: int = 7) -> tuple[np.ndarray, np.ndarray]:
    """Scores without ties (a random permutation of distinct values) and labels with a positive in every class."""
    rng = np.random.default_rng(seed)
    scores = rng.permutation(np.linspace(0.001, 0.999, n * k)).reshape(n, k)
    labels = (rng.random((n, k)) < 0.3).astype(np.uint8)
    labels[0] = 1
    return scores, labels


def _voc_ap(scores: np.ndarray, labels: np.ndarray) -> float:
    """VOCdevkit 2012 VOCevalcls.m + VOCap, line by line (MATLAB's sort is stable)."""
    si = np.argsort(-scores, kind="stable")
    tp = np.cumsum(labels[si] > 0)
    fp = np.cumsum(labels[si] <= 0)
    rec = tp / (labels > 0).sum()
    prec = tp / (fp + tp)
    mrec = np.concatenate([[0], rec, [1]])
    mpre = np.concatenate([[0], prec, [0]])
    for i in range(len(mpre) - 2, -1, -1):
        mpre[i] = max(mpre[i], mpre[i + 1])
    i = np.flatnonzero(mrec[1:] != mrec[:-1]) + 1
    return float(np.sum((mrec[i] - mrec[i - 1]) * mpre[i]))


# --- average precision ---------------------------------------------------------------------------------------

def test_ap_hand_computed_positives_at_ranks_1_and_3():
    # Ranking: pos, neg, pos, neg. Precision at the positives: 1/1 and 2/3.
    # Non-interpolated: (1 + 2/3) / 2 = 5/6. Envelope at rank 3: max(2/3, 2/4) = 2/3, so interpolated is 5/6 too.
    scores = np.array([0.9, 0.8, 0.7, 0.6])
    labels = np.array([1, 0, 1, 0])
    assert metrics.average_precision(scores, labels, interpolated=False) == pytest.approx(5 / 6)
    assert metrics.average_precision(scores, labels, interpolated=True) == pytest.approx(5 / 6)


def test_ap_interpolated_and_noninterpolated_differ():
    # Ranking: pos, neg, pos, pos. Precision at ranks 1..4: 1, 1/2, 2/3, 3/4.
    # Non-interpolated: (1 + 2/3 + 3/4) / 3 = 29/36.
    # Interpolated: envelope at rank 3 = max(2/3, 3/4) = 3/4, at rank 4 = 3/4: (1 + 3/4 + 3/4) / 3 = 5/6.
    scores = np.array([0.4, 0.3, 0.2, 0.1])
    labels = np.array([1, 0, 1, 1])
    assert metrics.average_precision(scores, labels, interpolated=False) == pytest.approx(29 / 36)
    assert metrics.average_precision(scores, labels, interpolated=True) == pytest.approx(5 / 6)


def test_ap_ties_keep_input_order():
    # Stable sort: of two tied scores the first listed ranks first. neg, pos -> 1/2; pos, neg -> 1.
    assert metrics.average_precision(np.array([0.5, 0.5]), np.array([0, 1]), False) == pytest.approx(1 / 2)
    assert metrics.average_precision(np.array([0.5, 0.5]), np.array([1, 0]), False) == pytest.approx(1.0)


def test_ap_without_positive_is_nan():
    assert math.isnan(metrics.average_precision(np.array([0.3, 0.2]), np.array([0, 0]), True))


@pytest.mark.parametrize("seed", SEEDS)
def test_noninterpolated_ap_equals_sklearn_on_untied_scores(seed):
    scores, labels = _random_untied(seed)
    expected = [average_precision_score(labels[:, k], scores[:, k]) for k in range(labels.shape[1])]
    np.testing.assert_allclose(metrics.per_class_ap(scores, labels, interpolated=False), expected)


@pytest.mark.parametrize("seed", SEEDS)
def test_interpolated_ap_equals_voc_devkit(seed):
    scores, labels = _random_untied(seed)
    expected = [_voc_ap(scores[:, k], labels[:, k]) for k in range(labels.shape[1])]
    got = metrics.per_class_ap(scores, labels, interpolated=True)
    np.testing.assert_allclose(got, expected)
    # The envelope can only raise precision.
    assert np.all(got >= metrics.per_class_ap(scores, labels, interpolated=False) - 1e-12)


def test_mean_ap_leaves_out_class_without_positive_with_warning():
    scores = np.array([[0.9, 0.1, 0.8], [0.2, 0.7, 0.3], [0.6, 0.4, 0.5]])
    labels = np.array([[1, 0, 0], [0, 0, 1], [0, 0, 1]])
    ap = metrics.per_class_ap(scores, labels, interpolated=False)
    # dog: its positive ranks 1st -> AP 1. bird: positives rank 2nd and 3rd -> (1/2 + 2/3) / 2 = 7/12.
    np.testing.assert_allclose(ap, [1.0, np.nan, 7 / 12])
    with pytest.warns(UserWarning, match="cat") as record:
        value = metrics.mean_ap(scores, labels, interpolated=False, class_names=["dog", "cat", "bird"])
    assert "dog" not in str(record[0].message) and "bird" not in str(record[0].message)
    assert value == pytest.approx((1 + 7 / 12) / 2)


def test_mean_over_classes_all_nan_is_nan():
    with pytest.warns(UserWarning, match="0, 1"):
        assert math.isnan(metrics.mean_over_classes(np.array([np.nan, np.nan])))


def test_precision_recall_points():
    precision, recall = metrics.precision_recall_points(np.array([0.4, 0.3, 0.2, 0.1]), np.array([1, 0, 1, 1]))
    np.testing.assert_allclose(precision, [1, 1 / 2, 2 / 3, 3 / 4])
    np.testing.assert_allclose(recall, [1 / 3, 1 / 3, 2 / 3, 1])


# --- F1 at a threshold ---------------------------------------------------------------------------------------

def test_f1_hand_computed():
    scores = np.array([[0.9, 0.2], [0.6, 0.7], [0.3, 0.8]])
    labels = np.array([[1, 0], [0, 1], [1, 0]])
    # Decisions at 0.5: [[1, 0], [1, 1], [0, 1]].
    # Class 0: TP 1, FP 1, FN 1 -> P 1/2, R 1/2, F1 1/2. Class 1: TP 1, FP 1, FN 0 -> P 1/2, R 1, F1 2/3.
    # F1-C = (1/2 + 2/3) / 2 = 7/12; P-C = 1/2; R-C = 3/4.
    # Overall TP 2, FP 2, FN 1 -> P-O 1/2, R-O 2/3, F1-O = 2 * (1/2)(2/3) / (1/2 + 2/3) = 4/7.
    out = metrics.f1_at_threshold(scores, labels, 0.5)
    np.testing.assert_allclose(out["precision"], [1 / 2, 1 / 2])
    np.testing.assert_allclose(out["recall"], [1 / 2, 1])
    np.testing.assert_allclose(out["F1"], [1 / 2, 2 / 3])
    assert out["F1_C"] == pytest.approx(7 / 12)
    assert out["P_C"] == pytest.approx(1 / 2) and out["R_C"] == pytest.approx(3 / 4)
    assert out["P_O"] == pytest.approx(1 / 2) and out["R_O"] == pytest.approx(2 / 3)
    assert out["F1_O"] == pytest.approx(4 / 7)
    # Not ML-GCN's CF1 = 2 P-C R-C / (P-C + R-C) = 0.6.
    assert out["F1_C"] != pytest.approx(0.6)


def test_f1_threshold_is_strict():
    scores, labels = np.array([[0.5]]), np.array([[1]])
    assert metrics.f1_at_threshold(scores, labels, 0.5)["F1_O"] == 0.0
    assert metrics.f1_at_threshold(scores, labels, 0.49)["F1_O"] == 1.0


def test_f1_zero_division_is_zero():
    # Class 1 has a positive but no prediction: precision, recall and F1 are 0, and it counts in F1-C.
    out = metrics.f1_at_threshold(np.array([[0.9, 0.1], [0.2, 0.3]]), np.array([[1, 0], [0, 1]]), 0.5)
    np.testing.assert_array_equal(out["F1"], [1.0, 0.0])
    assert out["F1_C"] == pytest.approx(0.5)
    assert out["F1_O"] == pytest.approx(2 / 3)  # TP 1, FP 0, FN 1


def test_f1_leaves_out_classes_without_positives_with_the_map_warning():
    # Class "kite" has no positive and one false positive (image 1). Kept classes 0, 1:
    # class 0 TP 1 FN 0 -> F1 1; class 1 TP 1 FP 1 -> P 1/2, R 1, F1 2/3. F1-C = (1 + 2/3) / 2 = 5/6
    # (counting kite's F1 of 0: 5/9). F1-O: TP 2, FP 1, FN 0 -> P 2/3, R 1, F1 4/5 (with kite's FP: TP 2 FP 2, 2/3).
    scores = np.array([[0.9, 0.8, 0.1], [0.1, 0.7, 0.6]])
    labels = np.array([[1, 1, 0], [0, 0, 0]])
    with pytest.warns(UserWarning, match="classes without a positive left out of the mean: kite"):
        out = metrics.f1_at_threshold(scores, labels, 0.5, class_names=["cat", "dog", "kite"])
    assert np.isnan(out["F1"][2]) and np.isnan(out["precision"][2]) and np.isnan(out["recall"][2])
    np.testing.assert_allclose(out["F1"][:2], [1.0, 2 / 3])
    assert out["F1_C"] == pytest.approx(5 / 6)
    assert out["P_C"] == pytest.approx(3 / 4) and out["R_C"] == pytest.approx(1.0)
    assert out["P_O"] == pytest.approx(2 / 3) and out["R_O"] == pytest.approx(1.0)
    assert out["F1_O"] == pytest.approx(4 / 5)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a second mean over the same labels stays quiet
        # top-1: cat on image 0 (TP), dog on image 1 (FP); dog on image 0 missed (FN): F1-O 1/2
        assert metrics.f1_topk(scores, labels, 1, warn=False)["F1_O"] == pytest.approx(0.5)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("threshold", [0.3, 0.5, 0.8])
def test_f1_equals_sklearn(seed, threshold):
    scores, labels = _random_untied(seed)
    pred = (scores > threshold).astype(int)
    out = metrics.f1_at_threshold(scores, labels, threshold)
    for key, fn, average in [("F1_C", f1_score, "macro"), ("F1_O", f1_score, "micro"),
                             ("P_C", precision_score, "macro"), ("P_O", precision_score, "micro"),
                             ("R_C", recall_score, "macro"), ("R_O", recall_score, "micro")]:
        assert out[key] == pytest.approx(fn(labels, pred, average=average, zero_division=0)), key
    np.testing.assert_allclose(out["F1"], f1_score(labels, pred, average=None, zero_division=0))


# --- top-k ---------------------------------------------------------------------------------------------------

TOPK_SCORES = np.array([
    [0.9, 0.8, 0.4, 0.3, 0.95],
    [0.6, 0.2, 0.45, 0.1, 0.3],
    [0.5, 0.5, 0.5, 0.5, 0.1],
])
TOPK_LABELS = np.array([
    [1, 0, 0, 0, 1],
    [0, 0, 1, 0, 0],
    [0, 0, 0, 1, 0],
])


def test_topk_decisions_pure():
    # Row 0: classes 4, 0, 1. Row 1: 0, 2, 4. Row 2 (four-way tie at 0.5): the first three, 0, 1, 2.
    expected = np.array([[1, 1, 0, 0, 1], [1, 0, 1, 0, 1], [1, 1, 1, 0, 0]], bool)
    np.testing.assert_array_equal(metrics.topk_decisions(TOPK_SCORES, 3), expected)


def test_topk_decisions_with_min_score():
    # Row 1 keeps only 0.6; row 2's top three all equal 0.5, not strictly above it, so none remain.
    expected = np.array([[1, 1, 0, 0, 1], [1, 0, 0, 0, 0], [0, 0, 0, 0, 0]], bool)
    np.testing.assert_array_equal(metrics.topk_decisions(TOPK_SCORES, 3, min_score=0.5), expected)


def test_f1_topk_hand_computed():
    # Class 1 has no positive and is left out (its FPs too). Pure: row 0 TP 2 FP 0 (class 1 dropped); row 1
    # TP 1 FP 2; row 2 TP 0 FP 2 (class 1 dropped) FN 1. TP 3, FP 4, FN 1: P-O 3/7, R-O 3/4, F1-O = 6/11.
    with pytest.warns(UserWarning, match="left out of the mean: 1"):
        pure = metrics.f1_topk(TOPK_SCORES, TOPK_LABELS, 3)
    assert pure["P_O"] == pytest.approx(3 / 7) and pure["R_O"] == pytest.approx(3 / 4)
    assert pure["F1_O"] == pytest.approx(6 / 11)
    # min 0.5: row 0 TP 2 (class 1 dropped); row 1 FP 1 FN 1; row 2 FN 1. TP 2, FP 1, FN 2: F1-O = 4/7.
    strict = metrics.f1_topk(TOPK_SCORES, TOPK_LABELS, 3, min_score=0.5, warn=False)
    assert strict["F1_O"] == pytest.approx(4 / 7)


# --- threshold tuning ----------------------------------------------------------------------------------------

def test_tune_threshold_picks_known_best_smallest_on_tie():
    scores = np.array([[0.8], [0.7], [0.6], [0.3]])
    labels = np.array([[1], [0], [1], [0]])
    # F1-O by threshold: 0.2 -> 2/3 (TP 2 FP 2); 0.4 and 0.5 -> 4/5 (TP 2 FP 1); 0.65 -> 1/2; 0.75 -> 2/3; 0.9 -> 0.
    best, value = metrics.tune_threshold(scores, labels, [0.9, 0.5, 0.75, 0.4, 0.65, 0.2])
    assert best == 0.4
    assert value == pytest.approx(4 / 5)


@pytest.mark.parametrize("seed", SEEDS)
def test_tune_threshold_matches_sklearn_brute_force(seed):
    scores, labels = _random_untied(seed)
    grid = metrics.threshold_grid(0.05, 0.95, 0.05)
    values = [f1_score(labels, (scores > t).astype(int), average="micro", zero_division=0) for t in grid]
    best, value = metrics.tune_threshold(scores, labels, grid)
    assert best == grid[int(np.argmax(values))]
    assert value == pytest.approx(max(values))


def test_threshold_grid_is_inclusive_and_exact():
    grid = metrics.threshold_grid(0.05, 0.95, 0.05)
    assert len(grid) == 19 and grid[0] == 0.05 and grid[-1] == 0.95
    assert 0.15 in grid and 0.3 in grid
    np.testing.assert_array_equal(metrics.threshold_grid(0.0, 1.0, 0.3), [0.0, 0.3, 0.6, 0.9])
    assert len(metrics.threshold_grid(0.01, 0.99, 0.01)) == 99


@pytest.mark.parametrize("start, stop, step", [(0.1, 0.9, 0.0), (0.9, 0.1, 0.1), (0.1, 0.9, -0.1)])
def test_threshold_grid_rejects_bad_input(start, stop, step):
    with pytest.raises(ValueError):
        metrics.threshold_grid(start, stop, step)


def test_tune_threshold_rejects_empty_grid():
    with pytest.raises(ValueError):
        metrics.tune_threshold(np.array([[0.5]]), np.array([[1]]), [])
