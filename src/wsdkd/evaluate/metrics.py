"""Multi-label classification metrics: average precision, F1 at a threshold or top-k, threshold tuning.

Pure numpy. ``scores`` is (N, K) in [0, 1] and ``labels`` is (N, K) 0/1; N images, K classes.

Ties: ranking uses a stable descending sort, so images (or classes) with equal scores keep their input order;
this is what the VOC devkit does (MATLAB's ``sort`` is stable). scikit-learn instead groups tied scores into one
threshold, so the two agree only when scores are untied.

Zero division: a precision or recall whose denominator is 0 is taken as 0, and so is an F1 whose precision +
recall is 0 (scikit-learn's ``zero_division=0``). A class without a positive is left out of every mean over
classes (mAP, F1-C) and of F1-O, with a warning naming it.
"""

from __future__ import annotations

import warnings
from typing import Iterable, Sequence

import numpy as np

# Grid points are rounded to this many decimals so that e.g. 0.1 + 2 * 0.05 prints and compares as 0.2.
_GRID_DECIMALS = 12


def _ratio(num: np.ndarray | float, den: np.ndarray | float) -> np.ndarray:
    """num / den, 0 where den is 0."""
    num, den = np.asarray(num, float), np.asarray(den, float)
    return np.divide(num, den, out=np.zeros(np.broadcast(num, den).shape), where=den > 0)


def _f1(precision: np.ndarray | float, recall: np.ndarray | float) -> np.ndarray:
    """Harmonic mean, 0 where precision + recall is 0."""
    precision, recall = np.asarray(precision, float), np.asarray(recall, float)
    return _ratio(2 * precision * recall, precision + recall)


def _ranked_hits(scores_1d: np.ndarray, labels_1d: np.ndarray) -> np.ndarray:
    """Whether each item is a positive, in ranking order (stable sort by descending score)."""
    order = np.argsort(-np.asarray(scores_1d, float), kind="stable")
    return np.asarray(labels_1d)[order] > 0


def precision_recall_points(scores_1d: np.ndarray, labels_1d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Precision and recall after each item of the ranking (stable, descending score), one point per item.

    Recall is 0 throughout when there is no positive.
    """
    hits = _ranked_hits(scores_1d, labels_1d)
    tp = np.cumsum(hits)
    precision = tp / np.arange(1, len(hits) + 1)
    recall = _ratio(tp, hits.sum())
    return precision, recall


def average_precision(scores_1d: np.ndarray, labels_1d: np.ndarray, interpolated: bool = True) -> float:
    """AP of one class; NaN when the class has no positive.

    interpolated=True: VOC 2012 all-point AP (VOCdevkit ``VOCap``, the paper's evaluation code). Precision is
    made monotone by taking, at each rank, the maximum precision at that or any deeper rank; the area under that
    envelope is summed at every recall change, i.e. at every positive, each a step of 1 / #positives.
    interpolated=False: the mean of the precision at each positive's rank (ASL / ML-GCN convention); equal to
    ``sklearn.metrics.average_precision_score`` when scores are untied.
    """
    hits = _ranked_hits(scores_1d, labels_1d)
    if not hits.any():
        return float("nan")
    precision = np.cumsum(hits) / np.arange(1, len(hits) + 1)
    if interpolated:
        precision = np.maximum.accumulate(precision[::-1])[::-1]
    return float(precision[hits].mean())


def per_class_ap(scores: np.ndarray, labels: np.ndarray, interpolated: bool = True) -> np.ndarray:
    """(K,) AP of each class (see ``average_precision``), NaN for a class with no positive."""
    return np.array([average_precision(scores[:, k], labels[:, k], interpolated) for k in range(scores.shape[1])])


def mean_over_classes(values: np.ndarray, class_names: Sequence[str] | None = None, warn: bool = True) -> float:
    """Mean of per-class values, leaving NaN classes (no positive) out, with a warning naming them.

    NaN when every class is NaN. Classes are named by ``class_names`` when given, else by index; ``warn=False``
    is for a second mean over the same classes, already warned about.
    """
    values = np.asarray(values, float)
    missing = np.flatnonzero(np.isnan(values))
    if warn and len(missing):
        names = [class_names[i] if class_names is not None else str(i) for i in missing]
        warnings.warn(f"classes without a positive left out of the mean: {', '.join(names)}", stacklevel=2)
    if len(missing) == len(values):
        return float("nan")
    return float(np.nanmean(values))


def mean_ap(scores: np.ndarray, labels: np.ndarray, interpolated: bool = True,
            class_names: Sequence[str] | None = None) -> float:
    """mAP: the mean over classes of ``per_class_ap``, classes without a positive left out with a warning."""
    return mean_over_classes(per_class_ap(scores, labels, interpolated), class_names)


def f1_from_decisions(decisions: np.ndarray, labels: np.ndarray, class_names: Sequence[str] | None = None,
                      warn: bool = True) -> dict[str, np.ndarray | float]:
    """Per-class and overall precision / recall / F1 of boolean (N, K) decisions against the labels.

    Returns per-class arrays ``precision``, ``recall``, ``F1`` (K,) and floats:
    ``P_C``, ``R_C`` = mean over classes of per-class precision / recall;
    ``F1_C`` = mean over classes of per-class F1 (METHOD.md; scikit-learn ``f1_score(average='macro')``);
    ``P_O``, ``R_O``, ``F1_O`` = from TP / FP / FN summed over all (image, class) decisions (``average='micro'``).
    A class with no positive is left out of all of them, as mAP leaves it out (NaN in the per-class arrays, the
    same warning, naming it by ``class_names``; ``warn=False`` for a second call on the same labels): its F1
    would be 0 whatever the model does, and its false positives would count in F1-O.
    ML-GCN's code instead reports CF1 = 2 P_C R_C / (P_C + R_C); that is not what ``F1_C`` holds.
    """
    decisions, truth = np.asarray(decisions, bool), np.asarray(labels) > 0
    kept = truth.any(axis=0)
    tp = (decisions & truth).sum(axis=0)
    fp = (decisions & ~truth).sum(axis=0)
    fn = (~decisions & truth).sum(axis=0)
    precision, recall = _ratio(tp, tp + fp), _ratio(tp, tp + fn)
    f1 = _f1(precision, recall)
    precision, recall, f1 = (np.where(kept, values, np.nan) for values in (precision, recall, f1))
    tp_o, fp_o, fn_o = tp[kept].sum(), fp[kept].sum(), fn[kept].sum()
    p_o, r_o = _ratio(tp_o, tp_o + fp_o), _ratio(tp_o, tp_o + fn_o)
    return {
        "precision": precision, "recall": recall, "F1": f1,
        "P_C": mean_over_classes(precision, class_names, warn), "R_C": mean_over_classes(recall, warn=False),
        "F1_C": mean_over_classes(f1, warn=False),
        "P_O": float(p_o), "R_O": float(r_o), "F1_O": float(_f1(p_o, r_o)),
    }


def f1_at_threshold(scores: np.ndarray, labels: np.ndarray, threshold: float = 0.5,
                    class_names: Sequence[str] | None = None, warn: bool = True) -> dict[str, np.ndarray | float]:
    """``f1_from_decisions`` with a class predicted when its score is strictly above ``threshold``.

    Strict, as the paper's Eq. 1 indicator I(p > tau): a score equal to the threshold is a negative.
    """
    return f1_from_decisions(np.asarray(scores) > threshold, labels, class_names, warn)


def topk_decisions(scores: np.ndarray, k: int, min_score: float | None = None) -> np.ndarray:
    """(N, K) bool: each image's k highest-scoring classes (ties: lower class index first).

    With ``min_score``, a top-k class must also score strictly above it (the COCO protocol of the paper's code,
    min_score=0.5); without it, pure top-k (NUS-WIDE).
    """
    scores = np.asarray(scores, float)
    top = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    decisions = np.zeros(scores.shape, bool)
    np.put_along_axis(decisions, top, True, axis=1)
    if min_score is not None:
        decisions &= scores > min_score
    return decisions


def f1_topk(scores: np.ndarray, labels: np.ndarray, k: int = 3, min_score: float | None = None,
            class_names: Sequence[str] | None = None, warn: bool = True) -> dict[str, np.ndarray | float]:
    """``f1_from_decisions`` on ``topk_decisions(scores, k, min_score)``."""
    return f1_from_decisions(topk_decisions(scores, k, min_score), labels, class_names, warn)


def threshold_grid(start: float, stop: float, step: float) -> np.ndarray:
    """start, start + step, ... up to stop inclusive (when stop is on the grid), robust to float error."""
    if step <= 0 or stop < start:
        raise ValueError(f"bad threshold grid: start {start}, stop {stop}, step {step}")
    # The small slack keeps stop on the grid when (stop - start) / step is e.g. 17.999999999999996.
    count = int(np.floor((stop - start) / step + 10.0 ** -_GRID_DECIMALS)) + 1
    return np.round(start + step * np.arange(count), _GRID_DECIMALS)


def tune_threshold(scores: np.ndarray, labels: np.ndarray, grid: Iterable[float]) -> tuple[float, float]:
    """The one class-independent threshold of ``grid`` that maximises F1-O, and that F1-O (a fraction).

    The paper tunes "a class-independent confidence threshold" without naming the objective; F1-O pools every
    (image, class) decision, so rare classes do not make it noisy. Ties go to the smallest threshold. Tune on
    held-out training images, never on the test set.
    """
    best_threshold, best_value = float("nan"), -1.0
    for threshold in sorted(float(t) for t in grid):
        value = f1_at_threshold(scores, labels, threshold, warn=False)["F1_O"]
        if value > best_value:
            best_threshold, best_value = threshold, value
    if best_value < 0:
        raise ValueError("empty threshold grid")
    return best_threshold, float(best_value)
