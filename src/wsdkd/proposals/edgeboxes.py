"""EdgeBoxes (Zitnick & Dollar 2014) on any edge map, boxes returned in original-image pixels."""

from __future__ import annotations

import cv2
import numpy as np

from .boxes import xywh_to_xyxy
from .edges import EdgeDetector


def resize_long_side(image: np.ndarray, max_side: int | None) -> tuple[np.ndarray, float, float]:
    """Shrink ``image`` so its long side is at most ``max_side``; return it with its x and y scale factors."""
    height, width = image.shape[:2]
    if max_side is None or max(height, width) <= max_side:
        return image, 1.0, 1.0
    ratio = max_side / max(height, width)
    size = (max(1, round(width * ratio)), max(1, round(height * ratio)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA), size[0] / width, size[1] / height


class EdgeBoxes:
    """``source(image_bgr, image_id) -> (boxes xyxy, scores)``, best first, from EdgeBoxes on ``edges``.

    ``min_box_area`` is in original-image pixels whatever ``max_side`` is, so shrinking for speed does not
    change which boxes are too small to keep.
    """

    def __init__(self, edges: EdgeDetector, *, alpha: float, beta: float, min_score: float, min_box_area: float,
                 max_boxes: int, max_side: int | None = None) -> None:
        self.edges = edges
        self.max_side = max_side
        self.min_box_area = float(min_box_area)
        self._settings = {"alpha": alpha, "beta": beta, "minScore": min_score, "maxBoxes": max_boxes}

    def boxes_from_edges(self, magnitude: np.ndarray, orientation: np.ndarray, scale_x: float = 1.0,
                         scale_y: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
        """Boxes of an edge map computed at ``scale_x, scale_y`` times the original size, mapped back to it."""
        # A fresh detector per image: OpenCV's keeps state from one call to the next (the scores drift), which
        # made an image's boxes depend on the images before it, so resumed runs and worker counts disagreed.
        detector = cv2.ximgproc.createEdgeBoxes(**self._settings, minBoxArea=self.min_box_area * scale_x * scale_y)
        boxes, scores = detector.getBoundingBoxes(magnitude, orientation)
        if scores is None:  # OpenCV returns ((), None) when it finds nothing
            return np.zeros((0, 4), np.float32), np.zeros(0, np.float32)
        boxes = xywh_to_xyxy(boxes)
        boxes[:, 0::2] /= scale_x
        boxes[:, 1::2] /= scale_y
        return boxes, np.asarray(scores, np.float32).reshape(-1)

    def __call__(self, image_bgr: np.ndarray, image_id: int) -> tuple[np.ndarray, np.ndarray]:
        image, scale_x, scale_y = resize_long_side(image_bgr, self.max_side)
        return self.boxes_from_edges(*self.edges(image), scale_x, scale_y)
