"""The paper's figures from the DAG's outputs.

Figure 3: test images with the teacher's top boxes by objectness s' (Eq. 4), and the student's top-3 labels
without and with distillation, right in blue and wrong in red. Figure 4: the per-class AP gain of distillation,
classes sorted by how many training images contain them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from ..data.images import load_rgb
from ..data.manifest import Split
from ..evaluate import metrics
from ..evaluate.predictions import Predictions
from ..pipeline.atomic import atomic_path
from ..pipeline.errors import UserError
from ..teacher.cache import TeacherCache

RIGHT, WRONG, BOX = "tab:blue", "tab:red", "yellow"
_TILE_INCHES, _TITLE_INCHES, _COLUMNS, _DPI = 3.0, 0.4, 3, 120
# Figure 3's labels, in points from the image's lower left corner: two columns (w/o, w/), a label per line, so
# long class names ("parking meter", "tennis racket") never run into each other.
_LABEL_POINTS, _LINE_POINTS, _COLUMN_POINTS, _PAD_POINTS = 8, 11, 100, 4


def top_boxes(boxes: np.ndarray, objectness: np.ndarray, selected: np.ndarray, num_selected: int,
              k: int) -> np.ndarray:
    """The (<= k, 4) boxes with the largest s' among the NMS-selected rows (the recycled tail is left out)."""
    rows = selected[:num_selected]
    order = np.argsort(-objectness[rows], kind="stable")[:k]
    return boxes[rows[order]]


def top_labels(scores: np.ndarray, labels: np.ndarray, k: int) -> list[tuple[int, float, bool]]:
    """(class, score, right) of the ``k`` best-scored classes of one image, best first."""
    order = np.argsort(-scores, kind="stable")[:k]
    return [(int(c), float(scores[c]), bool(labels[c])) for c in order]


def _rows_by_id(preds: Predictions, image_ids: np.ndarray, source: str) -> np.ndarray:
    where = {int(i): r for r, i in enumerate(preds.image_ids)}
    missing = [int(i) for i in image_ids if int(i) not in where]
    if missing:
        raise UserError(f"{source}: no predictions for image ids {missing[:5]}")
    return np.array([where[int(i)] for i in image_ids])


def plot_examples(split: Split, cache_path: Path, without: Predictions, with_: Predictions, path: Path,
                  examples: int, seed: int, num_boxes: int = 10, top_k: int = 3) -> None:
    """Figure 3 for ``examples`` test images drawn at random (``seed``), so the picks are not ours to choose."""
    picks = np.sort(np.random.default_rng(seed).choice(len(split), min(examples, len(split)), replace=False))
    rows_wo = _rows_by_id(without, split.image_ids[picks], "without-distillation predictions")
    rows_w = _rows_by_id(with_, split.image_ids[picks], "with-distillation predictions")
    grid_rows = -(-len(picks) // _COLUMNS)
    text_inches = (2 * _PAD_POINTS + _LINE_POINTS * (top_k + 1)) / 72
    height = grid_rows * (_TILE_INCHES + text_inches) + _TITLE_INCHES
    fig = Figure(figsize=(_COLUMNS * _TILE_INCHES, height))
    FigureCanvasAgg(fig)
    # Fixed margins, not constrained layout: it ignores the label lines drawn under each image and would crop them.
    fig.subplots_adjust(left=0.01, right=0.99, top=1 - _TITLE_INCHES / height, bottom=text_inches / height,
                        wspace=0.05, hspace=text_inches / _TILE_INCHES)
    axes = np.atleast_1d(fig.subplots(grid_rows, _COLUMNS)).ravel()
    names = split.class_names
    with TeacherCache(cache_path) as cache:
        if not np.array_equal(cache.image_ids, split.image_ids):
            raise UserError(f"{cache_path}: its images are not the {split.name} split's; rerun cache_teacher")
        for ax, index, r_wo, r_w in zip(axes, picks, rows_wo, rows_w):
            image = cache.get(int(index), features=False)
            ax.imshow(load_rgb(split.paths[index]))
            for x1, y1, x2, y2 in top_boxes(image.boxes, image.objectness, image.selected, image.num_selected,
                                            num_boxes):
                ax.add_patch(Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, edgecolor=BOX, linewidth=1.2))
            ax.set_xticks([]), ax.set_yticks([])
            for column, (title, preds, row) in enumerate((("w/o", without, r_wo), ("w/", with_, r_w))):
                labels = [(f"{title}:", "black")] + [
                    (f"{names[c]} {score:.2f}", RIGHT if right else WRONG)
                    for c, score, right in top_labels(preds.scores[row], preds.labels[row], top_k)]
                for line, (text, color) in enumerate(labels):
                    ax.annotate(text, (0, 0), xycoords="axes fraction", textcoords="offset points", va="top",
                                xytext=(column * _COLUMN_POINTS, -_PAD_POINTS - line * _LINE_POINTS),
                                fontsize=_LABEL_POINTS, color=color)
    for ax in axes[len(picks):]:
        ax.set_axis_off()
    fig.suptitle(f"Teacher's top-{num_boxes} boxes by objectness s'; student's top-{top_k} labels without (w/o) "
                 f"and with (w/) distillation, right in blue, wrong in red", fontsize=9)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=_DPI)


def class_ap_gain(without: Predictions, with_: Predictions, train_labels: np.ndarray) -> pd.DataFrame:
    """Per class: training images containing it, AP without and with distillation and the gain (percent),
    most frequent class first (Figure 4's order)."""
    if without.class_names != with_.class_names:
        raise UserError("the two students' predictions have different classes")
    rows = _rows_by_id(with_, without.image_ids, "with-distillation predictions")
    ap_wo = 100 * metrics.per_class_ap(without.scores, without.labels)
    ap_w = 100 * metrics.per_class_ap(with_.scores[rows], with_.labels[rows])
    table = pd.DataFrame({"class": without.class_names, "train_images": train_labels.sum(axis=0).astype(int),
                          "AP_without": ap_wo, "AP_with": ap_w, "gain": ap_w - ap_wo})
    return table.sort_values("train_images", ascending=False, kind="stable").reset_index(drop=True)


def plot_ap_gain(table: pd.DataFrame, path: Path) -> None:
    """Figure 4: one bar per class, the gain in AP points, blue up and red down; x labels carry the counts."""
    fig = Figure(figsize=(max(6.0, 0.35 * len(table)), 4.0), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    slots = np.arange(len(table))
    ax.bar(slots, table["gain"], color=[RIGHT if g >= 0 else WRONG for g in table["gain"]])
    ax.axhline(0, color="black", linewidth=0.8)
    ax.set_xticks(slots, [f"{c} ({n})" for c, n in zip(table["class"], table["train_images"])], rotation=90)
    ax.set(ylabel="AP gain (points)", xlim=(-0.5, len(table) - 0.5),
           title=f"Per-class AP gain of distillation (mean {table['gain'].mean():+.2f})\nclasses by training "
                 "images (in brackets), most first")
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=_DPI)
