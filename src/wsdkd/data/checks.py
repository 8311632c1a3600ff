"""Checks of a COCO instances file before any work starts, every problem of a kind listed in one go.

Each problem is one line: the file, the item, and the form that was expected. A box that sticks out of its
image is clipped to it (and counted); a box with nothing left inside, or not of the form [x, y, w, h] with
w, h > 0, is a problem.
"""

from __future__ import annotations

import collections
import math
from pathlib import Path

from ..pipeline.errors import UserError

_LISTED = 10  # lines per kind of problem; the rest of that kind are counted on one more line


def _lines(path: Path, items: list[str], expected: str) -> list[str]:
    lines = [f"{path}: {item}: expected {expected}" for item in items[:_LISTED]]
    if len(items) > _LISTED:
        lines.append(f"{path}: ... and {len(items) - _LISTED} more of the same kind")
    return lines


def _duplicates(kind: str, ids: list) -> list[str]:
    return [f"{kind} id {i} appears {n} times" for i, n in collections.Counter(ids).items() if n > 1]


def _number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _box_form(box: object) -> bool:
    return (isinstance(box, list) and len(box) == 4 and all(map(_number, box)) and box[2] > 0 and box[3] > 0)


def check_instances(path: Path, document: dict) -> int:
    """Raise UserError listing every problem of ``document`` (the parsed instances file at ``path``).

    Boxes sticking out of their image are clipped in ``document``; returns how many were.
    """
    images, annotations, categories = document["images"], document["annotations"], document["categories"]
    category_ids = sorted(c["id"] for c in categories)
    sizes = {image["id"]: (image.get("width"), image.get("height")) for image in images}
    orphans, unknown, unsized, malformed, outside = [], [], set(), [], []
    clipped = 0
    for ann in annotations:
        item, image_id = f"annotation {ann['id']} (image {ann['image_id']})", ann["image_id"]
        if image_id not in sizes:
            orphans.append(item)
            continue
        if ann["category_id"] not in category_ids:
            unknown.append(f"{item}: category_id {ann['category_id']!r}")
        width, height = sizes[image_id]
        if not (_number(width) and _number(height) and width > 0 and height > 0):
            unsized.add(f"image {image_id}: width {width!r}, height {height!r}")
            continue
        box = ann.get("bbox")
        if not _box_form(box):
            malformed.append(f"{item}: bbox {box!r}")
            continue
        x, y, w, h = box
        if x >= 0 and y >= 0 and x + w <= width and y + h <= height:
            continue
        x1, y1, x2, y2 = max(x, 0), max(y, 0), min(x + w, width), min(y + h, height)
        if x2 <= x1 or y2 <= y1:
            outside.append(f"{item}: bbox {box} in a {width}x{height} image")
        else:
            ann["bbox"] = [x1, y1, x2 - x1, y2 - y1]
            clipped += 1
    listed = ", ".join(map(str, category_ids[:_LISTED])) + (", ..." if len(category_ids) > _LISTED else "")
    problems = (
        _lines(path, _duplicates("image", [i["id"] for i in images]), "each image id once")
        + _lines(path, _duplicates("annotation", [a["id"] for a in annotations]), "each annotation id once")
        + _lines(path, _duplicates("category", [c["id"] for c in categories]), "each category id once")
        + _lines(path, orphans, "an image_id listed in 'images'")
        + _lines(path, unknown, f"one of the {len(category_ids)} ids in 'categories' ({listed})")
        + _lines(path, sorted(unsized), "a width and height > 0 in pixels")
        + _lines(path, malformed, "[x, y, width, height] with width and height > 0")
        + _lines(path, outside, "a box overlapping its image")
    )
    if problems:
        raise UserError("\n".join(problems))
    return clipped
