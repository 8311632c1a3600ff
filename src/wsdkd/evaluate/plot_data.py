"""The evaluation's curves as data files, for ``dvc plots show`` and ``dvc plots diff`` (dvc.yaml's top-level
``plots`` give them titles and axis labels): per model, the micro-averaged PR curve and the AP of every class.

The PNG of ``evaluation.plot_precision_recall`` shows one run; these files let DVC overlay two runs or two
experiments. The PR curve is sampled at fixed recall levels, so a file has the same size for 12 test images or
40,000, and two runs' curves share their x values.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..pipeline.atomic import atomic_path
from . import metrics
from .predictions import Predictions


def interpolated_precision(scores_1d: np.ndarray, labels_1d: np.ndarray, recall_levels: np.ndarray) -> np.ndarray:
    """Interpolated precision p_interp(r) = max over ranks with recall >= r of the precision there, at each level r.

    The envelope the interpolated (VOC) AP integrates (``metrics.average_precision``); 0 at levels above the
    largest recall reached, and 0 everywhere when there is no positive.
    """
    precision, recall = metrics.precision_recall_points(scores_1d, labels_1d)
    if not len(precision) or recall[-1] == 0:
        return np.zeros(len(recall_levels))
    envelope = np.maximum.accumulate(precision[::-1])[::-1]  # best precision at this or any deeper rank
    first = np.searchsorted(recall, recall_levels, side="left")  # first rank whose recall reaches the level
    reached = first < len(recall)
    return np.where(reached, envelope[np.minimum(first, len(recall) - 1)], 0.0)


def write_plot_data(curves: dict[str, Predictions], folder: str | Path, points: int) -> None:
    """``folder``/pr_<model>.csv (recall, precision at ``points`` evenly spaced recall levels in [0, 1]) and
    ``folder``/ap_<model>.csv (class, AP in percent; classes without a positive left out)."""
    levels = np.linspace(0.0, 1.0, points)
    with atomic_path(folder) as tmp:
        tmp.mkdir(parents=True)
        for name, preds in curves.items():
            precision = interpolated_precision(preds.scores.ravel(), preds.labels.ravel(), levels)
            pd.DataFrame({"recall": levels, "precision": precision}).to_csv(tmp / f"pr_{name}.csv", index=False)
            ap = 100 * metrics.per_class_ap(preds.scores, preds.labels)
            table = pd.DataFrame({"class": preds.class_names, "AP": ap}).dropna()
            table.to_csv(tmp / f"ap_{name}.csv", index=False)
