"""How well proposals cover the ground-truth objects: recall at IoU thresholds, best overlap, by object size.

Definitions (per ground-truth box, crowd boxes left out as COCO evaluation does):

- best overlap: the highest IoU of the box with any real proposal of its image (the first ``num_real`` rows);
- recall@t: the fraction of boxes whose best overlap is at least t;
- abo: the mean best overlap over boxes; mabo: the mean over classes of each class's abo (Uijlings et al.);
- sizes follow COCO: small area < 32^2, medium up to 96^2, large above, with the annotation's ``area``.

Unreadable images (``num_real`` = 0) are left out and listed. The curve gives recall using only the top k
proposals, for k from 1 to N on a log scale.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from ..data.manifest import relative_path
from ..pipeline.atomic import atomic_path
from ..pipeline.errors import UserError
from .boxes import best_overlap_curve, xywh_to_xyxy
from .store import ProposalReader

IOU_THRESHOLDS = (0.5, 0.7)
SIZE_RANGES = {"small": (0.0, 32.0 ** 2), "medium": (32.0 ** 2, 96.0 ** 2), "large": (96.0 ** 2, float("inf"))}
CURVE_POINTS = 20


def load_ground_truth(annotations: str | Path) -> dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """``{image_id: (boxes xyxy (G, 4), areas (G,), category ids (G,))}`` from a COCO instances JSON."""
    path = Path(annotations)
    try:
        document = json.loads(path.read_text())
        records = [a for a in document["annotations"] if not a.get("iscrowd", 0)]
    except (OSError, json.JSONDecodeError, KeyError, TypeError) as exc:
        raise UserError(f"{path}: not a COCO instances file ({exc})") from None
    grouped: dict[int, list[dict]] = {}
    for record in records:
        grouped.setdefault(int(record["image_id"]), []).append(record)
    return {image_id: (xywh_to_xyxy([r["bbox"] for r in rs]),
                       np.array([r.get("area", r["bbox"][2] * r["bbox"][3]) for r in rs], np.float64),
                       np.array([r["category_id"] for r in rs], np.int64))
            for image_id, rs in grouped.items()}


def curve_counts(num_proposals: int, points: int = CURVE_POINTS) -> np.ndarray:
    """About ``points`` distinct proposal counts from 1 to ``num_proposals``, evenly spaced on a log scale."""
    return np.unique(np.round(np.logspace(0, np.log10(max(num_proposals, 1)), points)).astype(np.int64))


def coverage_summary(best: np.ndarray, categories: np.ndarray) -> dict[str, float | int]:
    """Recall at each IoU threshold, abo and mabo of the best overlaps ``best`` of boxes of ``categories``."""
    if len(best) == 0:
        return {"num_gt": 0, **{f"recall@{t}": None for t in IOU_THRESHOLDS}, "abo": None, "mabo": None}
    per_class = [best[categories == c].mean() for c in np.unique(categories)]
    return {"num_gt": int(len(best)), **{f"recall@{t}": float(np.mean(best >= t)) for t in IOU_THRESHOLDS},
            "abo": float(best.mean()), "mabo": float(np.mean(per_class))}


def recall_report(proposals: str | Path, annotations: str | Path | None) -> dict[str, Any]:
    """The recall report of a proposals file against the COCO ground truth of the same images.

    ``annotations`` None (a dataset without boxes, NUS-WIDE) gives the same report with no object to cover, so the
    stage's outputs exist for every dataset.
    """
    truth = load_ground_truth(annotations) if annotations is not None else {}
    with ProposalReader(proposals) as reader:
        counts = curve_counts(reader.num_proposals)
        best_at, areas, categories, excluded = [], [], [], []
        for index, image_id in enumerate(reader.image_ids):
            if int(image_id) not in truth:
                continue
            gt_boxes, gt_areas, gt_categories = truth[int(image_id)]
            boxes, _, num_real = reader.get(index)
            if num_real == 0:
                excluded.append(int(image_id))
                continue
            curve = best_overlap_curve(boxes[:num_real], gt_boxes)
            best_at.append(curve[np.minimum(counts, num_real) - 1])  # (len(counts), G)
            areas.append(gt_areas)
            categories.append(gt_categories)
        num_images, evaluated = len(reader), len(best_at)
    best_at = np.concatenate(best_at, axis=1) if best_at else np.zeros((len(counts), 0))
    areas = np.concatenate(areas) if areas else np.zeros(0)
    categories = np.concatenate(categories) if categories else np.zeros(0, np.int64)
    best = best_at[-1]
    by_size = {name: coverage_summary(best[(areas >= low) & (areas < high)], categories[(areas >= low) & (areas < high)])
               for name, (low, high) in SIZE_RANGES.items()}
    return {
        "proposals": str(proposals),
        "annotations": None if annotations is None else relative_path(annotations, Path.cwd()),
        "num_images": num_images,
        "num_images_evaluated": evaluated,
        "excluded_unreadable_images": excluded,
        "overall": coverage_summary(best, categories), "by_size": by_size,
        "curve": {"num_proposals": counts.tolist(),
                  **{f"recall@{t}": [float(np.mean(row >= t)) if row.size else None for row in best_at]
                     for t in IOU_THRESHOLDS}},
    }


def write_report(report: dict[str, Any], path: str | Path) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(report, indent=2) + "\n")


def plot_recall_curve(report: dict[str, Any], path: str | Path) -> None:
    """Recall at each IoU threshold against the number of proposals (log axis), as a PNG."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    curve = report["curve"]
    figure, axes = plt.subplots(figsize=(5, 3.5))
    for t in IOU_THRESHOLDS:
        axes.plot(curve["num_proposals"], curve[f"recall@{t}"], marker=".", label=f"IoU {t}")
    axes.set_xscale("log")
    axes.set_ylim(0, 1)
    axes.set_xlabel("proposals per image")
    axes.set_ylabel("recall")
    axes.set_title(f"{report['overall']['num_gt']} objects in {report['num_images_evaluated']} images")
    axes.grid(True, which="both", alpha=0.3)
    axes.legend()
    figure.tight_layout()
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png", dpi=100)
    plt.close(figure)
