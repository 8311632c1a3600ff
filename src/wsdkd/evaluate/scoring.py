"""From predictions to the reported numbers: headline metrics, the per-class table, its Markdown, the PR figure.

The conventions (METHOD.md section 7) live in ``metrics``; this module only chooses what to report and how.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from ..pipeline.atomic import atomic_path
from ..pipeline.errors import UserError
from . import metrics
from .predictions import Predictions

PERCENT_DECIMALS = 2
DEFAULT_THRESHOLD_GRID = metrics.threshold_grid(0.01, 0.99, 0.01)

# Figure layout, in inches: a square PR panel beside an AP bar panel that widens with the number of classes.
_FIG_HEIGHT = 5.0
_PR_PANEL_WIDTH = 5.0
_WIDTH_PER_CLASS = 0.25
_MIN_BAR_PANEL_WIDTH = 5.0
_BAR_GROUP_WIDTH = 0.8  # share of each class's slot taken by its group of bars
_DPI = 120


def _percent(fraction: float) -> float:
    return round(100 * fraction, PERCENT_DECIMALS)


def _check_same_classes(named: dict[str, Predictions]) -> list[str]:
    """The shared class names of several prediction sets; UserError when they differ."""
    (first_name, first), *rest = named.items()
    for name, preds in rest:
        if preds.class_names != first.class_names:
            raise UserError(f"{name} predictions have classes {preds.class_names} but {first_name} predictions "
                            f"have {first.class_names}")
    return first.class_names


def evaluate(test: Predictions, val: Predictions | None = None, threshold: float = 0.5, top_k: int = 3,
             top_k_min_score: float | None = 0.5,
             grid: Iterable[float] = DEFAULT_THRESHOLD_GRID) -> tuple[dict[str, float | int], pd.DataFrame]:
    """Headline numbers (metrics in percent, 2 decimals) and a per-class table (percent, unrounded) on ``test``.

    ``val`` (held-out training images, never the test set) tunes one class-independent threshold that maximises
    F1-O over ``grid``; the ``tuned_*`` keys report it and the test F1 at it (the threshold itself is a
    probability, not a percent). They are absent when ``val`` is None.
    """
    if val is not None:
        _check_same_classes({"test": test, "validation": val})
    # Classes without a test positive are left out of every mean below; the mAP's warning names them once.
    ap = metrics.per_class_ap(test.scores, test.labels, interpolated=True)
    ap_noninterp = metrics.per_class_ap(test.scores, test.labels, interpolated=False)
    at = metrics.f1_at_threshold(test.scores, test.labels, threshold, warn=False)
    top = metrics.f1_topk(test.scores, test.labels, top_k, top_k_min_score, warn=False)
    headline: dict[str, float | int] = {
        "mAP": _percent(metrics.mean_over_classes(ap, test.class_names)),
        "mAP_noninterp": _percent(metrics.mean_over_classes(ap_noninterp, warn=False)),
        **{key: _percent(at[key]) for key in ("F1_C", "F1_O", "P_C", "R_C", "P_O", "R_O")},
        f"top{top_k}_F1_C": _percent(top["F1_C"]),
        f"top{top_k}_F1_O": _percent(top["F1_O"]),
    }
    if val is not None:
        tuned_threshold, _ = metrics.tune_threshold(val.scores, val.labels, grid)
        tuned = metrics.f1_at_threshold(test.scores, test.labels, tuned_threshold, warn=False)
        headline.update(tuned_threshold=tuned_threshold, tuned_F1_C=_percent(tuned["F1_C"]),
                        tuned_F1_O=_percent(tuned["F1_O"]))
    headline.update(num_images=int(test.scores.shape[0]), num_classes=len(test.class_names),
                    classes_without_positives=int(np.isnan(ap).sum()))
    table = pd.DataFrame({
        "class": test.class_names,
        "positives": (np.asarray(test.labels) > 0).sum(axis=0).astype(int),
        "AP": 100 * ap,
        "AP_noninterp": 100 * ap_noninterp,
        "precision": 100 * at["precision"],
        "recall": 100 * at["recall"],
        "F1": 100 * at["F1"],
    })
    return headline, table


def _cell(value: object) -> str:
    if isinstance(value, str):
        return value.replace("|", "\\|")
    if isinstance(value, (int, np.integer)):
        return str(value)
    return "n/a" if np.isnan(value) else f"{value:.{PERCENT_DECIMALS}f}"


def per_class_markdown(table: pd.DataFrame, title: str) -> str:
    """``table`` (from ``evaluate``) as a Markdown table, most positives first (the paper's Figure 4 order).

    The final row holds each metric's mean over classes; AP columns leave out classes without a positive (n/a),
    so the row matches mAP, and the precision / recall / F1 means are P-C / R-C / F1-C.
    """
    rows = table.sort_values("positives", ascending=False, kind="stable")
    align = ["---" if col == "class" else "---:" for col in table.columns]
    mean = ["**mean**" if col == "class" else "" if col == "positives" else _cell(rows[col].mean())
            for col in table.columns]
    lines = [f"### {title}", "", "| " + " | ".join(table.columns) + " |", "| " + " | ".join(align) + " |"]
    lines += ["| " + " | ".join(_cell(value) for value in row) + " |" for row in rows.itertuples(index=False)]
    lines.append("| " + " | ".join(mean) + " |")
    return "\n".join(lines) + "\n"


def plot_precision_recall(curves: dict[str, Predictions], path: str | Path) -> None:
    """PNG: each model's micro-averaged PR curve (all image-class pairs; legend: name and mAP) and per-class AP bars."""
    if not curves:
        raise ValueError("no predictions to plot")
    class_names = _check_same_classes(curves)
    num_classes = len(class_names)
    bar_panel_width = max(_MIN_BAR_PANEL_WIDTH, _WIDTH_PER_CLASS * num_classes)
    fig = Figure(figsize=(_PR_PANEL_WIDTH + bar_panel_width, _FIG_HEIGHT), layout="constrained")
    FigureCanvasAgg(fig)
    ax_pr, ax_ap = fig.subplots(1, 2, width_ratios=[_PR_PANEL_WIDTH, bar_panel_width])
    slots = np.arange(num_classes)
    bar_width = _BAR_GROUP_WIDTH / len(curves)
    for i, (name, preds) in enumerate(curves.items()):
        precision, recall = metrics.precision_recall_points(preds.scores.ravel(), preds.labels.ravel())
        # Only the points where recall rises (one per positive) shape the curve; the rest would just add bulk.
        rises = np.diff(recall, prepend=0.0) > 0
        ap = metrics.per_class_ap(preds.scores, preds.labels)
        label = f"{name} (mAP {100 * metrics.mean_over_classes(ap, class_names):.1f})"
        ax_pr.plot(recall[rises], precision[rises], label=label)
        offset = (i + 0.5) * bar_width - _BAR_GROUP_WIDTH / 2
        ax_ap.bar(slots + offset, 100 * ap, bar_width, label=name)
    ax_pr.set(xlabel="recall", ylabel="precision", xlim=(0, 1), ylim=(0, 1.02),
              title="Micro-averaged precision-recall")
    ax_pr.legend(loc="lower left")
    ax_ap.set(ylabel="AP (%)", ylim=(0, 100), xlim=(-0.5, num_classes - 0.5), title="Per-class AP")
    ax_ap.set_xticks(slots, class_names, rotation=90)
    ax_ap.legend(loc="upper left", bbox_to_anchor=(1, 1))  # outside, so it never hides a bar
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=_DPI)
