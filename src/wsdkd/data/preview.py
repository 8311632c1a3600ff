"""A contact sheet of a split's images with their ground truth: to see what a dataset looks like."""

from __future__ import annotations

import json
import math
from pathlib import Path

import cv2
import numpy as np

from ..pipeline.atomic import atomic_path
from ..pipeline.errors import UserError
from .manifest import Split

SHEET_COLUMNS = 4
SHEET_TILE = 384  # px per image on the sheet, so 20-px objects and their names are readable
SHEET_GAP = 4
FONT, FONT_SCALE = cv2.FONT_HERSHEY_SIMPLEX, 0.45


def _class_colour(category_id: int) -> tuple[int, int, int]:
    """A distinct, stable BGR colour per category."""
    hue = np.uint8([[[(category_id * 47) % 180, 255, 255]]])  # 47 steps spread hues around OpenCV's 0-179 wheel
    return tuple(int(v) for v in cv2.cvtColor(hue, cv2.COLOR_HSV2BGR)[0, 0])


def _boxes_by_image(annotation_json: Path) -> dict[int, list[tuple[list[float], int, str]]]:
    """image id -> [(bbox xywh, category id, class name)] from a COCO instances JSON."""
    document = json.loads(Path(annotation_json).read_text())
    names = {c["id"]: c["name"] for c in document["categories"]}
    by_image: dict[int, list] = {}
    for ann in document["annotations"]:
        by_image.setdefault(ann["image_id"], []).append((ann["bbox"], ann["category_id"], names[ann["category_id"]]))
    return by_image


def _text(tile: np.ndarray, text: str, at: tuple[int, int], colour: tuple[int, int, int]) -> None:
    cv2.putText(tile, text, at, FONT, FONT_SCALE, (0, 0, 0), 3, cv2.LINE_AA)  # dark outline: readable anywhere
    cv2.putText(tile, text, at, FONT, FONT_SCALE, colour, 1, cv2.LINE_AA)


def render_samples(split: Split, path: str | Path, n: int = 8) -> None:
    """Write a PNG contact sheet of the first ``n`` images of ``split``: their ground-truth boxes and class names
    where the split has boxes (COCO format), else their label names (NUS-WIDE)."""
    boxes = _boxes_by_image(split.annotations) if split.annotations is not None else None
    count = min(n, len(split))
    rows = max(1, math.ceil(count / SHEET_COLUMNS))
    step = SHEET_TILE + SHEET_GAP
    sheet = np.full((rows * step - SHEET_GAP, SHEET_COLUMNS * step - SHEET_GAP, 3), 255, dtype=np.uint8)
    for slot in range(count):
        tile = cv2.imread(str(split.paths[slot]), cv2.IMREAD_COLOR)
        if tile is None:
            raise UserError(f"{split.paths[slot]}: missing or unreadable image")
        scale = SHEET_TILE / max(tile.shape[:2])
        tile = cv2.resize(tile, (round(tile.shape[1] * scale), round(tile.shape[0] * scale)), interpolation=cv2.INTER_LINEAR)
        if boxes is None:
            names = [split.class_names[k] for k in np.flatnonzero(split.labels[slot])]
            _text(tile, ", ".join(names), (4, 14), (255, 255, 255))
        for bbox, category_id, name in (boxes or {}).get(int(split.image_ids[slot]), []):
            x, y, w, h = (round(v * scale) for v in bbox)
            colour = _class_colour(category_id)
            cv2.rectangle(tile, (x, y), (x + w, y + h), colour, 2)
            _text(tile, name, (x, max(y - 4, 10)), colour)
        top, left = (slot // SHEET_COLUMNS) * step, (slot % SHEET_COLUMNS) * step
        sheet[top : top + tile.shape[0], left : left + tile.shape[1]] = tile
    png = cv2.imencode(".png", sheet)[1].tobytes()
    with atomic_path(path) as tmp:
        tmp.write_bytes(png)
