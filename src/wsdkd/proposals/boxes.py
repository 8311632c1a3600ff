"""Pure box arithmetic shared by every proposal source and the recall report.

Boxes are ``(n, 4)`` float32 arrays of ``x1, y1, x2, y2`` in pixels of the original image, with ``x2 = x + w``
(the COCO convention: a box covering the whole ``W x H`` image is ``0, 0, W, H``).
"""

from __future__ import annotations

import numpy as np


def xywh_to_xyxy(boxes: np.ndarray) -> np.ndarray:
    """Convert ``x, y, w, h`` rows (OpenCV, COCO results) to ``x1, y1, x2, y2`` float32 rows."""
    out = np.asarray(boxes, np.float32).reshape(-1, 4).copy()
    out[:, 2:] += out[:, :2]
    return out


def clip_to_image(boxes: np.ndarray, scores: np.ndarray, width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    """Clip boxes to the image and drop those left with no area (an external detector may overshoot)."""
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4).copy()
    np.clip(boxes[:, 0::2], 0, width, out=boxes[:, 0::2])
    np.clip(boxes[:, 1::2], 0, height, out=boxes[:, 1::2])
    keep = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
    return boxes[keep], np.asarray(scores, np.float32)[keep]


def top_n(boxes: np.ndarray, scores: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``n`` highest-scoring boxes, best first; ties keep their input order (a stable sort)."""
    order = np.argsort(-np.asarray(scores, np.float32), kind="stable")[:n]
    return np.asarray(boxes, np.float32)[order], np.asarray(scores, np.float32)[order]


def recycle_to(boxes: np.ndarray, scores: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray, int]:
    """Pad to exactly ``n`` rows by repeating the rows from the top; return ``(boxes, scores, num_real)``.

    Every image then has the same number of rows (one HDF5 chunk shape, fixed-size batches). With no boxes at
    all the rows stay zero and ``num_real`` is 0, which downstream stages read as "exclude this image".
    """
    real = min(len(boxes), n)
    if real == 0:
        return np.zeros((n, 4), np.float32), np.zeros(n, np.float32), 0
    index = np.arange(n) % real
    return np.asarray(boxes, np.float32)[index], np.asarray(scores, np.float32)[index], real


def fit_proposals(boxes: np.ndarray, scores: np.ndarray, width: int, height: int,
                  n: int) -> tuple[np.ndarray, np.ndarray, int]:
    """A source's boxes as the ``n`` stored rows of one readable image: clipped, best ``n``, recycled.

    An image for which the source found nothing (a tiny or flat image, an image the external detector
    skipped) gets the whole-image box with score 1, so every readable image has at least one real box: for a
    weakly supervised detector the whole image is the one region sure to contain the labelled objects.
    ``num_real = 0`` is thereby reserved for unreadable images.
    """
    boxes, scores = clip_to_image(boxes, scores, width, height)
    if len(boxes) == 0:
        boxes, scores = np.array([[0, 0, width, height]], np.float32), np.ones(1, np.float32)
    return recycle_to(*top_n(boxes, scores, n), n)


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Intersection over union of every row of ``a`` (m, 4) with every row of ``b`` (k, 4): an (m, k) array."""
    a = np.asarray(a, np.float64).reshape(-1, 4)
    b = np.asarray(b, np.float64).reshape(-1, 4)
    width = np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0])
    height = np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1])
    inter = np.clip(width, 0, None) * np.clip(height, 0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def best_overlap_curve(proposals: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """Best IoU of each ground-truth box using only the first k proposals, for every k: an (R, G) array.

    Row ``k - 1`` answers "how well do the top k proposals cover each object"; the last row is the best overlap
    with all of them. Proposals must be in rank order.
    """
    if len(proposals) == 0:
        return np.zeros((0, len(gt)))
    return np.maximum.accumulate(box_iou(proposals, gt), axis=0)
