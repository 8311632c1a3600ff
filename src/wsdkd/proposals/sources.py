"""Proposal sources behind one interface, and the factory that builds one from params.

A source is a callable ``source(image_bgr, image_id) -> (boxes, scores)``: boxes ``(n, 4)`` float32 x1, y1, x2, y2
in original-image pixels, scores ``(n,)`` float32 used as the prior s_R (higher is better), in any order and any
number; :func:`wsdkd.proposals.boxes.fit_proposals` turns that into the stored fixed-size rows.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Any, Callable

import cv2
import numpy as np

from ..pipeline.errors import UserError
from .boxes import xywh_to_xyxy
from .edgeboxes import EdgeBoxes, resize_long_side
from .edges import make_edge_detector

ProposalSource = Callable[[np.ndarray, int], tuple[np.ndarray, np.ndarray]]
SOURCES = ("edgeboxes", "selective_search", "external")


def rank_prior(count: int) -> np.ndarray:
    """Scores for a ranked list with no scores of its own: ``(count - r) / count`` for rank r, so 1 down to 1/count.

    Selective search returns its boxes in a meaningful order (its hierarchical grouping, coarse regions
    last) but no score; this keeps that order and gives the teacher's ``a * s_R + b`` a value in (0, 1].
    """
    return ((count - np.arange(count)) / max(count, 1)).astype(np.float32)


class SelectiveSearch:
    """OpenCV's selective search in its fast mode (Uijlings et al. 2013), with the rank prior as scores."""

    def __init__(self, max_side: int | None = None) -> None:
        self.max_side = max_side
        self._search = cv2.ximgproc.segmentation.createSelectiveSearchSegmentation()

    def __call__(self, image_bgr: np.ndarray, image_id: int) -> tuple[np.ndarray, np.ndarray]:
        image, scale_x, scale_y = resize_long_side(image_bgr, self.max_side)
        self._search.setBaseImage(image)
        self._search.switchToSelectiveSearchFast()
        boxes = xywh_to_xyxy(self._search.process())
        boxes[:, 0::2] /= scale_x
        boxes[:, 1::2] /= scale_y
        return boxes, rank_prior(len(boxes))


class ExternalDetections:
    """Boxes of an external detector read from a COCO results JSON; the detector's scores are the prior.

    The file is a list of ``{image_id, category_id, bbox: [x, y, w, h], score}``; an image may have many
    entries (several classes, several boxes per class): they are pooled per image, best score first. An image
    with no entry gets no boxes (the extraction then falls back to the whole-image box).
    """

    def __init__(self, path: str | Path) -> None:
        path = Path(path)
        try:
            records = json.loads(path.read_text())
        except FileNotFoundError:
            raise UserError(f"{path}: external detections file not found") from None
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise UserError(f"{path}: not a JSON file ({exc})") from None
        if not isinstance(records, list):
            raise UserError(f"{path}: expected a COCO results list [{{image_id, bbox, score}}, ...]")
        grouped: dict[int, list[tuple[list[float], float]]] = defaultdict(list)
        for k, record in enumerate(records):
            try:
                bbox = [float(v) for v in record["bbox"]]
                if len(bbox) != 4:
                    raise ValueError("bbox needs 4 numbers")
                grouped[int(record["image_id"])].append((bbox, float(record["score"])))
            except (KeyError, TypeError, ValueError) as exc:
                raise UserError(f"{path}: entry {k} is not {{image_id, bbox [x, y, w, h], score}} ({exc!r})") from None
        self._boxes = {}
        for image_id, entries in grouped.items():
            scores = np.array([score for _, score in entries], np.float32)
            order = np.argsort(-scores, kind="stable")
            self._boxes[image_id] = (xywh_to_xyxy([entries[i][0] for i in order]), scores[order])

    def __call__(self, image_bgr: np.ndarray, image_id: int) -> tuple[np.ndarray, np.ndarray]:
        empty = (np.zeros((0, 4), np.float32), np.zeros(0, np.float32))
        return self._boxes.get(int(image_id), empty)


def make_source(cfg: dict[str, Any]) -> ProposalSource:
    """The source that the ``proposals`` section of params.yaml describes."""
    kind = cfg["source"]
    if kind == "edgeboxes":
        edges = make_edge_detector(cfg["edges"], cfg.get("structured_model"))
        return EdgeBoxes(edges, max_side=cfg.get("max_side"), **cfg["edgeboxes"])
    if kind == "selective_search":
        return SelectiveSearch(cfg.get("max_side"))
    if kind == "external":
        if not cfg.get("external_json"):
            raise UserError("proposals.source is 'external' but proposals.external_json is not set")
        return ExternalDetections(cfg["external_json"])
    raise UserError(f"proposals.source: expected one of {', '.join(SOURCES)}, got {kind!r}")
