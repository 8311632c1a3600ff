"""How good the teacher is, from its cache: image predictions, CorLoc and box AP (METHOD.md section 2).

- Predictions: p of every val/test image, written with the shared writer so the evaluation stage scores the
  teacher beside the students.
- CorLoc: over the (image, positive class) pairs, the fraction whose top-scoring proposal for that class
  (argmax of the column S[:, k]) overlaps a ground-truth box of that class at IoU >= 0.5.
- Box AP: per-class NMS on each column of S, scored by pycocotools' COCOeval against the split's boxes.
"""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import numpy as np
import torch
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval
from torchvision.ops import batched_nms

from ..data.manifest import Split
from ..evaluate.predictions import Predictions
from ..pipeline.atomic import write_text_atomic
from ..proposals.boxes import box_iou
from .cache import TeacherCache

CORLOC_IOU = 0.5  # the localisation criterion of CorLoc (PASCAL's overlap test)
DETECTIONS_PER_IMAGE = 100  # COCOeval's largest maxDets


def predictions_from_cache(cache: TeacherCache, split: Split) -> Predictions:
    """The teacher's image predictions p in the split's order."""
    if not np.array_equal(cache.image_ids, split.image_ids):
        raise ValueError(f"{cache.path}: cached images differ from split {split.name!r}")
    return Predictions(split.image_ids, cache.image_scores().astype(np.float32), split.labels, split.class_names)


def top_box_hits(scores: np.ndarray, boxes: np.ndarray, labels: np.ndarray,
                 gt: dict[int, np.ndarray]) -> dict[int, bool]:
    """For each positive class k of one image: does the argmax row of S[:, k] hit a GT box of class k?

    ``scores`` (N, K) and ``boxes`` (N, 4) are the image's real rows; ``gt`` maps a class index to its boxes.
    """
    hits = {}
    for k in np.flatnonzero(labels):
        truth = gt.get(int(k), np.zeros((0, 4)))
        best = boxes[int(np.argmax(scores[:, k]))]
        hits[int(k)] = bool(len(truth)) and bool(box_iou(best[None], truth).max() >= CORLOC_IOU)
    return hits


def class_detections(scores: np.ndarray, boxes: np.ndarray, nms_iou: float,
                     limit: int = DETECTIONS_PER_IMAGE) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-class NMS on the columns of S: ``(boxes (D, 4), scores (D,), class index (D,))``, best ``limit``."""
    rows, classes = scores.shape
    flat_boxes = torch.as_tensor(np.repeat(boxes[:, None, :], classes, 1).reshape(-1, 4), dtype=torch.float32)
    flat_scores = torch.as_tensor(scores.reshape(-1), dtype=torch.float32)
    flat_classes = torch.arange(classes).repeat(rows)
    keep = batched_nms(flat_boxes, flat_scores, flat_classes, nms_iou)[:limit]
    return flat_boxes[keep].numpy(), flat_scores[keep].numpy(), flat_classes[keep].numpy()


def _gt_by_image(coco: COCO, split: Split) -> dict[int, dict[int, np.ndarray]]:
    """image id -> class index -> GT boxes (x1, y1, x2, y2); crowd boxes are left out, as COCOeval ignores them."""
    class_of = {c: k for k, c in enumerate(split.category_ids)}
    out: dict[int, dict[int, list]] = {int(i): {} for i in split.image_ids}
    for ann in coco.loadAnns(coco.getAnnIds(imgIds=[int(i) for i in split.image_ids], iscrowd=False)):
        x, y, w, h = ann["bbox"]
        out[ann["image_id"]].setdefault(class_of[ann["category_id"]], []).append([x, y, x + w, y + h])
    return {i: {k: np.array(v, np.float64) for k, v in boxes.items()} for i, boxes in out.items()}


def detection_report(cache: TeacherCache, split: Split, nms_iou: float) -> dict:
    """CorLoc (over pairs and per class) and COCO box AP of the cached S on ``split`` (which has GT boxes)."""
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints progress
        coco = COCO(str(split.annotations))
    gt = _gt_by_image(coco, split)
    pair_hits: dict[int, list[bool]] = {k: [] for k in range(split.num_classes)}
    results = []
    for index in range(len(cache)):
        image = cache.get(index, features=False)
        real = slice(0, image.num_real)
        scores, boxes = image.scores[real], image.boxes[real]
        for k, hit in top_box_hits(scores, boxes, split.labels[index], gt[image.image_id]).items():
            pair_hits[k].append(hit)
        for box, score, k in zip(*class_detections(scores, boxes, nms_iou)):
            results.append({"image_id": image.image_id, "category_id": split.category_ids[int(k)],
                            "bbox": [float(box[0]), float(box[1]), float(box[2] - box[0]), float(box[3] - box[1])],
                            "score": float(score)})
    every = [hit for hits in pair_hits.values() for hit in hits]
    per_class = {split.class_names[k]: round(100.0 * float(np.mean(h)), 2) for k, h in pair_hits.items() if h}
    return {"corloc": round(100.0 * float(np.mean(every)), 2) if every else None,
            "corloc_class_mean": round(float(np.mean(list(per_class.values()))), 2) if per_class else None,
            "corloc_per_class": per_class, "num_pairs": len(every), **_box_ap(coco, results, split)}


def _box_ap(coco: COCO, results: list[dict], split: Split) -> dict:
    """COCOeval bbox AP@[.5:.95], AP@.5 and AP@.75 (%) over the split's images."""
    if not results:
        return {"box_ap": 0.0, "box_ap50": 0.0, "box_ap75": 0.0}
    with contextlib.redirect_stdout(io.StringIO()):
        evaluator = COCOeval(coco, coco.loadRes(results), "bbox")
        evaluator.params.imgIds = [int(i) for i in split.image_ids]
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    ap, ap50, ap75 = (round(100.0 * float(v), 2) for v in evaluator.stats[:3])
    return {"box_ap": ap, "box_ap50": ap50, "box_ap75": ap75}


def write_report(report: dict, path: str | Path) -> None:
    write_text_atomic(path, json.dumps(report, indent=2) + "\n")
