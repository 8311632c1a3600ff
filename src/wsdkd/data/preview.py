"""A contact sheet of COCO-format images with their ground-truth boxes: to see what a dataset looks like."""

from __future__ import annotations

import json
import math
from pathlib import Path

import cv2
import numpy as np

from ..atomic import atomic_path
from ..errors import UserError

SHEET_COLUMNS = 4
SHEET_TILE = 384  # px per image on the sheet, so 20-px objects and their names are readable
SHEET_GAP = 4
FONT, FONT_SCALE = cv2.FONT_HERSHEY_SIMPLEX, 0.45


def _class_colour(category_id: int) -> tuple[int, int, int]:
    """A distinct, stable BGR colour per category."""
    hue = np.uint8([[[(category_id * 47) % 180, 255, 255]]])  # 47 steps spread hues around OpenCV's 0-179 wheel
    return tuple(int(v) for v in cv2.cvtColor(hue, cv2.COLOR_HSV2BGR)[0, 0])


def render_samples(annotation_json: str | Path, image_dir: str | Path, path: str | Path, n: int = 8) -> None:
    """Write a PNG contact sheet of the first ``n`` images with their ground-truth boxes and class names."""
    document = json.loads(Path(annotation_json).read_text())
    names = {c["id"]: c["name"] for c in document["categories"]}
    by_image: dict[int, list[dict]] = {}
    for ann in document["annotations"]:
        by_image.setdefault(ann["image_id"], []).append(ann)
    images = document["images"][:n]
    rows = max(1, math.ceil(len(images) / SHEET_COLUMNS))
    step = SHEET_TILE + SHEET_GAP
    sheet = np.full((rows * step - SHEET_GAP, SHEET_COLUMNS * step - SHEET_GAP, 3), 255, dtype=np.uint8)
    for slot, info in enumerate(images):
        tile = cv2.imread(str(Path(image_dir) / info["file_name"]), cv2.IMREAD_COLOR)
        if tile is None:
            raise UserError(f"{Path(image_dir) / info['file_name']}: missing or unreadable image")
        scale = SHEET_TILE / max(tile.shape[:2])
        tile = cv2.resize(tile, (round(tile.shape[1] * scale), round(tile.shape[0] * scale)), interpolation=cv2.INTER_LINEAR)
        for ann in by_image.get(info["id"], []):
            x, y, w, h = (round(v * scale) for v in ann["bbox"])
            colour = _class_colour(ann["category_id"])
            cv2.rectangle(tile, (x, y), (x + w, y + h), colour, 2)
            label_at = (x, max(y - 4, 10))
            cv2.putText(tile, names[ann["category_id"]], label_at, FONT, FONT_SCALE, (0, 0, 0), 3, cv2.LINE_AA)
            cv2.putText(tile, names[ann["category_id"]], label_at, FONT, FONT_SCALE, colour, 1, cv2.LINE_AA)
        top, left = (slot // SHEET_COLUMNS) * step, (slot % SHEET_COLUMNS) * step
        sheet[top : top + tile.shape[0], left : left + tile.shape[1]] = tile
    png = cv2.imencode(".png", sheet)[1].tobytes()
    with atomic_path(path) as tmp:
        tmp.write_bytes(png)
